"""Reference maps: region,value TSVs and ENIGMA summary statistics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bids_ms.atlas import DK_REGIONS
from bids_ms.errors import InputDataError
from bids_ms.io.refmaps import normalise_region_name, read_region_map

DATA = Path(__file__).resolve().parents[1] / "data" / "group"


def test_enigma_as_published():
    path = DATA / "mddadult_case-controls_CortThick.csv"
    s = read_region_map(path)
    raw = pd.read_csv(path)
    assert list(s.index) == list(DK_REGIONS)
    assert s["lh_bankssts"] == raw.set_index("Structure").loc["L_bankssts", "d_icv"]
    assert s["rh_insula"] == raw.set_index("Structure").loc["R_insula", "d_icv"]
    assert s.name == "mddadult_case-controls_CortThick"


def test_enigma_missing_values_dropped():
    s = read_region_map(DATA / "asd_mega-analysis_case-controls_CortThick.csv")
    assert len(s) == 66
    assert list(s.index) == [r for r in DK_REGIONS if r in s.index]


def test_region_value_tsv(tmp_path):
    p = tmp_path / "map.tsv"
    p.write_text("region\tvalue\nR_insula\t2.5\nlh_bankssts\t1\nctx-lh-cuneus\tn/a\n")
    s = read_region_map(p)
    assert list(s.index) == ["lh_bankssts", "rh_insula"]
    assert s["rh_insula"] == 2.5


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("region\tvalue\nlh_bankssts\t1\nlh_foo\t2\nL_bar\t3\n", "L_bar, lh_foo"),
        ("name\tscore\nlh_bankssts\t1\n", "needs columns 'region' and 'value'.*name, score"),
        ("region\tvalue\nlh_bankssts\t1\nL_bankssts\t2\n", "more than once: lh_bankssts"),
        ("region\tvalue\nlh_bankssts\tbig\n", "non-numeric"),
    ],
)
def test_bad_maps(tmp_path, text, match):
    p = tmp_path / "bad.tsv"
    p.write_text(text)
    with pytest.raises(InputDataError, match=match) as err:
        read_region_map(p)
    assert str(p) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="not found"):
        read_region_map(tmp_path / "nope.tsv")


def test_normalise():
    assert normalise_region_name("L_bankssts") == "lh_bankssts"
    assert normalise_region_name("rh.insula") == "rh_insula"
    assert normalise_region_name("Left-Thalamus") is None


# Every spelling that refmaps.normalise_region_name and expression.canonical_region
# accepted before they became one parser in bids_ms.atlas.
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lh_bankssts", "lh_bankssts"),
        ("L_bankssts", "lh_bankssts"),
        ("l_bankssts", "lh_bankssts"),
        ("left_bankssts", "lh_bankssts"),
        ("Left-bankssts", "lh_bankssts"),
        ("lh.bankssts", "lh_bankssts"),
        ("ctx-lh-bankssts", "lh_bankssts"),
        ("ctx_lh_bankssts", "lh_bankssts"),
        ("  LH_BanksSTS ", "lh_bankssts"),
        ("R_insula", "rh_insula"),
        ("right.insula", "rh_insula"),
        ("ctx-rh-insula", "rh_insula"),
        ("rh.insula", "rh_insula"),
        ("Left-Thalamus", None),
        ("lh_notaregion", None),
        ("bankssts", None),
        ("xh_bankssts", None),
        ("lh bankssts", None),
        ("ctx-lh-unknown", None),
    ],
)
def test_one_region_name_parser(raw, expected):
    from bids_ms.atlas import canonical_region
    from bids_ms.io import expression

    assert canonical_region(raw) == expected
    assert normalise_region_name is canonical_region
    assert expression.canonical_region is canonical_region


def test_unparseable_file_gives_one_line(tmp_path):
    p = tmp_path / "notes.tsv"
    p.write_text("region\tvalue\nlh_bankssts\t1\nlh_cuneus\t1\t2\t3\n")
    with pytest.raises(InputDataError, match="cannot be read as a table") as err:
        read_region_map(p)
    assert "\n" not in str(err.value)
