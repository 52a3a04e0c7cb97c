"""AHBA expression sources (Martins et al. 2022, §2.9): bundled matrix, user table, abagen."""

from __future__ import annotations

import gzip
import json
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_ms.atlas import DK_LEFT_REGIONS, DK_REGIONS
from bids_ms.errors import InputDataError, UsageError
from bids_ms.io.expression import (
    AHBA_DONOR_FILES,
    ahba_expression,
    canonical_region,
    check_ahba_dir,
    load_default_expression,
    read_expression_file,
    repair_gene_symbols,
    select_regions,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "expression"
#: Extract of the paper's matrix as distributed (``label``, ``Region``, dates in the header): every
#: date-damaged header and every 50th gene column, text unchanged (``tests/data/expression``).
AHBA_EXTRACT = DATA / "ahba_dk_extract.csv.gz"
#: Extract of the ENIGMA toolbox's abagen matrix (stable genes, r >= 0.6): every 5th gene column.
ENIGMA_EXTRACT = DATA / "enigma_allgenes_stable_r0.6_extract.csv.gz"
ENIGMA_EXTRACT_GENES = 329  # ceil(1645 / 5)

#: The date-damaged headers of the paper's file in file order (pandas suffixes the repeated ones)
#: and the gene symbols they stand for: MARC1/MARC2 sort before MARCH1/MARCH2, so the first of
#: two identical damaged names is MARC<n>; SEPT7P2 (undamaged) sits between Sep-07 and Sep-08.
DATE_HEADERS = {
    "Mar-01": "MARC1",
    "Mar-02": "MARC2",
    "Mar-01.1": "MARCH1",
    "Mar-11": "MARCH11",
    "Mar-02.1": "MARCH2",
    **{f"Mar-0{n}": f"MARCH{n}" for n in range(3, 10)},
    **{f"Sep-{n}": f"SEPT{n}" for n in (10, 11, 12, 14)},
    **{f"Sep-0{n}": f"SEPT{n}" for n in (2, 3, 4, 6, 7, 8, 9)},
}


@pytest.fixture(scope="module")
def default_expression():
    return load_default_expression()


def test_bundled_matrix(default_expression):
    df = default_expression
    assert df.shape == (68, 15633)
    assert list(df.index) == list(DK_REGIONS)
    assert not df.isna().any().any() and df.to_numpy().min() >= 0 and df.to_numpy().max() <= 1
    cols = list(df.columns)
    assert cols == sorted(cols)  # the repaired header is in alphabetical order
    assert len(set(cols)) == len(cols)
    for gene in ("MARC1", "MARC2", "MARCH1", "MARCH2", "MARCH11", "SEPT7", "SEPT14", "SEPT7P2"):
        assert gene in df.columns
    assert not any(c.startswith(("Mar-", "Sep-")) for c in cols)


def test_ahba_extract_holds_the_damaged_headers():
    header = pd.read_csv(AHBA_EXTRACT, encoding="utf-8-sig", nrows=0).columns
    assert list(header[:2]) == ["label", "Region"]
    damaged = [c for c in header if c.startswith(("Mar-", "Sep-"))]
    assert damaged == list(DATE_HEADERS)
    assert len(header) - 2 > 300  # and a sample of undamaged genes


def test_bundled_matrix_values_unchanged(default_expression):
    """The bundled values equal the paper's file on the extract's genes (all 68 cortical rows)."""
    src = pd.read_csv(AHBA_EXTRACT, encoding="utf-8-sig")
    src = src[src.Region.str.match(r"^[LR]_")].copy()
    src.index = [canonical_region(r) for r in src.Region]
    src = src.drop(columns=["label", "Region"]).loc[list(DK_REGIONS)]
    genes = [DATE_HEADERS.get(c, c) for c in src.columns]
    assert len(genes) > 300 and set(genes) <= set(default_expression.columns)
    np.testing.assert_array_equal(src.to_numpy(dtype=float), default_expression[genes].to_numpy())


def test_repair_rules():
    names = ["A1BG", "Mar-01", "Mar-02", "Mar-01.1", "Mar-11", "Mar-02.1", "Sep-07", "2-Sep"]
    fixed, repairs = repair_gene_symbols(names)
    assert fixed == ["A1BG", "MARC1", "MARC2", "MARCH1", "MARCH11", "MARCH2", "SEPT7", "SEPT2"]
    assert repairs["1:Mar-01"] == "MARC1"
    # single ambiguous occurrence -> MARCH; not a known family member -> unchanged
    assert repair_gene_symbols(["1-Mar", "Sep-74", "1-Apr", "DEC-01"])[0] == [
        "MARCH1",
        "Sep-74",
        "1-Apr",
        "DEC1",
    ]


def test_canonical_region():
    assert canonical_region("L_bankssts") == "lh_bankssts"
    assert canonical_region("ctx-rh-insula") == "rh_insula"
    assert canonical_region("lh.superiorfrontal") == "lh_superiorfrontal"
    assert canonical_region("Left-Thalamus") is None
    assert canonical_region("lh_notaregion") is None


def test_read_expression_file(tmp_path, default_expression):
    sub = default_expression.iloc[:34, :50].copy()
    sub.index = [r.replace("lh_", "L_") for r in sub.index]
    sub = sub.rename(columns={sub.columns[0]: "1-Mar"})
    sub.loc["L_thalamus"] = 0.5  # a subcortical row is dropped
    f = tmp_path / "expr.csv"
    sub.to_csv(f)
    df = read_expression_file(f)
    assert list(df.index) == list(DK_LEFT_REGIONS)
    assert df.columns[0] == "MARCH1"
    # transposed (genes in rows) is recognised
    g = tmp_path / "expr_t.tsv"
    sub.T.to_csv(g, sep="\t")
    assert read_expression_file(g).shape == (34, 50)


def test_expression_file_errors(tmp_path, default_expression):
    sub = default_expression.iloc[:34, :5].copy()
    bad = sub.astype(object)
    bad.iloc[3, 2] = "high"
    f = tmp_path / "bad.csv"
    bad.to_csv(f)
    with pytest.raises(InputDataError, match="non-numeric.*high"):
        read_expression_file(f)
    f2 = tmp_path / "missing.csv"
    sub.iloc[:30].to_csv(f2)
    with pytest.raises(InputDataError, match="missing for 4 of the 34"):
        select_regions(read_expression_file(f2), source=str(f2))
    f3 = tmp_path / "noregions.csv"
    pd.DataFrame({"a": [1, 2]}, index=["x", "y"]).to_csv(f3)
    with pytest.raises(InputDataError, match="no Desikan"):
        read_expression_file(f3)
    with pytest.raises(UsageError, match="no such file"):
        read_expression_file(tmp_path / "nope.csv")


def test_select_regions_drops_constant_and_nan_genes(default_expression):
    sub = default_expression.iloc[:, :10].copy()
    sub.iloc[:, 0] = 0.5
    sub.iloc[3, 1] = np.nan
    out = select_regions(sub, source="test")
    assert out.shape == (34, 8)


# --------------------------------------------------------------------------- abagen


def build_ahba_donors(root: Path, donors=("9861", "10021"), n_good=30, n_samples=40, seed=0):
    """Write AHBA-format donor folders that abagen can process.

    Probes: every probe of abagen's reannotation table (abagen looks all of them up), of which
    ``n_good`` (one per gene) are above background in 90 % of samples and carry an
    anterior–posterior gradient; the others are below background everywhere. Samples: real AHBA
    well ids whose alleninf-corrected MNI coordinates fall in left cortical DK regions of
    abagen's atlas, one ontology structure per DK region.
    """
    rng = np.random.default_rng(seed)
    data = files("abagen") / "data"
    coords = pd.read_csv(str(data / "corrected_mni_coordinates.csv.gz"))
    atlas = nib.load(str(data / "atlas-desikankilliany.nii.gz"))
    info = pd.read_csv(str(data / "atlas-desikankilliany.csv"))
    lab = np.asarray(atlas.dataobj)
    xyz = coords[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy()
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(atlas.affine), xyz)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < lab.shape), axis=1)
    region = np.zeros(len(coords), dtype=int)
    region[inside] = lab[tuple(ijk[inside].T)]
    left_ctx = sorted(info.query("hemisphere == 'L' and structure == 'cortex'").id)
    coords["region"] = region
    cand = coords[coords.region.isin(left_ctx) & (coords.corrected_mni_x < 0)]
    with gzip.open(str(data / "reannotated.csv.gz"), "rt") as fh:
        probes = pd.read_csv(fh)
    good = (
        probes[probes["compare"] == 1]
        .drop_duplicates("gene_symbol")
        .sample(n_good, random_state=seed)
        .index
    )
    n_all = len(probes)
    probe_ids = np.arange(1000, 1000 + n_all)
    weights = rng.normal(size=n_good)
    for d_i, donor in enumerate(donors):
        ddir = root / "microarray" / f"normalized_microarray_donor{donor}"
        ddir.mkdir(parents=True)
        wells = cand.groupby("region").head(3).sample(n_samples, random_state=seed + d_i)
        pd.DataFrame(
            {
                "probe_id": probe_ids,
                "probe_name": probes.probe_name,
                "gene_id": np.arange(n_all) + 1,
                "gene_symbol": probes.gene_symbol,
                "gene_name": probes.gene_symbol,
                "entrez_id": probes.entrez_id,
                "chromosome": "1",
            }
        ).to_csv(ddir / "Probes.csv", index=False)
        ids = [4005, 4006, 4007, 4008] + [5000 + r for r in left_ctx]
        pd.DataFrame(
            {
                "id": ids,
                "acronym": ["Br", "GM", "Tel", "Cx"] + [f"LCx{r}" for r in left_ctx],
                "name": ["brain", "gray matter", "telencephalon", "cerebral cortex"]
                + [f"left cortical structure {r}" for r in left_ctx],
                "parent_structure_id": [np.nan, 4005, 4006, 4007] + [4008] * len(left_ctx),
                "hemisphere": [np.nan] * 4 + ["L"] * len(left_ctx),
                "graph_order": np.arange(len(ids)) + 1,
                "structure_id_path": ["/4005/", "/4005/4006/", "/4005/4006/4007/"]
                + ["/4005/4006/4007/4008/"]
                + [f"/4005/4006/4007/4008/{5000 + r}/" for r in left_ctx],
                "color_hex_triplet": ["FFFFFF"] * len(ids),
            }
        ).to_csv(ddir / "Ontology.csv", index=False)
        sid = 5000 + wells.region.to_numpy()
        pd.DataFrame(
            {
                "structure_id": sid,
                "slab_num": 1,
                "well_id": wells.well_id.to_numpy(),
                "slab_type": "CX",
                "structure_acronym": [f"LCx{s - 5000}" for s in sid],
                "structure_name": [f"left cortical structure {s - 5000}" for s in sid],
                "polygon_id": np.arange(len(wells)),
                "mri_voxel_x": 0,
                "mri_voxel_y": 0,
                "mri_voxel_z": 0,
                "mni_x": wells.corrected_mni_x.to_numpy(),
                "mni_y": wells.corrected_mni_y.to_numpy(),
                "mni_z": wells.corrected_mni_z.to_numpy(),
            }
        ).to_csv(ddir / "SampleAnnot.csv", index=False)
        grad = wells.corrected_mni_y.to_numpy()[None, :] / 50
        expr = np.full((n_all, len(wells)), 5.0)
        expr[good] = 6 + rng.normal(scale=0.5, size=(n_good, len(wells))) + np.outer(weights, grad)
        np.savetxt(
            ddir / "MicroarrayExpression.csv",
            np.column_stack([probe_ids, expr]),
            fmt=["%d"] + ["%.3f"] * len(wells),
            delimiter=",",
        )
        pac = np.zeros((n_all, len(wells)), dtype=int)
        pac[good] = rng.random((n_good, len(wells))) < 0.9
        np.savetxt(ddir / "PACall.csv", np.column_stack([probe_ids, pac]), fmt="%d", delimiter=",")
    return set(probes.loc[good, "gene_symbol"])


@pytest.fixture(scope="module")
def ahba_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ahba")
    genes = build_ahba_donors(root)
    return root, genes


def test_abagen_runs_on_built_donor_files(ahba_dir, tmp_path):
    root, genes = ahba_dir
    out = ahba_expression(root, cache_dir=tmp_path)
    left = out.loc[list(DK_LEFT_REGIONS)]
    assert not left.isna().any().any()  # every left region got samples (or its nearest)
    assert set(out.columns) <= genes and len(out.columns) >= 20
    assert float(left.min().min()) >= 0 and float(left.max().max()) <= 1  # SRS-scaled
    assert (tmp_path / "desc-abagen_expression.csv.gz").is_file()
    report = (tmp_path / "desc-abagen_methods.txt").read_text()
    assert "abagen" in report and "2 post-mortem brains" in report
    meta = json.loads((tmp_path / "desc-abagen_expression.json").read_text())
    assert meta["AbagenSettings"]["ibf_threshold"] == 0.5
    assert meta["AbagenSettings"]["probe_selection"] == "diff_stability"
    assert meta["Donors"] == ["9861", "10021"]
    # the second call reads the cache
    again = ahba_expression(root, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(out, again, check_exact=False, rtol=1e-8)


def test_ahba_dir_incomplete_names_missing_files(tmp_path):
    d = tmp_path / "microarray" / "normalized_microarray_donor9861"
    d.mkdir(parents=True)
    (d / "Probes.csv").write_text("x")
    with pytest.raises(UsageError) as err:
        check_ahba_dir(tmp_path)
    msg = str(err.value)
    for f in AHBA_DONOR_FILES:
        if f != "Probes.csv":
            assert f in msg
    with pytest.raises(UsageError, match="no 'microarray' folder"):
        check_ahba_dir(tmp_path / "microarray" / "normalized_microarray_donor9861")
    with pytest.raises(UsageError, match="no such directory"):
        check_ahba_dir(tmp_path / "absent")


def test_transcriptomics_with_ahba_dir(ahba_dir, tmp_path):
    from bids_ms.levels.transcriptomics import TranscriptomicsSettings, run_transcriptomics
    from bids_ms.spins import SpinSet

    root, genes = ahba_dir
    y = pd.Series(np.linspace(-1, 1, 34), index=list(DK_LEFT_REGIONS))
    settings = TranscriptomicsSettings(ahba_dir=root, n_perm=10, n_boot=20, gene_sets=["none"])
    spins = SpinSet(n_spins=0, seed=2)
    run_transcriptomics(y, settings=settings, group_dir=tmp_path, seed=2, spins=spins)
    table = pd.read_csv(tmp_path / "desc-pls1_genes.tsv", sep="\t")
    assert set(table.gene) <= genes
    meta = json.loads((tmp_path / "desc-pls1_genes.json").read_text())
    assert meta["Expression"]["Source"].startswith("abagen")
    assert meta["SoftwareVersions"]["abagen"]
    assert (tmp_path / "desc-abagen_methods.txt").is_file()
    assert "abagen" in (tmp_path / "desc-transcriptomics_methods.md").read_text()


def test_bundled_matrix_agrees_with_enigma_toolbox(default_expression):
    """Cross-check: the ENIGMA toolbox's own abagen matrix (stable genes) read as a user file."""
    enigma = read_expression_file(ENIGMA_EXTRACT).loc[list(DK_LEFT_REGIONS)]
    ours = default_expression.loc[list(DK_LEFT_REGIONS)]
    shared = enigma.columns.intersection(ours.columns)
    assert len(shared) == enigma.shape[1] == ENIGMA_EXTRACT_GENES
    r = [np.corrcoef(enigma[g], ours[g])[0, 1] for g in shared]
    assert np.median(r) > 0.9 and np.percentile(r, 5) > 0.8


def test_original_file_reads_as_user_file(default_expression):
    """The paper's file as distributed (label, Region columns; dates in the header) reads back."""
    df = read_expression_file(AHBA_EXTRACT)
    assert set(DATE_HEADERS.values()) <= set(df.columns)
    assert not any(c.startswith(("Mar-", "Sep-")) for c in df.columns)
    pd.testing.assert_frame_equal(df, default_expression[list(df.columns)], check_exact=True)
