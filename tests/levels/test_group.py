"""The group level end to end on real data (ABIDE I NYU + USM), and its bad inputs."""

from __future__ import annotations

import html
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bids_ms.atlas import DK_LEFT_REGIONS, DK_REGIONS
from bids_ms.config import stream_rng
from bids_ms.errors import InputDataError, UsageError
from bids_ms.hubs import label_permutations
from bids_ms.io.outputs import columns
from bids_ms.levels import transcriptomics
from bids_ms.levels.group import GroupSettings, run_group_level
from bids_ms.models import design_matrix, fit_ols

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"
DATA = Path(__file__).resolve().parents[1] / "data" / "group"
MDD = DATA / "mddadult_case-controls_CortThick.csv"

REGIONAL_COLUMNS = columns("desc-casecontrol_regional.tsv")[:9]
CONTRACT = [
    "desc-casecontrol_regional.tsv",
    "desc-casecontrol_global.json",
    "desc-hubs_stats.json",
    "desc-lofo_correlations.tsv",
    "desc-economo_casecontrol.tsv",
    "desc-reference_correlations.tsv",
]


@pytest.fixture
def derivatives(example_participant_out) -> Path:
    """Participant derivatives of the 246 bundled ABIDE participants (volume, area, thickness),
    made once per session (conftest). Read-only: tests link them into their own folder."""
    return example_participant_out


def _copy_outputs(src: Path, dst: Path, keep=lambda name: True) -> Path:
    dst.mkdir(parents=True)
    shutil.copy(src / "dataset_description.json", dst)
    for sub in src.glob("sub-*"):
        if keep(sub.name):
            (dst / sub.name).symlink_to(sub, target_is_directory=True)
    return dst


@pytest.fixture
def out(derivatives, tmp_path) -> Path:
    """A fresh output folder with all participants' derivatives (group/ written per test)."""
    return _copy_outputs(derivatives, tmp_path / "out")


def _bids(tmp_path: Path, edit=None) -> Path:
    bids = tmp_path / "bids"
    bids.mkdir(exist_ok=True)
    table = pd.read_csv(EXAMPLE / "bids" / "participants.tsv", sep="\t", dtype=str)
    if edit is not None:
        table = edit(table)
    table.to_csv(bids / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    return bids


def _settings(out: Path, bids: Path, **kw) -> GroupSettings:
    kw.setdefault("n_spins", 200)
    kw.setdefault("n_label_perms", 200)
    kw.setdefault("seed", 42)
    return GroupSettings(output_dir=out, bids_dir=bids, **kw)


def _independent_table(out: Path) -> pd.DataFrame:
    """participants.tsv joined with regional MS and eTIV read straight from the files."""
    part = pd.read_csv(EXAMPLE / "bids" / "participants.tsv", sep="\t")
    rows = []
    for pid in part["participant_id"]:
        anat = out / pid / "anat"
        reg = pd.read_csv(anat / f"{pid}_atlas-DK_desc-MS_regional.tsv", sep="\t")
        side = json.loads((anat / f"{pid}_atlas-DK_desc-MS_regional.json").read_text())
        rows.append(
            {
                "participant_id": pid,
                "eTIV": side["eTIV"],
                **dict(zip(reg["region"], reg["ms"], strict=True)),
            }
        )
    return part.merge(pd.DataFrame(rows), on="participant_id")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_end_to_end_site_covariate(out, tmp_path):
    bids = _bids(tmp_path)
    logger, records = logging.getLogger("bids_ms"), _Records()
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        res = run_group_level(_settings(out, bids, site_column="site", reference_maps=[MDD]))
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    g = out / "group"
    for name in CONTRACT:
        assert (g / name).is_file(), name
        if name.endswith(".tsv"):
            side = json.loads((g / name).with_suffix(".json").read_text())
            for key in (
                "Covariates",
                "Seed",
                "NSpins",
                "Harmonization",
                "SoftwareVersions",
                "ExcludedParticipants",
            ):
                assert key in side, (name, key)
    assert res["n_participants"] == 246 and res["n_excluded"] == 0

    reg = pd.read_csv(g / "desc-casecontrol_regional.tsv", sep="\t")
    assert list(reg.columns[: len(REGIONAL_COLUMNS)]) == REGIONAL_COLUMNS
    assert list(reg["region"]) == list(DK_REGIONS)
    assert set(reg["n_case"]) == {121} and set(reg["n_control"]) == {125}
    np.testing.assert_allclose(reg["p_fdr"], multipletests(reg["p"], method="fdr_bh")[1], rtol=1e-8)
    np.testing.assert_allclose(reg["cohen_d"], reg["t"] * np.sqrt(1 / 121 + 1 / 125), rtol=1e-8)

    # the same models fitted independently with statsmodels on the files
    data = _independent_table(out)
    formula = "ms ~ C(group, Treatment('control')) + age + C(sex) + eTIV + C(site)"
    term = "C(group, Treatment('control'))[T.ASD]"
    for region in ("lh_insula", "rh_superiorparietal", "lh_bankssts"):
        fit = smf.ols(formula, data=data.assign(ms=data[region])).fit()
        row = reg.set_index("region").loc[region]
        assert row["t"] == pytest.approx(fit.tvalues[term], rel=1e-6)
        assert row["beta"] == pytest.approx(fit.params[term], rel=1e-6)
        assert row["p"] == pytest.approx(fit.pvalues[term], rel=1e-5)
    data["global_ms"] = data[list(DK_REGIONS)].mean(axis=1)
    fit = smf.ols(formula.replace("ms ~", "global_ms ~"), data=data).fit()
    glob = json.loads((g / "desc-casecontrol_global.json").read_text())
    assert glob["t"] == pytest.approx(fit.tvalues[term], rel=1e-6)
    assert glob["df"] == fit.df_resid
    assert {"beta", "t", "p", "cohen_d", "df", "n_case", "n_control"} <= set(glob)
    # statsmodels' summary of every term of the global-MS model, beside the group term
    terms = glob["ModelSummary"]["Terms"]
    assert terms["group"]["t"] == glob["t"] and terms["group"]["beta"] == glob["beta"]
    assert terms["eTIV"]["beta"] == pytest.approx(fit.params["eTIV"], rel=1e-6)
    low, high = fit.conf_int().loc[term]
    assert (terms["group"]["ci_low"], terms["group"]["ci_high"]) == (
        pytest.approx(low, rel=1e-6),
        pytest.approx(high, rel=1e-6),
    )
    assert glob["ModelSummary"]["RSquared"] == pytest.approx(fit.rsquared, rel=1e-6)

    hubs = json.loads((g / "desc-hubs_stats.json").read_text())
    assert set(hubs["quadrants"]) == {
        "dedifferentiation",
        "hypercoupling",
        "hyperdifferentiation",
        "decoupling",
    }
    assert sum(hubs["quadrants"].values()) == pytest.approx(100.0)
    assert hubs["n_spins"] == 200 and 0 < hubs["p_spin"] <= 1
    _check_hub_permutations(g, hubs, data)
    # the log mirrors the report's banner: p_perm >= 0.05 here (about 0.12 on the example)
    warned = [
        r
        for r in records.records
        if r.levelno == logging.WARNING and "label-permutation p" in r.getMessage()
    ]
    assert hubs["p_perm"] >= 0.05 and len(warned) == 1

    lofo = pd.read_csv(g / "desc-lofo_correlations.tsv", sep="\t")
    assert list(lofo["feature_left_out"]) == ["volume", "area", "thickness"]
    eco = pd.read_csv(g / "desc-economo_casecontrol.tsv", sep="\t")
    assert list(eco["class_name"]) == [
        "primary motor",
        "association A",
        "association B",
        "secondary sensory",
        "primary sensory",
        "limbic",
        "insular",
    ]
    refs = pd.read_csv(g / "desc-reference_correlations.tsv", sep="\t")
    assert (
        refs.loc[0, "map"] == "mddadult_case-controls_CortThick" and refs.loc[0, "n_regions"] == 68
    )

    resid = pd.read_csv(g / "desc-residualised_regional.tsv", sep="\t")
    assert len(resid) == 246
    np.testing.assert_allclose(resid[list(DK_REGIONS)].mean(), 0, atol=1e-10)
    assert list(res["response"].index) == list(DK_LEFT_REGIONS)

    # seeded: a second run gives the same spin and label-permutation p values
    again = run_group_level(_settings(out, bids, site_column="site", reference_maps=[MDD]))
    assert again["seed"] == 42
    rerun = json.loads((g / "desc-hubs_stats.json").read_text())
    assert rerun["p_spin"] == hubs["p_spin"] and rerun["p_perm"] == hubs["p_perm"]


def _loop_hub_rho(y: np.ndarray, x: np.ndarray, labels: np.ndarray) -> float:
    """Hub rho by hand: OLS t of the group per region (lstsq), Spearman with controls' mean."""
    design = np.column_stack([x[:, :1], labels.astype(float), x[:, 1:]])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    se = np.sqrt(
        np.linalg.inv(design.T @ design)[1, 1] * (resid**2).sum(0) / (len(y) - x.shape[1] - 1)
    )
    return stats.spearmanr(beta[1] / se, y[~labels].mean(axis=0)).statistic


def _check_hub_permutations(g: Path, hubs: dict, data: pd.DataFrame) -> None:
    """desc-hubs_stats.json and desc-hubs_participants.tsv against a plain loop (issue 9)."""
    assert hubs["n_label_perms"] == 200
    assert set(hubs["null_rho"]) == {"mean", "sd", "q025", "q975"}
    assert hubs["null_rho"]["q025"] <= hubs["null_rho"]["mean"] <= hubs["null_rho"]["q975"]
    assert set(hubs["differentiation"]) >= {"beta", "t", "p", "cohen_d", "n_case", "n_control"}
    assert hubs["LabelPermutation"]["Strata"] == "site"
    for name, q in hubs["quadrant_stats"].items():
        assert q["percent"] == pytest.approx(hubs["quadrants"][name])
        assert q["null_q025"] <= q["null_mean"] <= q["null_q975"]
    assert "paper" in hubs["tests"]["p_spin"] and "control template" in hubs["tests"]["p_spin"]

    parts = pd.read_csv(g / "desc-hubs_participants.tsv", sep="\t")
    assert list(parts.columns) == columns("desc-hubs_participants.tsv")
    assert (g / "desc-hubs_participants.json").is_file()
    table = data.set_index("participant_id").loc[parts["participant_id"]].reset_index()
    y = table[list(DK_REGIONS)].to_numpy()
    case = (table["group"] == "ASD").to_numpy()
    # the differentiation index: a participant's slope on the controls' mean (leave-one-out)
    for i in (0, 7, int(np.flatnonzero(case)[0])):
        others = ~case & (np.arange(len(y)) != i)
        slope = np.polyfit(y[others].mean(axis=0), y[i], 1)[0]
        assert parts.loc[i, "differentiation"] == pytest.approx(slope, rel=1e-8)
    fit = smf.ols(
        "differentiation ~ case + age + C(sex) + eTIV + C(site)",
        data=table.assign(differentiation=parts["differentiation"], case=case.astype(float)),
    ).fit()
    assert hubs["differentiation"]["t"] == pytest.approx(fit.tvalues["case"], rel=1e-6)
    assert hubs["differentiation"]["p"] == pytest.approx(fit.pvalues["case"], rel=1e-5)

    # p_perm: the labels permuted within site with the documented generator, refitted in a loop
    perms = label_permutations(
        len(table),
        n_perms=200,
        strata=table["site"].to_numpy(),
        seed=stream_rng(42, "label_permutations"),
    )
    x = design_matrix(table[["age", "sex", "eTIV", "site"]]).to_numpy()

    def rho(labels):
        return _loop_hub_rho(y, x, labels)

    observed = rho(case)
    assert hubs["rho"] == pytest.approx(observed, abs=1e-10)
    null = np.array([rho(case[p]) for p in perms])
    assert hubs["p_perm"] == pytest.approx((1 + np.sum(np.abs(null) >= abs(observed))) / 201)
    assert hubs["null_rho"]["sd"] == pytest.approx(null.std(ddof=1), rel=1e-8)
    nulls = pd.read_csv(g / "desc-hubs_nulls.tsv", sep="\t")
    np.testing.assert_allclose(nulls["rho"], null, atol=1e-9)
    for name, q in hubs["quadrant_stats"].items():
        assert nulls[name].mean() == pytest.approx(q["null_mean"], rel=1e-8)


def test_end_to_end_combat(out, tmp_path):
    pytest.importorskip(
        "neuroCombat", reason="--harmonize combat needs neuroCombat (bids-ms[harmonize])"
    )
    bids = _bids(tmp_path)
    run_group_level(_settings(out, bids, site_column="site", harmonize="combat", n_label_perms=12))
    g = out / "group"
    side = json.loads((g / "desc-casecontrol_regional.json").read_text())
    assert side["Harmonization"]["Method"].startswith("ComBat")
    assert side["Harmonization"]["Sites"] == ["NYU", "USM"]
    assert "site" not in side["Covariates"]
    reg = pd.read_csv(g / "desc-casecontrol_regional.tsv", sep="\t")
    assert reg["df"].iloc[0] == 246 - 5  # intercept, group, age, sex, eTIV
    # ComBat removes the site effect (adjusted for the protected covariates) of the raw data
    harm = pd.read_csv(g / "desc-harmonized_regional.tsv", sep="\t").set_index("participant_id")
    raw = _independent_table(out).set_index("participant_id").loc[harm.index]
    design = design_matrix(raw[["group", "age", "sex", "eTIV", "site"]])
    t_raw = np.abs(fit_ols(raw[list(DK_REGIONS)].to_numpy(), design).term("site[T.USM]")["t"])
    t_harm = np.abs(fit_ols(harm[list(DK_REGIONS)].to_numpy(), design).term("site[T.USM]")["t"])
    assert (t_raw > 2).sum() >= 5 and (t_harm > 2).sum() == 0
    assert t_harm.mean() < 0.5 * t_raw.mean()
    hubs = json.loads((g / "desc-hubs_stats.json").read_text())
    assert -1 <= hubs["rho"] <= 1
    assert "refitted under every permutation" in hubs["LabelPermutation"]["ComBat"]
    assert 0 < hubs["p_perm"] <= 1 and hubs["LabelPermutation"]["Strata"] == "site"
    # every permutation reruns ComBat with the permuted group protected: a plain loop calling
    # neuroCombat itself, then OLS and Spearman, gives the same null rho
    from neuroCombat import neuroCombat

    table = raw.reset_index()
    y_raw = table[list(DK_REGIONS)].to_numpy()
    case = (table["group"] == "ASD").to_numpy()
    perms = label_permutations(
        len(table),
        n_perms=12,
        strata=table["site"].to_numpy(),
        seed=stream_rng(42, "label_permutations"),
    )
    x = design_matrix(table[["age", "sex", "eTIV"]]).to_numpy()

    def rho(labels):
        covars = pd.DataFrame(
            {
                "group": labels.astype(float),
                "sex": pd.Categorical(table["sex"].astype(str)).codes.astype(float),
                "age": table["age"].to_numpy(float),
                "eTIV": table["eTIV"].to_numpy(float),
                "site": table["site"].astype(str).to_numpy(),
            }
        )
        y = neuroCombat(
            dat=y_raw.T,
            covars=covars,
            batch_col="site",
            categorical_cols=["group", "sex"],
            continuous_cols=["age", "eTIV"],
        )["data"].T
        return _loop_hub_rho(y, x, labels)

    assert hubs["rho"] == pytest.approx(rho(case), abs=1e-8)
    null = np.array([rho(case[p]) for p in perms])
    nulls = pd.read_csv(g / "desc-hubs_nulls.tsv", sep="\t")
    np.testing.assert_allclose(nulls["rho"], null, atol=1e-8)


def test_combine_cohorts(derivatives, tmp_path):
    bids = _bids(tmp_path)
    nyu = _copy_outputs(derivatives, tmp_path / "nyu", keep=lambda n: n.startswith("sub-NYU"))
    usm = _copy_outputs(derivatives, tmp_path / "usm", keep=lambda n: n.startswith("sub-USM"))
    r_usm = run_group_level(_settings(usm, bids))
    assert r_usm["n_excluded"] == 175  # the NYU participants have no derivatives here
    side = json.loads((usm / "group" / "desc-casecontrol_regional.json").read_text())
    assert side["NExcluded"] == 175
    assert all("no participant derivatives" in e["reason"] for e in side["ExcludedParticipants"])
    res = run_group_level(_settings(nyu, bids, combine=[usm], reference_maps=[MDD]))
    refs = pd.read_csv(nyu / "group" / "desc-reference_correlations.tsv", sep="\t")
    assert list(refs["target"]) == ["t", "PC1"]
    g = nyu / "group"
    pca = json.loads((g / "desc-crosscohort_pca.json").read_text())
    assert pca["cohorts"] == ["nyu", "usm"]
    assert sum(pca["explained_variance_ratio"]) == pytest.approx(1.0)
    assert sum(pca["eigenvalues"]) == pytest.approx(2.0)
    pc1 = pd.read_csv(g / "desc-crosscohort_pc1.tsv", sep="\t")
    assert list(pc1.columns) == columns("desc-crosscohort_pc1.tsv")
    assert list(pc1["region"]) == list(DK_REGIONS)
    maps = pd.DataFrame(
        {
            c: pd.read_csv(d / "group" / "desc-casecontrol_regional.tsv", sep="\t")["t"]
            for c, d in (("n", nyu), ("u", usm))
        }
    )
    z = (maps - maps.mean()) / maps.std()
    assert np.corrcoef(pc1["value"], z.mean(axis=1))[0, 1] > 0.99  # two cohorts: PC1 ∝ mean map
    pairs = pd.read_csv(g / "desc-crosscohort_correlations.tsv", sep="\t")
    assert len(pairs) == 1
    # the controls' mean MS maps of the two cohorts, with spin p (paper section 3.1, Fig. S1-S2)
    ctrl = pd.read_csv(g / "desc-crosscohort_controlsms.tsv", sep="\t")
    assert list(ctrl.columns) == columns("desc-crosscohort_controlsms.tsv")
    assert (ctrl["cohort_a"][0], ctrl["cohort_b"][0], ctrl["n_spins"][0]) == ("nyu", "usm", 200)
    both = {
        c: pd.read_csv(d / "group" / "desc-hubs_regional.tsv", sep="\t")["control_ms"]
        for c, d in (("n", nyu), ("u", usm))
    }
    assert ctrl["rho"][0] == pytest.approx(stats.spearmanr(both["n"], both["u"]).statistic)
    assert 0 < ctrl["p_spin"][0] <= 1
    side = json.loads((g / "desc-crosscohort_controlsms.json").read_text())
    assert set(side["Cohorts"]) == {"nyu", "usm"} and "rho" in side
    # the report's cross-cohort section (only that section is drawn, to keep the test quick)
    from bids_ms.reports import group_report

    ctx = group_report._Context(nyu)
    section = group_report._crosscohort(ctx).body
    assert "Controls' MS across cohorts" in html.unescape(section)
    for fig in ("desc-crosscohort_controlsms.svg", "desc-crosscohort_controlsms1_map.png"):
        assert f"figures/{fig}" in section and (g / "figures" / fig).is_file(), fig
    methods = group_report._methods(ctx)[1]
    assert "spin permutations; two cohorts' control maps" in methods
    assert list(res["response"].index) == list(DK_LEFT_REGIONS)
    np.testing.assert_allclose(res["response"].to_numpy(), pc1["value"].to_numpy()[:34])

    # outputs made with other features cannot be combined
    side_path = usm / "group" / "desc-casecontrol_regional.json"
    meta = json.loads(side_path.read_text())
    meta["Features"] = ["volume", "area"]
    side_path.write_text(json.dumps(meta))
    with pytest.raises(InputDataError, match="same --features"):
        run_group_level(_settings(nyu, bids, combine=[usm]))
    with pytest.raises(InputDataError, match="--combine"):
        run_group_level(_settings(nyu, bids, combine=[tmp_path / "bids"]))


def test_transcriptomics_hook(out, tmp_path, monkeypatch):
    calls = {}

    def run_transcriptomics(response, *, settings, group_dir, seed, spins, description=None):
        calls.update(
            response=response,
            settings=settings,
            group_dir=group_dir,
            seed=seed,
            spins=spins,
            what=description,
        )
        return "ran"

    monkeypatch.setattr(transcriptomics, "run_transcriptomics", run_transcriptomics)
    marker = object()
    res = run_group_level(
        _settings(out, _bids(tmp_path), n_spins=0, n_label_perms=0, transcriptomics=marker)
    )
    assert res["transcriptomics"] == "ran"
    assert calls["settings"] is marker and calls["seed"] == 42
    # the run's one SpinSet, drawn from the run's seed
    assert calls["spins"].seed == 42 and calls["spins"].n_spins == 0
    assert calls["what"] == "left-hemisphere case-control t-map"
    assert list(calls["response"].index) == list(DK_LEFT_REGIONS)
    hubs = json.loads((out / "group" / "desc-hubs_stats.json").read_text())
    assert hubs["p_spin"] is None and hubs["n_spins"] == 0
    assert hubs["p_perm"] is None and hubs["n_label_perms"] == 0
    assert hubs["null_rho"]["mean"] is None and -1 <= hubs["rho_partial"] <= 1
    assert not (out / "group" / "desc-hubs_nulls.tsv").exists()


# ----------------------------------------------------------------------------- bad inputs


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_no_derivatives(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="run the participant level") as err:
        run_group_level(_settings(tmp_path / "empty", _bids(tmp_path)))
    _one_line(err)


def test_missing_participants_tsv(out, tmp_path):
    (tmp_path / "nobids").mkdir()
    with pytest.raises(InputDataError, match="participants.tsv: not found"):
        run_group_level(_settings(out, tmp_path / "nobids"))


def test_combat_needs_a_site_column_and_writes_nothing(out, tmp_path):
    with pytest.raises(UsageError, match="--harmonize combat needs --site-column") as err:
        run_group_level(_settings(out, _bids(tmp_path), harmonize="combat"))
    _one_line(err)
    assert not (out / "group").exists()


def test_missing_group_column(out, tmp_path):
    bids = _bids(tmp_path, lambda t: t.rename(columns={"group": "dx"}))
    with pytest.raises(
        InputDataError, match="no group column 'group'; it has participant_id, abide_id, site, dx"
    ) as err:
        run_group_level(_settings(out, bids))
    _one_line(err)


def test_missing_covariate(out, tmp_path):
    with pytest.raises(
        InputDataError, match="no covariate column 'handedness'.*it has participant_id"
    ):
        run_group_level(_settings(out, _bids(tmp_path), covariates=("age", "handedness")))


def test_non_numeric_age(out, tmp_path):
    def edit(t):
        t.loc[3, "age"] = "twelve"
        return t

    with pytest.raises(InputDataError, match="column 'age' must be numeric but has 'twelve'"):
        run_group_level(_settings(out, _bids(tmp_path, edit)))


def test_too_few_in_a_group(out, tmp_path):
    part = pd.read_csv(EXAMPLE / "bids" / "participants.tsv", sep="\t")
    labels = list(part.loc[part["group"] == "ASD", "participant_id"][:2]) + list(
        part.loc[part["group"] == "control", "participant_id"][:10]
    )
    with pytest.raises(InputDataError, match="group 'ASD' has 2 participant"):
        run_group_level(_settings(out, _bids(tmp_path), participant_label=labels))


def test_nan_covariate_excluded_or_strict(out, tmp_path):
    def edit(t):
        t.loc[[0, 5], "age"] = np.nan
        return t

    bids = _bids(tmp_path, edit)
    res = run_group_level(_settings(out, bids, n_spins=0))
    assert res["n_excluded"] == 2
    side = json.loads((out / "group" / "desc-casecontrol_regional.json").read_text())
    assert {e["reason"] for e in side["ExcludedParticipants"]} == {"no value for covariate 'age'"}
    with pytest.raises(InputDataError, match="--strict: 2 participant"):
        run_group_level(_settings(out, bids, strict=True))


def test_participant_without_derivatives_strict(derivatives, tmp_path):
    out = _copy_outputs(derivatives, tmp_path / "out", keep=lambda n: n != "sub-USM0050433")
    with pytest.raises(InputDataError, match="sub-USM0050433 \\(no derivatives\\)"):
        run_group_level(_settings(out, _bids(tmp_path), strict=True))


def test_group_labels(out, tmp_path):
    bids = _bids(
        tmp_path, lambda t: t.assign(group=t["group"].replace({"control": "TD", "ASD": "autism"}))
    )
    res = run_group_level(_settings(out, bids, n_spins=0))  # 'TD' is recognised as control
    assert res["n_participants"] == 246
    bids = _bids(
        tmp_path, lambda t: t.assign(group=t["group"].replace({"control": "B", "ASD": "A"}))
    )
    with pytest.raises(InputDataError, match="give --case-label and --control-label"):
        run_group_level(_settings(out, bids))
    res = run_group_level(_settings(out, bids, case_label="A", n_spins=0))
    side = json.loads((out / "group" / "desc-casecontrol_regional.json").read_text())
    assert (side["CaseLabel"], side["ControlLabel"]) == ("A", "B")
    with pytest.raises(InputDataError, match="'C' is not a value of column 'group'"):
        run_group_level(_settings(out, bids, case_label="C"))


def test_bad_reference_map(out, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("region\tvalue\nlh_bankssts\t1\nlh_V1\t2\n")
    with pytest.raises(InputDataError, match="unknown region names lh_V1"):
        run_group_level(_settings(out, _bids(tmp_path), reference_maps=[bad]))
    assert not (out / "group").exists()  # checked before anything is written


def test_combat_needs_site(out, tmp_path):
    with pytest.raises(UsageError, match="--site-column"):
        run_group_level(_settings(out, _bids(tmp_path), harmonize="combat"))


# ----------------------------------------------------------------------------- options


def test_constant_covariate_left_out(out, tmp_path):
    bids = _bids(tmp_path, lambda t: t.assign(sex="F"))
    run_group_level(_settings(out, bids, n_spins=0))
    side = json.loads((out / "group" / "desc-casecontrol_regional.json").read_text())
    assert side["Covariates"] == ["age", "eTIV"]
    assert list(side["CovariatesLeftOut"]) == ["sex"]
