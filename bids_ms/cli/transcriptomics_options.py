"""Command-line options of the transcriptomic stage (flags, defaults, checks: the settings').

Every option accepts the dash and the underscore spelling (``--n-perm`` and ``--n_perm``).
``--n-spins`` and ``--seed`` are the run's, options of the group level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import DEFAULT_GENE_SET_LIBRARIES, TranscriptomicsSettings
from ..io.genesets import BUILTIN_GENE_SETS
from .settings import add_option, transcriptomics_settings_from_args
from .types import both_spellings, number, whole_number

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
        *both_spellings("--skip-transcriptomics"),
        dest="skip_transcriptomics",
        action="store_true",
        help="do not run the transcriptomic stage at the group level",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "ahba_dir",
        type=Path,
        metavar="DIR",
        help="your copy of the AHBA microarray data (DIR/microarray/normalized_microarray_donor"
        "<ID>/ with MicroarrayExpression.csv, PACall.csv, Probes.csv, SampleAnnot.csv, "
        "Ontology.csv; from https://human.brain-map.org/static/download): processed with "
        "abagen as in the paper and cached in output_dir/group/ (default: the paper's matrix "
        "shipped with bids-ms; not with --expression-file)",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "expression_file",
        type=Path,
        metavar="FILE",
        help="your own region x gene expression table (CSV/TSV, first column DK region "
        "labels such as lh_bankssts or L_bankssts, one column per gene); needs all 34 left "
        "cortical regions",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "response_map",
        type=Path,
        metavar="FILE",
        help="run only the map-based stages on this map, without participant data: a TSV "
        "with columns region, value, or an ENIGMA summary-statistics CSV (Structure, d_icv); "
        "the 34 left-hemisphere regions are used",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "n_components",
        type=whole_number,
        metavar="N",
        help="PLS components whose variance explained is reported and tested (default: "
        "%(default)s)",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "n_perm",
        type=whole_number,
        metavar="N",
        help="permutations of the response for the components' p (both the spin and the "
        "shuffle null use this many), and random gene sets of the median-rank test "
        "(default: %(default)s; 0 switches them off)",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "perm_null",
        help="null reported as p_perm of the PLS components: spin permutations (keeps the "
        "map's spatial autocorrelation; the first --n-perm of the --n-spins rotations) or "
        "random shuffles of the regions (the paper's test, which smooth null maps pass too "
        "often). Both are always computed and written as p_spin and p_shuffle (default: "
        "%(default)s)",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "n_boot",
        type=whole_number,
        metavar="N",
        help="bootstrap resamples of regions for the PLS1 gene weights' Z (default: "
        "%(default)s; 0 "
        "switches the bootstrap off, and with it Z, p and the PLS1+/PLS1- lists)",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "z_threshold",
        type=number,
        metavar="Z",
        help="PLS1+ are genes with Z > threshold, PLS1- with Z < -threshold (default: %(default)s)",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "n_null_maps",
        type=whole_number,
        metavar="N",
        help="spun response maps put through the same bootstrap and |Z| threshold, to report "
        "how long the PLS1+/PLS1- lists are on null maps and the expected false share of the "
        "observed lists (desc-pls1_stats.json: null_list_size, empirical_fdr_plus/minus) "
        "(default: %(default)s; 0 switches it off)",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "gene_sets",
        action="append",
        metavar="FILE|NAME",
        help="gene sets to test PLS1+ and PLS1- against (repeatable): a GMT file, a two-column "
        "gene,set table, or a built-in library ("
        + ", ".join(k for k in BUILTIN_GENE_SETS if k != "celltypes")
        + "; 'none' for none). Default: "
        + ", ".join(DEFAULT_GENE_SET_LIBRARIES)
        + ". Cell types (Seidlitz 2020) are always tested. KEGG cannot be shipped: download "
        "a KEGG GMT from MSigDB (https://www.gsea-msigdb.org) and give it here",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "string_links",
        type=Path,
        metavar="FILE",
        help="STRING 9606.protein.links.detailed.v12.0.txt.gz (from https://string-db.org/cgi/"
        "download?species_text=Homo+sapiens) for the protein networks of PLS1+ and PLS1- "
        "(combined score >= 0.4 without text mining); without it the networks are skipped "
        "with a note",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "string_info",
        type=Path,
        metavar="FILE",
        help="STRING 9606.protein.info.v12.0.txt.gz, to map STRING protein ids to gene symbols",
    )
    add_option(
        grp,
        TranscriptomicsSettings,
        "enrichment_null",
        help="test every gene set against spun maps (category score = mean gene-map Spearman "
        "correlation; the ensemble approach of Fulcher et al. 2021, Nat Commun 12:2669): "
        "p_spatial and p_spatial_fdr in every desc-enrichment_*.tsv, beside the paper's "
        "Fisher tests, which spatial autocorrelation makes pass on null maps. 'none' leaves "
        "p_spatial n/a (default: %(default)s)",
    )
    return grp
