"""The participant level's batched route (biobank scale): same files as one participant at a
time, linear id matching, and a resume that rewrites nothing that is finished."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_ms.atlas import DK_REGIONS, hemisphere_of
from bids_ms.io.bids import FreeSurferIds, match_freesurfer_id
from bids_ms.io.derivatives import _table_text, participant_files
from bids_ms.io.fsstats import read_stats_tables
from bids_ms.levels.participant import (
    ParticipantSettings,
    outputs_complete,
    run_participant_level,
)
from bids_ms.similarity import (
    global_ms,
    ms_matrices_batched,
    ms_matrix,
    ms_undefined_reasons,
    regional_ms,
)

from ..conftest import EXAMPLE

FEATURES = ("volume", "area", "thickness")
TABLES = EXAMPLE / "freesurfer_tables"
BIDS = EXAMPLE / "bids"


def _settings(out: Path, tmp: Path, **kw) -> ParticipantSettings:
    return ParticipantSettings(
        bids_dir=BIDS,
        output_dir=out,
        work_dir=tmp / "work",
        features=FEATURES,
        fs_stats_tables=TABLES,
        **kw,
    )


@pytest.fixture(scope="module")
def batched_out(tmp_path_factory):
    """The bundled example (246 participants) through the batched route, 2 processes."""
    tmp = tmp_path_factory.mktemp("batched")
    out = tmp / "out"
    outcome = run_participant_level(_settings(out, tmp, nprocs=2))
    assert not outcome.failed, outcome.failed
    assert len(outcome.done) == 246
    return out


def _stamps(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of every file: a rewrite (atomic: a new inode) changes both."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file()
    }


def _pandas_tsv(table: pd.DataFrame, *, index: bool = False) -> str:
    """The TSV text as the per-participant writer made it (pandas, %.10g, n/a)."""
    return table.to_csv(sep="\t", index=index, na_rep="n/a", float_format="%.10g")


# ------------------------------------------------------------------ equivalence, all 246


def test_batched_files_equal_the_per_participant_route(batched_out):
    """Every TSV of every participant equals, as text, what the per-participant route
    writes (ms_matrix on one participant's table, pandas' TSV writer), and its numbers
    equal an independent computation (scipy z-scores, pandas Pearson) to 1e-12."""
    tables = read_stats_tables(TABLES)
    regions = list(DK_REGIONS)
    labels = sorted(p.name[4:] for p in batched_out.glob("sub-*") if p.is_dir())
    assert len(labels) == 246
    table_ids = FreeSurferIds(tables.subjects)
    for subject in labels:
        table_id = match_freesurfer_id(table_ids, subject, None, loose=True).name
        anat = batched_out / f"sub-{subject}" / "anat"
        morph = tables.morphometry(table_id, FEATURES)
        values = morph.to_numpy(dtype=float)
        matrix = ms_matrix(values)
        regional = regional_ms(matrix)
        # the per-participant route's text, byte for byte
        morph_df = pd.DataFrame({"region": regions, "hemisphere": map(hemisphere_of, regions)})
        for feat in FEATURES:
            morph_df[feat] = morph[feat].to_numpy()
        blank = matrix.copy()
        np.fill_diagonal(blank, np.nan)
        rel_df = pd.DataFrame(blank, index=pd.Index(regions, name="region"), columns=regions)
        reg_df = pd.DataFrame({"region": regions, "ms": regional})
        stem = f"sub-{subject}_atlas-DK"
        written = {
            "morph": (anat / f"{stem}_morph.tsv").read_text(),
            "relmat": (anat / f"{stem}_meas-MorphometricSimilarity_relmat.tsv").read_text(),
            "regional": (anat / f"{stem}_desc-MS_regional.tsv").read_text(),
        }
        assert written["morph"] == _pandas_tsv(morph_df), subject
        assert written["relmat"] == _pandas_tsv(rel_df, index=True), subject
        assert written["regional"] == _pandas_tsv(reg_df), subject
        # numbers against an independent computation (the files hold 10 significant digits)
        z = stats.zscore(values, axis=0, ddof=1)
        corr = pd.DataFrame(z.T).corr().to_numpy()
        np.testing.assert_allclose(matrix, corr, atol=1e-12)
        got = pd.read_csv(anat / f"{stem}_meas-MorphometricSimilarity_relmat.tsv", sep="\t")
        got_values = got.iloc[:, 1:].to_numpy(dtype=float)
        off = ~np.eye(68, dtype=bool)
        np.testing.assert_allclose(got_values[off], corr[off], rtol=1e-9, atol=1e-10)
        sidecar = json.loads((anat / f"{stem}_desc-MS_regional.json").read_text())
        np.testing.assert_allclose(
            sidecar["GlobalMS"], np.mean((corr.sum(1) - 1) / 67), rtol=0, atol=1e-12
        )
        assert sidecar["GlobalMS"] == float(global_ms(regional))
        etiv = tables.etiv.get(table_id)
        assert sidecar["eTIV"] == (None if etiv is None else float(etiv))
        assert sidecar["Source"] == "tables" and sidecar["Features"] == list(FEATURES)


def test_batched_equals_serial(batched_out, tmp_path):
    """One process or two: the same files."""
    out = tmp_path / "out"
    outcome = run_participant_level(_settings(out, tmp_path, nprocs=1))
    assert len(outcome.done) == 246
    for path in sorted(batched_out.glob("sub-*/anat/*")):
        assert (out / path.relative_to(batched_out)).read_bytes() == path.read_bytes(), path


# ------------------------------------------------------------------ resume


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_rerun_on_a_finished_folder_rewrites_nothing(batched_out, tmp_path):
    out = _copy(batched_out, tmp_path / "out")
    before = _stamps(out)
    start = time.monotonic()
    outcome = run_participant_level(_settings(out, tmp_path, nprocs=2))
    took = time.monotonic() - start
    assert outcome.done == [] and not outcome.failed
    assert len(outcome.skipped) == 246
    assert _stamps(out) == before  # no file rewritten, none added
    assert took < 60, took  # pybids indexing of the example included; seconds in practice


def test_rerun_writes_exactly_the_missing_participants(batched_out, tmp_path):
    out = _copy(batched_out, tmp_path / "out")
    subs = sorted(p.name[4:] for p in out.glob("sub-*") if p.is_dir())
    gone = subs[5:8]
    for label in gone:  # whole folders deleted
        for path in participant_files(out, label):
            path.unlink()
    damaged = subs[20]  # a truncated matrix: processed again
    relmat = participant_files(out, damaged)[2]
    assert relmat.name.endswith("_relmat.tsv")
    relmat.write_text("".join(relmat.read_text().splitlines(keepends=True)[:30]))
    no_marker = subs[30]  # killed before its marker (the regional sidecar, written last)
    participant_files(out, no_marker)[-1].unlink()
    assert not outputs_complete(out, damaged) and not outputs_complete(out, no_marker)
    before = _stamps(out)
    outcome = run_participant_level(_settings(out, tmp_path, nprocs=2))
    redone = sorted([*gone, damaged, no_marker])
    assert sorted(lbl[4:] for lbl in outcome.done) == redone
    assert len(outcome.skipped) == 246 - len(redone) and not outcome.failed
    after = _stamps(out)
    changed = sorted({k.split("/")[0][4:] for k in after if before.get(k) != after[k]})
    assert changed == redone
    for path in sorted(batched_out.glob("sub-*/anat/*")):
        assert (out / path.relative_to(batched_out)).read_bytes() == path.read_bytes(), path


# ------------------------------------------------------------------ pieces


def test_ms_matrices_batched_equals_ms_matrix_bit_for_bit():
    rng = np.random.default_rng(3)
    morph = rng.gamma(3.0, 2.0, size=(37, 68, 5))
    batch = ms_matrices_batched(morph, chunk_size=8)
    for i in range(len(morph)):
        one = ms_matrix(pd.DataFrame(morph[i]).to_numpy())  # a per-participant table's layout
        assert np.array_equal(batch[i], one), i


def test_ms_undefined_reasons_name_each_bad_participant():
    rng = np.random.default_rng(4)
    morph = rng.gamma(3.0, 2.0, size=(5, 68, 3))
    morph[1, 7, 0] = np.nan
    morph[2, :, 1] = 4.0  # a constant feature
    morph[3, 10] = [1.0, 1.0, 1.0]  # one region with equal raw values ...
    morph[3, :, :] = morph[3, :, [0]].T  # ... in fact all features equal: every z equal
    reasons = ms_undefined_reasons(morph)
    assert reasons[0] is None and reasons[4] is None
    assert reasons[1].startswith("NaN")
    assert "constant" in reasons[2]
    assert "identical" in reasons[3]
    for i in (2, 3):
        with pytest.raises(ValueError):
            ms_matrix(morph[i])


def test_table_text_equals_pandas():
    rng = np.random.default_rng(5)
    values = rng.standard_normal((68, 68)) * 10.0 ** rng.integers(-8, 8, size=(68, 68))
    values[3, 3] = np.nan
    values[4, 5] = -0.0
    values[6, 7] = 12345678901234.0
    regions = list(DK_REGIONS)
    table = pd.DataFrame(values, index=pd.Index(regions, name="region"), columns=regions)
    assert _table_text(["region", *regions], [regions], values) == _pandas_tsv(table, index=True)


def test_freesurfer_ids_match_as_the_list_does():
    names = [
        "sub-01",
        "sub-01_ses-A",
        "sub-01_ses-A.long.base01",
        "NYU_0050952",
        "NYU_0050952_ses-B",
        "sub-03_ses-B.long.b",
        "x.long.",
        "Sub-04",
    ]
    ids = FreeSurferIds(names)
    for subject in ("01", "NYU0050952", "03", "04", "05"):
        for session in (None, "A", "B"):
            for longitudinal in (False, True):
                for loose in (False, True):
                    kw = {"longitudinal": longitudinal, "loose": loose}
                    assert repr(match_freesurfer_id(ids, subject, session, **kw)) == repr(
                        match_freesurfer_id(names, subject, session, **kw)
                    ), (subject, session, kw)


def test_matching_a_biobank_of_ids_is_linear():
    n = 40_000
    names = [f"UKB_{k:07d}" for k in range(n)]
    start = time.monotonic()
    ids = FreeSurferIds(names)
    hits = [match_freesurfer_id(ids, f"UKB{k:07d}", None, loose=True) for k in range(n)]
    took = time.monotonic() - start
    assert all(h is not None and h.name == names[k] for k, h in enumerate(hits))
    assert took < 10, took  # a scan of the list per participant takes minutes


def test_morphometry_array_equals_per_subject_tables():
    tables = read_stats_tables(TABLES)
    ids = tables.subjects[:40]
    arr = tables.morphometry_array(ids, FEATURES)
    for k, subject in enumerate(ids):
        assert np.array_equal(arr[k], tables.morphometry(subject, FEATURES).to_numpy())
    assert tables.etiv_of([ids[0], "nobody"]) == [float(tables.etiv[ids[0]]), None]
