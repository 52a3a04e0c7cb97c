"""The transcriptomic stage of the group level (Martins et al. 2022, §2.9–2.13, §3.6–3.9).

Given a response map on the 34 left-hemisphere DK cortical regions (the case–control t-map, PC1 of
several cohorts, or a user's ``--response-map``), :func:`run_transcriptomics`:

1. loads AHBA expression (bundled matrix, ``--ahba-dir`` via abagen, or ``--expression-file``);
2. runs PLS (:mod:`bids_ms.pls`): variance explained by components 1..n with its p against
   spin permutations (the default ``p_perm``) and against shuffles (the paper's), PLS1 weights
   with bootstrap Z, p and FDR, PLS1+ / PLS1− lists and their sizes on spun maps put through the
   same bootstrap (the spatial null of the lists), PLS1 scores and their correlation with the response with a spin p;
3. runs the enrichment analyses (:mod:`bids_ms.enrichment`): for cell types and every gene-set
   library the spatial-null p of Fulcher et al. 2021 (the default test) beside the paper's
   Fisher tests (as GeneOverlap), the median-rank test, and STRING networks;
4. writes every output under ``group_dir``, each table with a JSON sidecar.

Output contract::

    desc-pls_components.tsv          component, var_explained, p_perm, ..., p_spin, p_shuffle
    desc-pls1_genes.tsv              gene, weight, z, p, p_fdr, rank, ...  (sorted by z, descending)
    desc-pls1plus_genes.txt          one gene per line
    desc-pls1minus_genes.txt
    desc-pls1_scores.tsv             region, score, ...
    desc-pls1_stats.json             r, p_spin, var_explained, perm_null, null_list_size,
                                     empirical_fdr_plus, empirical_fdr_minus, ...
    desc-enrichment_celltypes.tsv    gene_set, direction, overlap, set_size, odds_ratio, p, p_fdr,
                                     p_spatial, p_spatial_fdr, ...
    desc-enrichment_<name>.tsv       likewise, one per gene-set library
"""

from __future__ import annotations

import logging
import platform
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..atlas import DK_LEFT_REGIONS
from ..config import DEFAULT_GENE_SET_LIBRARIES, TranscriptomicsSettings
from ..errors import InputDataError, UsageError
from ..io.derivatives import atomic_write_text, write_json, write_tsv
from ..io.expression import (
    ahba_expression,
    canonical_region,
    expression_digest,
    load_default_expression,
    read_expression_file,
    select_regions,
)

__all__ = [
    "TranscriptomicsSettings",
    "DEFAULT_GENE_SET_LIBRARIES",
    "check_response",
    "load_expression",
    "run_transcriptomics",
    "run_response_map",
]

LOGGER = logging.getLogger("bids_ms")

#: Libraries with more sets than this skip the (slower) median-rank test.
RANK_TEST_MAX_SETS = 1000


def check_response(response: pd.Series, *, source: str = "response map") -> pd.Series:
    """The response restricted to the 34 left DK regions, validated.

    Raises
    ------
    InputDataError
        Region names that are not DK regions, missing left regions, NaN values, or a constant map.
    """
    if not isinstance(response, pd.Series):
        arr = np.asarray(response, dtype=float).ravel()
        if arr.size != len(DK_LEFT_REGIONS):
            raise InputDataError(
                f"{source}: {arr.size} values, expected {len(DK_LEFT_REGIONS)} (the left-"
                "hemisphere DK regions in canonical order)"
            )
        response = pd.Series(arr, index=list(DK_LEFT_REGIONS))
    mapped = [canonical_region(r) for r in response.index]
    unknown = [str(r) for r, m in zip(response.index, mapped, strict=True) if m is None]
    if unknown:
        raise InputDataError(
            f"{source}: region names not in the Desikan–Killiany atlas: {', '.join(unknown[:5])}"
            "; use labels like lh_bankssts or L_bankssts"
        )
    r = pd.Series(pd.to_numeric(response.to_numpy(), errors="coerce"), index=mapped, dtype=float)
    if r.index.duplicated().any():
        raise InputDataError(f"{source}: region {r.index[r.index.duplicated()][0]} appears twice")
    missing = [x for x in DK_LEFT_REGIONS if x not in r.index]
    if missing:
        raise InputDataError(
            f"{source}: the transcriptomic stage needs all 34 left-hemisphere DK regions; "
            f"missing: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
        )
    r = r.loc[list(DK_LEFT_REGIONS)]
    if r.isna().any():
        raise InputDataError(
            f"{source}: missing or non-numeric values for {', '.join(r.index[r.isna()][:5])}"
        )
    if not np.all(np.isfinite(r.to_numpy())):
        raise InputDataError(f"{source}: infinite values in the map")
    if np.ptp(r.to_numpy()) == 0:
        raise InputDataError(f"{source}: the map is constant over the 34 left regions")
    return r


def load_expression(
    settings: TranscriptomicsSettings, *, cache_dir: Path
) -> tuple[pd.DataFrame, dict]:
    """The expression matrix of the settings' source, with a description for the sidecars."""
    if settings.ahba_dir is not None:
        import abagen

        expr = ahba_expression(settings.ahba_dir, cache_dir=cache_dir)
        info = {
            "Source": "abagen on the user's AHBA microarray (--ahba-dir)",
            "AHBADir": str(settings.ahba_dir),
            "AbagenVersion": abagen.__version__,
            "Cache": str(Path(cache_dir) / "desc-abagen_expression.csv.gz"),
        }
        name = f"--ahba-dir {settings.ahba_dir}"
    elif settings.expression_file is not None:
        expr = read_expression_file(settings.expression_file)
        info = {
            "Source": "user expression table (--expression-file)",
            "ExpressionFile": str(settings.expression_file),
        }
        name = str(settings.expression_file)
    else:
        expr = load_default_expression()
        info = {
            "Source": "bundled AHBA matrix of Martins et al. 2022 (abagen, DK atlas, 15,633 genes; "
            "bids_ms/data/expression/PROVENANCE.md)",
        }
        name = "bundled AHBA expression"
    sub = select_regions(expr, DK_LEFT_REGIONS, source=name)
    info.update(
        {
            "Regions": "34 left-hemisphere DK cortical regions (Martins et al. 2022, §2.9)",
            "NumberOfGenes": int(sub.shape[1]),
            "NumberOfGenesDropped": int(expr.shape[1] - sub.shape[1]),
            "Digest": expression_digest(sub),
        }
    )
    return sub, info


def _versions() -> dict:
    import scipy

    out = {
        "bids-ms": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
    }
    return out


def _library_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", name) or "genesets"


def run_transcriptomics(
    response: pd.Series | None,
    *,
    settings: TranscriptomicsSettings,
    group_dir: Path,
    spins_seed: int | None = None,
    description: str | None = None,
) -> dict:
    """Run the transcriptomic stage on a response map and write its outputs.

    Parameters
    ----------
    response : pandas.Series or None
        Regional values indexed by DK labels (at least the 34 left regions). ``None`` reads
        ``settings.response_map``.
    settings : TranscriptomicsSettings
    group_dir : Path
        Output folder (``<out>/group``).
    spins_seed : int, optional
        The group level's seed; used when ``settings.seed`` is None so that the left-hemisphere
        spins equal the group level's.
    description : str, optional
        What the response is (written to the sidecars).

    Returns
    -------
    dict
        ``files`` (paths written), ``pls1_plus``, ``pls1_minus`` (gene lists), ``stats``
        (the PLS1 statistics), ``seed``.

    References
    ----------
    Martins et al. 2022, §2.9–2.13 and §3.6–3.9.
    """
    from .. import enrichment as enr
    from ..pls import pls1_score_correlation_null, run_pls

    group_dir = Path(group_dir)
    group_dir.mkdir(parents=True, exist_ok=True)
    if response is None:
        if settings.response_map is None:
            raise UsageError("no response map: give --response-map or run the case-control stage")
        from ..io.refmaps import read_region_map

        response = read_region_map(settings.response_map)
        description = description or f"--response-map {settings.response_map}"
        source = str(settings.response_map)
    else:
        source = description or "response map"
    y = check_response(response, source=source)
    description = description or str(getattr(response, "name", None) or "response map")

    seed = settings.seed if settings.seed is not None else spins_seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
    child = np.random.SeedSequence(seed).spawn(2)
    pls_seed = int(child[0].generate_state(1)[0])
    rank_seed = int(child[1].generate_state(1)[0])

    expr, expr_info = load_expression(settings, cache_dir=group_dir)
    genes = list(expr.columns)
    X = expr.to_numpy(dtype=float)
    yv = y.to_numpy(dtype=float)
    versions = _versions()
    if settings.ahba_dir is not None:
        versions["abagen"] = expr_info.get("AbagenVersion")

    # spins on the 34 left regions (same rotations as the group level's for the same seed)
    perms = np.empty((0, len(DK_LEFT_REGIONS)), dtype=int)
    if settings.n_spins > 0:
        from ..spins import load_dk_centroids, spin_permutations

        coords = load_dk_centroids().loc[list(DK_LEFT_REGIONS), ["x", "y", "z"]].to_numpy()
        perms = spin_permutations(
            coords, ["L"] * len(DK_LEFT_REGIONS), n_spins=settings.n_spins, seed=seed
        )

    # ---------------------------------------------------------------- PLS (§2.10)
    # Both nulls of the components' variance explained are computed: spins keep the
    # map's spatial autocorrelation (the default), shuffles reproduce the paper.
    spin_used = perms[: settings.n_perm] if settings.n_perm > 0 else perms[:0]
    null_maps = perms[: settings.n_null_maps] if settings.n_null_maps > 0 else None
    if settings.n_boot > 0 and 0 < perms.shape[0] < settings.n_null_maps:
        LOGGER.warning(
            "--n-null-maps %d but only %d spins (--n-spins): the null list sizes use %d maps",
            settings.n_null_maps,
            perms.shape[0],
            perms.shape[0],
        )
    t_start = time.perf_counter()
    pls = run_pls(
        X,
        yv,
        n_components=settings.n_components,
        n_perm=settings.n_perm,
        spin_perms=spin_used,
        perm_null=settings.perm_null,
        n_boot=settings.n_boot,
        seed=pls_seed,
        null_maps=null_maps,
        z_threshold=float(settings.z_threshold),
    )
    LOGGER.info(
        "transcriptomics: PLS with %d spin + %d shuffle permutations, %d bootstraps and %d null "
        "maps in %.1f s",
        pls.n_spin,
        pls.n_shuffle,
        pls.n_boot,
        0 if pls.null_list_size is None else pls.null_list_size["n_null_maps"],
        time.perf_counter() - t_start,
    )
    spin_desc = (
        f"spin permutations of the response ({pls.n_spin} rotations, the first --n-perm of "
        "the --n-spins; Alexander-Bloch et al. 2018)"
        if pls.n_spin
        else "none (--n-perm 0 or --n-spins 0)"
    )
    shuffle_desc = (
        f"random permutations of the response across regions ({pls.n_shuffle}; the paper's test)"
        if pls.n_shuffle
        else "none (--n-perm 0)"
    )
    perm_desc = spin_desc if settings.perm_null == "spin" else shuffle_desc
    n_null = pls.n_perm
    null_note = (
        None
        if n_null > 0
        else (
            "permutation test switched off (--n-perm 0 or --n-spins 0 with --perm-null spin): "
            "p_perm is n/a"
        )
    )
    files: list[Path] = []
    base_sidecar = {
        "Response": description,
        "Expression": expr_info,
        "Settings": settings.as_json(),
        "Seed": seed,
        "SoftwareVersions": versions,
    }

    def emit_tsv(name: str, df: pd.DataFrame, sidecar: dict) -> Path:
        path = group_dir / name
        write_tsv(path, df, sidecar={**sidecar, **base_sidecar})
        files.extend([path, path.with_suffix(".json")])
        return path

    comps = pd.DataFrame(
        {
            "component": np.arange(1, pls.var_explained.size + 1),
            "var_explained": pls.var_explained,
            "p_perm": pls.p_perm_cumulative,
            "var_explained_cumulative": pls.var_explained_cumulative,
            "p_perm_component": pls.p_perm_component,
            "p_spin": pls.p_spin,
            "p_shuffle": pls.p_shuffle,
        }
    )
    emit_tsv(
        "desc-pls_components.tsv",
        comps,
        {
            "Description": "PLS regression of the response map on AHBA gene expression (genes "
            "and response z-scored across the 34 left DK regions): variance of the response "
            "explained by each component and its permutation p against a spatial (spin) null "
            "and against random shuffles of the regions (Martins et al. 2022, §2.10). "
            "p_perm is the null chosen with --perm-null (PermNull).",
            "component": {"Description": "PLS component number"},
            "var_explained": {
                "Description": "Fraction of the response's variance explained by "
                "this component (MATLAB plsregress PCTVAR(2,k))"
            },
            "p_perm": {
                "Description": "Permutation p of the model with components 1..k (its "
                "cumulative variance explained against refits on null responses, as the "
                "reference code PLS_calculate_stats.m); (1 + #null >= obs) / (1 + n_null); "
                f"the null chosen with --perm-null: {settings.perm_null} (equals p_"
                f"{settings.perm_null})"
            },
            "var_explained_cumulative": {"Description": "Variance explained by components 1..k"},
            "p_perm_component": {
                "Description": "Permutation p of component k's own variance explained (the "
                "null chosen with --perm-null)"
            },
            "p_spin": {
                "Description": "As p_perm, against spin permutations of the response "
                "(spatial null: keeps the map's spatial autocorrelation; Alexander-Bloch et al. "
                "2018; Markello & Misic 2021)"
            },
            "p_shuffle": {
                "Description": "As p_perm, against random shuffles of the response across "
                "regions (the paper's test; ignores spatial autocorrelation, so it is "
                "anti-conservative for smooth maps)"
            },
            "PermNull": settings.perm_null,
            "Null": perm_desc,
            "SpinNull": spin_desc,
            "ShuffleNull": shuffle_desc,
            "NumberOfSpins": pls.n_spin,
            "NumberOfShuffles": pls.n_shuffle,
            "NumberOfNullResponses": n_null,
            "Note": null_note,
        },
    )

    z = pls.z
    if not np.isfinite(z).any():
        order = np.argsort(-pls.weight, kind="stable")
    else:
        order = np.argsort(-np.where(np.isfinite(z), z, -np.inf), kind="stable")
    gene_table = pd.DataFrame(
        {
            "gene": np.array(genes)[order],
            "weight": pls.weight[order],
            "z": z[order],
            "p": pls.p[order],
            "p_fdr": pls.p_fdr[order],
            "rank": np.arange(1, len(genes) + 1),
            "se": pls.se[order],
        }
    )
    boot_note = (
        None
        if settings.n_boot > 0
        else (
            "bootstrap switched off (--n-boot 0): z, p, p_fdr are n/a; genes ranked by weight; "
            "PLS1+/PLS1- lists are empty"
        )
    )
    emit_tsv(
        "desc-pls1_genes.tsv",
        gene_table,
        {
            "Description": "PLS1 gene weights with bootstrap Z (regions resampled with "
            "replacement; each bootstrap's weights sign-aligned to the original; Z = weight / "
            "bootstrap SE), two-sided normal p and Benjamini–Hochberg FDR over genes "
            "(Martins et al. 2022, §2.10). Sorted by z, descending.",
            "gene": {"Description": "Gene symbol"},
            "weight": {
                "Description": "PLS1 weight (unit-norm, scikit-learn x_weights_; "
                "proportional to the gene's Pearson correlation with the response)"
            },
            "z": {"Description": "weight / bootstrap standard error"},
            "p": {"Description": "Two-sided p of z under N(0, 1)"},
            "p_fdr": {"Description": "Benjamini–Hochberg adjusted p over all genes"},
            "rank": {"Description": "Rank by z (1 = most positive)"},
            "se": {"Description": "Bootstrap standard error of the weight"},
            "NumberOfBootstraps": pls.n_boot,
            "Note": boot_note,
        },
    )
    thr = float(settings.z_threshold)
    if settings.n_boot > 0:
        plus = gene_table.loc[gene_table.z > thr, "gene"].tolist()
        minus = gene_table.loc[gene_table.z < -thr].sort_values("z")["gene"].tolist()
    else:
        plus, minus = [], []
    for name, lst in (("desc-pls1plus_genes.txt", plus), ("desc-pls1minus_genes.txt", minus)):
        atomic_write_text(group_dir / name, "".join(f"{g}\n" for g in lst))
        files.append(group_dir / name)

    scores = pls.fit.scores[:, 0]
    emit_tsv(
        "desc-pls1_scores.tsv",
        pd.DataFrame({"region": list(DK_LEFT_REGIONS), "score": scores, "response": yv}),
        {
            "Description": "Regional PLS1 scores (z-scored expression times PLS1 weights), and the "
            "response map they were fitted to (Martins et al. 2022, §3.6, Fig. 6A).",
            "region": {"Description": "DK region label"},
            "score": {"Description": "PLS1 score"},
            "response": {"Description": "Response map value (before z-scoring)"},
        },
    )
    r, p_spin = pls1_score_correlation_null(X, yv, perms=perms)
    null_sizes = pls.null_list_size or {"n_null_maps": 0}
    n_maps = int(null_sizes["n_null_maps"])

    def _stat(values, q):
        return float(np.quantile(values, q)) if n_maps else None

    null_list_size = {
        "plus_median": _stat(null_sizes.get("plus"), 0.5),
        "plus_q95": _stat(null_sizes.get("plus"), 0.95),
        "minus_median": _stat(null_sizes.get("minus"), 0.5),
        "minus_q95": _stat(null_sizes.get("minus"), 0.95),
        "n_null_maps": n_maps,
    }

    def _fdr(median, observed):
        if median is None or observed == 0:
            return None
        return float(median) / observed

    stats_json = {
        "r": r,
        "p_spin": p_spin,
        "var_explained": float(pls.var_explained[0]),
        "p_perm": float(pls.p_perm_cumulative[0]),
        "perm_null": settings.perm_null,
        "p_shuffle": float(pls.p_shuffle[0]),
        "null_list_size": null_list_size,
        "empirical_fdr_plus": _fdr(null_list_size["plus_median"], len(plus)),
        "empirical_fdr_minus": _fdr(null_list_size["minus_median"], len(minus)),
        "n_genes": len(genes),
        "n_pls1_plus": len(plus),
        "n_pls1_minus": len(minus),
        "z_threshold": thr,
        "max_p_fdr_selected": float(np.nanmax(gene_table.loc[gene_table.z.abs() > thr, "p_fdr"]))
        if (plus or minus)
        else None,
        "n_spins": int(perms.shape[0]),
        "n_bootstraps": pls.n_boot,
        "n_degenerate_bootstraps": pls.extra.get("n_degenerate_bootstraps"),
        "Description": "Pearson correlation of PLS1 scores with the response (r) and its spin p: "
        "PLS1 is refitted to every spun response and the observed r is compared with the refitted "
        "ones, one-sided (r >= 0 by construction) (Martins et al. 2022, §3.6). r squared is PLS1's "
        "variance explained, so p_spin is also the spatial-null p of PLS1 (with all --n-spins "
        "rotations). p_perm: PLS1's variance explained against the null chosen with --perm-null "
        "(perm_null); p_shuffle: against random shuffles of the regions (the paper's test). "
        "null_list_size: sizes of the PLS1+ and PLS1- lists when n_null_maps spun response maps "
        "go through the same bootstrap resamples and the same |Z| threshold (median and 95th "
        "percentile); empirical_fdr_plus/minus = median null list size / observed list size, the "
        "share of each list expected without any association beyond spatial autocorrelation "
        "(n/a when the list is empty or no null maps ran; values >= 1: the list is no longer "
        "than on null maps).",
        "Note": None if perms.shape[0] else "spin test switched off (--n-spins 0): p_spin is n/a",
        "Exploratory": bool(not (np.isfinite(p_spin) and p_spin < 0.05)),
        **base_sidecar,
    }
    write_json(group_dir / "desc-pls1_stats.json", stats_json)
    files.append(group_dir / "desc-pls1_stats.json")
    if stats_json["Exploratory"]:
        LOGGER.warning(
            "transcriptomics: PLS1 does not pass the spatial null (%s); the gene lists and "
            "enrichment results are exploratory",
            f"p_spin = {p_spin:.3g} >= 0.05"
            if np.isfinite(p_spin)
            else "no spin test: --n-spins 0",
        )
    if n_maps and (plus or minus):
        LOGGER.info(
            "transcriptomics: %d PLS1+ / %d PLS1- genes; on %d spun maps the median list sizes "
            "are %g / %g",
            len(plus),
            len(minus),
            n_maps,
            null_list_size["plus_median"],
            null_list_size["minus_median"],
        )

    # ---------------------------------------------------------------- enrichment (§2.11–2.13)
    libraries = [enr.load_builtin_gene_sets("celltypes")]
    specs = list(DEFAULT_GENE_SET_LIBRARIES) if settings.gene_sets is None else settings.gene_sets
    for spec in specs:
        if str(spec).lower() == "none":
            continue
        libraries.append(enr.resolve_gene_sets(spec))
    t_start = time.perf_counter()
    used_names: set[str] = set()
    library_outputs = {}
    ranking = gene_table["gene"].tolist()
    spatial = None
    if settings.enrichment_null == "spin":
        if perms.shape[0] == 0:
            LOGGER.warning("--enrichment-null spin needs --n-spins > 0; p_spatial is n/a")
        else:
            spatial = enr.SpatialNull(X, genes, yv, perms=perms)
    spatial_note = (
        None
        if spatial is not None
        else "spatial-null enrichment switched off (--enrichment-null none or --n-spins 0): "
        "p_spatial and p_spatial_fdr are n/a"
    )
    for lib in libraries:
        name = _library_file_name(lib.name)
        while name in used_names:
            name += "x"
        used_names.add(name)
        table = enr.pls_list_enrichment(plus, minus, lib.sets, background=genes)
        categories = spatial.categories(lib.sets) if spatial is not None else None
        table = enr.add_spatial_pvalues(table, categories)
        no_overlap = table.loc[(table.direction == "PLS1+") & (table.set_size == 0), "gene_set"]
        lib_sidecar = {
            "Description": f"Enrichment of PLS1+ and PLS1- in {lib.description or lib.name}. "
            "p_spatial (the default test): the ensemble approach of Fulcher et al. 2021 "
            "(Nat Commun 12:2669): a set's score is the mean Spearman correlation of its genes "
            "with the response map, compared with the same score on spun maps (the same spins "
            "as the PLS spin test); PLS1+ rows test the upper tail (genes higher where the map "
            "is higher), PLS1- rows the lower tail; Benjamini-Hochberg FDR over all tested rows "
            "of this library. p and p_fdr: the paper's test, Fisher's exact test (one-sided, "
            "greater; as R GeneOverlap) of the PLS1+/PLS1- lists, background = the genes of the "
            "expression matrix, Benjamini-Hochberg FDR over gene sets within each direction "
            "(Martins et al. 2022, §2.12-2.13); it ignores spatial autocorrelation and gene-gene "
            "co-expression and gives false positives on null maps (Fulcher et al. 2021).",
            "GeneSets": lib.source,
            "Licence": lib.licence or None,
            "gene_set": {"Description": "Gene-set name"},
            "direction": {"Description": "PLS1+ (Z > threshold) or PLS1- (Z < -threshold)"},
            "overlap": {"Description": "Genes in both the list and the set"},
            "set_size": {"Description": "Genes of the set in the background"},
            "odds_ratio": {
                "Description": "Conditional maximum-likelihood odds ratio (R "
                "fisher.test, as GeneOverlap reports)"
            },
            "odds_ratio_sample": {"Description": "Sample odds ratio ad/bc"},
            "p": {
                "Description": "One-sided Fisher p (overlap larger than expected); the paper's test"
            },
            "p_fdr": {
                "Description": "Benjamini-Hochberg adjusted Fisher p within the direction "
                "(the paper's test)"
            },
            "p_spatial": {
                "Description": "Spatial-null p of the set's category score (mean Spearman "
                "correlation of its genes with the map) against spun maps, one-sided in the "
                "row's direction: (1 + #{null >= obs}) / (1 + n_spins) for PLS1+, <= for "
                "PLS1-; n/a when no gene of the set is in the expression matrix"
            },
            "p_spatial_fdr": {
                "Description": "Benjamini-Hochberg adjusted p_spatial over all tested rows "
                "of this library"
            },
            "category_score": {
                "Description": "Mean Spearman correlation of the set's genes with the map"
            },
            "SpatialNull": "spin permutations of the response map (Alexander-Bloch et al. "
            "2018); category score = mean gene-map Spearman correlation (Fulcher et al. 2021)"
            if spatial is not None
            else None,
            "NumberOfSpins": spatial.n_spins if spatial is not None else 0,
            "SpatialNote": spatial_note,
            "SetsWithoutOverlapWithBackground": no_overlap.tolist(),
            "Note": None
            if (plus or minus)
            else "PLS1+ and PLS1- are empty: the Fisher tests are not run (p, p_fdr n/a); "
            "p_spatial does not depend on the lists",
        }
        emit_tsv(f"desc-enrichment_{name}.tsv", table, lib_sidecar)
        library_outputs[name] = lib.source
        if (
            settings.rank_test
            and settings.n_perm > 0
            and settings.n_boot > 0
            and (len(lib.sets) <= RANK_TEST_MAX_SETS)
        ):
            rt = enr.rank_enrichment(ranking, lib.sets, n_perm=settings.n_perm, seed=rank_seed)
            emit_tsv(
                f"desc-rankenrichment_{name}.tsv",
                rt,
                {
                    "Description": "Median rank of each set's genes in the PLS1 ranking (by Z) "
                    "against random gene sets of the same size (the reference MATLAB code's "
                    "test). p_top: set concentrated among positive-Z genes; p_bottom: among "
                    "negative-Z genes.",
                    "GeneSets": lib.source,
                    "NumberOfRandomSets": settings.n_perm,
                },
            )
        if categories is not None:
            st = categories[["gene_set", "set_size", "score", "null_mean", "null_sd"]].copy()
            p_two = categories["p_two_sided"].to_numpy(dtype=float)
            p_two = np.where(categories["set_size"].to_numpy() >= 5, p_two, np.nan)
            st["p_spin"] = p_two
            st["p_fdr"] = enr.fdr_bh(p_two)
            emit_tsv(
                f"desc-spinenrichment_{name}.tsv",
                st,
                {
                    "Description": "Gene-category enrichment against spatially "
                    "autocorrelated nulls (Fulcher et al. 2021, Nat Commun 12:2669): "
                    "category score = mean Spearman correlation of its genes with the map; "
                    "two-sided p against the same score for spun maps; BH-FDR over tested "
                    "categories (at least 5 genes in the matrix). The one-sided p of each "
                    "direction is p_spatial in desc-enrichment_" + name + ".tsv.",
                    "GeneSets": lib.source,
                    "NumberOfSpins": int(perms.shape[0]),
                },
            )

    LOGGER.info(
        "transcriptomics: enrichment of %d libraries (%s) in %.1f s",
        len(libraries),
        "spatial null and Fisher" if spatial is not None else "Fisher",
        time.perf_counter() - t_start,
    )

    # ---------------------------------------------------------------- STRING (§2.11)
    ppi_rows = []
    ppi_note = None
    if settings.string_links is None:
        ppi_note = (
            "no STRING file given (--string-links): protein networks not computed. Download "
            "9606.protein.links.detailed.v12.0.txt.gz and 9606.protein.info.v12.0.txt.gz from "
            "https://string-db.org/cgi/download?species_text=Homo+sapiens"
        )
        for direction in ("PLS1+", "PLS1-"):
            ppi_rows.append(
                {
                    "direction": direction,
                    "nodes": np.nan,
                    "edges": np.nan,
                    "expected_edges": np.nan,
                    "ppi_p": np.nan,
                    "note": ppi_note,
                }
            )
        ppi_meta = {}
    else:
        edges, ppi_meta = enr.read_string_links(
            settings.string_links, info=settings.string_info, min_score=400
        )
        for direction, lst, tag in (("PLS1+", plus, "pls1plus"), ("PLS1-", minus, "pls1minus")):
            net = enr.string_network(lst, edges, universe=genes)
            ppi_rows.append(
                {
                    "direction": direction,
                    "nodes": net["nodes"],
                    "edges": net["edges"],
                    "expected_edges": net["expected_edges"],
                    "ppi_p": net["ppi_p"],
                    "note": ppi_meta.get("note", ""),
                }
            )
            emit_tsv(
                f"desc-ppi_{tag}_edges.tsv",
                net["edge_list"],
                {
                    "Description": f"STRING interactions among {direction} genes at combined "
                    "score >= 400 (0.4)",
                    "gene1": {"Description": "Gene symbol"},
                    "gene2": {"Description": "Gene symbol"},
                    "score": {"Description": "Combined score (0-1000)"},
                },
            )
    emit_tsv(
        "desc-ppi_network.tsv",
        pd.DataFrame(
            ppi_rows, columns=["direction", "nodes", "edges", "expected_edges", "ppi_p", "note"]
        ),
        {
            "Description": "STRING protein networks of PLS1+ and PLS1- at combined score >= 0.4 "
            "without text mining (Martins et al. 2022, §2.11, §3.7): nodes, edges, expected edges "
            "(degree-preserving expectation within the background genes) and the PPI-enrichment p "
            "(Poisson upper tail).",
            "StringLinks": str(settings.string_links) if settings.string_links else None,
            "StringInfo": str(settings.string_info) if settings.string_info else None,
            "TextMiningExcluded": ppi_meta.get("textmining_excluded"),
            "Note": ppi_note,
        },
    )
    methods = _methods_text(
        settings=settings,
        n_genes=len(genes),
        n_null=n_null,
        n_spins=int(perms.shape[0]),
        n_spin_null=pls.n_spin,
        n_shuffle_null=pls.n_shuffle,
        n_null_maps=n_maps,
        spatial_enrichment=spatial is not None,
        libraries=[lib.name for lib in libraries],
        seed=seed,
        versions=versions,
    )
    atomic_write_text(group_dir / "desc-transcriptomics_methods.md", methods)
    files.append(group_dir / "desc-transcriptomics_methods.md")
    LOGGER.info(
        "transcriptomics: PLS1 explains %.1f %% (p_perm %s), r = %.3f (p_spin %s); "
        "%d PLS1+ and %d PLS1- genes",
        100 * pls.var_explained[0],
        "n/a" if not np.isfinite(pls.p_perm_cumulative[0]) else f"{pls.p_perm_cumulative[0]:.3g}",
        r,
        "n/a" if not np.isfinite(p_spin) else f"{p_spin:.3g}",
        len(plus),
        len(minus),
    )
    return {
        "files": files,
        "pls1_plus": plus,
        "pls1_minus": minus,
        "stats": {k: stats_json[k] for k in ("r", "p_spin", "var_explained", "p_perm")},
        "seed": seed,
        "libraries": library_outputs,
    }


def _methods_text(
    *,
    settings: TranscriptomicsSettings,
    n_genes: int,
    n_null: int,
    n_spins: int,
    libraries: list[str],
    seed: int,
    versions: dict,
    n_spin_null: int | None = None,
    n_shuffle_null: int | None = None,
    n_null_maps: int = 0,
    spatial_enrichment: bool = False,
) -> str:
    """A methods paragraph users can paste (with references), like abagen's report.

    It names the tests that were run: the spatial (spin) null and the paper's shuffle null of
    the PLS components (and which one is reported as ``p_perm``), the null list sizes, and the
    spatial-null enrichment beside the paper's Fisher tests.
    """
    if settings.ahba_dir is not None:
        expr = (
            "Regional gene expression was computed from the Allen Human Brain Atlas microarray "
            f"data [H2012] with abagen {versions.get('abagen')} [M2021] with the settings of "
            "[M2022] (see desc-abagen_methods.txt for abagen's own report)"
        )
    elif settings.expression_file is not None:
        expr = f"Regional gene expression was read from a user-supplied table ({settings.expression_file})"
    else:
        expr = (
            "Regional gene expression was taken from the Allen Human Brain Atlas matrix of "
            "[M2022] (abagen [M2021]: probe reannotation [A2019], intensity-based filtering at "
            "0.5, differential-stability probe selection, 2 mm tolerance with hemisphere and "
            "cortex constraints, scaled robust sigmoid normalisation, averaged over the six "
            "donors [H2012])"
        )
    if n_spin_null is None:  # callers of the first version: one null
        n_spin_null = n_null if settings.perm_null == "spin" else 0
        n_shuffle_null = n_null if settings.perm_null == "shuffle" else 0
    nulls = []
    if n_spin_null:
        nulls.append(
            f"{n_spin_null} spin permutations of the response [AB2018], a spatial null that "
            "keeps the map's spatial autocorrelation [MM2021, W2022]"
            + (" (reported as p_perm)" if settings.perm_null == "spin" else "")
        )
    if n_shuffle_null:
        nulls.append(
            f"{n_shuffle_null} random permutations of the response across regions, the test of "
            "[M2022]" + (" (reported as p_perm)" if settings.perm_null == "shuffle" else "")
        )
    lines = [
        "# Imaging transcriptomics: methods",
        "",
        f"{expr}, for the 34 left-hemisphere Desikan–Killiany cortical regions "
        f"({n_genes} genes). Partial least squares (PLS) regression [M2022, W2016] related the "
        "z-scored expression of all genes (predictors) to the z-scored regional response map. "
        f"The variance of the response explained by components 1–{settings.n_components} was "
        + (
            "tested against " + " and against ".join(nulls) + " (PLS refitted each time). "
            if nulls
            else "reported without a permutation test. "
        )
        + (
            f"The error of each gene's PLS1 weight was estimated from {settings.n_boot} bootstrap "
            "resamples of the regions (each sign-aligned to the original weights); Z = weight / "
            "bootstrap standard error, two-sided normal p-values were corrected with the "
            f"Benjamini–Hochberg FDR, and genes with Z > {settings.z_threshold:g} (PLS1+) and "
            f"Z < −{settings.z_threshold:g} (PLS1−) were selected. "
            if settings.n_boot
            else "No bootstrap was run, so no gene lists were selected. "
        )
        + (
            f"To estimate how many of these genes spatial autocorrelation alone would select, "
            f"{n_null_maps} spun response maps went through the same bootstrap resamples and "
            "the same threshold; the median null list size over the observed list size is "
            "reported as an empirical false-discovery estimate [F2021]. "
            if n_null_maps and settings.n_boot
            else ""
        )
        + (
            "The correlation of PLS1 scores with the response was tested against "
            f"{n_spins} spin permutations [AB2018], refitting PLS1 to every spun map; when its "
            "p was 0.05 or more, the gene lists and enrichment results are reported as "
            "exploratory. "
            if n_spins
            else ""
        )
        + (
            "Every gene set was tested against a spatial null by the ensemble approach of "
            "[F2021]: a set's score was the mean Spearman correlation of its genes with the "
            f"response map, compared with the same score over the {n_spins} spun maps "
            "(one-sided: upper tail for PLS1+, lower tail for PLS1−), with Benjamini–Hochberg "
            "FDR over the sets of each library ("
            + ", ".join(libraries)
            + "). Beside it, as in the paper, "
            if spatial_enrichment
            else "As in the paper, "
        )
        + "PLS1+ and PLS1− were tested for over-representation of gene sets ("
        + ", ".join(libraries)
        + ") with one-sided Fisher's exact tests (conditional maximum-likelihood odds ratios, as "
        "GeneOverlap) against the genes of the expression matrix as background, with "
        "Benjamini–Hochberg FDR across sets [M2022, S2020]"
        + (
            "; these tests ignore spatial autocorrelation and gene–gene co-expression and are "
            "prone to false positives [F2021]"
            if spatial_enrichment
            else ""
        )
        + f". Analyses used bids-ms {versions['bids-ms']} (seed {seed}).",
        "",
        "## References",
        "- [M2022] Martins D, et al. (2022) PAIN 163:e759–e773. doi:10.1097/j.pain.0000000000002480",
        "- [H2012] Hawrylycz MJ, et al. (2012) Nature 489:391–399.",
        "- [M2021] Markello RD, et al. (2021) eLife 10:e72129 (abagen).",
        "- [A2019] Arnatkevičiūtė A, Fulcher BD, Fornito A (2019) NeuroImage 189:353–367.",
        "- [W2016] Whitaker KJ, Vértes PE, et al. (2016) PNAS 113:9105–9110.",
        "- [AB2018] Alexander-Bloch AF, et al. (2018) NeuroImage 178:540–551.",
        "- [MM2021] Markello RD, Misic B (2021) NeuroImage 236:118052.",
        "- [W2022] Wei Y, et al. (2022) Hum Brain Mapp 43:885–901.",
        "- [S2020] Seidlitz J, et al. (2020) Nat Commun 11:3358.",
        "- [F2021] Fulcher BD, Arnatkevičiūtė A, Fornito A (2021) Nat Commun 12:2669.",
        "",
    ]
    return "\n".join(lines)


def run_response_map(
    settings: TranscriptomicsSettings, *, output_dir: Path, seed: int | None = None
) -> dict:
    """``--response-map`` mode: the transcriptomic stage without participant data.

    Reads ``settings.response_map``, writes ``dataset_description.json`` if needed, and runs
    :func:`run_transcriptomics` into ``<output_dir>/group``.
    """
    from ..io.derivatives import ensure_dataset_description

    if settings.response_map is None:
        raise UsageError("--response-map is required for this mode")
    ensure_dataset_description(output_dir)
    return run_transcriptomics(
        None, settings=settings, group_dir=Path(output_dir) / "group", spins_seed=seed
    )
