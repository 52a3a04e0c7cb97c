"""Writing and reading bids-ms derivatives (BIDS Derivatives 1.9, as fMRIPrep writes them).

Every file is written atomically (a temporary file in the same folder, then
:func:`os.replace`), so participants run in parallel into one output folder never
leave a half-written or interleaved file, and a crash leaves no partial output.

Layout (exact names are a contract that other tools read)::

    <out>/dataset_description.json
    <out>/sub-<L>[/ses-<S>]/anat/sub-<L>[_ses-<S>]_atlas-DK_morph.tsv
    <out>/sub-<L>[/ses-<S>]/anat/sub-<L>[_ses-<S>]_atlas-DK_meas-MorphometricSimilarity_relmat.tsv (+ .json)
    <out>/sub-<L>[/ses-<S>]/anat/sub-<L>[_ses-<S>]_atlas-DK_desc-MS_regional.tsv (+ .json)
    <out>/group/...

The MS matrix follows the BIDS connectivity-derivatives proposal (BEP017): a relationship
matrix ``_relmat.tsv`` with the ``meas-`` entity, as giga_connectome and XCP-D write them.
Folders made by earlier versions hold ``_desc-MS_connectivity.tsv`` instead;
:func:`read_ms_matrix` still reads it in this release, with a :class:`LegacyNameWarning`.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __url__, __version__
from ..atlas import DK_REGIONS, FEATURE_DESCRIPTIONS, hemisphere_of
from ..errors import InputDataError, UsageError
from .safety import atomic_write_bytes as _safe_write

__all__ = [
    "ParticipantDerivatives",
    "atomic_write_text",
    "atomic_write_bytes",
    "write_json",
    "write_tsv",
    "OutputRecorder",
    "container_info",
    "source_datasets",
    "ensure_dataset_description",
    "participant_prefix",
    "participant_anat_dir",
    "write_participant_derivatives",
    "read_participant_sidecar",
    "participant_files",
    "participant_relpaths",
    "load_participant_derivatives",
    "read_ms_matrix",
    "LegacyNameWarning",
    "MS_MATRIX_ENTITIES",
]

LOGGER = logging.getLogger("bids_ms")

PIPELINE_NAME = "bids-ms"
BIDS_VERSION = "1.9.0"

#: Entities and suffix of the MS matrix (BEP017 relationship matrix).
MS_MATRIX_ENTITIES = "atlas-DK_meas-MorphometricSimilarity_relmat"
#: The MS matrix's name before BEP017 names (read, with a warning, in this release only).
LEGACY_MS_MATRIX_ENTITIES = "atlas-DK_desc-MS_connectivity"

# Files the BIDS validator does not know: only suffixes that BIDS has not (yet) specified.
# relmat is BEP017's, not part of BIDS 1.10, so bids-validator still reports it.
BIDSIGNORE_LINES = [
    "*_morph.tsv",
    "*_morph.json",
    "*_relmat.tsv",
    "*_relmat.json",
    "*_regional.tsv",
    "*_regional.json",
    # directories without a trailing slash: bids-validator-deno 3 ignores "dir/" only when empty
    "group",
    "logs",
    "sourcedata",
    "*.html",
    "figures",
    "sub-*/figures",
]
BIDSIGNORE = "\n".join([*BIDSIGNORE_LINES, ""])


class LegacyNameWarning(FutureWarning):
    """A derivative read under its pre-BEP017 name; rerun the participant level to rename."""


README_TEXT = """\
# bids-ms derivatives

Morphometric-similarity (MS) networks of the Desikan–Killiany atlas, made by bids-ms
(Martins et al. 2022, PAIN 163:e759-e773).

- `sub-<label>[/ses-<label>]/anat/*_atlas-DK_morph.tsv`: raw regional morphometry;
- `*_atlas-DK_meas-MorphometricSimilarity_relmat.tsv`: the 68x68 MS matrix (a BEP017
  relationship matrix, as giga_connectome and XCP-D write them);
- `*_atlas-DK_desc-MS_regional.tsv` (+ `.json` with global MS, eTIV, features, source);
- `group/`: group-level statistics, transcriptomics and the report;
- `logs/`: run logs and CITATION.md.

Every TSV has a JSON sidecar that describes its columns.
"""


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, UTF-8 with ``\\n`` line ends."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + :func:`os.replace`).

    Never into ``bids_dir``, even through a symlink; see :mod:`bids_ms.io.safety`.
    """
    _safe_write(path, data)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | Path, data: dict) -> None:
    """Write a JSON file atomically, indented, NaN written as ``null``."""
    text = json.dumps(_nan_to_none(data), indent=2, default=_json_default, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def write_tsv(
    path: str | Path,
    table: pd.DataFrame,
    *,
    sidecar: dict | None = None,
    index: bool = False,
    float_format: str = "%.10g",
) -> None:
    """Write a BIDS TSV (tab-separated, ``n/a`` for missing values) and its JSON sidecar.

    The sidecar, when given, is written next to the TSV with the same name and ``.json``.
    """
    path = Path(path)
    table = neutralise_formulas(table)
    text = table.to_csv(sep="\t", index=index, na_rep="n/a", float_format=float_format)
    atomic_write_text(path, text)
    if sidecar is not None:
        write_json(path.with_suffix(".json"), sidecar)


_FORMULA_START = ("=", "+", "-", "@")


@dataclass
class OutputRecorder:
    """Writes a stage's files into ``folder`` and records what it wrote.

    Every table's sidecar gets ``base_sidecar`` too (its keys win). The group level's
    statistics and its transcriptomic stage each write through one recorder, so that the
    level can list the files of a run and the methods text can read the sidecars written.

    Attributes
    ----------
    folder : Path
        Where the files go (``<output_dir>/group``).
    base_sidecar : dict
        Fields every table's sidecar carries.
    files : list of Path
        The paths written, in order (a table and its sidecar count as two).
    sidecars : dict
        File name → the sidecar (or JSON content) written.
    """

    folder: Path
    base_sidecar: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    sidecars: dict[str, dict] = field(default_factory=dict)

    def tsv(self, name: str, table: pd.DataFrame, sidecar: dict) -> Path:
        """Write ``table`` as ``folder/name`` with its JSON sidecar (:func:`write_tsv`)."""
        path = self.folder / name
        merged = {**sidecar, **self.base_sidecar}
        write_tsv(path, table, sidecar=merged)
        self.files.extend([path, path.with_suffix(".json")])
        self.sidecars[name] = merged
        LOGGER.info("wrote %s", path)
        return path

    def json(self, name: str, content: dict) -> Path:
        """Write ``content`` as ``folder/name`` (:func:`write_json`)."""
        path = self.folder / name
        write_json(path, content)
        self.files.append(path)
        self.sidecars[name] = content
        LOGGER.info("wrote %s", path)
        return path

    def text(self, name: str, text: str) -> Path:
        """Write ``text`` as ``folder/name`` (:func:`atomic_write_text`)."""
        path = self.folder / name
        atomic_write_text(path, text)
        self.files.append(path)
        LOGGER.info("wrote %s", path)
        return path


def _neutral(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)  # "-1.5", "+3", "-inf": numbers, not formulas
    except ValueError:
        return "'" + value
    return value


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with text cells that a spreadsheet would run as a formula made inert.

    OWASP's CSV-injection rule: a text value starting with ``=``, ``+``, ``-`` or ``@`` gets
    a leading ``'`` (a spreadsheet then shows it as text). Numbers, including negative
    numbers written as text, are left as they are; so are numeric columns.
    """
    text_cols = [
        c
        for c in table.columns
        if table[c].dtype == object or isinstance(table[c].dtype, pd.StringDtype)
    ]
    text_index = table.index.dtype == object
    if not text_cols and not text_index:
        return table
    out = table.copy()
    for col in text_cols:
        out[col] = out[col].map(_neutral)
    if text_index:
        out.index = out.index.map(_neutral)
    return out


def _table_text(
    header: list[str], labels: list[list[str]], values: np.ndarray, float_format: str = "%.10g"
) -> str:
    """A TSV's text, byte for byte as :func:`write_tsv` writes it (``float_format`` per
    number, ``n/a`` for NaN), for tables whose text columns (``labels``, one list per
    column) are known-safe names: region labels and hemispheres.

    One ``%`` operation per row: a quarter of :meth:`pandas.DataFrame.to_csv`'s time, which
    is most of the participant level's cost at biobank scale (bench/bench_scale.py).
    """
    values = np.asarray(values, dtype=float)
    row_format = "\t".join([float_format] * values.shape[1])
    lines = ["\t".join(header)]
    for *texts, row in zip(*labels, values.tolist(), strict=True):
        cells = row_format % tuple(row)
        # '%g' writes NaN as 'nan' (and no number holds these letters): BIDS's n/a, as
        # pandas' na_rep
        cells = cells.replace("nan", "n/a")
        lines.append("\t".join([*texts, cells]) if texts else cells)
    return "\n".join(lines) + "\n"


#: Set by the bids-ms images only (``ENV BIDS_MS_CONTAINER=docker`` in the Dockerfile,
#: ``export BIDS_MS_CONTAINER=singularity`` in singularity/bids-ms.def), with the image
#: name in ``BIDS_MS_CONTAINER_TAG``. A plain install inside any other container (a dev
#: container, CI) is not "a bids-ms container", so nothing else is looked at.
CONTAINER_ENV = "BIDS_MS_CONTAINER"
CONTAINER_TAG_ENV = "BIDS_MS_CONTAINER_TAG"


def container_info() -> dict | None:
    """Describe the bids-ms image this runs in, for ``GeneratedBy.Container`` (or ``None``).

    Read from :data:`CONTAINER_ENV`, which only the bids-ms images set; run by Apptainer or
    SingularityCE (a ``.sif`` built from the Docker image keeps its environment), the type
    is ``singularity`` with the image path as ``URI``.
    """
    kind = os.environ.get(CONTAINER_ENV, "").strip().lower()
    if not kind:
        return None
    tag = os.environ.get(CONTAINER_TAG_ENV)
    image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if image or kind in ("singularity", "apptainer"):
        info = {"Type": "singularity", **({"URI": image} if image else {})}
    else:
        info = {"Type": kind}
    return {**info, **({"Tag": tag} if tag else {})}


def _bare_doi(value: str) -> str:
    value = value.strip()
    for prefix in ("doi:", "https://doi.org/", "http://doi.org/", "https://dx.doi.org/"):
        if value.lower().startswith(prefix):
            return value[len(prefix) :]
    return value


def source_datasets(source: str | Path, output_dir: str | Path) -> dict:
    """``SourceDatasets`` (and ``DatasetLinks``) of the derivatives, as fMRIPrep writes them.

    The raw dataset's ``DatasetDOI`` when it has one; otherwise a BIDS URI ``bids:raw:.``
    whose ``raw`` link is the raw dataset's path relative to the output folder, so the
    description names no host path (``file:///home/...``) and stays true when both
    folders move together.
    """
    source = Path(source).resolve()
    try:
        raw = json.loads((source / "dataset_description.json").read_text())
    except (OSError, json.JSONDecodeError):
        raw = {}
    doi = raw.get("DatasetDOI") if isinstance(raw, dict) else None
    if isinstance(doi, str) and doi.strip():
        bare = _bare_doi(doi)
        entry = {"DOI": f"doi:{bare}", "URL": f"https://doi.org/{bare}"}
        if isinstance(raw.get("DatasetVersion"), str):  # not BIDS, but some datasets say it
            entry["Version"] = raw["DatasetVersion"]
        return {"SourceDatasets": [entry]}
    relative = Path(os.path.relpath(source, Path(output_dir).resolve())).as_posix()
    return {"SourceDatasets": [{"URL": "bids:raw:."}], "DatasetLinks": {"raw": relative}}


def _update_bidsignore(out: Path) -> None:
    """Write ``.bidsignore``, or add the lines it lacks (a folder of an older bids-ms)."""
    ignore = out / ".bidsignore"
    if not ignore.exists():
        atomic_write_text(ignore, BIDSIGNORE)
        return
    have = ignore.read_text().splitlines()
    missing = [line for line in BIDSIGNORE_LINES if line not in have]
    if missing:
        atomic_write_text(ignore, "\n".join([*[h for h in have if h], *missing, ""]))


def ensure_dataset_description(output_dir: str | Path, *, source: str | Path | None = None) -> None:
    """Write ``dataset_description.json`` and ``.bidsignore`` unless bids-ms already did.

    Raises
    ------
    UsageError
        ``output_dir`` already holds a dataset that bids-ms did not make.
    """
    out = Path(output_dir)
    desc_path = out / "dataset_description.json"
    if desc_path.exists():
        try:
            existing = json.loads(desc_path.read_text())
            names = [g.get("Name") for g in existing.get("GeneratedBy", [])]
        except (json.JSONDecodeError, AttributeError, TypeError):
            names = []
        if PIPELINE_NAME not in names:
            raise UsageError(
                f"{desc_path}: the output folder already holds a dataset that bids-ms did not "
                "make; choose an empty or new output folder"
            )
        _update_bidsignore(out)
        return
    generated = {"Name": PIPELINE_NAME, "Version": __version__, "CodeURL": __url__}
    container = container_info()
    if container:
        generated["Container"] = container
    desc = {
        "Name": "bids-ms: morphometric similarity networks (Desikan–Killiany)",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "HowToAcknowledge": (
            "Cite Martins et al. 2022, PAIN 163:e759-e773 "
            "(doi:10.1097/j.pain.0000000000002480) and see logs/CITATION.md."
        ),
    }
    if source is not None:
        desc.update(source_datasets(source, out))
    out.mkdir(parents=True, exist_ok=True)
    write_json(desc_path, desc)
    _update_bidsignore(out)
    readme = out / "README.md"
    if not readme.exists():
        atomic_write_text(readme, README_TEXT)


def participant_prefix(subject: str, session: str | None = None) -> str:
    """``sub-<L>[_ses-<S>]`` for labels given without their prefixes."""
    return f"sub-{subject}" + (f"_ses-{session}" if session else "")


def participant_anat_dir(output_dir: str | Path, subject: str, session: str | None = None) -> Path:
    """``<out>/sub-<L>[/ses-<S>]/anat``."""
    path = Path(output_dir) / f"sub-{subject}"
    if session:
        path = path / f"ses-{session}"
    return path / "anat"


_HEMISPHERES = [hemisphere_of(r) for r in DK_REGIONS]


def _paths(output_dir: str | Path, subject: str, session: str | None) -> dict[str, Path]:
    anat = participant_anat_dir(output_dir, subject, session)
    stem = f"{participant_prefix(subject, session)}_atlas-DK"
    return {
        "morph": anat / f"{stem}_morph.tsv",
        "relmat": anat / f"{participant_prefix(subject, session)}_{MS_MATRIX_ENTITIES}.tsv",
        "regional": anat / f"{stem}_desc-MS_regional.tsv",
    }


def write_participant_derivatives(
    output_dir: str | Path,
    *,
    subject: str,
    session: str | None,
    morphometry: pd.DataFrame | np.ndarray,
    matrix: np.ndarray,
    regional: np.ndarray,
    global_ms: float,
    etiv: float | None,
    freesurfer_version: str | None,
    source: str,
    source_files: list[str] | None = None,
    features: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Write one participant's MS derivatives (the output contract of bids-ms).

    Only writes: the MS network is computed by the caller (:mod:`bids_ms.similarity`).
    The regional sidecar is written last: its presence marks a complete participant.

    Parameters
    ----------
    morphometry : pandas.DataFrame or ndarray
        68 x features, canonical order, raw values (an array needs ``features``).
    matrix : ndarray, shape (68, 68)
    regional : ndarray, shape (68,)
    global_ms : float
    etiv : float or None
    freesurfer_version : str or None
    source : {'recon-all', 'subjects-dir', 'tables'}
    source_files : list of str, optional
    features : list of str, optional
        The feature (column) names of an array ``morphometry``.

    Returns
    -------
    dict of str to Path
        The files written.
    """
    paths = _paths(output_dir, subject, session)
    if isinstance(morphometry, pd.DataFrame):
        features = list(morphometry.columns)
    elif features is None:
        raise TypeError("features must name the columns of an array morphometry")
    features = list(features)
    regions = list(DK_REGIONS)
    morph_values = np.asarray(morphometry, dtype=float).reshape(len(regions), len(features))
    atomic_write_text(
        paths["morph"],
        _table_text(["region", "hemisphere", *features], [regions, _HEMISPHERES], morph_values),
    )
    write_json(
        paths["morph"].with_suffix(".json"),
        {
            "Description": "Regional morphometry of the Desikan–Killiany atlas, raw values "
            "as FreeSurfer reports them (before z-scoring).",
            "Atlas": "Desikan–Killiany (FreeSurfer aparc), 68 cortical regions",
            "Source": source,
            "FreeSurferVersion": freesurfer_version,
            "region": {"Description": "Region label as aparcstats2table writes it"},
            "hemisphere": {"Description": "Hemisphere", "Levels": {"L": "left", "R": "right"}},
            **{
                feat: {
                    "Description": FEATURE_DESCRIPTIONS[feat][1],
                    "FreeSurferColumn": FEATURE_DESCRIPTIONS[feat][0],
                }
                for feat in features
            },
        },
    )
    values = np.array(matrix, dtype=float)  # a copy: the diagonal is blanked below
    np.fill_diagonal(values, np.nan)
    atomic_write_text(paths["relmat"], _table_text(["region", *regions], [regions], values))
    write_json(
        paths["relmat"].with_suffix(".json"),
        {
            "Description": "Morphometric similarity matrix: Pearson correlation between the "
            "z-scored morphometric feature vectors of every pair of regions "
            "(Seidlitz et al. 2018; Martins et al. 2022, §2.3).",
            # BEP017 (connectivity derivatives) relationship-matrix metadata
            "Measure": "Morphometric similarity (Pearson correlation)",
            "MeasureDescription": "Pearson correlation between two regions' vectors of "
            "z-scored morphometric features",
            "Weighted": True,
            "Directed": False,
            "ValidDiagonal": False,
            "StorageFormat": "Full",
            "NonNegative": False,
            "Features": features,
            "Diagonal": "n/a (self-similarity is excluded from regional MS)",
            "RowsAndColumns": "Region labels in the first column and the header, canonical "
            "Desikan–Killiany order (lh_bankssts ... rh_insula)",
        },
    )
    legacy = paths["relmat"].with_name(
        paths["relmat"].name.replace(MS_MATRIX_ENTITIES, LEGACY_MS_MATRIX_ENTITIES)
    )
    for old in (legacy, legacy.with_suffix(".json")):
        old.unlink(missing_ok=True)  # an --overwrite of a pre-BEP017 folder leaves one name
    regional_values = np.asarray(regional, dtype=float).reshape(len(regions), 1)
    atomic_write_text(paths["regional"], _table_text(["region", "ms"], [regions], regional_values))
    write_json(
        paths["regional"].with_suffix(".json"),
        {
            "Description": "Regional morphometric similarity: each region's mean MS with the "
            "other 67 regions (Martins et al. 2022, §2.4).",
            "region": {"Description": "Region label"},
            "ms": {"Description": "Regional MS (mean Pearson r over the other regions)"},
            "GlobalMS": float(global_ms),
            "eTIV": None if etiv is None else float(etiv),
            "Features": features,
            "FreeSurferVersion": freesurfer_version,
            "Source": source,
            "SourceFiles": source_files or [],
            "SoftwareVersion": __version__,
        },
    )
    return paths


def read_participant_sidecar(
    output_dir: str | Path, subject: str, session: str | None = None
) -> dict | None:
    """The regional-MS sidecar of a completed participant, or ``None`` if not done."""
    path = _paths(output_dir, subject, session)["regional"].with_suffix(".json")
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def participant_relpaths(subject: str, session: str | None = None) -> list[str]:
    """The files of :func:`participant_files`, relative to the output folder, as text
    (``sub-<L>[/ses-<S>]/anat/<name>``): no path objects for checks over many participants."""
    anat = f"sub-{subject}" + (f"/ses-{session}" if session else "") + "/anat/"
    prefix = participant_prefix(subject, session)
    stems = (
        f"{prefix}_atlas-DK_morph",
        f"{prefix}_{MS_MATRIX_ENTITIES}",
        f"{prefix}_atlas-DK_desc-MS_regional",
    )
    return [f"{anat}{stem}{ext}" for stem in stems for ext in (".tsv", ".json")]


def participant_files(
    output_dir: str | Path, subject: str, session: str | None = None
) -> list[Path]:
    """Every file of a complete participant, in the order written (the last marks completion)."""
    anat = participant_anat_dir(output_dir, subject, session)
    return [anat / rel.rpartition("/")[2] for rel in participant_relpaths(subject, session)]


def read_ms_matrix(
    output_dir: str | Path, subject: str, session: str | None = None
) -> pd.DataFrame | None:
    """One participant's 68 x 68 MS matrix (diagonal NaN), or ``None`` when absent.

    Reads ``*_atlas-DK_meas-MorphometricSimilarity_relmat.tsv``, else the pre-BEP017
    ``*_atlas-DK_desc-MS_connectivity.tsv`` with a :class:`LegacyNameWarning` (and a log
    message), for one release.

    Raises
    ------
    InputDataError
        The file exists but cannot be read, naming it.
    """
    anat = participant_anat_dir(output_dir, subject, session)
    prefix = participant_prefix(subject, session)
    path = anat / f"{prefix}_{MS_MATRIX_ENTITIES}.tsv"
    if not path.is_file():
        old = anat / f"{prefix}_{LEGACY_MS_MATRIX_ENTITIES}.tsv"
        if not old.is_file():
            return None
        message = (
            f"{old.name}: bids-ms now names MS matrices *_{MS_MATRIX_ENTITIES}.tsv (BIDS "
            "BEP017); the old name is read in this release only. Rerun the participant level "
            "with --overwrite to rename the files"
        )
        warnings.warn(message, LegacyNameWarning, stacklevel=2)
        LOGGER.warning(message)
        path = old
    try:
        # Plain parsing: a fifth of pandas.read_csv's time for this 68 x 68 table.
        text = path.read_text(encoding="utf-8").replace("n/a", "nan")
        cells = [line.split("\t") for line in text.splitlines() if line]
        values = np.array([row[1:] for row in cells[1:]], dtype=float)
        index = pd.Index([row[0] for row in cells[1:]], name=cells[0][0])
        return pd.DataFrame(values, index=index, columns=cells[0][1:])
    except (OSError, ValueError, IndexError) as err:
        raise InputDataError(
            f"{path}: cannot be read ({err}); rerun the participant level for {prefix}"
        ) from None


class ParticipantDerivatives:
    """One participant's MS derivatives, read back from an output folder.

    ``morphometry`` (68 x features, index ``region``) and ``regional`` (68, named ``ms``)
    are pandas objects built on first access: the group level reads tens of thousands of
    participants and most of its steps want the arrays (:attr:`morphometry_values`,
    :attr:`regional_values`, :attr:`features`), which cost nothing more.
    """

    __slots__ = ("subject", "session", "sidecar", "_morph", "_regional", "_values", "_columns")

    def __init__(
        self,
        subject: str,
        session: str | None,
        morphometry: pd.DataFrame,
        regional: pd.Series,
        sidecar: dict,
    ) -> None:
        self.subject = subject
        self.session = session
        self.sidecar = sidecar
        self._morph: pd.DataFrame | None = morphometry
        self._regional: pd.Series | None = regional
        self._values: tuple[np.ndarray, np.ndarray] | None = None
        self._columns: list[str] | None = None

    @classmethod
    def from_arrays(
        cls,
        subject: str,
        session: str | None,
        *,
        morphometry: np.ndarray,
        features: list[str],
        regional: np.ndarray,
        sidecar: dict,
    ) -> ParticipantDerivatives:
        """A participant from its arrays (canonical DK order): no pandas object is built."""
        self = cls.__new__(cls)
        self.subject, self.session, self.sidecar = subject, session, sidecar
        self._morph = self._regional = None
        self._values = (morphometry, regional)
        self._columns = list(features)
        return self

    @property
    def morphometry(self) -> pd.DataFrame:
        """68 x features, index ``region`` (canonical DK order), raw values."""
        if self._morph is None:
            assert self._values is not None and self._columns is not None
            self._morph = pd.DataFrame(
                self._values[0], index=_REGION_INDEX, columns=list(self._columns)
            )
        return self._morph

    @morphometry.setter
    def morphometry(self, value: pd.DataFrame) -> None:
        self._materialise()
        self._morph = value

    @property
    def regional(self) -> pd.Series:
        """Regional MS, 68 values, index ``region``, name ``ms``."""
        if self._regional is None:
            assert self._values is not None
            self._regional = pd.Series(self._values[1], index=_REGION_INDEX, name="ms")
        return self._regional

    @regional.setter
    def regional(self, value: pd.Series) -> None:
        self._materialise()
        self._regional = value

    def _materialise(self) -> None:
        """Build both pandas objects and drop the arrays (before one is replaced)."""
        _ = self.morphometry, self.regional
        self._values = self._columns = None

    @property
    def morphometry_values(self) -> np.ndarray:
        """The morphometry as a (68, features) float array."""
        if self._values is not None and self._morph is None:
            return self._values[0]
        return self.morphometry.to_numpy(dtype=float)

    @property
    def regional_values(self) -> np.ndarray:
        """The regional MS as a (68,) float array."""
        if self._values is not None and self._regional is None:
            return self._values[1]
        return self.regional.to_numpy(dtype=float)

    @property
    def features(self) -> list[str]:
        """The morphometry column names."""
        if self._columns is not None and self._morph is None:
            return list(self._columns)
        return [str(c) for c in self.morphometry.columns]

    @property
    def label(self) -> str:
        return participant_prefix(self.subject, self.session)

    def __repr__(self) -> str:
        return f"ParticipantDerivatives({self.label})"


_REGION_INDEX = pd.Index(list(DK_REGIONS), name="region")


def _parse_numbers(cells: list[list[str]], skip: int, width: int) -> np.ndarray:
    """The numeric cells (after the first ``skip``) of split TSV rows, ``n/a`` as NaN.

    numpy parses the text in one call; only a table with ``n/a`` (the MS matrix's
    diagonal, missing values) takes the slower path that maps it to NaN first.
    """
    rows = [row[skip:] for row in cells]
    try:
        values = np.array(rows, dtype=float)
    except ValueError:
        values = np.array(
            [[np.nan if v == "n/a" else float(v) for v in row] for row in rows], dtype=float
        )
    values = values.reshape(len(rows), -1) if rows else values.reshape(0, width)
    if values.shape[1] != width:
        raise ValueError(f"{values.shape[1]} numeric columns where the header names {width}")
    return values


def _read_tsv_columns(
    path: str | Path, first: list[str]
) -> tuple[list[str], list[str], np.ndarray]:
    """A bids-ms TSV whose header starts with ``first``: header, first column, numbers.

    Plain string splitting and one numpy parse: the group level reads tens of thousands of
    these small files, where :func:`pandas.read_csv` costs most of the time.
    """
    with open(path, encoding="utf-8") as fobj:
        lines = fobj.read().splitlines()
    header = lines[0].split("\t")
    if header[: len(first)] != first:
        raise ValueError(f"header {header[: len(first)]} is not {first}")
    cells = [line.split("\t") for line in lines[1:] if line]
    numbers = _parse_numbers(cells, len(first), len(header) - len(first))
    return header[len(first) :], [row[0] for row in cells], numbers


_SIDECAR_NAME = "_atlas-DK_desc-MS_regional.json"


def _completed_sidecars(out: Path) -> list[tuple[str, ...]]:
    """Every ``sub-*/[<session>/]anat/*_atlas-DK_desc-MS_regional.json`` under ``out``.

    As path parts relative to ``out``, in the order of ``sorted(out.glob(...))``.
    :func:`os.scandir` over the two levels the layout has, rather than a recursive glob
    that builds a path object for every file of every participant.
    """

    def scan(path: str) -> list[os.DirEntry]:
        try:
            with os.scandir(path) as entries:
                return [e for e in entries if not e.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def sidecars(anat: os.DirEntry, *parts: str) -> list[tuple[str, ...]]:
        return [(*parts, f.name) for f in scan(anat.path) if f.name.endswith(_SIDECAR_NAME)]

    found = []
    for sub in scan(str(out)):
        if not sub.name.startswith("sub-") or not sub.is_dir():
            continue
        for entry in scan(sub.path):
            if entry.name == "anat" and entry.is_dir():
                found += sidecars(entry, sub.name, "anat")
            elif entry.is_dir():  # a session
                for anat in scan(entry.path):
                    if anat.name == "anat" and anat.is_dir():
                        found += sidecars(anat, sub.name, entry.name, "anat")
    return sorted(found)  # as pathlib orders paths: part by part


def load_participant_derivatives(output_dir: str | Path) -> list[ParticipantDerivatives]:
    """Read every completed participant's derivatives from a bids-ms output folder.

    Returns
    -------
    list of ParticipantDerivatives
        Sorted by subject then session. Participants whose outputs are incomplete are
        skipped (their regional sidecar, written last, is missing).

    Raises
    ------
    InputDataError
        A derivative file that exists but cannot be read, naming the file.
    """
    out = Path(output_dir)
    found = []
    regions = list(DK_REGIONS)
    for parts in _completed_sidecars(out):
        sidecar_path = os.path.join(out, *parts)
        stem = parts[-1].split("_atlas-DK_")[0]
        entities = dict(part.split("-", 1) for part in stem.split("_"))
        subject, session = entities["sub"], entities.get("ses")
        # the files where write_participant_derivatives puts them, as text (no path objects)
        anat = os.path.join(out, f"sub-{subject}", *([f"ses-{session}"] if session else []), "anat")
        paths = {
            "regional": os.path.join(anat, f"{stem}_atlas-DK_desc-MS_regional.tsv"),
            "morph": os.path.join(anat, f"{stem}_atlas-DK_morph.tsv"),
        }
        try:
            with open(sidecar_path, "rb") as fobj:
                sidecar = json.loads(fobj.read())
            ms_col, reg_regions, reg_values = _read_tsv_columns(paths["regional"], ["region"])
            if ms_col[:1] != ["ms"]:
                raise ValueError(f"{os.path.basename(paths['regional'])} has no 'ms' column")
            features, morph_regions, morph_values = _read_tsv_columns(
                paths["morph"], ["region", "hemisphere"]
            )
        except (OSError, json.JSONDecodeError, ValueError, IndexError) as err:
            raise InputDataError(
                f"{os.path.dirname(sidecar_path)}: the derivatives of {stem} cannot be read ({err}); "
                "rerun the participant level for this participant"
            ) from None
        if reg_regions != regions or morph_regions != regions:
            raise InputDataError(
                f"{paths['regional']}: regions are not the 68 DK regions in canonical order; "
                "rerun the participant level for this participant"
            )
        found.append(
            ParticipantDerivatives.from_arrays(
                subject,
                session,
                morphometry=morph_values,
                features=features,
                regional=reg_values[:, 0],
                sidecar=sidecar,
            )
        )
    return found
