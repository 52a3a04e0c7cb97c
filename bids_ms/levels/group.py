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

Spin tests (§2.14) share one seeded set of rotations. The transcriptomic stage is called
at the end with the left-hemisphere response map (:func:`_run_transcriptomics_hook`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import logging
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..atlas import DK_LEFT_REGIONS, DK_REGIONS, hemisphere_of
from ..config import GroupSettings
from ..crosscohort import cohort_pca, pairwise_correlations
from ..economo import ECONOMO_CLASS_NAMES, class_ms, load_von_economo
from ..errors import InputDataError, UsageError
from ..harmonize import HARMONIZE_METHODS, combat, combat_software
from ..hubs import (
    QUADRANTS,
    HubPermutationResult,
    hub_permutation_test,
    hub_susceptibility,
    label_permutations,
    null_summary,
    quadrant_null_summary,
)
from ..io.derivatives import (
    ParticipantDerivatives,
    ensure_dataset_description,
    load_participant_derivatives,
    write_json,
    write_tsv,
)
from ..io.refmaps import MIN_MAP_REGIONS, read_region_map
from ..models import COHEN_D_FORMULA, case_control, design_matrix, residualise
from ..progress import progress
from ..similarity import ms_matrices, regional_ms
from ..spins import load_dk_centroids, spin_permutations, spin_test

__all__ = ["GroupSettings", "GroupData", "run_group_level", "load_group_data", "ATLAS_NAME"]

LOGGER = logging.getLogger("bids_ms")
ATLAS_NAME = "Desikan-Killiany (FreeSurfer aparc), 68 cortical regions"
#: Group values recognised as the control group when --control-label is not given.
CONTROL_NAMES = frozenset(
    {
        "control",
        "controls",
        "hc",
        "healthy",
        "healthy control",
        "healthy controls",
        "healthycontrol",
        "cn",
        "nc",
        "td",
        "tdc",
        "typical",
        "typically developing",
        "con",
        "ctrl",
        "0",
    }
)
SPIN_METHOD = (
    "Spin permutations (Alexander-Bloch et al. 2018; Vasa et al. 2018): uniform random "
    "rotations of the DK centroids on the fsaverage5 sphere, the right hemisphere's rotation "
    "mirrored from the left's across x = 0, regions reassigned one-to-one within each "
    "hemisphere by the Hungarian algorithm; the case-control map is rotated; "
    "p_spin = (1 + #{|rho_null| >= |rho|}) / (1 + n_spins)."
)


@dataclass
class GroupData:
    """Participants that enter the group models, aligned row by row."""

    participants: pd.DataFrame  # participant_id, session, group, is_case, covariates..., site
    regional: pd.DataFrame  # n x 68 regional MS (index participant_id)
    morphometry: np.ndarray  # n x 68 x k raw features
    features: list[str]
    covariates: list[str]
    categorical: list[str]
    case_label: str
    control_label: str
    excluded: list[dict[str, str]]
    dropped_covariates: list[str] = field(default_factory=list)

    @property
    def is_case(self) -> np.ndarray:
        return self.participants["is_case"].to_numpy(dtype=bool)


# --------------------------------------------------------------------------- inputs


def _strip(label: Any, prefix: str = "sub-") -> str:
    text = str(label).strip()
    return text[len(prefix) :] if text.startswith(prefix) else text


def _read_participants_tsv(bids_dir: Path | None) -> tuple[pd.DataFrame, Path]:
    if bids_dir is None:
        raise UsageError("the group level needs bids_dir to read participants.tsv")
    path = Path(bids_dir) / "participants.tsv"
    if not path.is_file():
        raise InputDataError(
            f"{path}: not found; the group level reads group and covariates from "
            "participants.tsv in bids_dir (columns participant_id, group, age, sex ...)"
        )
    try:
        table = pd.read_csv(
            path,
            sep="\t",
            dtype=str,
            na_values=MISSING_MARKERS,
            keep_default_na=False,
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputDataError(
            f"{path}: cannot be read as a TSV ({' '.join(str(err).split())})"
        ) from None
    table.columns = [str(c).strip() for c in table.columns]
    table = _strip_values(table)
    if "participant_id" not in table.columns:
        raise InputDataError(
            f"{path}: no column 'participant_id'; it has {', '.join(table.columns)}"
        )
    table["participant_id"] = table["participant_id"].map(_strip)
    dupes = table["participant_id"][table["participant_id"].duplicated()].unique()
    if len(dupes):
        raise InputDataError(
            f"{path}: participants listed twice: {', '.join(map(str, dupes[:10]))}"
        )
    return table, path


#: Cells of participants.tsv read as missing (BIDS writes n/a; spreadsheets and R others).
MISSING_MARKERS = ["n/a", "N/A", "NA", "nan", "NaN", "NAN", ""]


def _strip_values(table: pd.DataFrame) -> pd.DataFrame:
    """Strip whitespace around every value ('NYU ' is 'NYU'); blank cells become missing.

    The columns whose values changed are kept in ``table.attrs["stripped"]`` (column →
    an example) for :func:`_warn_similar_levels`.
    """
    stripped = {}
    for col in table.columns:
        raw = table[col]
        clean = raw.str.strip()
        changed = raw.notna() & (clean != raw)
        if changed.any():
            stripped[col] = raw[changed].iloc[0]
        table[col] = clean.where(~clean.isin(MISSING_MARKERS), np.nan)
    table.attrs["stripped"] = stripped
    return table


def _warn_similar_levels(table: pd.DataFrame, columns: list[str], path: Path) -> None:
    """Warn about categorical columns whose values were stripped, or whose levels differ
    only in case or inner whitespace (kept as different levels: bids-ms does not guess)."""
    stripped = table.attrs.get("stripped", {})
    for col in dict.fromkeys(columns):
        if col not in table.columns:
            continue
        if col in stripped:
            LOGGER.warning(
                "%s: column %r has values with spaces around them (e.g. %r); they were "
                "removed, so e.g. 'NYU ' and 'NYU' are one level",
                path,
                col,
                stripped[col],
            )
        groups: dict[str, set[str]] = {}
        for value in table[col].dropna().astype(str).unique():
            groups.setdefault("".join(value.split()).casefold(), set()).add(value)
        for levels in groups.values():
            if len(levels) > 1:
                LOGGER.warning(
                    "%s: column %r has levels that differ only in case or spacing (%s); they "
                    "are kept as different levels: fix the spelling in participants.tsv if "
                    "they are the same",
                    path,
                    col,
                    ", ".join(repr(v) for v in sorted(levels)),
                )


def _numeric_or_categorical(
    table: pd.DataFrame, column: str, path: Path, *, must_be_numeric: bool
) -> tuple[pd.Series, bool]:
    """Convert a covariate column; returns (values, is_categorical)."""
    raw = table[column]
    num = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & num.isna()
    if not bad.any():
        return num.astype(float), False
    if must_be_numeric:
        examples = ", ".join(repr(v) for v in raw[bad].unique()[:3])
        raise InputDataError(
            f"{path}: column {column!r} must be numeric but has {examples}; fix those "
            "values (use n/a for missing ones)"
        )
    return raw.astype(object).where(raw.notna(), np.nan), True


def _pick_labels(values: list[str], settings: GroupSettings, path: Path) -> tuple[str, str]:
    col = settings.group_column
    case, control = settings.case_label, settings.control_label
    for given, opt in ((case, "--case-label"), (control, "--control-label")):
        if given is not None and given not in values:
            raise InputDataError(
                f"{path}: {opt} {given!r} is not a value of column {col!r} "
                f"(values: {', '.join(values)})"
            )
    if case is not None and control is not None:
        if case == control:
            raise UsageError("--case-label and --control-label must differ")
        return case, control
    if len(values) != 2:
        raise InputDataError(
            f"{path}: column {col!r} has {len(values)} values ({', '.join(values)}); "
            "give --case-label and --control-label"
        )
    if case is not None:
        return case, next(v for v in values if v != case)
    if control is not None:
        return next(v for v in values if v != control), control
    controls = [v for v in values if v.strip().lower() in CONTROL_NAMES]
    if len(controls) != 1:
        raise InputDataError(
            f"{path}: cannot tell cases from controls in column {col!r} "
            f"(values: {', '.join(values)}); give --case-label and --control-label"
        )
    control = controls[0]
    return next(v for v in values if v != control), control


@dataclass
class _Derivative:
    """One participant's derivatives as arrays (what the group level needs)."""

    subject: str
    session: str | None
    regional: np.ndarray  # (68,)
    morphometry: np.ndarray  # (68, k)
    columns: list[str]  # the morphometry columns
    sidecar: dict

    @property
    def features(self) -> list[str]:
        feats = self.sidecar.get("Features")
        return list(feats) if feats else list(self.columns)

    @classmethod
    def from_loaded(cls, d: ParticipantDerivatives) -> _Derivative:
        return cls(
            d.subject,
            d.session,
            d.regional.to_numpy(dtype=float),
            d.morphometry.to_numpy(dtype=float),
            [str(c) for c in d.morphometry.columns],
            d.sidecar,
        )


def _read_derivatives(out: Path) -> list[_Derivative]:
    """The participants' regional MS and morphometry as arrays, for the models."""
    return [_Derivative.from_loaded(d) for d in load_participant_derivatives(out)]


def load_group_data(settings: GroupSettings) -> GroupData:
    """Join ``participants.tsv`` and the participants' derivatives; apply exclusions.

    Raises
    ------
    InputDataError
        No derivatives, missing ``participants.tsv`` or columns, non-numeric age,
        fewer than 3 participants per group, mixed features, or (``strict``) any
        exclusion.
    """
    out = Path(settings.output_dir)
    derivs = _read_derivatives(out)
    if not derivs:
        raise InputDataError(
            f"{out}: no participant derivatives (sub-*/anat/*_atlas-DK_desc-MS_regional.json); "
            "run the participant level into this folder first"
        )
    table, path = _read_participants_tsv(settings.bids_dir)
    excluded: list[dict[str, str]] = []

    # -- columns that must exist
    covariates = list(dict.fromkeys(settings.covariates))
    site = settings.site_column
    if settings.harmonize == "combat" and not site:
        raise UsageError(
            "--harmonize combat needs --site-column (the participants.tsv column of sites)"
        )
    if site and settings.harmonize == "none" and site not in covariates:
        covariates.append(site)  # site enters the model as a categorical covariate
    needed = [settings.group_column] + [c for c in covariates if c.lower() != "etiv"]
    if site:
        needed.append(site)
    missing = [c for c in dict.fromkeys(needed) if c not in table.columns]
    if missing:
        what = "group column" if settings.group_column in missing else "covariate column"
        raise InputDataError(
            f"{path}: no {what} {', '.join(map(repr, missing))}; it has "
            f"{', '.join(table.columns)} (choose with --group-column / --covariates / --site-column)"
        )

    _warn_similar_levels(
        table,
        [settings.group_column, *(c for c in covariates if c.lower() not in ("age", "etiv"))]
        + ([site] if site else []),
        path,
    )

    # -- participant selection
    if settings.participant_label:
        wanted = {_strip(x) for x in settings.participant_label}
        unknown = sorted(wanted - set(table["participant_id"]) - {d.subject for d in derivs})
        if unknown:
            raise InputDataError(
                f"{path}: --participant-label {', '.join(unknown)} not in participants.tsv "
                "nor in the derivatives"
            )
        table = table[table["participant_id"].isin(wanted)]
        derivs = [d for d in derivs if d.subject in wanted]

    # -- one derivative set per participant (first session)
    by_subject: dict[str, _Derivative] = {}
    for d in derivs:
        if d.subject in by_subject:
            excluded.append(
                {
                    "participant_id": f"sub-{d.subject}",
                    "session": d.session or "",
                    "reason": "additional session (the group level uses the first session of each participant)",
                }
            )
            continue
        by_subject[d.subject] = d
    strict_problems: list[str] = []
    for sub in sorted(set(by_subject) - set(table["participant_id"])):
        excluded.append(
            {
                "participant_id": f"sub-{sub}",
                "session": by_subject[sub].session or "",
                "reason": "derivatives but no row in participants.tsv",
            }
        )
        strict_problems.append(f"sub-{sub} (not in participants.tsv)")
    present = table["participant_id"].isin(list(by_subject))
    for sub in table.loc[~present, "participant_id"]:
        excluded.append(
            {
                "participant_id": f"sub-{sub}",
                "session": "",
                "reason": "in participants.tsv but no participant derivatives",
            }
        )
        strict_problems.append(f"sub-{sub} (no derivatives)")
    table = table.loc[present].copy()
    if table.empty:
        raise InputDataError(
            f"{out}: none of the participants with derivatives is in {path}; check participant_id"
        )

    # -- covariate values
    cov_values: dict[str, pd.Series] = {}
    categorical: list[str] = []
    for cov in covariates:
        if cov.lower() == "etiv" and cov not in table.columns:
            cov_values[cov] = pd.Series(
                [by_subject[s].sidecar.get("eTIV") for s in table["participant_id"]],
                index=table.index,
                dtype=float,
            )
            continue
        values, is_cat = _numeric_or_categorical(
            table, cov, path, must_be_numeric=cov.lower() == "age"
        )
        if cov == site:
            is_cat = True
            values = table[cov].astype(object).where(table[cov].notna(), np.nan)
        cov_values[cov] = values
        if is_cat:
            categorical.append(cov)
    group_values = table[settings.group_column]
    missing_mask = group_values.isna()
    reasons: dict[int, list[str]] = {}
    for idx in table.index[missing_mask]:
        reasons.setdefault(idx, []).append(f"no value in {settings.group_column!r}")
    for cov, values in cov_values.items():
        for idx in values.index[values.isna()]:
            reasons.setdefault(idx, []).append(f"no value for covariate {cov!r}")
    site_values = None
    if site:
        site_values = table[site]
        for idx in site_values.index[site_values.isna()]:
            reasons.setdefault(idx, []).append(f"no value in site column {site!r}")
    for idx, why in reasons.items():
        sub = table.at[idx, "participant_id"]
        excluded.append(
            {
                "participant_id": f"sub-{sub}",
                "session": by_subject[sub].session or "",
                "reason": "; ".join(dict.fromkeys(why)),
            }
        )
        strict_problems.append(f"sub-{sub} ({'; '.join(dict.fromkeys(why))})")
    if strict_problems and settings.strict:
        raise InputDataError(
            f"--strict: {len(strict_problems)} participant(s) cannot be used: "
            f"{', '.join(strict_problems[:5])}{' ...' if len(strict_problems) > 5 else ''}; "
            "fix participants.tsv or the derivatives, or drop --strict to exclude them"
        )
    keep = ~table.index.isin(list(reasons))
    table = table.loc[keep]

    # -- case and control
    values = sorted(table[settings.group_column].astype(str).str.strip().unique())
    case, control = _pick_labels(values, settings, path)
    labels = table[settings.group_column].astype(str).str.strip()
    other = ~labels.isin([case, control])
    for idx in table.index[other]:
        sub = table.at[idx, "participant_id"]
        excluded.append(
            {
                "participant_id": f"sub-{sub}",
                "session": by_subject[sub].session or "",
                "reason": f"group {labels[idx]!r} is neither case ({case}) nor control ({control})",
            }
        )
    table = table.loc[~other]
    labels = labels.loc[table.index]
    counts = {lab: int((labels == lab).sum()) for lab in (case, control)}
    small = {k: v for k, v in counts.items() if v < 3}
    if small:
        raise InputDataError(
            f"{path}: {', '.join(f'group {k!r} has {v} participant(s)' for k, v in small.items())} "
            "with derivatives and complete covariates; at least 3 per group are needed"
        )

    # -- covariates that do not vary (e.g. sex in an all-female cohort) cannot be modelled
    dropped = [c for c in covariates if cov_values[c].loc[table.index].nunique() <= 1]
    for cov in dropped:
        LOGGER.warning(
            "covariate %r has one value over the participants used; left out of the models", cov
        )
    covariates = [c for c in covariates if c not in dropped]
    categorical = [c for c in categorical if c not in dropped]

    # -- features
    feats = {sub: by_subject[sub].features for sub in table["participant_id"]}
    first = next(iter(feats.values()))
    differ = [f"sub-{s}" for s, f in feats.items() if f != first]
    if differ:
        raise InputDataError(
            f"{out}: participants were processed with different features ({', '.join(first)} vs "
            f"others for {', '.join(differ[:5])}); rerun the participant level with the same --features"
        )

    subs = list(table["participant_id"])
    lacking = [f"sub-{s}" for s in subs if not set(first) <= set(by_subject[s].columns)]
    if lacking:
        raise InputDataError(
            f"{out}: the morphometry of {', '.join(lacking[:5])} lacks some of the features "
            f"{', '.join(first)}; rerun the participant level for them"
        )
    participants = pd.DataFrame(
        {
            "participant_id": [f"sub-{s}" for s in subs],
            "session": [by_subject[s].session or "n/a" for s in subs],
            settings.group_column: labels.to_numpy(),
            "is_case": (labels == case).to_numpy(),
        }
    )
    for cov in covariates:
        participants[cov] = cov_values[cov].loc[table.index].to_numpy()
        if cov not in categorical:
            participants[cov] = participants[cov].astype(float)
    if site and site not in participants.columns:
        participants[site] = site_values.loc[table.index].astype(str).to_numpy()
    regional = pd.DataFrame(
        np.vstack([by_subject[s].regional for s in subs]),
        index=participants["participant_id"],
        columns=list(DK_REGIONS),
    )
    morph = np.stack(
        [
            by_subject[s].morphometry[:, [by_subject[s].columns.index(f) for f in first]]
            for s in subs
        ]
    )
    if not np.isfinite(regional.to_numpy()).all():
        bad = regional.index[~np.isfinite(regional.to_numpy()).all(axis=1)]
        raise InputDataError(
            f"{out}: regional MS has NaN for {', '.join(bad[:5])}; rerun the participant level for them"
        )
    for item in excluded:
        LOGGER.warning("excluded %s: %s", item["participant_id"], item["reason"])
    LOGGER.info(
        "group level: %d participants (%s: %d, %s: %d), %d excluded; features %s; covariates %s",
        len(subs),
        case,
        counts[case],
        control,
        counts[control],
        len(excluded),
        ", ".join(first),
        ", ".join(covariates) or "none",
    )
    return GroupData(
        participants=participants,
        regional=regional,
        morphometry=morph,
        features=first,
        covariates=covariates,
        categorical=categorical,
        case_label=case,
        control_label=control,
        excluded=excluded,
        dropped_covariates=dropped,
    )


# --------------------------------------------------------------------------- helpers


def _software_versions(harmonize: str) -> dict[str, str]:
    out = {"bids-ms": __version__}
    for pkg in ("numpy", "scipy", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover
            pass
    if harmonize == "combat":
        out.update(combat_software())
    return out


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


class _Spins:
    """Seeded spin permutations, computed once per set of regions."""

    def __init__(self, n_spins: int, seed: int):
        self.n_spins = n_spins
        self.seed = seed
        self.centroids = load_dk_centroids()
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def perms(self, regions) -> np.ndarray:
        key = tuple(regions)
        if key not in self._cache:
            if self.n_spins:
                t0 = time.perf_counter()
                self._cache[key] = spin_permutations(
                    self.centroids.loc[list(key)].to_numpy(),
                    _hemis(key),
                    n_spins=self.n_spins,
                    seed=self.seed,
                )
                LOGGER.info(
                    "spins: %d rotations of %d regions in %.1f s",
                    self.n_spins,
                    len(key),
                    time.perf_counter() - t0,
                )
            else:
                self._cache[key] = np.empty((0, len(key)), dtype=np.intp)
        return self._cache[key]


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

#: numpy stream of the label permutations: ``numpy.random.default_rng([seed, 1])``, so they
#: differ from the spins (``default_rng(seed)``) yet repeat with ``--seed``.
LABEL_PERMUTATION_STREAM = 1

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


def label_permutation_rng(seed: int) -> np.random.Generator:
    """The generator of the hub label permutations for a run's ``--seed``."""
    return np.random.default_rng([int(seed), LABEL_PERMUTATION_STREAM])


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
        seed=label_permutation_rng(seed),
    )
    design = design_matrix(data.participants[data.covariates], categorical=data.categorical)
    if settings.harmonize == "combat" and perms.shape[0]:
        result = _hub_permutations_with_combat(settings, data, regional, design=design, perms=perms)
    else:
        result = hub_permutation_test(
            regional.to_numpy(dtype=float), is_case=data.is_case, design=design, perms=perms
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
            "RandomGenerator": f"numpy.random.default_rng([Seed, {LABEL_PERMUTATION_STREAM}])",
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


# --------------------------------------------------------------------------- the level


def run_group_level(settings: GroupSettings) -> dict:
    """Run the group level and write its outputs under ``<output_dir>/group/``.

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

    References
    ----------
    Martins et al. 2022, §2.4–2.8, §2.14, §3.1–3.5.
    """
    t_start = time.perf_counter()
    if settings.harmonize not in HARMONIZE_METHODS:
        raise UsageError(
            f"--harmonize must be one of {', '.join(HARMONIZE_METHODS)}, not {settings.harmonize!r}"
        )
    if settings.n_spins < 0:
        raise UsageError(f"--n-spins must be 0 or more, not {settings.n_spins}")
    if settings.n_label_perms < 0:
        raise UsageError(f"--n-label-perms must be 0 or more, not {settings.n_label_perms}")
    if settings.harmonize == "combat" and not settings.site_column:
        raise UsageError(
            "--harmonize combat needs --site-column (the participants.tsv column of sites)"
        )
    out = Path(settings.output_dir)
    group_dir = out / "group"
    seed = settings.seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**32))
        LOGGER.info("no --seed given: spins use seed %d (written to the sidecars)", seed)
    data = load_group_data(settings)
    # Inputs are checked before anything is written (reference maps, cohorts too).
    ref_maps = [
        (Path(p), read_region_map(p, min_regions=MIN_MAP_REGIONS)) for p in settings.reference_maps
    ]
    cohorts = [_read_cohort(Path(p), data.features) for p in settings.combine]
    cohort_controls = [_read_controls_ms(c[2]) for c in cohorts]
    ensure_dataset_description(out, source=settings.bids_dir)
    files: list[Path] = []
    harmonise = _Harmoniser(settings, data)
    spins = _Spins(settings.n_spins, seed)
    is_case = data.is_case
    covs = data.participants[data.covariates]
    cat = data.categorical
    n_case, n_control = int(is_case.sum()), int((~is_case).sum())
    gcol = settings.group_column
    common = {
        "Atlas": ATLAS_NAME,
        "Features": data.features,
        "GroupColumn": gcol,
        "CaseLabel": data.case_label,
        "ControlLabel": data.control_label,
        "NCase": n_case,
        "NControl": n_control,
        "Covariates": data.covariates,
        "CovariatesLeftOut": {
            c: "one value over the participants used" for c in data.dropped_covariates
        },
        "CategoricalCovariates": cat,
        "Model": "OLS per region: ms ~ group + "
        + (" + ".join(data.covariates) or "1")
        + " (group: 1 = case, 0 = control; categorical covariates dummy-coded, first level as "
        "reference; Martins et al. 2022, section 2.4)",
        "CohenD": COHEN_D_FORMULA,
        "Harmonization": harmonise.describe(),
        "SiteColumn": settings.site_column,
        "Seed": seed,
        "NSpins": settings.n_spins,
        "SpinMethod": SPIN_METHOD if settings.n_spins else "spin tests switched off (--n-spins 0)",
        "NExcluded": len(data.excluded),
        "ExcludedParticipants": data.excluded,
        "SoftwareVersions": _software_versions(settings.harmonize),
        "Cohort": out.resolve().name,
    }

    def sidecar(description: str, columns: dict[str, str] | None = None, **extra) -> dict:
        side = {"Description": description, **common, **extra}
        if columns:
            side.update({k: {"Description": v} for k, v in columns.items()})
        return side

    def emit_tsv(name: str, table: pd.DataFrame, side: dict) -> None:
        path = group_dir / name
        write_tsv(path, table, sidecar=side)
        files.extend([path, path.with_suffix(".json")])
        LOGGER.info("wrote %s", path)

    def emit_json(name: str, content: dict) -> None:
        path = group_dir / name
        write_json(path, content)
        files.append(path)
        LOGGER.info("wrote %s", path)

    stat_cols = {
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

    # ---- participants who entered the models
    included = data.participants.drop(columns=["is_case"]).copy()
    included["global_ms"] = data.regional.mean(axis=1).to_numpy()
    emit_tsv(
        "desc-included_participants.tsv",
        included,
        sidecar(
            "Participants who entered the group models, their covariates and "
            "global MS (before harmonisation)."
        ),
    )

    # ---- regional and global case-control (section 2.4)
    regional = harmonise(data.regional)
    if settings.harmonize == "combat":
        harm = regional.reset_index()
        harm.insert(1, gcol, data.participants[gcol].to_numpy())
        harm.insert(2, settings.site_column, data.participants[settings.site_column].to_numpy())
        emit_tsv(
            "desc-harmonized_regional.tsv",
            harm,
            sidecar(
                "Regional MS after ComBat harmonisation across sites, one row per participant "
                "(the input of the case-control models)."
            ),
        )
    LOGGER.info("case-control OLS over %d regions", regional.shape[1])
    reg = case_control(regional, is_case=is_case, covariates=covs, categorical=cat)
    reg_table = _with_stats(
        pd.DataFrame({"region": list(DK_REGIONS), "hemisphere": _hemis(DK_REGIONS)}), reg
    )
    emit_tsv(
        "desc-casecontrol_regional.tsv",
        reg_table,
        sidecar(
            "Case-control differences in regional MS (Martins et al. 2022, section 2.4, 3.3).",
            {"region": "DK region label", "hemisphere": "L or R", **stat_cols},
        ),
    )
    tmap = pd.Series(reg["t"].to_numpy(), index=list(DK_REGIONS), name="t")
    n_sig = int((reg["p_fdr"] < 0.05).sum())
    LOGGER.info(
        "regional MS: %d of 68 regions at FDR < 0.05; %d at p < 0.05 uncorrected",
        n_sig,
        int((reg["p"] < 0.05).sum()),
    )

    global_ms = regional.mean(axis=1).to_frame("global_ms")
    glob = case_control(global_ms, is_case=is_case, covariates=covs, categorical=cat).iloc[0]
    emit_json(
        "desc-casecontrol_global.json",
        {
            "beta": glob["beta"],
            "t": glob["t"],
            "p": glob["p"],
            "cohen_d": glob["cohen_d"],
            "df": int(glob["df"]),
            "n_case": n_case,
            "n_control": n_control,
            "se": glob["se"],
            **sidecar(
                "Case-control difference in global MS, the mean of regional MS "
                "(Martins et al. 2022, section 2.4, 3.2)."
            ),
        },
    )
    LOGGER.info("global MS: t(%d) = %.2f, p = %.3g", int(glob["df"]), glob["t"], glob["p"])

    # ---- residualised regional MS for the Fig. 2 plots
    resid = residualise(regional, covariates=covs, categorical=cat)
    resid_table = pd.DataFrame(resid, columns=list(DK_REGIONS))
    resid_table.insert(0, gcol, data.participants[gcol].to_numpy())
    resid_table.insert(0, "participant_id", data.participants["participant_id"].to_numpy())
    resid_table["global_ms"] = resid.mean(axis=1)
    emit_tsv(
        "desc-residualised_regional.tsv",
        resid_table,
        sidecar(
            "Regional MS with the covariates regressed out (OLS ms ~ covariates, group "
            "not in the model; residuals, mean 0 per region), one row per participant; "
            "global_ms is their mean over regions (Martins et al. 2022, Fig. 2)."
        ),
    )

    # ---- leave-one-feature-out (section 2.4)
    perms68 = spins.perms(DK_REGIONS)
    lofo_rows, lofo_maps = (
        [],
        {"region": list(DK_REGIONS), "hemisphere": _hemis(DK_REGIONS), "all": tmap.to_numpy()},
    )
    lofo_note = None
    k = len(data.features)
    if k < 3:
        lofo_note = f"not computed: {k} features; leaving one out leaves fewer than two"
        LOGGER.warning("leave-one-feature-out %s", lofo_note)
    else:
        if k == 3:
            lofo_note = (
                "with two features left, the MS of every pair of regions is +1 or -1 "
                "(Pearson correlation of two centred values); interpret with care"
            )
        for j, feat in enumerate(data.features):
            keep = [i for i in range(k) if i != j]
            try:
                reg_ms = regional_ms(ms_matrices(data.morphometry[:, :, keep]))
            except ValueError as err:
                LOGGER.warning("leave-one-feature-out without %s: %s", feat, err)
                lofo_rows.append(
                    {
                        "feature_left_out": feat,
                        "n_features": k - 1,
                        "rho": np.nan,
                        "p_spin": np.nan,
                        "n_spins": settings.n_spins,
                    }
                )
                continue
            table = harmonise(pd.DataFrame(reg_ms, index=regional.index, columns=list(DK_REGIONS)))
            t_j = case_control(table, is_case=is_case, covariates=covs, categorical=cat)[
                "t"
            ].to_numpy()
            rho, p = spin_test(t_j, tmap.to_numpy(), perms68)
            lofo_maps[f"without_{feat}"] = t_j
            lofo_rows.append(
                {
                    "feature_left_out": feat,
                    "n_features": k - 1,
                    "rho": rho,
                    "p_spin": p,
                    "n_spins": settings.n_spins,
                }
            )
    lofo = pd.DataFrame(
        lofo_rows, columns=["feature_left_out", "n_features", "rho", "p_spin", "n_spins"]
    )
    emit_tsv(
        "desc-lofo_correlations.tsv",
        lofo,
        sidecar(
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
            Note=lofo_note,
        ),
    )
    emit_tsv(
        "desc-lofo_tmaps.tsv",
        pd.DataFrame(lofo_maps),
        sidecar(
            "Case-control t-maps of regional MS with all features ('all') and without each feature."
        ),
    )

    # ---- von Economo classes (section 2.6)
    economo = load_von_economo()
    cls = class_ms(regional)
    eco = case_control(cls, is_case=is_case, covariates=covs, categorical=cat)
    eco_table = pd.DataFrame(
        {
            "class": list(ECONOMO_CLASS_NAMES),
            "class_name": list(ECONOMO_CLASS_NAMES.values()),
            "n_regions": [
                int((economo["von_economo_class"] == c).sum()) for c in ECONOMO_CLASS_NAMES
            ],
        }
    )
    eco_table = _with_stats(eco_table, eco)
    emit_tsv(
        "desc-economo_casecontrol.tsv",
        eco_table,
        sidecar(
            "Case-control differences in von Economo class-level MS (mean regional MS over "
            "the class's regions, both hemispheres; Martins et al. 2022, section 2.6, 3.4). "
            "Classes: von Economo & Koskinas types 1-5 plus limbic and insular "
            "(Whitaker, Vertes et al. 2016); table in bids_ms/data/atlas.",
            {
                "class": "Class number 1-7",
                "class_name": "Class name",
                "n_regions": "DK regions in the class",
                **stat_cols,
            },
        ),
    )
    eco_ms = cls.copy()
    eco_ms.columns = [c.replace(" ", "_") for c in eco_ms.columns]
    eco_ms.insert(0, gcol, data.participants[gcol].to_numpy())
    eco_ms.insert(0, "participant_id", data.participants["participant_id"].to_numpy())
    emit_tsv(
        "desc-economo_ms.tsv",
        eco_ms.reset_index(drop=True),
        sidecar("Class-level MS per participant (after harmonisation, if any)."),
    )

    # ---- hub susceptibility (section 2.7), tested by label permutation
    control_ms = regional.loc[~is_case].mean(axis=0)
    hubs, hub_table = hub_susceptibility(control_ms, tmap, perms=perms68)
    hub_perm = _hub_label_permutations(settings, data, regional, seed=seed)
    hub_stats = _hub_stats(hubs, hub_perm, settings=settings, data=data, seed=seed)
    emit_json("desc-hubs_stats.json", {**hub_stats, **sidecar(HUBS_DESCRIPTION)})
    hub_table.insert(1, "hemisphere", _hemis(DK_REGIONS))
    hub_table["t_partial"] = hub_perm.tmap_partial
    emit_tsv(
        "desc-hubs_regional.tsv",
        hub_table,
        sidecar(
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
    emit_tsv(
        "desc-hubs_participants.tsv",
        pd.DataFrame(
            {
                "participant_id": data.participants["participant_id"].to_numpy(),
                "group": data.participants[gcol].astype(str).to_numpy(),
                "differentiation": hub_perm.differentiation,
            }
        ),
        sidecar(
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
    _emit_hub_nulls(hub_perm, group_dir=group_dir, emit_tsv=emit_tsv, sidecar=sidecar)
    _log_hubs(hub_stats)

    # ---- cross-cohort (section 2.8)
    pc1 = None
    response = tmap.loc[list(DK_LEFT_REGIONS)].rename("t")
    response_desc = "left-hemisphere case-control t-map"
    if cohorts:
        names = [common["Cohort"]] + [c[0] for c in cohorts]
        seen: dict[str, int] = {}
        unique = []
        for nm in names:
            seen[nm] = seen.get(nm, 0) + 1
            unique.append(nm if seen[nm] == 1 else f"{nm}_{seen[nm]}")
        maps = pd.DataFrame(
            {unique[0]: tmap, **{u: c[1] for u, c in zip(unique[1:], cohorts, strict=True)}}
        )
        pairs = pairwise_correlations(maps, perms=perms68)
        emit_tsv(
            "desc-crosscohort_correlations.tsv",
            pairs,
            sidecar(
                "Pairwise Spearman correlations of the cohorts' case-control t-maps with spin p "
                "(Martins et al. 2022, section 2.8).",
                Cohorts={
                    u: str(p) for u, p in zip(unique, [out, *[c[2] for c in cohorts]], strict=True)
                },
            ),
        )
        pca = cohort_pca(maps)
        pc1 = pca.pop("pc1")
        emit_json(
            "desc-crosscohort_pca.json",
            {
                **pca,
                **sidecar(
                    "PCA of the cohorts' case-control t-maps, each z-scored across the 68 regions; "
                    "eigenvalues of the cohorts' correlation matrix; PC1's sign makes it correlate "
                    "positively with the mean standardised map (Martins et al. 2022, section 2.8)."
                ),
            },
        )
        emit_tsv(
            "desc-crosscohort_pc1.tsv",
            pd.DataFrame({"region": list(DK_REGIONS), "value": pc1.to_numpy()}),
            sidecar(
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
            cohort_controls,
            names=unique,
            folders=[out, *[c[2] for c in cohorts]],
            perms=perms68,
            n_spins=settings.n_spins,
            emit_tsv=emit_tsv,
            sidecar=sidecar,
        )
        response = pc1.loc[list(DK_LEFT_REGIONS)].rename("PC1")
        response_desc = "left-hemisphere PC1 of the cohorts' t-maps"

    # ---- reference maps (section 2.5): the t-map, and PC1 when cohorts are combined
    targets = [("t", tmap)] + ([("PC1", pc1)] if cohorts else [])
    ref_rows = []
    for path, ref in ref_maps:
        regions = list(ref.index)
        for target, values in targets:
            rho, p = spin_test(values.loc[regions].to_numpy(), ref.to_numpy(), spins.perms(regions))
            ref_rows.append(
                {
                    "map": ref.name,
                    "target": target,
                    "file": str(path),
                    "format": ref.attrs.get("format", ""),
                    "n_regions": len(regions),
                    "rho": rho,
                    "p_spin": p,
                    "n_spins": settings.n_spins,
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
    ref_columns = ["map", "target", "file", "format", "n_regions", "rho", "p_spin", "n_spins"]
    emit_tsv(
        "desc-reference_correlations.tsv",
        pd.DataFrame(ref_rows, columns=ref_columns),
        sidecar(
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

    transcriptomics = _run_transcriptomics_hook(
        response, settings=settings, group_dir=group_dir, seed=seed, description=response_desc
    )
    elapsed = time.perf_counter() - t_start
    LOGGER.info("group level finished in %.1f s: %d files in %s", elapsed, len(files), group_dir)
    return {
        "group_dir": group_dir,
        "files": files,
        "n_participants": len(data.participants),
        "n_excluded": len(data.excluded),
        "seed": seed,
        "response": response,
        "transcriptomics": transcriptomics,
        "elapsed_s": elapsed,
    }


def _run_transcriptomics_hook(
    response: pd.Series, *, settings: GroupSettings, group_dir: Path, seed: int, description: str
) -> Any:
    """Hand the response map to the transcriptomic stage, when it is configured.

    ``response`` holds the 34 left-hemisphere regions (AHBA expression is left-only,
    Martins et al. 2022, §2.9): the case–control t-map, or PC1 with ``--combine``.
    """
    from ..io.safety import checkpoint

    # The statistics are complete: keep them even if the transcriptomic stage fails.
    checkpoint("group statistics", next_stage="transcriptomic stage")
    if settings.transcriptomics is None:
        return None
    if importlib.util.find_spec("bids_ms.levels.transcriptomics") is None:
        LOGGER.warning(
            "transcriptomic stage requested but bids_ms.levels.transcriptomics is not installed; skipped"
        )
        return None
    module = importlib.import_module("bids_ms.levels.transcriptomics")
    LOGGER.info("transcriptomic stage: response = %s", description)
    from ..spins import SpinSet

    return module.run_transcriptomics(
        response,
        settings=settings.transcriptomics,
        group_dir=group_dir,
        seed=seed,
        spins=SpinSet(n_spins=settings.n_spins, seed=seed),
        description=description,
    )
