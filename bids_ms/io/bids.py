"""The BIDS side of the participant level: checking paths, validating, finding participants,
sessions and T1w images (with pybids), and matching FreeSurfer subject ids to them."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from ..errors import InputDataError, UsageError

__all__ = [
    "check_paths",
    "validate_bids",
    "read_participants_tsv",
    "MISSING_MARKERS",
    "strip_label",
    "BidsInputs",
    "collect_inputs",
    "load_layout",
    "read_bids_filters",
    "T1W_QUERY",
    "match_subject_ids",
    "FreeSurferMatch",
    "FreeSurferIds",
    "match_freesurfer_id",
]

LOGGER = logging.getLogger("bids_ms")
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")


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


#: Cells of ``participants.tsv`` read as missing (BIDS writes ``n/a``; spreadsheets and R
#: write the others).
MISSING_MARKERS = ("n/a", "N/A", "NA", "nan", "NaN", "NAN", "")


def read_participants_tsv(bids_dir: Path) -> pd.DataFrame | None:
    """``participants.tsv`` of ``bids_dir`` as text, or ``None`` when there is none.

    Column names are stripped of spaces. ``participant_id`` is read verbatim, stripped of
    spaces and of ``sub-`` (a participant may be called ``NA``); in the other columns the
    :data:`MISSING_MARKERS` are missing (NaN) and the other values are kept as written.

    Raises
    ------
    InputDataError
        The file cannot be read as a TSV, or has no ``participant_id`` column.
    """
    path = Path(bids_dir) / "participants.tsv"
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputDataError(
            f"{path}: cannot be read as a TSV ({' '.join(str(err).split())})"
        ) from None
    table.columns = [str(c).strip() for c in table.columns]
    if "participant_id" not in table.columns:
        raise InputDataError(
            f"{path}: no column 'participant_id'; it has {', '.join(table.columns)}"
        )
    for col in table.columns:
        if col == "participant_id":
            table[col] = table[col].map(strip_label)
        else:
            table[col] = table[col].mask(table[col].isin(MISSING_MARKERS))
    return table


class BidsInputs:
    """Participants, sessions and T1w images of a BIDS dataset (found with pybids)."""

    def __init__(self, subjects: list[str], t1w: dict[tuple[str, str | None], list[str]]):
        self.subjects = subjects
        self.t1w = t1w  # (subject, session) -> T1w files
        # subject -> its sessions, built once: a lookup per subject stays linear in participants
        self._sessions: dict[str, set[str | None]] = {}
        for sub, ses in t1w:
            self._sessions.setdefault(sub, set()).add(ses)

    def sessions_of(self, subject: str) -> list[str | None]:
        sessions = sorted(self._sessions.get(subject, ()), key=lambda s: s or "")
        return sessions or [None]


#: The pybids query of the T1w images; a ``--bids-filter-file``'s ``"t1w"`` entry updates it.
T1W_QUERY: dict = {"datatype": "anat", "suffix": "T1w", "extension": [".nii", ".nii.gz"]}


def _query_value(value):
    """fMRIPrep's filter-file values: ``null`` → entity absent, ``"*"`` → any value."""
    from bids.layout import Query

    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    if isinstance(value, list):
        return [_query_value(v) for v in value]
    return value


def read_bids_filters(path: str | Path) -> dict[str, dict]:
    """Read a ``--bids-filter-file`` in fMRIPrep's format.

    A JSON object of queries by name, each an object of pybids entities, e.g.
    ``{"t1w": {"acquisition": "mprage", "reconstruction": null}}`` (``null``: the entity
    must be absent; ``"*"``: any value). bids-ms uses ``"t1w"``; fMRIPrep's other queries
    (``"bold"``, ``"fmap"``, ...) may stay in the file and are ignored.

    Raises
    ------
    UsageError
        The file cannot be read or is not an object of objects.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(
            f"{path}: --bids-filter-file must be a JSON file such as "
            f'{{"t1w": {{"acquisition": "mprage"}}}} ({err})'
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(
            f"{path}: --bids-filter-file must hold a JSON object of queries, each an object of "
            'BIDS entities, e.g. {"t1w": {"acquisition": "mprage", "reconstruction": null}}'
        )
    ignored = sorted(k for k in data if k != "t1w")
    if ignored:
        LOGGER.info("%s: bids-ms uses the 't1w' query; ignored: %s", path, ", ".join(ignored))
    return data


def load_layout(bids_dir: Path, *, database_dir: Path | None = None):
    """A pybids layout of ``bids_dir``, reusing or saving its index in ``database_dir``.

    With ``database_dir`` (``--bids-database-dir``, as fMRIPrep's), an existing index is
    loaded without walking the dataset again, so SLURM array tasks do not each re-index
    it; otherwise the index is made and saved there for the next runs. It is built in a
    temporary folder beside ``database_dir`` and renamed into place, so tasks started
    together never read a half-written index.

    Raises
    ------
    UsageError
        The index in ``database_dir`` is of another dataset, or would be written inside
        ``bids_dir``.
    """
    from bids import BIDSLayout  # imported here: pybids is slow to import

    def has_index(folder: Path) -> bool:  # (pybids's own check creates the folder)
        return (folder / "layout_index.sqlite").is_file()

    bids_dir = Path(bids_dir)
    if database_dir is None:
        return BIDSLayout(str(bids_dir), validate=False)
    database_dir = Path(database_dir).expanduser().resolve()
    if not has_index(database_dir):
        if _is_within(database_dir, bids_dir.resolve()):
            raise UsageError(
                f"{database_dir}: --bids-database-dir is inside the BIDS dataset, where bids-ms "
                "never writes; choose a folder outside it"
            )
        LOGGER.info("indexing %s with pybids; the index is saved in %s", bids_dir, database_dir)
        database_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{database_dir.name}.", dir=database_dir.parent))
        try:
            BIDSLayout(str(bids_dir), validate=False, database_path=str(tmp))
            try:
                os.rename(tmp, database_dir)  # onto a missing or empty folder
            except OSError:
                if not has_index(database_dir):
                    raise UsageError(
                        f"{database_dir}: --bids-database-dir exists and is not a pybids index; "
                        "choose a new or empty folder"
                    ) from None
                # another run saved its index first: use that one
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        LOGGER.info(
            "reusing the pybids index in %s (delete it to re-index after the dataset changes)",
            database_dir,
        )
    layout = BIDSLayout(str(bids_dir), validate=False, database_path=str(database_dir))
    if Path(layout.root).resolve() != bids_dir.resolve():
        raise UsageError(
            f"{database_dir}: this pybids index is of {layout.root}, not {bids_dir}; choose "
            "another --bids-database-dir"
        )
    return layout


def collect_inputs(
    bids_dir: Path,
    *,
    participant_labels: list[str] | None = None,
    session_labels: list[str] | None = None,
    filters: dict | None = None,
    database_dir: Path | None = None,
) -> BidsInputs:
    """Find participants and their T1w runs.

    Participants are those of ``participants.tsv`` and those with a ``sub-*`` folder;
    ``participant_labels`` (with or without ``sub-``) selects among them. T1w images are
    found by :data:`T1W_QUERY` updated with ``filters["t1w"]`` (``--bids-filter-file``).

    Raises
    ------
    UsageError
        A requested label is not in the dataset (the known ones are listed); the filter
        names an entity that pybids does not know.
    """
    layout = load_layout(bids_dir, database_dir=database_dir)
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
        wanted = [strip_label(lbl, "sub-") for lbl in participant_labels]
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
    sessions = [strip_label(s, "ses-") for s in session_labels] if session_labels else None
    t1w: dict[tuple[str, str | None], list[str]] = {}
    user = (filters or {}).get("t1w") or {}
    t1w_query = {**T1W_QUERY, **{k: _query_value(v) for k, v in user.items()}}
    if user:
        LOGGER.info("T1w query with --bids-filter-file: %s", json.dumps(user))
    # One query for every participant (a query per participant costs ~10 ms each in pybids:
    # minutes for a biobank), then the images are grouped by their subject entity.
    wanted_subjects = set(subjects)
    try:
        found = layout.get(return_type="object", **t1w_query) if subjects else []
    except ValueError as err:  # an entity pybids does not know, e.g. "acq"
        raise UsageError(
            f"--bids-filter-file: the 't1w' query cannot be run ({err}); use pybids entity "
            "names such as acquisition, reconstruction, run, session"
        ) from None
    for f in found:
        subject = f.entities.get("subject")
        if subject not in wanted_subjects:
            continue
        ses = f.entities.get("session")
        if sessions is not None and ses not in sessions:
            continue
        t1w.setdefault((subject, ses), []).append(f.path)
    for key in t1w:
        t1w[key] = sorted(t1w[key])
    return BidsInputs(subjects, t1w)


def _normalise(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", strip_label(str(identifier), "sub-")).lower()


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
    exact = {strip_label(i, "sub-"): i for i in ids}
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


#: How a FreeSurfer subject relates to a BIDS participant and session.
LAYOUT_SESSION = "session"  # sub-<L>_ses-<S>: one FreeSurfer subject per session
LAYOUT_SUBJECT = "subject"  # sub-<L>: fMRIPrep/sMRIPrep layout, one subject for all sessions
LAYOUT_LONGITUDINAL = "longitudinal"  # sub-<L>_ses-<S>.long.<base>: FreeSurfer longitudinal stream


class FreeSurferMatch:
    """A FreeSurfer subject id chosen for a participant (and session), and why."""

    __slots__ = ("name", "layout")

    def __init__(self, name: str, layout: str):
        self.name = name
        self.layout = layout

    def __repr__(self) -> str:
        return f"FreeSurferMatch({self.name!r}, {self.layout!r})"


class FreeSurferIds:
    """FreeSurfer subject ids indexed for :func:`match_freesurfer_id`.

    Built once in time linear in the ids; each match is then a dictionary lookup, so
    matching every participant of a biobank costs linear time, not participants x ids.
    """

    def __init__(self, names: list[str]):
        self.names = list(names)
        self._maps: dict[tuple[bool, bool], dict[str, list[str]]] = {
            (long, loose): {} for long in (False, True) for loose in (False, True)
        }
        for n in self.names:
            head, sep, base = n.partition(".long.")
            keys = [(False, n)] + ([(True, head)] if sep and base else [])
            for long, key in keys:
                self._maps[long, False].setdefault(strip_label(key, "sub-"), []).append(n)
                self._maps[long, True].setdefault(_normalise(key), []).append(n)

    def find(self, label: str, *, long: bool = False, loose: bool = False) -> list[str]:
        """Ids equal to ``label`` (without ``sub-``), else, with ``loose``, equal after
        :func:`_normalise`; with ``long``, the part of longitudinal ids before ``.long.``."""
        exact = self._maps[long, False].get(label, [])
        if exact or not loose:
            return list(exact)
        return list(self._maps[long, True].get(_normalise(label), []))


def match_freesurfer_id(
    names: list[str] | FreeSurferIds,
    subject: str,
    session: str | None,
    *,
    longitudinal: bool = False,
    loose: bool = False,
    source: str = "",
) -> FreeSurferMatch | None:
    """The FreeSurfer subject id among ``names`` for one participant and session.

    The order of preference:

    1. ``sub-<L>_ses-<S>``: one FreeSurfer subject per session (bids-ms's own layout);
    2. ``sub-<L>`` (or ``<L>``): one subject for all sessions, the layout of fMRIPrep and
       sMRIPrep, which pool the sessions' T1w images into one recon-all;
    3. ``sub-<L>_ses-<S>.long.<base>``: the FreeSurfer longitudinal stream, only with
       ``longitudinal=True``. When asked for, it is preferred to 1 and 2: a user who
       passes ``--fs-longitudinal`` wants the longitudinal estimates (Reuter et al. 2012),
       not the cross-sectional runs that the same folder also holds.

    Without a session, only ``sub-<L>`` (or ``<L>``) is looked for.

    Parameters
    ----------
    names : list of str or FreeSurferIds
        FreeSurfer subject ids (folder names or the first column of a table); a
        :class:`FreeSurferIds` of them when matching many participants.
    subject, session : str
        BIDS labels without ``sub-``/``ses-``.
    longitudinal : bool
        Also look for (and prefer) longitudinal subjects.
    loose : bool
        Also match after removing characters BIDS labels cannot hold and ignoring case
        (``NYU_0050952`` ↔ ``NYU0050952``), as for tables.
    source : str
        Named in the error message.

    Returns
    -------
    FreeSurferMatch or None

    Raises
    ------
    InputDataError
        Several ids match at the same step (ambiguous), naming them and ``source``.
    """

    ids = names if isinstance(names, FreeSurferIds) else FreeSurferIds(names)
    steps: list[tuple[str, list[str]]] = []
    if longitudinal and session:
        label = f"{subject}_ses-{session}"
        steps.append((LAYOUT_LONGITUDINAL, ids.find(label, long=True, loose=loose)))
    if session:
        steps.append((LAYOUT_SESSION, ids.find(f"{subject}_ses-{session}", loose=loose)))
    steps.append((LAYOUT_SUBJECT, ids.find(subject, loose=loose)))
    for layout, hits in steps:
        hits = list(dict.fromkeys(hits))
        if len(hits) > 1:
            who = f"sub-{subject}" + (f"_ses-{session}" if session else "")
            raise InputDataError(
                f"{source}: FreeSurfer subjects {', '.join(sorted(hits))} all match {who}; "
                "keep one of them (or move the others out of the folder)"
            )
        if hits:
            return FreeSurferMatch(hits[0], layout)
    return None


def strip_label(label: object, prefix: str = "sub-") -> str:
    """A BIDS label without its entity prefix: ``sub-01`` → ``01``, ``01`` → ``01``.

    Spaces around the label are removed first; anything else is kept as written.
    """
    text = str(label).strip()
    return text[len(prefix) :] if text.startswith(prefix) else text
