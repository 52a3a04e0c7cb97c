"""The group level end to end on the bundled example, run as the README runs it."""

from __future__ import annotations

import html
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from bids_ms.atlas import DK_LEFT_REGIONS, DK_REGIONS
from bids_ms.errors import EXIT_USAGE

from .conftest import EXAMPLE, EXAMPLE_N, run_cli, tree
from .helpers import ENRICHMENT_COLUMNS, REGIONAL_COLUMNS

BIDS = EXAMPLE / "bids"
TABLES = EXAMPLE / "freesurfer_tables"
FAST = ["--n-spins", "200", "--n-perm", "100", "--n-boot", "100", "--seed", "7"]


@pytest.fixture
def group_out(example_group_out):
    """The README's participant and group levels on the bundled example (246 participants),
    run once per session (conftest; EXAMPLE_GROUP_ARGS: 200 spins, seed 7). Read-only."""
    return example_group_out


def test_group_contract_files(group_out):
    g = group_out / "group"
    reg = pd.read_csv(g / "desc-casecontrol_regional.tsv", sep="\t")
    assert list(reg.columns[:9]) == REGIONAL_COLUMNS
    assert list(reg.region) == list(DK_REGIONS)
    glob = json.loads((g / "desc-casecontrol_global.json").read_text())
    assert {"beta", "t", "p", "cohen_d", "df", "n_case", "n_control"} <= set(glob)
    hubs = json.loads((g / "desc-hubs_stats.json").read_text())
    assert set(hubs["quadrants"]) == {
        "dedifferentiation",
        "hypercoupling",
        "hyperdifferentiation",
        "decoupling",
    }
    assert sum(hubs["quadrants"].values()) == pytest.approx(100)
    assert hubs["n_spins"] == 200
    # issue 9: the label-permutation test (default 5000 permutations, within site) comes first
    assert hubs["n_label_perms"] == 5000 and hubs["LabelPermutation"]["Strata"] == "site"
    assert 1 / 5001 <= hubs["p_perm"] <= 1 and 1 / 5001 <= hubs["p_perm_partial"] <= 1
    assert hubs["null_rho"]["sd"] > 0 and -1 <= hubs["rho_partial"] <= 1
    assert {"beta", "t", "p", "cohen_d", "n_case", "n_control"} <= set(hubs["differentiation"])
    assert hubs["differentiation"]["n_case"] + hubs["differentiation"]["n_control"] == EXAMPLE_N
    for q in hubs["quadrant_stats"].values():
        assert {"percent", "null_mean", "null_q025", "null_q975"} <= set(q)
    parts = pd.read_csv(g / "desc-hubs_participants.tsv", sep="\t")
    assert (
        list(parts.columns) == ["participant_id", "group", "differentiation"]
        and len(parts) == EXAMPLE_N
    )
    assert set(parts.group) == {"ASD", "control"}
    report = html.unescape(
        (g / "report.html").read_text().split('id="hubs"')[1].split("</section>")[0]
    )
    assert "Label-permutation p (the valid test)" in report
    assert (
        "figures/desc-hubs_nulls.svg" in report
        and (g / "figures" / "desc-hubs_nulls.svg").is_file()
    )
    assert len(pd.read_csv(g / "desc-hubs_nulls.tsv", sep="\t")) == 5000
    assert "the paper's test (spatial null)" in report
    assert ("Not significant by label permutation" in report) == (hubs["p_perm"] >= 0.05)
    methods = (group_out / "logs" / "CITATION.md").read_text()
    assert "5,000 permutations of the case/control labels within site" in methods
    assert "Winkler AM" in methods
    for name in (
        "lofo_correlations",
        "economo_casecontrol",
        "reference_correlations",
        "pls_components",
        "pls1_genes",
        "pls1_scores",
        "enrichment_celltypes",
    ):
        assert (g / f"desc-{name}.tsv").is_file(), name
        assert (g / f"desc-{name}.json").is_file(), name
    genes = pd.read_csv(g / "desc-pls1_genes.tsv", sep="\t")
    assert list(genes.columns[:6]) == ["gene", "weight", "z", "p", "p_fdr", "rank"]
    assert genes.z.is_monotonic_decreasing
    plus = (g / "desc-pls1plus_genes.txt").read_text().split()
    assert set(plus) == set(genes.gene[genes.z > 3])
    scores = pd.read_csv(g / "desc-pls1_scores.tsv", sep="\t")
    assert list(scores.columns[:2]) == ["region", "score"] and list(scores.region) == list(
        DK_LEFT_REGIONS
    )
    stats = json.loads((g / "desc-pls1_stats.json").read_text())
    assert {"r", "p_spin", "var_explained"} <= set(stats)
    cells = pd.read_csv(g / "desc-enrichment_celltypes.tsv", sep="\t")
    assert list(cells.columns[:7]) == ENRICHMENT_COLUMNS
    assert set(cells.direction) == {"PLS1+", "PLS1-"}
    assert (g / "report.html").is_file() and (group_out / "logs" / "CITATION.md").is_file()


def test_group_spatial_nulls_by_default(group_out):
    """Issue 9: the spin null is p_perm, the shuffle p beside it; gene lists get their null
    sizes; every enrichment table gets p_spatial; the report says when PLS1 is exploratory."""
    g = group_out / "group"
    comps = pd.read_csv(g / "desc-pls_components.tsv", sep="\t")
    assert {"p_spin", "p_shuffle"} <= set(comps.columns)
    np.testing.assert_array_equal(comps.p_perm, comps.p_spin)
    assert json.loads((g / "desc-pls_components.json").read_text())["PermNull"] == "spin"
    stats = json.loads((g / "desc-pls1_stats.json").read_text())
    assert stats["perm_null"] == "spin" and stats["p_shuffle"] == pytest.approx(comps.p_shuffle[0])
    null = stats["null_list_size"]
    assert set(null) == {"plus_median", "plus_q95", "minus_median", "minus_q95", "n_null_maps"}
    assert null["n_null_maps"] == 100 and null["plus_median"] <= null["plus_q95"]
    if stats["n_pls1_plus"]:
        assert stats["empirical_fdr_plus"] == pytest.approx(
            null["plus_median"] / stats["n_pls1_plus"]
        )
    for path in g.glob("desc-enrichment_*.tsv"):
        table = pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)
        assert list(table.columns[7:9]) == ["p_spatial", "p_spatial_fdr"], path.name
        assert table.loc[table.set_size > 0, "p_spatial"].between(0, 1).all(), path.name
    html = (g / "report.html").read_text()
    section = html.split('id="transcriptomics"')[1].split("</section>")[0]
    assert ("Exploratory." in section) == (stats["p_spin"] >= 0.05)
    enrichment = html.split('id="enrichment"')[1].split("</section>")[0]
    assert "p spatial" in enrichment and "p Fisher (paper)" in enrichment
    citation = (group_out / "logs" / "CITATION.md").read_text()
    assert "ensemble approach of Fulcher" in citation and "the paper's test" in citation


def test_regional_model_matches_statsmodels_on_the_written_derivatives(group_out):
    """One region's t from the files the participant level wrote, refitted with statsmodels."""
    participants = pd.read_csv(BIDS / "participants.tsv", sep="\t")
    rows = []
    for side in sorted(group_out.glob("sub-*/anat/*_desc-MS_regional.json")):
        label = side.name.split("_")[0]
        ms = pd.read_csv(side.with_suffix(".tsv"), sep="\t").set_index("region")["ms"]
        rows.append(
            {
                "participant_id": label,
                "eTIV": json.loads(side.read_text())["eTIV"],
                "y": ms["lh_insula"],
            }
        )
    data = participants.merge(pd.DataFrame(rows), on="participant_id")
    data["case"] = (data.group == "ASD").astype(float)
    fit = smf.ols("y ~ case + age + C(sex) + eTIV + C(site)", data=data).fit()
    reg = pd.read_csv(group_out / "group" / "desc-casecontrol_regional.tsv", sep="\t").set_index(
        "region"
    )
    assert reg.loc["lh_insula", "t"] == pytest.approx(fit.tvalues["case"], rel=1e-6)
    assert reg.loc["lh_insula", "n_case"] == int(data.case.sum())


def test_whole_tree_passes_the_bids_validator(group_out):
    exe = shutil.which("bids-validator-deno")
    if exe is None:
        pytest.skip("bids-validator-deno is not installed (pip install bids-validator-deno)")
    res = subprocess.run([exe, "--json", str(group_out)], capture_output=True, text=True)
    errors = [i for i in json.loads(res.stdout)["issues"]["issues"] if i["severity"] == "error"]
    assert errors == []


def test_reports_only_rebuilds_without_recomputing(example_group_copy):
    group_out = example_group_copy
    report = group_out / "group" / "report.html"
    stats = group_out / "group" / "desc-casecontrol_regional.tsv"
    before = stats.stat().st_mtime_ns
    report.unlink()
    res = run_cli(BIDS, group_out, "group", "--reports-only")
    assert res.returncode == 0, res.stderr
    assert report.is_file() and stats.stat().st_mtime_ns == before


def test_response_map_alone(tmp_path):
    """--response-map: transcriptomics on an ENIGMA map, no participant data at all."""
    enigma = next(
        (p for p in (EXAMPLE.parents[1] / "tests" / "data").rglob("*mddadult*CortThick*.csv")), None
    )
    assert enigma is not None, "the ENIGMA test map is missing from tests/data"
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "none", "BIDSVersion": "1.9.0"}')
    out = tmp_path / "out"
    # one gene-set library besides the cell types: the checks below do not read enrichment
    res = run_cli(bids, out, "group", "--response-map", enigma, *FAST, "--gene-sets", "pain")
    assert res.returncode == 0, res.stderr
    genes = pd.read_csv(out / "group" / "desc-pls1_genes.tsv", sep="\t")
    assert len(genes) == 15633
    assert not list(out.glob("sub-*"))
    # no participants: the report is written, the participants' index is not
    assert (out / "group" / "report.html").is_file()
    assert not (out / "group" / "participants.html").exists()
    assert tree(bids) == ["dataset_description.json"]


def test_group_without_participant_outputs_says_to_run_participant_first(tmp_path):
    res = run_cli(BIDS, tmp_path / "out", "group", "--skip-bids-validation")
    assert res.returncode == EXIT_USAGE
    assert "participant level" in res.stderr and "Traceback" not in res.stderr


def test_group_column_missing_lists_columns(example_group_copy):
    group_out = example_group_copy
    res = run_cli(
        BIDS, group_out, "group", "--skip-bids-validation", "--group-column", "diagnosis", *FAST
    )
    assert res.returncode == EXIT_USAGE
    assert "diagnosis" in res.stderr and "site" in res.stderr  # names the columns it has
    assert np.isfinite(
        pd.read_csv(group_out / "group" / "desc-casecontrol_regional.tsv", sep="\t").t
    ).all()
