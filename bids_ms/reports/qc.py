"""Per-participant quality flags, computed from the participant derivatives.

A participant is flagged when, compared with all participants in the output folder,

* a summary measure is an outlier: global MS, or a feature summed (volume, area) or
  averaged (thickness, curvatures) over the 68 regions, with a modified z-score
  |z| > 3.5 (Iglewicz & Hoaglin 1993: z = 0.6745 (x − median) / MAD);
* many regions are outliers: at least :data:`REGIONAL_OUTLIER_LIMIT` of the 68 regions
  have some feature or their regional MS at |z| > 3.5;
* FreeSurfer's Euler number (surface topological defects before correction; Rosen et al.
  2018, NeuroImage 169:407) is much worse than the group's: modified z of the mean of the
  two hemispheres < −3.5. It is read from ``scripts/recon-all.log``
  (``orig.nofix lheno = …, rheno = …``, written by ``mri_segstats --euler``) or, when the
  log is absent, from the ``lhSurfaceHoles``/``rhSurfaceHoles`` of ``stats/aseg.stats``
  (Euler number = 2 − 2 × holes), in the FreeSurfer subject folder the participant's
  statistics came from. Participants imported from tables have no Euler number.

Flags point at participants to look at; they do not exclude anyone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..atlas import DK_REGIONS
from ..io.derivatives import ParticipantDerivatives
from ..io.outputs import columns

__all__ = [
    "Z_THRESHOLD",
    "REGIONAL_OUTLIER_LIMIT",
    "QC_COLUMNS",
    "robust_z",
    "read_euler_number",
    "freesurfer_subject_dir",
    "regional_robust_z",
    "participant_quality",
]

#: |modified z| above which a value is an outlier (Iglewicz & Hoaglin 1993).
Z_THRESHOLD = 3.5
#: Regions with some outlying value that flag a participant (about 10 % of 68).
REGIONAL_OUTLIER_LIMIT = 7
#: Fewer participants than this: no robust z (the median and MAD are not meaningful).
MIN_PARTICIPANTS = 5

#: Column descriptions of the quality table (its JSON sidecar).
#: How many leading columns of ``desc-qc_participants.tsv`` come in the contract's fixed order
#: (participant_id, session, source, flagged, reasons, global_ms, z_global_ms).
_CONTRACT_LEADING = 7

QC_COLUMNS = {
    "participant_id": "sub-<label>",
    "session": "ses-<label>, or n/a without sessions",
    "source": "Where the FreeSurfer statistics came from (recon-all, subjects-dir, tables)",
    "global_ms": "Global MS (mean regional MS)",
    "z_global_ms": "Modified z of global MS against all participants",
    "n_outlying_regions": f"Regions with some feature or regional MS at |modified z| > {Z_THRESHOLD}",
    "euler_lh": "Euler number of the left hemisphere's uncorrected surface (lh.orig.nofix)",
    "euler_rh": "Euler number of the right hemisphere's uncorrected surface (rh.orig.nofix)",
    "euler_mean": "Mean of the two hemispheres' Euler numbers",
    "euler_source": "File the Euler number was read from",
    "z_euler_mean": "Modified z of the mean Euler number",
    "flagged": "True when any reason below applies",
    "reasons": "Why the participant is flagged",
}

_ENO = re.compile(r"orig\.nofix\s+lheno\s*=\s*(-?\d+)\s*,\s*rheno\s*=\s*(-?\d+)")
_HOLES = re.compile(r"#\s*Measure\s+(lh|rh)SurfaceHoles\s*,[^,]*,[^,]*,\s*(-?[\d.]+)")
#: What each feature's regional values sum to (sum) or average to (mean) in the summary.
_SUMMARY = {
    "volume": "sum",
    "area": "sum",
    "thickness": "mean",
    "meancurv": "mean",
    "gauscurv": "mean",
}


def robust_z(values: np.ndarray, *, axis: int = 0) -> np.ndarray:
    """Modified z-score 0.6745 (x − median) / MAD along ``axis`` (Iglewicz & Hoaglin 1993).

    Where the MAD is 0, the mean absolute deviation scaled to the normal (×1.2533) is used
    instead; where that is 0 too (a constant), z is 0. NaN values are ignored.

    Parameters
    ----------
    values : ndarray
    axis : int

    Returns
    -------
    ndarray
        Same shape as ``values``.
    """
    x = np.asarray(values, dtype=float)
    med = np.nanmedian(x, axis=axis, keepdims=True)
    dev = x - med
    mad = np.nanmedian(np.abs(dev), axis=axis, keepdims=True)
    meanad = np.nanmean(np.abs(dev), axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_mad = 0.6745 * dev / mad
        z_mean = dev / (1.253314 * meanad)
    z = np.where(mad > 0, z_mad, np.where(meanad > 0, z_mean, 0.0))
    return np.where(np.isfinite(x), z, np.nan)


def freesurfer_subject_dir(sidecar: dict) -> Path | None:
    """The FreeSurfer subject folder a participant's statistics came from, if known.

    It is the parent of the ``stats/`` folder of the ``SourceFiles`` in the regional-MS
    sidecar (participants imported from tables have none).
    """
    if sidecar.get("Source") not in ("recon-all", "subjects-dir"):
        return None
    for name in sidecar.get("SourceFiles") or []:
        path = Path(name)
        if path.parent.name == "stats":
            return path.parent.parent
    return None


def read_euler_number(subject_dir: str | Path) -> tuple[int, int, Path] | None:
    """Euler numbers (lh, rh) of a FreeSurfer subject's uncorrected surfaces, and their file.

    ``scripts/recon-all.log`` (the last ``orig.nofix lheno = …, rheno = …`` line) first,
    else ``stats/aseg.stats`` (``lhSurfaceHoles``/``rhSurfaceHoles``; Euler = 2 − 2 × holes).

    Returns
    -------
    tuple of (int, int, Path) or None
        ``None`` when neither file has them.
    """
    subject_dir = Path(subject_dir)
    log = subject_dir / "scripts" / "recon-all.log"
    if log.is_file():
        found = _ENO.findall(log.read_text(errors="replace"))
        if found:
            lh, rh = found[-1]
            return int(lh), int(rh), log
    aseg = subject_dir / "stats" / "aseg.stats"
    if aseg.is_file():
        holes = dict(_HOLES.findall(aseg.read_text(errors="replace")))
        if "lh" in holes and "rh" in holes:
            return (
                int(round(2 - 2 * float(holes["lh"]))),
                int(round(2 - 2 * float(holes["rh"]))),
                aseg,
            )
    return None


def _measures(participants: Sequence[ParticipantDerivatives]) -> dict[str, np.ndarray]:
    """Measure → (participants, 68): each feature shared by all participants, and ``ms``."""
    shared = [
        f
        for f in participants[0].morphometry.columns
        if all(f in p.morphometry.columns for p in participants)
    ]
    out = {
        f: np.stack(
            [p.morphometry[f].reindex(list(DK_REGIONS)).to_numpy(dtype=float) for p in participants]
        )
        for f in shared
    }
    out["ms"] = np.stack(
        [p.regional.reindex(list(DK_REGIONS)).to_numpy(dtype=float) for p in participants]
    )
    return out


def regional_robust_z(participants: Sequence[ParticipantDerivatives]) -> dict[str, pd.DataFrame]:
    """Every participant's regional modified z per measure (features and ``ms``).

    Returns
    -------
    dict of str to pandas.DataFrame
        Participant label → 68 regions × measures.
    """
    measures = _measures(participants)
    zs = {m: robust_z(v, axis=0) for m, v in measures.items()}
    return {
        p.label: pd.DataFrame({m: z[i] for m, z in zs.items()}, index=list(DK_REGIONS))
        for i, p in enumerate(participants)
    }


def participant_quality(
    participants: Sequence[ParticipantDerivatives],
    *,
    threshold: float = Z_THRESHOLD,
    regional_limit: int = REGIONAL_OUTLIER_LIMIT,
) -> pd.DataFrame:
    """Quality measures and flags of every participant against the group.

    Parameters
    ----------
    participants : sequence of ParticipantDerivatives
        As :func:`bids_ms.io.derivatives.load_participant_derivatives` returns them.
    threshold : float
        |modified z| above which a value is an outlier.
    regional_limit : int
        Outlying regions that flag a participant.

    Returns
    -------
    pandas.DataFrame
        One row per participant (and session), in the order given, with the columns of :data:`QC_COLUMNS`, plus ``z_<feature>``
        for each feature's summary (total volume and area, mean thickness and curvatures).
    """
    if not participants:
        return pd.DataFrame(columns=list(QC_COLUMNS))
    measures = _measures(participants)
    n = len(participants)
    table = pd.DataFrame(
        {
            "participant_id": [f"sub-{p.subject}" for p in participants],
            "session": [f"ses-{p.session}" if p.session else None for p in participants],
            "source": [p.sidecar.get("Source") for p in participants],
            "global_ms": measures["ms"].mean(axis=1),
        }
    )
    enough = n >= MIN_PARTICIPANTS
    nan = np.full(n, np.nan)
    table["z_global_ms"] = robust_z(table["global_ms"].to_numpy()) if enough else nan
    for feat, vals in measures.items():
        if feat == "ms":
            continue
        summary = vals.sum(axis=1) if _SUMMARY.get(feat) == "sum" else vals.mean(axis=1)
        table[f"z_{feat}"] = robust_z(summary) if enough else nan
    if enough:
        regional = np.stack([np.abs(robust_z(v, axis=0)) > threshold for v in measures.values()])
        table["n_outlying_regions"] = regional.any(axis=0).sum(axis=1)
    else:
        table["n_outlying_regions"] = pd.array([pd.NA] * n, dtype="Int64")

    euler = []
    for p in participants:
        subject_dir = freesurfer_subject_dir(p.sidecar)
        found = read_euler_number(subject_dir) if subject_dir is not None else None
        euler.append(found or (np.nan, np.nan, None))
    table["euler_lh"] = [e[0] for e in euler]
    table["euler_rh"] = [e[1] for e in euler]
    table["euler_mean"] = (table["euler_lh"].astype(float) + table["euler_rh"].astype(float)) / 2
    table["euler_source"] = [str(e[2]) if e[2] is not None else None for e in euler]
    known = table["euler_mean"].notna().to_numpy()
    z_euler = np.full(n, np.nan)
    if known.sum() >= MIN_PARTICIPANTS:
        z_euler[known] = robust_z(table.loc[known, "euler_mean"].to_numpy(dtype=float))
    table["z_euler_mean"] = z_euler

    reasons: list[str] = []
    for _, row in table.iterrows():
        why = []
        for col in [c for c in table.columns if c.startswith("z_") and c != "z_euler_mean"]:
            z = row[col]
            if np.isfinite(z) and abs(z) > threshold:
                why.append(f"{col[2:].replace('_', ' ')} z = {z:+.1f}")
        n_out = row["n_outlying_regions"]
        if not pd.isna(n_out) and n_out >= regional_limit:
            why.append(f"{int(n_out)} outlying regions")
        if np.isfinite(row["z_euler_mean"]) and row["z_euler_mean"] < -threshold:
            why.append(f"Euler number {row['euler_mean']:.0f} (z = {row['z_euler_mean']:+.1f})")
        reasons.append("; ".join(why))
    table["reasons"] = reasons
    table["flagged"] = table["reasons"] != ""
    # the leading columns, in the order of the output contract (io/outputs.py)
    first = columns("desc-qc_participants.tsv")[:_CONTRACT_LEADING]
    return table[first + [c for c in table.columns if c not in first]]
