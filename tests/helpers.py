"""Helpers shared by the test modules: the command line's argv, headless Chromium, processes.

Output names and columns come from the package's contract, ``bids_ms.io.outputs``.

Fixtures live in ``conftest.py``; plain functions and constants that several test modules
use live here, so that each is written once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .conftest import EXAMPLE_BIDS, EXAMPLE_TABLES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def participant_argv(
    out: Path,
    labels: list[str],
    *extra,
    bids: Path = EXAMPLE_BIDS,
    tables: Path = EXAMPLE_TABLES,
) -> list[str]:
    """``python -m bids_ms`` for the participant level of the example's tables (3 features)."""
    return [
        sys.executable,
        "-m",
        "bids_ms",
        str(bids),
        str(out),
        "participant",
        "--fs-stats-tables",
        str(tables),
        "--features",
        "volume",
        "area",
        "thickness",
        "--skip-bids-validation",
        "--participant-label",
        *labels,
        *map(str, extra),
    ]


def render_dom(page: Path | str, profile: Path | None = None, *flags: str) -> tuple[str, str]:
    """Load ``page`` (a path, or a URI) in headless Chromium; return the DOM after load and
    Chromium's log. ``profile`` is the user-data folder (a temporary one by default)."""
    uri = page if isinstance(page, str) else Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile or tmp}",
                "--enable-logging=stderr",
                "--v=0",
                *flags,
                "--dump-dom",
                uri,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def page_checks(dom: str) -> dict[str, int]:
    """The counts the reports' script writes on ``<html>``: figures loaded/broken, errors."""
    head = re.search(r"<html[^>]*>", dom).group(0)
    return {
        k: int(v)
        for k, v in re.findall(r'data-(figures-loaded|figures-broken|errors)="(\d+)"', head)
    }


def _proc_stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs: not gone, and not a zombie waiting to be reaped."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def child_pids(pid: int) -> list[int]:
    """Pids of the processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _proc_stat(entry.name)
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found
