"""The BIDS side of the participant level: checking paths, validating, finding participants,
sessions and T1w images (with pybids), and matching FreeSurfer subject ids to them."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from .errors import InputDataError, UsageError

__all__ = [
    "strip_prefix",
    "check_paths",
    "validate_bids",
    "read_participants_tsv",
    "BidsInputs",
    "collect_inputs",
    "match_subject_ids",
]

LOGGER = logging.getLogger("bids_ms")
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")


def strip_prefix(label: str, prefix: str) -> str:
    """``sub-01`` → ``01`` (and ``01`` → ``01``)."""
    label = label.strip()
    return label[len(prefix) + 1 :] if label.startswith(f"{prefix}-") else label


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def check_paths(
    bids_dir: Path, output_dir: Path, work_dir: Path | None = None
) -> tuple[Path, Path]:
    """Check the positional paths of the BIDS-Apps call; return them resolved.

    Raises
    ------
    UsageError
        ``bids_dir`` missing or not a BIDS dataset; ``output_dir`` (or the work dir)
        inside ``bids_dir``, where bids-ms never writes.
    """
    bids_dir = Path(bids_dir).expanduser().resolve()
    output_dir = Path(output_dir).expanduser().resolve()
    if not bids_dir.exists():
        raise UsageError(f"{bids_dir}: the BIDS dataset folder does not exist")
    if not bids_dir.is_dir():
        raise UsageError(f"{bids_dir}: bids_dir must be a folder (the root of a BIDS dataset)")
    if not (bids_dir / "dataset_description.json").is_file():
        raise UsageError(
            f"{bids_dir}: not a BIDS dataset (no dataset_description.json at its root); "
            "point bids_dir at the dataset's root folder"
        )
    if _is_within(output_dir, bids_dir):
        raise UsageError(
            f"{output_dir}: the output folder is inside the BIDS dataset {bids_dir}; bids-ms "
            "never writes into bids_dir, so choose an output folder outside it"
        )
    if work_dir is not None and _is_within(Path(work_dir).expanduser().resolve(), bids_dir):
        raise UsageError(
            f"{work_dir}: the work folder is inside the BIDS dataset; choose one outside it"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"{output_dir}: output_dir exists and is not a folder")
    return bids_dir, output_dir


def validate_bids(bids_dir: Path) -> None:
    """Run ``bids-validator-deno`` on the dataset when it is installed.

    Raises
    ------
    UsageError
        The validator reports errors (the first ones are quoted), with how to skip it.
    """
    exe = shutil.which("bids-validator-deno")
    if exe is None:
        LOGGER.warning(
            "bids-validator-deno is not installed, so %s is not validated "
            "(pip install bids-validator-deno, or pass --skip-bids-validation to silence this)",
            bids_dir,
        )
        return
    LOGGER.info("Validating %s with bids-validator-deno", bids_dir)
    try:
        res = subprocess.run(
            [exe, "--json", str(bids_dir)], capture_output=True, text=True, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        LOGGER.warning("bids-validator-deno could not run (%s); continuing without validation", err)
        return
    try:
        report = json.loads(res.stdout)
        issues = report.get("issues", {}).get("issues", [])
        errors = [i for i in issues if i.get("severity") == "error"]
    except (json.JSONDecodeError, AttributeError):
        errors = (
            [{"code": "VALIDATOR", "location": res.stderr.strip()[-300:]}] if res.returncode else []
        )
    if errors:
        first = "; ".join(f"{e.get('code')} {e.get('location', '')}".strip() for e in errors[:3])
        raise UsageError(
            f"{bids_dir}: bids-validator-deno found {len(errors)} error(s) ({first}); fix the "
            "dataset or pass --skip-bids-validation"
        )


def read_participants_tsv(bids_dir: Path) -> pd.DataFrame | None:
    """``participants.tsv`` with ``participant_id`` labels stripped of ``sub-`` (or ``None``)."""
    path = Path(bids_dir) / "participants.tsv"
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a", ""])
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputDataError(f"{path}: cannot be read as a TSV ({err})") from None
    if "participant_id" not in table.columns:
        raise InputDataError(
            f"{path}: no participant_id column (columns: {', '.join(table.columns)})"
        )
    table["participant_id"] = table["participant_id"].map(lambda s: strip_prefix(str(s), "sub"))
    return table


class BidsInputs:
    """Participants, sessions and T1w images of a BIDS dataset (found with pybids)."""

    def __init__(self, subjects: list[str], t1w: dict[tuple[str, str | None], list[str]]):
        self.subjects = subjects
        self.t1w = t1w  # (subject, session) -> T1w files

    def sessions_of(self, subject: str) -> list[str | None]:
        sessions = sorted({ses for (sub, ses) in self.t1w if sub == subject}, key=lambda s: s or "")
        return sessions or [None]


def collect_inputs(
    bids_dir: Path,
    *,
    participant_labels: list[str] | None = None,
    session_labels: list[str] | None = None,
) -> BidsInputs:
    """Find participants and their T1w runs.

    Participants are those of ``participants.tsv`` and those with a ``sub-*`` folder;
    ``participant_labels`` (with or without ``sub-``) selects among them.

    Raises
    ------
    UsageError
        A requested label is not in the dataset (the known ones are listed).
    """
    from bids import BIDSLayout  # imported here: pybids is slow to import

    layout = BIDSLayout(str(bids_dir), validate=False)
    known = set(layout.get_subjects())
    table = read_participants_tsv(bids_dir)
    if table is not None:
        known |= set(table["participant_id"])
    bad = sorted(s for s in known if not _LABEL_RE.match(s))
    if bad:
        raise InputDataError(
            f"{bids_dir / 'participants.tsv'}: participant labels must be alphanumeric in BIDS "
            f"(e.g. sub-01); fix {', '.join('sub-' + b for b in bad[:5])}"
        )
    if participant_labels:
        wanted = [strip_prefix(lbl, "sub") for lbl in participant_labels]
        unknown = [w for w in wanted if w not in known]
        if unknown:
            listing = ", ".join(sorted(known)[:20]) + (" ..." if len(known) > 20 else "")
            raise UsageError(
                f"participant label(s) {', '.join(unknown)} not found in {bids_dir}; known "
                f"participants ({len(known)}): {listing or 'none'}"
            )
        subjects = sorted(dict.fromkeys(wanted))
    else:
        subjects = sorted(known)
    sessions = [strip_prefix(s, "ses") for s in session_labels] if session_labels else None
    t1w: dict[tuple[str, str | None], list[str]] = {}
    for subject in subjects:
        query = {
            "subject": subject,
            "suffix": "T1w",
            "datatype": "anat",
            "extension": [".nii", ".nii.gz"],
        }
        for f in layout.get(return_type="object", **query):
            ses = f.entities.get("session")
            if sessions is not None and ses not in sessions:
                continue
            t1w.setdefault((subject, ses), []).append(f.path)
    for key in t1w:
        t1w[key] = sorted(t1w[key])
    return BidsInputs(subjects, t1w)


def _normalise(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", strip_prefix(str(identifier), "sub")).lower()


def match_subject_ids(ids: list[str], labels: list[str], *, source: str) -> dict[str, str]:
    """Map BIDS participant labels to the subject ids of a FreeSurfer table.

    An id matches a label when equal with or without ``sub-``, or else when equal after
    removing characters that BIDS labels cannot hold (``NYU_0050952`` ↔ ``NYU0050952``)
    and ignoring case.

    Returns
    -------
    dict
        label → id, for the labels that have one.

    Raises
    ------
    InputDataError
        Two ids match one label (ambiguous), naming them and ``source``.
    """
    exact = {strip_prefix(i, "sub"): i for i in ids}
    loose: dict[str, list[str]] = {}
    for i in ids:
        loose.setdefault(_normalise(i), []).append(i)
    out = {}
    for label in labels:
        if label in exact:
            out[label] = exact[label]
            continue
        hits = loose.get(_normalise(label), [])
        if len(hits) > 1:
            raise InputDataError(
                f"{source}: ids {', '.join(hits)} all match participant sub-{label}; "
                "make the ids unique"
            )
        if hits:
            out[label] = hits[0]
    return out
