"""Writing and reading bids-ms derivatives (BIDS Derivatives 1.9, as fMRIPrep writes them).

Every file is written atomically (a temporary file in the same folder, then
:func:`os.replace`), so participants run in parallel into one output folder never
leave a half-written or interleaved file, and a crash leaves no partial output.

Layout (exact names are a contract that other tools read)::

    <out>/dataset_description.json
    <out>/sub-<L>[/ses-<S>]/anat/sub-<L>[_ses-<S>]_atlas-DK_morph.tsv
    <out>/sub-<L>[/ses-<S>]/anat/sub-<L>[_ses-<S>]_atlas-DK_desc-MS_connectivity.tsv
    <out>/sub-<L>[/ses-<S>]/anat/sub-<L>[_ses-<S>]_atlas-DK_desc-MS_regional.tsv (+ .json)
    <out>/group/...
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __url__, __version__
from .atlas import DK_REGIONS, FEATURE_DESCRIPTIONS, hemisphere_of
from .errors import InputDataError, UsageError
from .io_safety import atomic_write_bytes as _safe_write
from .similarity import global_ms as _global_ms
from .similarity import ms_matrix, regional_ms

__all__ = [
    "ParticipantDerivatives",
    "atomic_write_text",
    "atomic_write_bytes",
    "write_json",
    "write_tsv",
    "container_info",
    "ensure_dataset_description",
    "participant_prefix",
    "participant_anat_dir",
    "write_participant_derivatives",
    "derive_participant",
    "read_participant_sidecar",
    "participant_files",
    "load_participant_derivatives",
]

PIPELINE_NAME = "bids-ms"
BIDS_VERSION = "1.9.0"

# Files the BIDS validator does not know (derivative suffixes outside the specification).
BIDSIGNORE = "\n".join(
    [
        "*_morph.tsv",
        "*_morph.json",
        "*_connectivity.tsv",
        "*_connectivity.json",
        "*_regional.tsv",
        "*_regional.json",
        # directories without a trailing slash: bids-validator-deno 3 ignores "dir/" only when empty
        "group",
        "logs",
        "sourcedata",
        "*.html",
        "sub-*/figures",
        "",
    ]
)


README_TEXT = """\
# bids-ms derivatives

Morphometric-similarity (MS) networks of the Desikan–Killiany atlas, made by bids-ms
(Martins et al. 2022, PAIN 163:e759-e773).

- `sub-<label>[/ses-<label>]/anat/*_atlas-DK_morph.tsv`: raw regional morphometry;
- `*_atlas-DK_desc-MS_connectivity.tsv`: the 68x68 MS matrix;
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

    Never into ``bids_dir``, even through a symlink; see :mod:`bids_ms.io_safety`.
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


def container_info() -> dict | None:
    """Describe the container bids-ms runs in, for ``GeneratedBy.Container`` (or ``None``)."""
    tag = os.environ.get("BIDS_MS_CONTAINER_TAG")
    if os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER"):
        image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
        return {"Type": "singularity", "URI": image, **({"Tag": tag} if tag else {})}
    if Path("/.dockerenv").exists() or os.environ.get("BIDS_MS_CONTAINER") == "docker":
        return {"Type": "docker", **({"Tag": tag} if tag else {})}
    return None


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
        desc["SourceDatasets"] = [{"URL": Path(source).resolve().as_uri()}]
    out.mkdir(parents=True, exist_ok=True)
    write_json(desc_path, desc)
    ignore = out / ".bidsignore"
    if not ignore.exists():
        atomic_write_text(ignore, BIDSIGNORE)
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


def _paths(output_dir: str | Path, subject: str, session: str | None) -> dict[str, Path]:
    anat = participant_anat_dir(output_dir, subject, session)
    stem = f"{participant_prefix(subject, session)}_atlas-DK"
    return {
        "morph": anat / f"{stem}_morph.tsv",
        "connectivity": anat / f"{stem}_desc-MS_connectivity.tsv",
        "regional": anat / f"{stem}_desc-MS_regional.tsv",
    }


def write_participant_derivatives(
    output_dir: str | Path,
    *,
    subject: str,
    session: str | None,
    morphometry: pd.DataFrame,
    matrix: np.ndarray,
    regional: np.ndarray,
    global_ms: float,
    etiv: float | None,
    freesurfer_version: str | None,
    source: str,
    source_files: list[str] | None = None,
) -> dict[str, Path]:
    """Write one participant's MS derivatives (the output contract of bids-ms).

    The regional sidecar is written last: its presence marks a complete participant.

    Parameters
    ----------
    morphometry : pandas.DataFrame
        68 x features, canonical order, raw values.
    matrix : ndarray, shape (68, 68)
    regional : ndarray, shape (68,)
    global_ms : float
    etiv : float or None
    freesurfer_version : str or None
    source : {'recon-all', 'subjects-dir', 'tables'}

    Returns
    -------
    dict of str to Path
        The files written.
    """
    paths = _paths(output_dir, subject, session)
    features = list(morphometry.columns)
    regions = list(DK_REGIONS)
    morph = morphometry.copy()
    morph.index = regions
    morph_out = pd.DataFrame({"region": regions, "hemisphere": [hemisphere_of(r) for r in regions]})
    for feat in features:
        morph_out[feat] = morph[feat].to_numpy(dtype=float)
    write_tsv(
        paths["morph"],
        morph_out,
        sidecar={
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
    mat = pd.DataFrame(values, index=regions, columns=regions)
    mat.index.name = "region"
    write_tsv(
        paths["connectivity"],
        mat,
        index=True,
        sidecar={
            "Description": "Morphometric similarity matrix: Pearson correlation between the "
            "z-scored morphometric feature vectors of every pair of regions "
            "(Seidlitz et al. 2018; Martins et al. 2022, §2.3).",
            "Features": features,
            "Diagonal": "n/a (self-similarity is excluded from regional MS)",
            "RowsAndColumns": "Region labels in the first column and the header, canonical "
            "Desikan–Killiany order (lh_bankssts ... rh_insula)",
        },
    )
    regional_df = pd.DataFrame({"region": regions, "ms": np.asarray(regional, dtype=float)})
    write_tsv(paths["regional"], regional_df)
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


def derive_participant(
    output_dir: str | Path,
    *,
    subject: str,
    session: str | None,
    morphometry: pd.DataFrame,
    etiv: float | None,
    freesurfer_version: str | None,
    source: str,
    source_files: list[str] | None = None,
) -> dict[str, Path]:
    """Compute one participant's MS network from its morphometry and write the derivatives.

    Everything is computed before the first file is written, so bad input leaves no
    partial output.

    Raises
    ------
    InputDataError
        The morphometry cannot give an MS network (a constant feature, a region whose
        z-scored features are all equal), naming the participant.
    """
    label = participant_prefix(subject, session)
    values = morphometry.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise InputDataError(f"{label}: NaN or infinite morphometry values ({source})")
    try:
        matrix = ms_matrix(values)
    except ValueError as err:
        raise InputDataError(
            f"{label}: {err}; check this participant's FreeSurfer outputs"
        ) from None
    regional = regional_ms(matrix)
    return write_participant_derivatives(
        output_dir,
        subject=subject,
        session=session,
        morphometry=morphometry,
        matrix=matrix,
        regional=regional,
        global_ms=float(_global_ms(regional)),
        etiv=etiv,
        freesurfer_version=freesurfer_version,
        source=source,
        source_files=source_files,
    )


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


def participant_files(
    output_dir: str | Path, subject: str, session: str | None = None
) -> list[Path]:
    """Every file of a complete participant, in the order written (the last marks completion)."""
    files = []
    for path in _paths(output_dir, subject, session).values():
        files += [path, path.with_suffix(".json")]
    marker = _paths(output_dir, subject, session)["regional"].with_suffix(".json")
    return [f for f in files if f != marker] + [marker]


@dataclass
class ParticipantDerivatives:
    """One participant's MS derivatives, read back from an output folder."""

    subject: str
    session: str | None
    morphometry: pd.DataFrame  # 68 x features, index = region
    regional: pd.Series  # 68, index = region
    sidecar: dict

    @property
    def label(self) -> str:
        return participant_prefix(self.subject, self.session)


def _read_tsv_columns(path: Path, first: list[str]) -> tuple[list[str], list[str], np.ndarray]:
    """A bids-ms TSV whose header starts with ``first``: header, first column, numbers.

    Plain string splitting: the group level reads thousands of these small files, where
    :func:`pandas.read_csv` costs most of the time.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    if header[: len(first)] != first:
        raise ValueError(f"header {header[: len(first)]} is not {first}")
    rows = [line.split("\t") for line in lines[1:] if line]
    numbers = np.array(
        [[np.nan if v == "n/a" else float(v) for v in row[len(first) :]] for row in rows],
        dtype=float,
    ).reshape(len(rows), len(header) - len(first))
    return header[len(first) :], [row[0] for row in rows], numbers


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
    index = pd.Index(regions, name="region")
    for sidecar_path in sorted(out.glob("sub-*/**/anat/*_atlas-DK_desc-MS_regional.json")):
        stem = sidecar_path.name.split("_atlas-DK_")[0]
        entities = dict(part.split("-", 1) for part in stem.split("_"))
        subject, session = entities["sub"], entities.get("ses")
        paths = _paths(out, subject, session)
        try:
            sidecar = json.loads(sidecar_path.read_text())
            ms_col, reg_regions, reg_values = _read_tsv_columns(paths["regional"], ["region"])
            if ms_col[:1] != ["ms"]:
                raise ValueError(f"{paths['regional'].name} has no 'ms' column")
            features, morph_regions, morph_values = _read_tsv_columns(
                paths["morph"], ["region", "hemisphere"]
            )
        except (OSError, json.JSONDecodeError, ValueError, IndexError) as err:
            raise InputDataError(
                f"{sidecar_path.parent}: the derivatives of {stem} cannot be read ({err}); "
                "rerun the participant level for this participant"
            ) from None
        if reg_regions != regions or morph_regions != regions:
            raise InputDataError(
                f"{paths['regional']}: regions are not the 68 DK regions in canonical order; "
                "rerun the participant level for this participant"
            )
        found.append(
            ParticipantDerivatives(
                subject=subject,
                session=session,
                morphometry=pd.DataFrame(morph_values, index=index, columns=features),
                regional=pd.Series(reg_values[:, 0], index=index, name="ms"),
                sidecar=sidecar,
            )
        )
    return found
