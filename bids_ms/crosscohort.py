"""Case–control maps of several cohorts compared and combined.

Implements Martins et al. 2022, *PAIN*, §2.8 and §3.3: pairwise Spearman correlations
of the cohorts' regional case–control statistics, each with a spin p (§2.14), and a
principal component analysis of the cohorts' standardised maps whose first component
(PC1) is the shared cross-cohort pattern, the response of the transcriptomic stage.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from .spins import spin_test

__all__ = ["pairwise_correlations", "cohort_pca"]


def pairwise_correlations(maps: pd.DataFrame, *, perms: np.ndarray) -> pd.DataFrame:
    """Spearman correlation and spin p of every pair of cohort maps.

    Parameters
    ----------
    maps : pandas.DataFrame, shape (n_regions, n_cohorts)
        One column per cohort (e.g. the t-maps), regions in rows.
    perms : ndarray, shape (n_spins, n_regions)
        Spin permutations of the regions (the first map of each pair is rotated).

    Returns
    -------
    pandas.DataFrame
        Columns ``cohort_a, cohort_b, rho, p_spin, n_spins``, one row per pair.

    References
    ----------
    Martins et al. 2022, §2.8 and §2.14.
    """
    rows = []
    for a, b in itertools.combinations(maps.columns, 2):
        rho, p = spin_test(maps[a].to_numpy(), maps[b].to_numpy(), perms)
        rows.append(
            {"cohort_a": a, "cohort_b": b, "rho": rho, "p_spin": p, "n_spins": perms.shape[0]}
        )
    return pd.DataFrame(rows, columns=["cohort_a", "cohort_b", "rho", "p_spin", "n_spins"])


def cohort_pca(maps: pd.DataFrame) -> dict:
    """PCA of the cohorts' standardised maps.

    Each cohort's map is z-scored across regions (mean 0, SD 1 with ddof=1); the
    principal components are those of ``sklearn.decomposition.PCA`` fitted to these maps,
    i.e. the eigenvectors of the cohorts' correlation matrix, so eigenvalues sum to the number
    of cohorts (the paper's "eigenvalue > 1" criterion).
    PC1's sign is chosen so that its regional scores correlate positively with the
    mean of the standardised maps.

    Parameters
    ----------
    maps : pandas.DataFrame, shape (n_regions, n_cohorts), n_cohorts >= 2

    Returns
    -------
    dict
        ``cohorts``, ``eigenvalues``, ``explained_variance_ratio`` (per component),
        ``loadings`` (cohort → PC1 weight), ``pc1`` (pandas.Series of regional scores,
        index the regions), ``pc1_sign_flipped`` (bool: the sign rule above flipped
        scikit-learn's component, which scikit-learn orients so that its largest loading is
        positive), ``pc1_corr_with_mean_map``.

    References
    ----------
    Martins et al. 2022, §2.8 (PC1 explained 64.45 % across three cohorts, eigenvalue 1.93).
    """
    if maps.shape[1] < 2:
        raise ValueError("PCA across cohorts needs at least two cohort maps")
    values = maps.to_numpy(dtype=float)
    z = (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
    # The standardised maps have SD 1, so sklearn's explained_variance_ (ddof=1) are the
    # eigenvalues of the cohorts' correlation matrix, and components_ its eigenvectors.
    pca = PCA(svd_solver="full").fit(z)
    evals = np.clip(pca.explained_variance_, 0.0, None)
    evecs = pca.components_.T.copy()
    scores = z @ evecs
    mean_map = z.mean(axis=1)
    flipped = bool(np.corrcoef(scores[:, 0], mean_map)[0, 1] < 0)
    if flipped:
        scores[:, 0] *= -1
        evecs[:, 0] *= -1
    pc1 = pd.Series(scores[:, 0], index=maps.index, name="PC1")
    return {
        "cohorts": [str(c) for c in maps.columns],
        "eigenvalues": evals.tolist(),
        "explained_variance_ratio": (evals / evals.sum()).tolist(),
        "loadings": {str(c): float(w) for c, w in zip(maps.columns, evecs[:, 0], strict=True)},
        "pc1": pc1,
        "pc1_sign_flipped": flipped,
        "pc1_corr_with_mean_map": float(np.corrcoef(scores[:, 0], mean_map)[0, 1]),
    }
