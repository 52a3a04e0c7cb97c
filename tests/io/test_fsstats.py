"""Parsing FreeSurfer stats files and tables, checked on real subjects of FreeSurfer 5.3-7.4."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from bids_ms.atlas import DK_REGIONS, DK_STRUCTURES, FEATURES
from bids_ms.errors import InputDataError
from bids_ms.io.fsstats import (
    read_aparc_stats,
    read_aseg_etiv,
    read_stats_tables,
    read_subject_stats,
)

from ..conftest import EXAMPLE, FS_SUBJECTS, REAL_SUBJECTS

EXPECTED_VERSION = {
    "FS741_198451": None,  # FreeSurfer 5.3: the header names a CVS id, not a release
    "FS741_corrected_filled": "7.4.1",
    "bert": "7.2.0-beta",
    "sub-LJ001": "7.3.2",
    "sub-LJ002": "7.3.2",
}
COLUMN_OF = {"volume": 3, "area": 2, "thickness": 4, "meancurv": 6, "gauscurv": 7}


def _independent_aparc(path):
    """Rows of a stats file read with numpy alone (StructName, then 9 numbers)."""
    names, rows = [], []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        names.append(parts[0])
        rows.append([float(x) for x in parts[1:]])
    return names, np.array(rows)


def _independent_etiv(path):
    match = re.search(r"EstimatedTotalIntraCranialVol, eTIV, [^,]*, ([0-9.]+)", path.read_text())
    return float(match.group(1))


@pytest.mark.parametrize("subject", REAL_SUBJECTS)
def test_real_subjects_parse_like_an_independent_reader(subject):
    stats = read_subject_stats(FS_SUBJECTS / subject)
    assert list(stats.morphometry.index) == list(DK_REGIONS)
    assert list(stats.morphometry.columns) == list(FEATURES)
    for i, hemi in enumerate(("lh", "rh")):
        names, values = _independent_aparc(FS_SUBJECTS / subject / "stats" / f"{hemi}.aparc.stats")
        order = [names.index(s) for s in DK_STRUCTURES]
        block = stats.morphometry.iloc[34 * i : 34 * (i + 1)]
        for feat, col in COLUMN_OF.items():
            np.testing.assert_array_equal(block[feat].to_numpy(), values[order, col - 1])
    assert stats.etiv == pytest.approx(
        _independent_etiv(FS_SUBJECTS / subject / "stats" / "aseg.stats")
    )
    assert stats.freesurfer_version == EXPECTED_VERSION[subject]


def test_etiv_falls_back_to_aparc_header_without_aseg(tmp_path):
    subject = tmp_path / "bert"
    shutil.copytree(FS_SUBJECTS / "bert", subject)
    (subject / "stats" / "aseg.stats").unlink()
    stats = read_subject_stats(subject)
    assert stats.etiv == pytest.approx(
        _independent_etiv(FS_SUBJECTS / "bert" / "stats" / "lh.aparc.stats")
    )
    assert len(stats.files) == 2


def test_etiv_is_none_when_no_file_records_it(tmp_path):
    subject = tmp_path / "s"
    shutil.copytree(FS_SUBJECTS / "sub-LJ001", subject)  # 7.3.2 aparc headers carry no eTIV
    (subject / "stats" / "aseg.stats").unlink()
    assert read_subject_stats(subject).etiv is None


def _corrupt(tmp_path, transform, hemi="lh"):
    subject = tmp_path / "bad"
    shutil.copytree(FS_SUBJECTS / "bert", subject)
    path = subject / "stats" / f"{hemi}.aparc.stats"
    path.write_text(transform(path.read_text()))
    return subject, path


@pytest.mark.parametrize(
    "transform, message",
    [
        (lambda t: "", "empty"),
        (lambda t: t[: len(t) // 2], "values where the header"),  # truncated mid-row
        (
            lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("insula")),
            "regions missing: insula",
        ),
        (
            lambda t: t.replace(
                "bankssts                                 1210",
                "bankssts                                 nan",
                1,
            ),
            "NaN",
        ),
        (lambda t: t.replace("2.805", "abc", 1), "non-numeric"),
        (
            lambda t: re.sub(r"^(\w+)", lambda m: "G_and_S_" + m.group(1), t, flags=re.M),
            "not the Desikan",
        ),
        (
            lambda t: t.replace("# ColHeaders", "# Something").replace(
                "# Table of FreeSurfer", "# Table of"
            ),
            "not a FreeSurfer",
        ),
    ],
    ids=["empty", "truncated", "missing-region", "nan", "non-numeric", "non-dk", "not-stats"],
)
def test_bad_stats_files_name_the_file_and_problem(tmp_path, transform, message):
    subject, path = _corrupt(tmp_path, transform)
    with pytest.raises(InputDataError) as err:
        read_subject_stats(subject)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_binary_garbage_is_reported(tmp_path):
    path = tmp_path / "lh.aparc.stats"
    path.write_bytes(b"\x89PNG\x00\xff\xfe" * 50)
    with pytest.raises(InputDataError, match="not a text file"):
        read_aparc_stats(path)


def test_aseg_without_etiv(tmp_path):
    path = tmp_path / "aseg.stats"
    text = (FS_SUBJECTS / "bert" / "stats" / "aseg.stats").read_text()
    path.write_text("\n".join(line for line in text.splitlines() if "IntraCranialVol" not in line))
    with pytest.raises(InputDataError, match="EstimatedTotalIntraCranialVol"):
        read_aseg_etiv(path)


# --- aparcstats2table / asegstats2table tables (real ABIDE FreeSurfer 6 tables) -------------

TABLES = EXAMPLE / "freesurfer_tables"


def test_tables_match_the_published_values():
    tables = read_stats_tables(TABLES)
    assert sorted(tables.features) == ["area", "thickness", "volume"]
    assert len(tables.subjects) == 246
    raw = pd.read_csv(TABLES / "rh.aparc_table_thickness.tsv", sep="\t", index_col=0)
    sid = raw.index[17]
    np.testing.assert_array_equal(
        tables.features["thickness"].loc[sid, [f"rh_{s}" for s in DK_STRUCTURES]].to_numpy(),
        raw.loc[sid, [f"rh_{s}_thickness" for s in DK_STRUCTURES]].to_numpy(),
    )
    aseg = pd.read_csv(TABLES / "aseg_table.tsv", sep="\t", index_col=0)
    assert tables.etiv[sid] == aseg.loc[sid, "IntraCranialVol"]  # FreeSurfer 6 name


def test_tables_are_recognised_by_header_not_name_and_any_delimiter(tmp_path):
    for i, path in enumerate(sorted(TABLES.iterdir())):
        table = pd.read_csv(path, sep="\t", dtype=str)
        if path.name.startswith("aseg"):
            table = table.rename(columns={"IntraCranialVol": "EstimatedTotalIntraCranialVol"})
        table.to_csv(tmp_path / f"export_{i}.csv", sep=",", index=False)
    (tmp_path / "notes.txt").write_text("nothing to see here\n")
    tables = read_stats_tables(tmp_path)
    reference = read_stats_tables(TABLES)
    for feat in reference.features:
        pd.testing.assert_frame_equal(tables.features[feat], reference.features[feat])
    pd.testing.assert_series_equal(tables.etiv, reference.etiv)


def test_table_with_missing_hemisphere(tmp_path):
    shutil.copy(TABLES / "lh.aparc_table_area.tsv", tmp_path)
    with pytest.raises(InputDataError, match="the rh table of area is missing"):
        read_stats_tables(tmp_path)


def test_table_with_non_numeric_value(tmp_path):
    for p in TABLES.glob("?h.aparc_table_area.tsv"):
        shutil.copy(p, tmp_path)
    path = tmp_path / "lh.aparc_table_area.tsv"
    lines = path.read_text().splitlines()
    cells = lines[3].split("\t")
    cells[5] = "oops"
    lines[3] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputDataError, match=rf"{path.name}.*'oops'.*{cells[0]}"):
        read_stats_tables(tmp_path)


def test_directory_without_tables(tmp_path):
    (tmp_path / "x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(InputDataError, match="no aparcstats2table tables"):
        read_stats_tables(tmp_path)
