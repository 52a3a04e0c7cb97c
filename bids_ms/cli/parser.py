"""The bids-ms command line (BIDS-Apps convention: ``bids_dir output_dir level [options]``).

Options accept dash and underscore spellings (``--participant-label`` and
``--participant_label``), as fMRIPrep's do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..config import ParticipantSettings, default_of
from .group_options import add_group_arguments
from .report_options import add_report_arguments
from .settings import add_option
from .transcriptomics_options import add_transcriptomics_arguments
from .types import both_spellings, memory_gb, plugin_args, whole_number

__all__ = ["get_parser"]

DESCRIPTION = f"""\
bids-ms {__version__}: morphometric-similarity (MS) networks from T1-weighted MRI, their
case–control differences, and the genes and cell types that explain where the brain
changed (Martins et al. 2022, PAIN 163:e759).

participant level: FreeSurfer recon-all (or existing FreeSurfer outputs), then per
participant 5 features of the 68 Desikan–Killiany regions, the 68x68 MS matrix, regional
and global MS, written as BIDS derivatives in output_dir.
group level: case–control models, hub susceptibility, von Economo classes, reference maps,
cross-cohort PCA, PLS of Allen Human Brain Atlas expression and enrichment, in
output_dir/group/.
"""

EPILOG = """\
examples:
  # FreeSurfer from the T1w images (needs a FreeSurfer licence):
  bids-ms /data/bids /data/out participant --fs-license-file ~/license.txt --nprocs 8
  # reuse existing recon-all subjects (sub-<label>_ses-<label>, else sub-<label>), e.g.
  # fMRIPrep's, with the T1w runs fMRIPrep used and a shared pybids index:
  bids-ms /data/bids /data/out participant \
      --fs-subjects-dir /data/derivatives/fmriprep/sourcedata/freesurfer \
      --bids-filter-file filter.json --bids-database-dir /scratch/pybids_db
  # import aparcstats2table/asegstats2table tables:
  bids-ms /data/bids /data/out participant --fs-stats-tables /data/tables
  # then the group level:
  bids-ms /data/bids /data/out group

exit codes (one line on stderr says what and how to fix it; never a traceback):
  0   success
  1   some participant failed (the others finished; failures listed)
  64  usage or input error (bad option, file, column or value; an output path that
      resolves into bids_dir)
  70  internal error (a bug): the traceback is in a crash file under output_dir/logs/
  73  cannot write the outputs (read-only file system, disk full, permission denied);
      fix it and rerun the same command: finished work is kept
  126 recon-all needed but no FreeSurfer licence
  127 recon-all needed but FreeSurfer not installed
  130 interrupted (Ctrl-C); rerun the same command to resume
"""


def get_parser() -> argparse.ArgumentParser:
    """Build the bids-ms argument parser (participant, group and shared options)."""
    parser = argparse.ArgumentParser(
        prog="bids-ms",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="root folder of the BIDS dataset (read only)")
    parser.add_argument(
        "output_dir", type=Path, help="derivatives folder to write (must be outside bids_dir)"
    )
    parser.add_argument(
        "analysis_level",
        choices=["participant", "group"],
        help="participant: FreeSurfer and MS per participant; group: statistics over all",
    )
    parser.add_argument("--version", action="version", version=f"bids-ms {__version__}")

    add_selection_arguments(parser)
    add_freesurfer_arguments(parser)
    add_execution_arguments(parser)

    add_group_arguments(parser)
    add_transcriptomics_arguments(parser)
    add_report_arguments(parser)

    add_message_arguments(parser)
    return parser


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Which participants, sessions and runs (the 'selecting data' options)."""
    sel = parser.add_argument_group("selecting data")
    sel.add_argument(
        *both_spellings("--participant-label"),
        dest="participant_label",
        nargs="+",
        metavar="LABEL",
        help="participants to process, with or without 'sub-' (default: all)",
    )
    sel.add_argument(
        *both_spellings("--session-label"),
        dest="session_label",
        nargs="+",
        metavar="LABEL",
        help="sessions to process, with or without 'ses-' (default: all; each session is "
        "processed as its own FreeSurfer subject sub-<L>_ses-<S>)",
    )
    sel.add_argument(
        *both_spellings("--bids-filter-file"),
        dest="bids_filter_file",
        type=Path,
        metavar="FILE",
        help='JSON file of pybids queries in fMRIPrep\'s format; its "t1w" entry selects the '
        'T1w images, e.g. {"t1w": {"acquisition": "mprage", "reconstruction": null}} '
        '(null: entity absent; "*": any value; default: every T1w, each a recon-all -i)',
    )
    sel.add_argument(
        *both_spellings("--bids-database-dir"),
        dest="bids_database_dir",
        type=Path,
        metavar="DIR",
        help="folder of a pybids index (SQLite): made on the first run and reused by the next "
        "ones, so SLURM array tasks do not each re-index a large dataset; delete it after the "
        "dataset changes",
    )
    sel.add_argument(
        *both_spellings("--skip-bids-validation"),
        dest="skip_bids_validation",
        action="store_true",
        help="do not run bids-validator-deno on bids_dir (it runs when installed)",
    )


def add_freesurfer_arguments(parser: argparse.ArgumentParser) -> None:
    """FreeSurfer licence, subjects, tables and the MS features."""
    fs = parser.add_argument_group("FreeSurfer")
    fs.add_argument(
        *both_spellings("--fs-license-file"),
        dest="fs_license_file",
        type=Path,
        metavar="FILE",
        help="FreeSurfer licence file (default: $FS_LICENSE, else $FREESURFER_HOME/license.txt); "
        "free from https://surfer.nmr.mgh.harvard.edu/registration.html",
    )
    fs.add_argument(
        *both_spellings("--fs-subjects-dir"),
        dest="fs_subjects_dir",
        type=Path,
        metavar="DIR",
        help="FreeSurfer SUBJECTS_DIR to reuse; subjects named sub-<label>_ses-<label>, else "
        "sub-<label> (fMRIPrep's layout, used for every session), else with --fs-longitudinal "
        "sub-<label>_ses-<label>.long.<base> (default: <output_dir>/sourcedata/freesurfer, "
        "where recon-all runs)",
    )
    fs.add_argument(
        *both_spellings("--fs-longitudinal"),
        dest="fs_longitudinal",
        action="store_true",
        help="use FreeSurfer longitudinal subjects sub-<label>_ses-<label>.long.<base> (in "
        "--fs-subjects-dir or the tables) in preference to the cross-sectional ones",
    )
    fs.add_argument(
        *both_spellings("--fs-reconall-missing"),
        dest="fs_reconall_missing",
        action="store_true",
        help="run recon-all into --fs-subjects-dir for participants it lacks, even though it "
        "holds other subjects (default: list them and stop, leaving your folder untouched)",
    )
    fs.add_argument(
        *both_spellings("--fs-stats-tables"),
        dest="fs_stats_tables",
        type=Path,
        metavar="DIR",
        help="folder of aparcstats2table (per hemisphere and measure) and asegstats2table "
        "tables, recognised by their header line whatever the file names; no recon-all",
    )
    fs.add_argument(
        "--features",
        nargs="+",
        metavar="FEATURE",
        default=[",".join(default_of(ParticipantSettings, "features"))],
        help="morphometric features, comma or space separated (default: all five: "
        f"{' '.join(default_of(ParticipantSettings, 'features'))})",
    )


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """Processes, memory, work folder, nipype plugin and resuming."""
    perf = parser.add_argument_group("performance and execution")
    add_option(
        perf,
        ParticipantSettings,
        "nprocs",
        "--n-cpus",
        "--n_cpus",
        type=whole_number,
        help="processes run at once by nipype's MultiProc plugin (default: all CPUs)",
    )
    add_option(
        perf,
        ParticipantSettings,
        "omp_nthreads",
        type=whole_number,
        help="threads per recon-all (-openmp; default: min(8, nprocs))",
    )
    add_option(
        perf,
        ParticipantSettings,
        "mem_gb",
        *both_spellings("--mem-gb"),
        type=memory_gb,
        metavar="GB",
        help="memory limit of nipype's MultiProc plugin in GB (memory_gb); units may be given, "
        "e.g. 16G or 16000M (unlike fMRIPrep, a bare number is GB; default: nipype's, 90%% "
        "of the machine's memory)",
    )
    perf.add_argument(
        "-w",
        *both_spellings("--work-dir"),
        dest="work_dir",
        type=Path,
        metavar="DIR",
        help="nipype working folder for recon-all runs (default: $TMPDIR/bids-ms_work); "
        "must be outside bids_dir",
    )
    add_option(
        perf,
        ParticipantSettings,
        "nipype_plugin",
        help="nipype execution plugin: %(default)s (default), Linear, SLURM, SGE, PBS, ... "
        "(cluster plugins submit one job per node)",
    )
    add_option(
        perf,
        ParticipantSettings,
        "nipype_plugin_args",
        type=plugin_args,
        metavar="JSON",
        help='plugin arguments as JSON or a JSON file, e.g. \'{"sbatch_args": "-p short"}\'',
    )
    perf.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing participant derivatives made with other settings "
        "(default: finished participants are skipped, different ones are an error)",
    )


def add_message_arguments(parser: argparse.ArgumentParser) -> None:
    """Verbosity, and fMRIPrep's --notrack."""
    log = parser.add_argument_group("messages")
    log.add_argument(
        "--notrack",
        dest="notrack",
        action="store_true",
        help="accepted for fMRIPrep scripts and does nothing: bids-ms has no telemetry and "
        "sends nothing anywhere",
    )
    log.add_argument(
        "-v",
        "--verbose",
        dest="verbose",
        action="count",
        default=0,
        help="more messages (-vv: debug)",
    )
    log.add_argument(
        "-q", "--quiet", dest="quiet", action="count", default=0, help="fewer messages"
    )
