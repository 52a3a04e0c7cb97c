"""Hostile and faulty input, run as users run bids-ms (issue 13).

Every case runs the command line in a subprocess on a small subset of the bundled example
(20 participants: 5 per site and group) and checks the documented outcome: one line on
stderr and the documented exit code, no traceback, nothing half-written, nothing written
into bids_dir, and a rerun that finishes the job. Reports are loaded in headless Chromium
to check that no payload placed in a user-controlled field runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_ms.errors import EXIT_CANTCREAT, EXIT_PARTICIPANT_FAILED, EXIT_SOFTWARE, EXIT_USAGE
from bids_ms.levels.participant import outputs_complete
from bids_ms.reports.participant_report import page_complete

from ..conftest import DATA, EXAMPLE, FS_SUBJECTS, run_cli, tree
from ..helpers import child_pids, participant_argv, process_running, render_dom

BIDS = EXAMPLE / "bids"
TABLES = EXAMPLE / "freesurfer_tables"
FEATURES = ["--features", "volume", "area", "thickness"]
QUICK_GROUP = ["--skip-bids-validation", "--n-spins", "10", "--skip-transcriptomics", "--seed", "1"]


def _labels(per_cell: int = 5) -> list[str]:
    table = pd.read_csv(BIDS / "participants.tsv", sep="\t")
    # a seeded sample: the first rows of each cell confound sex with site
    chosen = table.groupby(["site", "group"]).sample(n=per_cell, random_state=2)
    return sorted(chosen.participant_id.str[4:])


LABELS = _labels()


def _participant(bids: Path, out: Path, *extra, labels=LABELS, tables=TABLES):
    return run_cli(
        bids,
        out,
        "participant",
        "--fs-stats-tables",
        tables,
        *FEATURES,
        "--skip-bids-validation",
        "--participant-label",
        *labels,
        *extra,
    )


def _one_line_error(res: subprocess.CompletedProcess) -> str:
    """The error line; fails on a traceback or several error lines."""
    assert "Traceback" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("bids-ms: error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def _copy_bids(tmp_path: Path) -> Path:
    bids = tmp_path / "bids"
    shutil.copytree(BIDS, bids)
    return bids


def _tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


@pytest.fixture(scope="module")
def done_out(example_participant_out, tmp_path_factory) -> Path:
    """Participant outputs (with pages) of the 20 participants, to copy from: those of the
    session's run of the whole example (conftest), as each participant's derivatives are
    computed from its own tables alone."""
    out = tmp_path_factory.mktemp("robust") / "out"
    keep = {f"sub-{x}" for x in LABELS} | {f"sub-{x}.html" for x in LABELS}

    def others(folder, names):
        if Path(folder) != example_participant_out:
            return []
        return [n for n in names if n.startswith("sub-") and n not in keep]

    shutil.copytree(example_participant_out, out, ignore=others)
    return out


def _copy_out(done_out: Path, tmp_path: Path, *, pages: bool = False) -> Path:
    out = tmp_path / "out"
    ignore = None if pages else shutil.ignore_patterns("*.html", "figures")
    shutil.copytree(done_out, out, ignore=ignore)
    return out


# --------------------------------------------------------------------------- exit codes


def test_help_documents_the_exit_codes():
    res = run_cli("--help")
    assert res.returncode == 0
    for code in ("64", "70", "73", "126", "127"):
        assert re.search(rf"^\s+{code}\s", res.stdout, re.M), code
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "73" in readme and "crash" in readme


@pytest.mark.parametrize("value", ["-3", "0"])
def test_nprocs_message_matches_what_is_accepted(tmp_path, value):
    res = run_cli(BIDS, tmp_path / "out", "participant", "--nprocs", value)
    assert res.returncode == EXIT_USAGE
    assert f"{value} must be at least 1" in res.stderr
    assert "0 or more" not in res.stderr


def test_nprocs_one_is_accepted():
    from bids_ms.cli.parser import get_parser

    args = get_parser().parse_args([str(BIDS), "out", "participant", "--nprocs", "1"])
    assert args.nprocs == 1


# --------------------------------------------------------------------------- input hygiene


def test_duplicated_subject_rows_in_tables(tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(TABLES, tables)
    path = tables / "lh.aparc_table_volume.tsv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + [lines[2]] + lines[3:]))
    subject = lines[2].split("\t")[0]
    res = _participant(BIDS, tmp_path / "out", tables=tables)
    assert res.returncode == EXIT_USAGE
    line = _one_line_error(res)
    assert str(path) in line and subject in line and "more than once" in line


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("lh_bankssts_volume", "-1520", "negative"),
        ("rh_insula_thickness", "12.5", "above 10 mm"),
        ("lh_cuneus_area", "inf", "not a finite number"),
    ],
)
def test_impossible_values_in_tables_are_refused(tmp_path, column, value, what):
    tables = tmp_path / "tables"
    shutil.copytree(TABLES, tables)
    measure = column.rsplit("_", 1)[1]
    path = tables / f"{column[:2]}.aparc_table_{measure}.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str)
    subject = table.iloc[4, 0]
    table.loc[4, column] = value
    table.to_csv(path, sep="\t", index=False)
    res = _participant(BIDS, tmp_path / "out", tables=tables)
    assert res.returncode == EXIT_USAGE
    line = _one_line_error(res)
    assert str(path) in line and subject in line and column in line and what in line
    assert value.lstrip("-") in line


def test_negative_grayvol_in_aparc_stats_fails_that_participant(tmp_path):
    bids = _copy_bids(tmp_path)
    subjects = tmp_path / "fs"
    shutil.copytree(FS_SUBJECTS / "sub-LJ001", subjects / "sub-LJ001")
    (bids / "participants.tsv").write_text("participant_id\tgroup\nsub-LJ001\tcontrol\n")
    stats = subjects / "sub-LJ001" / "stats" / "lh.aparc.stats"
    lines = stats.read_text().splitlines(keepends=True)
    header = next(line for line in lines if line.startswith("# ColHeaders")).split()[2:]
    i = next(k for k, line in enumerate(lines) if line.startswith("precentral "))
    cells = lines[i].split()
    cells[header.index("GrayVol")] = "-" + cells[header.index("GrayVol")]
    lines[i] = " ".join(cells) + "\n"
    stats.write_text("".join(lines))
    out = tmp_path / "out"
    res = run_cli(bids, out, "participant", "--fs-subjects-dir", subjects, "--skip-bids-validation")
    assert res.returncode == EXIT_PARTICIPANT_FAILED, res.stderr
    assert "Traceback" not in res.stderr
    assert str(stats) in res.stderr and "precentral" in res.stderr and "GrayVol" in res.stderr
    assert "negative" in res.stderr
    assert not list(out.glob("sub-LJ001/anat/*"))


def _group_table(bids: Path, edit) -> None:
    path = bids / "participants.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    edit(table)
    table.to_csv(path, sep="\t", index=False)


def test_whitespace_and_nan_in_participants_tsv(done_out, tmp_path):
    """'NYU ' is 'NYU' (with a warning), 'nyu' is flagged, NaN is missing like n/a."""
    clean_out = _copy_out(done_out, tmp_path / "clean")
    res = run_cli(BIDS, clean_out, "group", "--site-column", "site", *QUICK_GROUP)
    assert res.returncode == 0, res.stderr
    clean = json.loads((clean_out / "group" / "desc-casecontrol_global.json").read_text())

    bids = _copy_bids(tmp_path)
    nyu = [f"sub-{x}" for x in LABELS if x.startswith("NYU")]
    nan_one = nyu[0]

    def edit(table):
        rows = table.participant_id.isin(nyu[1:4])
        table.loc[rows, "site"] = "NYU "
        table.loc[table.participant_id == nyu[5], "sex"] = " M"
        table.loc[table.participant_id == nan_one, "age"] = "NaN"

    _group_table(bids, edit)
    out = _copy_out(done_out, tmp_path / "ws")
    res = run_cli(bids, out, "group", "--site-column", "site", *QUICK_GROUP)
    assert res.returncode == 0, res.stderr
    assert "spaces around them" in res.stderr and "'site'" in res.stderr
    glob = json.loads((out / "group" / "desc-casecontrol_global.json").read_text())
    # one participant fewer (NaN age), otherwise the same model: same levels, df - 1
    assert glob["df"] == clean["df"] - 1
    inc = pd.read_csv(out / "group" / "desc-included_participants.tsv", sep="\t")
    assert sorted(inc.site.unique()) == ["NYU", "USM"]
    assert nan_one not in set(inc.participant_id)
    reasons = {e["participant_id"]: e["reason"] for e in glob["ExcludedParticipants"]}
    assert "no value for covariate 'age'" in reasons[nan_one]

    # case-only differences are kept apart, with a warning naming them
    def lower_one(table):
        table.loc[table.participant_id == nyu[6], "site"] = "nyu"

    _group_table(bids, lower_one)
    res = run_cli(bids, out, "group", "--site-column", "site", *QUICK_GROUP)
    assert res.returncode == 0, res.stderr
    assert "differ only in case" in res.stderr and "'NYU', 'nyu'" in res.stderr


def test_formulas_are_neutralised_in_written_tsvs(done_out, tmp_path):
    bids = _copy_bids(tmp_path)
    first = f"sub-{LABELS[0]}"

    some = [f"sub-{x}" for x in LABELS]

    def edit(table):
        table["handedness"] = "R"
        table.loc[table.participant_id.isin(some[0:6:2]), "handedness"] = '=HYPERLINK("x","y")'
        table.loc[table.participant_id.isin(some[1:7:2]), "handedness"] = "@SUM(1+1)"
        table["score"] = [f"{v:.1f}" for v in np.linspace(-5, 5, len(table))]
        table.loc[table.participant_id == first, "score"] = "-2.5"

    _group_table(bids, edit)
    out = _copy_out(done_out, tmp_path)
    res = run_cli(
        bids, out, "group", "--covariates", "age", "sex", "handedness", "score", *QUICK_GROUP
    )
    assert res.returncode == 0, res.stderr
    text = (out / "group" / "desc-included_participants.tsv").read_text()
    cells = [line.split("\t") for line in text.splitlines()]
    assert not any(c.startswith(("=", "+", "@")) for row in cells for c in row)
    assert "'=HYPERLINK(" in text and "'@SUM(1+1)" in text
    inc = pd.read_csv(out / "group" / "desc-included_participants.tsv", sep="\t")
    # a negative number is a number, not a formula
    assert inc.set_index("participant_id").loc[first, "score"] == -2.5


# --------------------------------------------------------------------------- group stages


def test_infinite_reference_map_writes_no_group_results(done_out, tmp_path):
    ref = tmp_path / "map.tsv"
    ref.write_text(
        "region\tvalue\n"
        + "".join(f"{r}\t{0.1 * i}\n" for i, r in enumerate(_dk()[:40]))
        + f"{_dk()[40]}\tinf\n"
    )
    out = _copy_out(done_out, tmp_path)
    res = run_cli(BIDS, out, "group", "--reference-map", ref, *QUICK_GROUP)
    assert res.returncode == EXIT_USAGE
    line = _one_line_error(res)
    assert str(ref) in line and "infinite" in line and _dk()[40] in line
    assert not (out / "group").exists() or not [
        p for p in (out / "group").rglob("*") if p.is_file()
    ]


def test_reference_map_with_two_regions_is_refused(done_out, tmp_path):
    ref = tmp_path / "two.tsv"
    ref.write_text("region\tvalue\nlh_bankssts\t1\nlh_cuneus\t2\n")
    out = _copy_out(done_out, tmp_path)
    res = run_cli(BIDS, out, "group", "--reference-map", ref, *QUICK_GROUP)
    assert res.returncode == EXIT_USAGE
    line = _one_line_error(res)
    assert str(ref) in line and "only 2 region(s)" in line


def test_truncated_combine_t_map_is_called_truncated(done_out, tmp_path):
    other = _copy_out(done_out, tmp_path / "other")
    res = run_cli(BIDS, other, "group", *QUICK_GROUP)
    assert res.returncode == 0, res.stderr
    tsv = other / "group" / "desc-casecontrol_regional.tsv"
    tsv.write_text("".join(tsv.read_text().splitlines(keepends=True)[:41]))
    out = _copy_out(done_out, tmp_path / "this")
    res = run_cli(BIDS, out, "group", "--combine", other, *QUICK_GROUP)
    assert res.returncode == EXIT_USAGE
    line = _one_line_error(res)
    assert str(tsv) in line and "truncated" in line and "40 of 68" in line
    assert "different atlas" not in line


@pytest.mark.parametrize(
    ("error", "code", "found"),
    [
        ("ZeroDivisionError", EXIT_SOFTWARE, r"traceback is in (\S+);"),
        ("ValueError", EXIT_USAGE, r"details in (\S+)\)"),
    ],
)
def test_unexpected_errors_give_one_line_a_crash_file_and_no_partial_group(
    done_out, tmp_path, error, code, found
):
    """An error in the middle of the group statistics: a bug exits 70, a ValueError (input
    the checks missed) 64; one line naming the crash file under logs/; no group file."""
    out = _copy_out(done_out, tmp_path)
    env = _patched(
        tmp_path,
        "import bids_ms.levels.group_steps as g\n"
        "def _boom(*a, **k):\n"
        f"    raise {error}('simulated error in the statistics')\n"
        "g.case_control = _boom\n",
    )
    res = run_cli(BIDS, out, "group", *QUICK_GROUP, env=env)
    assert res.returncode == code, res.stderr
    line = _one_line_error(res)
    assert "simulated error" in line
    crash = Path(re.search(found, line).group(1))
    assert crash.parent == (out / "logs").resolve() and crash.name.startswith("crash-")
    assert f"{error}: simulated error" in crash.read_text()
    assert "Traceback (most recent call last)" in crash.read_text()
    group = out / "group"
    assert not group.exists() or not [p for p in group.rglob("*") if p.is_file()]
    assert re.search(r"group level stopped: none of its [1-9]\d* new file\(s\)", res.stderr)
    assert not _tmp_files(out)


def test_a_failing_transcriptomic_stage_keeps_the_statistics(done_out, tmp_path):
    out = _copy_out(done_out, tmp_path)
    env = _patched(
        tmp_path,
        "import bids_ms.levels.transcriptomics as t\n"
        "from bids_ms.io.derivatives import write_json\n"
        "def _boom(response, *, group_dir, **k):\n"
        "    write_json(group_dir / 'desc-pls1_stats.json', {'half': 'done'})\n"
        "    raise RuntimeError('simulated failure in PLS')\n"
        "t.run_transcriptomics = _boom\n",
    )
    res = run_cli(BIDS, out, "group", "--n-spins", "10", "--skip-bids-validation", env=env)
    assert res.returncode == EXIT_SOFTWARE, res.stderr
    assert "simulated failure in PLS" in _one_line_error(res)
    assert "group statistics: " in res.stderr
    assert "transcriptomic stage stopped: none of its 1 new file(s)" in res.stderr
    group = out / "group"
    assert (group / "desc-casecontrol_regional.tsv").is_file()
    assert (group / "desc-casecontrol_global.json").is_file()
    assert not (group / "desc-pls1_stats.json").exists()
    assert not _tmp_files(out)


def _patched(tmp_path: Path, code: str) -> dict:
    """Environment whose Python runs ``code`` at start-up (sitecustomize), to simulate faults."""
    folder = tmp_path / "sitecustomize_boom"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def _a_case() -> str:
    table = pd.read_csv(BIDS / "participants.tsv", sep="\t").set_index("participant_id")
    return next(x for x in LABELS if table.at[f"sub-{x}", "group"] == "ASD")


def _dk() -> list[str]:
    from bids_ms.atlas import DK_REGIONS

    return list(DK_REGIONS)


# --------------------------------------------------------------------------- symlinks


def test_symlink_into_bids_dir_is_refused(tmp_path):
    bids = _copy_bids(tmp_path)
    target = bids / "derivatives_trap"
    target.mkdir()
    out = tmp_path / "out"
    (out / f"sub-{LABELS[0]}").mkdir(parents=True)
    (out / f"sub-{LABELS[0]}" / "anat").symlink_to(target, target_is_directory=True)
    before = tree(bids)
    res = _participant(bids, out)
    assert res.returncode == EXIT_USAGE
    line = _one_line_error(res)
    assert "symbolic link" in line and str(bids.resolve()) in line
    assert tree(bids) == before and not list(target.iterdir())


def test_every_write_is_checked_against_bids_dir(tmp_path, monkeypatch):
    """The writer itself refuses a path that resolves into bids_dir (the start-up scan's backstop)."""
    from bids_ms.errors import UsageError
    from bids_ms.io import safety as io_safety
    from bids_ms.io.derivatives import write_tsv

    bids = tmp_path / "bids"
    bids.mkdir()
    monkeypatch.setenv("BIDS_MS_PROTECTED_DIRS", "")
    io_safety.protect(bids)
    link = tmp_path / "out" / "anat"
    link.parent.mkdir()
    link.symlink_to(bids, target_is_directory=True)
    with pytest.raises(UsageError, match="inside the BIDS dataset"):
        write_tsv(link / "x.tsv", pd.DataFrame({"a": [1]}))
    assert list(bids.iterdir()) == []
    write_tsv(tmp_path / "out" / "y.tsv", pd.DataFrame({"a": [1]}))  # elsewhere: fine


# --------------------------------------------------------------------------- environment


def _mount(*args) -> str | None:
    """Run mount; the reason it failed, or None."""
    if shutil.which("mount") is None:
        return "no mount command"
    res = subprocess.run(["mount", *args], capture_output=True, text=True)
    return None if res.returncode == 0 else (res.stderr.strip() or f"mount exited {res.returncode}")


@pytest.fixture
def tmpfs(tmp_path):
    """A mount point and a function mounting a tmpfs of a size there (skip when impossible)."""
    point = tmp_path / "mnt"
    point.mkdir()
    mounted = []

    def mount(*options: str) -> Path:
        opts = ",".join(options)
        why = (
            _mount("-t", "tmpfs", "-o", opts, "tmpfs", str(point))
            if not mounted
            else _mount("-o", f"remount,{opts}", str(point))
        )
        if why is not None:
            reason = f"cannot mount a tmpfs ({why}); needs root or CAP_SYS_ADMIN"
            print(reason)
            pytest.skip(reason)
        mounted.append(point)
        return point

    yield mount
    if mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize(
    ("size", "phase"),
    [("400k", "derivatives"), ("2500k", "pages")],  # 20 participants: ~1.8 MB, pages ~1.5 MB
)
def test_full_disk_exits_73_and_the_rerun_finishes(tmpfs, size, phase):
    point = tmpfs(f"size={size}")
    out = point / "out"
    res = _participant(BIDS, out)
    assert res.returncode == EXIT_CANTCREAT, res.stderr
    line = _one_line_error(res)
    assert "disk is full" in line and str(out) in line
    assert not _tmp_files(out)
    complete = [x for x in LABELS if outputs_complete(out, x)]
    if phase == "pages":
        assert complete == LABELS  # the disk filled up while writing the pages
        assert not all(page_complete(out, x) for x in LABELS)
    else:
        assert len(complete) < len(LABELS)
    tmpfs("size=200m")
    res = _participant(BIDS, out)
    assert res.returncode == 0, res.stderr
    for label in LABELS:
        assert outputs_complete(out, label) and page_complete(out, label), label


def test_read_only_output_exits_73(done_out, tmp_path, tmpfs):
    # participant level into an empty read-only file system
    point = tmpfs("size=1m", "ro")
    res = _participant(BIDS, point / "out")
    assert res.returncode == EXIT_CANTCREAT, res.stderr
    line = _one_line_error(res)
    assert "read-only" in line and str(point) in line

    # group level on finished participant outputs mounted read-only
    src = _copy_out(done_out, tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    why = _mount("--bind", str(src), str(ro))
    if why is None:
        why = _mount("-o", "remount,bind,ro", str(ro))
    if why is not None:
        subprocess.run(["umount", "-l", str(ro)], check=False)
        pytest.skip(f"cannot bind-mount read-only ({why})")
    try:
        res = run_cli(BIDS, ro, "group", *QUICK_GROUP)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
    assert res.returncode == EXIT_CANTCREAT, res.stderr
    line = _one_line_error(res)
    assert "read-only" in line and str(ro) in line


def test_unwritable_output_exits_73(tmp_path):
    """Permission denied (as a user other than root, who ignores permissions)."""
    base = Path(tempfile.mkdtemp(prefix="bids-ms-perm-"))
    try:
        os.chmod(base, 0o755)
        out = base / "locked"
        out.mkdir()
        os.chmod(out, 0o555)
        cmd = participant_argv(out, [LABELS[0]])
        kwargs = {}
        if os.geteuid() == 0:
            import pwd

            try:
                nobody = pwd.getpwnam("nobody")
            except KeyError:
                pytest.skip("running as root and there is no user 'nobody' to drop to")
            kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            try:
                probe = subprocess.run(
                    [sys.executable, "-c", "import bids_ms"],
                    capture_output=True,
                    text=True,
                    cwd=base,
                    env={**os.environ, "HOME": str(base)},
                    **kwargs,
                    check=False,
                )
                ok = probe.returncode == 0
            except OSError:
                ok = False
            if not ok:
                reason = f"root ignores permissions and 'nobody' cannot run {sys.executable}"
                print(reason)
                pytest.skip(reason)
        env = {**os.environ, "HOME": str(base), "MPLCONFIGDIR": str(base / "mpl")}
        res = subprocess.run(
            cmd, capture_output=True, text=True, cwd=base, env=env, timeout=600, **kwargs
        )
        assert res.returncode == EXIT_CANTCREAT, res.stderr
        line = _one_line_error(res)
        assert "permission denied" in line.lower() and str(out) in line
    finally:
        os.chmod(out, 0o755)
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- resume


def _popen_participant(out: Path, labels: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        participant_argv(out, labels),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    start = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed; the test must be retuned")
        if time.monotonic() - start > timeout:
            proc.kill()
            pytest.fail("the run never reached the phase to kill it in")
        time.sleep(0.02)
    workers = child_pids(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # its worker processes (forked writers, page workers) end with it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [p for p in workers if process_running(p)]:
        time.sleep(0.05)
    assert not [p for p in workers if process_running(p)], (
        "worker processes outlived the killed run"
    )


def _all_done(out: Path, labels: list[str]) -> None:
    for label in labels:
        assert outputs_complete(out, label), label
        assert page_complete(out, label), label
    assert not _tmp_files(out)


LONG = _labels(per_cell=25)  # 100 participants: time to kill the run part-way


def test_kill_during_the_derivative_phase_then_rerun(tmp_path):
    out = tmp_path / "out"
    proc = _popen_participant(out, LONG)
    _kill_when(proc, lambda: len(list(out.glob("sub-*/anat/*_regional.json"))) >= 3)
    assert not list(out.glob("sub-*.html"))  # killed before the pages
    # what a kill can leave (planted too, so that the test does not depend on timing)
    half = out / "sub-GONE" / "anat"
    half.mkdir(parents=True)
    (half / "sub-GONE_atlas-DK_morph.tsv").write_text("region\n")
    # a dead run's temporary file in a finished participant's folder (one in a half-written
    # folder goes with that folder and is reported with it, not as a temporary file)
    finished = next(anat for anat in out.glob("sub-*/anat") if list(anat.glob("*_regional.json")))
    stale = finished / f".{finished.parent.name}_atlas-DK_morph.tsv.pid999999.x1.tmp"
    stale.write_text("")
    # sub-GONE, and the participants being written when the run (and its writers) were
    # killed: some of their files written, not the completion marker (written last)
    half_written = [
        anat
        for anat in out.glob("sub-*/anat")
        if list(anat.glob("*.tsv")) and not list(anat.glob("*_regional.json"))
    ]
    res = _participant(BIDS, out, labels=LONG)
    assert res.returncode == 0, res.stderr
    assert "temporary file(s) left by an interrupted run" in res.stderr
    assert f"half-written outputs of {len(half_written)} participant folder(s)" in res.stderr
    # the log names them, the first five of them
    named = sum(f"{anat.relative_to(out)}" in res.stderr for anat in half_written)
    assert named == min(5, len(half_written)) and (len(half_written) <= 5) != (
        " ...)" in res.stderr
    )
    assert not half.exists() and not stale.exists()
    _all_done(out, LONG)


def test_kill_during_the_page_phase_then_rerun(tmp_path):
    out = tmp_path / "out"
    proc = _popen_participant(out, LONG)
    _kill_when(proc, lambda: len(list(out.glob("sub-*.html"))) >= 2)
    n_pages = len(list(out.glob("sub-*.html")))
    assert n_pages < len(LONG)
    stale = out / f"sub-{LONG[-1]}" / "figures" / ".x.png.pid999999.y2.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("")
    res = _participant(BIDS, out, labels=LONG)
    assert res.returncode == 0, res.stderr
    assert "0 to process" in res.stderr
    assert "participant page(s) missing or incomplete: written now" in res.stderr
    _all_done(out, LONG)


def test_a_damaged_derivative_is_processed_again(done_out, tmp_path):
    out = _copy_out(done_out, tmp_path, pages=True)
    label = LABELS[3]
    conn = next((out / f"sub-{label}" / "anat").glob("*_relmat.tsv"))
    conn.write_text("".join(conn.read_text().splitlines(keepends=True)[:30]))
    res = _participant(BIDS, out)
    assert res.returncode == 0, res.stderr
    assert "1 to process" in res.stderr and "incomplete or damaged" in res.stderr
    _all_done(out, LABELS)


# --------------------------------------------------------------------------- XSS


PAYLOADS = {
    "img": "<img src=x onerror=document.documentElement.setAttribute('data-pwned','img')>",
    "script": "<script>document.documentElement.setAttribute('data-pwned','script')</script>",
    "attr": "\"><svg onload=document.documentElement.setAttribute('data-pwned','attr')>",
}


def _html_tag(dom: str) -> str:
    return re.search(r"<html[^>]*>", dom).group(0)


def test_the_detector_sees_a_payload_run_and_the_csp_blocks_it(chromium, tmp_path):
    """Without escaping or CSP the payloads run; with the reports' CSP, inline ones do not."""
    from bids_ms.reports.html import CSP

    body = "".join(PAYLOADS.values())
    bare = tmp_path / "bare.html"
    bare.write_text(f"<!DOCTYPE html><html><head></head><body>{body}</body></html>")
    dom, _ = render_dom(bare, tmp_path / "p1")
    assert "data-pwned" in _html_tag(dom)
    guarded = tmp_path / "guarded.html"
    guarded.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        f'content="{CSP}"></head><body>{body}</body></html>'
    )
    dom, _ = render_dom(guarded, tmp_path / "p2")
    assert "data-pwned" not in _html_tag(dom)


def test_payloads_in_every_user_field_do_not_run(chromium, done_out, tmp_path):
    """Column names, values, labels, file names and gene-set names carrying payloads."""
    bids = _copy_bids(tmp_path)
    col_site, col_cov = PAYLOADS["img"], PAYLOADS["attr"]
    case_label = PAYLOADS["script"]
    nyu = [f"sub-{x}" for x in LABELS if x.startswith("NYU")]

    def edit(table):
        table.rename(columns={"site": col_site}, inplace=True)
        table[col_cov] = np.where(table.participant_id.isin(nyu[:5]), PAYLOADS["attr"], "plain")
        table["group"] = table["group"].replace({"ASD": case_label})
        extra = table.iloc[[0]].copy()
        extra["participant_id"] = "sub-" + PAYLOADS["img"]
        table.loc[len(table)] = extra.iloc[0]

    _group_table(bids, edit)
    groups = set(pd.read_csv(bids / "participants.tsv", sep="\t").group)
    assert case_label in groups, groups
    ref_dir = tmp_path / "refs"
    ref_dir.mkdir()
    ref = ref_dir / (PAYLOADS["img"].replace("/", "") + ".csv")
    shutil.copy(DATA / "group" / "mddadult_case-controls_CortThick.csv", ref)
    gmt_text = (
        Path(__file__).resolve().parents[2] / "bids_ms" / "data" / "genesets" / "pain.gmt"
    ).read_text()
    genes = gmt_text.splitlines()[0].split("\t")[2:]
    gmt = ref_dir / ("<svg onload=alert(1)>" + ".gmt")
    gmt.write_text(
        "".join(
            f"{payload}\t{payload}\t" + "\t".join(genes[i * 40 : (i + 1) * 40 + 60]) + "\n"
            for i, payload in enumerate(PAYLOADS.values())
        )
    )
    out = _copy_out(done_out, tmp_path, pages=False)
    res = run_cli(
        bids,
        out,
        "group",
        "--skip-bids-validation",
        "--site-column",
        col_site,
        "--covariates",
        "age",
        "sex",
        col_cov,
        "--case-label",
        case_label,
        "--reference-map",
        ref,
        "--gene-sets",
        gmt,
        "--n-spins",
        "20",
        "--n-perm",
        "20",
        "--n-boot",
        "20",
        "--seed",
        "3",
    )
    assert res.returncode == 0, res.stderr
    case = _a_case()
    res = run_cli(
        bids,
        out,
        "participant",
        "--reports-only",
        "--participant-label",
        case,
        "--skip-bids-validation",
    )
    assert res.returncode == 0, res.stderr
    pages = [out / "group" / "report.html", out / f"sub-{case}.html"]
    report = pages[0].read_text()
    # the payloads reached the report, as text
    assert "&lt;img src=x onerror=" in report
    assert "&lt;script&gt;document" in report
    assert "&lt;svg onload=alert(1)&gt;" in report  # the gene-set file's name
    for page in pages:
        text = page.read_text()
        for payload in PAYLOADS.values():
            assert payload not in text, (page, payload)
        assert "<script>" not in text and "onerror=" not in text.replace(
            "&lt;img src=x onerror=", ""
        )
        dom, log = render_dom(page, tmp_path / f"profile-{page.stem}")
        head = _html_tag(dom)
        assert "data-pwned" not in head, (page, head)
        assert "data-figures-loaded" in head  # the figure check (a script file) still runs
        assert "Uncaught" not in log


@pytest.mark.parametrize(
    ("err", "code", "words"),
    [
        (PermissionError(13, "Permission denied", "{out}/logs/x.log"), 73, "chmod/chown"),
        (OSError(28, "No space left on device", "{out}/group/a.tsv"), 73, "disk is full"),
        (OSError(30, "Read-only file system", "{out}/logs"), 73, "read-only"),
        (
            PermissionError(13, "Permission denied", "/elsewhere/participants.tsv"),
            64,
            "cannot read",
        ),
    ],
)
def test_environment_errors_map_to_one_line_and_code(tmp_path, err, code, words):
    """The mapping itself, for the cases a root test run cannot produce (EACCES)."""
    from types import SimpleNamespace

    from bids_ms.cli.run import _environment_error

    out = tmp_path / "out"
    err.filename = err.filename.format(out=out)
    got, message = _environment_error(err, SimpleNamespace(output_dir=out, work_dir=None))
    assert got == code
    assert err.filename in message and words in message and "\n" not in message


def test_recon_all_is_not_run_into_a_subjects_dir_inside_bids_dir(tmp_path):
    import nibabel as nb

    bids = tmp_path / "bids"
    (bids / "sub-01" / "anat").mkdir(parents=True)
    (bids / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    img = nb.Nifti1Image(np.zeros((4, 4, 4), dtype=np.float32), np.eye(4))
    img.to_filename(bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    (bids / "derivatives" / "freesurfer").mkdir(parents=True)
    link = tmp_path / "fs"
    link.symlink_to(bids / "derivatives" / "freesurfer", target_is_directory=True)
    before = tree(bids)
    res = run_cli(
        bids, tmp_path / "out", "participant", "--fs-subjects-dir", link, "--skip-bids-validation"
    )
    assert res.returncode == EXIT_USAGE, res.stderr
    line = _one_line_error(res)
    assert "inside the BIDS dataset" in line
    assert tree(bids) == before
