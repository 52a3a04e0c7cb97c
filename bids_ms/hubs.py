"""Hub susceptibility: case–control change against the controls' regional MS.

Implements Martins et al. 2022, *PAIN*, §2.7 and §3.5 (after Seidlitz et al. 2018,
*Neuron* 97:231): the Spearman correlation between the healthy controls' mean regional
MS and the case–control t-map, tested with spins (§2.14), and the four quadrants of
their scatter plot, each axis split at zero.

The t-map is built from the same participants as the controls' template: a participant
whose feature profiles are noisier has all of their MS shrunk toward 0, so high-MS regions
seem to "decrease" and low-MS regions to "increase" in whichever group holds the noisier
participants. A spin null treats the t-map as a map independent of the template and is
not valid for this question; :func:`hub_permutation_test` permutes the case/control labels
instead and redoes everything that used them (the t-map, the template, the differentiation
index), the valid test. The spin p is kept as the paper's test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .spins import spin_test

__all__ = [
    "QUADRANTS",
    "quadrant_of",
    "quadrant_summary",
    "hub_susceptibility",
    "label_permutations",
    "hub_permutation_test",
    "differentiation_index",
    "HubPermutationResult",
    "permutation_pvalue",
    "null_summary",
    "quadrant_null_summary",
]

#: Quadrant names (controls' MS sign, case–control change sign), Martins et al. 2022, §2.7.
QUADRANTS: tuple[str, ...] = (
    "dedifferentiation",  # low MS in controls, MS increases
    "hypercoupling",  # high MS in controls, MS increases
    "hyperdifferentiation",  # low MS in controls, MS decreases
    "decoupling",  # high MS in controls, MS decreases
)


def quadrant_of(control_ms: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Quadrant name of every region.

    Parameters
    ----------
    control_ms : array_like, shape (n_regions,)
        Controls' mean regional MS (split at 0: negative = "low", positive = "high").
    change : array_like, shape (n_regions,)
        Case–control statistic (t); positive = MS increases in cases.

    Returns
    -------
    ndarray of str
        One of :data:`QUADRANTS`; ``"none"`` for a region exactly on an axis.
    """
    ms = np.asarray(control_ms, dtype=float)
    ch = np.asarray(change, dtype=float)
    out = np.full(ms.shape, "none", dtype=object)
    out[(ms < 0) & (ch > 0)] = "dedifferentiation"
    out[(ms > 0) & (ch > 0)] = "hypercoupling"
    out[(ms < 0) & (ch < 0)] = "hyperdifferentiation"
    out[(ms > 0) & (ch < 0)] = "decoupling"
    return out


def quadrant_summary(quadrants: np.ndarray) -> tuple[dict[str, int], dict[str, float]]:
    """Counts and percentages (of all regions) of each quadrant."""
    q = np.asarray(quadrants)
    counts = {name: int(np.sum(q == name)) for name in QUADRANTS}
    percent = {name: 100.0 * counts[name] / q.size for name in QUADRANTS}
    return counts, percent


def hub_susceptibility(
    control_ms: pd.Series, change: pd.Series, *, perms: np.ndarray
) -> tuple[dict, pd.DataFrame]:
    """Hub susceptibility of a case–control map.

    Parameters
    ----------
    control_ms : pandas.Series
        Controls' mean regional MS, index region labels.
    change : pandas.Series
        Case–control t-map on the same regions, same order.
    perms : ndarray, shape (n_spins, n_regions)
        Spin permutations of those regions; the t-map is rotated.

    Returns
    -------
    stats : dict
        ``rho, p_spin, n_spins, quadrants`` (name → percent), ``quadrant_counts``.
    table : pandas.DataFrame
        ``region, control_ms, t, quadrant``.

    References
    ----------
    Martins et al. 2022, §2.7, §3.5; Seidlitz et al. 2018.
    """
    if list(control_ms.index) != list(change.index):
        raise ValueError(
            "control MS and case-control maps must have the same regions in the same order"
        )
    rho, p_spin = spin_test(change.to_numpy(), control_ms.to_numpy(), perms)
    quads = quadrant_of(control_ms.to_numpy(), change.to_numpy())
    counts, percent = quadrant_summary(quads)
    stats = {
        "rho": rho,
        "p_spin": p_spin,
        "n_spins": int(perms.shape[0]),
        "quadrants": percent,
        "quadrant_counts": counts,
    }
    table = pd.DataFrame(
        {
            "region": list(change.index),
            "control_ms": control_ms.to_numpy(dtype=float),
            "t": change.to_numpy(dtype=float),
            "quadrant": quads,
        }
    )
    return stats, table


# --------------------------------------------------------------------------- label permutations


def label_permutations(
    n: int,
    *,
    n_perms: int,
    strata: np.ndarray | Sequence | None = None,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Random permutations of ``n`` participants, within strata (e.g. sites) when given.

    Parameters
    ----------
    n : int
        Number of participants.
    n_perms : int
        Number of permutations (>= 0).
    strata : array_like, shape (n,), optional
        A block label per participant (e.g. the site): each permutation only exchanges
        participants of the same block (Winkler et al. 2014, exchangeability blocks).
    seed : int, numpy.random.Generator or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same permutations.

    Returns
    -------
    ndarray, shape (n_perms, n), int
        Row ``k`` is a permutation of ``range(n)``; the permuted labels are ``labels[perm[k]]``.
        ``int32`` when ``n`` allows it (half the memory of ``intp``: 5,000 permutations of
        40,000 participants take 0.8 GB), else ``intp``.

    Notes
    -----
    Each block is shuffled in place with :meth:`numpy.random.Generator.permuted` (one draw
    order: block by block, permutation by permutation), so the array is built with at most
    one block's worth of scratch memory.
    """
    n_perms = int(n_perms)
    if n_perms < 0:
        raise ValueError(f"n_perms must be >= 0, got {n_perms}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    dtype = np.int32 if n < 2**31 else np.intp
    if n_perms == 0 or strata is None:
        out = np.tile(np.arange(n, dtype=dtype), (n_perms, 1))
        if n_perms:
            rng.permuted(out, axis=1, out=out)
        return out
    blocks = np.asarray(pd.Series(np.asarray(strata)).astype(str))
    if blocks.shape != (n,):
        raise ValueError(f"strata has {blocks.size} values for {n} participants")
    out = np.empty((n_perms, n), dtype=dtype)
    for block in sorted(set(blocks)):
        idx = np.flatnonzero(blocks == block).astype(dtype)
        local = np.tile(np.arange(idx.size, dtype=dtype), (n_perms, 1))
        rng.permuted(local, axis=1, out=local)
        for start in range(0, n_perms, _ROWS):  # local positions -> participants, in place
            rows = local[start : start + _ROWS]
            np.take(idx, rows, out=rows)
        out[:, idx] = local
    return out


#: Rows of permutations converted at once in :func:`label_permutations`.
_ROWS = 256


def _orthonormal_basis(design: np.ndarray) -> np.ndarray:
    q, r = np.linalg.qr(np.asarray(design, dtype=float))
    diag = np.abs(np.diagonal(r))
    if diag.size and diag.min() <= 1e-10 * max(diag.max(), 1.0):
        raise ValueError("the covariate design is rank-deficient")
    return q


def _rank_rows(a: np.ndarray) -> np.ndarray:
    """Ranks within each row (ties averaged as scipy's ``rankdata``; NaN rows stay NaN)."""
    a = np.asarray(a, dtype=float)
    order = np.argsort(a, axis=1, kind="stable")
    ranks = np.empty(a.shape)
    np.put_along_axis(ranks, order, np.arange(1.0, a.shape[1] + 1.0)[None, :], axis=1)
    srt = np.take_along_axis(a, order, axis=1)
    special = (np.diff(srt, axis=1) == 0).any(axis=1) | ~np.isfinite(srt).all(axis=1)
    if special.any():  # ties (or NaN): scipy's average ranks for those rows only
        ranks[special] = stats.rankdata(a[special], axis=1)
    return ranks


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows of ``a`` and ``b``."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ij,ij->i", a, b) / np.sqrt(
            np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b)
        )
    return np.clip(r, -1.0, 1.0)


def _row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _row_corr(_rank_rows(a), _rank_rows(b))


def _group_t(er: np.ndarray, ee: np.ndarray, ryy: np.ndarray, df: int) -> np.ndarray:
    """t of the group column for many designs at once (Frisch–Waugh–Lovell).

    With ``e`` the group indicator residualised on the design's other columns and ``ry``
    the outcomes residualised likewise: ``er = e @ ry`` (p, r), ``ee = |e|^2`` (p, 1) and
    ``ryy = |ry|^2`` per outcome ((r,) or (p, r)). Returns t, shape (p, r).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        rss = np.maximum(ryy - er**2 / ee, 0.0)
        return (er / np.sqrt(ee)) / np.sqrt(rss / df)


def _differentiation(
    yct: np.ndarray, vy: np.ndarray, template: np.ndarray, control: np.ndarray, n_control: int
) -> np.ndarray:
    """Slopes of every participant's regional MS on the control template, many labellings.

    Parameters
    ----------
    yct : ndarray (r, n)
        Regional MS, each participant centred over regions, transposed (contiguous);
        ``vy`` the participants' sums of squares.
    template : ndarray (p, r)
        Controls' mean regional MS of each labelling.
    control : ndarray of bool (p, n)
        Who is a control in each labelling (their template leaves them out).
    """
    mc = template - template.mean(axis=1, keepdims=True)
    vm = np.einsum("ij,ij->i", mc, mc)[:, None]
    cov = mc @ yct  # (p, n): sum over regions of centred products
    k = float(n_control)
    loo_cov = (k * cov - vy) / (k - 1.0)
    loo_var = (k * k * vm - 2.0 * k * cov + vy) / (k - 1.0) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(control, loo_cov / loo_var, cov / vm)


def differentiation_index(regional: np.ndarray, *, is_control: np.ndarray) -> np.ndarray:
    """Each participant's differentiation index: slope of their regional MS on the controls'.

    The OLS slope (with intercept, over regions) of a participant's regional MS regressed on
    the controls' mean regional MS; for a control the mean leaves that participant out. A
    slope below 1 is a flatter profile than the controls' (MS shrunk toward 0, e.g. by
    noisier feature profiles): the testable form of "dedifferentiation".

    Parameters
    ----------
    regional : ndarray, shape (n_participants, n_regions)
    is_control : ndarray of bool, shape (n_participants,)

    Returns
    -------
    ndarray, shape (n_participants,)

    References
    ----------
    Martins et al. 2022, §2.7 (the quadrants this index makes testable).
    """
    y = np.asarray(regional, dtype=float)
    control = np.asarray(is_control, dtype=bool)
    if control.sum() < 2:
        raise ValueError("the differentiation index needs at least 2 controls")
    yc = y - y.mean(axis=1, keepdims=True)
    template = y[control].mean(axis=0)[None, :]
    return _differentiation(
        np.ascontiguousarray(yc.T),
        np.einsum("ij,ij->i", yc, yc),
        template,
        control[None, :],
        int(control.sum()),
    )[0]


@dataclass
class HubPermutationResult:
    """Hub susceptibility under the observed labels and under label permutations.

    Attributes
    ----------
    rho, rho_partial : float
        Spearman rho of the t-map (and of the t-map adjusted for the differentiation
        index) with the controls' mean regional MS.
    control_ms, tmap, tmap_partial : ndarray, shape (n_regions,)
    differentiation : ndarray, shape (n_participants,)
        Each participant's slope on the controls' mean MS (controls: leave-one-out).
    null_rho, null_rho_partial : ndarray, shape (n_perms,)
    null_quadrants : ndarray, shape (n_perms, 4)
        Percentage of regions in each of :data:`QUADRANTS` under each permutation.
    """

    rho: float
    rho_partial: float
    control_ms: np.ndarray
    tmap: np.ndarray
    tmap_partial: np.ndarray
    differentiation: np.ndarray
    null_rho: np.ndarray
    null_rho_partial: np.ndarray
    null_quadrants: np.ndarray

    @property
    def n_perms(self) -> int:
        return int(self.null_rho.size)

    @property
    def p_perm(self) -> float:
        return permutation_pvalue(self.rho, self.null_rho)

    @property
    def p_perm_partial(self) -> float:
        return permutation_pvalue(self.rho_partial, self.null_rho_partial)


def permutation_pvalue(observed: float, null: np.ndarray) -> float:
    """Two-sided permutation p: ``(1 + #{|null| >= |observed|}) / (1 + n)`` (NaN if n = 0)."""
    null = np.asarray(null, dtype=float)
    if null.size == 0 or not np.isfinite(observed):
        return float("nan")
    # NaN nulls (degenerate permutations) count as at least as extreme: conservative.
    hits = np.count_nonzero(~(np.abs(null) < abs(observed) - 1e-12))
    return (1.0 + hits) / (1.0 + null.size)


def _hub_batch(
    perms: np.ndarray,
    *,
    y_ry: np.ndarray,
    yct: np.ndarray,
    vy: np.ndarray,
    q: np.ndarray,
    ryy: np.ndarray,
    is_case: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Everything label-based for one batch of labellings (rows of ``perms``).

    ``y_ry`` holds the regional MS and, beside it, the MS residualised on the covariates'
    orthonormal basis ``q`` (``ry``, so ``q.T @ ry = 0``). Because ``ry`` is orthogonal to
    the covariates, ``e @ ry = g @ ry`` for the residualised group indicator ``e``, and
    ``|e|^2 = n_case - |g @ q|^2``: no (p, n) residual is ever formed. The same holds for
    the differentiation index ``d`` that the partial model adds.
    """
    n, k = q.shape
    r = yct.shape[0]
    g = is_case[perms].astype(float)  # (p, n), 1 = case under the permuted labels
    n_case = float(g[0].sum())
    n_control = n - int(n_case)
    gy = g @ y_ry  # (p, 2r): the cases' sums of MS, and g @ ry
    template = (y_ry[:, :r].sum(axis=0) - gy[:, :r]) / n_control  # controls' mean MS
    gq = g @ q
    ee = n_case - np.einsum("ij,ij->i", gq, gq)[:, None]
    er = gy[:, r:]
    t = _group_t(er, ee, ryy, n - k - 1)
    # the differentiation index added as a covariate: residualise the group on it too
    d = _differentiation(yct, vy, template, g == 0.0, n_control)
    dq = d @ q
    dd = np.einsum("ij,ij->i", d, d)[:, None] - np.einsum("ij,ij->i", dq, dq)[:, None]
    dr_ry = d @ y_ry[:, r:]  # = (residualised d) @ ry
    dr_g = np.einsum("ij,ij->i", d, g)[:, None] - np.einsum("ij,ij->i", dq, gq)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        er_p = er - dr_g * dr_ry / dd
        ee_p = ee - dr_g**2 / dd
        ryy_p = ryy[None, :] - dr_ry**2 / dd
    t_p = _group_t(er_p, ee_p, ryy_p, n - k - 2)
    ms_high = template > 0
    ms_low = template < 0
    quads = np.stack(
        [
            ((ms_low & (t > 0)).sum(axis=1)),
            ((ms_high & (t > 0)).sum(axis=1)),
            ((ms_low & (t < 0)).sum(axis=1)),
            ((ms_high & (t < 0)).sum(axis=1)),
        ],
        axis=1,
    ) * (100.0 / r)
    return template, t, t_p, d, _row_spearman(t, template), _row_spearman(t_p, template), quads


def hub_permutation_test(
    regional: np.ndarray,
    *,
    is_case: np.ndarray,
    design: np.ndarray | pd.DataFrame,
    perms: np.ndarray,
    batch: int = 500,
) -> HubPermutationResult:
    """Hub susceptibility with case/control labels permuted, everything label-based redone.

    For the observed labels and for every permutation: the case–control t-map of
    ``ms ~ group + covariates`` (OLS per region), the controls' mean regional MS, their
    Spearman rho, each participant's differentiation index (slope of their regional MS
    on the controls' mean, the template leaving a control out), the t-map with that index
    added as a covariate and its rho (the partial rho), and the quadrant percentages.
    All permutations are solved together: the covariates are projected out once (their
    orthonormal basis), then each permutation costs a few matrix products (Frisch–Waugh–
    Lovell), so 5,000 permutations of 1,000 participants take seconds.

    Parameters
    ----------
    regional : ndarray, shape (n_participants, n_regions)
        Regional MS (harmonised, if it was).
    is_case : ndarray of bool, shape (n_participants,)
    design : ndarray or DataFrame, shape (n_participants, n_terms)
        The covariates' design, intercept included, group excluded
        (:func:`bids_ms.models.design_matrix` without ``group``).
    perms : ndarray, shape (n_perms, n_participants)
        From :func:`label_permutations`; may have no rows.
    batch : int
        Permutations solved at once (memory ~ 10 x batch x n_participants floats).

    Returns
    -------
    HubPermutationResult

    References
    ----------
    Martins et al. 2022, §2.7, §3.5 (the statistic); Seidlitz et al. 2018 (the quadrants);
    Winkler et al. 2014, NeuroImage 92:381 (permutation inference for the GLM).
    """
    y = np.asarray(regional, dtype=float)
    g = np.asarray(is_case, dtype=bool)
    x = design.to_numpy(dtype=float) if isinstance(design, pd.DataFrame) else np.asarray(design)
    n = y.shape[0]
    if g.shape != (n,) or x.shape[0] != n:
        raise ValueError("regional, is_case and design must have one row per participant")
    if g.sum() < 2 or (~g).sum() < 3:
        raise ValueError("hub permutations need at least 2 cases and 3 controls")
    perms = np.asarray(perms)
    if perms.dtype.kind not in "iu":  # int32 or intp permutations are used as they are
        perms = perms.astype(np.intp)
    perms = perms.reshape(-1, n)
    q = _orthonormal_basis(x)
    if n - q.shape[1] - 2 <= 0:
        raise ValueError("too few participants for the covariates")
    ry = y - q @ (q.T @ y)
    ryy = np.einsum("ij,ij->j", ry, ry)
    yc = y - y.mean(axis=1, keepdims=True)
    vy = np.einsum("ij,ij->i", yc, yc)
    yct = np.ascontiguousarray(yc.T)  # a transposed operand slows small BLAS products
    y_ry = np.ascontiguousarray(np.hstack([y, ry]))
    common = {"y_ry": y_ry, "yct": yct, "vy": vy, "q": q, "ryy": ryy, "is_case": g}
    template, t, t_p, d, rho, rho_p, _ = _hub_batch(np.arange(n)[None, :], **common)
    nulls: list[tuple[np.ndarray, ...]] = []
    for start in range(0, perms.shape[0], max(int(batch), 1)):
        out = _hub_batch(perms[start : start + batch], **common)
        nulls.append((out[4], out[5], out[6]))
    if nulls:
        null_rho, null_rho_p, null_q = (np.concatenate(part) for part in zip(*nulls, strict=True))
    else:
        null_rho, null_rho_p, null_q = np.empty(0), np.empty(0), np.empty((0, len(QUADRANTS)))
    return HubPermutationResult(
        rho=float(rho[0]),
        rho_partial=float(rho_p[0]),
        control_ms=template[0],
        tmap=t[0],
        tmap_partial=t_p[0],
        differentiation=d[0],
        null_rho=null_rho,
        null_rho_partial=null_rho_p,
        null_quadrants=null_q,
    )


def null_summary(null: np.ndarray) -> dict[str, float | None]:
    """``mean, sd, q025, q975`` of a null distribution (``None`` when it is empty)."""
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if null.size == 0:
        return {"mean": None, "sd": None, "q025": None, "q975": None}
    return {
        "mean": float(null.mean()),
        "sd": float(null.std(ddof=1)) if null.size > 1 else 0.0,
        "q025": float(np.quantile(null, 0.025)),
        "q975": float(np.quantile(null, 0.975)),
    }


def quadrant_null_summary(
    percent: dict[str, float], *, counts: dict[str, int], null_quadrants: np.ndarray
) -> dict[str, dict[str, float | int | None]]:
    """Each quadrant's observed percentage beside its label-permutation distribution.

    Parameters
    ----------
    percent, counts : dict
        Observed percentage and number of regions of each quadrant
        (:func:`quadrant_summary`).
    null_quadrants : ndarray, shape (n_perms, 4)
        Percentages under each permutation, columns in the order of :data:`QUADRANTS`.

    Returns
    -------
    dict
        Quadrant name → ``count, percent, null_mean, null_q025, null_q975, p_perm``, where
        ``p_perm`` is two-sided around the null mean,
        ``(1 + #{|null - mean| >= |observed - mean|}) / (1 + n_perms)``.
    """
    out: dict[str, dict[str, float | int | None]] = {}
    for j, name in enumerate(QUADRANTS):
        null = np.asarray(null_quadrants, dtype=float).reshape(-1, len(QUADRANTS))[:, j]
        summ = null_summary(null)
        p = None
        if null.size:
            centre = float(null.mean())
            p = permutation_pvalue(percent[name] - centre, null - centre)
        out[name] = {
            "count": counts[name],
            "percent": percent[name],
            "null_mean": summ["mean"],
            "null_q025": summ["q025"],
            "null_q975": summ["q975"],
            "p_perm": p,
        }
    return out
