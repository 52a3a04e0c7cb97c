"""The group level's memory savings at biobank scale give the values of the direct computations.

Each check compares with an independent computation written here: the label permutations of
the former all-in-memory implementation, MS of the whole cohort at once, and the hub test
solved in one batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bids_ms.hubs import hub_permutation_test, label_permutations
from bids_ms.levels import group_steps
from bids_ms.levels.group_steps import _regional_ms, hub_batch
from bids_ms.similarity import ms_matrices, regional_ms


def _former_label_permutations(n, *, n_perms, strata=None, seed=None):
    """The implementation before the memory savings (whole arrays, ``intp``)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    base = np.tile(np.arange(n, dtype=np.intp), (n_perms, 1))
    if n_perms == 0:
        return base
    if strata is None:
        return rng.permuted(base, axis=1)
    blocks = np.asarray(pd.Series(np.asarray(strata)).astype(str))
    out = base.copy()
    for block in sorted(set(blocks)):
        idx = np.flatnonzero(blocks == block)
        out[:, idx] = idx[rng.permuted(np.tile(np.arange(idx.size), (n_perms, 1)), axis=1)]
    return out


@pytest.mark.parametrize("n_perms", [0, 1, 255, 256, 700])
@pytest.mark.parametrize("strata", [None, "two", "three"])
def test_label_permutations_equal_the_former_ones(n_perms, strata):
    n = 301
    rng = np.random.default_rng(0)
    sites = {
        None: None,
        "two": rng.choice(["NYU", "USM"], size=n),
        "three": rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]),
    }[strata]
    for seed in (7, np.random.default_rng(np.random.SeedSequence(7, spawn_key=(2,)))):
        new = label_permutations(n, n_perms=n_perms, strata=sites, seed=seed)
        old_seed = (
            seed
            if isinstance(seed, int)
            else np.random.default_rng(np.random.SeedSequence(7, spawn_key=(2,)))
        )
        old = _former_label_permutations(n, n_perms=n_perms, strata=sites, seed=old_seed)
        assert new.shape == old.shape == (n_perms, n)
        assert new.dtype == np.int32
        assert np.array_equal(new, old)
        if n_perms:
            assert (np.sort(new, axis=1) == np.arange(n)).all()


def test_hub_test_same_with_int32_and_small_batches():
    rng = np.random.default_rng(3)
    n = 120
    y = rng.normal(0.1, 0.05, size=(n, 68))
    g = np.arange(n) % 2 == 0
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    perms = label_permutations(n, n_perms=90, seed=1)
    one = hub_permutation_test(y, is_case=g, design=x, perms=perms.astype(np.intp), batch=500)
    small = hub_permutation_test(y, is_case=g, design=x, perms=perms, batch=16)
    for field in ("null_rho", "null_rho_partial", "null_quadrants", "tmap", "differentiation"):
        np.testing.assert_allclose(getattr(small, field), getattr(one, field), rtol=0, atol=1e-12)
    assert small.p_perm == one.p_perm and small.p_perm_partial == one.p_perm_partial


def test_hub_batch_bounds_memory():
    assert hub_batch(246) == 500  # the science default for small cohorts
    assert hub_batch(10_000) == 200
    assert hub_batch(40_000) == 50
    assert hub_batch(10**7) == 16
    for n in (246, 10_000, 40_000):
        assert hub_batch(n) * n <= max(group_steps.HUB_BATCH_CELLS, 500 * 246)


def test_regional_ms_in_chunks_equals_one_batch(monkeypatch):
    rng = np.random.default_rng(5)
    morph = rng.lognormal(size=(23, 68, 4))
    monkeypatch.setattr(group_steps, "MS_CHUNK", 5)
    for keep in ([0, 1, 2], [1, 3], [0, 1, 2, 3]):
        whole = regional_ms(ms_matrices(morph[:, :, keep]))
        chunked = _regional_ms(morph, keep)
        assert chunked.shape == (23, 68)
        np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)
    # a participant whose MS is undefined still stops the computation
    morph[17, :, 1] = 1.0
    with pytest.raises(ValueError, match="constant"):
        _regional_ms(morph, [0, 1])
