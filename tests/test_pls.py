"""PLS (Martins et al. 2022, §2.10) against scikit-learn and independent loops."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from statsmodels.stats.multitest import multipletests

from bids_ms.pls import (
    bootstrap_indices,
    fdr_bh,
    null_list_sizes,
    pls1_bootstrap,
    pls1_bootstrap_maps,
    pls1_score_correlation_null,
    pls_fit,
    pls_permutation_test,
    pls_var_explained_batch,
    run_pls,
    zscore,
)


@pytest.fixture(scope="module")
def data():
    """34 regions x 400 genes with spatial structure, and a response tied to a few genes."""
    rng = np.random.default_rng(7)
    n, p = 34, 400
    gradient = np.linspace(-1, 1, n)
    X = rng.normal(size=(n, p)) + np.outer(gradient, rng.normal(size=p))
    y = X[:, :3].sum(axis=1) + 0.8 * gradient + rng.normal(scale=0.5, size=n)
    return X, y


def _sklearn_cumulative_r2(X, y, k):
    model = PLSRegression(n_components=k, scale=True).fit(X, y)
    resid = y - model.predict(X).ravel()
    return 1 - resid @ resid / ((y - y.mean()) @ (y - y.mean())), model


def test_weights_and_variance_match_sklearn(data):
    X, y = data
    fit = pls_fit(X, y, n_components=6)
    cum = []
    for k in range(1, 7):
        r2, model = _sklearn_cumulative_r2(X, y, k)
        cum.append(r2)
    # weights of all components equal scikit-learn's x_weights_ up to sign
    for k in range(6):
        w_sk = model.x_weights_[:, k]
        sign = np.sign(w_sk @ fit.weights[:, k])
        np.testing.assert_allclose(fit.weights[:, k], sign * w_sk, atol=1e-10)
    np.testing.assert_allclose(fit.var_explained, np.diff(np.r_[0.0, cum]), atol=1e-10)
    # PLS1 is the normalised vector of gene–response correlations (closed form)
    r = np.array([np.corrcoef(X[:, j], y)[0, 1] for j in range(X.shape[1])])
    np.testing.assert_allclose(fit.weights[:, 0], r / np.linalg.norm(r), atol=1e-12)
    # sign: PLS1 scores correlate positively with the response
    assert np.corrcoef(fit.scores[:, 0], y)[0, 1] > 0


def test_kernel_batch_equals_deflation(data):
    X, y = data
    rng = np.random.default_rng(1)
    Xz = zscore(X)
    Y = np.vstack([y, rng.normal(size=(3, y.size))])
    batch = pls_var_explained_batch(Xz @ Xz.T, Y, n_components=8)
    for row, yy in zip(batch, Y, strict=True):
        np.testing.assert_allclose(row, pls_fit(X, yy, n_components=8).var_explained, atol=1e-9)


def test_permutation_p_against_refit_loop(data):
    X, y = data
    rng = np.random.default_rng(3)
    perms = np.argsort(rng.random((40, y.size)), axis=1)
    res = pls_permutation_test(X, y, n_components=3, perms=perms)
    obs = [_sklearn_cumulative_r2(X, y, k)[0] for k in (1, 2, 3)]
    null = np.array([[_sklearn_cumulative_r2(X, y[p], k)[0] for k in (1, 2, 3)] for p in perms])
    expected = (1 + (null >= np.array(obs) - 1e-9).sum(axis=0)) / (1 + len(perms))
    np.testing.assert_allclose(res["var_explained_cumulative"], obs, atol=1e-9)
    np.testing.assert_allclose(res["p_perm_cumulative"], expected)
    assert res["n_null"] == 40


def test_bootstrap_z_against_independent_loop(data):
    X, y = data
    idx = bootstrap_indices(y.size, n_boot=60, seed=11)
    res = pls1_bootstrap(X, y, indices=idx, chunk=7)
    w0 = PLSRegression(n_components=1, scale=True).fit(X, y).x_weights_[:, 0]
    w0 = w0 * np.sign(w0 @ res["weight"])
    np.testing.assert_allclose(res["weight"], w0, atol=1e-10)
    boots = []
    for i in idx:
        wb = PLSRegression(n_components=1, scale=True).fit(X[i], y[i]).x_weights_[:, 0]
        if np.corrcoef(wb, w0)[0, 1] < 0:
            wb = -wb
        boots.append(wb)
    se = np.std(boots, axis=0, ddof=1)
    np.testing.assert_allclose(res["se"], se, rtol=1e-8)
    np.testing.assert_allclose(res["z"], w0 / se, rtol=1e-8)


def test_score_correlation_spin_null_refits(data):
    X, y = data
    rng = np.random.default_rng(5)
    perms = np.argsort(rng.random((25, y.size)), axis=1)
    r, p = pls1_score_correlation_null(X, y, perms=perms)
    fit = pls_fit(X, y, n_components=1)
    assert r == pytest.approx(np.corrcoef(fit.scores[:, 0], y)[0, 1])
    null = [np.corrcoef(pls_fit(X, y[q], n_components=1).scores[:, 0], y[q])[0, 1] for q in perms]
    assert p == pytest.approx((1 + np.sum(np.array(null) >= r - 1e-12)) / 26)
    r0, p0 = pls1_score_correlation_null(X, y, perms=np.empty((0, y.size), dtype=int))
    assert r0 == pytest.approx(r) and np.isnan(p0)


def test_fdr_matches_statsmodels():
    p = np.random.default_rng(0).random(200) ** 3
    np.testing.assert_allclose(fdr_bh(p), multipletests(p, method="fdr_bh")[1])
    out = fdr_bh(np.array([0.01, np.nan, 0.04]))
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.02)


def test_resamplings_switched_off(data):
    X, y = data
    res = run_pls(X, y, n_components=3, n_perm=0, n_boot=0, seed=1)
    assert res.n_perm == 0 and np.isnan(res.p_perm_cumulative).all()
    assert res.n_boot == 0 and np.isnan(res.z).all() and np.isnan(res.p_fdr).all()
    assert np.isfinite(res.weight).all()


def test_run_pls_reproducible(data):
    X, y = data
    a = run_pls(X, y, n_components=3, n_perm=50, n_boot=50, seed=4)
    b = run_pls(X, y, n_components=3, n_perm=50, n_boot=50, seed=4)
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_array_equal(a.p_perm_cumulative, b.p_perm_cumulative)


def test_zscore_rejects_constant_and_nan():
    with pytest.raises(ValueError, match="constant"):
        zscore(np.ones((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        zscore(np.array([[1.0], [np.nan]]))


def test_empty_null_gives_nan(data):
    X, y = data
    res = pls_permutation_test(X, y, n_components=2, perms=np.empty((0, y.size), dtype=int))
    assert res["n_null"] == 0 and np.isnan(res["p_perm_cumulative"]).all()


# --------------------------------------------------------------------------- issue 9


def _plain_bootstrap_z(X, y, idx):
    """PLS1 bootstrap Z by a plain refit loop: z-score each resample, w = Xᵀy / ‖Xᵀy‖."""
    Xz, yz = zscore(X), zscore(y)
    w0 = Xz.T @ yz
    w0 /= np.linalg.norm(w0)
    W = []
    for i in idx:
        Xb = X[i]
        sd = Xb.std(axis=0, ddof=1)
        Zb = np.zeros_like(Xb)
        ok = sd > 0
        Zb[:, ok] = (Xb[:, ok] - Xb[:, ok].mean(axis=0)) / sd[ok]
        w = Zb.T @ zscore(y[i])
        w /= np.linalg.norm(w)
        W.append(w if np.corrcoef(w, w0)[0, 1] >= 0 else -w)
    return w0 / np.std(W, axis=0, ddof=1)


def test_batched_bootstrap_of_many_maps_equals_a_plain_refit_loop(data):
    X, y = data
    rng = np.random.default_rng(12)
    Y = np.vstack([y, y[rng.permutation(y.size)], rng.normal(size=(3, y.size))])
    idx = bootstrap_indices(y.size, n_boot=45, seed=2)
    res = pls1_bootstrap_maps(X, Y, indices=idx, chunk=7)  # chunks that do not divide 45
    assert res["z"].shape == (5, X.shape[1]) and res["n_boot"] == 45
    for m, yy in enumerate(Y):
        expected = _plain_bootstrap_z(X, yy, idx)
        np.testing.assert_allclose(res["z"][m], expected, rtol=1e-8)
    # the single-map implementation (the observed map's Z) agrees too
    np.testing.assert_allclose(res["z"][0], pls1_bootstrap(X, y, indices=idx)["z"], rtol=1e-8)
    # single precision: the same Z to about 1e-4
    low = pls1_bootstrap_maps(X, Y, indices=idx, dtype=np.float32)
    np.testing.assert_allclose(low["z"], res["z"], rtol=2e-3, atol=1e-4)


def test_null_list_sizes_count_the_plain_loop_lists(data):
    X, y = data
    rng = np.random.default_rng(8)
    perms = np.argsort(rng.random((6, y.size)), axis=1)
    idx = bootstrap_indices(y.size, n_boot=40, seed=3)
    res = null_list_sizes(X, y, perms=perms, indices=idx, threshold=2.0, dtype=np.float64)
    assert res["n_null_maps"] == 6
    for k, q in enumerate(perms):
        z = _plain_bootstrap_z(X, y[q], idx)
        assert res["plus"][k] == int((z > 2.0).sum())
        assert res["minus"][k] == int((z < -2.0).sum())
    off = null_list_sizes(X, y, perms=perms[:0], indices=idx, threshold=2.0)
    assert off["n_null_maps"] == 0 and off["plus"].size == 0


def test_run_pls_reports_spin_and_shuffle_nulls(data):
    X, y = data
    rng = np.random.default_rng(4)
    spins = np.argsort(rng.random((30, y.size)), axis=1)
    res = run_pls(X, y, n_components=3, n_perm=40, spin_perms=spins, n_boot=30, seed=5)
    spin = pls_permutation_test(X, y, n_components=3, perms=spins)
    old = run_pls(X, y, n_components=3, n_perm=40, n_boot=30, seed=5)  # the paper's null alone
    assert res.perm_null == "spin" and res.n_spin == 30 and res.n_shuffle == 40
    np.testing.assert_array_equal(res.p_spin, spin["p_perm_cumulative"])
    np.testing.assert_array_equal(res.p_perm_cumulative, res.p_spin)
    np.testing.assert_array_equal(res.p_shuffle, old.p_perm_cumulative)
    np.testing.assert_array_equal(res.z, old.z)  # the same bootstrap draws
    chosen = run_pls(
        X, y, n_components=3, n_perm=40, spin_perms=spins, perm_null="shuffle", n_boot=0, seed=5
    )
    np.testing.assert_array_equal(chosen.p_perm_cumulative, old.p_perm_cumulative)
    with pytest.raises(ValueError, match="spin_perms"):
        run_pls(X, y, n_components=3, n_perm=10, perm_null="spin", n_boot=0)
    # null maps go through the same bootstrap draws as the observed map
    idx = bootstrap_indices(
        y.size, n_boot=30, seed=np.random.default_rng(np.random.SeedSequence(5).spawn(2)[1])
    )
    with_null = run_pls(
        X,
        y,
        n_components=3,
        n_perm=0,
        spin_perms=spins,
        n_boot=30,
        seed=5,
        null_maps=spins[:4],
        z_threshold=2.0,
    )
    assert with_null.null_list_size["n_null_maps"] == 4
    expected = null_list_sizes(X, y, perms=spins[:4], indices=idx, threshold=2.0)
    np.testing.assert_array_equal(with_null.null_list_size["plus"], expected["plus"])
