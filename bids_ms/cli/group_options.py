"""Command-line options of the group level and their translation to settings.

Every option accepts the dash and the underscore spelling (``--group-column`` and
``--group_column``), as fMRIPrep's options do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..harmonize import HARMONIZE_METHODS
from ..levels.group import GroupSettings
from .types import both_spellings as _spellings
from .types import non_negative_int

__all__ = ["add_group_arguments", "group_settings_from_args"]


def _seed(value: str) -> int:
    number = non_negative_int(value)
    if number >= 2**32:
        raise argparse.ArgumentTypeError(f"{value} must be below 2**32")
    return number


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
    grp.add_argument(
        *_spellings("--group-column"),
        dest="group_column",
        default="group",
        metavar="COLUMN",
        help="participants.tsv column with the diagnosis (default: group)",
    )
    grp.add_argument(
        *_spellings("--case-label"),
        dest="case_label",
        default=None,
        metavar="VALUE",
        help="value of the group column that marks cases (default: automatic when the "
        "column has exactly two values, one of them a control name such as 'control' or "
        "'HC'; otherwise give both labels)",
    )
    grp.add_argument(
        *_spellings("--control-label"),
        dest="control_label",
        default=None,
        metavar="VALUE",
        help="value of the group column that marks controls (default: automatic, see "
        "--case-label); participants with other values are left out",
    )
    grp.add_argument(
        "--covariates",
        nargs="*",
        default=["age", "sex", "eTIV"],
        metavar="COLUMN",
        help="model covariates (default: age sex eTIV); columns of participants.tsv, eTIV "
        "taken from the participants' derivatives unless participants.tsv has it; "
        "non-numeric columns (e.g. sex M/F) are categorical; give none for no covariates",
    )
    grp.add_argument(
        *_spellings("--site-column"),
        dest="site_column",
        default=None,
        metavar="COLUMN",
        help="participants.tsv column with the site (default: none); with --harmonize none "
        "it enters the model as a categorical covariate, with --harmonize combat it is "
        "the ComBat batch",
    )
    grp.add_argument(
        "--harmonize",
        "--harmonise",
        dest="harmonize",
        choices=HARMONIZE_METHODS,
        default="none",
        help="harmonise regional MS across sites before the models: combat (ComBat, "
        "neuroCombat, protecting group and the covariates; needs --site-column) or none "
        "(default: none)",
    )
    grp.add_argument(
        *_spellings("--n-spins"),
        dest="n_spins",
        type=non_negative_int,
        default=10000,
        metavar="N",
        help="spin permutations per spin test (default: 10000, as the paper; 0 switches "
        "spin tests off)",
    )
    grp.add_argument(
        *_spellings("--n-label-perms"),
        dest="n_label_perms",
        type=non_negative_int,
        default=5000,
        metavar="N",
        help="case/control label permutations of the hub-susceptibility test (default: "
        "5000; 0 switches it off): labels are shuffled (within site with --site-column), "
        "the covariate model, t-map and controls' mean MS are redone, and rho's two-sided "
        "p is reported first; the spin p is kept as the paper's test, not valid there "
        "because the t-map depends on the control template",
    )
    grp.add_argument(
        "--seed",
        type=_seed,
        default=None,
        metavar="INT",
        help="random seed of the spin and label permutations (default: drawn at random and "
        "written to the outputs' JSON sidecars, so any run can be repeated)",
    )
    grp.add_argument(
        *_spellings("--reference-map"),
        dest="reference_maps",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a map to correlate with the case-control t-map (repeatable): a TSV with "
        "columns region, value (region labels like lh_bankssts or L_bankssts) or an ENIGMA "
        "summary-statistics CSV as published (Structure, d_icv)",
    )
    grp.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help="other bids-ms output folders whose group level has run (same features and "
        "atlas): their t-maps are correlated with this one and combined by PCA; PC1 then "
        "becomes the response of the transcriptomic stage",
    )
    grp.add_argument(
        "--strict",
        action="store_true",
        help="make participants without derivatives or with missing covariates an error "
        "(default: they are excluded, logged and listed in the sidecars)",
    )
    return grp


def group_settings_from_args(args: argparse.Namespace) -> GroupSettings:
    """Group-level settings from parsed arguments (``bids_dir``/``output_dir`` as given)."""
    return GroupSettings(
        output_dir=Path(args.output_dir),
        bids_dir=Path(args.bids_dir) if getattr(args, "bids_dir", None) else None,
        participant_label=getattr(args, "participant_label", None),
        group_column=args.group_column,
        case_label=args.case_label,
        control_label=args.control_label,
        covariates=tuple(args.covariates or ()),
        site_column=args.site_column,
        harmonize=args.harmonize,
        n_spins=args.n_spins,
        n_label_perms=args.n_label_perms,
        seed=args.seed,
        reference_maps=list(args.reference_maps or []),
        combine=list(args.combine or []),
        strict=bool(args.strict),
    )
