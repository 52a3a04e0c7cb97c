"""recon-all through nipype, checked against the real FreeSurfer 7.3.2 binaries.

No FreeSurfer licence exists here and none is ever made: the command lines are checked
with recon-all's own ``-dontrun`` mode (it plans every step without running any and
needs no licence), and the missing-licence path is checked end to end.
"""

from __future__ import annotations

import json
import os
import subprocess

import nibabel as nb
import numpy as np
import pytest

from bids_ms.errors import EXIT_NO_FREESURFER, EXIT_NO_LICENSE, FreeSurferLicenseError
from bids_ms.interfaces.freesurfer import (
    ReconAll,
    ensure_fsaverage,
    find_license,
    freesurfer_environment,
    freesurfer_version,
    remove_stale_locks,
)

from ..conftest import run_cli, tree

pytestmark = pytest.mark.freesurfer


def _t1w(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nb.Nifti1Image(np.random.default_rng(0).random((12, 12, 12), dtype=np.float32), np.eye(4))
    img.to_filename(path)
    return path


def _bids(tmp_path, runs=("1",)):
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "t", "BIDSVersion": "1.9.0"})
    )
    files = [_t1w(bids / "sub-01" / "anat" / f"sub-01_run-{r}_T1w.nii.gz") for r in runs]
    return bids, files


def _no_license_env(fs_home):
    env = {"FREESURFER_HOME": str(fs_home), "FS_LICENSE": ""}
    return env


def test_version_is_read_from_the_real_installation(fs_home):
    assert freesurfer_version(fs_home) == "7.3.2"
    out = subprocess.run(
        [str(fs_home / "bin" / "recon-all"), "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "FREESURFER_HOME": str(fs_home)},
    )
    assert "7.3.2" in out.stdout  # works without a licence


def _recon(fs_home, sd, t1s, monkeypatch, openmp=3):
    sd.mkdir(exist_ok=True)
    ensure_fsaverage(sd, fs_home)
    for key, value in freesurfer_environment(fs_home, subjects_dir=sd, license_path=None).items():
        monkeypatch.setenv(key, value)
    return ReconAll(
        subject_id="sub-01",
        directive="all",
        subjects_dir=str(sd),
        T1_files=[str(t) for t in t1s],
        openmp=openmp,
    )


def test_several_t1w_runs_become_several_inputs(fs_home, tmp_path, monkeypatch):
    _, t1s = _bids(tmp_path, runs=("1", "2"))
    cmd = _recon(fs_home, tmp_path / "fs", t1s, monkeypatch).cmdline
    assert cmd.startswith("recon-all -all ")
    assert f"-i {t1s[0]} -i {t1s[1]}" in cmd
    assert "-openmp 3" in cmd and "-subjid sub-01" in cmd and f"-sd {tmp_path / 'fs'}" in cmd


def test_recon_all_command_line_is_accepted_by_real_recon_all(fs_home, tmp_path, monkeypatch):
    """Our ReconAll's command line, planned step by step by the real recon-all (-dontrun).

    (recon-all -dontrun cannot plan the motion correction of several runs, whose files it
    does not write, so this plan is of one run; the two-run command line is checked above.)
    """
    _, t1s = _bids(tmp_path)
    sd = tmp_path / "freesurfer"
    cmd = _recon(fs_home, sd, t1s, monkeypatch).cmdline
    res = subprocess.run(
        cmd + " -dontrun", shell=True, capture_output=True, text=True, cwd=tmp_path
    )
    log = (sd / "sub-01" / "scripts" / "recon-all.log").read_text(errors="replace")
    assert res.returncode == 0, log[-2000:] + res.stderr
    assert f"mri_convert {t1s[0]} {sd}/sub-01/mri/orig/001.mgz" in log
    assert "--threads 3" in log  # -openmp reached the surface placement
    for hemi in ("lh", "rh"):
        assert (
            f"{hemi}.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs ../label/{hemi}.aparc.annot"
            in log
        )
        assert f"-f ../stats/{hemi}.aparc.stats" in log
    assert "finished without error" in res.stdout


def test_finished_subject_is_not_run_again_and_stale_locks_go(fs_home, tmp_path, monkeypatch):
    monkeypatch.setenv("FREESURFER_HOME", str(fs_home))
    sd = tmp_path / "fs"
    scripts = sd / "sub-01" / "scripts"
    scripts.mkdir(parents=True)
    (sd / "sub-01" / "mri").mkdir()
    recon = ReconAll(subject_id="sub-01", directive="all", subjects_dir=str(sd), openmp=1)
    assert recon.cmdline != "echo recon-all: nothing to do"
    (scripts / "recon-all.done").write_text("")
    (sd / "sub-01" / "stats").mkdir()
    for hemi in ("lh", "rh"):
        (sd / "sub-01" / "stats" / f"{hemi}.aparc.stats").write_text("")
    assert recon.cmdline == "echo recon-all: nothing to do"
    (scripts / "IsRunning.lh+rh").write_text("")
    assert recon.cmdline != "echo recon-all: nothing to do"  # a crashed run is resumed
    assert remove_stale_locks(sd / "sub-01") == [scripts / "IsRunning.lh+rh"]
    assert recon.cmdline == "echo recon-all: nothing to do"


def test_license_lookup_order(tmp_path, monkeypatch):
    lic = tmp_path / "license.txt"
    lic.write_text("user@example.org\n")
    monkeypatch.delenv("FS_LICENSE", raising=False)
    assert find_license(lic, fs_home=None) == lic.resolve()
    monkeypatch.setenv("FS_LICENSE", str(lic))
    assert find_license(None, fs_home=None) == lic.resolve()
    monkeypatch.delenv("FS_LICENSE")
    with pytest.raises(FreeSurferLicenseError, match="registration"):
        find_license(None, fs_home=tmp_path / "nowhere")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(FreeSurferLicenseError):
        find_license(empty, fs_home=None)


def test_missing_license_exits_126_with_the_fix(fs_home, tmp_path):
    bids, _ = _bids(tmp_path)
    out = tmp_path / "out"
    before = tree(bids)
    res = run_cli(bids, out, "participant", "--skip-bids-validation", env=_no_license_env(fs_home))
    assert res.returncode == EXIT_NO_LICENSE, res.stderr
    assert "no FreeSurfer licence" in res.stderr and "--fs-license-file" in res.stderr
    assert "sub-01" in res.stderr
    assert "Traceback" not in res.stderr
    assert tree(bids) == before
    assert not list(out.glob("sub-*"))


def test_missing_freesurfer_exits_127(tmp_path):
    bids, _ = _bids(tmp_path)
    env = {
        "FREESURFER_HOME": str(tmp_path / "nofs"),
        "PATH": os.path.dirname(os.sys.executable) + ":/usr/bin:/bin",
    }
    res = run_cli(bids, tmp_path / "out", "participant", "--skip-bids-validation", env=env)
    assert res.returncode == EXIT_NO_FREESURFER, res.stderr
    assert "FreeSurfer is not installed" in res.stderr and "--fs-subjects-dir" in res.stderr
    assert "Traceback" not in res.stderr


def test_filter_file_choice_is_what_real_recon_all_plans(fs_home, tmp_path, monkeypatch):
    """--bids-filter-file picks run-2 of two: recon-all -dontrun converts that file only."""
    from bids_ms.io.bids import collect_inputs, read_bids_filters

    bids, t1s = _bids(tmp_path, runs=("1", "2"))
    filt = tmp_path / "filter.json"
    filt.write_text(json.dumps({"t1w": {"run": 2, "acquisition": None}}))
    inputs = collect_inputs(bids, filters=read_bids_filters(filt))
    assert inputs.t1w == {("01", None): [str(t1s[1])]}
    sd = tmp_path / "freesurfer"
    cmd = _recon(fs_home, sd, inputs.t1w[("01", None)], monkeypatch).cmdline
    res = subprocess.run(
        cmd + " -dontrun", shell=True, capture_output=True, text=True, cwd=tmp_path
    )
    log = (sd / "sub-01" / "scripts" / "recon-all.log").read_text(errors="replace")
    assert res.returncode == 0, log[-2000:] + res.stderr
    assert f"mri_convert {t1s[1]} {sd}/sub-01/mri/orig/001.mgz" in log
    assert str(t1s[0]) not in log and "002.mgz" not in log
