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
from bids_ms.io.outputs import ENRICHMENT_COLUMNS, columns

from ..conftest import EXAMPLE, EXAMPLE_N, run_cli, tree

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
    assert list(reg.columns[:9]) == columns("desc-casecontrol_regional.tsv")[:9]
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
    assert list(parts.columns) == columns("desc-hubs_participants.tsv") and len(parts) == EXAMPLE_N
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
    assert list(cells.columns[:7]) == list(ENRICHMENT_COLUMNS[:7])
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


# --------------------------------------------------------------------------- options and settings


def _default_mismatches(parser) -> list[str]:
    """Options whose parser default or rendered ``--help`` default differs from the settings'."""
    import dataclasses

    from bids_ms.config import (
        GroupSettings,
        ParticipantSettings,
        TranscriptomicsSettings,
        default_of,
    )

    actions = {a.dest: a for a in parser._actions}
    wrong = []
    for cls in (ParticipantSettings, GroupSettings, TranscriptomicsSettings):
        for item in dataclasses.fields(cls):
            if "flag" not in item.metadata:
                continue
            action = actions.get(item.name)
            if action is None or item.metadata["flag"] not in action.option_strings:
                wrong.append(f"{item.metadata['flag']}: no such option of dest {item.name}")
                continue
            expected = default_of(cls, item.name)
            if action.default != expected:
                wrong.append(f"{item.name}: parser {action.default!r} != settings {expected!r}")
            shown = parser._get_formatter()._expand_help(action) if action.help else ""
            if "%(default)s" in (action.help or "") and str(expected) not in shown:
                wrong.append(f"{item.name}: --help shows {shown!r}, settings {expected!r}")
    return wrong


def test_every_option_default_in_help_is_the_settings_default():
    from bids_ms.cli.parser import get_parser
    from bids_ms.config import option_fields

    parser = get_parser()
    assert len(option_fields()) >= 25  # every settings class is looked at
    assert _default_mismatches(parser) == []
    # the check can fail: a default written again in the parser is caught, in --help too
    spins = next(a for a in parser._actions if a.dest == "n_spins")
    spins.default = 5000
    wrong = _default_mismatches(parser)
    assert any(w.startswith("n_spins: parser 5000") for w in wrong), wrong
    assert any(w.startswith("n_spins: --help shows") for w in wrong), wrong
    # and the defaults are the paper's
    help_text = get_parser().format_help()
    for shown in ("default: 10000, as the paper", "default: 5000;", "(default: 15)"):
        assert shown in " ".join(help_text.split()), shown


@pytest.mark.parametrize(
    ("level", "options", "message"),
    [
        ("group", ["--n-spins", "-1"], "--n-spins: -1 must be 0 or more"),
        ("group", ["--n_label_perms", "-2"], "--n-label-perms: -2 must be 0 or more"),
        ("group", ["--harmonize", "combat"], "--harmonize combat needs --site-column"),
        ("group", ["--harmonize", "both"], "--harmonize must be one of none, combat, not 'both'"),
        ("group", ["--seed", str(2**32)], f"--seed: {2**32} must be below 2**32"),
        ("group", ["--seed", "-1"], "--seed: -1 must be 0 or more"),
        ("group", ["--n-components", "0"], "--n-components: 0 must be at least 1"),
        ("group", ["--z-threshold", "0"], "--z-threshold: 0.0 must be positive"),
        ("group", ["--perm-null", "none"], "--perm-null must be one of spin, shuffle"),
        ("group", ["--ahba-dir", "a", "--expression-file", "b"], "not both"),
        ("group", ["--string-info", "x"], "--string-info needs --string-links"),
        ("participant", ["--nprocs", "0"], "--nprocs: 0 must be at least 1"),
        ("participant", ["--omp-nthreads", "-1"], "--omp-nthreads: -1 must be at least 1"),
        ("participant", ["--mem", "0G"], "--mem: 0.0 must be positive"),
    ],
)
def test_out_of_range_option_exits_64_with_one_line(tmp_path, capsys, level, options, message):
    from bids_ms.cli.run import main

    out = tmp_path / "out"
    code = main([str(BIDS), str(out), level, *options])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [f"bids-ms: error: {err.strip()[16:]}"], err
    assert message in err and "Traceback" not in err
    assert not out.exists()  # checked before anything is written


def test_response_map_alone_gets_the_runs_seed_and_spins(tmp_path, monkeypatch):
    """The group level on --response-map alone passes --seed (drawn when absent) and --n-spins."""
    import bids_ms.cli.run as cli_run
    import bids_ms.levels.transcriptomics as tx
    from bids_ms.config import SEED_BOUND, TranscriptomicsSettings

    calls = []
    monkeypatch.setattr(tx, "run_response_map", lambda settings, **kw: calls.append((settings, kw)))
    monkeypatch.setattr(cli_run, "_reports", lambda *args, **kw: 0)  # nothing to report on
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "none", "BIDSVersion": "1.9.0"}')
    args = [str(bids), str(tmp_path / "out"), "group", "--response-map", "map.tsv"]
    assert cli_run.main([*args, "--seed", "5", "--n-spins", "7", "--n-perm", "3"]) == 0
    settings, kw = calls[-1]
    assert isinstance(settings, TranscriptomicsSettings) and settings.n_perm == 3
    assert kw == {"output_dir": (tmp_path / "out").resolve(), "seed": 5, "n_spins": 7}
    assert cli_run.main(args) == 0
    drawn = calls[-1][1]
    assert drawn["n_spins"] == 10000 and 0 <= drawn["seed"] < SEED_BOUND


def test_group_options_both_spellings():
    """Every group option in both spellings reaches GroupSettings (moved from test_group.py)."""
    import argparse
    from pathlib import Path

    from bids_ms.cli.group_options import add_group_arguments, group_settings_from_args
    from bids_ms.errors import UsageError

    parser = argparse.ArgumentParser()
    parser.add_argument("bids_dir")
    parser.add_argument("output_dir")
    add_group_arguments(parser)
    args = parser.parse_args(
        [
            *("b", "o", "--group_column", "dx", "--case-label", "pain", "--control_label", "HC"),
            *("--covariates", "age", "sex", "--site_column", "site", "--harmonize", "combat"),
            *("--n_spins", "0", "--n_label_perms", "0", "--seed", "7"),
            *("--reference-map", "a.tsv", "--reference_map", "b.csv", "--combine", "x", "y"),
            "--strict",
        ]
    )
    s = group_settings_from_args(args)
    assert (s.group_column, s.case_label, s.control_label) == ("dx", "pain", "HC")
    assert s.covariates == ("age", "sex") and s.site_column == "site" and s.harmonize == "combat"
    assert (s.n_spins, s.n_label_perms, s.seed, s.strict) == (0, 0, 7, True)
    assert s.reference_maps == [Path("a.tsv"), Path("b.csv")] and s.combine == [
        Path("x"),
        Path("y"),
    ]
    assert s.output_dir == Path("o") and s.bids_dir == Path("b") and s.transcriptomics is None
    d = group_settings_from_args(parser.parse_args(["b", "o"]))
    assert d.covariates == ("age", "sex", "eTIV") and d.n_spins == 10000 and d.seed is None
    assert d.n_label_perms == 5000
    assert d.harmonize == "none" and d.reference_maps == [] and not d.strict
    # argparse parses the number; the settings check its range, naming the flag
    with pytest.raises(UsageError, match="--n-spins"):
        group_settings_from_args(parser.parse_args(["b", "o", "--n-spins", "-1"]))
    with pytest.raises(UsageError, match="--n-label-perms"):
        group_settings_from_args(parser.parse_args(["b", "o", "--n-label-perms", "-1"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["b", "o", "--n-spins", "many"])


def test_transcriptomics_options_both_spellings():
    """Every transcriptomic option in both spellings (moved from test_transcriptomics.py)."""
    import argparse

    from bids_ms.cli.group_options import add_group_arguments, group_settings_from_args
    from bids_ms.cli.transcriptomics_options import (
        add_transcriptomics_arguments,
        transcriptomics_settings_from_args,
    )
    from bids_ms.errors import UsageError

    parser = argparse.ArgumentParser()
    add_transcriptomics_arguments(parser)
    args = parser.parse_args(
        [
            *("--n_perm", "10", "--n-boot", "0", "--gene-sets", "pain", "--gene_sets", "x.gmt"),
            *("--perm_null", "spin", "--z-threshold", "2.5", "--enrichment-null", "spin"),
        ]
    )
    s = transcriptomics_settings_from_args(args)
    assert (s.n_perm, s.n_boot, s.perm_null, s.z_threshold) == (10, 0, "spin", 2.5)
    assert s.gene_sets == ["pain", "x.gmt"]
    assert s.enrichment_null == "spin" and s.n_null_maps == 100
    # one seed and one n_spins per run: the group level's, not the stage's
    assert not hasattr(s, "n_spins") and not hasattr(s, "seed")
    both = argparse.ArgumentParser()
    both.add_argument("output_dir")
    add_group_arguments(both)
    add_transcriptomics_arguments(both)
    run = group_settings_from_args(both.parse_args(["o", "--n-spins", "7", "--seed", "5"]))
    assert (run.n_spins, run.seed) == (7, 5) and run.transcriptomics.n_perm == 1000
    defaults = transcriptomics_settings_from_args(parser.parse_args([]))
    assert (defaults.perm_null, defaults.enrichment_null) == ("spin", "spin")
    paper = parser.parse_args(["--perm-null", "shuffle", "--n_null_maps", "0"])
    paper = transcriptomics_settings_from_args(paper)
    assert paper.perm_null == "shuffle" and paper.n_null_maps == 0
    assert transcriptomics_settings_from_args(parser.parse_args(["--skip-transcriptomics"])) is None
    with pytest.raises(UsageError, match="not both"):
        transcriptomics_settings_from_args(
            parser.parse_args(["--ahba-dir", "a", "--expression-file", "b"])
        )
    with pytest.raises(UsageError, match="--n-perm"):
        transcriptomics_settings_from_args(parser.parse_args(["--n-perm", "-1"]))
