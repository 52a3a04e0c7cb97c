"""Partial least squares regression of a regional map on gene expression (Martins et al. 2022, §2.10).

The predictors are the expression of every gene across regions (``X``, regions × genes), the
response is one regional map (``y``, e.g. the case–control t-map of the 34 left cortical DK
regions). Both are z-scored across regions (``ddof=1``, as scikit-learn's ``PLSRegression(scale=True)``).

Why this is fast
----------------
With a single response, PLS (NIPALS and SIMPLS coincide for one ``y``; de Jong 1993) has closed forms:

* the first weight vector is ``w1 = Xᵀy / ‖Xᵀy‖``; with z-scored data ``Xᵀy = (n−1)·r`` where ``r`` is the
  vector of gene–map Pearson correlations, so PLS1 weights are the normalised correlations;
* the score vectors ``t_k`` depend on ``X`` only through the ``n × n`` kernel ``K = XXᵀ``
  (kernel PLS; Lindgren, Geladi & Wold 1993): ``t_k = K_k y_k`` with ``K_{k+1} = (I−P_k) K_k (I−P_k)``,
  ``y_{k+1} = (I−P_k) y_k`` and ``P_k`` the projection on ``t_k``. The variance of ``y`` explained by
  component ``k`` is ``(yᵀt_k)² / (‖t_k‖² ‖y‖²)`` (scores are mutually orthogonal), the quantity MATLAB's
  ``plsregress`` reports as ``PCTVAR(2, k)``.

So permutations and spins of the response cost ``O(n²)`` per component and response, whatever the
number of genes, and all of them run as one batched array operation. Bootstraps resample regions;
each resample's PLS1 weights are the (normalised) weighted gene–map correlations, computed for a
chunk of resamples at once from three matrix products with the resample-count matrix.

References
----------
Martins D, et al. (2022) PAIN 163:e759–e773, §2.10 and §3.6.
Whitaker KJ, Vértes PE, et al. (2016) PNAS 113:9105 (PLS bootstrap of gene weights, Z = w / SE).
de Jong S (1993) Chemometr Intell Lab Syst 18:251 (SIMPLS; equals NIPALS for a single response).
Lindgren F, Geladi P, Wold S (1993) J Chemometrics 7:45 (kernel PLS).
Benjamini Y, Hochberg Y (1995) J R Stat Soc B 57:289.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .models import fdr_bh  # one Benjamini–Hochberg for the whole package

__all__ = [
    "zscore",
    "fdr_bh",
    "PLSFit",
    "pls_fit",
    "pls_var_explained_batch",
    "pls_permutation_test",
    "bootstrap_indices",
    "pls1_bootstrap",
    "pls1_bootstrap_maps",
    "null_list_sizes",
    "pls1_score_correlation_null",
    "PLSAnalysis",
    "run_pls",
]


def zscore(a: np.ndarray, *, axis: int = 0, ddof: int = 1) -> np.ndarray:
    """Z-score ``a`` along ``axis`` (mean 0, standard deviation 1 with ``ddof``).

    Raises
    ------
    ValueError
        A column (or row) is constant, or holds NaN.
    """
    a = np.asarray(a, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError("the data hold NaN or infinite values")
    sd = a.std(axis=axis, ddof=ddof, keepdims=True)
    if np.any(sd == 0):
        raise ValueError("the data hold a constant column; it cannot be z-scored")
    return (a - a.mean(axis=axis, keepdims=True)) / sd


@dataclass
class PLSFit:
    """A PLS regression of one response on many predictors.

    Attributes
    ----------
    weights : ndarray, shape (n_genes, n_components)
        Unit-norm X weights (scikit-learn's ``x_weights_``), PLS1 sign-aligned so that its scores
        correlate positively with the response.
    scores : ndarray, shape (n_regions, n_components)
        X scores ``t_k`` (scikit-learn's ``x_scores_``).
    var_explained : ndarray, shape (n_components,)
        Fraction of the response's variance explained by each component.
    """

    weights: np.ndarray
    scores: np.ndarray
    var_explained: np.ndarray

    @property
    def var_explained_cumulative(self) -> np.ndarray:
        return np.cumsum(self.var_explained)


def _max_components(n_regions: int, n_components: int) -> int:
    # Centred data have rank <= n - 1; the last possible component explains what is left.
    return max(1, min(int(n_components), n_regions - 2))


def pls_fit(X: np.ndarray, y: np.ndarray, *, n_components: int = 15) -> PLSFit:
    """Fit PLS regression with one response (NIPALS deflation), after z-scoring ``X`` and ``y``.

    Parameters
    ----------
    X : ndarray, shape (n_regions, n_genes)
    y : ndarray, shape (n_regions,)
    n_components : int
        Number of components; capped at ``n_regions - 2``.

    Returns
    -------
    PLSFit

    References
    ----------
    Martins et al. 2022, §2.10 (components 1–15, variance explained by each).
    """
    Xz = zscore(X)
    yz = zscore(np.asarray(y, dtype=float).ravel())
    n = Xz.shape[0]
    k_max = _max_components(n, n_components)
    weights, scores, r2 = [], [], []
    Xk, yk = Xz.copy(), yz.copy()
    ss_y = float(yz @ yz)
    for _ in range(k_max):
        w = Xk.T @ yk
        norm = np.linalg.norm(w)
        if norm < 1e-12:
            break
        w /= norm
        t = Xk @ w
        tt = float(t @ t)
        weights.append(w)
        scores.append(t)
        r2.append(float(yz @ t) ** 2 / (tt * ss_y))
        p_load = Xk.T @ t / tt
        Xk -= np.outer(t, p_load)
        yk = yk - t * (yk @ t) / tt
    W = np.column_stack(weights)
    T = np.column_stack(scores)
    if np.corrcoef(T[:, 0], yz)[0, 1] < 0:  # never happens for one y (yᵀXXᵀy ≥ 0); kept explicit
        W[:, 0] *= -1
        T[:, 0] *= -1
    return PLSFit(weights=W, scores=T, var_explained=np.asarray(r2))


def pls_var_explained_batch(K: np.ndarray, Y: np.ndarray, *, n_components: int = 15) -> np.ndarray:
    """Variance explained per component for many responses at once (kernel PLS).

    For one response the PLS1 scores ``t_1..t_k`` span the Krylov space
    ``{Ky, K²y, …, Kᵏy}`` (Helland 1988), in that order; so the orthonormalised Krylov sequence
    (Lanczos with full re-orthogonalisation) gives the unit score vectors ``t̂_k`` and the
    variance of ``y`` explained by component ``k`` is ``(ŷᵀt̂_k)²`` for unit-norm centred ``ŷ``.
    The kernel is shared by all responses, so each step is one ``n × n`` by ``n × B`` product.

    Parameters
    ----------
    K : ndarray, shape (n_regions, n_regions)
        ``Xz @ Xz.T`` of the z-scored expression matrix.
    Y : ndarray, shape (n_responses, n_regions)
        Responses (each is centred and scaled here).
    n_components : int

    Returns
    -------
    ndarray, shape (n_responses, n_components)

    References
    ----------
    Helland IS (1988) Commun Stat Simul Comput 17:581 (PLS1 and Krylov sequences).
    """
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    B, n = Y.shape
    k_max = _max_components(n, n_components)
    Yc = Y - Y.mean(axis=1, keepdims=True)
    norm = np.sqrt((Yc**2).sum(axis=1, keepdims=True))
    norm[norm == 0] = np.nan
    Y0 = (Yc / norm).T  # (n, B), unit-norm columns
    Q = np.zeros((k_max, n, B))
    out = np.zeros((B, k_max))
    scale = np.abs(K).max() or 1.0
    v = K @ Y0
    for k in range(k_max):
        for _ in range(2):  # classical Gram–Schmidt, twice ("twice is enough")
            if k:
                coef = np.einsum("knb,nb->kb", Q[:k], v)
                v -= np.einsum("knb,kb->nb", Q[:k], coef)
        vn = np.linalg.norm(v, axis=0)
        ok = vn > 1e-10 * scale * (np.linalg.norm(Y0, axis=0) + 1)
        q = np.where(ok, v / np.where(ok, vn, 1.0), 0.0)
        Q[k] = q
        out[:, k] = np.nan_to_num(np.einsum("nb,nb->b", Y0, q) ** 2)
        v = K @ q
    return out


def pls_permutation_test(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_components: int = 15,
    n_perm: int = 1000,
    seed: int | np.random.Generator | None = None,
    perms: np.ndarray | None = None,
    chunk: int = 1000,
) -> dict:
    """Permutation p-values of the variance explained by PLS components (Martins et al. 2022, §2.10).

    The response is permuted across regions (or re-ordered by the given ``perms``, e.g. spin
    permutations), PLS is refitted, and the variance explained is compared with the observed one.

    Parameters
    ----------
    X, y : ndarray
        Expression (regions × genes) and response (regions).
    n_components : int
    n_perm : int
        Number of random permutations (ignored when ``perms`` is given; 0 switches the test off).
    seed : int or Generator, optional
    perms : ndarray, shape (n_null, n_regions), optional
        Index arrays; null response ``k`` is ``y[perms[k]]`` (the spin convention of
        :mod:`bids_ms.spins`).
    chunk : int
        Null responses processed per batch (memory ~ ``chunk × n_regions² × 8`` bytes).

    Returns
    -------
    dict
        ``var_explained`` (per component), ``var_explained_cumulative``, ``p_perm_cumulative``
        (the model with components 1..k against its permuted counterparts, as the reference MATLAB
        code ``PLS_calculate_stats.m`` does), ``p_perm_component`` (component k alone), ``n_null``.
        p-values are ``(1 + #{null ≥ observed}) / (1 + n_null)``; NaN when there is no null.
    """
    Xz = zscore(X)
    yz = zscore(np.asarray(y, dtype=float).ravel())
    K = Xz @ Xz.T
    obs = pls_var_explained_batch(K, yz[None, :], n_components=n_components)[0]
    obs_cum = np.cumsum(obs)
    if (perms is None and n_perm <= 0) or (perms is not None and len(perms) == 0):
        nan = np.full(obs.shape, np.nan)
        return {
            "var_explained": obs,
            "var_explained_cumulative": obs_cum,
            "p_perm_cumulative": nan,
            "p_perm_component": nan.copy(),
            "n_null": 0,
        }
    if perms is None:
        rng = np.random.default_rng(seed)
        perms = np.argsort(rng.random((n_perm, yz.size)), axis=1)
    perms = np.asarray(perms, dtype=int)
    n_null = perms.shape[0]
    ge_cum = np.zeros(obs.size)
    ge_comp = np.zeros(obs.size)
    tol = 1e-12
    for start in range(0, n_null, chunk):
        Yn = yz[perms[start : start + chunk]]
        null = pls_var_explained_batch(K, Yn, n_components=n_components)
        ge_comp += (null >= obs - tol).sum(axis=0)
        ge_cum += (np.cumsum(null, axis=1) >= obs_cum - tol).sum(axis=0)
    return {
        "var_explained": obs,
        "var_explained_cumulative": obs_cum,
        "p_perm_cumulative": (1 + ge_cum) / (1 + n_null),
        "p_perm_component": (1 + ge_comp) / (1 + n_null),
        "n_null": n_null,
    }


def bootstrap_indices(
    n_regions: int, *, n_boot: int, seed: int | np.random.Generator | None = None
) -> np.ndarray:
    """Regions resampled with replacement: an ``(n_boot, n_regions)`` integer array."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_regions, size=(n_boot, n_regions))


def pls1_bootstrap(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = None,
    indices: np.ndarray | None = None,
    chunk: int = 100,
) -> dict:
    """Bootstrap standard errors and Z scores of PLS1 gene weights (Martins et al. 2022, §2.10).

    Regions are resampled with replacement; in each resample ``X`` and ``y`` are z-scored again
    and PLS1 refitted (``w_b = X_bᵀy_b / ‖X_bᵀy_b‖``); each ``w_b`` is sign-aligned to the
    original weights (flipped when their Pearson correlation is negative, as the reference code
    ``PLS_bootstrap.m`` of Whitaker et al. 2016 does). ``SE`` is the standard deviation
    (``ddof=1``) of the aligned bootstrap weights and ``Z = w / SE``.

    Unit-norm weights are used throughout (scikit-learn's ``x_weights_``, refitted with
    ``scale=True`` in each resample — what the tests compare with). The reference MATLAB code
    centres but does not rescale each resample and uses ``plsregress``'s ``stats.W``, which is
    divided by the score norm; the Z of the two conventions differ slightly, not their ranking's
    intent.

    Parameters
    ----------
    X, y : ndarray
        Expression (regions × genes) and response (regions).
    n_boot : int
        Number of bootstrap resamples (ignored when ``indices`` is given).
    seed : int or Generator, optional
    indices : ndarray, shape (n_boot, n_regions), optional
        Resamples to use (see :func:`bootstrap_indices`).
    chunk : int
        Resamples computed at once (memory ~ ``4 × chunk × n_genes × 8`` bytes).

    Returns
    -------
    dict
        ``weight`` (PLS1 weights of the full data), ``se``, ``z``, ``n_boot``, ``n_degenerate``
        (resamples in which a gene or the response was constant: those genes get weight 0 there).
    """
    Xz = zscore(X)
    yz = zscore(np.asarray(y, dtype=float).ravel())
    n, p = Xz.shape
    w0 = Xz.T @ yz
    w0 /= np.linalg.norm(w0)
    if indices is None:
        indices = bootstrap_indices(n, n_boot=n_boot, seed=seed)
    indices = np.asarray(indices, dtype=int)
    B = indices.shape[0]
    w0c = w0 - w0.mean()
    s1 = np.zeros(p)
    s2 = np.zeros(p)
    Xsq = Xz**2
    n_degenerate = 0
    rows = np.arange(chunk)
    for start in range(0, B, chunk):
        idx = indices[start : start + chunk]
        b = idx.shape[0]
        # C[i, j] = how often region j is drawn in resample i, over n: weighted moments are matmuls
        C = np.zeros((b, n))
        np.add.at(C, (np.repeat(rows[:b], n), idx.ravel()), 1.0 / n)
        Cy = C * yz
        my = Cy.sum(axis=1)
        mx = C @ Xz
        cov = Cy @ Xz
        mx_my = mx * my[:, None]
        cov -= mx_my
        vx = C @ Xsq
        mx *= mx
        vx -= mx
        np.sqrt(vx, out=vx)
        with np.errstate(invalid="ignore", divide="ignore"):
            cov /= vx  # ∝ the resample's gene–map correlations (the y scale cancels below)
        bad = ~np.isfinite(cov)
        if bad.any():
            n_degenerate += int(bad.any(axis=1).sum())
            cov[bad] = 0.0
        norm2 = np.einsum("ij,ij->i", cov, cov)
        norm2[norm2 == 0] = 1.0
        # sign alignment: Pearson r(w_b, w0) has the sign of (w_b - mean)·(w0 - mean) = w_b·w0c
        sign = np.sign(cov @ w0c)
        sign[sign == 0] = 1.0
        s1 += (sign / np.sqrt(norm2)) @ cov
        s2 += (1.0 / norm2) @ (cov * cov)
    if B > 1:
        var = (s2 - s1**2 / B) / (B - 1)
        se = np.sqrt(np.clip(var, 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, w0 / se, np.nan)
    else:
        se = np.full(p, np.nan)
        z = np.full(p, np.nan)
    return {"weight": w0, "se": se, "z": z, "n_boot": B, "n_degenerate": n_degenerate}


def _count_matrix(idx: np.ndarray, n: int) -> np.ndarray:
    """``C[i, j]`` = how often region ``j`` is drawn in resample ``i``, over ``n``."""
    b = idx.shape[0]
    C = np.zeros((b, n))
    np.add.at(C, (np.repeat(np.arange(b), idx.shape[1]), idx.ravel()), 1.0 / idx.shape[1])
    return C


def pls1_bootstrap_maps(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    indices: np.ndarray,
    chunk: int | None = None,
    dtype: type = np.float64,
) -> dict:
    """Bootstrap Z of PLS1 gene weights for many response maps sharing the same resamples.

    The same computation as :func:`pls1_bootstrap` (Martins et al. 2022, §2.10; Whitaker et al.
    2016) for every row of ``Y`` at once: in resample ``b`` region ``j`` is drawn ``c_bj`` times,
    so the resample's gene means and variances are weighted by the counts and are shared by
    all maps (two products ``C X`` and ``C X²``). For map ``m`` the resample's PLS1 weights are
    ``u_bm = e_bmᵀ X D_b`` up to their norm, with ``e_bm = c_b ⊙ (y_m − ȳ_bm)`` and
    ``D_b`` the inverse standard deviations of the genes in the resample; all maps and
    resamples of a chunk are one matrix product ``E X`` (Bc·M × n by n × p). The norms, the
    sign alignment with the map's own weights and the sums of the aligned weights and of their
    squares are contractions (einsum) over that block.

    Parameters
    ----------
    X : ndarray, shape (n_regions, n_genes)
    Y : ndarray, shape (n_maps, n_regions)
        Response maps (e.g. spun copies of the response).
    indices : ndarray, shape (n_boot, n_regions)
        Bootstrap resamples (see :func:`bootstrap_indices`), the same for every map.
    chunk : int, optional
        Resamples per batch (default 100); maps go in groups so that about 8e6 weights are
        held at once.
    dtype : numpy dtype
        Precision of the large products (``float32`` halves time and memory; Z then agree with
        ``float64`` to about 1e-5 relative).

    Returns
    -------
    dict
        ``weight`` (n_maps × n_genes, unit-norm PLS1 weights of the full data), ``se``, ``z``,
        ``n_boot``.
    """
    Xz = zscore(X)
    Yz = zscore(np.atleast_2d(np.asarray(Y, dtype=float)), axis=1)
    n, p = Xz.shape
    M = Yz.shape[0]
    W0 = Yz @ Xz
    W0 /= np.linalg.norm(W0, axis=1, keepdims=True)
    W0c = (W0 - W0.mean(axis=1, keepdims=True)).astype(dtype)
    indices = np.asarray(indices, dtype=int)
    B = indices.shape[0]
    if chunk is None:
        chunk = 100
    group = max(1, int(8e6 // (chunk * p)))  # maps per product: about 8e6 weights at once
    Xd = Xz.astype(dtype)
    Xsq = Xz**2
    s1 = np.zeros((M, p))
    s2 = np.zeros((M, p))
    for start in range(0, B, chunk):
        C = _count_matrix(indices[start : start + chunk], n)
        b = C.shape[0]
        # shared by all maps: the resample's gene means and inverse standard deviations
        mx = C @ Xz
        vx = C @ Xsq - mx**2
        ok = vx > 1e-12
        D = np.where(ok, 1.0 / np.sqrt(np.where(ok, vx, 1.0)), 0.0)
        Dd = D.astype(dtype)
        my = C @ Yz.T  # (b, M)
        for m0 in range(0, M, group):
            m1 = min(M, m0 + group)
            g = m1 - m0
            E = C[None, :, :] * (Yz[m0:m1, None, :] - my[:, m0:m1].T[:, :, None])  # (g, b, n)
            U = (E.reshape(g * b, n).astype(dtype) @ Xd).reshape(g, b, p)
            U *= Dd[None]
            # (einsum rather than stacked matmul: these are matrix-vector products, memory-bound)
            norm2 = np.einsum("mbg,mbg->mb", U, U).astype(float)
            norm2[norm2 <= 0] = 1.0
            t = np.einsum("mbg,mg->mb", U, W0c[m0:m1])
            sign = np.where(t < 0, -1.0, 1.0)
            # the aligned unit-norm weights of every map and resample, then their sums
            U *= (sign / np.sqrt(norm2)).astype(dtype)[:, :, None]
            s1[m0:m1] += np.einsum("mbg->mg", U)
            s2[m0:m1] += np.einsum("mbg,mbg->mg", U, U)
    if B > 1:
        var = (s2 - s1**2 / B) / (B - 1)
        se = np.sqrt(np.clip(var, 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, W0 / se, np.nan)
    else:
        se = np.full((M, p), np.nan)
        z = np.full((M, p), np.nan)
    return {"weight": W0, "se": se, "z": z, "n_boot": B}


def null_list_sizes(
    X: np.ndarray,
    y: np.ndarray,
    *,
    perms: np.ndarray,
    indices: np.ndarray,
    threshold: float,
    dtype: type = np.float32,
) -> dict:
    """PLS1+ / PLS1− list sizes on null (spun) response maps (Fulcher et al. 2021).

    Every null map ``y[perms[k]]`` goes through the same bootstrap (the same resamples,
    ``indices``) and the same threshold as the observed map; the counts of genes with
    ``Z > threshold`` and ``Z < −threshold`` are the list sizes expected with no real
    association between expression and the map beyond what spatial autocorrelation produces.

    Returns
    -------
    dict
        ``plus``, ``minus`` (int arrays, one entry per null map), ``n_null_maps``.
    """
    perms = np.asarray(perms, dtype=int)
    if perms.shape[0] == 0 or np.asarray(indices).shape[0] < 2:
        return {"plus": np.zeros(0, int), "minus": np.zeros(0, int), "n_null_maps": 0}
    yv = np.asarray(y, dtype=float).ravel()
    res = pls1_bootstrap_maps(X, yv[perms], indices=indices, dtype=dtype)
    z = np.nan_to_num(res["z"], nan=0.0)
    return {
        "plus": (z > threshold).sum(axis=1),
        "minus": (z < -threshold).sum(axis=1),
        "n_null_maps": int(perms.shape[0]),
    }


def pls1_score_correlation_null(
    X: np.ndarray, y: np.ndarray, *, perms: np.ndarray, chunk: int = 2000
) -> tuple[float, float]:
    """Correlation of PLS1 scores with the response and its p against spun (or permuted) maps.

    PLS1 scores are fitted to the response, so a fixed score map cannot be tested against spun
    copies of the response without circularity; here PLS1 is refitted to every null response
    (``y[perms[k]]``) and the observed ``r`` is compared with the refitted ones (one-sided:
    PLS1 is sign-aligned so that ``r ≥ 0``).

    Returns
    -------
    r : float
        Pearson correlation of PLS1 scores with the response (Martins et al. 2022, §3.6).
    p : float
        ``(1 + #{r_null ≥ r}) / (1 + n_null)``; NaN when ``perms`` is empty.
    """
    Xz = zscore(X)
    yz = zscore(np.asarray(y, dtype=float).ravel())
    K = Xz @ Xz.T

    def _r(Y: np.ndarray) -> np.ndarray:
        T = Y @ K  # (b, n): PLS1 scores up to scale, t = K y (K symmetric)
        Tc = T - T.mean(axis=1, keepdims=True)
        Yc = Y - Y.mean(axis=1, keepdims=True)
        num = (Tc * Yc).sum(axis=1)
        den = np.sqrt((Tc**2).sum(axis=1) * (Yc**2).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / den

    r_obs = float(_r(yz[None, :])[0])
    perms = np.asarray(perms, dtype=int)
    if perms.size == 0:
        return r_obs, float("nan")
    count = 0
    for start in range(0, perms.shape[0], chunk):
        rn = _r(yz[perms[start : start + chunk]])
        count += int(np.sum(rn >= r_obs - 1e-12))
    return r_obs, (1 + count) / (1 + perms.shape[0])


@dataclass
class PLSAnalysis:
    """Everything §2.10 reports for one response map.

    ``p_perm_*`` are the p-values of the null chosen with ``perm_null``; ``p_shuffle`` and
    ``p_spin`` (cumulative, components 1..k) are both kept whenever their null was run (NaN
    otherwise). ``null_list_size`` holds the PLS1+/PLS1− list sizes of null (spun) maps.
    """

    fit: PLSFit
    var_explained: np.ndarray
    var_explained_cumulative: np.ndarray
    p_perm_cumulative: np.ndarray
    p_perm_component: np.ndarray
    n_perm: int
    weight: np.ndarray
    se: np.ndarray
    z: np.ndarray
    p: np.ndarray
    p_fdr: np.ndarray
    n_boot: int
    extra: dict = field(default_factory=dict)
    perm_null: str = "shuffle"
    p_shuffle: np.ndarray | None = None
    p_spin: np.ndarray | None = None
    n_shuffle: int = 0
    n_spin: int = 0
    null_list_size: dict | None = None


def run_pls(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_components: int = 15,
    n_perm: int = 1000,
    perms: np.ndarray | None = None,
    spin_perms: np.ndarray | None = None,
    perm_null: str | None = None,
    n_boot: int = 1000,
    seed: int | None = None,
    null_maps: np.ndarray | None = None,
    z_threshold: float = 3.0,
) -> PLSAnalysis:
    """PLS of a response map on gene expression with permutation test and bootstrap (§2.10).

    Parameters
    ----------
    X : ndarray, shape (n_regions, n_genes)
    y : ndarray, shape (n_regions,)
    n_components : int
    n_perm : int
        Random permutations of the response (0: no shuffle test), unless ``perms`` is given.
    perms : ndarray, optional
        Null re-orderings of the response used instead of random ones (the ``p_perm`` fields
        then come from them; kept for callers of the first version).
    spin_perms : ndarray, shape (n_spins, n_regions), optional
        Spin permutations: the spatial null of the components' variance explained, computed
        beside the shuffle null.
    perm_null : {'shuffle', 'spin'}, optional
        Which null fills ``p_perm_*``; default ``'spin'`` when ``spin_perms`` is given, else
        ``'shuffle'``.
    n_boot : int
        Bootstrap resamples (0: no bootstrap; Z, p and FDR are then NaN).
    seed : int, optional
        One seed; permutations and bootstraps draw from independent child streams.
    null_maps : ndarray, shape (n_null_maps, n_regions), optional
        Re-orderings of the response (spins) that go through the same bootstrap and threshold:
        the sizes of their PLS1+/PLS1− lists (:func:`null_list_sizes`).
    z_threshold : float
        Threshold of the lists (for ``null_maps``).

    Returns
    -------
    PLSAnalysis
    """
    ss = np.random.SeedSequence(seed)
    perm_seed, boot_seed = (np.random.default_rng(s) for s in ss.spawn(2))
    fit = pls_fit(X, y, n_components=n_components)
    shuffle = pls_permutation_test(
        X, y, n_components=n_components, n_perm=n_perm, seed=perm_seed, perms=perms
    )
    spin = None
    if spin_perms is not None:
        spin = pls_permutation_test(X, y, n_components=n_components, perms=spin_perms)
    if perm_null is None:
        perm_null = "spin" if spin is not None else "shuffle"
    if perm_null not in ("shuffle", "spin"):
        raise ValueError(f"perm_null must be 'shuffle' or 'spin', not {perm_null!r}")
    if perm_null == "spin" and spin is None:
        raise ValueError("perm_null='spin' needs spin_perms")
    chosen = spin if perm_null == "spin" else shuffle
    null_sizes = None
    if n_boot > 0:
        n = np.asarray(y).size
        indices = bootstrap_indices(n, n_boot=n_boot, seed=boot_seed)
        boot = pls1_bootstrap(X, y, indices=indices)
        z = boot["z"]
        p = 2 * stats.norm.sf(np.abs(z))
        extra = {"n_degenerate_bootstraps": boot["n_degenerate"]}
        se = boot["se"]
        if null_maps is not None:
            null_sizes = null_list_sizes(
                X, y, perms=null_maps, indices=indices, threshold=z_threshold
            )
    else:
        z = se = p = np.full(fit.weights.shape[0], np.nan)
        extra = {}
    return PLSAnalysis(
        fit=fit,
        var_explained=chosen["var_explained"],
        var_explained_cumulative=chosen["var_explained_cumulative"],
        p_perm_cumulative=chosen["p_perm_cumulative"],
        p_perm_component=chosen["p_perm_component"],
        n_perm=chosen["n_null"],
        weight=fit.weights[:, 0],
        se=se,
        z=z,
        p=p,
        p_fdr=fdr_bh(p),
        n_boot=n_boot if n_boot > 0 else 0,
        extra=extra,
        perm_null=perm_null,
        p_shuffle=shuffle["p_perm_cumulative"],
        p_spin=spin["p_perm_cumulative"] if spin is not None else None,
        n_shuffle=shuffle["n_null"],
        n_spin=spin["n_null"] if spin is not None else 0,
        null_list_size=null_sizes,
    )
