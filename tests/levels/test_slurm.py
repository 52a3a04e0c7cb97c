"""The cluster route a user takes, on a real one-node SLURM cluster (tests/slurm.py):
singularity/submit_slurm.sh sends a participant array job (chunks of participants per task) and a
group job that depends on it (afterok); the outputs equal those of a local run.

No container here: the submit script takes the command to run (``BIDS_MS_CMD``), exactly as it
takes ``apptainer run ... image.sif`` on a cluster. The example is cut to every eighth participant
(31 of 246, both sites and both groups) to keep CI short.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ..conftest import EXAMPLE, ROOT, run_cli, tree

pytestmark = pytest.mark.slurm

BIDS = EXAMPLE / "bids"
PARTICIPANT_ARGS = [
    "--fs-stats-tables",
    str(EXAMPLE / "freesurfer_tables"),
    "--features",
    "volume",
    "area",
    "thickness",
    "--skip-bids-validation",
]
GROUP_ARGS = [
    "--site-column",
    "site",
    "--seed",
    "1",
    "--n-spins",
    "50",
    "--n-label-perms",
    "50",
    "--n-perm",
    "50",
    "--n-boot",
    "50",
    "--skip-bids-validation",
]


def _labels() -> list[str]:
    table = pd.read_csv(BIDS / "participants.tsv", sep="\t")
    return list(table["participant_id"].iloc[::8])


def _bids_ms_cmd() -> str:
    return f"{sys.executable} -m bids_ms"


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["n/a"])


def assert_same_table(a: Path, b: Path) -> None:
    """Same columns, same text cells and numbers equal to 1e-12 (relative)."""
    left, right = _read(a), _read(b)
    assert list(left.columns) == list(right.columns), a.name
    assert left.shape == right.shape, a.name
    for col in left.columns:
        x, y = left[col], right[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            np.testing.assert_allclose(
                x.to_numpy(float),
                y.to_numpy(float),
                rtol=1e-12,
                atol=0,
                equal_nan=True,
                err_msg=f"{a.name}: column {col}",
            )
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), f"{a.name}: column {col}"


def assert_same_derivatives(local: Path, cluster: Path) -> int:
    """Every TSV of the participants and of group/ equal; return how many were compared."""
    local_tsv = sorted(p for p in tree(local) if p.endswith(".tsv"))
    assert local_tsv == sorted(p for p in tree(cluster) if p.endswith(".tsv"))
    for rel in local_tsv:
        assert_same_table(local / rel, cluster / rel)
    return len(local_tsv)


def _submit(listed: Path, *, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run singularity/submit_slurm.sh on a participants file, as a cluster user would."""
    return subprocess.run(
        [str(ROOT / "singularity" / "submit_slurm.sh"), str(listed)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_submit_script_runs_array_then_group_and_matches_a_local_run(slurm_cluster, tmp_path):
    labels = _labels()
    env = {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    # the same analysis locally, in one process
    local = tmp_path / "local"
    res = run_cli(
        BIDS,
        local,
        "participant",
        "--participant-label",
        *labels,
        *PARTICIPANT_ARGS,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    res = run_cli(BIDS, local, "group", *GROUP_ARGS, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr

    # on the cluster: 31 participants at 8 a task = 4 array tasks, 2 at once, then the group job
    listed = tmp_path / "participants.txt"
    listed.write_text("\n".join(labels) + "\n")
    cluster_out = tmp_path / "cluster"
    submit_env = {
        **os.environ,
        **env,
        **slurm_cluster.env,
        "BIDS_MS_CMD": _bids_ms_cmd(),
        "BIDS_DIR": str(BIDS),
        "OUTPUT_DIR": str(cluster_out),
        "WORK_ROOT": str(tmp_path / "work"),
        "PARTICIPANTS_PER_TASK": "8",
        "MAX_PARALLEL": "2",
        "PARTICIPANT_SBATCH_ARGS": "-c 1 --mem=2G -t 10",
        "GROUP_SBATCH_ARGS": "-c 1 --mem=2G -t 10",
        "BIDS_MS_PARTICIPANT_ARGS": " ".join(PARTICIPANT_ARGS),
        "BIDS_MS_GROUP_ARGS": " ".join(GROUP_ARGS),
    }
    submitted = _submit(listed, env=submit_env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    assert f"{len(labels)} participants" in submitted.stdout and "4 tasks" in submitted.stdout
    array_job = submitted.stdout.split("array job ")[1].split()[0]
    group_job = submitted.stdout.split("group level: job ")[1].split(",")[0]
    jobs = slurm_cluster.wait(array_job, group_job, timeout=600)

    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("bids-ms-*.log")))
    tasks = {k: v for k, v in jobs.items() if k.startswith(f"{array_job}_")}
    assert sorted(tasks) == [f"{array_job}_{i}" for i in range(1, 5)], logs
    assert {v["JobState"] for v in tasks.values()} == {"COMPLETED"}, logs
    assert jobs[group_job]["JobState"] == "COMPLETED", logs
    # afterok: the group job started only after the last participant task ended
    assert jobs[group_job]["StartTime"] >= max(v["EndTime"] for v in tasks.values())
    # each task ran its own chunk of participants in one bids-ms call
    for i in range(1, 5):
        log = (tmp_path / f"bids-ms-participant_{array_job}_{i}.log").read_text()
        first = labels[(i - 1) * 8].removeprefix("sub-")
        assert f"bids-ms participant sub-{first} ({len(labels[(i - 1) * 8 : i * 8])} " in log

    assert sorted(p.name for p in cluster_out.glob("sub-*") if p.is_dir()) == sorted(labels)
    compared = assert_same_derivatives(local, cluster_out)
    assert compared >= 3 * len(labels) + 10
    assert (cluster_out / "group" / "report.html").is_file()


def test_failed_participant_task_cancels_the_group_job(slurm_cluster, tmp_path):
    """afterok: a task that fails (here an unknown label) keeps the group level from running."""
    listed = tmp_path / "participants.txt"
    listed.write_text("sub-NYU0050952\nsub-DOESNOTEXIST\n")
    out = tmp_path / "out"
    submit_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **slurm_cluster.env,
        "BIDS_MS_CMD": _bids_ms_cmd(),
        "BIDS_DIR": str(BIDS),
        "OUTPUT_DIR": str(out),
        "WORK_ROOT": str(tmp_path / "work"),
        "PARTICIPANT_SBATCH_ARGS": "-c 1 --mem=1G",
        "GROUP_SBATCH_ARGS": "-c 1 --mem=1G",
        "BIDS_MS_PARTICIPANT_ARGS": " ".join(PARTICIPANT_ARGS),
        "BIDS_MS_GROUP_ARGS": " ".join(GROUP_ARGS),
    }
    submitted = _submit(listed, env=submit_env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    array_job = submitted.stdout.split("array job ")[1].split()[0]
    group_job = submitted.stdout.split("group level: job ")[1].split(",")[0]
    jobs = slurm_cluster.wait(array_job, group_job, timeout=300)
    assert jobs[f"{array_job}_1"]["JobState"] == "COMPLETED"
    assert jobs[f"{array_job}_2"]["JobState"] == "FAILED"
    assert jobs.get(group_job, {}).get("JobState", "CANCELLED") == "CANCELLED"
    assert (out / "sub-NYU0050952" / "anat").is_dir()
    assert not (out / "group").exists()


def test_more_tasks_than_max_array_size_is_refused_with_the_chunk_size(slurm_cluster, tmp_path):
    """SLURM's default MaxArraySize is 1001: 2,500 participants one a task cannot be queued."""
    listed = tmp_path / "participants.txt"
    listed.write_text("".join(f"sub-{i:05d}\n" for i in range(2500)))
    env = {
        **os.environ,
        **slurm_cluster.env,
        "BIDS_MS_CMD": _bids_ms_cmd(),
        "BIDS_DIR": str(BIDS),
        "OUTPUT_DIR": str(tmp_path / "out"),
        "WORK_ROOT": str(tmp_path / "work"),
    }
    res = _submit(listed, env=env, cwd=tmp_path)
    assert res.returncode == 64
    assert "MaxArraySize is 1001" in res.stderr and "PARTICIPANTS_PER_TASK=3" in res.stderr
    assert "array job" not in res.stdout and slurm_cluster.queue() == []  # nothing queued
