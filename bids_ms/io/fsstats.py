"""Reading FreeSurfer's regional statistics: ``?h.aparc.stats``, ``aseg.stats`` and the
tables written by ``aparcstats2table`` / ``asegstats2table``.

Pure functions over text files that return pandas objects indexed by the canonical DK
region labels of :mod:`bids_ms.atlas`. They accept the header variants written by
FreeSurfer 5.3 to 7.4 (the file format is described in FreeSurfer's
``mris_anatomical_stats`` and ``mri_segstats`` help) and reject anything else with an
:class:`~bids_ms.errors.InputDataError` that names the file and the problem.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..atlas import DK_REGIONS, DK_STRUCTURES, FEATURE_DESCRIPTIONS, FEATURES, HEMISPHERES
from ..errors import InputDataError

__all__ = [
    "SubjectStats",
    "StatsTables",
    "read_aparc_stats",
    "read_aseg_etiv",
    "read_subject_stats",
    "read_stats_tables",
    "freesurfer_version_from_header",
]

#: Columns of ``?h.aparc.stats`` as written by every FreeSurfer version since 5.0.
_APARC_COLUMNS = (
    "StructName",
    "NumVert",
    "SurfArea",
    "GrayVol",
    "ThickAvg",
    "ThickStd",
    "MeanCurv",
    "GausCurv",
    "FoldInd",
    "CurvInd",
)
#: Largest plausible regional mean thickness (mm). FreeSurfer's ``mris_thickness`` caps
#: vertex thickness at 5 mm by default (``-max``), so a mean above 10 mm is corruption.
MAX_THICKNESS_MM = 10.0
#: Columns of ``?h.aparc.stats`` (and features) that cannot be negative.
_NON_NEGATIVE = {"GrayVol": "volume", "SurfArea": "area", "ThickAvg": "thickness"}


def _check_plausible(
    values: pd.DataFrame, *, where: Path, kind: str | None = None, row_name: str = "region"
) -> None:
    """Refuse impossible morphometry: negative volume, area or thickness, thickness above
    :data:`MAX_THICKNESS_MM`, values that are not finite.

    ``values`` has ``?h.aparc.stats`` columns (``GrayVol``...), or one ``kind`` of feature
    in every column (aparcstats2table: subjects x regions). The message names the file,
    the row (region or subject), the column and the value.

    Raises
    ------
    InputDataError
    """
    data = values.to_numpy(dtype=float)
    kinds = [kind or _NON_NEGATIVE.get(str(col)) for col in values.columns]
    negative_kind = np.array([k is not None for k in kinds])
    thick = np.array([k == "thickness" for k in kinds])
    with np.errstate(invalid="ignore"):
        checks = [
            (~np.isfinite(data), "is not a finite number (NaN or infinite)"),
            ((data < 0) & negative_kind, "is negative ({kind} cannot be)"),
            ((data > MAX_THICKNESS_MM) & thick, f"is above {MAX_THICKNESS_MM:g} mm"),
        ]
    for mask, what in checks:
        if mask.any():
            i, j = (int(x[0]) for x in np.nonzero(mask))
            n = int(mask.sum())
            raise InputDataError(
                f"{where}: {row_name} {values.index[i]}, {values.columns[j]} = {data[i, j]:g} "
                + what.format(kind=kinds[j])
                + (f" ({n} such values)" if n > 1 else "")
                + "; the file is corrupt or was edited: rerun FreeSurfer (or re-export the "
                "table) for this subject"
            )


#: eTIV as it is named by FreeSurfer >= 5.3 and, in older tables, by asegstats2table.
_ETIV_NAMES = ("EstimatedTotalIntraCranialVol", "IntraCranialVol")
_VERSION_RE = re.compile(r"^v?(\d+\.\d+(?:\.\d+)?(?:[-.][\w.]+)?)$")
# aparcstats2table writes ``<hemi>.<parc>.<measure>`` in the first header cell.
_APARC_TABLE_RE = re.compile(r"^(lh|rh)\.(aparc)\.(\w+)$")
# ... and names its columns ``<hemi>_<structure>_<measure>``; its measure names for the MS
# features are the feature names themselves (volume, area, thickness, meancurv, gauscurv).


@dataclass
class SubjectStats:
    """Regional morphometry of one FreeSurfer subject.

    Attributes
    ----------
    morphometry : pandas.DataFrame
        68 rows (canonical DK order), one column per feature, raw values.
    etiv : float or None
        Estimated total intracranial volume (mm^3), when the files record it.
    freesurfer_version : str or None
        The FreeSurfer version that wrote the stats files, when it can be read.
    files : list of Path
        The files the values were read from.
    """

    morphometry: pd.DataFrame
    etiv: float | None
    freesurfer_version: str | None
    files: list[Path] = field(default_factory=list)


@dataclass
class StatsTables:
    """Morphometry of many subjects read from aparcstats2table/asegstats2table outputs.

    Attributes
    ----------
    features : dict of str to pandas.DataFrame
        For each feature found, a subjects x 68 regions table (canonical order).
    etiv : pandas.Series or None
        eTIV per subject, when an asegstats2table table was found.
    files : dict of str to Path
        Which file each measure came from (``lh.volume``, ``aseg`` ...).
    """

    features: dict[str, pd.DataFrame]
    etiv: pd.Series | None
    files: dict[str, Path]

    @property
    def subjects(self) -> list[str]:
        """Subject ids present in every feature table."""
        ids: set[str] | None = None
        for table in self.features.values():
            ids = set(table.index) if ids is None else ids & set(table.index)
        return sorted(ids or ())

    def morphometry_array(self, subjects: list[str], features: tuple[str, ...]) -> np.ndarray:
        """The morphometry of many subjects at once: shape (subjects, 68 regions, features).

        One indexed selection per feature table (linear in subjects), the same values as
        :meth:`morphometry` gives subject by subject.
        """
        out = np.empty((len(subjects), len(DK_REGIONS), len(features)))
        for k, feat in enumerate(features):
            out[:, :, k] = self.features[feat].loc[list(subjects)].to_numpy(dtype=float)
        return out

    def etiv_of(self, subjects: list[str]) -> list[float | None]:
        """eTIV of each subject, ``None`` where the aseg table has no row (or no table)."""
        if self.etiv is None:
            return [None] * len(subjects)
        values = self.etiv.reindex(list(subjects))
        return [None if pd.isna(v) else float(v) for v in values.tolist()]

    def morphometry(self, subject: str, features: tuple[str, ...]) -> pd.DataFrame:
        """The 68 x features table of one subject, canonical region order."""
        return pd.DataFrame(
            {feat: self.features[feat].loc[subject].to_numpy(dtype=float) for feat in features},
            index=pd.Index(DK_REGIONS, name="region"),
        )


def _read_lines(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: not a text file (is it corrupt?)") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise InputDataError(f"{path}: the file is empty; rerun FreeSurfer for this subject")
    return lines


def _header_measures(lines: list[str]) -> dict[str, float]:
    """``# Measure <structure>, <name>, <description>, <value>, <unit>`` lines as name → value."""
    out: dict[str, float] = {}
    for line in lines:
        if not line.startswith("# Measure "):
            continue
        parts = [p.strip() for p in line[len("# Measure ") :].split(",")]
        if len(parts) < 5:
            continue
        try:
            value = float(parts[3])
        except ValueError:
            continue
        out[parts[0]] = value  # e.g. 'EstimatedTotalIntraCranialVol'
        out.setdefault(parts[1], value)  # e.g. 'eTIV'
    return out


def freesurfer_version_from_header(lines: list[str]) -> str | None:
    """The FreeSurfer version in a stats file header, or ``None`` when it is not recorded.

    FreeSurfer >= 6 writes ``# cvs_version 7.3.2``; 5.3 writes a CVS ``$Id: ... $`` string
    that names no release, so no version is returned for it.
    """
    for line in lines:
        if line.startswith("# cvs_version"):
            value = line[len("# cvs_version") :].strip()
            match = _VERSION_RE.match(value)
            if match:
                return match.group(1)
            return None
    return None


def read_aparc_stats(path: str | Path) -> tuple[pd.DataFrame, dict]:  # noqa: C901 - a branch per FreeSurfer stats layout
    """Read one ``?h.aparc.stats`` file of the Desikan–Killiany parcellation.

    Parameters
    ----------
    path : str or Path
        ``lh.aparc.stats`` or ``rh.aparc.stats``.

    Returns
    -------
    table : pandas.DataFrame
        34 rows indexed by structure name in the canonical DK order, with the numeric
        columns of the file (``SurfArea``, ``GrayVol``, ``ThickAvg``, ``MeanCurv``, ...).
    header : dict
        ``measures`` (name → value from ``# Measure`` lines), ``freesurfer_version``.

    Raises
    ------
    InputDataError
        Empty, truncated or corrupt file; a non-DK parcellation; a missing region; a NaN.
    """
    path = Path(path)
    lines = _read_lines(path)
    columns: list[str] | None = None
    for line in lines:
        if line.startswith("# ColHeaders"):
            columns = line.split()[2:]
            break
    if columns is None:
        if not any(
            line.startswith("# Table of FreeSurfer cortical parcellation") for line in lines
        ):
            raise InputDataError(
                f"{path}: not a FreeSurfer ?h.aparc.stats file (no '# ColHeaders' line)"
            )
        columns = list(_APARC_COLUMNS)
    missing_cols = [c for c in _APARC_COLUMNS[:8] if c not in columns]
    if missing_cols:
        raise InputDataError(
            f"{path}: columns {', '.join(missing_cols)} are missing; expected the columns "
            f"that mris_anatomical_stats writes ({' '.join(_APARC_COLUMNS)})"
        )
    rows = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    if not rows:
        raise InputDataError(f"{path}: the table has no rows (truncated file?)")
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise InputDataError(
                f"{path}: row {i + 1} ({row[0]!r}) has {len(row)} values where the header "
                f"announces {len(columns)} (truncated or corrupt file); rerun FreeSurfer's "
                "mris_anatomical_stats for this subject"
            )
    table = pd.DataFrame(rows, columns=columns).set_index("StructName")
    try:
        table = table.astype(float)
    except ValueError as err:
        raise InputDataError(f"{path}: non-numeric value in the table ({err})") from None
    names = list(table.index)
    unknown = [n for n in names if n not in DK_STRUCTURES]
    known = [n for n in names if n in DK_STRUCTURES]
    if unknown and len(unknown) > len(known):
        raise InputDataError(
            f"{path}: this is not the Desikan–Killiany parcellation (structures such as "
            f"{', '.join(unknown[:3])}); bids-ms needs ?h.aparc.stats, not aparc.a2009s or DKT"
        )
    if unknown:
        raise InputDataError(
            f"{path}: unknown structures {', '.join(unknown)} in a Desikan–Killiany table"
        )
    missing = [s for s in DK_STRUCTURES if s not in table.index]
    if missing:
        raise InputDataError(
            f"{path}: regions missing: {', '.join(missing)}; all 34 DK regions are needed "
            "(check the parcellation of this subject)"
        )
    if table.index.duplicated().any():
        dup = table.index[table.index.duplicated()].tolist()
        raise InputDataError(f"{path}: regions listed twice: {', '.join(dup)}")
    table = table.loc[list(DK_STRUCTURES)]
    _check_plausible(table, where=path)
    header = {
        "measures": _header_measures(lines),
        "freesurfer_version": freesurfer_version_from_header(lines),
    }
    return table, header


def read_aseg_etiv(path: str | Path) -> float:
    """eTIV (mm^3) from the header of ``aseg.stats`` (``# Measure EstimatedTotalIntraCranialVol``)."""
    path = Path(path)
    lines = _read_lines(path)
    measures = _header_measures(lines)
    for name in _ETIV_NAMES + ("eTIV",):
        if name in measures:
            value = measures[name]
            if not math.isfinite(value) or value <= 0:
                raise InputDataError(f"{path}: eTIV is {value}, which is not a valid volume")
            return value
    raise InputDataError(
        f"{path}: no EstimatedTotalIntraCranialVol measure in the header (truncated file?)"
    )


def read_subject_stats(
    subject_dir: str | Path, *, features: tuple[str, ...] = FEATURES
) -> SubjectStats:
    """Read the DK morphometry and eTIV of one FreeSurfer subject directory.

    Parameters
    ----------
    subject_dir : str or Path
        A recon-all subject directory (containing ``stats/``).
    features : tuple of str
        Which of :data:`bids_ms.atlas.FEATURES` to return.

    Returns
    -------
    SubjectStats
        eTIV comes from ``stats/aseg.stats``; when that file is absent, from the
        ``EstimatedTotalIntraCranialVol`` measure that FreeSurfer >= 6 also writes into
        the ``?h.aparc.stats`` header.
    """
    stats = Path(subject_dir) / "stats"
    tables = []
    version = None
    files = []
    aparc_measures: dict[str, float] = {}
    for hemi in HEMISPHERES:
        path = stats / f"{hemi}.aparc.stats"
        table, header = read_aparc_stats(path)
        files.append(path)
        tables.append(table)
        version = version or header["freesurfer_version"]
        aparc_measures.update(header["measures"])
    morph = pd.DataFrame(
        {
            feat: np.concatenate([t[FEATURE_DESCRIPTIONS[feat][0]].to_numpy() for t in tables])
            for feat in features
        },
        index=pd.Index(DK_REGIONS, name="region"),
    )
    aseg = stats / "aseg.stats"
    etiv: float | None
    if aseg.is_file():
        etiv = read_aseg_etiv(aseg)
        files.append(aseg)
    else:
        etiv = next((aparc_measures[n] for n in _ETIV_NAMES if n in aparc_measures), None)
    return SubjectStats(morphometry=morph, etiv=etiv, freesurfer_version=version, files=files)


def _sniffed_delimiter(path: Path) -> str | None:
    """The delimiter :func:`pandas.read_csv` (``sep=None``) would sniff from the first line,
    when it is one that pandas' C parser reads the same way (tab, comma, semicolon with
    double quotes); else ``None``."""
    try:
        with open(path, encoding="utf-8") as fh:
            line = fh.readline()
        dialect = csv.Sniffer().sniff(line)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if dialect.delimiter in ("\t", ",", ";") and dialect.quotechar == '"':
        return dialect.delimiter
    return None


def _read_table(path: Path) -> pd.DataFrame:
    # The delimiter is sniffed as pandas' python engine does, then the C parser reads the
    # table: 40,000 rows in a second or two instead of tens of seconds (bench/bench_scale.py).
    sep = _sniffed_delimiter(path)
    options = {"sep": None, "engine": "python"} if sep is None else {"sep": sep, "engine": "c"}
    try:
        table = pd.read_csv(path, dtype=str, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise InputDataError(f"{path}: cannot be read as a table ({err})") from None
    if table.shape[1] < 2:
        raise InputDataError(f"{path}: fewer than two columns; not a FreeSurfer stats table")
    return table


def _first_cell(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            line = fh.readline()
    except (UnicodeDecodeError, OSError):
        return None
    cells = re.split(r"[\t,; ]+", line.strip())
    return cells[0] if cells and cells[0] else None


def _numeric(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = table.apply(pd.to_numeric, errors="coerce")
    bad = out.isna() & table.notna()
    if bad.any().any():
        row, col = next(
            (table.index[i], table.columns[j])
            for i, j in zip(*np.nonzero(bad.to_numpy()), strict=True)
        )
        raise InputDataError(
            f"{path}: non-numeric value {table.loc[row, col]!r} for subject {row}, column {col}"
        )
    if out.isna().any().any():
        row = out.index[out.isna().any(axis=1)][0]
        raise InputDataError(f"{path}: missing value (NaN) for subject {row}")
    return out


def _refuse_duplicates(table: pd.DataFrame, path: Path) -> None:
    dupes = table.index[table.index.duplicated()].unique().tolist()
    if dupes:
        raise InputDataError(
            f"{path}: subject(s) listed more than once: {', '.join(map(str, dupes[:5]))}"
            f"{' ...' if len(dupes) > 5 else ''}; keep one row per subject"
        )


def read_stats_tables(directory: str | Path) -> StatsTables:  # noqa: C901 - a branch per table kind and id spelling
    """Read aparcstats2table / asegstats2table outputs found in a directory.

    Files are recognised by their header line, whatever their names: aparcstats2table
    writes ``lh.aparc.thickness`` (``<hemi>.aparc.<measure>``) in the first cell and
    columns such as ``lh_bankssts_thickness``; asegstats2table writes ``Measure:volume``
    and a column ``EstimatedTotalIntraCranialVol`` (``IntraCranialVol`` before FreeSurfer 6).
    Tab, comma, semicolon and space delimiters are accepted.

    Parameters
    ----------
    directory : str or Path
        Folder with the tables (subfolders are not searched).

    Returns
    -------
    StatsTables
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputDataError(f"{directory}: --fs-stats-tables must be a directory of tables")
    halves: dict[str, dict[str, pd.DataFrame]] = {}
    files: dict[str, Path] = {}
    etiv: pd.Series | None = None
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        first = _first_cell(path)
        if first is None:
            continue
        match = _APARC_TABLE_RE.match(first)
        if match:
            hemi, _parc, measure = match.groups()
            if measure not in FEATURES:
                continue  # thicknessstd, foldind, curvind: not MS features
            feature = measure
            table = _read_table(path).set_index(first)
            cols = [f"{hemi}_{s}_{measure}" for s in DK_STRUCTURES]
            missing = [c for c in cols if c not in table.columns]
            if len(missing) == len(cols):
                raise InputDataError(
                    f"{path}: no Desikan–Killiany columns (e.g. {cols[0]}); export the "
                    "'aparc' parcellation with aparcstats2table --parc aparc"
                )
            if missing:
                raise InputDataError(f"{path}: regions missing: {', '.join(missing)}")
            key = f"{hemi}.{feature}"
            if key in files:
                raise InputDataError(
                    f"{path}: a second table of {key} (the first is {files[key]}); "
                    "keep one table per hemisphere and measure in the directory"
                )
            files[key] = path
            table.index = table.index.astype(str).str.strip()
            _refuse_duplicates(table, path)
            numbers = _numeric(table[cols], path)
            _check_plausible(numbers, where=path, kind=feature, row_name="subject")
            halves.setdefault(feature, {})[hemi] = numbers
        elif first.startswith("Measure:"):
            table = _read_table(path).set_index(first)
            name = next((n for n in _ETIV_NAMES if n in table.columns), None)
            if name is None:
                raise InputDataError(
                    f"{path}: no EstimatedTotalIntraCranialVol (or IntraCranialVol) column; "
                    "rerun asegstats2table with --etiv"
                )
            table.index = table.index.astype(str).str.strip()
            _refuse_duplicates(table, path)
            files["aseg"] = path
            etiv = _numeric(table[[name]], path)[name].rename("eTIV")
    if not halves:
        raise InputDataError(
            f"{directory}: no aparcstats2table tables found (expected a first header cell "
            "such as 'lh.aparc.thickness')"
        )
    features: dict[str, pd.DataFrame] = {}
    for feature, pair in halves.items():
        if set(pair) != set(HEMISPHERES):
            have = next(iter(pair))
            other = "rh" if have == "lh" else "lh"
            raise InputDataError(
                f"{files[f'{have}.{feature}']}: the {other} table of {feature} is missing "
                f"in {directory}"
            )
        lh, rh = pair["lh"], pair["rh"]
        common = lh.index.intersection(rh.index)
        both = pd.concat([lh.loc[common], rh.loc[common]], axis=1)
        both.columns = list(DK_REGIONS)
        both.index.name = "subject"
        features[feature] = both
    return StatsTables(features=features, etiv=etiv, files=files)
