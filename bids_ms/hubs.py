"""Hub susceptibility: case–control change against the controls' regional MS.

Implements Martins et al. 2022, *PAIN*, §2.7 and §3.5 (after Seidlitz et al. 2018,
*Neuron* 97:231): the Spearman correlation between the healthy controls' mean regional
MS and the case–control t-map, tested with spins (§2.14), and the four quadrants of
their scatter plot, each axis split at zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .spins import spin_test

__all__ = ["QUADRANTS", "quadrant_of", "quadrant_summary", "hub_susceptibility"]

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
