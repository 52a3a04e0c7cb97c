"""The transcriptomic stage of the group level (Martins et al. 2022, §2.9–2.13, §3.6–3.9).

Given a response map on the 34 left-hemisphere DK cortical regions (the case–control t-map, PC1 of
several cohorts, or a user's ``--response-map``), :func:`run_transcriptomics` runs the paper's
steps in order, each a function of :mod:`bids_ms.levels.transcriptomics_steps`:

1. the expression matrix (§2.9): bundled AHBA matrix, ``--ahba-dir`` via abagen, or
   ``--expression-file`` (:func:`load_expression`);
2. PLS (§2.10, :mod:`bids_ms.pls`): variance explained by components 1..n with its p against
   spin permutations (the default ``p_perm``) and against shuffles (the paper's), PLS1 weights
   with bootstrap Z, p and FDR, the PLS1+ / PLS1− lists;
3. the lists' spatial null and PLS1's spin test (§3.6): list sizes of spun maps put through
   the same bootstrap, PLS1 scores and their correlation with the response with a spin p;
4. enrichment (§2.12–2.13, :mod:`bids_ms.enrichment`), per library (cell types and every
   gene-set library): the spatial-null p of Fulcher et al. 2021 (the default test) beside the
   paper's Fisher tests (as GeneOverlap), and the median-rank test;
5. STRING networks of the lists (§2.11);
6. the methods text of what ran (:func:`bids_ms.reports.citation.methods_text`).

Every output goes under ``group_dir``, each table with a JSON sidecar. The spins are the run's
(:class:`bids_ms.spins.SpinSet`, shared with the group level); PLS and the median-rank test
draw from the ``pls`` and ``rank_enrichment`` streams of the run's seed (:mod:`bids_ms.config`).

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
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..atlas import DK_LEFT_REGIONS
from ..config import DEFAULT_GENE_SET_LIBRARIES, TranscriptomicsSettings, resolve_seed, stream_seed
from ..errors import InputDataError, UsageError
from ..io.derivatives import OutputRecorder
from ..io.expression import (
    ahba_expression,
    canonical_region,
    expression_digest,
    load_default_expression,
    read_expression_file,
    select_regions,
)

if TYPE_CHECKING:
    from ..spins import SpinSet

__all__ = [
    "TranscriptomicsSettings",
    "DEFAULT_GENE_SET_LIBRARIES",
    "check_response",
    "load_expression",
    "run_transcriptomics",
    "run_response_map",
]

LOGGER = logging.getLogger("bids_ms")


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
    """The expression matrix of the settings' source, with a description for the sidecars.

    The 34 left-hemisphere DK regions of AHBA expression (Martins et al. 2022, §2.9): the
    bundled matrix, ``--ahba-dir`` processed with abagen, or ``--expression-file``.
    """
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


def run_transcriptomics(
    response: pd.Series | None,
    *,
    settings: TranscriptomicsSettings,
    group_dir: Path,
    seed: int,
    spins: SpinSet,
    description: str | None = None,
) -> dict:
    """Run the transcriptomic stage on a response map and write its outputs.

    The steps of Martins et al. 2022 in order, each a function of
    :mod:`bids_ms.levels.transcriptomics_steps`.

    Parameters
    ----------
    response : pandas.Series or None
        Regional values indexed by DK labels (at least the 34 left regions). ``None`` reads
        ``settings.response_map``.
    settings : TranscriptomicsSettings
    group_dir : Path
        Output folder (``<out>/group``).
    seed : int
        The run's seed (resolved: never None). PLS draws from its ``pls`` stream, the
        median-rank test from its ``rank_enrichment`` stream (:mod:`bids_ms.config`).
    spins : SpinSet
        The run's spin permutations, shared with the group level; the stage uses the
        left-hemisphere ones.
    description : str, optional
        What the response is (written to the sidecars).

    Returns
    -------
    dict
        ``files`` (paths written), ``pls1_plus``, ``pls1_minus`` (gene lists), ``stats``
        (the PLS1 statistics), ``seed``, ``libraries`` (source of each library's table).

    References
    ----------
    Martins et al. 2022, §2.9–2.13 and §3.6–3.9.
    """
    # imported here: the CLI imports this module for its settings, and should start fast
    from ..reports.citation import software_versions
    from . import transcriptomics_steps as steps

    group_dir = Path(group_dir)
    group_dir.mkdir(parents=True, exist_ok=True)
    response, source, description = steps.read_response(
        response, settings=settings, description=description
    )
    y = check_response(response, source=source)
    perms = spins.perms(DK_LEFT_REGIONS)

    # §2.9: AHBA expression of the 34 left regions
    expr, expr_info = load_expression(settings, cache_dir=group_dir)
    genes = list(expr.columns)
    out = OutputRecorder(
        group_dir,
        base_sidecar={
            "Response": description,
            "Expression": expr_info,
            "Settings": settings.as_json(n_spins=spins.n_spins, seed=seed),
            "Seed": seed,
            "SoftwareVersions": software_versions(abagen=settings.ahba_dir is not None),
        },
    )

    # §2.10: PLS, its spin and shuffle nulls, the bootstrap Z of PLS1 and the gene lists
    pls = steps.fit_pls(expr, y, settings=settings, perms=perms, seed=stream_seed(seed, "pls"))
    steps.write_components(out, pls, settings=settings)
    gene_table = steps.write_gene_weights(out, pls, genes=genes, settings=settings)
    lists = steps.write_gene_lists(out, gene_table, settings=settings)
    steps.write_scores(out, pls, y)
    # §3.6: PLS1 against spun maps; the list sizes on spun maps (the lists' spatial null)
    stats = steps.write_pls1_stats(
        out,
        pls,
        expression=expr,
        y=y,
        perms=perms,
        gene_table=gene_table,
        lists=lists,
        settings=settings,
    )

    # §2.12–2.13: enrichment of the lists in cell types and every gene-set library
    t_start = time.perf_counter()
    libraries = steps.gene_set_libraries(settings, defaults=DEFAULT_GENE_SET_LIBRARIES)
    names = steps.library_file_names(libraries)
    spatial = steps.spatial_null(expr, y, perms=perms, settings=settings)
    rank_seed = stream_seed(seed, "rank_enrichment")
    ranking = gene_table["gene"].tolist()
    for lib, name in zip(libraries, names, strict=True):
        categories = steps.enrich_library(
            out, lib, name=name, lists=lists, genes=genes, spatial=spatial
        )
        steps.rank_enrichment(
            out, lib, name=name, ranking=ranking, settings=settings, seed=rank_seed
        )
        steps.spin_enrichment(out, lib, name=name, categories=categories, n_spins=len(perms))
    LOGGER.info(
        "transcriptomics: enrichment of %d libraries (%s) in %.1f s",
        len(libraries),
        "spatial null and Fisher" if spatial is not None else "Fisher",
        time.perf_counter() - t_start,
    )

    # §2.11: STRING protein networks of the lists
    steps.protein_networks(out, lists=lists, genes=genes, settings=settings)
    # the methods text of what ran, from the sidecars (one text, reports/citation.py)
    steps.write_methods(out, library_names=names)
    _log_summary(pls, stats)
    return {
        "files": out.files,
        "pls1_plus": lists[0],
        "pls1_minus": lists[1],
        "stats": {k: stats[k] for k in ("r", "p_spin", "var_explained", "p_perm")},
        "seed": seed,
        "libraries": {name: lib.source for lib, name in zip(libraries, names, strict=True)},
    }


def _log_summary(pls, stats: dict) -> None:
    p_perm, p_spin = pls.p_perm_cumulative[0], stats["p_spin"]
    LOGGER.info(
        "transcriptomics: PLS1 explains %.1f %% (p_perm %s), r = %.3f (p_spin %s); "
        "%d PLS1+ and %d PLS1- genes",
        100 * pls.var_explained[0],
        "n/a" if not np.isfinite(p_perm) else f"{p_perm:.3g}",
        stats["r"],
        "n/a" if not np.isfinite(p_spin) else f"{p_spin:.3g}",
        stats["n_pls1_plus"],
        stats["n_pls1_minus"],
    )


def run_response_map(
    settings: TranscriptomicsSettings, *, output_dir: Path, seed: int | None, n_spins: int
) -> dict:
    """``--response-map`` mode: the transcriptomic stage without participant data.

    Reads ``settings.response_map``, writes ``dataset_description.json`` if needed, and runs
    :func:`run_transcriptomics` into ``<output_dir>/group`` with ``n_spins`` spins of the
    run's seed (``None``: drawn and recorded, :func:`bids_ms.config.resolve_seed`).
    """
    from ..io.derivatives import ensure_dataset_description
    from ..spins import SpinSet

    if settings.response_map is None:
        raise UsageError("--response-map is required for this mode")
    ensure_dataset_description(output_dir)
    seed = resolve_seed(seed)
    return run_transcriptomics(
        None,
        settings=settings,
        group_dir=Path(output_dir) / "group",
        seed=seed,
        spins=SpinSet(n_spins=n_spins, seed=seed),
    )
