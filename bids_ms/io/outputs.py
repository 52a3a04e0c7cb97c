"""The output contract of bids-ms: every derivative's name, columns and sidecar fields.

One place says what a run writes, so that the writers, the reports, the tests and the
documentation speak of the same files. Plain data and small helpers only.

Participant level, under ``<output_dir>/sub-<L>[/ses-<S>]/anat/``
(:data:`PARTICIPANT_OUTPUTS`; ``{prefix}`` is ``sub-<L>[_ses-<S>]``)::

    {prefix}_atlas-DK_morph.tsv                                  region, hemisphere, <features>
    {prefix}_atlas-DK_meas-MorphometricSimilarity_relmat.tsv     region, <68 regions>
    {prefix}_atlas-DK_desc-MS_regional.tsv                       region, ms

Group level, under ``<output_dir>/group/`` (:data:`GROUP_OUTPUTS`): the case–control
statistics (Martins et al. 2022, §2.4), leave-one-feature-out, von Economo classes (§2.6),
hubs (§2.7), reference maps (§2.5), cross-cohort (§2.8), participant quality, and the
transcriptomic stage (§2.9–2.13). ``{library}`` is a gene-set library's name.

Column lists may hold placeholders in braces, expanded by :func:`columns`:

``{group}``, ``{site}``
    the names of the group column (default ``group``) and of the site column;
``{features}``
    the morphometric features used (e.g. ``volume, area, thickness``);
``{regions}``
    the 68 DK regions in canonical order (:data:`bids_ms.atlas.DK_REGIONS`);
``{covariates}``
    the covariates kept in the group models, then the site column when it is not one of
    them (a covariate with a single value among the participants used is left out);
``{economo_classes}``
    the von Economo classes, as ``primary_motor`` … ``insular``;
``{without_features}``
    ``without_<feature>`` for each feature;
``{z_features}``
    ``z_<feature>`` for each feature;
``{cohorts}``
    one column per cohort.

Every TSV is written with a JSON sidecar of the same stem (``.json``); ``sidecar`` names
the fields that sidecar always holds beyond the descriptions of its columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType

from ..atlas import DK_REGIONS

__all__ = [
    "Output",
    "PARTICIPANT_OUTPUTS",
    "GROUP_OUTPUTS",
    "GROUP_DIR",
    "GROUP_PROVENANCE",
    "TRANSCRIPTOMICS_PROVENANCE",
    "COLUMNS",
    "CASECONTROL_COLUMNS",
    "ENRICHMENT_COLUMNS",
    "columns",
    "group_file",
    "participant_file",
    "output",
    "column_problems",
]

#: The folder of the group level's outputs, under the output directory.
GROUP_DIR = "group"

#: Sidecar fields of every group-level table of the case–control stages: how the groups,
#: covariates, harmonisation and spins were set (written once, shared by the stages).
GROUP_PROVENANCE: tuple[str, ...] = (
    "Description",
    "Atlas",
    "Features",
    "GroupColumn",
    "CaseLabel",
    "ControlLabel",
    "NCase",
    "NControl",
    "Covariates",
    "CovariatesLeftOut",
    "CategoricalCovariates",
    "Model",
    "CohenD",
    "Harmonization",
    "SiteColumn",
    "Seed",
    "NSpins",
    "SpinMethod",
    "NExcluded",
    "ExcludedParticipants",
    "SoftwareVersions",
    "Cohort",
)

#: Sidecar fields of every output of the transcriptomic stage.
TRANSCRIPTOMICS_PROVENANCE: tuple[str, ...] = (
    "Description",
    "Response",
    "Expression",
    "Settings",
    "Seed",
    "SoftwareVersions",
)


@dataclass(frozen=True)
class Output:
    """One derivative file of the contract.

    Attributes
    ----------
    name : str
        File name, with ``{prefix}`` (participant level) or ``{library}``/``{direction}``
        placeholders where the name varies.
    level : str
        ``"participant"`` or ``"group"``.
    columns : tuple of str
        The TSV's columns in order (placeholders in braces, see :func:`columns`); empty for
        JSON, text and Markdown files.
    optional_columns : frozenset of str
        Columns left out under some settings (e.g. without spins); all others are always
        written.
    sidecar : tuple of str
        Fields the JSON sidecar (or the JSON file itself) always holds, besides column
        descriptions.
    when : str
        When the file is written: ``"always"`` or the settings it needs.
    section : str
        The section of Martins et al. 2022 the file reports, or ``""``.
    """

    name: str
    level: str
    columns: tuple[str, ...] = ()
    optional_columns: frozenset[str] = frozenset()
    sidecar: tuple[str, ...] = ()
    when: str = "always"
    section: str = ""

    @property
    def is_table(self) -> bool:
        """Whether the file is a TSV (with a JSON sidecar)."""
        return self.name.endswith(".tsv")


# --------------------------------------------------------------------------- participant level

_P = "participant"

PARTICIPANT_OUTPUTS: Mapping[str, Output] = MappingProxyType(
    {
        "morph": Output(
            "{prefix}_atlas-DK_morph.tsv",
            _P,
            ("region", "hemisphere", "{features}"),
            sidecar=("Description", "Atlas", "Source", "FreeSurferVersion"),
            section="§2.3",
        ),
        "relmat": Output(
            "{prefix}_atlas-DK_meas-MorphometricSimilarity_relmat.tsv",
            _P,
            ("region", "{regions}"),
            sidecar=(
                "Description",
                "Measure",
                "MeasureDescription",
                "Weighted",
                "Directed",
                "ValidDiagonal",
                "StorageFormat",
                "NonNegative",
                "Features",
                "Diagonal",
                "RowsAndColumns",
            ),
            section="§2.3",
        ),
        "regional": Output(
            "{prefix}_atlas-DK_desc-MS_regional.tsv",
            _P,
            ("region", "ms"),
            sidecar=(
                "Description",
                "GlobalMS",
                "eTIV",
                "Features",
                "FreeSurferVersion",
                "Source",
                "SourceFiles",
                "SoftwareVersion",
            ),
            section="§2.3",
        ),
    }
)

# --------------------------------------------------------------------------- group level

#: The leading columns of every case–control table (regional MS, classes, ...).
CASECONTROL_COLUMNS: tuple[str, ...] = (
    "beta",
    "t",
    "p",
    "p_fdr",
    "cohen_d",
    "n_case",
    "n_control",
    "se",
    "df",
)

#: The columns of a PLS1± gene-set enrichment table (one per library).
ENRICHMENT_COLUMNS: tuple[str, ...] = (
    "gene_set",
    "direction",
    "overlap",
    "set_size",
    "odds_ratio",
    "p",
    "p_fdr",
    "p_spatial",
    "p_spatial_fdr",
    "set_size_original",
    "list_size",
    "background_size",
    "expected",
    "odds_ratio_sample",
    "genes",
    "note",
    "category_score",
)

_G = "group"
_TX = "the transcriptomic stage (a response map on the left hemisphere)"
_SPATIAL = frozenset({"p_spatial", "p_spatial_fdr", "category_score"})


def _group(name: str, cols: Sequence[str] = (), sidecar=GROUP_PROVENANCE, **kw) -> Output:
    return Output(name, _G, tuple(cols), sidecar=tuple(sidecar), **kw)


def _tx(name: str, cols: Sequence[str] = (), sidecar: Sequence[str] = (), **kw) -> Output:
    kw.setdefault("when", _TX)
    has_json = name.endswith((".tsv", ".json"))  # gene lists and methods text have none
    side = (*TRANSCRIPTOMICS_PROVENANCE, *sidecar) if has_json else ()
    return Output(name, _G, tuple(cols), sidecar=side, **kw)


_OUTPUTS_GROUP = [
    _group(
        "desc-included_participants.tsv",
        ("participant_id", "session", "{group}", "{covariates}", "global_ms"),
    ),
    _group(
        "desc-casecontrol_regional.tsv",
        ("region", "hemisphere", *CASECONTROL_COLUMNS),
        section="§2.4, §3.2",
    ),
    _group(
        "desc-casecontrol_global.json",
        sidecar=(
            "beta",
            "t",
            "p",
            "cohen_d",
            "df",
            "n_case",
            "n_control",
            "se",
            "ModelSummary",
            *GROUP_PROVENANCE,
        ),
        section="§2.4, §3.3",
    ),
    _group(
        "desc-residualised_regional.tsv",
        ("participant_id", "{group}", "{regions}", "global_ms"),
        section="Fig. 2",
    ),
    _group(
        "desc-harmonized_regional.tsv",
        ("participant_id", "{group}", "{site}", "{regions}"),
        when="--harmonize combat",
    ),
    _group(
        "desc-lofo_correlations.tsv",
        ("feature_left_out", "n_features", "rho", "p_spin", "n_spins"),
        sidecar=(*GROUP_PROVENANCE, "Note"),
        section="§2.4",
    ),
    _group(
        "desc-lofo_tmaps.tsv",
        ("region", "hemisphere", "all", "{without_features}"),
        section="§2.4",
    ),
    _group(
        "desc-economo_casecontrol.tsv",
        ("class", "class_name", "n_regions", *CASECONTROL_COLUMNS),
        section="§2.6, §3.4",
    ),
    _group(
        "desc-economo_ms.tsv",
        ("participant_id", "{group}", "{economo_classes}"),
        section="§2.6",
    ),
    _group(
        "desc-hubs_stats.json",
        sidecar=(
            "rho",
            "p_spin",
            "n_spins",
            "quadrants",
            "quadrant_counts",
            "p_perm",
            "n_label_perms",
            "rho_partial",
            "p_perm_partial",
            "differentiation",
            "tests",
            *GROUP_PROVENANCE,
        ),
        section="§2.7, §3.5",
    ),
    _group(
        "desc-hubs_regional.tsv",
        ("region", "hemisphere", "control_ms", "t", "quadrant", "t_partial"),
        section="§2.7",
    ),
    _group(
        "desc-hubs_participants.tsv",
        ("participant_id", "{group}", "differentiation"),
        section="§2.7",
    ),
    _group(
        "desc-hubs_nulls.tsv",
        (
            "permutation",
            "rho",
            "rho_partial",
            "dedifferentiation",
            "hypercoupling",
            "hyperdifferentiation",
            "decoupling",
        ),
        section="§2.7",
    ),
    _group(
        "desc-reference_correlations.tsv",
        ("map", "target", "file", "format", "n_regions", "rho", "p_spin", "n_spins"),
        section="§2.5",
    ),
    _group(
        "desc-crosscohort_correlations.tsv",
        ("cohort_a", "cohort_b", "rho", "p_spin", "n_spins"),
        when="--combine",
        section="§2.8",
    ),
    _group("desc-crosscohort_pca.json", when="--combine", section="§2.8"),
    _group("desc-crosscohort_pc1.tsv", ("region", "value"), when="--combine", section="§2.8"),
    _group(
        "desc-crosscohort_controlsms.tsv",
        ("cohort_a", "cohort_b", "rho", "p_spin", "n_spins"),
        when="--combine",
        section="§3.1",
    ),
    _group(
        "desc-crosscohort_controlsmaps.tsv",
        ("region", "{cohorts}"),
        when="--combine",
        section="§3.1",
    ),
    Output(
        "desc-qc_participants.tsv",
        _G,
        (
            "participant_id",
            "session",
            "source",
            "flagged",
            "reasons",
            "global_ms",
            "z_global_ms",
            "{z_features}",
            "n_outlying_regions",
            "euler_lh",
            "euler_rh",
            "euler_mean",
            "euler_source",
            "z_euler_mean",
        ),
        sidecar=("Description", "Threshold", "RegionalOutlierLimit", "FeatureSummaries"),
    ),
    # the transcriptomic stage
    _tx(
        "desc-pls_components.tsv",
        (
            "component",
            "var_explained",
            "p_perm",
            "var_explained_cumulative",
            "p_perm_component",
            "p_spin",
            "p_shuffle",
        ),
        sidecar=("PermNull",),
        optional_columns=frozenset({"p_spin", "p_shuffle"}),
        section="§2.10, §3.6",
    ),
    _tx(
        "desc-pls1_genes.tsv",
        ("gene", "weight", "z", "p", "p_fdr", "rank", "se"),
        sidecar=("NumberOfBootstraps",),
        section="§2.10",
    ),
    _tx("desc-pls1plus_genes.txt", section="§2.10"),
    _tx("desc-pls1minus_genes.txt", section="§2.10"),
    _tx("desc-pls1_scores.tsv", ("region", "score", "response"), section="§2.10"),
    _tx(
        "desc-pls1_stats.json",
        sidecar=(
            "r",
            "p_spin",
            "var_explained",
            "p_perm",
            "perm_null",
            "null_list_size",
            "n_genes",
            "n_pls1_plus",
            "n_pls1_minus",
            "n_spins",
            "n_bootstraps",
        ),
        section="§2.10, §3.6",
    ),
    _tx(
        "desc-enrichment_{library}.tsv",
        ENRICHMENT_COLUMNS,
        sidecar=("GeneSets", "Licence"),
        optional_columns=_SPATIAL,
        section="§2.12–2.13",
    ),
    _tx(
        "desc-rankenrichment_{library}.tsv",
        (
            "gene_set",
            "set_size",
            "median_rank",
            "null_mean",
            "p_top",
            "p_bottom",
            "p_fdr_top",
            "p_fdr_bottom",
        ),
        sidecar=("GeneSets", "NumberOfRandomSets"),
        when=f"{_TX}, a gene-set library with rank enrichment",
    ),
    _tx(
        "desc-spinenrichment_{library}.tsv",
        ("gene_set", "set_size", "score", "null_mean", "null_sd", "p_spin", "p_fdr"),
        sidecar=("GeneSets", "NumberOfSpins"),
        when=f"{_TX}, --enrichment-null spin and spins",
    ),
    _tx(
        "desc-ppi_network.tsv",
        ("direction", "nodes", "edges", "expected_edges", "ppi_p", "note"),
        sidecar=("StringLinks", "TextMiningExcluded"),
        section="§2.11, §3.7",
    ),
    Output(
        "desc-ppi_{direction}_edges.tsv",
        _G,
        ("gene1", "gene2", "score"),
        sidecar=("Description",),
        when=f"{_TX}, --string-links",
        section="§2.11",
    ),
    _tx("desc-transcriptomics_methods.md", section="§2.9–2.13"),
    Output(
        "desc-abagen_methods.txt",
        _G,
        when=f"{_TX}, --ahba-dir (abagen)",
        section="§2.9",
    ),
]

#: Group-level outputs by file name (under ``group/``).
GROUP_OUTPUTS: Mapping[str, Output] = MappingProxyType({o.name: o for o in _OUTPUTS_GROUP})

#: Every table's columns (placeholders unexpanded), by participant key or group file name.
COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        **{k: o.columns for k, o in PARTICIPANT_OUTPUTS.items()},
        **{k: o.columns for k, o in GROUP_OUTPUTS.items() if o.is_table},
    }
)

_PLACEHOLDER = re.compile(r"^\{(\w+)\}$")


def output(name: str) -> Output:
    """The contract entry of a participant key (``"morph"``) or a group file name.

    A concrete group file name (``desc-enrichment_pain.tsv``) finds its pattern
    (``desc-enrichment_{library}.tsv``).
    """
    if name in PARTICIPANT_OUTPUTS:
        return PARTICIPANT_OUTPUTS[name]
    if name in GROUP_OUTPUTS:
        return GROUP_OUTPUTS[name]
    for pattern, out in GROUP_OUTPUTS.items():
        if "{" in pattern and re.fullmatch(
            re.sub(r"\\\{\w+\\\}", "[A-Za-z0-9]+", re.escape(pattern)), name
        ):
            return out
    raise KeyError(f"{name!r} is not an output of bids-ms")


def _economo_column(name: str) -> str:
    return name.replace(" ", "_")


def columns(
    name: str,
    *,
    features: Iterable[str] = (),
    covariates: Iterable[str] = (),
    economo_classes: Iterable[str] = (),
    cohorts: Iterable[str] = (),
    regions: Iterable[str] = DK_REGIONS,
    group_column: str = "group",
    site_column: str = "site",
    drop_optional: Iterable[str] = (),
) -> list[str]:
    """The columns of a table, in order, placeholders expanded.

    Parameters
    ----------
    name : str
        A participant key (``"morph"``, ``"relmat"``, ``"regional"``) or a group file name
        (pattern or concrete, e.g. ``desc-enrichment_pain.tsv``).
    features, covariates, economo_classes, cohorts, regions : iterable of str
        What the placeholders stand for (class names may have spaces: ``primary motor``).
    group_column, site_column : str
        The participants.tsv columns of the groups and of the sites.
    drop_optional : iterable of str
        Optional columns that the run left out.

    Returns
    -------
    list of str
    """
    out = output(name)
    feats = list(features)
    parts = {
        "group": [group_column],
        "site": [site_column],
        "features": feats,
        "regions": list(regions),
        "covariates": list(covariates),
        "economo_classes": [_economo_column(c) for c in economo_classes],
        "cohorts": list(cohorts),
        "without_features": [f"without_{f}" for f in feats],
        "z_features": [f"z_{f}" for f in feats],
    }
    drop = set(drop_optional)
    unknown = drop - out.optional_columns
    if unknown:
        raise ValueError(f"{out.name}: {sorted(unknown)} are not optional columns")
    result: list[str] = []
    for col in out.columns:
        m = _PLACEHOLDER.match(col)
        if m:
            result.extend(parts[m.group(1)])
        elif col not in drop:
            result.append(col)
    return result


def column_problems(name: str, actual: Sequence[str], **parts) -> list[str]:
    """How a table's columns depart from the contract (empty when they keep it).

    Optional columns the table lacks are fine; a missing, extra or misplaced column is not.
    """
    out = output(name)
    dropped = [c for c in out.optional_columns if c not in actual]
    expected = columns(name, drop_optional=dropped, **parts)
    actual = list(actual)
    if actual == expected:
        return []
    problems = []
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected]
    if missing:
        problems.append(f"{name}: missing columns {missing}")
    if extra:
        problems.append(f"{name}: columns not in the contract {extra}")
    if not missing and not extra:
        problems.append(f"{name}: columns in the order {actual}, not {expected}")
    return problems


def participant_file(key: str, subject: str, session: str | None = None) -> PurePosixPath:
    """Path of a participant-level output relative to the output directory.

    ``participant_file("regional", "01")`` is
    ``sub-01/anat/sub-01_atlas-DK_desc-MS_regional.tsv``; ``subject`` and ``session`` may
    carry their ``sub-``/``ses-`` prefixes or not.
    """
    sub = subject if subject.startswith("sub-") else f"sub-{subject}"
    parts = [sub]
    prefix = sub
    if session:
        ses = session if session.startswith("ses-") else f"ses-{session}"
        parts.append(ses)
        prefix = f"{sub}_{ses}"
    name = PARTICIPANT_OUTPUTS[key].name.format(prefix=prefix)
    return PurePosixPath(*parts, "anat", name)


def group_file(name: str, **fields: str) -> PurePosixPath:
    """Path of a group-level output relative to the output directory.

    ``group_file("desc-casecontrol_regional.tsv")`` is ``group/desc-casecontrol_regional.tsv``;
    ``group_file("desc-enrichment_{library}.tsv", library="pain")`` fills the pattern.
    """
    if name not in GROUP_OUTPUTS:
        output(name)  # a concrete name of a pattern is fine; anything else raises KeyError
    return PurePosixPath(GROUP_DIR, name.format(**fields) if fields else name)
