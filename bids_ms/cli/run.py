"""``bids-ms`` entry point: parse, check, dispatch to a level, map errors to exit codes.

No science and no workflow wiring here (sMRIPrep's ``cli/run.py`` model).

One error path: every failure ends in one line on stderr, ``bids-ms: error: ...``, and a
documented exit code (``--help`` lists them): 64 for input errors (a
:class:`~bids_ms.errors.BidsMsError`, or a :class:`ValueError` that escaped the input
checks), 73 when an output cannot be written (:class:`OSError`: read-only file system,
full disk, permission denied), 70 for anything else, a bug, with the traceback in a crash
file under ``output_dir/logs/`` (as fMRIPrep writes its crash files).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path

from .. import __url__, __version__
from ..errors import (
    EXIT_CANTCREAT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    BidsMsError,
)

__all__ = ["main"]

LOGGER = logging.getLogger("bids_ms")


def _setup_logging(verbosity: int, output_dir: Path | None) -> None:
    level = max(logging.DEBUG, logging.INFO - 10 * verbosity)
    LOGGER.setLevel(level)
    LOGGER.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s [bids-ms] %(levelname)s: %(message)s", "%H:%M:%S")
    )
    LOGGER.addHandler(handler)
    LOGGER.propagate = False
    if level > logging.DEBUG:
        warnings.filterwarnings("ignore")
        for name in ("nipype.workflow", "nipype.interface", "nipype.utils"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _add_log_file(output_dir: Path, level: str) -> None:
    logs = output_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    handler = logging.FileHandler(logs / f"bids-ms_{level}_{stamp}_{os.getpid()}.log")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    LOGGER.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Run bids-ms; return the exit code (0, 1, 64, 70, 73, 126, 127 or 130)."""
    os.environ.setdefault("NIPYPE_NO_ET", "1")  # no network calls at run time
    from .parser import get_parser
    from .types import parse_features

    parser = get_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; BIDS-Apps use 64
        code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        return EXIT_USAGE if code == 2 else code
    _setup_logging(args.verbose - args.quiet, None)
    # A log file on a full disk must not print tracebacks ("--- Logging error ---").
    logging.raiseExceptions = False
    try:
        features = parse_features(args.features)
    except Exception as err:  # argparse.ArgumentTypeError
        print(f"bids-ms: error: --features: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _dispatch(args, features)
    except BidsMsError as err:
        LOGGER.debug("error", exc_info=True)
        print(f"bids-ms: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("bids-ms: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        LOGGER.debug("environment error", exc_info=True)
        code, message = _environment_error(err, args)
        print(f"bids-ms: error: {message}", file=sys.stderr)
        return code
    except ValueError as err:
        # Input the checks did not catch: still one line, with the details kept for a report.
        crash = _write_crash(args.output_dir)
        print(
            f"bids-ms: error: {_one_line(err)}; the input could not be used (check the files "
            f"and columns given; details in {crash})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except Exception as err:
        crash = _write_crash(args.output_dir)
        print(
            f"bids-ms: error: internal error ({type(err).__name__}: {_one_line(err)}); the "
            f"traceback is in {crash}; please report it with that file at {__url__}/issues",
            file=sys.stderr,
        )
        return EXIT_SOFTWARE


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


_WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _environment_error(err: OSError, args) -> tuple[int, str]:
    """Exit code and one-line message for an OSError: writing (73) or reading (64)."""
    path = err.filename or err.filename2
    reason = err.strerror or _one_line(err)
    where = None
    if path is not None:
        real = Path(os.fsdecode(path)).expanduser().absolute()
        roots = [Path(args.output_dir).expanduser().absolute()]
        if args.work_dir:
            roots.append(Path(args.work_dir).expanduser().absolute())
        where = any(real == r or r in real.parents for r in roots)
    writing = err.errno in _WRITE_ERRNOS or where is not False
    if not writing:
        return EXIT_USAGE, (
            f"cannot read {path}: {reason}; make it readable for this user or give another file"
        )
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = (
            "the disk is full (or the quota reached): free space or choose another output_dir, "
            "then rerun the same command to finish"
        )
    elif err.errno == errno.EROFS:
        fix = "the file system is read-only: choose an output_dir on a writable file system"
    elif err.errno in (errno.EACCES, errno.EPERM):
        fix = (
            "permission denied: make the folder writable for this user (chmod/chown) or "
            "choose another output_dir"
        )
    else:
        fix = "check the output folder, or choose another output_dir, and rerun the same command"
    return EXIT_CANTCREAT, f"cannot write {path or args.output_dir}: {reason}; {fix}"


def _write_crash(output_dir: Path) -> Path | str:
    """Write the current exception's traceback to ``<out>/logs/crash-*.txt`` (else a temp dir)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    text = (
        f"bids-ms {__version__}, Python {sys.version.split()[0]}\n"
        f"command: {' '.join(sys.argv)}\n\n{traceback.format_exc()}"
    )
    for folder in (Path(output_dir) / "logs", Path(tempfile.gettempdir())):
        path = folder / f"crash-{stamp}-{os.getpid()}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        LOGGER.debug("crash file: %s", path)
        return path.resolve()
    return "(no crash file could be written)"


def _dispatch(args, features: tuple[str, ...]) -> int:
    from ..io.bids import check_paths, validate_bids
    from ..io.safety import protect, refuse_links_into_protected, register_run

    work_dir = args.work_dir or Path(tempfile.gettempdir()) / "bids-ms_work"
    response_only = args.analysis_level == "group" and args.response_map is not None
    bids_dir, output_dir = check_paths(args.bids_dir, args.output_dir, work_dir)
    # every option is checked here, once, by the settings: before anything is written
    settings = _settings(args, bids_dir, output_dir, work_dir, features)
    protect(bids_dir)  # every write checks that its real path is outside bids_dir
    refuse_links_into_protected(output_dir)
    if not (args.skip_bids_validation or args.reports_only or response_only):
        validate_bids(bids_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _add_log_file(output_dir, args.analysis_level)
    register_run(output_dir)
    LOGGER.info(
        "bids-ms %s, %s level: %s -> %s", __version__, args.analysis_level, bids_dir, output_dir
    )
    if args.reports_only:
        return _reports(
            args.analysis_level,
            output_dir,
            args.participant_label,
            mode=args.participant_reports,
            nprocs=args.nprocs,
        )
    _clean_stale(output_dir)
    if args.analysis_level == "participant":
        return _participant(args, settings)
    return _group(args, settings)


def _settings(args, bids_dir: Path, output_dir: Path, work_dir: Path, features):
    """The settings of the level asked for (:mod:`bids_ms.cli.settings`), checked."""
    from .settings import group_settings_from_args, participant_settings_from_args

    if args.analysis_level == "group":
        return group_settings_from_args(args, bids_dir=bids_dir, output_dir=output_dir)
    from ..io.bids import read_bids_filters

    filters = read_bids_filters(args.bids_filter_file) if args.bids_filter_file else None
    return participant_settings_from_args(
        args,
        bids_dir=bids_dir,
        output_dir=output_dir,
        work_dir=work_dir,
        features=features,
        bids_filters=filters,
    )


def _clean_stale(output_dir: Path) -> None:
    from ..io.safety import clean_stale
    from ..levels.participant import expected_participant_files

    clean_stale(output_dir, expected=expected_participant_files(output_dir))


def _reports(
    level: str,
    output_dir: Path,
    labels: list[str] | None,
    *,
    mode: str | None = "all",
    nprocs: int = 1,
) -> int:
    from .report_options import build_reports

    paths = build_reports(
        level, output_dir, participant_label=labels, participant_reports=mode, nprocs=nprocs
    )
    if len(paths) == 1:
        LOGGER.info("report: %s", paths[0])
    elif paths:
        LOGGER.info("%d participant reports written (e.g. %s)", len(paths), paths[0])
    return EXIT_OK


def _participant(args, settings) -> int:
    from ..levels.participant import run_participant_level
    from ..reports.participant_report import pages_to_write

    output_dir = settings.output_dir
    outcome = run_participant_level(settings)
    LOGGER.info(
        "participant level finished: %d processed, %d already done, %d failed",
        len(outcome.done),
        len(outcome.skipped),
        len(outcome.failed),
    )
    # fMRIPrep-style pages, sub-<label>.html: for the participants processed now and for
    # those done before whose page is missing or incomplete (a run stopped in the page phase)
    # (--participant-reports none or flagged: a participant without a page is still done)
    mode = args.participant_reports
    pages = pages_to_write(output_dir, outcome.done, outcome.skipped, mode=mode)
    if mode == "none":
        LOGGER.info("participant pages: none (--participant-reports none)")
    if pages:
        missing = len(pages) - len({label.split("_")[0][4:] for label in outcome.done})
        if missing > 0:
            LOGGER.info(
                "%d participant page(s) missing or incomplete: written %s",
                missing,
                "if flagged" if mode == "flagged" else "now",
            )
        _reports("participant", output_dir, pages, mode=mode, nprocs=settings.nprocs)
    if outcome.failed:
        print(f"bids-ms: {len(outcome.failed)} participant(s) failed:", file=sys.stderr)
        for label, why in outcome.failed.items():
            print(f"  {label}: {why}", file=sys.stderr)
    return outcome.exit_code


def _group(args, settings) -> int:
    from ..config import resolve_seed
    from ..io.safety import staged

    output_dir = settings.output_dir
    # All of the group level's new files, or none of them (plus a log line).
    if args.response_map is not None:
        # Only the map-based stages: no participant data needed; the run's seed and spins.
        from ..levels.transcriptomics import run_response_map

        with staged("group level (response map)"):
            run_response_map(
                settings.transcriptomics,
                output_dir=output_dir,
                seed=resolve_seed(settings.seed),
                n_spins=settings.n_spins,
            )
    else:
        from ..levels.group import run_group_level

        with staged("group level"):
            run_group_level(settings)
    return _reports("group", output_dir, None)
