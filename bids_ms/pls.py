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
    """Everything §2.10 reports for one response map."""

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


def run_pls(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_components: int = 15,
    n_perm: int = 1000,
    perms: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int | None = None,
) -> PLSAnalysis:
    """PLS of a response map on gene expression with permutation test and bootstrap (§2.10).

    Parameters
    ----------
    X : ndarray, shape (n_regions, n_genes)
    y : ndarray, shape (n_regions,)
    n_components : int
    n_perm : int
        Random permutations of the response (0: no test), unless ``perms`` is given.
    perms : ndarray, optional
        Null re-orderings of the response (spin permutations) used instead of random ones.
    n_boot : int
        Bootstrap resamples (0: no bootstrap; Z, p and FDR are then NaN).
    seed : int, optional
        One seed; permutations and bootstraps draw from independent child streams.

    Returns
    -------
    PLSAnalysis
    """
    ss = np.random.SeedSequence(seed)
    perm_seed, boot_seed = (np.random.default_rng(s) for s in ss.spawn(2))
    fit = pls_fit(X, y, n_components=n_components)
    perm = pls_permutation_test(
        X, y, n_components=n_components, n_perm=n_perm, seed=perm_seed, perms=perms
    )
    if n_boot > 0:
        boot = pls1_bootstrap(X, y, n_boot=n_boot, seed=boot_seed)
        z = boot["z"]
        p = 2 * stats.norm.sf(np.abs(z))
        extra = {"n_degenerate_bootstraps": boot["n_degenerate"]}
        se = boot["se"]
    else:
        z = se = p = np.full(fit.weights.shape[0], np.nan)
        extra = {}
    return PLSAnalysis(
        fit=fit,
        var_explained=perm["var_explained"],
        var_explained_cumulative=perm["var_explained_cumulative"],
        p_perm_cumulative=perm["p_perm_cumulative"],
        p_perm_component=perm["p_perm_component"],
        n_perm=perm["n_null"],
        weight=fit.weights[:, 0],
        se=se,
        z=z,
        p=p,
        p_fdr=fdr_bh(p),
        n_boot=n_boot if n_boot > 0 else 0,
        extra=extra,
    )
