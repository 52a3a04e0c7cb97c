"""The group level: case–control statistics of MS and what they relate to.

Reads what the participant level wrote in ``output_dir`` and ``participants.tsv`` from
the BIDS folder, and writes under ``<output_dir>/group/`` (Martins et al. 2022, *PAIN*):

* ``desc-casecontrol_regional.tsv`` / ``desc-casecontrol_global.json`` — OLS
  ``ms ~ group + covariates`` per region and for global MS, BH-FDR, Cohen's d (§2.4, §3.2–3.3);
* ``desc-residualised_regional.tsv`` — regional MS with the covariates regressed out (Fig. 2);
* ``desc-harmonized_regional.tsv`` — regional MS after ComBat (``--harmonize combat`` only);
* ``desc-lofo_correlations.tsv`` (+ ``desc-lofo_tmaps.tsv``) — leave-one-feature-out (§2.4);
* ``desc-economo_casecontrol.tsv`` (+ ``desc-economo_ms.tsv``) — von Economo classes (§2.6, §3.4);
* ``desc-hubs_stats.json`` (+ ``desc-hubs_regional.tsv``, ``desc-hubs_participants.tsv``) —
  hub susceptibility (§2.7, §3.5), tested by label permutation, spin p kept as the paper's;
* ``desc-reference_correlations.tsv`` — the t-map (and PC1) against reference maps (§2.5);
* ``desc-crosscohort_correlations.tsv``, ``desc-crosscohort_pca.json``,
  ``desc-crosscohort_pc1.tsv`` — cohorts compared and combined (§2.8), with ``--combine``;
  ``desc-crosscohort_controlsms.tsv`` — the cohorts' controls' MS maps compared (§3.1);
* ``desc-included_participants.tsv`` — who entered the models.

Spin tests (§2.14) share one seeded set of rotations (:class:`bids_ms.spins.SpinSet`), also
handed to the transcriptomic stage, which is called at the end with the left-hemisphere
response map (:func:`transcriptomic_stage`). The cohort is read by
:mod:`bids_ms.levels.cohort`; each step is a function of :mod:`bids_ms.levels.group_steps`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..atlas import DK_REGIONS
from ..config import GroupSettings, resolve_seed
from ..io.derivatives import ensure_dataset_description
from ..io.refmaps import MIN_MAP_REGIONS, read_region_map
from ..spins import SpinSet
from . import transcriptomics
from .cohort import GroupData, load_group_data
from .group_steps import (
    ATLAS_NAME,
    GroupRun,
    case_control_step,
    cross_cohort,
    hub_susceptibility_step,
    included_participants,
    leave_one_feature_out,
    read_cohorts,
    reference_maps,
    response_map,
    von_economo_classes,
)

__all__ = ["GroupSettings", "GroupData", "run_group_level", "load_group_data", "ATLAS_NAME"]

LOGGER = logging.getLogger("bids_ms")


def run_group_level(settings: GroupSettings) -> dict:
    """Run the group level and write its outputs under ``<output_dir>/group/``.

    The steps follow the paper's methods (Martins et al. 2022, *PAIN*): the cohort, the
    case–control models (§2.4), leave-one-feature-out (§2.4), von Economo classes (§2.6), hub
    susceptibility (§2.7), cross-cohort (§2.8, with ``--combine``), reference maps (§2.5),
    then the transcriptomic stage (§2.9–2.13). Every spin test (§2.14) uses one set of
    rotations drawn from the run's seed.

    Parameters
    ----------
    settings : GroupSettings

    Returns
    -------
    dict
        ``group_dir`` (Path), ``files`` (list of Path written), ``n_participants``,
        ``n_excluded``, ``seed``, ``response`` (the left-hemisphere map handed to the
        transcriptomic stage, a pandas.Series), ``transcriptomics`` (its return value
        or ``None``).
    """
    t_start = time.perf_counter()
    out = Path(settings.output_dir)
    seed = resolve_seed(settings.seed)
    data = load_group_data(settings)
    # Inputs are checked before anything is written (reference maps, cohorts too).
    ref_maps = [
        (Path(p), read_region_map(p, min_regions=MIN_MAP_REGIONS)) for p in settings.reference_maps
    ]
    cohorts = read_cohorts(settings.combine, data.features)
    ensure_dataset_description(out, source=settings.bids_dir)
    spins = SpinSet(n_spins=settings.n_spins, seed=seed)
    run = GroupRun(settings=settings, data=data, group_dir=out / "group", seed=seed, spins=spins)

    included_participants(run)
    regional, tmap = case_control_step(run)
    _draw_spins(spins)
    leave_one_feature_out(run, tmap)
    von_economo_classes(run, regional)
    control_ms = hub_susceptibility_step(run, regional, tmap)
    pc1 = cross_cohort(run, tmap, control_ms, cohorts) if cohorts else None
    targets = [("t", tmap)] + ([("PC1", pc1)] if pc1 is not None else [])
    reference_maps(run, targets, ref_maps)
    response, description = response_map(tmap, pc1)
    result = transcriptomic_stage(response, run=run, description=description)

    elapsed = time.perf_counter() - t_start
    LOGGER.info(
        "group level finished in %.1f s: %d files in %s", elapsed, len(run.out.files), run.group_dir
    )
    return {
        "group_dir": run.group_dir,
        "files": run.out.files,
        "n_participants": len(data.participants),
        "n_excluded": len(data.excluded),
        "seed": seed,
        "response": response,
        "transcriptomics": result,
        "elapsed_s": elapsed,
    }


def _draw_spins(spins: SpinSet) -> None:
    """Draw the run's rotations of the 68 regions now (logged with their time)."""
    if not spins.n_spins:
        return
    t0 = time.perf_counter()
    perms = spins.perms(DK_REGIONS)
    LOGGER.info(
        "spins: %d rotations of %d regions in %.1f s",
        spins.n_spins,
        perms.shape[1],
        time.perf_counter() - t0,
    )


def transcriptomic_stage(response: pd.Series, *, run: GroupRun, description: str) -> Any:
    """Hand the response map to the transcriptomic stage, when it is configured.

    ``response`` holds the 34 left-hemisphere regions (AHBA expression is left-only,
    Martins et al. 2022, §2.9): the case–control t-map, or PC1 with ``--combine``. The stage
    gets the run's seed and its :class:`~bids_ms.spins.SpinSet`, so its spin tests use the
    rotations of the group level's.
    """
    from ..io.safety import checkpoint

    # The statistics are complete: keep them even if the transcriptomic stage fails.
    checkpoint("group statistics", next_stage="transcriptomic stage")
    if run.settings.transcriptomics is None:
        return None
    LOGGER.info("transcriptomic stage: response = %s", description)
    return transcriptomics.run_transcriptomics(
        response,
        settings=run.settings.transcriptomics,
        group_dir=run.group_dir,
        seed=run.seed,
        spins=run.spins,
        description=description,
    )
