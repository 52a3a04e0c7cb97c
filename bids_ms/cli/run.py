"""``bids-ms`` entry point: parse, check, dispatch to a level, map errors to exit codes.

No science and no workflow wiring here (sMRIPrep's ``cli/run.py`` model).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

from .. import __version__
from ..errors import EXIT_OK, EXIT_USAGE, BidsMsError

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
    from datetime import datetime, timezone

    logs = output_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    handler = logging.FileHandler(logs / f"bids-ms_{level}_{stamp}_{os.getpid()}.log")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    LOGGER.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Run bids-ms; return the exit code (0, 1, 64, 126 or 127)."""
    os.environ.setdefault("NIPYPE_NO_ET", "1")  # no network calls at run time
    from .parser import get_parser, parse_features

    parser = get_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; BIDS-Apps use 64
        code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        return EXIT_USAGE if code == 2 else code
    _setup_logging(args.verbose - args.quiet, None)
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
        return 130


def _dispatch(args, features: tuple[str, ...]) -> int:
    from ..bids import check_paths, validate_bids

    work_dir = args.work_dir or Path(tempfile.gettempdir()) / "bids-ms_work"
    response_only = args.analysis_level == "group" and args.response_map is not None
    bids_dir, output_dir = check_paths(args.bids_dir, args.output_dir, work_dir)
    if not (args.skip_bids_validation or args.reports_only or response_only):
        validate_bids(bids_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _add_log_file(output_dir, args.analysis_level)
    LOGGER.info(
        "bids-ms %s, %s level: %s -> %s", __version__, args.analysis_level, bids_dir, output_dir
    )
    if args.reports_only:
        return _reports(args.analysis_level, output_dir, args.participant_label)
    if args.analysis_level == "participant":
        return _participant(args, bids_dir, output_dir, work_dir, features)
    return _group(args, bids_dir, output_dir)


def _reports(level: str, output_dir: Path, labels: list[str] | None) -> int:
    from .report_options import build_reports

    paths = build_reports(level, output_dir, participant_label=labels)
    if len(paths) == 1:
        LOGGER.info("report: %s", paths[0])
    elif paths:
        LOGGER.info("%d participant reports written (e.g. %s)", len(paths), paths[0])
    return EXIT_OK


def _participant(args, bids_dir: Path, output_dir: Path, work_dir: Path, features) -> int:
    from ..bids import read_bids_filters
    from ..participant import ParticipantSettings, run_participant_level

    settings = ParticipantSettings(
        bids_dir=bids_dir,
        output_dir=output_dir,
        work_dir=Path(work_dir).resolve(),
        participant_labels=args.participant_label,
        session_labels=args.session_label,
        features=features,
        fs_subjects_dir=args.fs_subjects_dir.resolve() if args.fs_subjects_dir else None,
        fs_stats_tables=args.fs_stats_tables.resolve() if args.fs_stats_tables else None,
        fs_license_file=args.fs_license_file,
        nprocs=args.nprocs,
        omp_nthreads=args.omp_nthreads or min(8, args.nprocs),
        nipype_plugin=args.nipype_plugin,
        nipype_plugin_args=args.nipype_plugin_args,
        overwrite=args.overwrite,
        fs_longitudinal=args.fs_longitudinal,
        fs_reconall_missing=args.fs_reconall_missing,
        bids_filters=read_bids_filters(args.bids_filter_file) if args.bids_filter_file else None,
        bids_database_dir=args.bids_database_dir,
        mem_gb=args.mem_gb,
    )
    outcome = run_participant_level(settings)
    LOGGER.info(
        "participant level finished: %d processed, %d already done, %d failed",
        len(outcome.done),
        len(outcome.skipped),
        len(outcome.failed),
    )
    if outcome.done:
        # fMRIPrep-style pages, sub-<label>.html, for the participants processed now
        _reports(
            "participant", output_dir, sorted({label.split("_")[0][4:] for label in outcome.done})
        )
    if outcome.failed:
        print(f"bids-ms: {len(outcome.failed)} participant(s) failed:", file=sys.stderr)
        for label, why in outcome.failed.items():
            print(f"  {label}: {why}", file=sys.stderr)
    return outcome.exit_code


def _group(args, bids_dir: Path, output_dir: Path) -> int:
    from .group_options import group_settings_from_args
    from .transcriptomics_options import transcriptomics_settings_from_args

    transcriptomics = transcriptomics_settings_from_args(args)
    if args.response_map is not None:
        # Only the map-based stages: no participant data needed (issue 4).
        from ..transcriptomics import run_response_map

        run_response_map(transcriptomics, output_dir=output_dir, seed=args.seed)
    else:
        from ..group import run_group_level

        settings = group_settings_from_args(args)
        settings.bids_dir = bids_dir
        settings.output_dir = output_dir
        settings.transcriptomics = transcriptomics
        run_group_level(settings)
    return _reports("group", output_dir, None)
