"""von Economo cytoarchitectonic classes of the DK regions, and class-level MS.

Implements Martins et al. 2022, *PAIN*, §2.6 and §3.4: each DK region is assigned to one
of seven classes — von Economo & Koskinas' five structural types (primary motor /
agranular, association A / frontal, association B / parietal, secondary sensory / polar,
primary sensory / granular) plus limbic and insular cortex — as in Whitaker, Vértes et
al. 2016 (*PNAS* 113:9105) and Seidlitz et al. 2018 (*Neuron* 97:231). A participant's
class-level MS is the mean regional MS over the regions of the class (both hemispheres).
The table and how it was derived: ``bids_ms/data/atlas/PROVENANCE.md``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from .atlas import DK_REGIONS

__all__ = ["ECONOMO_FILE", "ECONOMO_CLASS_NAMES", "load_von_economo", "class_ms"]

ECONOMO_FILE = "atlas-DK_desc-vonEconomo7_classes.tsv"

#: Class number -> name (Whitaker, Vértes et al. 2016; Seidlitz et al. 2018).
ECONOMO_CLASS_NAMES: dict[int, str] = {
    1: "primary motor",
    2: "association A",
    3: "association B",
    4: "secondary sensory",
    5: "primary sensory",
    6: "limbic",
    7: "insular",
}


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    path = resources.files("bids_ms") / "data" / "atlas" / ECONOMO_FILE
    with resources.as_file(path) as p:
        return pd.read_csv(p, sep="\t", index_col="region")


def load_von_economo() -> pd.DataFrame:
    """The DK → von Economo 7-class table.

    Returns
    -------
    pandas.DataFrame
        Index :data:`~bids_ms.atlas.DK_REGIONS`; columns ``hemisphere``,
        ``von_economo_class`` (1–7), ``class_name``, ``nspn_type`` (the five-type code
        of the NSPN 308-region parcellation the table is derived from).
    """
    return _table().loc[list(DK_REGIONS)].copy()


def class_ms(regional: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    """Class-level MS: mean regional MS over each von Economo class's regions.

    Parameters
    ----------
    regional : DataFrame or ndarray, shape (n_participants, 68)
        Regional MS in canonical DK order (DataFrame columns may be the region labels).

    Returns
    -------
    pandas.DataFrame, shape (n_participants, 7)
        Columns are the class names in class order (1–7); index that of ``regional``
        when it is a DataFrame.

    References
    ----------
    Martins et al. 2022, §2.6.
    """
    if isinstance(regional, pd.DataFrame):
        values = (
            regional.loc[:, list(DK_REGIONS)].to_numpy(dtype=float)
            if set(DK_REGIONS) <= set(regional.columns)
            else regional.to_numpy(dtype=float)
        )
        index = regional.index
    else:
        values = np.asarray(regional, dtype=float)
        index = pd.RangeIndex(values.shape[0])
    if values.shape[1] != len(DK_REGIONS):
        raise ValueError(f"regional MS must have 68 columns, got {values.shape[1]}")
    classes = load_von_economo()["von_economo_class"].to_numpy()
    out = {
        ECONOMO_CLASS_NAMES[c]: values[:, classes == c].mean(axis=1)
        for c in sorted(ECONOMO_CLASS_NAMES)
    }
    return pd.DataFrame(out, index=index)
