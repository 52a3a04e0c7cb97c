"""The participant level end to end, run as the README runs it, read back with pybids/pandas."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from bids_ms.atlas import DK_REGIONS
from bids_ms.errors import EXIT_PARTICIPANT_FAILED, EXIT_USAGE
from bids_ms.io.fsstats import read_stats_tables, read_subject_stats
from bids_ms.io.outputs import columns
from bids_ms.similarity import ms_matrix

from ..conftest import DATA, EXAMPLE, FS_SUBJECTS, run_cli, tree

BIDS = EXAMPLE / "bids"
TABLES = EXAMPLE / "freesurfer_tables"
EXAMPLE_ARGS = [
    "--fs-stats-tables",
    TABLES,
    "--features",
    "volume",
    "area",
    "thickness",
    "--skip-bids-validation",
]


@pytest.fixture
def example_out(example_participant_out):
    """The README's participant-level command on the bundled example, run once per session
    (conftest; it also checks that nothing was written into bids_dir). Read-only."""
    return example_participant_out


def test_outputs_follow_the_contract(example_out):
    files = tree(example_out)
    expected = (DATA / "expected_participant_outputs.txt").read_text().split()
    keep = ("sub-NYU0050952", "sub-USM0050433")
    sample = [f for f in files if f.startswith(keep) or ("/" not in f and not f.startswith("sub-"))]
    sample = [f for f in sample if not f.startswith("logs/") and "/figures/" not in f]
    assert sample == expected
    assert sum(f.endswith("_desc-MS_regional.json") for f in files) == 246
    assert sum(f.startswith("sub-") and f.endswith(".html") for f in files) == 246
    assert any(f.startswith("sub-NYU0050952/figures/") for f in files)


def test_pybids_lists_the_participants(example_out):
    from bids import BIDSLayout

    layout = BIDSLayout(example_out, is_derivative=True, validate=False)
    participants = pd.read_csv(BIDS / "participants.tsv", sep="\t")
    assert sorted(layout.get_subjects()) == sorted(participants.participant_id.str[4:])
    regional = layout.get(
        subject="NYU0050952", atlas="DK", desc="MS", suffix="regional", extension=".tsv"
    )
    assert len(regional) == 1
    # the MS matrix under its BEP017 name (pybids does not know the meas- entity yet)
    relmat = layout.get(subject="NYU0050952", atlas="DK", suffix="relmat", extension=".tsv")
    assert [f.filename for f in relmat] == [
        "sub-NYU0050952_atlas-DK_meas-MorphometricSimilarity_relmat.tsv"
    ]
    meta = relmat[0].get_metadata()
    assert meta["Measure"].startswith("Morphometric similarity")
    assert meta["Directed"] is False and meta["ValidDiagonal"] is False
    found = layout.get(suffix="relmat", atlas="DK", return_type="id", target="subject")
    assert sorted(found) == sorted(participants.participant_id.str[4:])
    assert not layout.get(suffix="connectivity")  # the pre-BEP017 name is gone


def test_values_match_an_independent_computation(example_out):
    tables = read_stats_tables(TABLES)
    anat = example_out / "sub-NYU0050952" / "anat"
    morph = pd.read_csv(anat / "sub-NYU0050952_atlas-DK_morph.tsv", sep="\t")
    assert list(morph.columns) == columns("morph", features=["volume", "area", "thickness"])
    assert list(morph.region) == list(DK_REGIONS)
    assert set(morph.hemisphere[:34]) == {"L"} and set(morph.hemisphere[34:]) == {"R"}
    raw = pd.read_csv(TABLES / "lh.aparc_table_volume.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(morph.volume[:34], raw.loc["NYU_0050952"].iloc[:34].to_numpy())
    mat = pd.read_csv(
        anat / "sub-NYU0050952_atlas-DK_meas-MorphometricSimilarity_relmat.tsv",
        sep="\t",
        index_col=0,
    )
    assert list(mat.index) == list(DK_REGIONS) and list(mat.columns) == list(DK_REGIONS)
    assert mat.isna().to_numpy().diagonal().all()  # diagonal written as n/a
    reference = np.corrcoef(
        ((morph.iloc[:, 2:] - morph.iloc[:, 2:].mean()) / morph.iloc[:, 2:].std()).to_numpy()
    )
    off = ~np.eye(68, dtype=bool)
    np.testing.assert_allclose(mat.to_numpy()[off], reference[off], atol=1e-8)
    regional = pd.read_csv(anat / "sub-NYU0050952_atlas-DK_desc-MS_regional.tsv", sep="\t")
    assert list(regional.columns) == columns("regional")
    np.testing.assert_allclose(
        regional.ms, np.nanmean(np.where(off, reference, np.nan), axis=1), atol=1e-8
    )
    side = json.loads((anat / "sub-NYU0050952_atlas-DK_desc-MS_regional.json").read_text())
    assert side["GlobalMS"] == pytest.approx(regional.ms.mean())
    assert side["eTIV"] == pytest.approx(tables.etiv["NYU_0050952"])
    assert side["Features"] == ["volume", "area", "thickness"]
    assert side["Source"] == "tables"
    desc = json.loads((example_out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "bids-ms"
    assert {"Version", "CodeURL"} <= set(desc["GeneratedBy"][0])


def test_derivatives_pass_the_bids_validator(example_out):
    exe = shutil.which("bids-validator-deno")
    if exe is None:
        pytest.skip("bids-validator-deno is not installed (pip install bids-validator-deno)")
    res = subprocess.run([exe, "--json", str(example_out)], capture_output=True, text=True)
    issues = json.loads(res.stdout)["issues"]["issues"]
    errors = [i for i in issues if i["severity"] == "error"]
    assert errors == []
    assert res.returncode == 0


def test_rerun_resumes_and_changed_settings_need_overwrite(example_participant_copy):
    example_out = example_participant_copy
    target = (
        example_out / "sub-NYU0050952" / "anat" / "sub-NYU0050952_atlas-DK_desc-MS_regional.tsv"
    )
    mtime = target.stat().st_mtime_ns
    res = run_cli(
        BIDS,
        example_out,
        "participant",
        *EXAMPLE_ARGS,
        "--participant-label",
        "NYU0050952",
        "sub-USM0050433",
    )
    assert res.returncode == 0, res.stderr
    assert "2 already done" in res.stderr
    assert target.stat().st_mtime_ns == mtime
    res = run_cli(
        BIDS,
        example_out,
        "participant",
        "--fs-stats-tables",
        TABLES,
        "--features",
        "volume,area",
        "--skip-bids-validation",
        "--participant-label",
        "NYU0050952",
    )
    assert res.returncode == EXIT_PARTICIPANT_FAILED
    assert "sub-NYU0050952" in res.stderr and "--overwrite" in res.stderr
    assert target.stat().st_mtime_ns == mtime


def test_subjects_dir_reuse_and_a_failing_participant(tmp_path):
    """Existing recon-all subjects are reused; a participant without inputs fails alone."""
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    (bids / "participants.tsv").write_text(
        "participant_id\tage\nsub-LJ001\t30\nsub-LJ002\t31\nsub-bert\t40\nsub-ghost\t50\n"
    )
    fs = tmp_path / "fs"
    for name in ("sub-LJ001", "sub-LJ002"):
        shutil.copytree(FS_SUBJECTS / name, fs / name)
    shutil.copytree(FS_SUBJECTS / "bert", fs / "bert")  # named without sub-: also found
    out = tmp_path / "out"
    res = run_cli(bids, out, "participant", "--fs-subjects-dir", fs, "--skip-bids-validation")
    assert res.returncode == EXIT_PARTICIPANT_FAILED, res.stderr
    assert "sub-ghost: no T1w image" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (out / "sub-ghost").exists()
    for label in ("LJ001", "LJ002", "bert"):
        side = json.loads(
            (
                out / f"sub-{label}" / "anat" / f"sub-{label}_atlas-DK_desc-MS_regional.json"
            ).read_text()
        )
        assert side["Source"] == "subjects-dir"
    side = json.loads(
        (out / "sub-LJ001" / "anat" / "sub-LJ001_atlas-DK_desc-MS_regional.json").read_text()
    )
    assert side["FreeSurferVersion"] == "7.3.2"
    stats = read_subject_stats(FS_SUBJECTS / "sub-LJ001")
    assert side["eTIV"] == pytest.approx(stats.etiv)
    regional = pd.read_csv(
        out / "sub-LJ001" / "anat" / "sub-LJ001_atlas-DK_desc-MS_regional.tsv", sep="\t"
    )
    m = ms_matrix(stats.morphometry.to_numpy())
    np.testing.assert_allclose(regional.ms, (m.sum(1) - 1) / 67, atol=1e-9)
    morph = pd.read_csv(out / "sub-LJ001" / "anat" / "sub-LJ001_atlas-DK_morph.tsv", sep="\t")
    assert list(morph.columns[2:]) == ["volume", "area", "thickness", "meancurv", "gauscurv"]


def test_corrupt_stats_in_subjects_dir_fail_that_participant_with_the_file(tmp_path):
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    (bids / "participants.tsv").write_text("participant_id\nsub-LJ001\nsub-LJ002\n")
    fs = tmp_path / "fs"
    for name in ("sub-LJ001", "sub-LJ002"):
        shutil.copytree(FS_SUBJECTS / name, fs / name)
    bad = fs / "sub-LJ002" / "stats" / "rh.aparc.stats"
    bad.write_text(bad.read_text()[:3000])
    res = run_cli(
        bids, tmp_path / "out", "participant", "--fs-subjects-dir", fs, "--skip-bids-validation"
    )
    assert res.returncode == EXIT_PARTICIPANT_FAILED
    assert str(bad) in res.stderr and "sub-LJ002" in res.stderr
    assert not (tmp_path / "out" / "sub-LJ002").exists()  # no partial output
    assert (tmp_path / "out" / "sub-LJ001" / "anat").is_dir()


def test_parallel_runs_share_an_output_folder(tmp_path):
    out = tmp_path / "out"
    labels = pd.read_csv(BIDS / "participants.tsv", sep="\t").participant_id.tolist()
    procs = [
        subprocess.Popen(
            [
                __import__("sys").executable,
                "-m",
                "bids_ms",
                str(BIDS),
                str(out),
                "participant",
                *map(str, EXAMPLE_ARGS),
                "--participant-label",
                *chunk,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for chunk in (labels[0:20], labels[20:40], labels[40:60])
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert json.loads((out / "dataset_description.json").read_text())["DatasetType"] == "derivative"
    assert sum(1 for _ in out.glob("sub-*/anat/*_desc-MS_regional.json")) == 60
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t: [t / "missing", t / "out", "participant"], "does not exist"),
        (lambda t: [t, t / "out", "participant"], "no dataset_description.json"),
        (lambda t: [BIDS, BIDS / "derivatives" / "ms", "participant"], "inside the BIDS dataset"),
        (
            lambda t: [
                BIDS,
                t / "out",
                "participant",
                "--participant-label",
                "sub-NOPE",
                *EXAMPLE_ARGS,
            ],
            "NOPE not found",
        ),
        (
            lambda t: [BIDS, t / "out", "participant", "--features", "volume", "colour"],
            "unknown feature",
        ),
        (
            lambda t: [
                BIDS,
                t / "out",
                "participant",
                "--fs-stats-tables",
                TABLES,
                "--skip-bids-validation",
            ],
            "--features volume area thickness",
        ),
        (
            lambda t: [
                BIDS,
                t / "out",
                "participant",
                "--fs-stats-tables",
                FS_SUBJECTS,
                "--skip-bids-validation",
            ],
            "no aparcstats2table tables",
        ),
        (lambda t: [BIDS, t / "out", "sideways"], "invalid choice"),
    ],
    ids=[
        "missing-bids",
        "not-bids",
        "output-in-bids",
        "unknown-label",
        "bad-feature",
        "missing-feature-tables",
        "not-tables",
        "bad-level",
    ],
)
def test_bad_input_is_one_line_without_traceback(tmp_path, make_args, message):
    before = tree(BIDS)
    res = run_cli(*make_args(tmp_path))
    assert res.returncode == EXIT_USAGE, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert tree(BIDS) == before
    assert not list((tmp_path / "out").glob("sub-*"))


def test_unknown_label_lists_the_known_ones(tmp_path):
    res = run_cli(BIDS, tmp_path / "out", "participant", "--participant-label", "X1", *EXAMPLE_ARGS)
    assert "known participants (246)" in res.stderr and "NYU0050952" in res.stderr


def test_tables_matching_no_participant(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    for path in TABLES.iterdir():
        text = path.read_text().replace("NYU_", "ZZZ_").replace("USM_", "QQQ_")
        (tables / path.name).write_text(text)
    res = run_cli(
        BIDS,
        tmp_path / "out",
        "participant",
        "--fs-stats-tables",
        tables,
        "--features",
        "volume,area,thickness",
        "--skip-bids-validation",
    )
    assert res.returncode == EXIT_USAGE
    assert str(tables) in res.stderr and "no subject id of the tables matches" in res.stderr


def test_help_and_version():
    res = run_cli("--help")
    assert res.returncode == 0
    for flag in (
        "--participant-label",
        "--fs-license-file",
        "--fs-stats-tables",
        "--nipype-plugin",
        "exit codes",
    ):
        assert flag in res.stdout
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("bids-ms ")


def test_underscore_spellings_are_accepted(tmp_path):
    res = run_cli(
        BIDS,
        tmp_path / "out",
        "participant",
        "--fs_stats_tables",
        TABLES,
        "--features",
        "volume,area,thickness",
        "--skip_bids_validation",
        "--participant_label",
        "NYU0050952",
    )
    assert res.returncode == 0, res.stderr


def test_bids_validation_runs_and_reports_errors(tmp_path):
    """The example has participants without folders: the validator's error is reported."""
    if shutil.which("bids-validator-deno") is None:
        res = run_cli(
            BIDS,
            tmp_path / "out",
            "participant",
            *EXAMPLE_ARGS[:-1],
            "--participant-label",
            "NYU0050952",
        )
        assert "bids-validator-deno is not installed" in res.stderr
        return
    res = run_cli(
        BIDS,
        tmp_path / "out",
        "participant",
        *EXAMPLE_ARGS[:-1],
        "--participant-label",
        "NYU0050952",
    )
    assert res.returncode == EXIT_USAGE
    assert "bids-validator-deno found" in res.stderr and "PARTICIPANT_ID_MISMATCH" in res.stderr
    assert "--skip-bids-validation" in res.stderr
