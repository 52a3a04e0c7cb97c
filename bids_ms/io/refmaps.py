"""Reading regional reference maps: ``region, value`` TSVs and ENIGMA summary statistics.

Reference maps are compared with the case–control map (Martins et al. 2022, §2.5, where
the paper compares with major depression). Two formats are read:

* a BIDS-style TSV (or CSV) with columns ``region`` and ``value``; region labels as
  FreeSurfer's ``aparcstats2table`` writes them (``lh_bankssts``) or as the ENIGMA
  Toolbox does (``L_bankssts``), also ``lh.bankssts``/``ctx-lh-bankssts``/``ctx_lh_bankssts``;
* an ENIGMA Toolbox summary-statistics CSV as published
  (``enigmatoolbox/datasets/summary_statistics/*.csv``, Larivière et al. 2021, *Nat
  Methods* 18:698): column ``Structure`` and the ICV-adjusted Cohen's d ``d_icv``.

Only cortical DK regions are kept; other ENIGMA rows (e.g. subcortical structures, ICV)
are an error unless they are known non-cortical names, which are dropped with a log line.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..atlas import DK_REGIONS, canonical_region
from ..errors import InputDataError

__all__ = [
    "read_region_map",
    "normalise_region_name",
    "ENIGMA_VALUE_COLUMNS",
    "MIN_MAP_REGIONS",
    "FEW_MAP_REGIONS",
]

LOGGER = logging.getLogger("bids_ms")

#: Value columns tried, in order, in ENIGMA summary-statistics files.
ENIGMA_VALUE_COLUMNS: tuple[str, ...] = ("d_icv", "d", "cohens_d", "Cohens_d")

#: Fewest regions a map compared with another may have: with fewer, a Spearman rho is
#: degenerate (two regions always give |rho| = 1) and a spin test cannot reject anything.
MIN_MAP_REGIONS = 10
#: Below this (less than one hemisphere of the DK atlas) a map is used with a warning.
FEW_MAP_REGIONS = 34

# Non-cortical rows of ENIGMA tables (subcortical volumes, ICV): dropped, not errors.
_NON_CORTICAL = re.compile(
    r"^(L|R|Left|Right)?[-_]?(thal|caud|put|pal|hippo|amyg|accumb|vent|LatVent|ICV)", re.IGNORECASE
)


#: The one region-name parser lives in :mod:`bids_ms.atlas`; this name is kept for callers.
normalise_region_name = canonical_region


def _read_table(path: Path) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text else ""
    sep = "\t" if "\t" in first else ","
    return pd.read_csv(path, sep=sep, na_values=["n/a", "NA", "NaN", ""], keep_default_na=True)


def read_region_map(path: str | Path, *, min_regions: int | None = None) -> pd.Series:  # noqa: C901 - a branch per map format (TSV, ENIGMA CSV)
    """Read a regional map.

    Parameters
    ----------
    path : str or Path
        ``region, value`` TSV/CSV, or an ENIGMA summary-statistics CSV (``Structure``,
        ``d_icv``).
    min_regions : int, optional
        Refuse a map with fewer regions than this (e.g. :data:`MIN_MAP_REGIONS` for maps
        that are correlated with another); warn below :data:`FEW_MAP_REGIONS`.

    Returns
    -------
    pandas.Series
        Values (float) indexed by canonical DK labels, only the regions present in the
        file, in canonical order; named after the file's stem. Regions with a missing
        value are left out.

    Raises
    ------
    InputDataError
        The file is missing or unreadable, lacks the columns, names regions that are
        not DK regions (listing them), lists a region twice, has non-numeric or infinite
        values, or has fewer than ``min_regions`` regions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: reference map not found; give an existing file")
    try:
        table = _read_table(path)
    except (OSError, UnicodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputDataError(
            f"{path}: cannot be read as a table ({' '.join(str(err).split())})"
        ) from None
    table = table.loc[:, [c for c in table.columns if not str(c).startswith("Unnamed")]]
    cols = {str(c).strip(): c for c in table.columns}
    if "region" in cols and "value" in cols:
        names, values = table[cols["region"]], table[cols["value"]]
        fmt = "region-value"
    elif "Structure" in cols:
        value_col = next((c for c in ENIGMA_VALUE_COLUMNS if c in cols), None)
        if value_col is None:
            raise InputDataError(
                f"{path}: ENIGMA table without an effect-size column "
                f"({' or '.join(ENIGMA_VALUE_COLUMNS)}); columns are {', '.join(map(str, cols))}"
            )
        names, values = table[cols["Structure"]], table[cols[value_col]]
        fmt = f"ENIGMA ({value_col})"
    else:
        raise InputDataError(
            f"{path}: needs columns 'region' and 'value' (or an ENIGMA 'Structure' column); "
            f"it has {', '.join(map(str, cols)) or 'none'}"
        )
    labels, keep, unknown, dropped = [], [], [], []
    for i, raw in enumerate(names.astype(str)):
        label = canonical_region(raw)
        if label is None:
            if fmt.startswith("ENIGMA") and _NON_CORTICAL.match(raw.strip()):
                dropped.append(raw)
                continue
            unknown.append(raw)
            continue
        labels.append(label)
        keep.append(i)
    if unknown:
        raise InputDataError(
            f"{path}: unknown region names {', '.join(sorted(set(unknown)))}; use Desikan–Killiany "
            "labels such as lh_bankssts or L_bankssts"
        )
    if dropped:
        LOGGER.info(
            "%s: ignoring %d non-cortical rows (%s)", path.name, len(dropped), ", ".join(dropped)
        )
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InputDataError(f"{path}: regions listed more than once: {', '.join(dupes)}")
    vals = pd.to_numeric(values.iloc[keep], errors="coerce")
    bad = [
        names.iloc[keep[j]]
        for j in np.flatnonzero(vals.isna().to_numpy() & values.iloc[keep].notna().to_numpy())
    ]
    if bad:
        raise InputDataError(f"{path}: non-numeric values for {', '.join(map(str, bad))}")
    infinite = [names.iloc[keep[j]] for j in np.flatnonzero(np.isinf(vals.to_numpy(dtype=float)))]
    if infinite:
        raise InputDataError(
            f"{path}: infinite values for {', '.join(map(str, infinite[:5]))}; give finite "
            "numbers (write n/a for a region without a value)"
        )
    series = pd.Series(vals.to_numpy(dtype=float), index=labels, name=path.stem).dropna()
    if series.empty:
        raise InputDataError(f"{path}: no DK region with a value")
    if min_regions is not None and len(series) < min_regions:
        raise InputDataError(
            f"{path}: only {len(series)} region(s) with a value; a correlation over fewer "
            f"than {min_regions} regions means nothing (two regions always give rho = ±1): "
            "give a map of the Desikan–Killiany regions"
        )
    if min_regions is not None and len(series) < FEW_MAP_REGIONS:
        LOGGER.warning(
            "%s: only %d of 68 regions have a value; correlations with this map are weak evidence",
            path,
            len(series),
        )
    order = [r for r in DK_REGIONS if r in series.index]
    out = series.loc[order]
    out.index.name = "region"
    out.attrs["format"] = fmt
    return out
