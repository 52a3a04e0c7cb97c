"""Command-line options of the group level (flags, defaults and checks: :class:`GroupSettings`).

Every option accepts the dash and the underscore spelling (``--group-column`` and
``--group_column``), as fMRIPrep's options do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import GroupSettings, default_of
from .settings import add_option, group_settings_from_args
from .types import whole_number

__all__ = ["add_group_arguments", "group_settings_from_args"]


def add_group_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the group-level options to ``parser`` as one argument group.

    Returns
    -------
    argparse._ArgumentGroup
    """
    grp = parser.add_argument_group(
        "group level",
        "case-control models, leave-one-feature-out, von Economo classes, hub "
        "susceptibility, reference maps and cohorts combined (Martins et al. 2022, "
        "sections 2.4-2.8, 2.14); outputs in output_dir/group/",
    )
    add_option(
        grp,
        GroupSettings,
        "group_column",
        metavar="COLUMN",
        help="participants.tsv column with the diagnosis (default: %(default)s)",
    )
    add_option(
        grp,
        GroupSettings,
        "case_label",
        metavar="VALUE",
        help="value of the group column that marks cases (default: automatic when the "
        "column has exactly two values, one of them a control name such as 'control' or "
        "'HC'; otherwise give both labels)",
    )
    add_option(
        grp,
        GroupSettings,
        "control_label",
        metavar="VALUE",
        help="value of the group column that marks controls (default: automatic, see "
        "--case-label); participants with other values are left out",
    )
    add_option(
        grp,
        GroupSettings,
        "covariates",
        nargs="*",
        metavar="COLUMN",
        help=f"model covariates (default: {' '.join(default_of(GroupSettings, 'covariates'))}); "
        "columns of participants.tsv, eTIV taken from the participants' derivatives unless "
        "participants.tsv has it; "
        "non-numeric columns (e.g. sex M/F) are categorical; give none for no covariates",
    )
    add_option(
        grp,
        GroupSettings,
        "site_column",
        metavar="COLUMN",
        help="participants.tsv column with the site (default: none); with --harmonize none "
        "it enters the model as a categorical covariate, with --harmonize combat it is "
        "the ComBat batch",
    )
    add_option(
        grp,
        GroupSettings,
        "harmonize",
        "--harmonise",
        help="harmonise regional MS across sites before the models: combat (ComBat, "
        "neuroCombat, protecting group and the covariates; needs --site-column) or none "
        "(default: %(default)s)",
    )
    add_option(
        grp,
        GroupSettings,
        "n_spins",
        type=whole_number,
        metavar="N",
        help="spin permutations per spin test (default: %(default)s, as the paper; 0 switches "
        "spin tests off)",
    )
    add_option(
        grp,
        GroupSettings,
        "n_label_perms",
        type=whole_number,
        metavar="N",
        help="case/control label permutations of the hub-susceptibility test (default: "
        "%(default)s; 0 switches it off): labels are shuffled (within site with --site-column), "
        "the covariate model, t-map and controls' mean MS are redone, and rho's two-sided "
        "p is reported first; the spin p is kept as the paper's test, not valid there "
        "because the t-map depends on the control template",
    )
    add_option(
        grp,
        GroupSettings,
        "seed",
        type=whole_number,
        metavar="INT",
        help="random seed of the spin and label permutations, below 2**32 (default: drawn at "
        "random and written to the outputs' JSON sidecars, so any run can be repeated)",
    )
    add_option(
        grp,
        GroupSettings,
        "reference_maps",
        action="append",
        type=Path,
        metavar="FILE",
        help="a map to correlate with the case-control t-map (repeatable): a TSV with "
        "columns region, value (region labels like lh_bankssts or L_bankssts) or an ENIGMA "
        "summary-statistics CSV as published (Structure, d_icv)",
    )
    add_option(
        grp,
        GroupSettings,
        "combine",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="other bids-ms output folders whose group level has run (same features and "
        "atlas): their t-maps are correlated with this one and combined by PCA; PC1 then "
        "becomes the response of the transcriptomic stage",
    )
    add_option(
        grp,
        GroupSettings,
        "strict",
        action="store_true",
        help="make participants without derivatives or with missing covariates an error "
        "(default: they are excluded, logged and listed in the sidecars)",
    )
    return grp
