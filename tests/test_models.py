"""Case–control OLS, BH-FDR and Cohen's d against statsmodels (Martins et al. 2022, §2.4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bids_ms.errors import InputDataError
from bids_ms.models import (
    case_control,
    cohens_d_from_t,
    design_matrix,
    fdr_bh,
    fit_ols,
    global_model,
    residualise,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(11)
    n = 57
    cov = pd.DataFrame(
        {
            "age": rng.uniform(18, 60, n),
            "sex": rng.choice(["F", "M"], n),
            "eTIV": rng.normal(1.5e6, 1e5, n),
            "site": rng.choice(["NYU", "USM", "XYZ"], n),
        }
    )
    is_case = rng.random(n) < 0.45
    y = rng.normal(size=(n, 6)) + 0.3 * is_case[:, None] + 0.01 * cov["age"].to_numpy()[:, None]
    return cov, is_case, y


def test_ols_equals_statsmodels(data):
    cov, is_case, y = data
    table = case_control(y, is_case=is_case, covariates=cov)
    for j in range(y.shape[1]):
        df = cov.assign(ms=y[:, j], group=np.where(is_case, "case", "control"))
        # Treatment coding with controls as reference: the coefficient is case - control.
        fit = smf.ols(
            "ms ~ C(group, Treatment('control')) + age + C(sex) + eTIV + C(site)", data=df
        ).fit()
        name = "C(group, Treatment('control'))[T.case]"
        assert table["beta"].iloc[j] == pytest.approx(fit.params[name], rel=1e-8)
        assert table["se"].iloc[j] == pytest.approx(fit.bse[name], rel=1e-8)
        assert table["t"].iloc[j] == pytest.approx(fit.tvalues[name], rel=1e-8)
        assert table["p"].iloc[j] == pytest.approx(fit.pvalues[name], rel=1e-6)
        assert table["df"].iloc[j] == fit.df_resid
    assert (table["n_case"] == is_case.sum()).all()
    assert (table["n_control"] == (~is_case).sum()).all()


def test_fdr_equals_statsmodels():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=60), rng.uniform(0, 0.01, size=8)])
    np.testing.assert_allclose(fdr_bh(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    with_nan = p.copy()
    with_nan[3] = np.nan
    out = fdr_bh(with_nan)
    assert np.isnan(out[3])
    keep = np.isfinite(with_nan)
    np.testing.assert_allclose(out[keep], multipletests(with_nan[keep], method="fdr_bh")[1])


def test_case_control_fdr_column(data):
    cov, is_case, y = data
    table = case_control(y, is_case=is_case, covariates=cov)
    np.testing.assert_allclose(table["p_fdr"], multipletests(table["p"], method="fdr_bh")[1])


def test_cohen_d_formula(data):
    cov, is_case, y = data
    table = case_control(y, is_case=is_case, covariates=cov)
    n1, n0 = is_case.sum(), (~is_case).sum()
    np.testing.assert_allclose(table["cohen_d"], table["t"] * np.sqrt(1 / n1 + 1 / n0))
    # Without covariates, d equals the classical pooled-SD Cohen's d.
    x1, x0 = y[is_case, 0], y[~is_case, 0]
    sp = np.sqrt(((n1 - 1) * x1.var(ddof=1) + (n0 - 1) * x0.var(ddof=1)) / (n1 + n0 - 2))
    plain = case_control(y[:, :1], is_case=is_case, covariates=cov.iloc[:, :0])
    assert plain["cohen_d"].iloc[0] == pytest.approx((x1.mean() - x0.mean()) / sp, rel=1e-10)
    assert cohens_d_from_t(2.0, 10, 10) == pytest.approx(2.0 * np.sqrt(0.2))


def test_residualise_equals_statsmodels(data):
    cov, _, y = data
    res = residualise(y, covariates=cov[["age", "sex", "eTIV"]])
    fit = smf.ols("ms ~ age + C(sex) + eTIV", data=cov.assign(ms=y[:, 2])).fit()
    np.testing.assert_allclose(res[:, 2], fit.resid.to_numpy(), atol=1e-10)


def test_design_categorical_numeric_code():
    cov = pd.DataFrame({"site": [1, 2, 3, 1, 2, 3]})
    d = design_matrix(cov, categorical=["site"])
    assert list(d.columns) == ["Intercept", "site[T.2]", "site[T.3]"]


def test_bad_designs():
    cov = pd.DataFrame({"age": [20.0, np.nan, 30.0, 40.0]})
    with pytest.raises(InputDataError, match="'age'"):
        design_matrix(cov)
    cov = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "b": [2.0, 4, 6, 8, 10]})
    with pytest.raises(InputDataError, match="collinear"):
        fit_ols(np.arange(5.0), design_matrix(cov))
    with pytest.raises(InputDataError, match="too few"):
        fit_ols(np.arange(2.0), design_matrix(cov.iloc[:2]))


def test_global_model_against_a_plain_least_squares_fit(data):
    """Every term, its 95 % CI and the fit statistics, checked against numpy lstsq and scipy."""
    cov, is_case, y = data
    outcome = y.mean(axis=1)
    out = global_model(outcome, is_case=is_case, covariates=cov)
    x = np.column_stack(
        [
            np.ones(len(cov)),
            is_case.astype(float),
            cov["age"],
            (cov["sex"] == "M").astype(float),
            cov["eTIV"],
            (cov["site"] == "USM").astype(float),
            (cov["site"] == "XYZ").astype(float),
        ]
    )
    n, k = x.shape
    beta, *_ = np.linalg.lstsq(x, outcome, rcond=None)
    resid = outcome - x @ beta
    sigma2 = resid @ resid / (n - k)
    se = np.sqrt(np.diag(np.linalg.inv(x.T @ x)) * sigma2)
    half = stats.t.ppf(0.975, n - k) * se
    summary = out["ModelSummary"]
    names = ["Intercept", "group", "age", "sex[T.M]", "eTIV", "site[T.USM]", "site[T.XYZ]"]
    assert list(summary["Terms"]) == names
    for i, name in enumerate(names):
        term = summary["Terms"][name]
        assert term["beta"] == pytest.approx(beta[i], rel=1e-8, abs=1e-14)
        assert term["se"] == pytest.approx(se[i], rel=1e-8)
        assert term["ci_low"] == pytest.approx(beta[i] - half[i], rel=1e-8, abs=1e-14)
        assert term["ci_high"] == pytest.approx(beta[i] + half[i], rel=1e-8, abs=1e-14)
        assert term["p"] == pytest.approx(2 * stats.t.sf(abs(beta[i] / se[i]), n - k), rel=1e-6)
    tss = ((outcome - outcome.mean()) ** 2).sum()
    r2 = 1 - resid @ resid / tss
    assert summary["RSquared"] == pytest.approx(r2, rel=1e-8)
    assert summary["RSquaredAdjusted"] == pytest.approx(1 - (1 - r2) * (n - 1) / (n - k), rel=1e-8)
    f = (r2 / (k - 1)) / ((1 - r2) / (n - k))
    assert summary["FStatistic"] == pytest.approx(f, rel=1e-8)
    assert summary["FPValue"] == pytest.approx(stats.f.sf(f, k - 1, n - k), rel=1e-6)
    assert (summary["DFModel"], summary["DFResidual"], summary["NObservations"]) == (
        k - 1,
        n - k,
        n,
    )
    assert summary["Formula"] == "global_ms ~ group + age + sex + eTIV + site"
    # the group term is the row the vectorised case-control fit reports
    row = case_control(outcome, is_case=is_case, covariates=cov).iloc[0]
    for key in ("beta", "se", "t", "p", "cohen_d"):
        assert out[key] == pytest.approx(row[key], rel=1e-9)
        assert key == "cohen_d" or out[key] == summary["Terms"]["group"][key]
    assert (out["df"], out["n_case"], out["n_control"]) == (n - k, is_case.sum(), (~is_case).sum())


def test_global_model_refuses_what_fit_ols_refuses():
    cov = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "b": [2.0, 4, 6, 8, 10, 12]})
    is_case = np.array([True, False, True, False, True, False])
    with pytest.raises(InputDataError, match="collinear"):
        global_model(np.arange(6.0), is_case=is_case, covariates=cov)
    with pytest.raises(InputDataError, match="too few"):
        global_model(np.arange(3.0), is_case=is_case[:3], covariates=cov.iloc[:3])


def test_case_control_and_global_model_p_are_calibrated_on_null_data():
    """Outcomes unrelated to group and covariates: p < 0.05 in about 5 % of the tests, for the
    group term (vectorised and statsmodels) and for the global model's F test."""
    rng = np.random.default_rng(5)
    n, reps = 80, 1000
    cov = pd.DataFrame(
        {
            "age": rng.uniform(8, 60, n),
            "sex": rng.choice(["F", "M"], n),
            "eTIV": rng.normal(1.5e6, 1.5e5, n),
            "site": rng.choice(["NYU", "USM"], n),
        }
    )
    is_case = rng.random(n) < 0.5
    y = rng.normal(size=(n, reps))
    p_vectorised = case_control(y, is_case=is_case, covariates=cov)["p"].to_numpy()
    fits = [global_model(y[:, j], is_case=is_case, covariates=cov) for j in range(reps)]
    p_group = np.array([fit["p"] for fit in fits])
    p_f = np.array([fit["ModelSummary"]["FPValue"] for fit in fits])
    np.testing.assert_allclose(p_group, p_vectorised, rtol=1e-9)
    # 1,000 tests at 0.05: the binomial SD of the rate is 0.0069; allow 4 SD
    for p in (p_vectorised, p_f):
        assert abs((p < 0.05).mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / reps)
        assert stats.kstest(p, "uniform").pvalue > 0.001
    # and the test has power: a true group effect of 0.8 SD is found
    shifted = y + 0.8 * is_case[:, None]
    assert (case_control(shifted, is_case=is_case, covariates=cov)["p"] < 0.05).mean() > 0.7
