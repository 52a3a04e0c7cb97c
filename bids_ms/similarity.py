"""Morphometric similarity (MS) networks.

Implements Martins et al. 2022, *PAIN*, §2.3–2.4, as the reference MATLAB code of
Morgan et al. 2019 (github.com/SarahMorgan/Morphometric_Similarity_SZ) computes it:

1. each morphometric feature is z-scored across the 68 regions of one participant;
2. the MS matrix is the Pearson correlation between every pair of regions' z-scored
   feature vectors (Seidlitz et al. 2018, *Neuron* 97:231);
3. regional MS is the mean of a region's row with the diagonal excluded (mean over the
   other 67 regions), global MS is the mean of regional MS.

Functions take plain numpy arrays (regions x features, or participants x regions x
features for the batched forms used by the group level) and return numpy arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "zscore_features",
    "ms_matrix",
    "ms_matrices",
    "regional_ms",
    "global_ms",
]


def zscore_features(morphometry: np.ndarray) -> np.ndarray:
    """Z-score each feature (column) across regions (rows).

    Parameters
    ----------
    morphometry : ndarray, shape (..., n_regions, n_features)

    Returns
    -------
    ndarray, same shape
        Columns with zero mean and unit sample standard deviation (ddof=1, as MATLAB's
        ``zscore``). A feature that is constant across regions carries no information and
        raises ``ValueError``.
    """
    x = np.asarray(morphometry, dtype=float)
    mean = x.mean(axis=-2, keepdims=True)
    sd = x.std(axis=-2, ddof=1, keepdims=True)
    if np.any(sd == 0) or not np.all(np.isfinite(sd)):
        raise ValueError("a morphometric feature is constant or not finite across regions")
    return (x - mean) / sd


def ms_matrices(morphometry: np.ndarray) -> np.ndarray:
    """MS matrices of many participants at once.

    Parameters
    ----------
    morphometry : ndarray, shape (n_participants, n_regions, n_features)
        Raw regional features.

    Returns
    -------
    ndarray, shape (n_participants, n_regions, n_regions)
        Pearson correlations between regions' z-scored feature vectors; diagonal 1.
    """
    z = zscore_features(morphometry)
    # Pearson across features: centre and scale each region's feature vector.
    z = z - z.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError(
            "a region has identical z-scored values for every feature; its MS is undefined"
        )
    z = z / norm
    r = z @ np.swapaxes(z, -1, -2)
    np.clip(r, -1.0, 1.0, out=r)
    idx = np.arange(r.shape[-1])
    r[..., idx, idx] = 1.0
    return r


def ms_matrix(morphometry: np.ndarray) -> np.ndarray:
    """MS matrix of one participant.

    Parameters
    ----------
    morphometry : ndarray, shape (n_regions, n_features)

    Returns
    -------
    ndarray, shape (n_regions, n_regions)
        See :func:`ms_matrices`.
    """
    return ms_matrices(np.asarray(morphometry, dtype=float)[None])[0]


def regional_ms(matrix: np.ndarray) -> np.ndarray:
    """Regional MS: each row's mean over the other regions (diagonal excluded).

    Parameters
    ----------
    matrix : ndarray, shape (..., n_regions, n_regions)

    Returns
    -------
    ndarray, shape (..., n_regions)
    """
    m = np.asarray(matrix, dtype=float)
    n = m.shape[-1]
    diag = np.diagonal(m, axis1=-2, axis2=-1)
    return (m.sum(axis=-1) - diag) / (n - 1)


def global_ms(regional: np.ndarray) -> np.ndarray | float:
    """Global MS: the mean of regional MS (Martins et al. 2022, §2.4)."""
    return np.asarray(regional, dtype=float).mean(axis=-1)
