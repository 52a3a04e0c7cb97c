"""The participant level: decide where each participant's FreeSurfer outputs come from,
run recon-all where needed (through the nipype workflow), and write MS derivatives.

Sources, in order of preference for each participant (and session):

1. ``--fs-stats-tables``: a row of aparcstats2table/asegstats2table tables (``tables``);
2. ``--fs-subjects-dir`` (default ``<out>/sourcedata/freesurfer``): a finished subject
   ``sub-<L>`` or ``sub-<L>_ses-<S>`` with ``stats/?h.aparc.stats`` (``subjects-dir``);
3. the participant's T1w images in ``bids_dir``: recon-all (``recon-all``).

A participant that fails does not stop the others; the run ends with exit code 1 and
the list of failures.

Resuming: a participant counts as done only when every derivative file is present and
valid (:func:`outputs_complete`) with the same settings; anything less is processed
again. Half-written folders left by a killed run are cleaned at start (see
:func:`expected_participant_files` and :func:`bids_ms.io.safety.clean_stale`).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atlas import DK_REGIONS, FEATURES
from ..config import ParticipantSettings
from ..errors import EXIT_OK, EXIT_PARTICIPANT_FAILED, BidsMsError, InputDataError, UsageError
from ..io.bids import (
    LAYOUT_LONGITUDINAL,
    LAYOUT_SUBJECT,
    BidsInputs,
    FreeSurferIds,
    collect_inputs,
    match_freesurfer_id,
)
from ..io.derivatives import (
    ensure_dataset_description,
    participant_files,
    participant_prefix,
    participant_relpaths,
    read_participant_sidecar,
    write_participant_derivatives,
)
from ..io.fsstats import StatsTables, read_stats_tables, read_subject_stats
from ..io.safety import die_with_parent
from ..progress import progress
from ..similarity import global_ms, ms_matrices_batched, ms_undefined_reasons, regional_ms

__all__ = [
    "ParticipantSettings",
    "ParticipantOutcome",
    "run_participant_level",
    "outputs_complete",
    "expected_participant_files",
    "nipype_plugin_args",
]

LOGGER = logging.getLogger("bids_ms")


@dataclass
class ParticipantOutcome:
    """What happened to each participant (and session)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTICIPANT_FAILED if self.failed else EXIT_OK


#: The last row of every complete derivative TSV begins with the last DK region.
_LAST_ROW = (DK_REGIONS[-1] + "\t").encode()
#: Bytes read from the end of a TSV to check its last row (a relmat row is ~800 bytes).
_TAIL_BYTES = 4096


def _tail_ok(path: str | Path, *, json_file: bool) -> bool:
    """A cheap validity check that reads only the end of the file (no parsing of 4,600
    numbers per matrix): a TSV ends with a whole last row of the last region, a JSON
    sidecar with its closing brace."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()
    except OSError:
        return False
    if json_file:
        return tail.rstrip().endswith(b"}")
    if not tail.endswith(b"\n"):
        return False
    last = tail[:-1].rpartition(b"\n")[2]
    return last.startswith(_LAST_ROW)


def _others_whole(files: list[str] | list[Path]) -> bool:
    return all(_tail_ok(p, json_file=str(p).endswith(".json")) for p in files)


def outputs_complete(output_dir: Path, subject: str, session: str | None = None) -> bool:
    """True when every derivative file of the participant is present and looks whole.

    Every file is written atomically (a crash never leaves a half-written file under its
    final name), so the check is cheap, as a rerun over a biobank's finished participants
    needs: the completion marker (the regional sidecar, written last) parses as JSON, the
    other sidecars end with their closing brace, and each TSV ends with a line end after a
    row of the last region (a truncated or damaged file does not).
    """
    files = participant_files(output_dir, subject, session)
    if not _others_whole(files[:-1]):
        return False
    try:
        json.loads(files[-1].read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


_ANAT_RE = re.compile(r"^sub-(?P<sub>[A-Za-z0-9]+)(?:/ses-(?P<ses>[A-Za-z0-9]+))?/anat$")


def _subdirs(path: str, prefix: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return [
                e.name
                for e in entries
                if e.name.startswith(prefix) and e.is_dir(follow_symlinks=False)
            ]
    except OSError:
        return []


def expected_participant_files(output_dir: Path) -> dict[Path, list[Path]]:
    """For every participant ``anat/`` folder in ``output_dir``, the files it should hold.

    One directory listing per participant folder (no recursive globbing): a second or so
    for 40,000 participants.
    """
    out = Path(output_dir)
    expected = {}
    for sub in _subdirs(str(out), "sub-"):
        sub_dir = os.path.join(str(out), sub)
        found = [(f"{sub}/anat", None)] if os.path.isdir(os.path.join(sub_dir, "anat")) else []
        found += [
            (f"{sub}/{ses}/anat", ses)
            for ses in _subdirs(sub_dir, "ses-")
            if os.path.isdir(os.path.join(sub_dir, ses, "anat"))
        ]
        for rel, _ in found:
            m = _ANAT_RE.match(rel)
            if m:
                expected[out / rel] = participant_files(out, m.group("sub"), m.group("ses"))
    return expected


def _already_done(
    settings: ParticipantSettings, subject: str, session: str | None, source: str
) -> bool:
    """True when this participant's outputs are complete with the same settings (resume).

    Raises
    ------
    InputDataError
        Outputs exist with other settings and ``--overwrite`` was not given.
    """
    if settings.overwrite:
        return False
    base = os.fspath(settings.output_dir)
    files = [os.path.join(base, rel) for rel in participant_relpaths(subject, session)]
    try:  # the marker, written last: as read_participant_sidecar reads it
        with open(files[-1], encoding="utf-8") as fh:
            sidecar = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(sidecar, dict):
        return False
    if not _others_whole(files[:-1]):
        LOGGER.info(
            "%s: derivatives incomplete or damaged; processing again",
            participant_prefix(subject, session),
        )
        return False
    # A subject recon-all finished in an earlier run is found in the subjects dir by the next
    # run: the same FreeSurfer outputs, so "recon-all" derivatives count as done there.
    same = list(sidecar.get("Features", [])) == list(settings.features) and (
        sidecar.get("Source") == source
        or (sidecar.get("Source"), source) == ("recon-all", "subjects-dir")
    )
    if same:
        return True
    raise InputDataError(
        f"{participant_prefix(subject, session)}: derivatives already exist in "
        f"{settings.output_dir} with features {sidecar.get('Features')} from "
        f"{sidecar.get('Source')}; pass --overwrite to replace them or choose another output folder"
    )


#: Threads that check finished participants: the checks wait on the file system (a rerun
#: over 40,000 finished participants opens 240,000 small files), so they overlap.
RESUME_THREADS = 8


def _resume_status(settings: ParticipantSettings, plan: list) -> dict:
    """(subject, session) → True (done), False (to do) or the :class:`BidsMsError` of
    :func:`_already_done`, for every planned participant with inputs."""
    from concurrent.futures import ThreadPoolExecutor

    def check(item):
        subject, session, source, _ = item
        try:
            return _already_done(settings, subject, session, source)
        except BidsMsError as err:
            return err

    items = [p for p in plan if p[2] != "missing"]
    with ThreadPoolExecutor(RESUME_THREADS) as pool:
        return {(p[0], p[1]): s for p, s in zip(items, pool.map(check, items), strict=True)}


def _has_dk_stats(path: Path) -> bool:
    return all((path / "stats" / f"{h}.aparc.stats").is_file() for h in ("lh", "rh"))


def _fs_subject_names(subjects_dir: Path) -> list[str]:
    """Subject folders of a SUBJECTS_DIR (fsaverage* left out), sorted."""
    try:
        entries = list(os.scandir(subjects_dir))
    except OSError:
        return []
    return sorted(
        e.name
        for e in entries
        if not e.name.startswith(("fsaverage", ".")) and e.is_dir(follow_symlinks=True)
    )


def _fs_subject_dir(
    subjects_dir: Path,
    subject: str,
    session: str | None,
    *,
    longitudinal: bool = False,
    names: list[str] | FreeSurferIds | None = None,
) -> tuple[Path, str] | None:
    """A FreeSurfer subject with DK stats for this participant and its layout, if any.

    The order is that of :func:`bids_ms.io.bids.match_freesurfer_id`: ``sub-<L>_ses-<S>``,
    then ``sub-<L>`` (fMRIPrep's layout, one subject for every session), and the
    longitudinal ``sub-<L>_ses-<S>.long.<base>`` (first) with ``longitudinal``.
    ``names``: the subjects of ``subjects_dir`` with DK stats, when already listed.
    """
    if names is None:
        names = [n for n in _fs_subject_names(subjects_dir) if _has_dk_stats(subjects_dir / n)]
    found = match_freesurfer_id(
        names, subject, session, longitudinal=longitudinal, source=str(subjects_dir)
    )
    return None if found is None else (subjects_dir / found.name, found.layout)


def _check_table_features(tables: StatsTables, features: tuple[str, ...], where: Path) -> None:
    missing = [f for f in features if f not in tables.features]
    if missing:
        have = [f for f in FEATURES if f in tables.features]
        raise InputDataError(
            f"{where}: no aparcstats2table tables for {', '.join(missing)} (found "
            f"{', '.join(have)}); export them with aparcstats2table --meas, or choose the "
            f"features you have, e.g. --features {' '.join(have)}"
        )


def _plan(settings: ParticipantSettings, inputs: BidsInputs, tables: StatsTables | None):
    """Assign a source to every participant/session: list of (subject, session, source, detail).

    Tables first, then the subjects dir, then recon-all of the T1w images; FreeSurfer ids
    are matched in the order of :func:`bids_ms.io.bids.match_freesurfer_id`, for table ids and
    subject folders alike.
    """
    plan = []
    table_hits = {}
    if tables is not None:
        table_ids = FreeSurferIds(tables.subjects)  # indexed once: linear in participants
        table_hits = {
            (subject, session): match_freesurfer_id(
                table_ids,
                subject,
                session,
                longitudinal=settings.fs_longitudinal,
                loose=True,
                source=str(settings.fs_stats_tables),
            )
            for subject in inputs.subjects
            for session in inputs.sessions_of(subject)
        }
        if not any(table_hits.values()):
            raise InputDataError(
                f"{settings.fs_stats_tables}: no subject id of the tables matches a participant "
                f"of {settings.bids_dir} (tables have e.g. {', '.join(tables.subjects[:3])}; "
                f"participants are e.g. {', '.join('sub-' + s for s in inputs.subjects[:3])})"
            )
    subjects_dir = settings.subjects_dir
    fs_names = FreeSurferIds(
        [n for n in _fs_subject_names(subjects_dir) if _has_dk_stats(subjects_dir / n)]
    )
    for subject in inputs.subjects:
        pooled: dict[str, list[str]] = {}  # FreeSurfer id → sessions it serves (fMRIPrep layout)
        for session in inputs.sessions_of(subject):
            hit = table_hits.get((subject, session))
            if hit is not None:
                plan.append((subject, session, "tables", hit.name))
                name, layout = hit.name, hit.layout
            else:
                found = _fs_subject_dir(
                    subjects_dir,
                    subject,
                    session,
                    longitudinal=settings.fs_longitudinal,
                    names=fs_names,
                )
                fs_dir, layout = found if found is not None else (None, None)
                name = fs_dir.name if fs_dir is not None else None
                t1w = inputs.t1w.get((subject, session), [])
                ours = name == participant_prefix(subject, session)
                if fs_dir is not None and (not t1w or not ours or _recon_finished(fs_dir)):
                    plan.append((subject, session, "subjects-dir", fs_dir))
                elif t1w:
                    plan.append((subject, session, "recon-all", t1w))
                    continue
                else:
                    plan.append((subject, session, "missing", None))
                    continue
            if session and layout == LAYOUT_SUBJECT:
                pooled.setdefault(name, []).append(f"ses-{session}")
            elif layout == LAYOUT_LONGITUDINAL:
                LOGGER.info(
                    "sub-%s_ses-%s: longitudinal FreeSurfer subject %s", subject, session, name
                )
        for name, sessions in pooled.items():
            LOGGER.info(
                "sub-%s: one FreeSurfer subject for all sessions (fMRIPrep's layout, %s); "
                "its statistics are used for %s",
                subject,
                name,
                ", ".join(sessions),
            )
    return plan


def _recon_finished(fs_dir: Path) -> bool:
    from ..interfaces.freesurfer import recon_all_complete

    # Stats from an external subjects dir are used as they are; our own sourcedata
    # subjects must have finished recon-all (else recon-all resumes them).
    return recon_all_complete(fs_dir) or not (fs_dir / "scripts").is_dir()


def _refuse_recon_all_among_other_subjects(settings: ParticipantSettings, recon_todo: list) -> None:
    """Never start recon-all inside a user's FreeSurfer folder unless asked to.

    A ``--fs-subjects-dir`` that holds other subjects (an fMRIPrep or lab FreeSurfer folder)
    is the user's: recon-all writes there, for hours, only with ``--fs-reconall-missing``.

    Raises
    ------
    InputDataError
        Some participants have no FreeSurfer outputs in such a folder (they are listed).
    """
    if not recon_todo or settings.fs_subjects_dir is None or settings.fs_reconall_missing:
        return
    ours = {participant_prefix(s, ses) for s, ses, _, _ in recon_todo}
    others = [n for n in _fs_subject_names(settings.fs_subjects_dir) if n not in ours]
    if not others:
        return  # an empty (or bids-ms's own) folder: recon-all runs into it as before
    labels = sorted(ours)
    listing = ", ".join(labels[:10]) + (f" ... ({len(labels)} in all)" if len(labels) > 10 else "")
    raise InputDataError(
        f"{settings.fs_subjects_dir}: no FreeSurfer outputs for {listing} in this folder, which "
        f"holds other subjects ({', '.join(others[:3])}{' ...' if len(others) > 3 else ''}); "
        "bids-ms does not run recon-all inside it unless you pass --fs-reconall-missing. "
        "Otherwise leave these participants out (--participant-label) or name their FreeSurfer "
        "subjects sub-<label>[_ses-<label>]"
    )


def run_participant_level(settings: ParticipantSettings) -> ParticipantOutcome:
    """Run the participant level and return what happened to each participant.

    Raises
    ------
    BidsMsError
        Problems that stop the whole run (bad paths, unreadable tables, recon-all needed
        without FreeSurfer or licence).
    """
    inputs = collect_inputs(
        settings.bids_dir,
        participant_labels=settings.participant_labels,
        session_labels=settings.session_labels,
        filters=settings.bids_filters,
        database_dir=settings.bids_database_dir,
    )
    if not inputs.subjects:
        raise InputDataError(
            f"{settings.bids_dir}: no participants found (no sub-* folders and no "
            "participants.tsv); check bids_dir"
        )
    tables = None
    if settings.fs_stats_tables is not None:
        tables = read_stats_tables(settings.fs_stats_tables)
        _check_table_features(tables, settings.features, settings.fs_stats_tables)
    plan = _plan(settings, inputs, tables)
    outcome = ParticipantOutcome()
    status = _resume_status(settings, plan)
    todo = []
    for subject, session, source, detail in plan:
        label = participant_prefix(subject, session)
        if source == "missing":
            outcome.failed[label] = (
                f"no T1w image in {settings.bids_dir} and no FreeSurfer outputs (looked in "
                f"{settings.subjects_dir}"
                + (f" and {settings.fs_stats_tables}" if settings.fs_stats_tables else "")
                + ")"
            )
            continue
        done = status[subject, session]
        if isinstance(done, BidsMsError):
            outcome.failed[label] = str(done)
            continue
        if done:
            outcome.skipped.append(label)
            continue
        todo.append((subject, session, source, detail))
    recon_planned = [t for t in todo if t[2] == "recon-all"]
    for subject, session, _, t1w in recon_planned:
        LOGGER.info(
            "%s: recon-all %s",
            participant_prefix(subject, session),
            " ".join(f"-i {Path(f).name}" for f in t1w),
        )
    _refuse_recon_all_among_other_subjects(settings, recon_planned)

    ensure_dataset_description(settings.output_dir, source=settings.bids_dir)
    LOGGER.info(
        "%d participant(s): %d to process, %d already done, %d without inputs",
        len(plan),
        len(todo),
        len(outcome.skipped),
        sum(1 for p in plan if p[2] == "missing"),
    )
    _derive_batched(settings, [t for t in todo if t[2] != "recon-all"], tables, outcome)
    recon_todo = [t for t in todo if t[2] == "recon-all"]
    if recon_todo:
        _run_recon_all(settings, recon_todo, outcome)
    return outcome


#: Participants whose MS networks are computed and written per step: bounds the memory
#: (68 x 68 doubles, 37 kB, per participant: 75 MB a step) whatever the cohort's size.
BATCH_SIZE = 2000

#: The step being written, set before the writer processes are forked (they inherit it
#: instead of receiving 37 kB of pickled matrix per participant).
_BATCH: dict = {}


def _gather(settings: ParticipantSettings, todo: list, tables: StatsTables | None, outcome):
    """Every participant's morphometry as one array, with what the derivatives record.

    Tables: one selection per table for all participants. Subjects folders: their stats
    files read one subject at a time (a subject whose files cannot be read fails alone).
    Returns the participants kept (subject, session, source), their morphometry
    (n, 68, features), eTIV, FreeSurfer versions and source files.
    """
    features = tuple(settings.features)
    morph = np.empty((len(todo), len(DK_REGIONS), len(features)))
    rows = [k for k, t in enumerate(todo) if t[2] == "tables"]
    etivs: list[float | None] = [None] * len(todo)
    versions: list[str | None] = [None] * len(todo)
    files: list[list[str]] = [[] for _ in todo]
    if rows:
        ids = [todo[k][3] for k in rows]
        morph[rows] = tables.morphometry_array(ids, features)
        table_files = [str(p) for p in tables.files.values()]
        for k, etiv in zip(rows, tables.etiv_of(ids), strict=True):
            etivs[k], files[k] = etiv, table_files
    keep = []
    for k, (subject, session, source, detail) in enumerate(todo):
        if source == "tables":
            keep.append(k)
            continue
        try:
            stats = read_subject_stats(detail, features=features)
        except BidsMsError as err:
            outcome.failed[participant_prefix(subject, session)] = str(err)
            continue
        morph[k] = stats.morphometry.to_numpy(dtype=float)
        etivs[k], versions[k] = stats.etiv, stats.freesurfer_version
        files[k] = [str(p) for p in stats.files]
        keep.append(k)
    kept = [todo[k][:3] for k in keep]
    return (
        kept,
        morph[keep],
        [etivs[k] for k in keep],
        [versions[k] for k in keep],
        [files[k] for k in keep],
    )


#: Threads per writer process: the file-system calls (which release the GIL) of some
#: participants overlap the number formatting of others. Measured on 2 cores: 2.2 ms of CPU
#: a participant with 4 threads, 2.4 ms with one, and less wall time when the disk is slow.
WRITER_THREADS = 4


def _write_one(i: int) -> tuple[str, str | None]:
    b = _BATCH
    subject, session, source = b["who"][i]
    label = participant_prefix(subject, session)
    try:
        write_participant_derivatives(
            b["output_dir"],
            subject=subject,
            session=session,
            morphometry=b["morph"][i],
            features=b["features"],
            matrix=b["matrices"][i],
            regional=b["regional"][i],
            global_ms=float(b["global"][i]),
            etiv=b["etiv"][i],
            freesurfer_version=b["versions"][i],
            source=source,
            source_files=b["files"][i],
        )
    except UsageError:
        raise  # an output path into bids_dir: stop the run (exit 64)
    except BidsMsError as err:
        return label, str(err)
    return label, None


def _write_range(bounds: tuple[int, int]) -> list[tuple[str, str | None]]:
    """Write the derivatives of participants ``start:stop`` of :data:`_BATCH`.

    Returns (label, error message or None) per participant, in order. Stops the run
    (raises) on :class:`UsageError` (a write into bids_dir) and on :class:`OSError` (a
    full disk).
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(WRITER_THREADS) as threads:
        return list(threads.map(_write_one, range(*bounds)))


def _write_batch(nprocs: int) -> list[tuple[str, str | None]]:
    """Write :data:`_BATCH` with ``nprocs`` forked processes (serially with one).

    Processes, not threads: formatting numbers as text holds the GIL, so threads gave no
    speed-up (bench/bench_scale.py). Each process writes a contiguous range, every file
    through the atomic writer of :mod:`bids_ms.io.safety`.
    """
    n = len(_BATCH["who"])
    workers = max(1, min(int(nprocs), n // 50 or 1))
    if workers == 1:
        return _write_range((0, n))
    import multiprocessing

    edges = np.linspace(0, n, workers * 4 + 1).astype(int)
    ranges = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        return [r for part in pool.map(_write_range, ranges) for r in part]


def _derive_batched(
    settings: ParticipantSettings, todo: list, tables: StatsTables | None, outcome
) -> None:
    """MS derivatives of every participant with FreeSurfer outputs, vectorised.

    The morphometry of all participants is gathered into one array; participants whose MS
    is undefined fail with the reason; the MS networks are computed in steps of
    :data:`BATCH_SIZE` participants (:func:`bids_ms.similarity.ms_matrices_batched`) and
    written by ``--nprocs`` processes. Results are those of the per-participant computation
    (:func:`bids_ms.similarity.ms_matrix`), file for file.
    """
    if not todo:
        return
    kept, morph, etivs, versions, files = _gather(settings, todo, tables, outcome)
    reasons = ms_undefined_reasons(morph)
    good = []
    for i, ((subject, session, source), reason) in enumerate(zip(kept, reasons, strict=True)):
        label = participant_prefix(subject, session)
        if reason is None:
            good.append(i)
        elif reason.startswith("NaN"):
            outcome.failed[label] = f"{label}: {reason} ({source})"
        else:
            outcome.failed[label] = (
                f"{label}: {reason}; check this participant's FreeSurfer outputs"
            )
    steps = [good[k : k + BATCH_SIZE] for k in range(0, len(good), BATCH_SIZE)]
    written = 0
    for step in progress(steps, desc="MS networks", unit="batch"):
        matrices = ms_matrices_batched(morph[step])
        regional = regional_ms(matrices)
        _BATCH.update(
            output_dir=settings.output_dir,
            features=list(settings.features),
            who=[kept[i] for i in step],
            morph=morph[step],
            matrices=matrices,
            regional=regional,
            etiv=[etivs[i] for i in step],
            versions=[versions[i] for i in step],
            files=[files[i] for i in step],
        )
        _BATCH["global"] = global_ms(regional)
        try:
            results = _write_batch(settings.nprocs)
        finally:
            _BATCH.clear()
        for label, error in results:
            if error is None:
                outcome.done.append(label)
            else:
                outcome.failed[label] = error
        written += len(step)
        LOGGER.debug("MS derivatives written for %d of %d participant(s)", written, len(good))


def nipype_plugin_args(settings: ParticipantSettings) -> dict:
    """nipype plugin arguments: ``--nprocs`` and ``--mem`` for MultiProc, as fMRIPrep passes them."""
    plugin_args = {"n_procs": settings.nprocs, **settings.nipype_plugin_args}
    if settings.mem_gb is not None:
        plugin_args["memory_gb"] = settings.mem_gb
    if settings.nipype_plugin != "MultiProc":
        plugin_args.pop("n_procs", None)
        plugin_args.pop("memory_gb", None)
    return plugin_args


def _run_recon_all(settings: ParticipantSettings, todo: list, outcome: ParticipantOutcome) -> None:
    """Run the nipype workflow (recon-all + MS) for the participants that need it."""
    from ..interfaces.freesurfer import (
        ensure_fsaverage,
        find_freesurfer_home,
        find_license,
        freesurfer_environment,
        freesurfer_version,
    )
    from ..io.safety import check_output_path
    from ..workflows.base import ReconTarget, init_bids_ms_wf

    # recon-all writes into the subjects dir: never into bids_dir (through a link either)
    check_output_path(settings.subjects_dir / "fsaverage")
    labels = [participant_prefix(s, ses) for s, ses, _, _ in todo]
    needed_for = f" for {', '.join(labels[:5])}{' ...' if len(labels) > 5 else ''} (T1w given, no FreeSurfer outputs)"
    fs_home = find_freesurfer_home(needed_for=needed_for)
    license_path = find_license(settings.fs_license_file, fs_home=fs_home, needed_for=needed_for)
    version = freesurfer_version(fs_home)
    LOGGER.info(
        "FreeSurfer %s at %s; licence %s", version or "(unknown version)", fs_home, license_path
    )
    subjects_dir = settings.subjects_dir
    subjects_dir.mkdir(parents=True, exist_ok=True)
    ensure_fsaverage(subjects_dir, fs_home)
    os.environ.update(
        freesurfer_environment(fs_home, subjects_dir=subjects_dir, license_path=license_path)
    )
    targets = [ReconTarget(subject=s, session=ses, t1w=list(t1w)) for s, ses, _, t1w in todo]
    wf = init_bids_ms_wf(
        targets=targets,
        subjects_dir=subjects_dir,
        output_dir=settings.output_dir,
        work_dir=settings.work_dir,
        features=settings.features,
        omp_nthreads=settings.omp_nthreads,
        freesurfer_version=version,
        mem_gb=settings.mem_gb,
    )
    plugin_args = nipype_plugin_args(settings)
    LOGGER.info(
        "Running recon-all for %d participant(s) with nipype's %s plugin; this takes hours "
        "per participant (logs in %s)",
        len(targets),
        settings.nipype_plugin,
        subjects_dir,
    )
    # nipype's SLURM plugin reads $LOGNAME to find its jobs, unset in some batch shells
    os.environ.setdefault("LOGNAME", getpass.getuser())
    try:
        wf.run(plugin=settings.nipype_plugin, plugin_args=plugin_args)
    except RuntimeError as err:
        LOGGER.debug("nipype: %s", err)
    for target in targets:
        if (
            read_participant_sidecar(settings.output_dir, target.subject, target.session)
            is not None
        ):
            outcome.done.append(target.label)
        else:
            log = (
                subjects_dir
                / participant_prefix(target.subject, target.session)
                / "scripts"
                / "recon-all.log"
            )
            outcome.failed[target.label] = (
                f"recon-all or MS extraction failed; see {log} and the crash files in {settings.work_dir}"
            )
