"""The steps of the transcriptomic stage, one function per step of Martins et al. 2022.

:func:`bids_ms.levels.transcriptomics.run_transcriptomics` calls them in the paper's order:
the expression matrix (§2.9), PLS with its permutation and spin nulls and the bootstrap of the
PLS1 weights (§2.10), the PLS1+ / PLS1− gene lists and their sizes on spun maps (§2.10, §3.6),
the enrichment of every gene-set library (§2.12–2.13), the STRING networks (§2.11), and the
methods text. Each step computes with the science modules (:mod:`bids_ms.pls`,
:mod:`bids_ms.enrichment`) and writes its outputs through :class:`~bids_ms.io.derivatives.OutputRecorder`, so that every
table gets its JSON sidecar and every write goes through :mod:`bids_ms.io.derivatives`.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import numpy as np
import pandas as pd

from .. import enrichment as enr
from ..atlas import DK_LEFT_REGIONS
from ..errors import UsageError
from ..io import genesets
from ..io.derivatives import OutputRecorder
from ..pls import PLSAnalysis, pls1_score_correlation_null, run_pls
from ..reports.citation import methods_markdown, methods_text

LOGGER = logging.getLogger("bids_ms")

#: Libraries with more sets than this skip the (slower) median-rank test.
RANK_TEST_MAX_SETS = 1000
#: The file the methods text of the stage is written to, in the group folder.
METHODS_FILE = "desc-transcriptomics_methods.md"


# --------------------------------------------------------------------------- the response map


def read_response(
    response: pd.Series | None, *, settings: Any, description: str | None
) -> tuple[pd.Series | np.ndarray, str, str]:
    """The response, the name of its source (for error messages) and its description.

    ``None`` reads ``settings.response_map`` (``--response-map``).
    """
    if response is None:
        if settings.response_map is None:
            raise UsageError("no response map: give --response-map or run the case-control stage")
        from ..io.refmaps import read_region_map

        response = read_region_map(settings.response_map)
        description = description or f"--response-map {settings.response_map}"
        source = str(settings.response_map)
    else:
        source = description or "response map"
    description = description or str(getattr(response, "name", None) or "response map")
    return response, source, description


# --------------------------------------------------------------------------- PLS (§2.10)


def fit_pls(
    expression: pd.DataFrame, y: pd.Series, *, settings: Any, perms: np.ndarray, seed: int
) -> PLSAnalysis:
    """PLS of the response on expression, its nulls, the bootstrap and the null list sizes.

    Both nulls of the components' variance explained are computed: the first ``n_perm`` spins
    keep the map's spatial autocorrelation (the default ``p_perm``), shuffles reproduce the
    paper (Martins et al. 2022, §2.10). The first ``n_null_maps`` spins go through the same
    bootstrap for the null list sizes. ``seed`` is the run's ``pls`` stream.
    """
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
        expression.to_numpy(dtype=float),
        y.to_numpy(dtype=float),
        n_components=settings.n_components,
        n_perm=settings.n_perm,
        spin_perms=spin_used,
        perm_null=settings.perm_null,
        n_boot=settings.n_boot,
        seed=seed,
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
    return pls


def write_components(out: OutputRecorder, pls: PLSAnalysis, *, settings: Any) -> None:
    """``desc-pls_components.tsv``: variance explained by components 1..n and its nulls (§2.10)."""
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
    n_null = pls.n_perm
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
    out.tsv(
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
            "Null": spin_desc if settings.perm_null == "spin" else shuffle_desc,
            "SpinNull": spin_desc,
            "ShuffleNull": shuffle_desc,
            "NumberOfSpins": pls.n_spin,
            "NumberOfShuffles": pls.n_shuffle,
            "NumberOfNullResponses": n_null,
            "Note": None
            if n_null > 0
            else (
                "permutation test switched off (--n-perm 0 or --n-spins 0 with --perm-null "
                "spin): p_perm is n/a"
            ),
        },
    )


def write_gene_weights(
    out: OutputRecorder, pls: PLSAnalysis, *, genes: list[str], settings: Any
) -> pd.DataFrame:
    """``desc-pls1_genes.tsv``: PLS1 weights with bootstrap Z, p and FDR, sorted by Z (§2.10).

    Without bootstrap (all Z n/a) the genes are sorted by weight.
    """
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
    out.tsv(
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
            "Note": None
            if settings.n_boot > 0
            else (
                "bootstrap switched off (--n-boot 0): z, p, p_fdr are n/a; genes ranked by "
                "weight; PLS1+/PLS1- lists are empty"
            ),
        },
    )
    return gene_table


def write_gene_lists(
    out: OutputRecorder, gene_table: pd.DataFrame, *, settings: Any
) -> tuple[list[str], list[str]]:
    """PLS1+ (Z > threshold, by Z descending) and PLS1− (Z < −threshold, by Z ascending) (§2.10).

    Both are empty without bootstrap. Written one gene per line.
    """
    thr = float(settings.z_threshold)
    if settings.n_boot > 0:
        plus = gene_table.loc[gene_table.z > thr, "gene"].tolist()
        minus = gene_table.loc[gene_table.z < -thr].sort_values("z")["gene"].tolist()
    else:
        plus, minus = [], []
    out.text("desc-pls1plus_genes.txt", "".join(f"{g}\n" for g in plus))
    out.text("desc-pls1minus_genes.txt", "".join(f"{g}\n" for g in minus))
    return plus, minus


def write_scores(out: OutputRecorder, pls: PLSAnalysis, y: pd.Series) -> None:
    """``desc-pls1_scores.tsv``: regional PLS1 scores beside the response (§3.6, Fig. 6A)."""
    out.tsv(
        "desc-pls1_scores.tsv",
        pd.DataFrame(
            {
                "region": list(DK_LEFT_REGIONS),
                "score": pls.fit.scores[:, 0],
                "response": y.to_numpy(dtype=float),
            }
        ),
        {
            "Description": "Regional PLS1 scores (z-scored expression times PLS1 weights), and the "
            "response map they were fitted to (Martins et al. 2022, §3.6, Fig. 6A).",
            "region": {"Description": "DK region label"},
            "score": {"Description": "PLS1 score"},
            "response": {"Description": "Response map value (before z-scoring)"},
        },
    )


# --------------------------------------------------------------------------- null list sizes


def null_list_sizes(pls: PLSAnalysis) -> dict:
    """Median and 95th percentile of the PLS1+ / PLS1− sizes on spun maps (None: no maps).

    The lists' spatial null: spun response maps put through the same bootstrap and threshold
    as the observed map (Fulcher et al. 2021; the lists of Martins et al. 2022, §2.10).
    """
    null_sizes = pls.null_list_size or {"n_null_maps": 0}
    n_maps = int(null_sizes["n_null_maps"])

    def _stat(values, q):
        return float(np.quantile(values, q)) if n_maps else None

    return {
        "plus_median": _stat(null_sizes.get("plus"), 0.5),
        "plus_q95": _stat(null_sizes.get("plus"), 0.95),
        "minus_median": _stat(null_sizes.get("minus"), 0.5),
        "minus_q95": _stat(null_sizes.get("minus"), 0.95),
        "n_null_maps": n_maps,
    }


def _empirical_fdr(median: float | None, observed: int) -> float | None:
    """Median null list size over the observed list size (Fulcher et al. 2021)."""
    if median is None or observed == 0:
        return None
    return float(median) / observed


PLS1_STATS_DESCRIPTION = (
    "Pearson correlation of PLS1 scores with the response (r) and its spin p: "
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
    "than on null maps)."
)


def write_pls1_stats(
    out: OutputRecorder,
    pls: PLSAnalysis,
    *,
    expression: pd.DataFrame,
    y: pd.Series,
    perms: np.ndarray,
    gene_table: pd.DataFrame,
    lists: tuple[list[str], list[str]],
    settings: Any,
) -> dict:
    """``desc-pls1_stats.json``: PLS1's spin test and the null list sizes (§3.6, §2.10)."""
    plus, minus = lists
    thr = float(settings.z_threshold)
    r, p_spin = pls1_score_correlation_null(
        expression.to_numpy(dtype=float), y.to_numpy(dtype=float), perms=perms
    )
    sizes = null_list_sizes(pls)
    stats = {
        "r": r,
        "p_spin": p_spin,
        "var_explained": float(pls.var_explained[0]),
        "p_perm": float(pls.p_perm_cumulative[0]),
        "perm_null": settings.perm_null,
        "p_shuffle": float(pls.p_shuffle[0]),
        "null_list_size": sizes,
        "empirical_fdr_plus": _empirical_fdr(sizes["plus_median"], len(plus)),
        "empirical_fdr_minus": _empirical_fdr(sizes["minus_median"], len(minus)),
        "n_genes": int(expression.shape[1]),
        "n_pls1_plus": len(plus),
        "n_pls1_minus": len(minus),
        "z_threshold": thr,
        "max_p_fdr_selected": float(np.nanmax(gene_table.loc[gene_table.z.abs() > thr, "p_fdr"]))
        if (plus or minus)
        else None,
        "n_spins": int(perms.shape[0]),
        "n_bootstraps": pls.n_boot,
        "n_degenerate_bootstraps": pls.extra.get("n_degenerate_bootstraps"),
        "Description": PLS1_STATS_DESCRIPTION,
        "Note": None if perms.shape[0] else "spin test switched off (--n-spins 0): p_spin is n/a",
        "Exploratory": bool(not (np.isfinite(p_spin) and p_spin < 0.05)),
        **out.base_sidecar,
    }
    out.json("desc-pls1_stats.json", stats)
    if stats["Exploratory"]:
        LOGGER.warning(
            "transcriptomics: PLS1 does not pass the spatial null (%s); the gene lists and "
            "enrichment results are exploratory",
            f"p_spin = {p_spin:.3g} >= 0.05"
            if np.isfinite(p_spin)
            else "no spin test: --n-spins 0",
        )
    if sizes["n_null_maps"] and (plus or minus):
        LOGGER.info(
            "transcriptomics: %d PLS1+ / %d PLS1- genes; on %d spun maps the median list sizes "
            "are %g / %g",
            len(plus),
            len(minus),
            sizes["n_null_maps"],
            sizes["plus_median"],
            sizes["minus_median"],
        )
    return stats


# --------------------------------------------------------------------------- enrichment (§2.12–2.13)


def gene_set_libraries(settings: Any, *, defaults: tuple[str, ...]) -> list[genesets.GeneSets]:
    """Cell types (always), then the settings' libraries (``None``: ``defaults``; ``none``: skip).

    The cell types of Seidlitz et al. 2020 and the gene-set libraries of Martins et al. 2022,
    §2.12–2.13.
    """
    libraries = [genesets.load_builtin_gene_sets("celltypes")]
    specs = list(defaults) if settings.gene_sets is None else settings.gene_sets
    for spec in specs:
        if str(spec).lower() == "none":
            continue
        libraries.append(genesets.resolve_gene_sets(spec))
    return libraries


def library_file_names(libraries: list[genesets.GeneSets]) -> list[str]:
    """The ``<name>`` of each library's ``desc-enrichment_<name>.tsv``, made unique."""
    used: set[str] = set()
    names = []
    for lib in libraries:
        name = re.sub(r"[^A-Za-z0-9]+", "", lib.name) or "genesets"
        while name in used:
            name += "x"
        used.add(name)
        names.append(name)
    return names


def spatial_null(
    expression: pd.DataFrame, y: pd.Series, *, perms: np.ndarray, settings: Any
) -> enr.SpatialNull | None:
    """The spun maps every gene set is tested against (Fulcher et al. 2021); None when off."""
    if settings.enrichment_null != "spin":
        return None
    if perms.shape[0] == 0:
        LOGGER.warning("--enrichment-null spin needs --n-spins > 0; p_spatial is n/a")
        return None
    return enr.SpatialNull(
        expression.to_numpy(dtype=float),
        list(expression.columns),
        y.to_numpy(dtype=float),
        perms=perms,
    )


def _enrichment_sidecar(lib: genesets.GeneSets, spatial: enr.SpatialNull | None) -> dict:
    return {
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
        "p": {"Description": "One-sided Fisher p (overlap larger than expected); the paper's test"},
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
        "SpatialNote": None
        if spatial is not None
        else "spatial-null enrichment switched off (--enrichment-null none or --n-spins 0): "
        "p_spatial and p_spatial_fdr are n/a",
    }


def enrich_library(
    out: OutputRecorder,
    lib: genesets.GeneSets,
    *,
    name: str,
    lists: tuple[list[str], list[str]],
    genes: list[str],
    spatial: enr.SpatialNull | None,
) -> pd.DataFrame | None:
    """``desc-enrichment_<name>.tsv``: Fisher tests of the lists beside the spatial-null p.

    The paper's one-sided Fisher tests of PLS1+ and PLS1− against the genes of the matrix
    (§2.12–2.13), beside the ensemble spatial null of Fulcher et al. 2021 when it runs.
    Returns the categories' spatial-null scores (None without a spatial null).
    """
    plus, minus = lists
    table = enr.pls_list_enrichment(plus, minus, lib.sets, background=genes)
    categories = spatial.categories(lib.sets) if spatial is not None else None
    table = enr.add_spatial_pvalues(table, categories)
    no_overlap = table.loc[(table.direction == "PLS1+") & (table.set_size == 0), "gene_set"]
    sidecar = _enrichment_sidecar(lib, spatial)
    sidecar["SetsWithoutOverlapWithBackground"] = no_overlap.tolist()
    sidecar["Note"] = (
        None
        if (plus or minus)
        else "PLS1+ and PLS1- are empty: the Fisher tests are not run (p, p_fdr n/a); "
        "p_spatial does not depend on the lists"
    )
    out.tsv(f"desc-enrichment_{name}.tsv", table, sidecar)
    return categories


def rank_enrichment(
    out: OutputRecorder,
    lib: genesets.GeneSets,
    *,
    name: str,
    ranking: list[str],
    settings: Any,
    seed: int,
) -> None:
    """``desc-rankenrichment_<name>.tsv``: median rank of each set in the PLS1 ranking.

    The reference MATLAB code's test, against random sets of the same size; run with
    permutations and bootstrap on, for libraries of at most :data:`RANK_TEST_MAX_SETS` sets.
    ``seed`` is the run's ``rank_enrichment`` stream.
    """
    if not (
        settings.rank_test
        and settings.n_perm > 0
        and settings.n_boot > 0
        and len(lib.sets) <= RANK_TEST_MAX_SETS
    ):
        return
    rt = enr.rank_enrichment(ranking, lib.sets, n_perm=settings.n_perm, seed=seed)
    out.tsv(
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


def spin_enrichment(
    out: OutputRecorder,
    lib: genesets.GeneSets,
    *,
    name: str,
    categories: pd.DataFrame | None,
    n_spins: int,
) -> None:
    """``desc-spinenrichment_<name>.tsv``: two-sided spatial-null p of each category.

    Fulcher et al. 2021: categories of at least 5 genes in the matrix, BH-FDR over them.
    """
    if categories is None:
        return
    st = categories[["gene_set", "set_size", "score", "null_mean", "null_sd"]].copy()
    p_two = categories["p_two_sided"].to_numpy(dtype=float)
    p_two = np.where(categories["set_size"].to_numpy() >= 5, p_two, np.nan)
    st["p_spin"] = p_two
    st["p_fdr"] = enr.fdr_bh(p_two)
    out.tsv(
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
            "NumberOfSpins": int(n_spins),
        },
    )


# --------------------------------------------------------------------------- STRING (§2.11)

STRING_DOWNLOAD_NOTE = (
    "no STRING file given (--string-links): protein networks not computed. Download "
    "9606.protein.links.detailed.v12.0.txt.gz and 9606.protein.info.v12.0.txt.gz from "
    "https://string-db.org/cgi/download?species_text=Homo+sapiens"
)
PPI_COLUMNS = ["direction", "nodes", "edges", "expected_edges", "ppi_p", "note"]


def protein_networks(
    out: OutputRecorder, *, lists: tuple[list[str], list[str]], genes: list[str], settings: Any
) -> None:
    """``desc-ppi_network.tsv`` (and the edge lists): STRING networks of PLS1+ and PLS1−.

    Combined score >= 400 without text mining, PPI-enrichment p within the background genes
    (Martins et al. 2022, §2.11, §3.7). Without ``--string-links`` the rows say how to get them.
    """
    rows = []
    meta: dict = {}
    note = None
    if settings.string_links is None:
        note = STRING_DOWNLOAD_NOTE
        empty = dict.fromkeys(("nodes", "edges", "expected_edges", "ppi_p"), np.nan)
        rows = [{"direction": d, **empty, "note": note} for d in ("PLS1+", "PLS1-")]
    else:
        edges, meta = genesets.read_string_links(
            settings.string_links, info=settings.string_info, min_score=400
        )
        for direction, lst, tag in zip(
            ("PLS1+", "PLS1-"), lists, ("pls1plus", "pls1minus"), strict=True
        ):
            net = enr.string_network(lst, edges, universe=genes)
            row = {"direction": direction, **{k: net[k] for k in PPI_COLUMNS[1:5]}}
            rows.append({**row, "note": meta.get("note", "")})
            out.tsv(
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
    out.tsv(
        "desc-ppi_network.tsv",
        pd.DataFrame(rows, columns=PPI_COLUMNS),
        {
            "Description": "STRING protein networks of PLS1+ and PLS1- at combined score >= 0.4 "
            "without text mining (Martins et al. 2022, §2.11, §3.7): nodes, edges, expected edges "
            "(degree-preserving expectation within the background genes) and the PPI-enrichment p "
            "(Poisson upper tail).",
            "StringLinks": str(settings.string_links) if settings.string_links else None,
            "StringInfo": str(settings.string_info) if settings.string_info else None,
            "TextMiningExcluded": meta.get("textmining_excluded"),
            "Note": note,
        },
    )


# --------------------------------------------------------------------------- methods


def write_methods(out: OutputRecorder, *, library_names: list[str]) -> str:
    """The stage's methods text, from the sidecars just written, as the group report writes it.

    The paragraphs are :func:`bids_ms.reports.citation.methods_text`'s "Imaging
    transcriptomics" and "Enrichment", with the references in its one style.
    """
    stages = {
        "pls": out.sidecars["desc-pls1_stats.json"],
        "pls_components": out.sidecars["desc-pls_components.tsv"],
        "celltypes": out.sidecars.get("desc-enrichment_celltypes.tsv"),
        "genesets": {
            name: out.sidecars[f"desc-enrichment_{name}.tsv"]
            for name in sorted(library_names)
            if name != "celltypes"
        },
        "ppi": out.sidecars.get("desc-ppi_network.tsv"),
    }
    methods = methods_text(participants=None, group=None, stages=stages)
    text = methods_markdown(methods, title="Imaging transcriptomics: methods")
    out.text(METHODS_FILE, text)
    return text
