"""Spin permutations (Martins et al. 2022, §2.14)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bids_ms.atlas import DK_LEFT_REGIONS, DK_REGIONS, hemisphere_of
from bids_ms.spins import (
    load_dk_centroids,
    random_rotations,
    spin_permutations,
    spin_pvalue,
    spin_test,
)

HEMI = [hemisphere_of(r) for r in DK_REGIONS]


@pytest.fixture(scope="module")
def perms() -> np.ndarray:
    return spin_permutations(load_dk_centroids().to_numpy(), HEMI, n_spins=500, seed=7)


def test_centroids_table():
    c = load_dk_centroids()
    assert list(c.index) == list(DK_REGIONS)
    assert list(c.columns) == ["x", "y", "z"]
    radius = np.linalg.norm(c.to_numpy(), axis=1)
    np.testing.assert_allclose(radius, 100.0, atol=0.1)


def test_rotations_are_proper_and_uniform():
    rot = random_rotations(4000, rng=np.random.default_rng(0))
    np.testing.assert_allclose(
        rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    # Haar measure: a rotated fixed vector is uniform on the sphere -> each coordinate ~ U(-1, 1).
    v = rot @ np.array([0.0, 0.0, 1.0])
    for k in range(3):
        assert stats.kstest(v[:, k], stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3


def test_bijection_within_hemisphere(perms):
    assert perms.shape == (500, 68)
    assert perms.dtype.kind == "i"
    left, right = np.arange(34), np.arange(34, 68)
    for row in perms:
        assert np.array_equal(np.sort(row[:34]), left)
        assert np.array_equal(np.sort(row[34:]), right)
    # rotations do move regions
    assert np.mean(perms == np.arange(68)) < 0.5


def test_right_rotation_mirrors_left():
    lh = load_dk_centroids().loc[list(DK_LEFT_REGIONS)].to_numpy()
    rh = lh * np.array([-1.0, 1.0, 1.0])  # an exactly mirrored right hemisphere
    p = spin_permutations(np.vstack([lh, rh]), ["L"] * 34 + ["R"] * 34, n_spins=200, seed=3)
    np.testing.assert_array_equal(p[:, 34:], p[:, :34] + 34)


def test_seeded_and_subset(perms):
    c = load_dk_centroids().to_numpy()
    again = spin_permutations(c, HEMI, n_spins=500, seed=7)
    np.testing.assert_array_equal(again, perms)
    other = spin_permutations(c, HEMI, n_spins=500, seed=8)
    assert not np.array_equal(other, perms)
    left = spin_permutations(c[:34], HEMI[:34], n_spins=500, seed=7)
    # the left hemisphere uses the same rotations whether or not the right is present
    np.testing.assert_array_equal(left, perms[:, :34])


def test_spin_test_matches_scipy(perms):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=68), rng.normal(size=68)
    rho, p = spin_test(x, y, perms)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    null = np.array([stats.spearmanr(x[k], y).statistic for k in perms])
    assert p == pytest.approx((1 + np.sum(np.abs(null) >= abs(rho))) / (1 + len(null)))
    r, _ = spin_test(x, y, perms, method="pearson")
    assert r == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_pvalue_formula():
    assert spin_pvalue(0.5, np.array([0.1, -0.6, 0.5, 0.2])) == pytest.approx(3 / 5)
    assert np.isnan(spin_pvalue(0.5, np.empty(0)))


def test_pvalue_uniform_under_null(perms):
    """Independent maps: spin p-values are (close to) uniform; a seeded statistical check."""
    rng = np.random.default_rng(2024)
    ps = np.array(
        [spin_test(rng.normal(size=68), rng.normal(size=68), perms[:200])[1] for _ in range(300)]
    )
    assert 0.02 <= np.mean(ps <= 0.05) <= 0.09
    assert stats.kstest(ps, "uniform").pvalue > 1e-3


def test_spatially_smooth_maps_are_harder_to_reject(perms):
    """Two smooth maps (functions of position) correlate; the spin p is larger than the naive p."""
    c = load_dk_centroids().to_numpy()
    x = c[:, 1] + np.random.default_rng(0).normal(scale=20, size=68)
    y = c[:, 1] + c[:, 2] * 0.5
    rho, p_spin = spin_test(x, y, perms)
    assert p_spin > stats.spearmanr(x, y).pvalue


def test_bad_inputs():
    c = load_dk_centroids().to_numpy()
    with pytest.raises(ValueError, match="hemisphere"):
        spin_permutations(c, ["X"] * 68, n_spins=2, seed=0)
    with pytest.raises(ValueError, match="labels"):
        spin_permutations(c, HEMI[:10], n_spins=2, seed=0)
    assert spin_permutations(c, HEMI, n_spins=0, seed=0).shape == (0, 68)
    with pytest.raises(ValueError, match="NaN"):
        spin_test(np.full(68, np.nan), np.ones(68), np.zeros((1, 68), dtype=int))


def test_assignment_is_the_optimal_matching_of_the_rotated_centroids():
    """Each spin is the Hungarian matching of the centroids rotated by R (left) and F R F (right)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import distance_matrix

    c = load_dk_centroids().to_numpy()
    rot = random_rotations(15, rng=np.random.default_rng(5))
    perms = spin_permutations(c, HEMI, n_spins=15, seed=5)
    flip = np.diag([-1.0, 1.0, 1.0])
    rows = np.arange(34)
    for k in range(15):
        for sl, r in ((slice(0, 34), rot[k]), (slice(34, 68), flip @ rot[k] @ flip)):
            pts = c[sl]
            d = distance_matrix(pts, pts @ r)
            _, best = linear_sum_assignment(d)
            got = perms[k, sl] - sl.start
            assert d[rows, got].sum() == pytest.approx(d[rows, best].sum(), rel=1e-12)
