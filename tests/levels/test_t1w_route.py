"""The T1w route end to end: recon-all node, MS node, derivatives and pages, as a user with T1w
images and a licence runs it; a rerun that skips finished work; an interrupted run that resumes;
with nipype's MultiProc plugin and with its SLURM plugin on the one-node cluster (tests/slurm.py).

recon-all itself is the stand-in of ``tests/data/fake_freesurfer/recon-all.py``, first on PATH: the
real FreeSurfer 7.3.2 recon-all checks every command line it gets (``-dontrun``, no licence), then
the stand-in writes a real subject's outputs from ``tests/data/fs_stats``. bids-ms is given a
stand-in licence file that only the stand-in reads; the real binaries never see it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest

from bids_ms.atlas import DK_REGIONS
from bids_ms.io.fsstats import read_subject_stats

from ..conftest import DATA, FS_SUBJECTS, ROOT, run_cli, tree

pytestmark = pytest.mark.freesurfer

SOURCES = {"sub-01": "sub-LJ001", "sub-02": "sub-LJ002"}


@pytest.fixture
def t1w_study(tmp_path, fs_home):
    """A two-participant BIDS dataset with tiny T1w images, the stand-in FreeSurfer first on
    PATH, and the environment the runs need."""
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "T1w route", "BIDSVersion": "1.9.0"})
    )
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-01\t30\nsub-02\t41\n")
    rng = np.random.default_rng(12)
    for subject in SOURCES:
        anat = bids / subject / "anat"
        anat.mkdir(parents=True)
        data = rng.random((12, 12, 12), dtype=np.float32)
        nb.Nifti1Image(data, np.diag([1.0, 1.0, 1.0, 1.0])).to_filename(
            anat / f"{subject}_T1w.nii.gz"
        )

    fake_home = tmp_path / "fake_freesurfer"
    (fake_home / "bin").mkdir(parents=True)
    recon = fake_home / "bin" / "recon-all"
    recon.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{DATA / "fake_freesurfer" / "recon-all.py"}" "$@"\n'
    )
    recon.chmod(0o755)
    (fake_home / "subjects").symlink_to(fs_home / "subjects", target_is_directory=True)
    (fake_home / "build-stamp.txt").symlink_to(fs_home / "build-stamp.txt")
    sources = tmp_path / "recon_sources.json"
    sources.write_text(json.dumps({k: str(FS_SUBJECTS / v) for k, v in SOURCES.items()}))
    licence = tmp_path / "standin_license.txt"
    licence.write_text("stand-in licence, read only by the recon-all stand-in of the tests\n")
    (tmp_path / "hang").mkdir()
    env = {
        "FREESURFER_HOME": str(fake_home),
        "PATH": f"{fake_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "BIDS_MS_TEST_REAL_FREESURFER_HOME": str(fs_home),
        "BIDS_MS_TEST_RECON_SOURCES": str(sources),
        "BIDS_MS_TEST_RECON_CALLS": str(tmp_path / "recon_calls.jsonl"),
        "BIDS_MS_TEST_RECON_HANG": str(tmp_path / "hang"),
    }
    args = ["--fs-license-file", str(licence), "--skip-bids-validation"]
    return {"bids": bids, "root": tmp_path, "env": env, "args": args}


def _calls(study) -> list[dict]:
    path = study["root"] / "recon_calls.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_outputs(study, out: Path, *, pages=tuple(SOURCES)) -> None:
    """recon-all's tree, then derivatives equal to an independent computation from the real
    subject's stats files, and a page for each of ``pages``."""
    fs = out / "sourcedata" / "freesurfer"
    for subject, source in SOURCES.items():
        scripts = fs / subject / "scripts"
        assert (scripts / "recon-all.done").is_file()
        assert not list(scripts.glob("IsRunning.*"))
        log = (scripts / "recon-all.log").read_text()
        assert f"mri_convert {study['bids'] / subject / 'anat'}" in log  # the real plan
        assert log.rstrip().splitlines()[-1].startswith(f"recon-all -s {subject} finished")

        anat = out / subject / "anat"
        morph = pd.read_csv(anat / f"{subject}_atlas-DK_morph.tsv", sep="\t")
        assert list(morph.region) == list(DK_REGIONS)
        # GrayVol of the left bankssts, read with a plain loop from the stats file
        lines = (FS_SUBJECTS / source / "stats" / "lh.aparc.stats").read_text().splitlines()
        row = next(ln.split() for ln in lines if ln.startswith("bankssts "))
        assert morph.volume[0] == pytest.approx(float(row[3]))
        feats = morph[["volume", "area", "thickness", "meancurv", "gauscurv"]]
        z = ((feats - feats.mean()) / feats.std()).to_numpy()
        reference = np.corrcoef(z)
        mat = pd.read_csv(
            anat / f"{subject}_atlas-DK_meas-MorphometricSimilarity_relmat.tsv",
            sep="\t",
            index_col=0,
        ).to_numpy()
        off = ~np.eye(68, dtype=bool)
        np.testing.assert_allclose(mat[off], reference[off], atol=1e-8)
        side = json.loads((anat / f"{subject}_atlas-DK_desc-MS_regional.json").read_text())
        assert side["Source"] == "recon-all"
        stats = read_subject_stats(FS_SUBJECTS / source)
        assert side["eTIV"] == pytest.approx(stats.etiv)
        if subject in pages:
            assert (out / f"{subject}.html").is_file()


def _derivative_mtimes(out: Path) -> dict[str, int]:
    return {
        p: (out / p).stat().st_mtime_ns
        for p in tree(out)
        if p.startswith("sub-") and ("/anat/" in p or p.endswith(".html"))
    }


def test_t1w_route_runs_reruns_and_resumes_with_multiproc(t1w_study):
    study, out = t1w_study, t1w_study["root"] / "out"
    work = study["root"] / "work"
    before = tree(study["bids"])
    run = ["participant", "-w", str(work), "--nprocs", "2", *study["args"]]

    # 1. everything from the T1w images
    res = run_cli(study["bids"], out, *run, env=study["env"], cwd=study["root"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Running recon-all for 2 participant(s)" in res.stderr
    calls = _calls(study)
    assert sorted(c["subject"] for c in calls) == ["sub-01", "sub-02"]
    for call in calls:
        assert call["argv"][:1] == ["-all"] and "-i" in call["argv"]
    _check_outputs(study, out)
    assert tree(study["bids"]) == before

    # 2. a rerun: nothing left to do, nothing rewritten, recon-all not started
    mtimes = _derivative_mtimes(out)
    res = run_cli(study["bids"], out, *run, env=study["env"], cwd=study["root"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 already done" in res.stderr
    assert len(_calls(study)) == 2
    assert _derivative_mtimes(out) == mtimes


def test_interrupted_t1w_run_resumes(t1w_study):
    study, out = t1w_study, t1w_study["root"] / "out"
    work = study["root"] / "work"
    # one thread per recon-all, so both participants run at once on 2 processes
    run = ["participant", "-w", str(work), "--nprocs", "2", "--omp-nthreads", "1", *study["args"]]
    (study["root"] / "hang" / "sub-02").write_text("")  # sub-02's recon-all hangs once

    env = {**os.environ, **study["env"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bids_ms", str(study["bids"]), str(out), *run],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=study["root"],
    )
    lock = out / "sourcedata" / "freesurfer" / "sub-02" / "scripts" / "IsRunning.lh+rh"
    done_01 = out / "sub-01" / "anat" / "sub-01_atlas-DK_desc-MS_regional.json"
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and not (lock.is_file() and done_01.is_file()):
            assert proc.poll() is None, "bids-ms ended before it was interrupted"
            time.sleep(0.3)
        assert lock.is_file() and done_01.is_file()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the node goes down: bids-ms and recon-all
        proc.wait(timeout=30)
    assert not (out / "sub-02" / "anat").exists()
    assert len(_calls(study)) == 2

    res = run_cli(study["bids"], out, *run, env=study["env"], cwd=study["root"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 already done" in res.stderr
    calls = _calls(study)
    assert [c["subject"] for c in calls[2:]] == ["sub-02"]  # sub-01 is not run again
    # the resumed recon-all continues the subject: no -i (the real recon-all refuses -i then)
    assert "-i" not in calls[2]["argv"]
    # the killed run died before the pages: the rerun completes every missing page, including
    # that of sub-01, whose derivatives were already done (resume means complete)
    _check_outputs(study, out, pages=("sub-01", "sub-02"))


@pytest.mark.slurm
def test_t1w_route_with_nipype_slurm_plugin(t1w_study, slurm_cluster, monkeypatch):
    study, out = t1w_study, t1w_study["root"] / "out"
    work = study["root"] / "work"
    plugin_args = {"sbatch_args": "-c 1 --mem=1G -t 10", "poll_sleep_duration": 1}
    run = [
        "participant",
        "-w",
        str(work),
        "--nipype-plugin",
        "SLURM",
        "--nipype-plugin-args",
        json.dumps(plugin_args),
        *study["args"],
    ]
    # nipype's SLURM plugin names jobs after $LOGNAME, which a batch shell may not set:
    # bids-ms sets it itself, so the run must work without it
    monkeypatch.delenv("LOGNAME", raising=False)
    env = {**study["env"], **slurm_cluster.env}
    res = run_cli(study["bids"], out, *run, env=env, cwd=study["root"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "with nipype's SLURM plugin" in res.stderr
    assert sorted(c["subject"] for c in _calls(study)) == ["sub-01", "sub-02"]
    _check_outputs(study, out)
    # every node ran as a SLURM job: recon-all and MS, for both participants
    jobs = slurm_cluster.jobs()
    names = sorted(j.get("Name", "") for j in jobs.values() if j.get("JobState") == "COMPLETED")
    for node in ("recon_all", "morphometric_similarity"):
        assert sum(node in n for n in names) >= 2, names

    mtimes = _derivative_mtimes(out)
    res = run_cli(study["bids"], out, *run, env=env, cwd=study["root"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 already done" in res.stderr
    assert len(_calls(study)) == 2
    assert _derivative_mtimes(out) == mtimes
