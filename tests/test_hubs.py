"""Hub susceptibility (Martins et al. 2022, §2.7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_ms.atlas import DK_REGIONS, hemisphere_of
from bids_ms.hubs import QUADRANTS, hub_susceptibility, quadrant_of, quadrant_summary
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
