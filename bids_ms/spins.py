"""Spatial permutation ("spin") tests on the Desikan–Killiany parcellation.

Implements Martins et al. 2022, *PAIN*, §2.14: the significance of a correlation between
two cortical maps is judged against correlations of one map with randomly rotated
versions of the other, rotations that keep the maps' spatial autocorrelation.

Method (Alexander-Bloch et al. 2018, *NeuroImage* 178:540; Váša et al. 2018, *Cereb
Cortex* 28:281, the ``rotate_parcellation`` MATLAB code the paper cites):

1. each region is represented by its centroid on the FreeSurfer sphere (fsaverage5);
2. a rotation drawn uniformly from SO(3) is applied to the left hemisphere's centroids;
   the right hemisphere gets the same rotation mirrored across the mid-sagittal plane
   (``R_right = F R_left F`` with ``F = diag(-1, 1, 1)``), so that the null keeps the
   hemispheric symmetry;
3. within each hemisphere, rotated regions are matched one-to-one to the original
   regions minimising the total Euclidean distance (the Hungarian algorithm,
   :func:`scipy.optimize.linear_sum_assignment`), so every region's value is used
   exactly once per rotation;
4. ``p_spin = (1 + #{|r_null| >= |r_obs|}) / (1 + n_spins)``.

The code is written for this project (no code copied). Speed: rotations, rotated
coordinates and distance matrices are computed for all spins at once with numpy; when
the nearest-neighbour matching of a rotation is already one-to-one it is the optimal
assignment (each row attains its minimum), so the Hungarian solver runs only on the
rotations where it is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from .atlas import DK_REGIONS, hemisphere_of

__all__ = [
    "CENTROIDS_FILE",
    "load_dk_centroids",
    "random_rotations",
    "spin_permutations",
    "spin_test",
    "spin_null_correlations",
    "spin_pvalue",
    "SpinSet",
]

#: Package file holding the DK centroids on the fsaverage5 sphere (see data/atlas/PROVENANCE.md).
CENTROIDS_FILE = "atlas-DK_space-fsaverage5_desc-sphere_centroids.tsv"

_MIRROR = np.diag([-1.0, 1.0, 1.0])
_BATCH = 1024  # rotations whose distance matrices are held in memory at once


@lru_cache(maxsize=1)
def _centroids_table() -> pd.DataFrame:
    path = resources.files("bids_ms") / "data" / "atlas" / CENTROIDS_FILE
    with resources.as_file(path) as p:
        table = pd.read_csv(p, sep="\t", index_col="region")
    return table


def load_dk_centroids() -> pd.DataFrame:
    """Centroids of the 68 DK regions on the fsaverage sphere.

    Returns
    -------
    pandas.DataFrame
        Index :data:`bids_ms.atlas.DK_REGIONS` (canonical order), columns ``x, y, z``
        (sphere of radius 100 mm, each hemisphere's sphere centred on the origin, as
        FreeSurfer's ``?h.sphere``).

    References
    ----------
    Martins et al. 2022, §2.14. Derivation: ``bids_ms/data/atlas/PROVENANCE.md``.
    """
    table = _centroids_table()
    return table.loc[list(DK_REGIONS), ["x", "y", "z"]].copy()


def random_rotations(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` rotation matrices uniformly (Haar measure) from SO(3).

    QR decomposition of a matrix of independent standard normals, with the signs of
    R's diagonal moved into Q (Mezzadri 2007, *Notices AMS* 54:592), then a column
    flipped where the determinant is -1.

    Returns
    -------
    ndarray, shape (n, 3, 3)
    """
    gauss = rng.standard_normal((n, 3, 3))
    q, r = np.linalg.qr(gauss)
    signs = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
    signs[signs == 0] = 1.0
    q = q * signs[:, None, :]
    det = np.linalg.det(q)
    q[det < 0, :, 0] *= -1.0
    return q


def _hemisphere_codes(hemispheres: Sequence[str], n_regions: int) -> np.ndarray:
    codes = []
    for h in hemispheres:
        key = str(h).strip().lower()
        if key in {"l", "lh", "left", "0"}:
            codes.append(0)
        elif key in {"r", "rh", "right", "1"}:
            codes.append(1)
        else:
            raise ValueError(f"hemisphere must be 'L' or 'R' (or lh/rh), got {h!r}")
    if len(codes) != n_regions:
        raise ValueError(
            f"{len(codes)} hemisphere labels for {n_regions} coordinates; give one per region"
        )
    return np.asarray(codes, dtype=int)


def _assign(coords: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """One-to-one matching of rotated to original points for a batch of rotations.

    Parameters
    ----------
    coords : ndarray, shape (m, 3)
    rotations : ndarray, shape (b, 3, 3)
        Row-vector convention: the rotated points are ``coords @ R``.

    Returns
    -------
    ndarray, shape (b, m), int
        ``out[k, i]`` is the (local) index of the region whose rotated centroid is
        assigned to original position ``i``, minimising the summed Euclidean distance.
    """
    sq = np.einsum("ij,ij->i", coords, coords)
    rotated = coords @ rotations  # (b, m, 3); rotation keeps each point's norm
    # |c_i - r_j|^2 = |c_i|^2 + |c_j|^2 - 2 c_i . r_j, computed with one batched matmul.
    dist = np.matmul(rotated, coords.T)  # (b, j, i) = r_j . c_i
    dist = np.swapaxes(dist, 1, 2)  # (b, i, j)
    dist *= -2.0
    dist += sq[:, None]
    dist += sq[None, :]
    np.maximum(dist, 0.0, out=dist)
    np.sqrt(dist, out=dist)
    out = np.argmin(dist, axis=2)
    # Nearest-neighbour matching that is already a bijection is optimal for the
    # linear assignment problem; solve the others exactly (Hungarian / Jonker-Volgenant).
    srt = np.sort(out, axis=1)
    bijective = np.all(srt == np.arange(coords.shape[0])[None, :], axis=1)
    for k in np.flatnonzero(~bijective):
        out[k] = linear_sum_assignment(dist[k])[1]
    return out


def spin_permutations(
    coords: np.ndarray,
    hemispheres: Sequence[str],
    *,
    n_spins: int,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Spin permutations of regions, one per random rotation of the sphere.

    Parameters
    ----------
    coords : ndarray, shape (n_regions, 3)
        Region centroids on the sphere (e.g. ``load_dk_centroids().to_numpy()``, or a
        subset of its rows, such as the 34 left-hemisphere regions).
    hemispheres : sequence of str
        ``'L'``/``'R'`` (or ``lh``/``rh``) for every region.
    n_spins : int
        Number of rotations (>= 0).
    seed : int, numpy.random.Generator or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same spins.

    Returns
    -------
    ndarray, shape (n_spins, n_regions), int
        Row ``k`` is a permutation of ``range(n_regions)`` that maps regions only to
        regions of the same hemisphere; the null map ``k`` of a map ``x`` is
        ``x[perm[k]]``.

    Notes
    -----
    The right hemisphere's rotation is the left's mirrored across x = 0, so a map that
    is symmetric between the hemispheres stays symmetric under every spin.

    References
    ----------
    Martins et al. 2022, §2.14; Alexander-Bloch et al. 2018, NeuroImage 178:540;
    Váša et al. 2018, Cereb Cortex 28:281.
    """
    xyz = np.asarray(coords, dtype=float)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"coords must have shape (n_regions, 3), got {xyz.shape}")
    if not np.all(np.isfinite(xyz)):
        raise ValueError("coords contain NaN or infinite values")
    n_spins = int(n_spins)
    if n_spins < 0:
        raise ValueError(f"n_spins must be >= 0, got {n_spins}")
    hemi = _hemisphere_codes(hemispheres, xyz.shape[0])
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    perms = np.empty((n_spins, xyz.shape[0]), dtype=np.intp)
    if n_spins == 0:
        return perms
    rotations = random_rotations(n_spins, rng=rng)
    # Row-vector convention: rotated = coords @ R.
    mirrored = _MIRROR @ rotations @ _MIRROR
    for h, rots in ((0, rotations), (1, mirrored)):
        idx = np.flatnonzero(hemi == h)
        if idx.size == 0:
            continue
        sub = xyz[idx]
        for start in range(0, n_spins, _BATCH):
            stop = min(start + _BATCH, n_spins)
            perms[start:stop, idx] = idx[_assign(sub, rots[start:stop])]
    return perms


def _standardise_rows(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / norm


def spin_null_correlations(
    x: np.ndarray, y: np.ndarray, perms: np.ndarray, *, method: str = "spearman"
) -> tuple[float, np.ndarray]:
    """Observed correlation of ``x`` and ``y`` and the correlations of ``x[perm]`` with ``y``.

    Parameters
    ----------
    x, y : array_like, shape (n_regions,)
    perms : ndarray, shape (n_spins, n_regions)
        From :func:`spin_permutations`.
    method : {'spearman', 'pearson'}

    Returns
    -------
    (float, ndarray of shape (n_spins,))
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    p = np.asarray(perms)
    if xa.shape != ya.shape:
        raise ValueError(f"maps differ in length: {xa.size} and {ya.size}")
    if p.ndim != 2 or p.shape[1] != xa.size:
        raise ValueError(f"perms must have shape (n_spins, {xa.size}), got {p.shape}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("maps contain NaN or infinite values; restrict them to shared regions")
    if method == "spearman":
        # Ranks of a permuted map are the permuted ranks, so ranking happens once.
        xa, ya = rankdata(xa), rankdata(ya)
    elif method != "pearson":
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    xs = _standardise_rows(xa)
    ys = _standardise_rows(ya)
    observed = float(np.clip(xs @ ys, -1.0, 1.0))
    null = xs[p] @ ys if p.shape[0] else np.empty(0)
    return observed, np.clip(null, -1.0, 1.0)


def spin_pvalue(observed: float, null: np.ndarray) -> float:
    """Two-sided spin p: ``(1 + #{|null| >= |observed|}) / (1 + n)`` (NaN when n = 0)."""
    null = np.asarray(null, dtype=float)
    if null.size == 0 or not np.isfinite(observed):
        return float("nan")
    # A tiny tolerance so that a null equal to the observed value up to rounding counts.
    hits = np.count_nonzero(np.abs(null) >= abs(observed) - 1e-12)
    return (1.0 + hits) / (1.0 + null.size)


def spin_test(
    x: np.ndarray, y: np.ndarray, perms: np.ndarray, *, method: str = "spearman"
) -> tuple[float, float]:
    """Correlation of two regional maps and its spin-test p value.

    Parameters
    ----------
    x : array_like, shape (n_regions,)
        The map that is rotated: null map ``k`` is ``x[perms[k]]``.
    y : array_like, shape (n_regions,)
    perms : ndarray, shape (n_spins, n_regions)
        From :func:`spin_permutations` on the same regions, in the same order.
    method : {'spearman', 'pearson'}
        Spearman by default (Martins et al. 2022, §2.14).

    Returns
    -------
    rho : float
    p_spin : float
        ``(1 + #{|rho_null| >= |rho|}) / (1 + n_spins)``; NaN if ``perms`` is empty.

    References
    ----------
    Martins et al. 2022, §2.14; Alexander-Bloch et al. 2018, NeuroImage 178:540.
    """
    rho, null = spin_null_correlations(x, y, perms, method=method)
    return rho, spin_pvalue(rho, null)


class SpinSet:
    """One run's spin permutations, computed once and shared by every spin test of the run.

    The rotations are drawn once, for all 68 DK regions, from ``numpy.random.default_rng(seed)``.
    A request for whole hemispheres (e.g. the 34 left regions of the transcriptomic stage) is
    answered from that one set: the left hemisphere's rotation does not depend on the right's
    regions, so the restriction equals what :func:`spin_permutations` would give for the left
    centroids alone with the same seed. Any other subset of regions (a map with missing regions)
    is computed once from its own centroids with the same seed, and kept.

    Parameters
    ----------
    n_spins : int
        Number of rotations (0 gives empty permutation arrays).
    seed : int
        The run's spin seed.
    """

    def __init__(self, *, n_spins: int, seed: int):
        self.n_spins = int(n_spins)
        self.seed = int(seed)
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def perms(self, regions: Sequence[str]) -> np.ndarray:
        """Permutations of ``regions`` (DK names), shape ``(n_spins, len(regions))``."""
        key = tuple(regions)
        if key in self._cache:
            return self._cache[key]
        if self.n_spins == 0:
            self._cache[key] = np.empty((0, len(key)), dtype=np.intp)
            return self._cache[key]
        hemis = [hemisphere_of(r) for r in key]
        full = tuple(DK_REGIONS)
        whole = {h: [r for r in full if hemisphere_of(r) == h] for h in ("L", "R")}
        if sorted(key) == sorted(r for h in set(hemis) for r in whole[h]):
            all_perms = self.perms(full) if key != full else None
            if all_perms is not None:
                index = {r: i for i, r in enumerate(full)}
                rows = np.array([index[r] for r in key])
                position = np.full(len(full), -1, dtype=np.intp)
                position[rows] = np.arange(len(key))
                self._cache[key] = position[all_perms[:, rows]]
                return self._cache[key]
        coords = load_dk_centroids().loc[list(key)].to_numpy()
        self._cache[key] = spin_permutations(coords, hemis, n_spins=self.n_spins, seed=self.seed)
        return self._cache[key]
