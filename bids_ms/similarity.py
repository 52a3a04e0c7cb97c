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
    "ms_matrices_batched",
    "ms_undefined_reasons",
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


#: Why a participant's MS network cannot be computed (the messages of :func:`ms_matrices`).
_NOT_FINITE = "NaN or infinite morphometry values"
_CONSTANT = "a morphometric feature is constant or not finite across regions"
_FLAT_REGION = "a region has identical z-scored values for every feature; its MS is undefined"


def ms_undefined_reasons(morphometry: np.ndarray) -> list[str | None]:
    """For each participant, why its MS network is undefined, or ``None`` when it is defined.

    Parameters
    ----------
    morphometry : ndarray, shape (n_participants, n_regions, n_features)

    Returns
    -------
    list of str or None
        One entry per participant: non-finite values, a feature constant across regions, or
        a region whose z-scored features are all equal (the cases where :func:`ms_matrices`
        raises ``ValueError``).
    """
    x = np.asarray(morphometry, dtype=float)
    finite = np.isfinite(x).all(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = x.std(axis=-2, ddof=1, keepdims=True)
        constant = ~(np.isfinite(sd) & (sd != 0)).all(axis=(-2, -1))
        z = (x - x.mean(axis=-2, keepdims=True)) / sd
        z = z - z.mean(axis=-1, keepdims=True)
        flat = (np.linalg.norm(z, axis=-1) == 0).any(axis=-1)
    return [
        _NOT_FINITE if not f else _CONSTANT if c else _FLAT_REGION if fl else None
        for f, c, fl in zip(finite.tolist(), constant.tolist(), flat.tolist(), strict=True)
    ]


def ms_matrices_batched(morphometry: np.ndarray, *, chunk_size: int = 512) -> np.ndarray:
    """MS matrices of many participants, computed in chunks to bound the temporary memory.

    Each participant is computed exactly as by :func:`ms_matrix` (features z-scored across
    its regions with ddof=1, then Pearson correlation across features), so the results
    are identical to a loop over participants; the chunks only bound the intermediate
    arrays to ``chunk_size`` participants (the result itself is n x regions x regions).

    Parameters
    ----------
    morphometry : ndarray, shape (n_participants, n_regions, n_features)
        Raw regional features; every participant's MS must be defined (check with
        :func:`ms_undefined_reasons` first).
    chunk_size : int
        Participants per vectorised step.

    Returns
    -------
    ndarray, shape (n_participants, n_regions, n_regions)

    Raises
    ------
    ValueError
        Some participant's MS is undefined (see :func:`ms_matrices`).
    """
    x = np.asarray(morphometry, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"morphometry must be participants x regions x features, not {x.shape}")
    n, regions = x.shape[0], x.shape[1]
    out = np.empty((n, regions, regions))
    for start in range(0, n, max(1, int(chunk_size))):
        stop = min(n, start + max(1, int(chunk_size)))
        # Each participant's regions x features block column-major (regions contiguous),
        # the layout of a per-participant table's values: numpy's sums then run in the same
        # order, and the results equal ms_matrix's bit for bit, not only to rounding.
        chunk = np.ascontiguousarray(np.swapaxes(x[start:stop], -1, -2)).swapaxes(-1, -2)
        out[start:stop] = ms_matrices(chunk)
    return out


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
