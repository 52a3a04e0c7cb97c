"""The steps of the group level, one function per section of the paper's methods.

Each step takes the run (:class:`GroupRun`: the cohort, the run's seed and spins, and the
writer of its outputs under ``<output_dir>/group/``), computes with the science modules
and writes its tables, each with a JSON sidecar. :func:`bids_ms.levels.group.run_group_level`
calls them in the paper's order (Martins et al. 2022, *PAIN*, §2.4–2.8).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..atlas import DK_LEFT_REGIONS, DK_REGIONS, hemisphere_of
from ..config import SEED_STREAMS, stream_rng
from ..crosscohort import cohort_pca, pairwise_correlations
from ..economo import ECONOMO_CLASS_NAMES, class_ms, load_von_economo
from ..errors import InputDataError
from ..harmonize import combat, combat_software
from ..hubs import (
    QUADRANTS,
    HubPermutationResult,
    hub_permutation_test,
    hub_susceptibility,
    label_permutations,
    null_summary,
    quadrant_null_summary,
)
from ..io.derivatives import OutputRecorder
from ..models import COHEN_D_FORMULA, case_control, design_matrix, global_model, residualise
from ..progress import progress
from ..reports.citation import software_versions
from ..similarity import ms_matrices, regional_ms
from ..spins import SpinSet, spin_test
from .cohort import GroupData

if TYPE_CHECKING:  # pragma: no cover
    from ..config import GroupSettings

LOGGER = logging.getLogger("bids_ms")
ATLAS_NAME = "Desikan-Killiany (FreeSurfer aparc), 68 cortical regions"
SPIN_METHOD = (
    "Spin permutations (Alexander-Bloch et al. 2018; Vasa et al. 2018): uniform random "
    "rotations of the DK centroids on the fsaverage5 sphere, the right hemisphere's rotation "
    "mirrored from the left's across x = 0, regions reassigned one-to-one within each "
    "hemisphere by the Hungarian algorithm; the case-control map is rotated; "
    "p_spin = (1 + #{|rho_null| >= |rho|}) / (1 + n_spins)."
)
#: Descriptions of the case-control statistics' columns (the sidecars' column entries).
STAT_DESCRIPTIONS = {
    "beta": "Group coefficient (case minus control, adjusted for the covariates), MS units",
    "t": "t statistic of the group coefficient",
    "p": "Two-sided p value (uncorrected)",
    "p_fdr": "Benjamini-Hochberg FDR-adjusted p value over the rows of this table",
    "cohen_d": COHEN_D_FORMULA,
    "n_case": "Participants in the case group",
    "n_control": "Participants in the control group",
    "se": "Standard error of beta",
    "df": "Residual degrees of freedom",
}


# --------------------------------------------------------------------------- helpers


class _Harmoniser:
    """Applies the chosen harmonisation to any participants x measures table."""

    def __init__(self, settings: GroupSettings, data: GroupData):
        self.method = settings.harmonize
        self.data = data
        self.site = settings.site_column
        if self.method == "combat":
            protect = data.participants[["is_case", *data.covariates]].copy()
            protect["is_case"] = protect["is_case"].astype(float)
            self.protect = protect.rename(columns={"is_case": "group"})
            self.categorical = ["group", *data.categorical]

    def __call__(self, table: pd.DataFrame, *, is_case: np.ndarray | None = None) -> pd.DataFrame:
        """Harmonise ``table``; ``is_case`` replaces the protected group (label permutations)."""
        if self.method != "combat":
            return table
        protect = self.protect.copy()
        if is_case is not None:
            protect["group"] = np.asarray(is_case, dtype=float)
        protect.index = table.index
        return combat(
            table,
            site=self.data.participants[self.site].to_numpy(),
            protect=protect,
            categorical=self.categorical,
        )

    def describe(self) -> dict:
        if self.method != "combat":
            return {"Method": "none"}
        return {
            "Method": "ComBat (Johnson et al. 2007; Fortin et al. 2018), empirical Bayes, parametric",
            "Software": combat_software(),
            "SiteColumn": self.site,
            "Sites": sorted(self.data.participants[self.site].astype(str).unique()),
            "Protected": ["group", *self.data.covariates],
            "AppliedTo": "regional MS (and the leave-one-feature-out regional MS) before the models; "
            "global and class-level MS are means of the harmonised regional MS",
        }


#: Columns of the case-control tables, contract columns first.
STAT_COLUMNS = ("beta", "t", "p", "p_fdr", "cohen_d", "n_case", "n_control", "se", "df")


def _with_stats(table: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per outcome) with the :data:`STAT_COLUMNS` of ``stats`` appended."""
    for col in STAT_COLUMNS:
        table[col] = stats[col].to_numpy()
    return table


def _hemis(regions) -> list[str]:
    return [hemisphere_of(r) for r in regions]


def _read_cohort(path: Path, features: list[str]) -> tuple[str, pd.Series, Path]:
    path = Path(path)
    group_dir = path if (path / "desc-casecontrol_regional.tsv").is_file() else path / "group"
    tsv = group_dir / "desc-casecontrol_regional.tsv"
    if not tsv.is_file():
        raise InputDataError(
            f"{path}: no group/desc-casecontrol_regional.tsv; --combine takes bids-ms output "
            "folders whose group level has run"
        )
    side = tsv.with_suffix(".json")
    try:
        meta = json.loads(side.read_text()) if side.is_file() else {}
        table = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    except (OSError, json.JSONDecodeError, pd.errors.ParserError) as err:
        raise InputDataError(f"{tsv}: cannot be read ({' '.join(str(err).split())})") from None
    atlas = meta.get("Atlas")
    regions = [str(r) for r in table.get("region", [])]
    if atlas in (ATLAS_NAME, None) and regions and set(regions) <= set(DK_REGIONS):
        t = pd.to_numeric(table.get("t", pd.Series(dtype=float)), errors="coerce")
        if len(regions) < len(DK_REGIONS) or not np.isfinite(t.to_numpy(dtype=float)).all():
            missing = [r for r in DK_REGIONS if r not in regions]
            raise InputDataError(
                f"{tsv}: truncated or damaged ({len(regions)} of {len(DK_REGIONS)} regions"
                + (f", e.g. {missing[0]} missing" if missing else ", t values missing")
                + "); rerun the group level of that cohort"
            )
    if atlas != ATLAS_NAME or regions != list(DK_REGIONS):
        raise InputDataError(
            f"{tsv}: made with a different atlas ({atlas or 'unknown'}); --combine needs outputs "
            f"on the same atlas ({ATLAS_NAME})"
        )
    if meta.get("Features") != features:
        raise InputDataError(
            f"{tsv}: made with features {', '.join(meta.get('Features') or ['unknown'])}, this "
            f"cohort with {', '.join(features)}; --combine needs outputs made with the same --features"
        )
    name = meta.get("Cohort") or group_dir.parent.name
    return name, table.set_index("region")["t"].astype(float), group_dir


# --------------------------------------------------------------------------- hub susceptibility

HUBS_DESCRIPTION = (
    "Hub susceptibility: Spearman correlation (rho) between the controls' mean regional MS and "
    "the case-control t-map, and the percentage of the 68 regions in each quadrant (controls' "
    "MS below/above 0 x t below/above 0): dedifferentiation (low MS, increase), hypercoupling "
    "(high, increase), hyperdifferentiation (low, decrease), decoupling (high, decrease) "
    "(Martins et al. 2022, section 2.7, 3.5). p_perm is the valid test: case/control labels "
    "permuted, the covariate model, t-map and controls' mean MS redone for each permutation. "
    "p_spin is the paper's test (spatial null); not valid for this question because the t-map "
    "depends on the control template. differentiation: each participant's slope on the "
    "controls' mean MS, tested case vs control; rho_partial: rho after that index is added as "
    "a covariate of the t-map."
)
P_SPIN_LABEL = (
    "the paper's test (spatial null); not valid for this question because the t-map depends "
    "on the control template"
)
P_PERM_LABEL = (
    "label permutation (the valid test): two-sided, (1 + #{|rho_null| >= |rho|}) / "
    "(1 + n_label_perms)"
)


#: Participant-permutations solved at once by the hub label permutations: a batch holds about
#: ten floats per participant and permutation, so this bounds it to ~160 MB at any cohort size
#: (500 permutations, the science default, up to 4,000 participants).
HUB_BATCH_CELLS = 2_000_000


def hub_batch(n_participants: int) -> int:
    """Permutations per batch of :func:`bids_ms.hubs.hub_permutation_test` for a cohort."""
    return int(min(500, max(16, HUB_BATCH_CELLS // max(n_participants, 1))))


def _hub_label_permutations(
    settings: GroupSettings, data: GroupData, regional: pd.DataFrame, *, seed: int
) -> HubPermutationResult:
    """Hub susceptibility under the observed and permuted labels (Martins et al. 2022, §2.7)."""
    t0 = time.perf_counter()
    site = settings.site_column
    strata = data.participants[site].astype(str).to_numpy() if site else None
    perms = label_permutations(
        len(data.participants),
        n_perms=settings.n_label_perms,
        strata=strata,
        seed=stream_rng(seed, "label_permutations"),
    )
    design = design_matrix(data.participants[data.covariates], categorical=data.categorical)
    if settings.harmonize == "combat" and perms.shape[0]:
        result = _hub_permutations_with_combat(settings, data, regional, design=design, perms=perms)
    else:
        result = hub_permutation_test(
            regional.to_numpy(dtype=float),
            is_case=data.is_case,
            design=design,
            perms=perms,
            batch=hub_batch(len(data.participants)),
        )
    if settings.n_label_perms:
        LOGGER.info(
            "hub susceptibility: %d label permutations%s of %d participants in %.2f s",
            settings.n_label_perms,
            f" within {site}" if site else "",
            len(data.participants),
            time.perf_counter() - t0,
        )
    return result


def _hub_permutations_with_combat(
    settings: GroupSettings,
    data: GroupData,
    regional: pd.DataFrame,
    *,
    design: pd.DataFrame,
    perms: np.ndarray,
) -> HubPermutationResult:
    """Label permutations that also rerun ComBat with each permuted group protected.

    ComBat protects the group term, so its output depends on the labels: a valid
    permutation test refits it under every permutation (Winkler et al. 2014, "everything
    that used the labels"). neuroCombat costs ~20 ms a call, so this loop, not the
    batched algebra, sets the cost (about 100 s for 5,000 permutations).
    """
    g = np.asarray(data.is_case, dtype=bool)
    observed = hub_permutation_test(
        regional.to_numpy(dtype=float), is_case=g, design=design, perms=perms[:0]
    )
    harmonise = _Harmoniser(settings, data)
    null_rho, null_rho_p, null_q = [], [], []
    combat_log = logging.getLogger("bids_ms")  # harmonize.py logs there
    level = combat_log.level
    combat_log.setLevel(logging.WARNING)  # one INFO line per refit would flood the log
    try:
        for perm in progress(perms, desc="hub permutations (ComBat refitted)", unit="perm"):
            permuted = harmonise(data.regional, is_case=g[perm])
            one = hub_permutation_test(
                permuted.to_numpy(dtype=float), is_case=g, design=design, perms=perm[None, :]
            )
            null_rho.append(one.null_rho)
            null_rho_p.append(one.null_rho_partial)
            null_q.append(one.null_quadrants)
    finally:
        combat_log.setLevel(level)
    return dataclasses.replace(
        observed,
        null_rho=np.concatenate(null_rho),
        null_rho_partial=np.concatenate(null_rho_p),
        null_quadrants=np.concatenate(null_q),
    )


def _hub_stats(
    hubs: dict, perm: HubPermutationResult, *, settings: GroupSettings, data: GroupData, seed: int
) -> dict[str, Any]:
    """The content of ``desc-hubs_stats.json`` (an output contract)."""
    is_case = data.is_case
    diff = case_control(
        pd.DataFrame({"differentiation": perm.differentiation}),
        is_case=is_case,
        covariates=data.participants[data.covariates],
        categorical=data.categorical,
    ).iloc[0]
    n_perms = perm.n_perms
    combat_note = None
    if settings.harmonize == "combat":
        combat_note = (
            "ComBat is refitted under every permutation, with the permuted group protected, "
            "before the covariate model: everything that used the labels is redone."
        )
    return {
        **hubs,
        "p_perm": perm.p_perm if n_perms else None,
        "n_label_perms": n_perms,
        "null_rho": null_summary(perm.null_rho),
        "rho_partial": perm.rho_partial,
        "p_perm_partial": perm.p_perm_partial if n_perms else None,
        "null_rho_partial": null_summary(perm.null_rho_partial),
        "differentiation": {
            "beta": diff["beta"],
            "t": diff["t"],
            "p": diff["p"],
            "cohen_d": diff["cohen_d"],
            "n_case": int(diff["n_case"]),
            "n_control": int(diff["n_control"]),
            "se": diff["se"],
            "df": int(diff["df"]),
        },
        "quadrant_stats": quadrant_null_summary(
            hubs["quadrants"], counts=hubs["quadrant_counts"], null_quadrants=perm.null_quadrants
        ),
        "tests": {"p_perm": P_PERM_LABEL, "p_spin": P_SPIN_LABEL},
        "LabelPermutation": {
            "NPermutations": n_perms,
            "Strata": settings.site_column,
            "RandomGenerator": "numpy.random.default_rng(numpy.random.SeedSequence(Seed, "
            f"spawn_key=({SEED_STREAMS['label_permutations']},)))",
            "Seed": seed,
            "Redone": "the covariate model (OLS ms ~ group + covariates), the case-control "
            "t-map, the controls' mean regional MS, the differentiation index and the quadrants",
            "ComBat": combat_note,
            "Quadrants": list(QUADRANTS),
        },
    }


def _emit_hub_nulls(perm: HubPermutationResult, *, group_dir: Path, emit_tsv, sidecar) -> None:
    """``desc-hubs_nulls.tsv``: rho, partial rho and quadrants of every label permutation."""
    if not perm.n_perms:
        (group_dir / "desc-hubs_nulls.tsv").unlink(missing_ok=True)  # of an earlier run
        (group_dir / "desc-hubs_nulls.json").unlink(missing_ok=True)
        return
    table = pd.DataFrame(
        {
            "permutation": np.arange(1, perm.n_perms + 1),
            "rho": perm.null_rho,
            "rho_partial": perm.null_rho_partial,
            **{q: perm.null_quadrants[:, j] for j, q in enumerate(QUADRANTS)},
        }
    )
    emit_tsv(
        "desc-hubs_nulls.tsv",
        table,
        sidecar(
            "Hub susceptibility under each permutation of the case/control labels (the null "
            "distributions behind p_perm, p_perm_partial and the quadrant nulls of "
            "desc-hubs_stats.json).",
            {
                "permutation": "Permutation number",
                "rho": "Spearman rho of the permuted t-map with the permuted controls' mean MS",
                "rho_partial": "The same with the differentiation index as a covariate",
                **{q: f"Percentage of regions in the {q} quadrant" for q in QUADRANTS},
            },
        ),
    )


def _log_hubs(stats: dict) -> None:
    LOGGER.info(
        "hub susceptibility: rho = %.3f, p_perm = %s (%d label permutations), p_spin = %s "
        "(the paper's test); rho_partial = %.3f; differentiation t = %.2f, p = %.3g",
        stats["rho"],
        "n/a" if stats["p_perm"] is None else f"{stats['p_perm']:.3g}",
        stats["n_label_perms"],
        "n/a" if stats["p_spin"] is None else f"{stats['p_spin']:.3g}",
        stats["rho_partial"],
        stats["differentiation"]["t"],
        stats["differentiation"]["p"],
    )
    if stats["p_perm"] is not None and stats["p_perm"] >= 0.05:
        LOGGER.warning(
            "hub susceptibility: label-permutation p = %.3g >= 0.05: the correlation of the "
            "t-map with the controls' MS (rho = %.2f) is within what shuffled case/control "
            "labels give; the spin p (%s) is the paper's test and is not valid for this question",
            stats["p_perm"],
            stats["rho"],
            "n/a" if stats["p_spin"] is None else f"{stats['p_spin']:.3g}",
        )


def _read_controls_ms(group_dir: Path) -> pd.Series | None:
    """Another cohort's controls' mean regional MS (``desc-hubs_regional.tsv``), if written."""
    tsv = Path(group_dir) / "desc-hubs_regional.tsv"
    if not tsv.is_file():
        return None
    try:
        table = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    except (OSError, pd.errors.ParserError) as err:
        raise InputDataError(f"{tsv}: cannot be read ({' '.join(str(err).split())})") from None
    if "control_ms" not in table or list(table.get("region", [])) != list(DK_REGIONS):
        raise InputDataError(
            f"{tsv}: no column control_ms over the 68 DK regions; rerun that cohort's group level"
        )
    return table.set_index("region")["control_ms"].astype(float)


def _crosscohort_controls(
    control_ms: pd.Series,
    others: list[pd.Series | None],
    *,
    names: list[str],
    folders: list[Path],
    perms: np.ndarray,
    n_spins: int,
    emit_tsv,
    sidecar,
) -> None:
    """Controls' mean regional MS of every pair of cohorts, with spin p (paper §3.1, Fig. S1–S2).

    Two cohorts' control maps are independent maps of the same regions, the case a spatial
    null is built for. Cohorts whose group level wrote no ``desc-hubs_regional.tsv`` are
    left out (logged).
    """
    maps = {names[0]: control_ms.loc[list(DK_REGIONS)]}
    for name, folder, ms in zip(names[1:], folders[1:], others, strict=True):
        if ms is None:
            LOGGER.warning(
                "cross-cohort controls' MS: %s has no desc-hubs_regional.tsv (rerun its group "
                "level); left out of desc-crosscohort_controlsms.tsv",
                folder,
            )
            continue
        maps[name] = ms.loc[list(DK_REGIONS)]
    table = pd.DataFrame(maps)
    pairs = pairwise_correlations(table, perms=perms) if table.shape[1] > 1 else None
    if pairs is None:
        return
    cols = {
        "cohort_a": "Cohort (its map rotated for the spin p)",
        "cohort_b": "Cohort",
        "rho": "Spearman correlation of the two cohorts' controls' mean regional MS",
        "p_spin": "Spin-test p value (two-sided); the valid null here: the maps are independent",
        "n_spins": "Spin permutations",
    }
    emit_tsv(
        "desc-crosscohort_controlsms.tsv",
        pairs,
        sidecar(
            "Pairwise Spearman correlations of the cohorts' controls' mean regional MS maps, "
            "with spin p: is MS a reproducible measure in healthy controls (Martins et al. 2022, "
            "section 3.1, Fig. S1-S2)? Two cohorts' control maps come from different "
            "participants, so the spatial null is the valid test.",
            cols,
            Cohorts={n: str(f) for n, f in zip(names, folders, strict=True) if n in maps},
        ),
    )
    emit_tsv(
        "desc-crosscohort_controlsmaps.tsv",
        table.rename_axis("region").reset_index(),
        sidecar(
            "The controls' mean regional MS of each cohort (one column per cohort), the maps "
            "correlated in desc-crosscohort_controlsms.tsv.",
            {"region": "DK region label"},
        ),
    )
    for row in pairs.itertuples():
        LOGGER.info(
            "controls' MS, %s vs %s: rho = %.3f, p_spin = %s (%d spins)",
            row.cohort_a,
            row.cohort_b,
            row.rho,
            "n/a" if not np.isfinite(row.p_spin) else f"{row.p_spin:.3g}",
            n_spins,
        )


# --------------------------------------------------------------------------- the run


@dataclass
class GroupRun:
    """What every step of one group-level run shares.

    Attributes
    ----------
    settings : GroupSettings
    data : GroupData
        The cohort (:func:`bids_ms.levels.cohort.load_group_data`).
    group_dir : Path
        ``<output_dir>/group``, where every step writes.
    seed : int
        The run's seed (resolved from ``--seed``).
    spins : SpinSet
        The run's spin permutations, shared by every spin test.
    out : OutputRecorder
        Writes every output into ``group_dir`` and lists the files written so far.
    """

    settings: GroupSettings
    data: GroupData
    group_dir: Path
    seed: int
    spins: SpinSet

    def __post_init__(self) -> None:
        self.out = OutputRecorder(self.group_dir)
        self.harmonise = _Harmoniser(self.settings, self.data)
        self.is_case = self.data.is_case
        self.covs = self.data.participants[self.data.covariates]
        self.categorical = self.data.categorical
        self.gcol = self.settings.group_column
        self.common = self._common()

    def _common(self) -> dict[str, Any]:
        """Sidecar fields every output of the run carries."""
        settings, data = self.settings, self.data
        return {
            "Atlas": ATLAS_NAME,
            "Features": data.features,
            "GroupColumn": self.gcol,
            "CaseLabel": data.case_label,
            "ControlLabel": data.control_label,
            "NCase": int(self.is_case.sum()),
            "NControl": int((~self.is_case).sum()),
            "Covariates": data.covariates,
            "CovariatesLeftOut": {
                c: "one value over the participants used" for c in data.dropped_covariates
            },
            "CategoricalCovariates": data.categorical,
            "Model": "OLS per region: ms ~ group + "
            + (" + ".join(data.covariates) or "1")
            + " (group: 1 = case, 0 = control; categorical covariates dummy-coded, first level "
            "as reference; Martins et al. 2022, section 2.4)",
            "CohenD": COHEN_D_FORMULA,
            "Harmonization": self.harmonise.describe(),
            "SiteColumn": settings.site_column,
            "Seed": self.seed,
            "NSpins": settings.n_spins,
            "SpinMethod": SPIN_METHOD
            if settings.n_spins
            else "spin tests switched off (--n-spins 0)",
            "NExcluded": len(data.excluded),
            "ExcludedParticipants": data.excluded,
            "SoftwareVersions": software_versions(harmonize=settings.harmonize),
            "Cohort": Path(settings.output_dir).resolve().name,
        }

    def case_control(self, table: pd.DataFrame) -> pd.DataFrame:
        """OLS ``measure ~ group + covariates`` of every column of ``table``."""
        return case_control(
            table, is_case=self.is_case, covariates=self.covs, categorical=self.categorical
        )

    def with_ids(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` with ``participant_id`` and the group column in front."""
        table.insert(0, self.gcol, self.data.participants[self.gcol].to_numpy())
        table.insert(0, "participant_id", self.data.participants["participant_id"].to_numpy())
        return table

    def sidecar(self, description: str, columns: dict[str, str] | None = None, **extra) -> dict:
        side = {"Description": description, **self.common, **extra}
        if columns:
            side.update({k: {"Description": v} for k, v in columns.items()})
        return side


# --------------------------------------------------------------------------- the steps


def included_participants(run: GroupRun) -> None:
    """``desc-included_participants.tsv``: who entered the models, with global MS."""
    included = run.data.participants.drop(columns=["is_case"]).copy()
    included["global_ms"] = run.data.regional.mean(axis=1).to_numpy()
    run.out.tsv(
        "desc-included_participants.tsv",
        included,
        run.sidecar(
            "Participants who entered the group models, their covariates and "
            "global MS (before harmonisation)."
        ),
    )


def case_control_step(run: GroupRun) -> tuple[pd.DataFrame, pd.Series]:
    """Case–control differences in regional and global MS (Martins et al. 2022, §2.4, §3.2–3.3).

    OLS ``ms ~ group + covariates`` per region (after ComBat with ``--harmonize combat``),
    BH-FDR over regions, Cohen's d; global MS is the mean of regional MS. Also writes the
    residualised regional MS of Fig. 2.

    Returns
    -------
    regional : pandas.DataFrame
        The (harmonised) regional MS the models used, participants x 68.
    tmap : pandas.Series
        The case–control t of the 68 regions.
    """
    settings, data = run.settings, run.data
    regional = run.harmonise(data.regional)
    if settings.harmonize == "combat":
        harm = regional.reset_index()
        harm.insert(1, run.gcol, data.participants[run.gcol].to_numpy())
        harm.insert(2, settings.site_column, data.participants[settings.site_column].to_numpy())
        run.out.tsv(
            "desc-harmonized_regional.tsv",
            harm,
            run.sidecar(
                "Regional MS after ComBat harmonisation across sites, one row per participant "
                "(the input of the case-control models)."
            ),
        )
    LOGGER.info("case-control OLS over %d regions", regional.shape[1])
    reg = run.case_control(regional)
    reg_table = _with_stats(
        pd.DataFrame({"region": list(DK_REGIONS), "hemisphere": _hemis(DK_REGIONS)}), reg
    )
    run.out.tsv(
        "desc-casecontrol_regional.tsv",
        reg_table,
        run.sidecar(
            "Case-control differences in regional MS (Martins et al. 2022, section 2.4, 3.3).",
            {"region": "DK region label", "hemisphere": "L or R", **STAT_DESCRIPTIONS},
        ),
    )
    tmap = pd.Series(reg["t"].to_numpy(), index=list(DK_REGIONS), name="t")
    LOGGER.info(
        "regional MS: %d of 68 regions at FDR < 0.05; %d at p < 0.05 uncorrected",
        int((reg["p_fdr"] < 0.05).sum()),
        int((reg["p"] < 0.05).sum()),
    )
    _global_case_control(run, regional)
    _residualised(run, regional)
    return regional, tmap


def _global_case_control(run: GroupRun, regional: pd.DataFrame) -> None:
    """``desc-casecontrol_global.json``: the model of global MS (§2.4, §3.2), fitted with
    statsmodels, whose summary of every term and of the fit the report shows."""
    glob = global_model(
        regional.mean(axis=1).to_numpy(),
        is_case=run.is_case,
        covariates=run.covs,
        categorical=run.categorical,
    )
    run.out.json(
        "desc-casecontrol_global.json",
        {
            **glob,
            **run.sidecar(
                "Case-control difference in global MS, the mean of regional MS "
                "(Martins et al. 2022, section 2.4, 3.2); ModelSummary holds the statsmodels "
                "summary of every term (95% confidence intervals) and of the fit."
            ),
        },
    )
    LOGGER.info("global MS: t(%d) = %.2f, p = %.3g", glob["df"], glob["t"], glob["p"])


def _residualised(run: GroupRun, regional: pd.DataFrame) -> None:
    """``desc-residualised_regional.tsv``: regional MS with the covariates regressed out (Fig. 2)."""
    resid = residualise(regional, covariates=run.covs, categorical=run.categorical)
    resid_table = run.with_ids(pd.DataFrame(resid, columns=list(DK_REGIONS)))
    resid_table["global_ms"] = resid.mean(axis=1)
    run.out.tsv(
        "desc-residualised_regional.tsv",
        resid_table,
        run.sidecar(
            "Regional MS with the covariates regressed out (OLS ms ~ covariates, group "
            "not in the model; residuals, mean 0 per region), one row per participant; "
            "global_ms is their mean over regions (Martins et al. 2022, Fig. 2)."
        ),
    )


LOFO_COLUMNS = ["feature_left_out", "n_features", "rho", "p_spin", "n_spins"]

#: Participants whose MS matrices are held at once (68 x 68 floats, 37 kB each): about 75 MB
#: whatever the cohort's size, where the whole cohort's matrices would take 1.5 GB at 40,000.
MS_CHUNK = 2048


def _regional_ms(morphometry: np.ndarray, features: list[int]) -> np.ndarray:
    """Regional MS from the given feature columns, a chunk of participants at a time (each
    participant's MS depends on their own features only, so the values are those of one
    batched computation)."""
    return np.concatenate(
        [
            regional_ms(ms_matrices(morphometry[start : start + MS_CHUNK][:, :, features]))
            for start in range(0, morphometry.shape[0], MS_CHUNK)
        ]
    )


def leave_one_feature_out(run: GroupRun, tmap: pd.Series) -> None:
    """Leave-one-feature-out (Martins et al. 2022, §2.4, §3.3).

    MS is recomputed without each feature in turn, its case–control t-map compared with the
    t-map of all features by Spearman correlation with spin p.
    """
    settings, data = run.settings, run.data
    perms68 = run.spins.perms(DK_REGIONS)
    rows = []
    maps = {"region": list(DK_REGIONS), "hemisphere": _hemis(DK_REGIONS), "all": tmap.to_numpy()}
    k = len(data.features)
    note = None
    if k < 3:
        note = f"not computed: {k} features; leaving one out leaves fewer than two"
        LOGGER.warning("leave-one-feature-out %s", note)
    elif k == 3:
        note = (
            "with two features left, the MS of every pair of regions is +1 or -1 "
            "(Pearson correlation of two centred values); interpret with care"
        )
    for j, feat in enumerate(data.features if k >= 3 else []):
        keep = [i for i in range(k) if i != j]
        row = {"feature_left_out": feat, "n_features": k - 1, "rho": np.nan, "p_spin": np.nan}
        try:
            reg_ms = _regional_ms(data.morphometry, keep)
        except ValueError as err:
            LOGGER.warning("leave-one-feature-out without %s: %s", feat, err)
        else:
            table = pd.DataFrame(reg_ms, index=data.regional.index, columns=list(DK_REGIONS))
            t_j = run.case_control(run.harmonise(table))["t"].to_numpy()
            row["rho"], row["p_spin"] = spin_test(t_j, tmap.to_numpy(), perms68)
            maps[f"without_{feat}"] = t_j
        rows.append({**row, "n_spins": settings.n_spins})
    run.out.tsv(
        "desc-lofo_correlations.tsv",
        pd.DataFrame(rows, columns=LOFO_COLUMNS),
        run.sidecar(
            "Leave-one-feature-out: MS recomputed without each feature, its case-control "
            "t-map, and the Spearman correlation with the t-map of all features, with spin p "
            "(Martins et al. 2022, section 2.4, 3.3).",
            {
                "feature_left_out": "Feature left out",
                "n_features": "Features used",
                "rho": "Spearman correlation with the all-feature t-map",
                "p_spin": "Spin-test p value",
                "n_spins": "Spin permutations",
            },
            Note=note,
        ),
    )
    run.out.tsv(
        "desc-lofo_tmaps.tsv",
        pd.DataFrame(maps),
        run.sidecar(
            "Case-control t-maps of regional MS with all features ('all') and without each feature."
        ),
    )


def von_economo_classes(run: GroupRun, regional: pd.DataFrame) -> None:
    """Case–control differences in von Economo class-level MS (Martins et al. 2022, §2.6, §3.4)."""
    economo = load_von_economo()
    cls = class_ms(regional)
    eco = run.case_control(cls)
    eco_table = pd.DataFrame(
        {
            "class": list(ECONOMO_CLASS_NAMES),
            "class_name": list(ECONOMO_CLASS_NAMES.values()),
            "n_regions": [
                int((economo["von_economo_class"] == c).sum()) for c in ECONOMO_CLASS_NAMES
            ],
        }
    )
    run.out.tsv(
        "desc-economo_casecontrol.tsv",
        _with_stats(eco_table, eco),
        run.sidecar(
            "Case-control differences in von Economo class-level MS (mean regional MS over "
            "the class's regions, both hemispheres; Martins et al. 2022, section 2.6, 3.4). "
            "Classes: von Economo & Koskinas types 1-5 plus limbic and insular "
            "(Whitaker, Vertes et al. 2016); table in bids_ms/data/atlas.",
            {
                "class": "Class number 1-7",
                "class_name": "Class name",
                "n_regions": "DK regions in the class",
                **STAT_DESCRIPTIONS,
            },
        ),
    )
    eco_ms = cls.copy()
    eco_ms.columns = [c.replace(" ", "_") for c in eco_ms.columns]
    run.out.tsv(
        "desc-economo_ms.tsv",
        run.with_ids(eco_ms).reset_index(drop=True),
        run.sidecar("Class-level MS per participant (after harmonisation, if any)."),
    )


def hub_susceptibility_step(run: GroupRun, regional: pd.DataFrame, tmap: pd.Series) -> pd.Series:
    """Hub susceptibility (Martins et al. 2022, §2.7, §3.5), tested by label permutation.

    The controls' mean regional MS against the case–control t-map: Spearman rho, quadrants,
    the paper's spin p, and the valid label-permutation p (everything that used the labels
    redone under each permutation); each participant's differentiation index.

    Returns
    -------
    pandas.Series
        The controls' mean regional MS (68 regions).
    """
    settings, data, gcol = run.settings, run.data, run.gcol
    control_ms = regional.loc[~run.is_case].mean(axis=0)
    hubs, hub_table = hub_susceptibility(control_ms, tmap, perms=run.spins.perms(DK_REGIONS))
    hub_perm = _hub_label_permutations(settings, data, regional, seed=run.seed)
    hub_stats = _hub_stats(hubs, hub_perm, settings=settings, data=data, seed=run.seed)
    run.out.json("desc-hubs_stats.json", {**hub_stats, **run.sidecar(HUBS_DESCRIPTION)})
    hub_table.insert(1, "hemisphere", _hemis(DK_REGIONS))
    hub_table["t_partial"] = hub_perm.tmap_partial
    run.out.tsv(
        "desc-hubs_regional.tsv",
        hub_table,
        run.sidecar(
            "Controls' mean regional MS, case-control t and quadrant of every region.",
            {
                "control_ms": "Mean regional MS of the controls",
                "t": "Case-control t",
                "quadrant": "Quadrant (see desc-hubs_stats.json)",
                "t_partial": "Case-control t with each participant's differentiation index "
                "added as a covariate (the map of rho_partial)",
            },
        ),
    )
    run.out.tsv(
        "desc-hubs_participants.tsv",
        pd.DataFrame(
            {
                "participant_id": data.participants["participant_id"].to_numpy(),
                "group": data.participants[gcol].astype(str).to_numpy(),
                "differentiation": hub_perm.differentiation,
            }
        ),
        run.sidecar(
            "Subject-level differentiation index: the slope of each participant's regional MS "
            "regressed (OLS with intercept, over the 68 regions) on the controls' mean regional "
            "MS; for a control the mean leaves that participant out. Below 1: a flatter profile "
            "than the controls' template (dedifferentiation, e.g. noisier feature profiles); "
            "tested case vs control in desc-hubs_stats.json ('differentiation').",
            {
                "participant_id": "Participant",
                "group": f"Value of the group column {gcol!r} "
                f"({data.case_label}: case, {data.control_label}: control)",
                "differentiation": "Slope of the participant's regional MS on the controls' "
                "mean regional MS (unitless)",
            },
        ),
    )
    _emit_hub_nulls(hub_perm, group_dir=run.group_dir, emit_tsv=run.out.tsv, sidecar=run.sidecar)
    _log_hubs(hub_stats)
    return control_ms


@dataclass
class Cohort:
    """Another cohort's group outputs, for ``--combine``."""

    name: str
    tmap: pd.Series
    group_dir: Path
    controls_ms: pd.Series | None


def read_cohorts(paths: list[Path], features: list[str]) -> list[Cohort]:
    """The ``--combine`` cohorts' t-maps and controls' MS, checked before anything is written."""
    cohorts = []
    for p in paths:
        name, tmap, group_dir = _read_cohort(Path(p), features)
        cohorts.append(Cohort(name, tmap, group_dir, _read_controls_ms(group_dir)))
    return cohorts


def cross_cohort(
    run: GroupRun, tmap: pd.Series, control_ms: pd.Series, cohorts: list[Cohort]
) -> pd.Series:
    """Cohorts compared and combined (Martins et al. 2022, §2.8, §3.1).

    Pairwise Spearman correlations of the cohorts' t-maps with spin p, PCA of the
    standardised t-maps (PC1: the cross-cohort pattern), and the cohorts' controls' MS maps
    compared.

    Returns
    -------
    pandas.Series
        PC1 of the cohorts' t-maps (68 regions).
    """
    out = Path(run.settings.output_dir)
    perms68 = run.spins.perms(DK_REGIONS)
    names = [run.common["Cohort"]] + [c.name for c in cohorts]
    seen: dict[str, int] = {}
    unique = []
    for nm in names:
        seen[nm] = seen.get(nm, 0) + 1
        unique.append(nm if seen[nm] == 1 else f"{nm}_{seen[nm]}")
    folders = [out, *[c.group_dir for c in cohorts]]
    maps = pd.DataFrame(
        {unique[0]: tmap, **{u: c.tmap for u, c in zip(unique[1:], cohorts, strict=True)}}
    )
    run.out.tsv(
        "desc-crosscohort_correlations.tsv",
        pairwise_correlations(maps, perms=perms68),
        run.sidecar(
            "Pairwise Spearman correlations of the cohorts' case-control t-maps with spin p "
            "(Martins et al. 2022, section 2.8).",
            Cohorts={u: str(p) for u, p in zip(unique, folders, strict=True)},
        ),
    )
    pca = cohort_pca(maps)
    pc1 = pca.pop("pc1")
    run.out.json(
        "desc-crosscohort_pca.json",
        {
            **pca,
            **run.sidecar(
                "PCA of the cohorts' case-control t-maps, each z-scored across the 68 regions; "
                "eigenvalues of the cohorts' correlation matrix; PC1's sign makes it correlate "
                "positively with the mean standardised map (Martins et al. 2022, section 2.8)."
            ),
        },
    )
    run.out.tsv(
        "desc-crosscohort_pc1.tsv",
        pd.DataFrame({"region": list(DK_REGIONS), "value": pc1.to_numpy()}),
        run.sidecar(
            "PC1 scores of the cohorts' standardised case-control t-maps (the cross-cohort "
            "pattern; the response of the transcriptomic stage).",
            {"region": "DK region label", "value": "PC1 score"},
        ),
    )
    LOGGER.info(
        "cross-cohort PCA of %d cohorts: PC1 explains %.1f %%",
        len(unique),
        100 * pca["explained_variance_ratio"][0],
    )
    _crosscohort_controls(
        control_ms,
        [c.controls_ms for c in cohorts],
        names=unique,
        folders=folders,
        perms=perms68,
        n_spins=run.settings.n_spins,
        emit_tsv=run.out.tsv,
        sidecar=run.sidecar,
    )
    return pc1


REFERENCE_COLUMNS = ["map", "target", "file", "format", "n_regions", "rho", "p_spin", "n_spins"]


def reference_maps(
    run: GroupRun, targets: list[tuple[str, pd.Series]], maps: list[tuple[Path, pd.Series]]
) -> None:
    """The t-map (and PC1) against reference maps, with spin p (Martins et al. 2022, §2.5, §3.3).

    Spearman correlation over the regions present in both; the case–control map is rotated.
    """
    rows = []
    for path, ref in maps:
        regions = list(ref.index)
        for target, values in targets:
            rho, p = spin_test(
                values.loc[regions].to_numpy(), ref.to_numpy(), run.spins.perms(regions)
            )
            rows.append(
                {
                    "map": ref.name,
                    "target": target,
                    "file": str(path),
                    "format": ref.attrs.get("format", ""),
                    "n_regions": len(regions),
                    "rho": rho,
                    "p_spin": p,
                    "n_spins": run.settings.n_spins,
                }
            )
            LOGGER.info(
                "reference map %s vs %s: rho = %.3f, p_spin = %.3g (%d regions)",
                ref.name,
                target,
                rho,
                p,
                len(regions),
            )
    run.out.tsv(
        "desc-reference_correlations.tsv",
        pd.DataFrame(rows, columns=REFERENCE_COLUMNS),
        run.sidecar(
            "Spearman correlation of the case-control t-map (target 't') and, with --combine, of "
            "the cross-cohort PC1 (target 'PC1') with each reference map, over the regions present "
            "in both; the case-control map is rotated for the spin p (Martins et al. 2022, "
            "section 2.5, 3.3).",
            {
                "map": "Reference map (file stem)",
                "target": "Map of this analysis compared: t (case-control t-map) or PC1",
                "file": "Reference map file",
                "format": "How the file was read",
                "n_regions": "Regions compared",
                "rho": "Spearman correlation",
                "p_spin": "Spin-test p value",
                "n_spins": "Spin permutations",
            },
        ),
    )


def response_map(tmap: pd.Series, pc1: pd.Series | None) -> tuple[pd.Series, str]:
    """The response of the transcriptomic stage: the left hemisphere's t-map, or PC1 with
    ``--combine`` (AHBA expression is left-only, Martins et al. 2022, §2.9)."""
    if pc1 is None:
        return tmap.loc[list(DK_LEFT_REGIONS)].rename("t"), "left-hemisphere case-control t-map"
    return (
        pc1.loc[list(DK_LEFT_REGIONS)].rename("PC1"),
        "left-hemisphere PC1 of the cohorts' t-maps",
    )
