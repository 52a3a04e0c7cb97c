"""Safe writing: atomic files, never into ``bids_dir``, all-or-nothing stages, stale-file cleanup.

Every file bids-ms writes goes through :func:`atomic_write_bytes` (via
:mod:`bids_ms.io.derivatives`), which

* resolves the path (following symlinks) and refuses, with a one-line
  :class:`~bids_ms.errors.UsageError` (exit 64), any path whose real location is inside a
  protected folder (``bids_dir``; the README promises never to write there);
* writes a temporary file ``.<name>.pid<PID>.<random>.tmp`` beside the target, then
  :func:`os.replace` — a crash never leaves a half-written file under the final name;
* inside :func:`staged`, keeps the temporary files until the stage succeeds, then
  renames them all; when the stage fails, removes them all (a group level that stops
  half-way leaves none of its new results, and a log line says so);
* names the file in any :class:`OSError` (a full disk raises ``ENOSPC`` from ``write()``
  without a file name), so the command line can say which path could not be written.

:func:`clean_stale` removes the temporary files of runs that were killed (their process
is gone) and participant folders left half-done, logging what it removed. Worker processes
start with :func:`die_with_parent`, so that a killed run leaves no worker writing on behind it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError

__all__ = [
    "protect",
    "protected_dirs",
    "check_output_path",
    "refuse_links_into_protected",
    "register_run",
    "atomic_write_bytes",
    "staged",
    "checkpoint",
    "clean_stale",
    "die_with_parent",
]

LOGGER = logging.getLogger("bids_ms")

#: Environment variable with the protected folders (inherited by nipype's worker processes).
_ENV = "BIDS_MS_PROTECTED_DIRS"
_TMP_RE = re.compile(r"^\..+\.pid(?P<pid>\d+)\.[^.]+\.tmp$")
#: Temporary files kept until their stage commits (``None``: no stage active).
_STAGE: list[tuple[Path, Path]] | None = None
#: The name of the active stage, for the log lines.
_STAGE_NAME = ""


def protect(*dirs: str | Path) -> None:
    """Refuse from now on every write whose real location is inside one of ``dirs``."""
    have = protected_dirs()
    for d in dirs:
        real = Path(d).expanduser().resolve()
        if real not in have:
            have.append(real)
    os.environ[_ENV] = os.pathsep.join(str(p) for p in have)


def protected_dirs() -> list[Path]:
    """The folders no output may be written into."""
    return [Path(p) for p in os.environ.get(_ENV, "").split(os.pathsep) if p]


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_output_path(path: str | Path) -> Path:
    """Resolve ``path`` (symlinks followed) and return it, or refuse a protected location.

    Raises
    ------
    UsageError
        The real location of ``path`` (or of its folder) is inside ``bids_dir``.
    """
    path = Path(path)
    for real in (path.parent.resolve() / path.name, path.resolve()):
        for root in protected_dirs():
            if _within(real, root):
                raise UsageError(
                    f"{path}: resolves to {real}, inside the BIDS dataset {root} (through a "
                    "symbolic link); bids-ms never writes into bids_dir: remove the link or "
                    "choose another output folder"
                )
    return path


def refuse_links_into_protected(output_dir: str | Path, *, depth: int = 4) -> None:
    """Refuse an output folder with a symbolic link (to a file or folder) into ``bids_dir``.

    Checked at start, so the run stops before anything is written; every write checks
    its own path too (:func:`check_output_path`). ``sourcedata/`` is not searched: it holds
    FreeSurfer subjects, which may be links to where they already are.

    Raises
    ------
    UsageError
        Such a link, naming it and where it points.
    """
    out = Path(output_dir)
    roots = protected_dirs()
    if not roots or not out.is_dir():
        return
    for root, dirs, files in os.walk(out):
        here = Path(root)
        rel_depth = len(here.relative_to(out).parts)
        if rel_depth == 0 and "sourcedata" in dirs:
            dirs.remove("sourcedata")
        for name in [*dirs, *files]:
            path = here / name
            if path.is_symlink():
                real = path.resolve()
                for protected in roots:
                    if _within(real, protected):
                        raise UsageError(
                            f"{path}: a symbolic link to {real}, inside the BIDS dataset "
                            f"{protected}; bids-ms never writes into bids_dir: remove the link "
                            "or choose another output folder"
                        )
        if rel_depth >= depth:
            dirs.clear()


def _run_marker(output_dir: Path, pid: int) -> Path:
    return Path(output_dir) / "logs" / f".bids-ms.pid{pid}.running"


def register_run(output_dir: str | Path) -> None:
    """Mark ``output_dir`` as in use by this process (removed at exit).

    :func:`clean_stale` leaves half-written participant folders alone while another
    bids-ms process writes into the same folder (parallel runs are supported).
    """
    marker = _run_marker(Path(output_dir), os.getpid())
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{os.getpid()}\n")
    atexit.register(lambda: marker.unlink(missing_ok=True))


def _other_runs(output_dir: Path) -> list[int]:
    alive = []
    for marker in (output_dir / "logs").glob(".bids-ms.pid*.running"):
        try:
            pid = int(marker.name.split(".pid")[1].split(".")[0])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid():
            continue
        if _alive(pid):
            alive.append(pid)
        else:
            marker.unlink(missing_ok=True)
    return alive


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, never into a protected folder.

    Raises
    ------
    UsageError
        ``path`` resolves into ``bids_dir``.
    OSError
        The file cannot be written; ``filename`` is always set to ``path``.
    """
    path = check_output_path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        if _STAGE is not None:
            _STAGE.append((Path(tmp), path))
            return
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)
        raise


def _commit(pending: list[tuple[Path, Path]], name: str) -> None:
    final = None
    try:
        for tmp, final in pending:
            os.replace(tmp, final)
    except OSError as err:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        if err.filename is None:
            err.filename = str(final)
        raise
    if pending:
        LOGGER.info("%s: %d file(s) written", name, len(pending))


@contextlib.contextmanager
def staged(name: str) -> Iterator[None]:
    """Write everything inside the block, or nothing: commit on success, discard on error.

    Parameters
    ----------
    name : str
        What the stage is, for the log lines (e.g. ``"group level"``). :func:`checkpoint`
        inside the block commits what came before and starts the next stage.
    """
    global _STAGE, _STAGE_NAME
    if _STAGE is not None:  # nested: the outer stage decides
        yield
        return
    _STAGE, _STAGE_NAME = [], name
    try:
        yield
    except BaseException:
        pending, _STAGE = _STAGE, None
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        LOGGER.warning(
            "%s stopped: none of its %d new file(s) were written (earlier results, if any, "
            "are unchanged); rerun the same command",
            _STAGE_NAME,
            len(pending),
        )
        raise
    pending, _STAGE = _STAGE, None
    _commit(pending, _STAGE_NAME)


def checkpoint(done: str, *, next_stage: str) -> None:
    """Inside :func:`staged`: commit the files of the stage ``done`` and stage ``next_stage``.

    Outside a stage this does nothing (files are written as they come).
    """
    global _STAGE, _STAGE_NAME
    if _STAGE is None:
        return
    pending, _STAGE = _STAGE, []
    _commit(pending, done)
    _STAGE_NAME = next_stage


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs: a zombie (dead, not yet reaped, as the workers of a
    killed run are for a moment) no longer writes, so it counts as gone."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it ended meanwhile: trust kill()
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _stale_tmp(path: Path) -> bool:
    m = _TMP_RE.match(path.name)
    if m is None:
        # temporary files of bids-ms versions without the pid in the name
        return path.name.startswith(".") and path.name.endswith(".tmp")
    return not _alive(int(m.group("pid")))


def clean_stale(output_dir: str | Path, *, expected: dict[Path, list[Path]] | None = None) -> int:  # noqa: C901 - a branch per kind of leftover file
    """Remove what killed runs left behind; return the number of files removed.

    Parameters
    ----------
    output_dir : Path
        The bids-ms output folder. Temporary files ``.<name>[.pid<PID>].<random>.tmp`` of
        processes that no longer run are removed (``sourcedata/`` is left alone: it
        belongs to FreeSurfer).
    expected : dict of Path to list of Path, optional
        For each participant ``anat/`` folder, the files a complete participant has
        (the last one written marks completion). A folder with some but not the marker
        is half-done: its bids-ms files are removed, and the folder when it is empty.
    """
    out = Path(output_dir)
    removed: list[Path] = []
    if not out.is_dir():
        return 0
    for root, dirs, files in os.walk(out):
        if Path(root) == out and "sourcedata" in dirs:
            dirs.remove("sourcedata")
        for name in files:
            path = Path(root) / name
            if name.endswith(".tmp") and _stale_tmp(path):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    half_done = []
    others = _other_runs(out) if expected else []
    if others:
        LOGGER.debug(
            "other bids-ms processes (%s) write into %s: half-done folders left alone",
            ", ".join(map(str, others)),
            out,
        )
        expected = {}
    for anat, files in (expected or {}).items():
        marker = files[-1]
        if marker.is_file():
            continue
        present = [f for f in files if f.is_file()]
        if not present:
            continue
        half_done.append(anat)
        for f in present:
            with contextlib.suppress(OSError):
                f.unlink()
                removed.append(f)
        with contextlib.suppress(OSError):
            anat.rmdir()
    tmp_count = len(removed) - sum(1 for f in removed if f.parent in half_done)
    if tmp_count:
        LOGGER.info("removed %d temporary file(s) left by an interrupted run in %s", tmp_count, out)
    if half_done:
        LOGGER.info(
            "removed the half-written outputs of %d participant folder(s) left by an "
            "interrupted run (%s); they are processed again",
            len(half_done),
            ", ".join(str(p.relative_to(out)) for p in half_done[:5])
            + (" ..." if len(half_done) > 5 else ""),
        )
    return len(removed)


#: ``PR_SET_PDEATHSIG`` of Linux's ``prctl(2)``.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Make this (worker) process receive SIGKILL when its parent, pid ``parent``, dies.

    The initializer of every worker pool (``initargs=(os.getpid(),)``): a run killed with
    SIGKILL (a scheduler's time limit, the out-of-memory killer) cannot stop its workers
    itself, and forked workers keep the pool's pipes open, so they would wait, or write, on
    behind it. Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` ends them with it (``prctl(2)``);
    elsewhere this does nothing. A parent that died before the call is caught by comparing
    ``getppid`` with ``parent`` (which may be 1: the run is pid 1 in a container). Linux
    sends the signal when the thread that started the worker ends: pools are started from
    the run's main thread.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the worker ends when its pipes close
        return
    if os.getppid() != parent:  # the parent was gone before prctl took effect
        os._exit(1)
