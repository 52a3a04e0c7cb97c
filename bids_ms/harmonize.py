"""ComBat harmonisation of regional measures across sites.

Removes additive and multiplicative site effects with empirical-Bayes ComBat (Johnson
et al. 2007, *Biostatistics* 8:118; for cortical measures Fortin et al. 2018,
*NeuroImage* 167:104) while protecting the variables of interest (group, age, sex) in
the model, so that their effects are not removed. The computation is delegated to the
``neuroCombat`` package (Fortin; MIT licence), the implementation neuroHarmonize wraps;
it is imported only when harmonisation is requested.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import InputDataError, UsageError

__all__ = ["HARMONIZE_METHODS", "combat", "combat_software"]

LOGGER = logging.getLogger("bids_ms")
HARMONIZE_METHODS: tuple[str, ...] = ("none", "combat")


def combat_software() -> dict[str, str]:
    """Name and version of the ComBat implementation (for sidecars)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"neuroCombat": version("neuroCombat")}
    except PackageNotFoundError:
        return {}


def combat(
    data: pd.DataFrame,
    *,
    site: pd.Series | np.ndarray,
    protect: pd.DataFrame,
    categorical: Sequence[str] = (),
) -> pd.DataFrame:
    """ComBat-harmonised copy of ``data``.

    Parameters
    ----------
    data : pandas.DataFrame, shape (n_participants, n_measures)
        E.g. regional MS, participants in rows.
    site : array_like, shape (n_participants,)
        Site (batch) of each participant.
    protect : pandas.DataFrame
        Variables whose effects are kept (group, age, sex ...), participants in rows.
    categorical : sequence of str
        Columns of ``protect`` that are categorical (others are continuous).

    Returns
    -------
    pandas.DataFrame
        Same shape, index and columns as ``data``.

    Raises
    ------
    UsageError
        neuroCombat is not installed.
    InputDataError
        Fewer than two sites, a site with a single participant, or missing values.
    """
    try:
        from neuroCombat import neuroCombat
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise UsageError(
            f"ComBat harmonisation needs the neuroCombat package ({err}); install it with "
            "'pip install neuroCombat' or 'pip install bids-ms[harmonize]'"
        ) from None
    sites = pd.Series(np.asarray(site).astype(str), index=data.index)
    counts = sites.value_counts()
    if counts.size < 2:
        raise InputDataError(
            f"ComBat needs at least two sites; the site column has only {list(counts.index)}; "
            "harmonise only data from two or more sites"
        )
    small = counts[counts < 2]
    if not small.empty:
        raise InputDataError(
            f"ComBat needs at least two participants per site; sites {', '.join(small.index)} have one"
        )
    if data.isna().to_numpy().any() or protect.isna().to_numpy().any():
        raise InputDataError("ComBat input has missing values")
    covars = protect.copy()
    covars.index = data.index
    cat_cols = []
    for col in covars.columns:
        if col in categorical or not pd.api.types.is_numeric_dtype(covars[col]):
            # neuroCombat one-hot encodes categorical columns itself; give it codes.
            covars[col] = pd.Categorical(covars[col].astype(str)).codes.astype(float)
            cat_cols.append(col)
    cont_cols = [c for c in covars.columns if c not in cat_cols]
    covars = covars.reset_index(drop=True)
    covars["_site"] = sites.to_numpy()
    with contextlib.redirect_stdout(io.StringIO()):
        result = neuroCombat(
            dat=data.to_numpy(dtype=float).T,
            covars=covars,
            batch_col="_site",
            categorical_cols=cat_cols or None,
            continuous_cols=cont_cols or None,
        )
    LOGGER.info(
        "ComBat: %d measures harmonised across %d sites (%s), protecting %s",
        data.shape[1],
        counts.size,
        ", ".join(f"{k}: {v}" for k, v in counts.items()),
        ", ".join(protect.columns) or "nothing",
    )
    return pd.DataFrame(result["data"].T, index=data.index, columns=data.columns)
