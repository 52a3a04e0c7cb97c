"""Settings of each level, and the one seed that every random draw of a run comes from.

Settings
--------
:class:`ParticipantSettings`, :class:`GroupSettings` and :class:`TranscriptomicsSettings` hold
every option of a level. Each option's default is written once, as the field's default here
(the command line reads it with :func:`default_of`, so ``--help`` shows it), and each option is
checked once, in the class's ``__post_init__``: the field's metadata (:func:`option`) names its
flag and its range or choices, and :func:`check_options` raises a one-line
:class:`~bids_ms.errors.UsageError` naming the flag. The command line parses syntax only.

Seeds
-----

A run has one ``--seed``. Each stage that draws random numbers takes its own numpy sub-stream of
that seed (:class:`numpy.random.SeedSequence` children, by fixed index), so that adding draws to
one stage never shifts another, and every value drawn from the seed repeats with the same
``--seed``:

========================  =====  ==========================================================
stream                    index  used for
========================  =====  ==========================================================
``spins``                 root   spin rotations (§2.14), computed once per run and shared
``pls``                   0      PLS permutations and bootstrap (§2.10)
``rank_enrichment``       1      the rank-based enrichment permutations (§2.11–2.13)
``label_permutations``    2      hub-susceptibility label permutations (§2.7)
========================  =====  ==========================================================

The null maps of the gene-list sizes are the first spins, not a stream of their own.

``spins`` is the root stream itself (``numpy.random.default_rng(seed)``), as before; ``pls`` and
``rank_enrichment`` are the two children the transcriptomic stage always used. The label
permutations moved from ``default_rng([seed, 1])`` to child 2: the one change of seed streams,
noted in the CHANGELOG.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atlas import FEATURES
from .errors import UsageError
from .harmonize import HARMONIZE_METHODS

__all__ = [
    "SEED_STREAMS",
    "SEED_BOUND",
    "resolve_seed",
    "seed_sequence",
    "stream_rng",
    "stream_seed",
    "option",
    "field_of",
    "default_of",
    "choices_of",
    "check_options",
    "option_fields",
    "EXCLUSIVE_OPTIONS",
    "ParticipantSettings",
    "GroupSettings",
    "TranscriptomicsSettings",
    "DEFAULT_GENE_SET_LIBRARIES",
]

LOGGER = logging.getLogger(__name__)

#: Child index of every seeded stage; ``None`` is the root stream (see the module docstring).
SEED_STREAMS: dict[str, int | None] = {
    "spins": None,
    "pls": 0,
    "rank_enrichment": 1,
    "label_permutations": 2,
}

#: Seeds drawn when none is given are below this bound (the sidecars record them).
SEED_BOUND = 2**32


def resolve_seed(seed: int | None) -> int:
    """Return ``seed``, or draw one from the system's entropy (logged) when it is None."""
    if seed is not None:
        return int(seed)
    drawn = int(np.random.SeedSequence().entropy % SEED_BOUND)
    LOGGER.info("no --seed given: this run uses seed %d (written to the sidecars)", drawn)
    return drawn


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` of ``stream`` (a key of :data:`SEED_STREAMS`)."""
    index = SEED_STREAMS[stream]
    if index is None:
        return np.random.SeedSequence(int(seed))
    return np.random.SeedSequence(int(seed), spawn_key=(index,))


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """A fresh generator of ``stream`` for the run's ``seed``."""
    return np.random.default_rng(seed_sequence(seed, stream))


def stream_seed(seed: int, stream: str) -> int:
    """An integer seed of ``stream``, for functions that take an ``int`` seed.

    For the root stream this is ``seed`` itself; for a child it is the child's first 32-bit
    state word (what ``SeedSequence(seed).spawn(n)[i].generate_state(1)[0]`` gives).
    """
    if SEED_STREAMS[stream] is None:
        return int(seed)
    return int(seed_sequence(seed, stream).generate_state(1)[0])


# --------------------------------------------------------------------------- options


def option(
    default: Any = MISSING,
    *,
    flag: str,
    default_factory: Any = MISSING,
    minimum: float | None = None,
    positive: bool = False,
    below: int | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A settings field that is a command-line option: its default and its one check.

    Parameters
    ----------
    default, default_factory
        The option's default (as :func:`dataclasses.field`).
    flag : str
        The command-line flag, named in the error message.
    minimum : number, optional
        The smallest value allowed.
    positive : bool
        The value must be > 0.
    below : int, optional
        The value must be smaller than this.
    choices : tuple of str, optional
        The values allowed.
    """
    rule = {"flag": flag, "minimum": minimum, "positive": positive, "below": below}
    return field(
        default=default, default_factory=default_factory, metadata={**rule, "choices": choices}
    )


def field_of(settings_class: type, name: str) -> dataclasses.Field:
    """Field ``name`` of a settings dataclass."""
    for item in dataclasses.fields(settings_class):
        if item.name == name:
            return item
    raise KeyError(f"{settings_class.__name__} has no field {name!r}")


def default_of(settings_class: type, name: str) -> Any:
    """The default of field ``name`` of a settings dataclass (a factory's value when it has one)."""
    item = field_of(settings_class, name)
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:
        return item.default_factory()
    raise KeyError(f"{settings_class.__name__}.{name} has no default")


#: Options that exclude each other (field names of one settings class).
EXCLUSIVE_OPTIONS: tuple[tuple[str, str], ...] = (("ahba_dir", "expression_file"),)


def choices_of(settings_class: type, name: str) -> tuple[str, ...]:
    """The values field ``name`` of a settings dataclass allows."""
    return tuple(field_of(settings_class, name).metadata["choices"])


def _check_value(flag: str, value: Any, meta: dict) -> None:
    """Raise a one-line :class:`UsageError` when ``value`` breaks the field's rule."""
    choices = meta["choices"]
    if choices is not None and value not in choices:
        raise UsageError(f"{flag} must be one of {', '.join(choices)}, not {value!r}")
    minimum = meta["minimum"]
    if minimum is not None and value < minimum:
        bound = "0 or more" if minimum == 0 else f"at least {minimum}"
        raise UsageError(f"{flag}: {value} must be {bound}")
    if meta["positive"] and not value > 0:
        raise UsageError(f"{flag}: {value} must be positive")
    below = meta["below"]
    if below is not None and value >= below:
        text = "2**32" if below == SEED_BOUND else str(below)
        raise UsageError(f"{flag}: {value} must be below {text}")


def check_options(settings: Any) -> None:
    """Check every option field of ``settings`` (``None`` means unset and passes).

    Raises
    ------
    bids_ms.errors.UsageError
        One line naming the flag, e.g. ``--n-spins: -1 must be 0 or more``.
    """
    found = {item.name: item for item in dataclasses.fields(settings)}
    for first, second in EXCLUSIVE_OPTIONS:
        if first in found and second in found:
            if getattr(settings, first) is not None and getattr(settings, second) is not None:
                flags = (found[first].metadata["flag"], found[second].metadata["flag"])
                raise UsageError(f"give either {flags[0]} or {flags[1]}, not both")
    for item in found.values():
        value = getattr(settings, item.name)
        if "flag" in item.metadata and value is not None:
            _check_value(item.metadata["flag"], value, item.metadata)


def option_fields() -> dict[str, dataclasses.Field]:
    """Every option field of the three settings classes, by field name (the argparse dest)."""
    found: dict[str, dataclasses.Field] = {}
    for settings_class in (ParticipantSettings, GroupSettings, TranscriptomicsSettings):
        for item in dataclasses.fields(settings_class):
            if "flag" in item.metadata:
                if item.name in found:  # one argparse dest per option
                    raise TypeError(f"option field {item.name!r} is in two settings classes")
                found[item.name] = item
    return found


def _all_cpus() -> int:
    return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- participant level


@dataclass
class ParticipantSettings:
    """Everything the participant level needs, as parsed from the command line.

    ``omp_nthreads`` left at ``None`` becomes ``min(8, nprocs)``.
    """

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    participant_labels: list[str] | None = None
    session_labels: list[str] | None = None
    features: tuple[str, ...] = FEATURES
    fs_subjects_dir: Path | None = None
    fs_stats_tables: Path | None = None
    fs_license_file: Path | None = None
    nprocs: int = option(flag="--nprocs", default_factory=_all_cpus, minimum=1)
    omp_nthreads: int | None = option(None, flag="--omp-nthreads", minimum=1)
    nipype_plugin: str = option("MultiProc", flag="--nipype-plugin")
    nipype_plugin_args: dict = option(flag="--nipype-plugin-args", default_factory=dict)
    overwrite: bool = False
    fs_longitudinal: bool = False
    fs_reconall_missing: bool = False
    bids_filters: dict | None = None
    bids_database_dir: Path | None = None
    mem_gb: float | None = option(None, flag="--mem", positive=True)

    def __post_init__(self) -> None:
        check_options(self)
        if self.omp_nthreads is None:
            self.omp_nthreads = min(8, self.nprocs)

    @property
    def subjects_dir(self) -> Path:
        return self.fs_subjects_dir or (self.output_dir / "sourcedata" / "freesurfer")


# --------------------------------------------------------------------------- group level


@dataclass
class GroupSettings:
    """Settings of the group level (the command line fills these; see ``cli/settings.py``).

    Attributes
    ----------
    output_dir : Path
        The bids-ms derivatives folder written by the participant level.
    bids_dir : Path or None
        The BIDS folder whose ``participants.tsv`` gives group and covariates.
    participant_label : list of str or None
        Restrict to these participants (with or without ``sub-``).
    group_column, case_label, control_label : str
        Column of ``participants.tsv`` with the diagnosis, and its case/control values
        (``None``: automatic when the column has exactly two values).
    covariates : tuple of str
        Model covariates; ``eTIV`` comes from the participants' sidecars unless
        ``participants.tsv`` has it. Non-numeric columns are categorical.
    site_column : str or None
        Site of each participant: the ComBat batch with ``harmonize='combat'``, else a
        categorical covariate.
    harmonize : {'none', 'combat'}
        ``combat`` needs ``site_column``.
    n_spins : int
        Spin permutations per spin test (0: no spin tests); the one number of spins of a run,
        shared with the transcriptomic stage.
    n_label_perms : int
        Case/control label permutations of the hub-susceptibility test (0: off).
    seed : int or None
        The run's seed, below 2**32 (``None``: drawn and written to the sidecars); every
        stage's stream comes from it (:data:`SEED_STREAMS`).
    reference_maps : list of Path
        ``region, value`` TSVs or ENIGMA summary-statistics CSVs.
    combine : list of Path
        Other bids-ms outputs (or their ``group/`` folders) for the cross-cohort analysis.
    strict : bool
        Participants without derivatives or with missing covariates are an error rather
        than excluded.
    transcriptomics : TranscriptomicsSettings or None
        Settings of the transcriptomic stage; ``None`` skips it.

    Raises
    ------
    bids_ms.errors.UsageError
        An option out of range, or ``harmonize='combat'`` without ``site_column``.
    """

    output_dir: Path
    bids_dir: Path | None = None
    participant_label: list[str] | None = None
    group_column: str = option("group", flag="--group-column")
    case_label: str | None = option(None, flag="--case-label")
    control_label: str | None = option(None, flag="--control-label")
    covariates: tuple[str, ...] = option(("age", "sex", "eTIV"), flag="--covariates")
    site_column: str | None = option(None, flag="--site-column")
    harmonize: str = option("none", flag="--harmonize", choices=HARMONIZE_METHODS)
    n_spins: int = option(10000, flag="--n-spins", minimum=0)
    n_label_perms: int = option(5000, flag="--n-label-perms", minimum=0)
    seed: int | None = option(None, flag="--seed", minimum=0, below=SEED_BOUND)
    reference_maps: list[Path] = option(flag="--reference-map", default_factory=list)
    combine: list[Path] = option(flag="--combine", default_factory=list)
    strict: bool = option(False, flag="--strict")
    transcriptomics: TranscriptomicsSettings | None = None

    def __post_init__(self) -> None:
        check_options(self)
        if self.harmonize == "combat" and not self.site_column:
            raise UsageError(
                "--harmonize combat needs --site-column (the participants.tsv column of sites)"
            )


# --------------------------------------------------------------------------- transcriptomic stage

#: Gene-set libraries tested when the user gives none (cell types are always tested).
DEFAULT_GENE_SET_LIBRARIES: tuple[str, ...] = ("pain", "disorders", "gobp", "wikipathways")


@dataclass
class TranscriptomicsSettings:
    """Settings of the transcriptomic stage (command-line options of the same names).

    The number of spins and the seed are the run's, in :class:`GroupSettings`; the stage
    receives them (and the run's spins) as arguments.

    Attributes
    ----------
    ahba_dir : Path or None
        AHBA microarray folder to process with abagen (``--ahba-dir``).
    expression_file : Path or None
        A region × gene table (``--expression-file``).
    response_map : Path or None
        A regional map replacing the case–control map (``--response-map``).
    n_components : int
        PLS components (1..n) whose variance explained is reported and tested.
    n_perm : int
        Permutations of the response for the components' p (0: off); both nulls use this many
        (the spin null the first ``n_perm`` of the ``n_spins`` rotations).
    perm_null : {'spin', 'shuffle'}
        The null reported as ``p_perm``: spin permutations (default; keeps the map's spatial
        autocorrelation) or random shuffles of regions (the paper). Both are always computed
        and written (``p_spin``, ``p_shuffle``).
    n_boot : int
        Bootstrap resamples of regions for the PLS1 weights' Z (0: off).
    z_threshold : float
        PLS1+ is Z > threshold, PLS1− is Z < −threshold.
    n_null_maps : int
        Spun response maps that go through the same bootstrap and threshold, giving the list
        sizes expected under the spatial null (0: off).
    gene_sets : list of str or None
        Gene-set libraries: built-in names (``pain``, ``disorders``, ``gobp``, ``wikipathways``)
        or GMT / gene,set files; ``None`` means :data:`DEFAULT_GENE_SET_LIBRARIES`, ``[]`` none.
    string_links, string_info : Path or None
        STRING ``protein.links(.detailed)`` and ``protein.info`` files.
    enrichment_null : {'spin', 'none'}
        Test every gene set against spun maps too (Fulcher et al. 2021): ``p_spatial`` and
        ``p_spatial_fdr`` in every ``desc-enrichment_*.tsv`` (default ``spin``).
    rank_test : bool
        Run the median-rank test of libraries small enough for it.

    Raises
    ------
    bids_ms.errors.UsageError
        An option out of range, both ``ahba_dir`` and ``expression_file``, or ``string_info``
        without ``string_links``.
    """

    ahba_dir: Path | None = option(None, flag="--ahba-dir")
    expression_file: Path | None = option(None, flag="--expression-file")
    response_map: Path | None = option(None, flag="--response-map")
    n_components: int = option(15, flag="--n-components", minimum=1)
    n_perm: int = option(1000, flag="--n-perm", minimum=0)
    perm_null: str = option("spin", flag="--perm-null", choices=("spin", "shuffle"))
    n_boot: int = option(1000, flag="--n-boot", minimum=0)
    z_threshold: float = option(3.0, flag="--z-threshold", positive=True)
    n_null_maps: int = option(100, flag="--n-null-maps", minimum=0)
    gene_sets: list[str] | None = option(None, flag="--gene-sets")
    string_links: Path | None = option(None, flag="--string-links")
    string_info: Path | None = option(None, flag="--string-info")
    enrichment_null: str = option("spin", flag="--enrichment-null", choices=("spin", "none"))
    rank_test: bool = True

    def __post_init__(self) -> None:
        check_options(self)
        if self.string_info is not None and self.string_links is None:
            raise UsageError("--string-info needs --string-links")

    def as_json(self, *, n_spins: int | None = None, seed: int | None = None) -> dict:
        """The settings as JSON values (paths as text), for the sidecars.

        ``n_spins`` and ``seed``, the run's, are written where the sidecars always had them
        when given.
        """
        out: dict[str, Any] = {}
        for key, value in dataclasses.asdict(self).items():
            if key == "rank_test" and (n_spins is not None or seed is not None):
                out["n_spins"] = n_spins
                out["seed"] = seed
            out[key] = str(value) if isinstance(value, Path) else value
        return out
