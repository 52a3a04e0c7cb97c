"""MS networks checked against an independent computation (scipy z-scores, pandas Pearson)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_ms.io.fsstats import read_subject_stats
from bids_ms.similarity import global_ms, ms_matrices, ms_matrix, regional_ms, zscore_features

from .conftest import FS_SUBJECTS, REAL_SUBJECTS


def _reference_ms(morph: np.ndarray):
    """MS the way the reference MATLAB code spells it out: zscore, corr, mean without diagonal."""
    z = stats.zscore(morph, axis=0, ddof=1)
    corr = pd.DataFrame(z.T).corr(method="pearson").to_numpy()
    n = corr.shape[0]
    regional = np.array([np.mean([corr[i, j] for j in range(n) if j != i]) for i in range(n)])
    return corr, regional, regional.mean()


@pytest.mark.parametrize("subject", REAL_SUBJECTS)
def test_ms_of_real_subjects_matches_reference(subject):
    morph = read_subject_stats(FS_SUBJECTS / subject).morphometry.to_numpy()
    corr, regional, glob = _reference_ms(morph)
    m = ms_matrix(morph)
    np.testing.assert_allclose(m, corr, atol=1e-12)
    np.testing.assert_allclose(regional_ms(m), regional, atol=1e-12)
    assert global_ms(regional_ms(m)) == pytest.approx(glob, abs=1e-12)
    # global MS is also the mean of the off-diagonal matrix (Martins et al. 2022, §2.4)
    off = m[~np.eye(68, dtype=bool)]
    assert global_ms(regional_ms(m)) == pytest.approx(off.mean(), abs=1e-12)


def test_batched_equals_single():
    rng = np.random.default_rng(0)
    morph = rng.normal(size=(4, 68, 5)) * [1000, 500, 2, 0.1, 0.05]
    batch = ms_matrices(morph)
    for i in range(4):
        np.testing.assert_allclose(batch[i], ms_matrix(morph[i]))
        np.testing.assert_allclose(batch[i], _reference_ms(morph[i])[0], atol=1e-12)


def test_zscore_scale_is_irrelevant_but_per_feature_scaling_is_removed():
    rng = np.random.default_rng(1)
    morph = rng.normal(size=(68, 5))
    scaled = morph * [10, 0.1, 3, 7, 1000] + [5, -2, 0, 1, 1e6]
    np.testing.assert_allclose(ms_matrix(morph), ms_matrix(scaled), atol=1e-10)
    np.testing.assert_allclose(zscore_features(morph).std(axis=0, ddof=1), 1.0)


def test_constant_feature_is_an_error():
    morph = np.ones((68, 3))
    morph[:, 0] = np.arange(68)
    with pytest.raises(ValueError, match="constant"):
        ms_matrix(morph)
