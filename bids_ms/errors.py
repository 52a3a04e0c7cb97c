"""Errors that bids-ms reports to users as one line, and the exit codes they map to.

The command line catches :class:`BidsMsError` and prints ``bids-ms: error: <message>``
without a traceback; every message names the file, participant or column at fault and
says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_PARTICIPANT_FAILED",
    "EXIT_USAGE",
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
