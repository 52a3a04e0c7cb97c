"""The one participants.tsv reader (io.bids) and the one ``sub-`` stripper, for both of their
callers: the participant level (who the participants are) and the group level (their values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_ms.errors import InputDataError, UsageError
from bids_ms.io.bids import MISSING_MARKERS, read_participants_tsv, strip_label
from bids_ms.levels.cohort import _read_participants


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "participants.tsv").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("label", "prefix", "expected"),
    [
        ("sub-01", "sub-", "01"),
        ("01", "sub-", "01"),
        ("  sub-NYU0050952 ", "sub-", "NYU0050952"),
        ("ses-1", "ses-", "1"),
        ("sub-sub-01", "sub-", "sub-01"),  # one prefix only
        ("subject01", "sub-", "subject01"),
        (7, "sub-", "7"),
    ],
)
def test_strip_label(label, prefix, expected):
    assert strip_label(label, prefix) == expected


def test_reader_missing_file_is_none(tmp_path):
    assert read_participants_tsv(tmp_path) is None


def test_reader_values_and_missing_markers(tmp_path):
    markers = [m for m in MISSING_MARKERS if m]
    rows = ["participant_id\t group \tage\tsite"]
    rows.append("sub-01\tASD\t10.5\t NYU ")
    for k, marker in enumerate(markers):
        rows.append(f"sub-{k + 2:02d}\t{marker}\t\tUSM")
    rows.append("NA\tcontrol\t11\tUSM")  # a participant called NA is a participant
    table = read_participants_tsv(_write(tmp_path, "\n".join(rows) + "\n"))
    assert list(table.columns) == ["participant_id", "group", "age", "site"]
    ids = [f"{k + 2:02d}" for k in range(len(markers))]
    assert list(table["participant_id"]) == ["01", *ids, "NA"]
    # every marker is missing outside participant_id; an empty cell too
    assert table["group"].isna().tolist() == [False] + [True] * len(markers) + [False]
    assert table["age"].isna().sum() == len(markers)
    # values are text, kept as written (the group level strips them and warns)
    assert table.loc[0, "age"] == "10.5" and table.loc[0, "site"] == " NYU "


def test_reader_errors_name_the_file(tmp_path):
    folder = _write(tmp_path / "a", "subject\tgroup\n01\tASD\n")
    with pytest.raises(InputDataError, match=r"participants\.tsv: no column 'participant_id'"):
        read_participants_tsv(folder)
    folder = _write(tmp_path / "b", "")
    with pytest.raises(InputDataError, match=r"participants\.tsv: cannot be read as a TSV"):
        read_participants_tsv(folder)
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "participants.tsv").write_bytes(b"participant_id\tgroup\n\xff\xfe01\tA\n")
    with pytest.raises(InputDataError, match="cannot be read as a TSV"):
        read_participants_tsv(folder)


def test_group_reading_strips_and_checks(tmp_path):
    folder = _write(
        tmp_path,
        "participant_id\tgroup\tsite\nsub-01\tASD\t NYU\nsub-02\t n/a \tNYU\nsub-03\tcontrol\t\n",
    )
    table, path = _read_participants(folder)
    assert path == folder / "participants.tsv"
    assert list(table["participant_id"]) == ["01", "02", "03"]
    assert table["site"].tolist()[:2] == ["NYU", "NYU"] and pd.isna(table.at[2, "site"])
    assert pd.isna(table.at[1, "group"])  # ' n/a ' is missing once stripped
    assert table.attrs["stripped"] == {"group": " n/a ", "site": " NYU"}
    assert not isinstance(table.at[1, "group"], str) and np.isnan(table.at[1, "group"])


def test_group_reading_refuses_duplicates_and_no_file(tmp_path):
    folder = _write(tmp_path / "d", "participant_id\tgroup\nsub-01\tA\n01\tB\n")
    with pytest.raises(InputDataError, match="participants listed twice: 01"):
        _read_participants(folder)
    with pytest.raises(InputDataError, match=r"participants\.tsv: not found"):
        _read_participants(tmp_path / "nothing")
    with pytest.raises(UsageError, match="needs bids_dir"):
        _read_participants(None)


def test_participant_level_reads_its_participants(tmp_path):
    """collect_inputs' use: participant_id only, stripped of sub- and spaces."""
    folder = _write(tmp_path, "participant_id\tage\n sub-01 \tn/a\nsub-02\t\n03\t9\n")
    table = read_participants_tsv(folder)
    assert set(table["participant_id"]) == {"01", "02", "03"}
    assert table["age"].isna().tolist() == [True, True, False]
