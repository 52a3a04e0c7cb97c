"""Command-line options of the transcriptomic stage and their translation to settings.

Every option accepts the dash and the underscore spelling (``--n-perm`` and ``--n_perm``).
``--n-spins`` and ``--seed`` belong to the group-level options and are read from there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..enrichment import BUILTIN_GENE_SETS
from ..levels.transcriptomics import DEFAULT_GENE_SET_LIBRARIES, TranscriptomicsSettings
from .types import both_spellings as _spellings
from .types import non_negative_int, positive_float, positive_int

__all__ = ["add_transcriptomics_arguments", "transcriptomics_settings_from_args"]


def add_transcriptomics_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the transcriptomic-stage options to ``parser`` as one argument group."""
    grp = parser.add_argument_group(
        "imaging transcriptomics (group level)",
        "PLS of the left-hemisphere response map on Allen Human Brain Atlas expression, gene "
        "lists and their enrichment (Martins et al. 2022, sections 2.9-2.13); outputs in "
        "output_dir/group/desc-pls*, desc-enrichment_*",
    )
    grp.add_argument(
        *_spellings("--skip-transcriptomics"),
        dest="skip_transcriptomics",
        action="store_true",
        help="do not run the transcriptomic stage at the group level",
    )
    src = grp.add_mutually_exclusive_group()
    src.add_argument(
        *_spellings("--ahba-dir"),
        dest="ahba_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="your copy of the AHBA microarray data (DIR/microarray/normalized_microarray_donor"
        "<ID>/ with MicroarrayExpression.csv, PACall.csv, Probes.csv, SampleAnnot.csv, "
        "Ontology.csv; from https://human.brain-map.org/static/download): processed with "
        "abagen as in the paper and cached in output_dir/group/ (default: the paper's matrix "
        "shipped with bids-ms)",
    )
    src.add_argument(
        *_spellings("--expression-file"),
        dest="expression_file",
        type=Path,
        default=None,
        metavar="FILE",
        help="your own region x gene expression table (CSV/TSV, first column DK region "
        "labels such as lh_bankssts or L_bankssts, one column per gene); needs all 34 left "
        "cortical regions",
    )
    grp.add_argument(
        *_spellings("--response-map"),
        dest="response_map",
        type=Path,
        default=None,
        metavar="FILE",
        help="run only the map-based stages on this map, without participant data: a TSV "
        "with columns region, value, or an ENIGMA summary-statistics CSV (Structure, d_icv); "
        "the 34 left-hemisphere regions are used",
    )
    grp.add_argument(
        *_spellings("--n-components"),
        dest="n_components",
        type=positive_int,
        default=15,
        metavar="N",
        help="PLS components whose variance explained is reported and tested (default: 15)",
    )
    grp.add_argument(
        *_spellings("--n-perm"),
        dest="n_perm",
        type=non_negative_int,
        default=1000,
        metavar="N",
        help="permutations of the response for the components' p (both the spin and the "
        "shuffle null use this many), and random gene sets of the median-rank test "
        "(default: 1000; 0 switches them off)",
    )
    grp.add_argument(
        *_spellings("--perm-null"),
        dest="perm_null",
        choices=("spin", "shuffle"),
        default="spin",
        help="null reported as p_perm of the PLS components: spin permutations (keeps the "
        "map's spatial autocorrelation; the first --n-perm of the --n-spins rotations) or "
        "random shuffles of the regions (the paper's test, which smooth null maps pass too "
        "often). Both are always computed and written as p_spin and p_shuffle (default: spin)",
    )
    grp.add_argument(
        *_spellings("--n-boot"),
        dest="n_boot",
        type=non_negative_int,
        default=1000,
        metavar="N",
        help="bootstrap resamples of regions for the PLS1 gene weights' Z (default: 1000; 0 "
        "switches the bootstrap off, and with it Z, p and the PLS1+/PLS1- lists)",
    )
    grp.add_argument(
        *_spellings("--z-threshold"),
        dest="z_threshold",
        type=positive_float,
        default=3.0,
        metavar="Z",
        help="PLS1+ are genes with Z > threshold, PLS1- with Z < -threshold (default: 3)",
    )
    grp.add_argument(
        *_spellings("--n-null-maps"),
        dest="n_null_maps",
        type=non_negative_int,
        default=100,
        metavar="N",
        help="spun response maps put through the same bootstrap and |Z| threshold, to report "
        "how long the PLS1+/PLS1- lists are on null maps and the expected false share of the "
        "observed lists (desc-pls1_stats.json: null_list_size, empirical_fdr_plus/minus) "
        "(default: 100; 0 switches it off)",
    )
    grp.add_argument(
        *_spellings("--gene-sets"),
        dest="gene_sets",
        action="append",
        default=None,
        metavar="FILE|NAME",
        help="gene sets to test PLS1+ and PLS1- against (repeatable): a GMT file, a two-column "
        "gene,set table, or a built-in library ("
        + ", ".join(k for k in BUILTIN_GENE_SETS if k != "celltypes")
        + "; 'none' for none). Default: "
        + ", ".join(DEFAULT_GENE_SET_LIBRARIES)
        + ". Cell types (Seidlitz 2020) are always tested. KEGG cannot be shipped: download "
        "a KEGG GMT from MSigDB (https://www.gsea-msigdb.org) and give it here",
    )
    grp.add_argument(
        *_spellings("--string-links"),
        dest="string_links",
        type=Path,
        default=None,
        metavar="FILE",
        help="STRING 9606.protein.links.detailed.v12.0.txt.gz (from https://string-db.org/cgi/"
        "download?species_text=Homo+sapiens) for the protein networks of PLS1+ and PLS1- "
        "(combined score >= 0.4 without text mining); without it the networks are skipped "
        "with a note",
    )
    grp.add_argument(
        *_spellings("--string-info"),
        dest="string_info",
        type=Path,
        default=None,
        metavar="FILE",
        help="STRING 9606.protein.info.v12.0.txt.gz, to map STRING protein ids to gene symbols",
    )
    grp.add_argument(
        *_spellings("--enrichment-null"),
        dest="enrichment_null",
        choices=("spin", "none"),
        default="spin",
        help="test every gene set against spun maps (category score = mean gene-map Spearman "
        "correlation; the ensemble approach of Fulcher et al. 2021, Nat Commun 12:2669): "
        "p_spatial and p_spatial_fdr in every desc-enrichment_*.tsv, beside the paper's "
        "Fisher tests, which spatial autocorrelation makes pass on null maps. 'none' leaves "
        "p_spatial n/a (default: spin)",
    )
    return grp


def transcriptomics_settings_from_args(args: argparse.Namespace) -> TranscriptomicsSettings | None:
    """Transcriptomic settings from parsed arguments; ``None`` with ``--skip-transcriptomics``.

    ``--n-spins`` and ``--seed`` are the group level's options.
    """
    if getattr(args, "skip_transcriptomics", False):
        return None
    return TranscriptomicsSettings(
        ahba_dir=args.ahba_dir,
        expression_file=args.expression_file,
        response_map=args.response_map,
        n_components=args.n_components,
        n_perm=args.n_perm,
        perm_null=args.perm_null,
        n_boot=args.n_boot,
        z_threshold=args.z_threshold,
        n_null_maps=args.n_null_maps,
        gene_sets=list(args.gene_sets) if args.gene_sets is not None else None,
        string_links=args.string_links,
        string_info=args.string_info,
        enrichment_null=args.enrichment_null,
        n_spins=getattr(args, "n_spins", 10000),
        seed=getattr(args, "seed", None),
    )
