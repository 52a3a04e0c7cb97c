"""Cross-cohort correlations and PCA (Martins et al. 2022, §2.8)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.decomposition import PCA

from bids_ms.atlas import DK_REGIONS, hemisphere_of
from bids_ms.crosscohort import cohort_pca, pairwise_correlations
from bids_ms.spins import load_dk_centroids, spin_permutations


@pytest.fixture
def maps():
    rng = np.random.default_rng(5)
    shared = rng.normal(size=68)
    return pd.DataFrame(
        {
            name: shared * w + rng.normal(size=68)
            for name, w in (("OA", 1.0), ("CLBP", 0.8), ("FM", 1.2))
        },
        index=list(DK_REGIONS),
    )


def test_pca_matches_sklearn(maps):
    res = cohort_pca(maps)
    z = (maps - maps.mean()) / maps.std(ddof=1)
    sk = PCA().fit(z.to_numpy())
    np.testing.assert_allclose(
        res["explained_variance_ratio"], sk.explained_variance_ratio_, rtol=1e-10
    )
    np.testing.assert_allclose(res["eigenvalues"], sk.explained_variance_, rtol=1e-10)
    assert sum(res["eigenvalues"]) == pytest.approx(3.0)
    scores = sk.transform(z.to_numpy())[:, 0]
    assert abs(np.corrcoef(scores, res["pc1"])[0, 1]) == pytest.approx(1.0)
    assert res["pc1_corr_with_mean_map"] > 0


def test_pc1_is_sklearn_component_with_the_mean_map_sign(maps):
    for sign in (1, -1):
        m = maps * sign
        res = cohort_pca(m)
        z = ((m - m.mean()) / m.std(ddof=1)).to_numpy()
        comp = PCA().fit(z).components_[0]
        flip = -1.0 if res["pc1_sign_flipped"] else 1.0
        np.testing.assert_allclose(list(res["loadings"].values()), flip * comp, rtol=1e-10)
        np.testing.assert_allclose(res["pc1"], flip * (z @ comp), rtol=1e-10, atol=1e-12)
        mean_corr = np.corrcoef(z @ comp, z.mean(axis=1))[0, 1]
        assert res["pc1_sign_flipped"] == bool(mean_corr < 0)


def test_pc1_sign_aligned_with_mean(maps):
    for sign in (1, -1):
        res = cohort_pca(maps * sign)
        assert np.corrcoef(res["pc1"], (maps * sign).mean(axis=1))[0, 1] > 0
        assert all(w > 0 for w in res["loadings"].values())


def test_pairwise(maps):
    perms = spin_permutations(
        load_dk_centroids().to_numpy(), [hemisphere_of(r) for r in DK_REGIONS], n_spins=100, seed=0
    )
    table = pairwise_correlations(maps, perms=perms)
    assert len(table) == 3
    row = table.iloc[0]
    assert (row["cohort_a"], row["cohort_b"]) == ("OA", "CLBP")
    assert row["rho"] == pytest.approx(stats.spearmanr(maps["OA"], maps["CLBP"]).statistic)
