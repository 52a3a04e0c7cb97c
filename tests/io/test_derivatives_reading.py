"""The group level's reading at biobank scale: the derivatives reader and the participants index.

The reader is checked against :func:`pandas.read_csv` (an independent parser) on the
bundled example's derivatives, value for value, NaN where the file says ``n/a``; the index
built from the group report's ``desc-qc_participants.tsv`` against the index computed from
every participant's derivatives, byte for byte.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_ms.atlas import DK_REGIONS
from bids_ms.errors import InputDataError
from bids_ms.io import derivatives as deriv
from bids_ms.io.derivatives import (
    ParticipantDerivatives,
    load_participant_derivatives,
    write_participant_derivatives,
    write_tsv,
)
from bids_ms.reports import participant_report as pr
from bids_ms.reports.participant_report import build_participants_index, read_quality_table
from bids_ms.reports.qc import participant_quality


def _reference(path: Path, skip: int) -> pd.DataFrame:
    """A derivative TSV as pandas reads it (BIDS ``n/a`` as NaN)."""
    table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    return table.set_index("region").iloc[:, skip - 1 :]


def _check_against_pandas(out: Path, parts: list[ParticipantDerivatives]) -> None:
    for p in parts:
        anat = deriv.participant_anat_dir(out, p.subject, p.session)
        prefix = deriv.participant_prefix(p.subject, p.session)
        morph = _reference(anat / f"{prefix}_atlas-DK_morph.tsv", 2)
        regional = _reference(anat / f"{prefix}_atlas-DK_desc-MS_regional.tsv", 1)["ms"]
        side = json.loads((anat / f"{prefix}_atlas-DK_desc-MS_regional.json").read_text())
        assert p.sidecar == side
        assert list(p.morphometry.index) == list(DK_REGIONS) == list(morph.index)
        assert p.morphometry.index.name == "region" and p.regional.name == "ms"
        assert list(p.morphometry.columns) == list(morph.columns) == p.features
        # every value equal (pandas' parser is exact for these 10-digit numbers), NaN where NaN
        np.testing.assert_array_equal(p.morphometry.to_numpy(), morph.to_numpy(dtype=float))
        np.testing.assert_array_equal(p.regional.to_numpy(), regional.to_numpy(dtype=float))
        np.testing.assert_array_equal(p.morphometry_values, morph.to_numpy(dtype=float))
        np.testing.assert_array_equal(p.regional_values, regional.to_numpy(dtype=float))


def test_reader_equals_pandas_on_the_example(example_participant_out):
    parts = load_participant_derivatives(example_participant_out)
    expected = sorted(p.name for p in example_participant_out.glob("sub-*") if p.is_dir())
    assert [f"sub-{p.subject}" for p in parts] == expected
    assert len(parts) == 246
    _check_against_pandas(example_participant_out, parts)


def test_reader_nan_sessions_and_order(example_participant_out, tmp_path):
    """``n/a`` cells, sessions and incomplete participants, as the recursive glob found them."""
    out = tmp_path / "out"
    subjects = sorted(p.name for p in example_participant_out.glob("sub-*") if p.is_dir())[:3]
    for sub in subjects:
        shutil.copytree(example_participant_out / sub, out / sub)
    first = load_participant_derivatives(out)[0]
    morph = first.morphometry.to_numpy().copy()
    morph[5, 1] = np.nan
    regional = first.regional.to_numpy().copy()
    regional[0] = np.nan
    common = dict(
        morphometry=pd.DataFrame(morph, index=list(DK_REGIONS), columns=first.features),
        matrix=np.eye(68),
        regional=regional,
        global_ms=0.1,
        etiv=None,
        freesurfer_version=None,
        source="tables",
    )
    for sub, ses in (("X1", "2"), ("X1", "1"), ("A0", None), ("A0", "9")):
        write_participant_derivatives(out, subject=sub, session=ses, **common)
    # an incomplete participant: no regional sidecar (written last)
    write_participant_derivatives(out, subject="Z9", session=None, **common)
    (deriv.participant_anat_dir(out, "Z9") / "sub-Z9_atlas-DK_desc-MS_regional.json").unlink()
    (out / "sub-notes.txt").write_text("not a participant folder")

    parts = load_participant_derivatives(out)
    glob = sorted(out.glob("sub-*/**/anat/*_atlas-DK_desc-MS_regional.json"))
    assert [p.label for p in parts] == [g.name.split("_atlas-DK_")[0] for g in glob]
    assert [p.label for p in parts][:3] == ["sub-A0", "sub-A0_ses-9", subjects[0]]
    assert "sub-Z9" not in [p.label for p in parts]
    _check_against_pandas(out, parts)
    with_nan = next(p for p in parts if p.label == "sub-X1_ses-1")
    assert np.isnan(with_nan.morphometry.iloc[5, 1]) and np.isnan(with_nan.regional.iloc[0])
    assert np.isnan(with_nan.morphometry.to_numpy()).sum() == 1


def test_reader_names_the_unreadable_participant(example_participant_out, tmp_path):

    out = tmp_path / "out"
    sub = sorted(p.name for p in example_participant_out.glob("sub-*") if p.is_dir())[0]
    shutil.copytree(example_participant_out / sub, out / sub)
    morph = next((out / sub / "anat").glob("*_morph.tsv"))
    lines = morph.read_text().splitlines()
    morph.write_text("\n".join([lines[0], lines[1] + "\t1.0", *lines[2:]]) + "\n")
    with pytest.raises(InputDataError, match=f"{sub}.*rerun the participant level"):
        load_participant_derivatives(out)
    morph.write_text("\n".join([lines[0], lines[1].replace("\t", "\tx", 2), *lines[2:]]) + "\n")
    with pytest.raises(InputDataError, match=sub):
        load_participant_derivatives(out)


def test_participant_derivatives_keeps_its_pandas_interface():
    values = np.arange(68 * 2, dtype=float).reshape(68, 2)
    reg = np.linspace(0, 1, 68)
    p = ParticipantDerivatives.from_arrays(
        "A", None, morphometry=values, features=["volume", "area"], regional=reg, sidecar={}
    )
    assert p.morphometry_values is values and p.regional_values is reg
    assert p.morphometry.loc["lh_bankssts", "area"] == 1.0 and p.regional.name == "ms"
    p.regional = p.regional * 2  # assignment, as on the dataclass it replaces
    np.testing.assert_array_equal(p.regional_values, reg * 2)
    np.testing.assert_array_equal(p.morphometry_values, values)
    q = ParticipantDerivatives("B", "1", p.morphometry, p.regional, {"Source": "x"})
    assert q.label == "sub-B_ses-1" and q.features == ["volume", "area"]


def test_index_reuses_the_group_quality_table(example_participant_out, tmp_path, monkeypatch):

    out = tmp_path / "out"
    shutil.copytree(example_participant_out, out)
    computed = build_participants_index(out).read_text(encoding="utf-8")

    qc = participant_quality(load_participant_derivatives(out))
    before = time.time()
    write_tsv(out / "group" / "desc-qc_participants.tsv", qc)
    assert read_quality_table(out, written_since=before + 60) is None  # an older table
    quality = read_quality_table(out, written_since=before - 1)
    assert quality is not None and len(quality) == 246
    assert list(quality.columns) == list(qc.columns)
    np.testing.assert_allclose(quality["z_global_ms"], qc["z_global_ms"], rtol=1e-9)

    def no_reading(*_a, **_k):
        raise AssertionError("the derivatives were read again")

    monkeypatch.setattr(pr, "load_participant_derivatives", no_reading)
    reused = build_participants_index(out, quality=quality).read_text(encoding="utf-8")
    assert reused == computed


def test_quality_table_absent_or_foreign(tmp_path):
    assert read_quality_table(tmp_path) is None
    (tmp_path / "group").mkdir()
    (tmp_path / "group" / "desc-qc_participants.tsv").write_text("a\tb\n1\t2\n")
    assert read_quality_table(tmp_path) is None
