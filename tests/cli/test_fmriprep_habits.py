"""What fMRIPrep users bring (issue 14): their FreeSurfer layout, filter files and flags.

Every test runs the command line in a subprocess, as a user would, on small datasets made
here from the real FreeSurfer stats of ``tests/data/fs_stats`` and the bundled example's
tables, and reads the outputs back with pandas/pybids.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3

import nibabel as nb
import numpy as np
import pandas as pd
import pytest

from bids_ms.cli.parser import get_parser
from bids_ms.errors import EXIT_NO_FREESURFER, EXIT_USAGE, InputDataError
from bids_ms.io.bids import match_freesurfer_id
from bids_ms.io.fsstats import read_stats_tables, read_subject_stats
from bids_ms.similarity import ms_matrix, regional_ms

from ..conftest import EXAMPLE, FS_SUBJECTS, run_cli, tree

TABLES = EXAMPLE / "freesurfer_tables"


def _t1w(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).random((6, 6, 6), dtype=np.float32)
    nb.Nifti1Image(data, np.eye(4)).to_filename(path)
    return path


def _dataset(root, layout: dict[str, list[str]]):
    """A BIDS dataset: ``{"01": ["ses-A", "ses-B"]}`` or ``{"02": [""]}`` (no session)."""
    bids = root / "bids"
    bids.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "t", "BIDSVersion": "1.9.0", "DatasetType": "raw"})
    )
    rows = ["participant_id"]
    for i, (label, sessions) in enumerate(layout.items()):
        rows.append(f"sub-{label}")
        for ses in sessions:
            parts = [f"sub-{label}"] + ([ses] if ses else [])
            anat = bids.joinpath(*parts, "anat")
            _t1w(anat / f"{'_'.join(parts)}_T1w.nii.gz", seed=i)
    (bids / "participants.tsv").write_text("\n".join(rows) + "\n")
    return bids


def _regional(out, subject, session=None):
    parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
    name = "_".join(parts) + "_atlas-DK_desc-MS_regional.tsv"
    return pd.read_csv(out.joinpath(*parts, "anat", name), sep="\t")


def _expected_regional(fs_subject):
    stats = read_subject_stats(FS_SUBJECTS / fs_subject)
    return regional_ms(ms_matrix(stats.morphometry.to_numpy()))


# ------------------------------------------------------------------ FreeSurfer subject matching


def test_match_order_session_then_subject_then_longitudinal():
    names = ["sub-01", "sub-01_ses-A", "sub-01_ses-A.long.sub-01", "sub-02", "sub-03_ses-B.long.b"]
    assert match_freesurfer_id(names, "01", "A").name == "sub-01_ses-A"
    hit = match_freesurfer_id(names, "01", "B")
    assert (hit.name, hit.layout) == ("sub-01", "subject")  # fMRIPrep layout, every session
    assert match_freesurfer_id(names, "02", None).name == "sub-02"
    hit = match_freesurfer_id(names, "01", "A", longitudinal=True)
    assert (hit.name, hit.layout) == ("sub-01_ses-A.long.sub-01", "longitudinal")
    assert match_freesurfer_id(names, "03", "B") is None  # longitudinal only when asked
    assert match_freesurfer_id(names, "03", "B", longitudinal=True).name == "sub-03_ses-B.long.b"
    # table ids: loose matching, same order
    ids = ["NYU_0050952", "NYU_0050952_ses-A", "X_1"]
    assert match_freesurfer_id(ids, "NYU0050952", "A", loose=True).name == "NYU_0050952_ses-A"
    assert match_freesurfer_id(ids, "NYU0050952", "B", loose=True).name == "NYU_0050952"
    assert match_freesurfer_id(ids, "X1", None) is None  # folders: exact names only
    with pytest.raises(InputDataError, match="sub-01_ses-A.long.a, sub-01_ses-A.long.b"):
        match_freesurfer_id(
            ["sub-01_ses-A.long.a", "sub-01_ses-A.long.b"], "01", "A", longitudinal=True, source="x"
        )


def test_sessions_with_an_fmriprep_freesurfer_folder(tmp_path):
    """One FreeSurfer subject sub-<L> per participant (fMRIPrep), sessions in BIDS."""
    bids = _dataset(tmp_path, {"LJ001": ["ses-A", "ses-B"], "LJ002": ["ses-A", "ses-B"]})
    fs = tmp_path / "freesurfer"
    shutil.copytree(FS_SUBJECTS / "sub-LJ001", fs / "sub-LJ001")  # fMRIPrep: sessions pooled
    shutil.copytree(FS_SUBJECTS / "sub-LJ002", fs / "sub-LJ002_ses-A")  # per session
    shutil.copytree(FS_SUBJECTS / "bert", fs / "sub-LJ002_ses-B")
    before = tree(fs)
    out = tmp_path / "out"
    res = run_cli(bids, out, "participant", "--fs-subjects-dir", fs, "--skip-bids-validation")
    assert res.returncode == 0, res.stderr
    assert "fMRIPrep's layout" in res.stderr and "ses-A, ses-B" in res.stderr
    assert tree(fs) == before  # nothing written into the user's FreeSurfer folder
    for ses in ("A", "B"):
        np.testing.assert_allclose(_regional(out, "LJ001", ses).ms, _expected_regional("sub-LJ001"))
    np.testing.assert_allclose(_regional(out, "LJ002", "A").ms, _expected_regional("sub-LJ002"))
    np.testing.assert_allclose(_regional(out, "LJ002", "B").ms, _expected_regional("bert"))


def test_longitudinal_subjects_with_fs_longitudinal(tmp_path):
    bids = _dataset(tmp_path, {"LJ001": ["ses-A"]})
    fs = tmp_path / "freesurfer"
    shutil.copytree(FS_SUBJECTS / "sub-LJ001", fs / "sub-LJ001_ses-A")  # cross-sectional
    shutil.copytree(FS_SUBJECTS / "sub-LJ002", fs / "sub-LJ001_ses-A.long.sub-LJ001")
    cross, long_ = tmp_path / "cross", tmp_path / "long"
    res = run_cli(bids, cross, "participant", "--fs-subjects-dir", fs, "--skip-bids-validation")
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(_regional(cross, "LJ001", "A").ms, _expected_regional("sub-LJ001"))
    res = run_cli(
        bids,
        long_,
        "participant",
        "--fs-subjects-dir",
        fs,
        "--fs-longitudinal",
        "--skip-bids-validation",
    )
    assert res.returncode == 0, res.stderr
    assert "longitudinal FreeSurfer subject sub-LJ001_ses-A.long.sub-LJ001" in res.stderr
    np.testing.assert_allclose(_regional(long_, "LJ001", "A").ms, _expected_regional("sub-LJ002"))


def test_table_ids_per_session_then_per_subject(tmp_path):
    """Table rows named sub-<L>_ses-<S>, sub-<L> (all sessions) or .long. (with the flag)."""
    rename = {
        "NYU_0050952": "sub-X1_ses-A",
        "NYU_0050954": "sub-X1_ses-B",
        "NYU_0050955": "sub-X2",
        "NYU_0050956": "sub-X1_ses-A.long.sub-X1",
    }
    tables = tmp_path / "tables"
    tables.mkdir()
    for path in TABLES.iterdir():
        lines = path.read_text().splitlines(keepends=True)
        keep = [lines[0]] + [
            rename[line.split("\t", 1)[0]] + "\t" + line.split("\t", 1)[1]
            for line in lines[1:]
            if line.split("\t", 1)[0] in rename
        ]
        (tables / path.name).write_text("".join(keep))
    bids = _dataset(tmp_path, {"X1": ["ses-A", "ses-B"], "X2": ["ses-A", "ses-B"]})
    raw = read_stats_tables(TABLES)
    feats = ("volume", "area", "thickness")

    def expected(table_id):
        return regional_ms(ms_matrix(raw.morphometry(table_id, feats).to_numpy()))

    common = ["--fs-stats-tables", tables, "--features", *feats, "--skip-bids-validation"]
    out = tmp_path / "out"
    res = run_cli(bids, out, "participant", *common)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(_regional(out, "X1", "A").ms, expected("NYU_0050952"))
    np.testing.assert_allclose(_regional(out, "X1", "B").ms, expected("NYU_0050954"))
    for ses in ("A", "B"):
        np.testing.assert_allclose(_regional(out, "X2", ses).ms, expected("NYU_0050955"))
    assert "sub-X2: one FreeSurfer subject for all sessions" in res.stderr
    out = tmp_path / "long"
    res = run_cli(bids, out, "participant", *common, "--fs-longitudinal")
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(_regional(out, "X1", "A").ms, expected("NYU_0050956"))
    np.testing.assert_allclose(_regional(out, "X1", "B").ms, expected("NYU_0050954"))


def test_no_recon_all_inside_a_users_freesurfer_folder(tmp_path):
    bids = _dataset(tmp_path, {"LJ001": [""], "02": [""], "03": [""]})
    fs = tmp_path / "freesurfer"
    shutil.copytree(FS_SUBJECTS / "sub-LJ001", fs / "sub-LJ001")
    (fs / "fsaverage").mkdir()
    before = tree(fs)
    out = tmp_path / "out"
    res = run_cli(bids, out, "participant", "--fs-subjects-dir", fs, "--skip-bids-validation")
    assert res.returncode == EXIT_USAGE, res.stderr
    assert "sub-02, sub-03" in res.stderr and "--fs-reconall-missing" in res.stderr
    assert "holds other subjects (sub-LJ001)" in res.stderr
    assert "Traceback" not in res.stderr
    assert tree(fs) == before
    assert not list(out.glob("sub-*"))
    # with the flag, recon-all is wanted: here it stops at the missing FreeSurfer (127)
    env = {
        "FREESURFER_HOME": str(tmp_path / "nofs"),
        "PATH": os.path.dirname(os.sys.executable) + ":/usr/bin:/bin",
    }
    res = run_cli(
        bids,
        out,
        "participant",
        "--fs-subjects-dir",
        fs,
        "--fs-reconall-missing",
        "--skip-bids-validation",
        env=env,
    )
    assert res.returncode == EXIT_NO_FREESURFER, res.stderr
    assert "sub-02" in res.stderr and "FreeSurfer is not installed" in res.stderr


# ------------------------------------------------------------------ flags from fMRIPrep scripts


def _two_runs(tmp_path):
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "t", "BIDSVersion": "1.9.0"})
    )
    anat = bids / "sub-LJ001" / "anat"
    for name in (
        "sub-LJ001_acq-mprage_run-1_T1w.nii.gz",
        "sub-LJ001_acq-mprage_run-2_T1w.nii.gz",
        "sub-LJ001_acq-mprage_rec-norm_run-1_T1w.nii.gz",
        "sub-LJ001_acq-fast_run-1_T1w.nii.gz",
    ):
        _t1w(anat / name)
    return bids


@pytest.mark.parametrize(
    "query, chosen",
    [
        ({"acquisition": "mprage", "reconstruction": None, "run": 2}, ["acq-mprage_run-2"]),
        ({"acquisition": "mprage", "reconstruction": "norm"}, ["acq-mprage_rec-norm_run-1"]),
        ({"acquisition": "fast"}, ["acq-fast_run-1"]),
        (
            {"acquisition": "mprage", "reconstruction": None},
            ["acq-mprage_run-1", "acq-mprage_run-2"],
        ),
    ],
    ids=["acq-rec-run", "rec", "acq", "two-runs"],
)
def test_filter_file_chooses_the_t1w_runs(tmp_path, query, chosen):
    """The planned recon-all inputs, logged before FreeSurfer is looked for."""
    bids = _two_runs(tmp_path)
    filt = tmp_path / "filter.json"
    filt.write_text(json.dumps({"t1w": query, "bold": {"task": "rest"}}))
    env = {
        "FREESURFER_HOME": str(tmp_path / "nofs"),
        "PATH": os.path.dirname(os.sys.executable) + ":/usr/bin:/bin",
    }
    res = run_cli(
        bids, tmp_path / "out", "participant", "--bids-filter-file", filt,
        "--skip-bids-validation", env=env,
    )  # fmt: skip
    assert res.returncode == EXIT_NO_FREESURFER, res.stderr
    plan = next(line for line in res.stderr.splitlines() if "sub-LJ001: recon-all" in line)
    inputs = plan.split("recon-all ", 1)[1].split()
    assert inputs[1::2] == [f"sub-LJ001_{c}_T1w.nii.gz" for c in chosen]
    assert set(inputs[0::2]) == {"-i"}


def test_filter_file_errors_are_one_line(tmp_path):
    bids = _two_runs(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"t1w": ["mprage"]}')
    res = run_cli(bids, tmp_path / "o", "participant", "--bids-filter-file", bad,
                  "--skip-bids-validation")  # fmt: skip
    assert res.returncode == EXIT_USAGE and str(bad) in res.stderr
    bad.write_text('{"t1w": {"acq": "mprage"}}')  # BIDS short name, not the pybids entity
    res = run_cli(bids, tmp_path / "o", "participant", "--bids-filter-file", bad,
                  "--skip-bids-validation")  # fmt: skip
    assert res.returncode == EXIT_USAGE and "acquisition" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("sub-*"))


def test_notrack_is_accepted_and_changes_nothing(tmp_path):
    res = run_cli("--help")
    assert "--notrack" in res.stdout and "no telemetry" in res.stdout
    args = [
        EXAMPLE / "bids", None, "participant", "--fs-stats-tables", TABLES,
        "--features", "volume,area,thickness", "--skip-bids-validation",
        "--participant-label", "NYU0050952", "USM0050433",
    ]  # fmt: skip
    outs = []
    for extra in ([], ["--notrack"]):
        out = tmp_path / f"out{len(extra)}"
        args[1] = out
        res = run_cli(*args, *extra)
        assert res.returncode == 0, res.stderr
        outs.append(out)
    files = [f for f in tree(outs[0]) if f.endswith((".tsv", ".json")) and "logs" not in f]
    assert files and files == [
        f for f in tree(outs[1]) if f.endswith((".tsv", ".json")) and "logs" not in f
    ]
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


def test_mem_is_nipype_memory_gb():
    parser = get_parser()
    for value, gb in (("16", 16.0), ("16G", 16.0), ("16000M", 16.0), ("16GB", 16.0), ("1T", 1000)):
        args = parser.parse_args(["b", "o", "participant", "--mem", value])
        assert args.mem_gb == pytest.approx(gb)
    assert parser.parse_args(["b", "o", "participant", "--mem-gb", "4"]).mem_gb == 4.0
    assert parser.parse_args(["b", "o", "participant"]).mem_gb is None
    res = run_cli("b", "o", "participant", "--mem", "lots")
    assert res.returncode == EXIT_USAGE and "--mem" in res.stderr


def test_mem_reaches_multiproc_and_caps_recon_all(tmp_path):
    from bids_ms.levels.participant import ParticipantSettings, nipype_plugin_args
    from bids_ms.workflows.base import ReconTarget, init_bids_ms_wf

    settings = ParticipantSettings(tmp_path, tmp_path / "o", tmp_path / "w", nprocs=2, mem_gb=6)
    assert nipype_plugin_args(settings) == {"n_procs": 2, "memory_gb": 6}
    settings.nipype_plugin = "SLURM"
    assert nipype_plugin_args(settings) == {}
    (tmp_path / "fs").mkdir()
    (tmp_path / "a.nii.gz").write_bytes(b"")
    wf = init_bids_ms_wf(
        targets=[ReconTarget("01", None, [str(tmp_path / "a.nii.gz")])],
        subjects_dir=tmp_path / "fs", output_dir=tmp_path / "o", work_dir=tmp_path / "w",
        features=("volume", "area"), omp_nthreads=1, freesurfer_version=None, mem_gb=6,
    )  # fmt: skip
    recon = wf.get_node("single_subject_sub_01_wf").get_node("recon_all")
    assert recon.mem_gb == 6  # within --mem, so MultiProc can schedule it


def test_bids_database_dir_is_written_then_reused(tmp_path):
    bids = _dataset(tmp_path, {"LJ001": ["ses-A"], "LJ002": ["ses-A"]})
    fs = tmp_path / "freesurfer"
    for name in ("sub-LJ001", "sub-LJ002"):
        shutil.copytree(FS_SUBJECTS / name, fs / name)
    db = tmp_path / "pybids_db"
    common = ["--fs-subjects-dir", fs, "--skip-bids-validation", "--bids-database-dir", db]
    res = run_cli(bids, tmp_path / "out", "participant", *common, "--participant-label", "LJ001")
    assert res.returncode == 0, res.stderr
    assert "indexing" in res.stderr
    index = db / "layout_index.sqlite"
    with sqlite3.connect(index) as con:
        n_files = con.execute("select count(*) from files").fetchone()[0]
    assert n_files >= 3  # the two T1w images and the dataset's files
    stamp = index.stat().st_mtime_ns
    # A file added after indexing stays unseen: the second run does not walk the dataset.
    _t1w(bids / "sub-LJ002" / "ses-A" / "anat" / "sub-LJ002_ses-A_run-2_T1w.nii.gz")
    res = run_cli(bids, tmp_path / "out", "participant", *common, "--participant-label", "LJ002")
    assert res.returncode == 0, res.stderr
    assert "reusing the pybids index" in res.stderr and "indexing" not in res.stderr
    assert index.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob(".pybids_db.*"))  # no temporary folder left
    np.testing.assert_allclose(
        _regional(tmp_path / "out", "LJ002", "A").ms, _expected_regional("sub-LJ002")
    )
    # an index of another dataset is refused
    other = _dataset(tmp_path / "other", {"LJ001": [""]})
    res = run_cli(other, tmp_path / "o2", "participant", *common)
    assert res.returncode == EXIT_USAGE and "this pybids index is of" in res.stderr
    # never written into bids_dir
    before = tree(other)
    res = run_cli(
        other, tmp_path / "o3", "participant", "--skip-bids-validation",
        "--bids-database-dir", other / "code" / "pybids_db",
    )  # fmt: skip
    assert res.returncode == EXIT_USAGE and "inside the BIDS dataset" in res.stderr
    assert tree(other) == before and not (other / "code").exists()


# ------------------------------------------------------------------ derivatives other tools find

EXAMPLE_ARGS = [
    "--fs-stats-tables", TABLES, "--features", "volume,area,thickness",
    "--skip-bids-validation", "--participant-label", "NYU0050952",
]  # fmt: skip


def test_legacy_matrix_name_is_read_with_a_warning_then_renamed(tmp_path):
    from bids_ms.io.derivatives import LegacyNameWarning, read_ms_matrix

    out = tmp_path / "out"
    res = run_cli(EXAMPLE / "bids", out, "participant", *EXAMPLE_ARGS)
    assert res.returncode == 0, res.stderr
    anat = out / "sub-NYU0050952" / "anat"
    new = anat / "sub-NYU0050952_atlas-DK_meas-MorphometricSimilarity_relmat.tsv"
    expected = pd.read_csv(new, sep="\t", index_col=0)
    # a folder written by the previous release: old names, old .bidsignore
    old = anat / "sub-NYU0050952_atlas-DK_desc-MS_connectivity.tsv"
    new.rename(old)
    new.with_suffix(".json").rename(old.with_suffix(".json"))
    (out / ".bidsignore").write_text("*_connectivity.tsv\n*_connectivity.json\n*_morph.tsv\n")
    with pytest.warns(LegacyNameWarning, match="BEP017"):
        got = read_ms_matrix(out, "NYU0050952")
    pd.testing.assert_frame_equal(got, expected, check_names=False)
    res = run_cli(EXAMPLE / "bids", out, "participant", "--reports-only", *EXAMPLE_ARGS)
    assert res.returncode == 0, res.stderr
    assert "the old name is read in this release only" in res.stderr
    assert (out / "sub-NYU0050952" / "figures" / "sub-NYU0050952_desc-msmatrix.png").is_file()
    res = run_cli(EXAMPLE / "bids", out, "participant", "--overwrite", *EXAMPLE_ARGS)
    assert res.returncode == 0, res.stderr
    assert new.is_file() and not old.exists() and not old.with_suffix(".json").exists()
    ignore = (out / ".bidsignore").read_text().splitlines()
    assert "*_relmat.tsv" in ignore and "*_connectivity.tsv" in ignore  # user lines kept


def _description(tmp_path, raw_extra, env=None, name="out"):
    bids = tmp_path / "bids"
    if not bids.exists():
        shutil.copytree(EXAMPLE / "bids", bids)
    desc = json.loads((EXAMPLE / "bids" / "dataset_description.json").read_text())
    (bids / "dataset_description.json").write_text(json.dumps({**desc, **raw_extra}))
    out = tmp_path / "deriv" / name
    res = run_cli(bids, out, "participant", *EXAMPLE_ARGS, env=env)
    assert res.returncode == 0, res.stderr
    return out, json.loads((out / "dataset_description.json").read_text())


def test_source_datasets_is_a_doi_or_a_relative_bids_uri(tmp_path):
    no_container = {"BIDS_MS_CONTAINER": "", "APPTAINER_CONTAINER": "", "SINGULARITY_CONTAINER": ""}
    out, desc = _description(
        tmp_path, {"DatasetDOI": "doi:10.18112/openneuro.ds000030.v1.0.0"}, env=no_container
    )
    assert desc["SourceDatasets"] == [
        {
            "DOI": "doi:10.18112/openneuro.ds000030.v1.0.0",
            "URL": "https://doi.org/10.18112/openneuro.ds000030.v1.0.0",
        }
    ]
    assert "file:" not in (out / "dataset_description.json").read_text()
    assert "Container" not in desc["GeneratedBy"][0]  # a plain install is no container
    out, desc = _description(tmp_path, {}, env=no_container, name="nodoi")
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:."}]
    link = desc["DatasetLinks"]["raw"]
    assert not link.startswith(("/", "file:"))
    assert (out / link).resolve() == (tmp_path / "bids").resolve()
    text = (out / "dataset_description.json").read_text()
    assert "file:" not in text and str(tmp_path) not in text


def test_container_comes_from_the_images_environment_variable(tmp_path, monkeypatch):
    from bids_ms.io.derivatives import CONTAINER_ENV, container_info

    assert CONTAINER_ENV == "BIDS_MS_CONTAINER"
    for var in ("BIDS_MS_CONTAINER", "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"):
        monkeypatch.delenv(var, raising=False)
    assert container_info() is None
    monkeypatch.setenv("APPTAINER_CONTAINER", "/images/other.sif")
    assert container_info() is None  # someone else's image
    monkeypatch.setenv("BIDS_MS_CONTAINER", "docker")
    monkeypatch.setenv("BIDS_MS_CONTAINER_TAG", "bids-ms/bids-ms:0.1.0")
    assert container_info() == {
        "Type": "singularity",
        "URI": "/images/other.sif",
        "Tag": "bids-ms/bids-ms:0.1.0",
    }
    env = {
        "BIDS_MS_CONTAINER": "docker",
        "BIDS_MS_CONTAINER_TAG": "bids-ms/bids-ms:0.1.0",
        "APPTAINER_CONTAINER": "",
        "SINGULARITY_CONTAINER": "",
    }
    _, desc = _description(tmp_path, {}, env=env)
    assert desc["GeneratedBy"][0]["Container"] == {"Type": "docker", "Tag": "bids-ms/bids-ms:0.1.0"}


# ------------------------------------------------------------------ participant pages


def test_participant_pages_show_group_membership_after_the_group_level(tmp_path):
    bids = tmp_path / "bids"
    shutil.copytree(EXAMPLE / "bids", bids)
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str)
    chosen = pd.concat(
        [table[table.group == "ASD"].head(5), table[table.group == "control"].head(5)]
    )
    dropped = chosen.participant_id.iloc[0]
    table.loc[table.participant_id == dropped, "age"] = "n/a"
    table.to_csv(bids / "participants.tsv", sep="\t", index=False)
    labels = list(chosen.participant_id)
    out = tmp_path / "out"
    common = ["--skip-bids-validation", "--participant-label", *labels]
    res = run_cli(
        bids, out, "participant", "--fs-stats-tables", TABLES,
        "--features", "volume,area,thickness", *common,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    page = out / f"{labels[1]}.html"
    assert "group level not run yet" in page.read_text()
    figures = sorted((out / labels[1] / "figures").iterdir())
    stamps = [f.stat().st_mtime_ns for f in figures]
    res = run_cli(bids, out, "group", "--n-spins", "0", "--skip-transcriptomics", *common)
    assert res.returncode == 0, res.stderr
    assert "group membership updated in 10 participant page(s)" in res.stderr
    included = pd.read_csv(out / "group" / "desc-included_participants.tsv", sep="\t")
    assert len(included) == 9 and dropped not in set(included.participant_id)
    for pid in labels:
        html = (out / f"{pid}.html").read_text()
        assert "group level not run yet" not in html
        block = html.split(f"<!-- bids-ms:group-membership {pid} -->")[1].split("<!--")[0]
        if pid == dropped:
            # the quotes are escaped (markupsafe writes &#39;, html.escape &#x27;)
            assert block.replace("&#39;", "&#x27;") == (
                "excluded from the group models: no value for covariate &#x27;age&#x27;"
            )
        else:
            group = table.set_index("participant_id").group[pid]
            role = "case" if group == "ASD" else "control"
            assert block == f"{group} ({role}); in the group models with 9 participants"
    # only the marked block changed: the figures were not drawn again
    assert [f.stat().st_mtime_ns for f in figures] == stamps
    # the group level's methods text comes with its references as BibTeX
    md = (out / "logs" / "CITATION.md").read_text()
    bib = (out / "logs" / "CITATION.bib").read_text()
    md_dois = re.findall(r"^\d+\. .*doi:(\S+)$", md, flags=re.M)
    bib_dois = re.findall(r"^  doi = \{(.+)\}$", bib, flags=re.M)
    assert md_dois and bib_dois == md_dois
    assert re.findall(r"^@(\w+)\{(\w+),$", bib, flags=re.M)[0] == ("software", "bidsms")


# ------------------------------------------------------------------ citation


def test_citation_bib_has_every_cited_reference():
    from bids_ms.reports.citation import REFERENCES, citation_bibtex, methods_text

    m = methods_text(
        participants={"n": 3, "features": ["volume", "area"], "sources": {"tables"}},
        group={"Covariates": ["age"], "NSpins": 10, "Seed": 1, "NCase": 3, "NControl": 3},
        stages={"hubs": {}, "qc": {"threshold": 3.5, "limit": 7}},
    )
    bib = citation_bibtex(m)
    entries = re.findall(r"^@(\w+)\{(\w+),\n(.*?)\n\}$", bib, flags=re.M | re.S)
    assert [key for _, key, _ in entries] == ["bidsms", *m.cited]
    assert bib.count("{") == bib.count("}")
    for kind, key, body in entries[1:]:
        fields = dict(re.findall(r"^  (\w+) = \{(.*)\},?$", body, flags=re.M))
        text = REFERENCES[key]
        if kind == "article":
            assert text.endswith("doi:" + fields["doi"]), key
            assert fields["title"] in text and fields["year"] in text
            first_author = text.split(" ", 1)[0]
            assert fields["author"].startswith(first_author + ", "), key
        else:
            assert kind == "book" and fields["year"] in text, key
    assert "iglewicz1993" in m.cited  # the book is among them
    assert "Benjamini, Y. and Hochberg, Y." in bib


def test_citation_cff_at_the_root_names_the_paper_and_this_version():
    import yaml

    from bids_ms import __url__, __version__
    from bids_ms.reports.citation import REFERENCES

    from ..conftest import ROOT

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and {"message", "title", "authors"} <= set(cff)
    assert str(cff["version"]) == __version__
    assert cff["repository-code"] == __url__
    license_ = re.search(
        r'^license = \{ text = "(.+)" \}', (ROOT / "pyproject.toml").read_text(), re.M
    )
    assert cff["license"] == license_.group(1)
    paper = cff["preferred-citation"]
    assert REFERENCES["martins2022"].endswith("doi:" + paper["doi"])
    assert paper["authors"][0]["family-names"] == "Martins" and len(paper["authors"]) == 8
    assert (paper["year"], paper["volume"], paper["start"], paper["end"]) == (
        2022,
        163,
        "e759",
        "e773",
    )
