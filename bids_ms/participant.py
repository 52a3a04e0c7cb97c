"""The participant level: decide where each participant's FreeSurfer outputs come from,
run recon-all where needed (through the nipype workflow), and write MS derivatives.

Sources, in order of preference for each participant (and session):

1. ``--fs-stats-tables``: a row of aparcstats2table/asegstats2table tables (``tables``);
2. ``--fs-subjects-dir`` (default ``<out>/sourcedata/freesurfer``): a finished subject
   ``sub-<L>`` or ``sub-<L>_ses-<S>`` with ``stats/?h.aparc.stats`` (``subjects-dir``);
3. the participant's T1w images in ``bids_dir``: recon-all (``recon-all``).

A participant that fails does not stop the others; the run ends with exit code 1 and
the list of failures.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .atlas import FEATURES
from .bids import BidsInputs, collect_inputs, match_subject_ids
from .derivatives import (
    derive_participant,
    ensure_dataset_description,
    participant_prefix,
    read_participant_sidecar,
)
from .errors import EXIT_OK, EXIT_PARTICIPANT_FAILED, BidsMsError, InputDataError
from .fsstats import StatsTables, read_stats_tables, read_subject_stats
from .progress import progress

__all__ = ["ParticipantSettings", "ParticipantOutcome", "run_participant_level"]

LOGGER = logging.getLogger("bids_ms")


@dataclass
class ParticipantSettings:
    """Everything the participant level needs, as parsed from the command line."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    participant_labels: list[str] | None = None
    session_labels: list[str] | None = None
    features: tuple[str, ...] = FEATURES
    fs_subjects_dir: Path | None = None
    fs_stats_tables: Path | None = None
    fs_license_file: Path | None = None
    nprocs: int = 1
    omp_nthreads: int = 1
    nipype_plugin: str = "MultiProc"
    nipype_plugin_args: dict = field(default_factory=dict)
    overwrite: bool = False

    @property
    def subjects_dir(self) -> Path:
        return self.fs_subjects_dir or (self.output_dir / "sourcedata" / "freesurfer")


@dataclass
class ParticipantOutcome:
    """What happened to each participant (and session)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTICIPANT_FAILED if self.failed else EXIT_OK


def _already_done(
    settings: ParticipantSettings, subject: str, session: str | None, source: str
) -> bool:
    """True when this participant's outputs exist with the same settings (resume).

    Raises
    ------
    InputDataError
        Outputs exist with other settings and ``--overwrite`` was not given.
    """
    sidecar = read_participant_sidecar(settings.output_dir, subject, session)
    if sidecar is None or settings.overwrite:
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


def _fs_subject_dir(subjects_dir: Path, subject: str, session: str | None) -> Path | None:
    """A FreeSurfer subject with DK stats for this participant, if there is one."""
    names = [participant_prefix(subject, session)]
    if session is None:
        names.append(subject)
    for name in names:
        cand = subjects_dir / name
        if all((cand / "stats" / f"{h}.aparc.stats").is_file() for h in ("lh", "rh")):
            return cand
    return None


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
    """Assign a source to every participant/session: list of (subject, session, source, detail)."""
    plan = []
    table_ids: dict[str, str] = {}
    if tables is not None:
        table_ids = match_subject_ids(
            tables.subjects, inputs.subjects, source=str(settings.fs_stats_tables)
        )
        if not table_ids:
            raise InputDataError(
                f"{settings.fs_stats_tables}: no subject id of the tables matches a participant "
                f"of {settings.bids_dir} (tables have e.g. {', '.join(tables.subjects[:3])}; "
                f"participants are e.g. {', '.join('sub-' + s for s in inputs.subjects[:3])})"
            )
    for subject in inputs.subjects:
        if subject in table_ids:
            plan.append((subject, None, "tables", table_ids[subject]))
            continue
        for session in inputs.sessions_of(subject):
            fs_dir = _fs_subject_dir(settings.subjects_dir, subject, session)
            t1w = inputs.t1w.get((subject, session), [])
            if fs_dir is not None and (not t1w or _recon_finished(fs_dir)):
                plan.append((subject, session, "subjects-dir", fs_dir))
            elif t1w:
                plan.append((subject, session, "recon-all", t1w))
            else:
                plan.append((subject, session, "missing", None))
    return plan


def _recon_finished(fs_dir: Path) -> bool:
    from .interfaces.freesurfer import recon_all_complete

    # Stats from an external subjects dir are used as they are; our own sourcedata
    # subjects must have finished recon-all (else recon-all resumes them).
    return recon_all_complete(fs_dir) or not (fs_dir / "scripts").is_dir()


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
        try:
            if _already_done(settings, subject, session, source):
                outcome.skipped.append(label)
                continue
        except BidsMsError as err:
            outcome.failed[label] = str(err)
            continue
        todo.append((subject, session, source, detail))

    ensure_dataset_description(settings.output_dir, source=settings.bids_dir)
    LOGGER.info(
        "%d participant(s): %d to process, %d already done, %d without inputs",
        len(plan),
        len(todo),
        len(outcome.skipped),
        sum(1 for p in plan if p[2] == "missing"),
    )
    for subject, session, source, detail in progress(
        [t for t in todo if t[2] != "recon-all"], desc="MS networks", unit="participant"
    ):
        label = participant_prefix(subject, session)
        try:
            if source == "tables":
                morph = tables.morphometry(detail, settings.features)
                etiv = (
                    None
                    if tables.etiv is None or detail not in tables.etiv.index
                    else float(tables.etiv[detail])
                )
                files = [str(p) for p in tables.files.values()]
                version = None
            else:
                stats = read_subject_stats(detail, features=settings.features)
                morph, etiv, version = stats.morphometry, stats.etiv, stats.freesurfer_version
                files = [str(p) for p in stats.files]
            derive_participant(
                settings.output_dir,
                subject=subject,
                session=session,
                morphometry=morph,
                etiv=etiv,
                freesurfer_version=version,
                source=source,
                source_files=files,
            )
            outcome.done.append(label)
        except BidsMsError as err:
            outcome.failed[label] = str(err)
    recon_todo = [t for t in todo if t[2] == "recon-all"]
    if recon_todo:
        _run_recon_all(settings, recon_todo, outcome)
    return outcome


def _run_recon_all(settings: ParticipantSettings, todo: list, outcome: ParticipantOutcome) -> None:
    """Run the nipype workflow (recon-all + MS) for the participants that need it."""
    from .interfaces.freesurfer import (
        ensure_fsaverage,
        find_freesurfer_home,
        find_license,
        freesurfer_environment,
        freesurfer_version,
    )
    from .workflows.base import ReconTarget, init_bids_ms_wf

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
    )
    plugin_args = {"n_procs": settings.nprocs, **settings.nipype_plugin_args}
    if settings.nipype_plugin != "MultiProc":
        plugin_args.pop("n_procs", None)
    LOGGER.info(
        "Running recon-all for %d participant(s) with nipype's %s plugin; this takes hours "
        "per participant (logs in %s)",
        len(targets),
        settings.nipype_plugin,
        subjects_dir,
    )
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
