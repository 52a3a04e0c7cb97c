"""The Desikan–Killiany (DK) atlas vocabulary used everywhere in bids-ms.

One canonical order of the 68 cortical regions and one set of feature names,
held here so that every module, output and test speaks the same language.

Region labels are written as FreeSurfer's ``aparcstats2table`` writes them
(``lh_bankssts`` … ``rh_insula``); within a hemisphere the order is the order
in which ``mris_anatomical_stats`` writes ``?h.aparc.stats`` (Desikan et al.
2006, NeuroImage 31:968), left hemisphere first.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DK_STRUCTURES",
    "DK_REGIONS",
    "DK_LEFT_REGIONS",
    "FEATURES",
    "FEATURE_DESCRIPTIONS",
    "HEMISPHERES",
    "canonical_region",
    "hemisphere_of",
    "structure_of",
]

#: The 34 DK cortical structures per hemisphere, in FreeSurfer's order.
DK_STRUCTURES: Final[tuple[str, ...]] = (
    "bankssts",
    "caudalanteriorcingulate",
    "caudalmiddlefrontal",
    "cuneus",
    "entorhinal",
    "fusiform",
    "inferiorparietal",
    "inferiortemporal",
    "isthmuscingulate",
    "lateraloccipital",
    "lateralorbitofrontal",
    "lingual",
    "medialorbitofrontal",
    "middletemporal",
    "parahippocampal",
    "paracentral",
    "parsopercularis",
    "parsorbitalis",
    "parstriangularis",
    "pericalcarine",
    "postcentral",
    "posteriorcingulate",
    "precentral",
    "precuneus",
    "rostralanteriorcingulate",
    "rostralmiddlefrontal",
    "superiorfrontal",
    "superiorparietal",
    "superiortemporal",
    "supramarginal",
    "frontalpole",
    "temporalpole",
    "transversetemporal",
    "insula",
)

HEMISPHERES: Final[tuple[str, str]] = ("lh", "rh")

#: The 68 region labels in the canonical order: ``lh_*`` then ``rh_*``.
DK_REGIONS: Final[tuple[str, ...]] = tuple(
    f"{hemi}_{name}" for hemi in HEMISPHERES for name in DK_STRUCTURES
)

#: The 34 left-hemisphere regions (the transcriptomic stage uses only these,
#: Martins et al. 2022, §2.9).
DK_LEFT_REGIONS: Final[tuple[str, ...]] = DK_REGIONS[:34]

#: The five morphometric features of Martins et al. 2022, §2.3, in output order.
FEATURES: Final[tuple[str, ...]] = ("volume", "area", "thickness", "meancurv", "gauscurv")

#: What each feature is, and the ``?h.aparc.stats`` column it comes from.
FEATURE_DESCRIPTIONS: Final[dict[str, tuple[str, str]]] = {
    "volume": ("GrayVol", "Grey-matter volume of the region (mm^3)"),
    "area": ("SurfArea", "White-surface area of the region (mm^2)"),
    "thickness": ("ThickAvg", "Mean cortical thickness of the region (mm)"),
    "meancurv": ("MeanCurv", "Integrated rectified mean curvature (mm^-1)"),
    "gauscurv": ("GausCurv", "Integrated rectified Gaussian curvature (mm^-2)"),
}


def hemisphere_of(region: str) -> str:
    """Return ``'L'`` or ``'R'`` for a canonical region label (BIDS hemisphere values)."""
    prefix = region.split("_", 1)[0]
    if prefix not in HEMISPHERES:
        raise ValueError(f"not a DK region label: {region!r}")
    return "L" if prefix == "lh" else "R"


def structure_of(region: str) -> str:
    """Return the structure name of a canonical region label (``lh_insula`` → ``insula``)."""
    return region.split("_", 1)[1]


# A hemisphere prefix (``lh``/``l``/``left``, ``rh``/``r``/``right``, optionally after the
# FreeSurfer colour-table ``ctx-``/``ctx_``), one of ``-``, ``_``, ``.``, then the structure.
_REGION_RE = re.compile(
    r"^(?:ctx[-_])?(?P<hemi>lh|rh|l|r|left|right)[-_.](?P<name>[a-z]+)$", re.IGNORECASE
)
_STRUCT_SET = frozenset(DK_STRUCTURES)


def canonical_region(label: str) -> str | None:
    """Canonical DK label (``lh_bankssts``) of a region name, or ``None``.

    The one parser of region names in bids-ms: reference maps, expression tables and
    response maps all go through it.

    Parameters
    ----------
    label : str
        A region name as FreeSurfer's ``aparcstats2table`` writes it (``lh_bankssts``), as
        the ENIGMA Toolbox and abagen write it (``L_bankssts``), as FreeSurfer's colour
        table writes it (``ctx-lh-bankssts``, ``ctx_lh_bankssts``), or ``lh.bankssts``,
        ``left_bankssts``; in any case, surrounding spaces ignored.

    Returns
    -------
    str or None
        The canonical label, or ``None`` when the name is not a cortical DK region
        (e.g. ``Left-Thalamus``).
    """
    m = _REGION_RE.match(str(label).strip())
    if not m:
        return None
    hemi = "lh" if m.group("hemi").lower() in ("lh", "l", "left") else "rh"
    name = m.group("name").lower()
    if name not in _STRUCT_SET:
        return None
    return f"{hemi}_{name}"
