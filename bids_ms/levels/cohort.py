"""The cohort of the group level: who enters the models, with which values.

Joins ``participants.tsv`` (group, covariates, site) with the participants' derivatives
written by the participant level, and records everyone left out and why
(``desc-included_participants.tsv`` and the sidecars' ``ExcludedParticipants``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..atlas import DK_REGIONS
from ..errors import InputDataError, UsageError
from ..io.bids import MISSING_MARKERS, read_participants_tsv, strip_label
from ..io.derivatives import ParticipantDerivatives, load_participant_derivatives

if TYPE_CHECKING:  # pragma: no cover
    from ..config import GroupSettings

__all__ = ["GroupData", "load_group_data", "CONTROL_NAMES"]

LOGGER = logging.getLogger("bids_ms")
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


# --------------------------------------------------------------------------- participants.tsv


def _read_participants(bids_dir: Path | None) -> tuple[pd.DataFrame, Path]:
    """``participants.tsv`` for the models: values stripped, one row per participant."""
    if bids_dir is None:
        raise UsageError("the group level needs bids_dir to read participants.tsv")
    path = Path(bids_dir) / "participants.tsv"
    table = read_participants_tsv(bids_dir)
    if table is None:
        raise InputDataError(
            f"{path}: not found; the group level reads group and covariates from "
            "participants.tsv in bids_dir (columns participant_id, group, age, sex ...)"
        )
    table = _strip_values(table)
    dupes = table["participant_id"][table["participant_id"].duplicated()].unique()
    if len(dupes):
        raise InputDataError(
            f"{path}: participants listed twice: {', '.join(map(str, dupes[:10]))}"
        )
    return table, path


def _strip_values(table: pd.DataFrame) -> pd.DataFrame:
    """Strip whitespace around every value ('NYU ' is 'NYU'); blank cells become missing.

    The columns whose values changed are kept in ``table.attrs["stripped"]`` (column →
    an example) for :func:`_warn_similar_levels`.
    """
    stripped = {}
    for col in table.columns:
        if col == "participant_id":
            continue  # stripped by the reader, never a missing marker
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


#: What the group level reads from a participant's sidecar (the rest is not kept in memory).
_SIDECAR_KEYS = ("Features", "eTIV")


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
            d.regional_values,  # the arrays as read: no pandas object per participant
            d.morphometry_values,
            d.features,
            {k: d.sidecar[k] for k in _SIDECAR_KEYS if k in d.sidecar},
        )


def _read_derivatives(out: Path) -> list[_Derivative]:
    """The participants' regional MS and morphometry as arrays, for the models."""
    return [_Derivative.from_loaded(d) for d in load_participant_derivatives(out)]


# --------------------------------------------------------------------------- the cohort


class _Exclusions:
    """Participants left out, with the reason (in the order they were found)."""

    def __init__(self) -> None:
        self.excluded: list[dict[str, str]] = []
        self.problems: list[str] = []  # what --strict refuses

    def add(self, sub: str, session: str | None, reason: str, problem: str | None = None) -> None:
        self.excluded.append(
            {"participant_id": f"sub-{sub}", "session": session or "", "reason": reason}
        )
        if problem is not None:
            self.problems.append(f"sub-{sub} ({problem})")

    def refuse_if_strict(self, strict: bool) -> None:
        if self.problems and strict:
            problems = self.problems
            raise InputDataError(
                f"--strict: {len(problems)} participant(s) cannot be used: "
                f"{', '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}; "
                "fix participants.tsv or the derivatives, or drop --strict to exclude them"
            )


def _model_columns(settings: GroupSettings, table: pd.DataFrame, path: Path) -> list[str]:
    """The covariates of the models; checks that participants.tsv has every column needed."""
    covariates = list(dict.fromkeys(settings.covariates))
    site = settings.site_column
    # (harmonize='combat' without a site column is refused by GroupSettings itself)
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
    return covariates


def _select(
    labels: list[str] | None, table: pd.DataFrame, derivs: list[_Derivative], path: Path
) -> tuple[pd.DataFrame, list[_Derivative]]:
    """Restrict to ``--participant-label`` (with or without ``sub-``)."""
    if not labels:
        return table, derivs
    wanted = {strip_label(x) for x in labels}
    unknown = sorted(wanted - set(table["participant_id"]) - {d.subject for d in derivs})
    if unknown:
        raise InputDataError(
            f"{path}: --participant-label {', '.join(unknown)} not in participants.tsv "
            "nor in the derivatives"
        )
    return table[table["participant_id"].isin(wanted)], [d for d in derivs if d.subject in wanted]


def _match(
    table: pd.DataFrame, derivs: list[_Derivative], excl: _Exclusions, *, out: Path, path: Path
) -> tuple[pd.DataFrame, dict[str, _Derivative]]:
    """One derivative set per participant (the first session), matched to participants.tsv."""
    by_subject: dict[str, _Derivative] = {}
    for d in derivs:
        if d.subject in by_subject:
            excl.add(
                d.subject,
                d.session,
                "additional session (the group level uses the first session of each participant)",
            )
            continue
        by_subject[d.subject] = d
    for sub in sorted(set(by_subject) - set(table["participant_id"])):
        excl.add(
            sub,
            by_subject[sub].session,
            "derivatives but no row in participants.tsv",
            "not in participants.tsv",
        )
    present = table["participant_id"].isin(list(by_subject))
    for sub in table.loc[~present, "participant_id"]:
        excl.add(sub, None, "in participants.tsv but no participant derivatives", "no derivatives")
    table = table.loc[present].copy()
    if table.empty:
        raise InputDataError(
            f"{out}: none of the participants with derivatives is in {path}; check participant_id"
        )
    return table, by_subject


def _covariate_values(
    settings: GroupSettings,
    covariates: list[str],
    table: pd.DataFrame,
    by_subject: dict[str, _Derivative],
    path: Path,
) -> tuple[dict[str, pd.Series], list[str]]:
    """Each covariate's values (eTIV from the sidecars unless participants.tsv has it), and
    which covariates are categorical (non-numeric ones, and the site)."""
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
        if cov == settings.site_column:
            is_cat = True
            values = table[cov].astype(object).where(table[cov].notna(), np.nan)
        cov_values[cov] = values
        if is_cat:
            categorical.append(cov)
    return cov_values, categorical


def _drop_incomplete(
    settings: GroupSettings,
    table: pd.DataFrame,
    cov_values: dict[str, pd.Series],
    by_subject: dict[str, _Derivative],
    excl: _Exclusions,
) -> pd.DataFrame:
    """Leave out participants without a group, a covariate or a site value."""
    reasons: dict[int, list[str]] = {}
    for idx in table.index[table[settings.group_column].isna()]:
        reasons.setdefault(idx, []).append(f"no value in {settings.group_column!r}")
    for cov, values in cov_values.items():
        for idx in values.index[values.isna()]:
            reasons.setdefault(idx, []).append(f"no value for covariate {cov!r}")
    site = settings.site_column
    if site:
        for idx in table.index[table[site].isna()]:
            reasons.setdefault(idx, []).append(f"no value in site column {site!r}")
    for idx, why in reasons.items():
        sub = table.at[idx, "participant_id"]
        reason = "; ".join(dict.fromkeys(why))
        excl.add(sub, by_subject[sub].session, reason, reason)
    excl.refuse_if_strict(settings.strict)
    return table.loc[~table.index.isin(list(reasons))]


def _cases_and_controls(
    settings: GroupSettings,
    table: pd.DataFrame,
    by_subject: dict[str, _Derivative],
    excl: _Exclusions,
    path: Path,
) -> tuple[pd.DataFrame, pd.Series, str, str, dict[str, int]]:
    """The case and control labels; participants of other groups are left out."""
    values = sorted(table[settings.group_column].astype(str).str.strip().unique())
    case, control = _pick_labels(values, settings, path)
    labels = table[settings.group_column].astype(str).str.strip()
    other = ~labels.isin([case, control])
    for idx in table.index[other]:
        sub = table.at[idx, "participant_id"]
        excl.add(
            sub,
            by_subject[sub].session,
            f"group {labels[idx]!r} is neither case ({case}) nor control ({control})",
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
    return table, labels, case, control, counts


def _drop_constant(
    covariates: list[str], categorical: list[str], cov_values: dict[str, pd.Series], index
) -> tuple[list[str], list[str], list[str]]:
    """Covariates that do not vary (e.g. sex in an all-female cohort) cannot be modelled."""
    dropped = [c for c in covariates if cov_values[c].loc[index].nunique() <= 1]
    for cov in dropped:
        LOGGER.warning(
            "covariate %r has one value over the participants used; left out of the models", cov
        )
    return (
        [c for c in covariates if c not in dropped],
        [c for c in categorical if c not in dropped],
        dropped,
    )


def _common_features(subs: list[str], by_subject: dict[str, _Derivative], out: Path) -> list[str]:
    """The features every participant was processed with (they must be the same)."""
    feats = {sub: by_subject[sub].features for sub in subs}
    first = next(iter(feats.values()))
    differ = [f"sub-{s}" for s, f in feats.items() if f != first]
    if differ:
        raise InputDataError(
            f"{out}: participants were processed with different features ({', '.join(first)} vs "
            f"others for {', '.join(differ[:5])}); rerun the participant level with the same --features"
        )
    lacking = [f"sub-{s}" for s in subs if not set(first) <= set(by_subject[s].columns)]
    if lacking:
        raise InputDataError(
            f"{out}: the morphometry of {', '.join(lacking[:5])} lacks some of the features "
            f"{', '.join(first)}; rerun the participant level for them"
        )
    return first


def _measures(
    subs: list[str], index: pd.Index, by_subject: dict[str, _Derivative], features: list[str], out
) -> tuple[pd.DataFrame, np.ndarray]:
    """Regional MS (participants x 68) and morphometry (participants x 68 x features)."""
    regional = pd.DataFrame(
        np.vstack([by_subject[s].regional for s in subs]), index=index, columns=list(DK_REGIONS)
    )
    morph = np.stack(
        [
            by_subject[s].morphometry[:, [by_subject[s].columns.index(f) for f in features]]
            for s in subs
        ]
    )
    if not np.isfinite(regional.to_numpy()).all():
        bad = regional.index[~np.isfinite(regional.to_numpy()).all(axis=1)]
        raise InputDataError(
            f"{out}: regional MS has NaN for {', '.join(bad[:5])}; rerun the participant level for them"
        )
    return regional, morph


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
    table, path = _read_participants(settings.bids_dir)
    excl = _Exclusions()
    covariates = _model_columns(settings, table, path)
    table, derivs = _select(settings.participant_label, table, derivs, path)
    table, by_subject = _match(table, derivs, excl, out=out, path=path)
    cov_values, categorical = _covariate_values(settings, covariates, table, by_subject, path)
    table = _drop_incomplete(settings, table, cov_values, by_subject, excl)
    table, labels, case, control, counts = _cases_and_controls(
        settings, table, by_subject, excl, path
    )
    covariates, categorical, dropped = _drop_constant(
        covariates, categorical, cov_values, table.index
    )
    subs = list(table["participant_id"])
    features = _common_features(subs, by_subject, out)
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
    site = settings.site_column
    if site and site not in participants.columns:
        participants[site] = table[site].astype(str).to_numpy()
    regional, morph = _measures(subs, participants["participant_id"], by_subject, features, out)
    for item in excl.excluded:
        LOGGER.warning("excluded %s: %s", item["participant_id"], item["reason"])
    LOGGER.info(
        "group level: %d participants (%s: %d, %s: %d), %d excluded; features %s; covariates %s",
        len(subs),
        case,
        counts[case],
        control,
        counts[control],
        len(excl.excluded),
        ", ".join(features),
        ", ".join(covariates) or "none",
    )
    return GroupData(
        participants=participants,
        regional=regional,
        morphometry=morph,
        features=features,
        covariates=covariates,
        categorical=categorical,
        case_label=case,
        control_label=control,
        excluded=excl.excluded,
        dropped_covariates=dropped,
    )
