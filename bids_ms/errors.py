"""Errors that bids-ms reports to users as one line, and the exit codes they map to.

The command line catches :class:`BidsMsError` and prints ``bids-ms: error: <message>``
without a traceback; every message names the file, participant or column at fault and
says what to do about it. It also maps the environment's errors: an :class:`OSError` on
writing exits 73 naming the path, a :class:`ValueError` that escaped the input checks exits
64, and anything else exits 70 with a crash file (the traceback) under ``output_dir/logs/``.
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_PARTICIPANT_FAILED",
    "EXIT_USAGE",
    "EXIT_SOFTWARE",
    "EXIT_CANTCREAT",
    "EXIT_INTERRUPTED",
    "EXIT_NO_LICENSE",
    "EXIT_NO_FREESURFER",
    "BidsMsError",
    "UsageError",
    "InputDataError",
    "FreeSurferLicenseError",
    "FreeSurferMissingError",
]

EXIT_OK = 0
#: Some participants failed; all others finished and their outputs are complete.
EXIT_PARTICIPANT_FAILED = 1
#: Command-line usage error (``EX_USAGE`` of BSD ``sysexits.h``, as argparse-based apps use).
EXIT_USAGE = 64
#: Internal error, a bug (``EX_SOFTWARE``): a crash file under ``output_dir/logs/`` holds
#: the traceback.
EXIT_SOFTWARE = 70
#: An output cannot be written (``EX_CANTCREAT``): read-only file system, disk full,
#: permission denied.
EXIT_CANTCREAT = 73
#: Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
#: recon-all is needed but no FreeSurfer licence was found ("cannot execute").
EXIT_NO_LICENSE = 126
#: recon-all is needed but the FreeSurfer binaries are not installed ("command not found").
EXIT_NO_FREESURFER = 127


class BidsMsError(Exception):
    """An error caused by the user's input, reported as one line."""

    exit_code: int = EXIT_USAGE


class UsageError(BidsMsError):
    """Bad command-line arguments or paths."""

    exit_code = EXIT_USAGE


class InputDataError(BidsMsError):
    """A file, table or participant that cannot be used as it is."""

    exit_code = EXIT_USAGE


class FreeSurferLicenseError(BidsMsError):
    """recon-all must run but no FreeSurfer licence file was found."""

    exit_code = EXIT_NO_LICENSE


class FreeSurferMissingError(BidsMsError):
    """recon-all must run but the FreeSurfer binaries were not found."""

    exit_code = EXIT_NO_FREESURFER
