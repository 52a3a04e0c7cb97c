"""Hub susceptibility (Martins et al. 2022, §2.7) and its label-permutation test (issue 9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_ms.atlas import DK_REGIONS, hemisphere_of
from bids_ms.hubs import (
    QUADRANTS,
    differentiation_index,
    hub_permutation_test,
    hub_susceptibility,
    label_permutations,
    null_summary,
    permutation_pvalue,
    quadrant_null_summary,
    quadrant_of,
    quadrant_summary,
)
from bids_ms.models import case_control, design_matrix
from bids_ms.spins import load_dk_centroids, spin_permutations


def test_quadrants():
    ms = np.array([-0.1, 0.2, -0.3, 0.4, 0.0])
    t = np.array([1.0, 2.0, -1.0, -2.0, 1.0])
    q = quadrant_of(ms, t)
    assert list(q) == [
        "dedifferentiation",
        "hypercoupling",
        "hyperdifferentiation",
        "decoupling",
        "none",
    ]
    counts, pct = quadrant_summary(q)
    assert counts == dict.fromkeys(QUADRANTS, 1)
    assert pct["decoupling"] == pytest.approx(20.0)


def test_hub_susceptibility_matches_scipy():
    rng = np.random.default_rng(3)
    ms = pd.Series(rng.normal(size=68), index=list(DK_REGIONS))
    t = pd.Series(-0.5 * ms.to_numpy() + rng.normal(size=68), index=list(DK_REGIONS))
    perms = spin_permutations(
        load_dk_centroids().to_numpy(), [hemisphere_of(r) for r in DK_REGIONS], n_spins=300, seed=1
    )
    res, table = hub_susceptibility(ms, t, perms=perms)
    assert res["rho"] == pytest.approx(stats.spearmanr(ms, t).statistic)
    assert res["n_spins"] == 300
    assert 0 < res["p_spin"] < 0.05
    assert sum(res["quadrants"].values()) == pytest.approx(100.0)
    assert list(table.columns) == ["region", "control_ms", "t", "quadrant"]


# --------------------------------------------------------------------------- label permutations


def _simulate(rng, n: int, *, extra_noise=None, n_features: int = 3) -> np.ndarray:
    """Regional MS of ``n`` simulated participants (``bids_ms.similarity``, 68 DK regions).

    Every participant shares one regional feature pattern; their own noise level varies
    (log-normal), so some participants have flatter MS profiles than others: the source of
    the t-map/template coupling. ``extra_noise`` (bool per participant) adds more noise.
    """
    from bids_ms.similarity import ms_matrices, regional_ms

    pattern = rng.normal(size=(68, n_features))
    sd = np.exp(rng.normal(0.0, 0.35, size=n))
    if extra_noise is not None:
        sd = sd + 0.8 * np.asarray(extra_noise, dtype=float)
    morph = pattern[None] + sd[:, None, None] * rng.normal(size=(n, 68, n_features))
    return regional_ms(ms_matrices(morph))


def _plain_loop(y, g, x, perms):
    """The label-permutation null written as a plain loop (lstsq, polyfit, scipy)."""

    def tmap(design, yy):
        beta, *_ = np.linalg.lstsq(design, yy, rcond=None)
        resid = yy - design @ beta
        df = design.shape[0] - design.shape[1]
        cov = np.linalg.inv(design.T @ design)
        se = np.sqrt(np.diag(cov)[1] * (resid**2).sum(axis=0) / df)
        return beta[1] / se

    def one(labels):
        controls = np.flatnonzero(~labels)
        template = y[controls].mean(axis=0)
        t = tmap(np.column_stack([np.ones(len(y)), labels.astype(float), x[:, 1:]]), y)
        d = np.empty(len(y))
        for i in range(len(y)):
            own = controls[controls != i]
            d[i] = np.polyfit(y[own].mean(axis=0), y[i], 1)[0]
        t_p = tmap(np.column_stack([np.ones(len(y)), labels.astype(float), x[:, 1:], d]), y)
        quads = quadrant_summary(quadrant_of(template, t))[1]
        return (
            stats.spearmanr(t, template).statistic,
            stats.spearmanr(t_p, template).statistic,
            [quads[q] for q in QUADRANTS],
            d,
        )

    observed = one(g)
    null = [one(g[p]) for p in perms]
    return observed, null


def test_label_permutations_within_strata_and_seeded():
    sites = np.array(["A"] * 5 + ["B"] * 7 + ["C"] * 3)
    perms = label_permutations(15, n_perms=200, strata=sites, seed=4)
    assert perms.shape == (200, 15)
    for row in perms:
        assert sorted(row) == list(range(15))
        assert (sites[row] == sites).all()  # exchanged only within a site
    assert np.array_equal(perms, label_permutations(15, n_perms=200, strata=sites, seed=4))
    assert not np.array_equal(perms, label_permutations(15, n_perms=200, strata=sites, seed=5))
    free = label_permutations(15, n_perms=200, seed=4)
    assert (sites[free] != sites).any()  # without strata participants move across sites
    assert label_permutations(15, n_perms=0, seed=1).shape == (0, 15)


def test_label_permutation_p_equals_a_plain_loop():
    rng = np.random.default_rng(11)
    n = 36
    y = _simulate(rng, n)
    g = np.arange(n) % 3 == 0
    cov = pd.DataFrame({"age": rng.normal(40, 10, n), "sex": rng.choice(["F", "M"], n)})
    x = design_matrix(cov)
    perms = label_permutations(n, n_perms=40, seed=3)
    res = hub_permutation_test(y, is_case=g, design=x, perms=perms)
    (rho, rho_p, quads, d), null = _plain_loop(y, g, x.to_numpy(), perms)

    assert res.rho == pytest.approx(rho, abs=1e-12)
    assert res.rho_partial == pytest.approx(rho_p, abs=1e-10)
    np.testing.assert_allclose(res.differentiation, d, rtol=1e-9)
    np.testing.assert_allclose(differentiation_index(y, is_control=~g), d, rtol=1e-9)
    np.testing.assert_allclose(res.null_rho, [r[0] for r in null], atol=1e-12)
    np.testing.assert_allclose(res.null_rho_partial, [r[1] for r in null], atol=1e-10)
    np.testing.assert_allclose(res.null_quadrants, [r[2] for r in null], atol=1e-12)
    loop_p = (1 + sum(abs(r[0]) >= abs(rho) for r in null)) / (1 + len(null))
    assert res.p_perm == pytest.approx(loop_p)
    loop_pp = (1 + sum(abs(r[1]) >= abs(rho_p) for r in null)) / (1 + len(null))
    assert res.p_perm_partial == pytest.approx(loop_pp)

    # the observed t-map is statsmodels' OLS t of the group term
    import statsmodels.api as sm

    design = np.column_stack([np.ones(n), g.astype(float), x.to_numpy()[:, 1:]])
    fit = sm.OLS(y[:, 5], design).fit()
    assert res.tmap[5] == pytest.approx(fit.tvalues[1], rel=1e-9)
    # and the same rho as the spin-tested statistic of hub_susceptibility
    perms68 = spin_permutations(
        load_dk_centroids().to_numpy(), [hemisphere_of(r) for r in DK_REGIONS], n_spins=10, seed=1
    )
    hubs, _ = hub_susceptibility(
        pd.Series(res.control_ms, index=list(DK_REGIONS)),
        pd.Series(res.tmap, index=list(DK_REGIONS)),
        perms=perms68,
    )
    assert hubs["rho"] == pytest.approx(res.rho, abs=1e-12)


def test_label_permutation_p_is_calibrated_where_the_spin_p_is_not():
    """Null data (no group effect, labels drawn at random): p < 0.05 in about 5 % of datasets."""
    rng = np.random.default_rng(2024)
    n, n_sets, n_perms = 40, 300, 199
    perms68 = spin_permutations(
        load_dk_centroids().to_numpy(), [hemisphere_of(r) for r in DK_REGIONS], n_spins=500, seed=2
    )
    x = np.ones((n, 1))
    p_perm, p_spin = [], []
    for _ in range(n_sets):
        y = _simulate(rng, n)
        g = rng.permutation(np.arange(n) < n // 2)
        res = hub_permutation_test(
            y, is_case=g, design=x, perms=label_permutations(n, n_perms=n_perms, seed=rng)
        )
        p_perm.append(res.p_perm)
        hubs, _ = hub_susceptibility(
            pd.Series(res.control_ms, index=list(DK_REGIONS)),
            pd.Series(res.tmap, index=list(DK_REGIONS)),
            perms=perms68,
        )
        p_spin.append(hubs["p_spin"])
    p_perm, p_spin = np.array(p_perm), np.array(p_spin)
    for alpha in (0.05, 0.2):
        hits = int((p_perm <= alpha).sum())
        # two-sided binomial test of the share against alpha
        assert stats.binomtest(hits, n_sets, alpha).pvalue > 0.001, (alpha, hits)
    # the spin null, the paper's test, declares this null data significant far too often
    assert (p_spin < 0.05).mean() > 0.3


def test_extra_noise_in_one_group_is_differentiation_not_hub_susceptibility():
    rng = np.random.default_rng(9)
    n = 80
    g = np.arange(n) < n // 2
    y = _simulate(rng, n, extra_noise=g)  # cases: noisier feature profiles, nothing else
    cov = pd.DataFrame({"age": rng.normal(40, 10, n)})
    res = hub_permutation_test(
        y, is_case=g, design=design_matrix(cov), perms=label_permutations(n, n_perms=500, seed=1)
    )
    assert res.rho < -0.5  # the paper's statistic sees "hub susceptibility"
    diff = case_control(pd.DataFrame({"d": res.differentiation}), is_case=g, covariates=cov).iloc[0]
    assert diff["beta"] < 0 and diff["p"] < 0.001  # the differentiation index detects the noise
    assert abs(res.rho_partial) < 0.3  # and accounts for the correlation
    assert res.p_perm_partial > 0.05
    assert 0 < res.p_perm <= 1


def test_null_summaries():
    null = np.array([0.1, -0.2, 0.3, np.nan, 0.0])
    summ = null_summary(null)
    finite = null[np.isfinite(null)]
    assert summ["mean"] == pytest.approx(finite.mean())
    assert summ["sd"] == pytest.approx(finite.std(ddof=1))
    assert summ["q975"] == pytest.approx(np.quantile(finite, 0.975))
    assert null_summary(np.empty(0)) == {"mean": None, "sd": None, "q025": None, "q975": None}
    assert permutation_pvalue(0.25, null) == pytest.approx((1 + 2) / 6)  # 0.3 and the NaN
    quads = np.tile([10.0, 20.0, 30.0, 40.0], (9, 1)) + np.arange(9)[:, None]
    out = quadrant_null_summary(
        dict(zip(QUADRANTS, [50.0, 24.0, 34.0, 0.0], strict=True)),
        counts=dict(zip(QUADRANTS, [34, 16, 23, 0], strict=True)),
        null_quadrants=quads,
    )
    assert out["dedifferentiation"]["null_mean"] == pytest.approx(14.0)
    assert out["dedifferentiation"]["p_perm"] == pytest.approx(1 / 10)
    assert out["hypercoupling"]["p_perm"] == pytest.approx(1.0)
    assert out["decoupling"]["null_q025"] == pytest.approx(np.quantile(quads[:, 3], 0.025))
