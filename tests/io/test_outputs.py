"""The output contract (bids_ms.io.outputs) against a real run of the bundled example."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bids_ms.atlas import DK_REGIONS
from bids_ms.economo import ECONOMO_CLASS_NAMES
from bids_ms.io import outputs
from bids_ms.io.outputs import (
    GROUP_OUTPUTS,
    PARTICIPANT_OUTPUTS,
    column_problems,
    columns,
    group_file,
    output,
    participant_file,
)

from ..conftest import EXAMPLE, run_cli

BIDS = EXAMPLE / "bids"
TABLES = EXAMPLE / "freesurfer_tables"
FEATURES = ["volume", "area", "thickness"]
COVARIATES = ["age", "sex", "eTIV", "site"]
PARTS = {
    "features": FEATURES,
    "covariates": COVARIATES,
    "economo_classes": list(ECONOMO_CLASS_NAMES.values()),
}
FAST = ["--n-spins", "50", "--n-perm", "50", "--n-boot", "50", "--seed", "7"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Participant and group levels of 20 + 20 participants of the example, few spins."""
    out = tmp_path_factory.mktemp("contract") / "out"
    table = pd.read_csv(BIDS / "participants.tsv", sep="\t")
    labels = [
        lab for _, rows in table.groupby("group") for lab in rows.participant_id.head(20).tolist()
    ]
    res = run_cli(
        BIDS,
        out,
        "participant",
        "--fs-stats-tables",
        TABLES,
        "--features",
        ",".join(FEATURES),
        "--skip-bids-validation",
        "--participant-reports",
        "none",
        "--participant-label",
        *labels,
    )
    assert res.returncode == 0, res.stderr
    res = run_cli(BIDS, out, "group", "--skip-bids-validation", "--site-column", "site", *FAST)
    assert res.returncode == 0, res.stderr
    return out, [lab.removeprefix("sub-") for lab in labels]


def _header(path: Path) -> list[str]:
    return list(pd.read_csv(path, sep="\t", nrows=0).columns)


def test_participant_files_keep_the_contract(run):
    out, labels = run
    for label in (labels[0], labels[-1]):
        for key, spec in PARTICIPANT_OUTPUTS.items():
            path = out / participant_file(key, label)
            assert path.is_file(), path
            assert column_problems(key, _header(path), **PARTS) == []
            side = json.loads(path.with_suffix(".json").read_text())
            assert set(spec.sidecar) <= set(side), (path, set(spec.sidecar) - set(side))
    regional = pd.read_csv(out / participant_file("regional", labels[0]), sep="\t")
    assert list(regional.region) == list(DK_REGIONS)


def test_every_group_file_is_in_the_contract_and_keeps_it(run):
    out, _ = run
    group = out / outputs.GROUP_DIR
    # the covariates the models kept (a covariate with one value in the subset is left out)
    kept = json.loads((group / "desc-casecontrol_global.json").read_text())["Covariates"]
    assert set(kept) < set(COVARIATES)
    parts = {**PARTS, "covariates": kept + [c for c in ["site"] if c not in kept]}
    checked = 0
    for path in sorted(group.iterdir()):
        if path.suffix not in (".tsv", ".json", ".txt", ".md"):
            continue
        if path.suffix == ".json" and path.with_suffix(".tsv").is_file():
            continue  # a table's sidecar, checked with the table
        spec = output(path.name)  # KeyError: a file the contract does not name
        if path.suffix == ".tsv":
            assert column_problems(path.name, _header(path), **parts) == []
            side = json.loads(path.with_suffix(".json").read_text())
        elif path.suffix == ".json":
            side = json.loads(path.read_text())
        else:
            side = {}
        assert set(spec.sidecar) <= set(side), (path.name, set(spec.sidecar) - set(side))
        checked += 1
    assert checked >= 25


def test_the_example_writes_every_unconditional_group_file(run):
    out, _ = run
    for name, spec in GROUP_OUTPUTS.items():
        if "{" in name:
            continue
        if spec.when in ("always", outputs._TX):
            assert (out / group_file(name)).is_file(), name
    for library in ("celltypes", "pain"):
        assert (out / group_file("desc-enrichment_{library}.tsv", library=library)).is_file()


def test_columns_expand_placeholders():
    assert columns("morph", features=FEATURES) == ["region", "hemisphere", *FEATURES]
    assert columns("relmat") == ["region", *DK_REGIONS]
    assert columns("desc-lofo_tmaps.tsv", features=["area", "thickness"]) == [
        "region",
        "hemisphere",
        "all",
        "without_area",
        "without_thickness",
    ]
    assert columns("desc-economo_ms.tsv", economo_classes=["primary motor", "limbic"]) == [
        "participant_id",
        "group",
        "primary_motor",
        "limbic",
    ]
    assert columns("desc-hubs_participants.tsv", group_column="dx") == [
        "participant_id",
        "dx",
        "differentiation",
    ]
    # a concrete file of a pattern
    assert columns("desc-enrichment_pain.tsv")[:2] == ["gene_set", "direction"]
    assert columns("desc-enrichment_pain.tsv", drop_optional=["category_score"])[-1] == "note"
    with pytest.raises(ValueError, match="not optional"):
        columns("desc-casecontrol_regional.tsv", drop_optional=["t"])


def test_column_problems_can_fail():
    good = columns("desc-casecontrol_regional.tsv")
    assert column_problems("desc-casecontrol_regional.tsv", good) == []
    assert "missing" in column_problems("desc-casecontrol_regional.tsv", good[:-1])[0]
    assert (
        "not in the contract"
        in column_problems("desc-casecontrol_regional.tsv", [*good, "extra"])[0]
    )
    swapped = [good[1], good[0], *good[2:]]
    assert "order" in column_problems("desc-casecontrol_regional.tsv", swapped)[0]
    # optional columns may be absent, others not
    spatial = columns("desc-enrichment_x.tsv")
    without = [c for c in spatial if c not in ("p_spatial", "p_spatial_fdr", "category_score")]
    assert column_problems("desc-enrichment_x.tsv", without) == []
    assert column_problems("desc-enrichment_x.tsv", [c for c in spatial if c != "p"]) != []


def test_names():
    assert str(participant_file("regional", "01")) == (
        "sub-01/anat/sub-01_atlas-DK_desc-MS_regional.tsv"
    )
    assert str(participant_file("morph", "sub-01", "ses-A")) == (
        "sub-01/ses-A/anat/sub-01_ses-A_atlas-DK_morph.tsv"
    )
    assert str(participant_file("relmat", "01", "A")) == (
        "sub-01/ses-A/anat/sub-01_ses-A_atlas-DK_meas-MorphometricSimilarity_relmat.tsv"
    )
    assert str(group_file("desc-casecontrol_regional.tsv")) == "group/desc-casecontrol_regional.tsv"
    assert str(group_file("desc-enrichment_{library}.tsv", library="pain")) == (
        "group/desc-enrichment_pain.tsv"
    )
    assert output("desc-ppi_pls1plus_edges.tsv").name == "desc-ppi_{direction}_edges.tsv"
    with pytest.raises(KeyError, match="not an output"):
        output("desc-nothing.tsv")
    with pytest.raises(KeyError):
        group_file("desc-nothing.tsv")


def test_names_agree_with_the_writers():
    """The participant writer's names and the QC table's columns are the contract's."""
    from bids_ms.io.derivatives import MS_MATRIX_ENTITIES, participant_prefix
    from bids_ms.reports.qc import QC_COLUMNS

    assert PARTICIPANT_OUTPUTS["relmat"].name == f"{{prefix}}_{MS_MATRIX_ENTITIES}.tsv"
    assert participant_prefix("01", "A") == "sub-01_ses-A"
    qc = columns("desc-qc_participants.tsv", features=[])
    assert set(qc) == set(QC_COLUMNS)
