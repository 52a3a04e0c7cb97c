"""Reading gene-set libraries and STRING networks (Martins et al. 2022, §2.11–2.13).

* :func:`read_gene_sets` — a GMT file (Broad/MSigDB/Enrichr) or a two-column ``gene,set``
  table, plain, gzip or xz; date-damaged symbols are repaired with
  :func:`bids_ms.io.expression.repair_gene_symbols` as the sets are read;
* :func:`load_builtin_gene_sets` / :func:`resolve_gene_sets` — the libraries shipped in
  ``bids_ms/data/genesets`` (see its PROVENANCE.md), or a user's file;
* :func:`read_string_links` — a STRING ``protein.links`` file as a gene-symbol edge list at a
  combined-score threshold, text mining excluded when the file has the evidence channels.

The tests on these gene sets and networks live in :mod:`bids_ms.enrichment`.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputDataError, UsageError
from .expression import repair_gene_symbols

__all__ = [
    "BUILTIN_GENE_SETS",
    "DOWNLOAD_HINTS",
    "GeneSets",
    "STRING_CHANNELS_NO_TEXTMINING",
    "load_builtin_gene_sets",
    "read_gene_sets",
    "read_string_links",
    "resolve_gene_sets",
]

LOGGER = logging.getLogger("bids_ms")

#: Gene-set libraries shipped in ``bids_ms/data/genesets`` (see its PROVENANCE.md):
#: name -> (file, description, licence).
BUILTIN_GENE_SETS: dict[str, tuple[str, str, str]] = {
    "celltypes": (
        "celltypes_seidlitz2020_pooled.gmt",
        "Seidlitz et al. 2020 pooled cell-type gene lists (7 classes, 5 single-cell studies)",
        "Seidlitz et al. 2020, Nat Commun 11:3358 (CC BY 4.0)",
    ),
    "pain": (
        "pain.gmt",
        "Pain gene sets: GO:0019233, DisGeNET pain terms, Enrichr GO BP 2023/MGI pain terms, "
        "and their union",
        "GO CC BY 4.0; DisGeNET CC BY-NC-SA 4.0 (non-commercial); Enrichr libraries Apache-2.0",
    ),
    "disorders": (
        "disorders_disgenet.gmt",
        "DisGeNET brain-disorder gene sets (Alzheimer, Parkinson, Huntington, epilepsy, autism, "
        "depression, anxiety, bipolar, schizophrenia)",
        "DisGeNET CC BY-NC-SA 4.0 (non-commercial use only)",
    ),
    "gobp": (
        "go_bp_orgHsegdb_3.16.gmt.xz",
        "GO biological process, propagated annotations, 5–2000 genes (org.Hs.eg.db 3.16)",
        "Gene Ontology CC BY 4.0",
    ),
    "wikipathways": (
        "wikipathways_2023_human.gmt.gz",
        "WikiPathways 2023 Human (Enrichr library)",
        "WikiPathways CC0",
    ),
}

#: Where to get gene-set libraries that bids-ms cannot ship.
DOWNLOAD_HINTS = (
    "KEGG and MSigDB GO/KEGG GMT files: https://www.gsea-msigdb.org/gsea/msigdb (c2.cp.kegg, "
    "c5.go.bp; free registration); Human Pain Genetics Database: https://humanpaingenetics.org/hpgdb; "
    "DisGeNET: https://www.disgenet.org/downloads"
)


@dataclass
class GeneSets:
    """A gene-set library: ``sets`` maps a set name to its genes."""

    name: str
    sets: dict[str, list[str]]
    source: str
    licence: str = ""
    description: str = ""


def _open_text(path: Path):
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    if name.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


_GENE_HEADERS = ("gene", "symbol", "gene_symbol", "genes")
_SET_HEADERS = ("set", "term", "class", "gene_set", "pathway", "category")


def _parse_gmt(path: Path, lines: list[str]) -> dict[str, list[str]]:
    """Sets of GMT lines ``name<TAB>description<TAB>gene…``."""
    sets: dict[str, list[str]] = {}
    for i, ln in enumerate(lines, 1):
        fields = ln.split("\t")
        genes = [g.strip() for g in fields[2:] if g.strip()]
        if len(fields) < 3 or not fields[0].strip() or not genes:
            raise InputDataError(
                f"{path}, line {i}: not a GMT line (need set name, description and at least "
                "one gene, tab-separated)"
            )
        sets.setdefault(fields[0].strip(), []).extend(genes)
    return sets


def _parse_two_columns(path: Path, lines: list[str]) -> dict[str, list[str]]:
    """Sets of ``gene,set`` (or ``set,gene`` under a header) rows, tab- or comma-separated."""
    sep = "\t" if "\t" in lines[0] else ","
    rows = [ln.split(sep) for ln in lines]
    bad = [i for i, r in enumerate(rows, 1) if len(r) < 2]
    if bad:
        raise InputDataError(
            f"{path}, line {bad[0]}: expected two columns (gene{sep!r}set); for a GMT file "
            "use the .gmt extension"
        )
    head = [c.strip().lower() for c in rows[0][:2]]
    gene_col = 0
    if any(h in _GENE_HEADERS for h in head) or any(h in _SET_HEADERS for h in head):
        if head[1] in _GENE_HEADERS:
            gene_col = 1
        rows = rows[1:]
    sets: dict[str, list[str]] = {}
    for r in rows:
        gene, setname = r[gene_col].strip(), r[1 - gene_col].strip()
        if gene and setname:
            sets.setdefault(setname, []).append(gene)
    if not sets:
        raise InputDataError(f"{path}: no gene,set rows")
    return sets


def read_gene_sets(path: str | Path, *, name: str | None = None) -> GeneSets:
    """Read a GMT file or a two-column ``gene,set`` table.

    GMT: one set per line, ``name<TAB>description<TAB>gene…`` (Broad/MSigDB format; Enrichr's
    empty description is fine). Two-column tables (``.csv``, ``.tsv``, ``.txt``): a gene column and
    a set column, with or without a header (a header row naming ``gene``/``symbol`` and
    ``set``/``term``/``class`` is recognised). Date-damaged symbols are repaired.

    Raises
    ------
    UsageError
        The file does not exist.
    InputDataError
        Empty or malformed file (the line is named).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--gene-sets {path}: no such file. {DOWNLOAD_HINTS}")
    lib_name = name or re.sub(r"(\.gmt|\.tsv|\.csv|\.txt)?(\.gz|\.xz)?$", "", path.name)
    lib_name = re.sub(r"[^A-Za-z0-9]+", "", lib_name) or "genesets"
    try:
        with _open_text(path) as fh:
            lines = [ln.rstrip("\r\n") for ln in fh]
    except (OSError, UnicodeDecodeError, EOFError, lzma.LZMAError) as err:
        raise InputDataError(f"{path}: cannot be read as text ({err})") from None
    lines = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InputDataError(f"{path}: the gene-set file is empty")
    is_gmt = path.name.lower().split(".gz")[0].split(".xz")[0].endswith(".gmt")
    sets = _parse_gmt(path, lines) if is_gmt else _parse_two_columns(path, lines)
    cleaned = {}
    for set_name, genes in sets.items():
        repaired, _ = repair_gene_symbols(genes)
        cleaned[set_name] = list(dict.fromkeys(repaired))
    return GeneSets(name=lib_name, sets=cleaned, source=str(path))


def load_builtin_gene_sets(name: str) -> GeneSets:
    """One of :data:`BUILTIN_GENE_SETS` (``celltypes``, ``pain``, ``disorders``, ``gobp``, ``wikipathways``)."""
    if name not in BUILTIN_GENE_SETS:
        raise UsageError(
            f"unknown built-in gene-set library {name!r}; choose from "
            f"{', '.join(BUILTIN_GENE_SETS)} or give a GMT / gene,set file"
        )
    fname, desc, licence = BUILTIN_GENE_SETS[name]
    path = Path(str(files("bids_ms") / "data" / "genesets" / fname))
    gs = read_gene_sets(path, name=name)
    gs.licence, gs.description, gs.source = licence, desc, f"bids_ms/data/genesets/{fname}"
    return gs


def resolve_gene_sets(spec: str | Path) -> GeneSets:
    """A ``--gene-sets`` value: a built-in library name, or a file path."""
    s = str(spec)
    if s in BUILTIN_GENE_SETS and not Path(s).exists():
        return load_builtin_gene_sets(s)
    return read_gene_sets(s)


# --------------------------------------------------------------------------- STRING

#: STRING evidence channels (``protein.links.detailed``/``full`` column names) used when text
#: mining is excluded (§2.11).
STRING_CHANNELS_NO_TEXTMINING = (
    "neighborhood",
    "fusion",
    "cooccurence",
    "coexpression",
    "experimental",
    "database",
)
_STRING_PRIOR = 0.041


def _combine_string_channels(scores: np.ndarray) -> np.ndarray:
    """STRING's combined score from channel scores (0–1000), prior-corrected (von Mering 2005)."""
    s = np.asarray(scores, dtype=float) / 1000.0
    s = np.clip((s - _STRING_PRIOR) / (1 - _STRING_PRIOR), 0.0, 1.0)
    combined = 1.0 - np.prod(1.0 - s, axis=1)
    combined = combined + _STRING_PRIOR * (1.0 - combined)
    return combined * 1000.0


def read_string_links(
    links: str | Path, *, info: str | Path | None = None, min_score: float = 400
) -> tuple[pd.DataFrame, dict]:
    """Read a STRING ``protein.links`` file into a gene-symbol edge list.

    With ``protein.links.detailed``/``full`` (channel columns), the combined score is recomputed
    without text mining from the other channels (STRING's Bayesian combination with its prior).
    With a plain ``protein.links`` file (only ``combined_score``) text mining cannot be removed;
    the note says so. Protein ids are mapped to symbols with ``protein.info`` (``preferred_name``)
    when given.

    Returns
    -------
    edges : DataFrame
        ``gene1, gene2, score`` with ``score ≥ min_score`` (0–1000), one row per unordered pair.
    meta : dict
        ``textmining_excluded`` (bool), ``note``, ``n_proteins`` (all proteins with an edge).
    """
    links = Path(links)
    if not links.is_file():
        raise UsageError(
            f"--string-links {links}: no such file; download 9606.protein.links.detailed.v12.0.txt.gz "
            "from https://string-db.org/cgi/download?species_text=Homo+sapiens"
        )
    try:
        df = pd.read_csv(links, sep=r"\s+")
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise InputDataError(f"{links}: cannot be read as a STRING links file ({err})") from None
    if not {"protein1", "protein2"}.issubset(df.columns):
        raise InputDataError(
            f"{links}: no protein1/protein2 columns; expected a STRING protein.links file"
        )
    channels = [c for c in STRING_CHANNELS_NO_TEXTMINING if c in df.columns]
    meta: dict = {}
    if "textmining" in df.columns and channels:
        score = _combine_string_channels(df[channels].to_numpy())
        meta["textmining_excluded"] = True
        meta["note"] = (
            f"combined score recomputed from channels {', '.join(channels)} (text mining excluded)"
        )
    elif "combined_score" in df.columns:
        score = df["combined_score"].to_numpy(dtype=float)
        meta["textmining_excluded"] = False
        meta["note"] = (
            "the links file has only combined scores, so text mining could not be excluded; give "
            "protein.links.detailed to reproduce §2.11"
        )
        LOGGER.warning("STRING: %s", meta["note"])
    else:
        raise InputDataError(f"{links}: neither channel columns nor combined_score")
    names = None
    if info is not None:
        info = Path(info)
        if not info.is_file():
            raise UsageError(f"--string-info {info}: no such file")
        inf = pd.read_csv(info, sep="\t")
        idcol = "#string_protein_id" if "#string_protein_id" in inf.columns else inf.columns[0]
        namecol = "preferred_name" if "preferred_name" in inf.columns else inf.columns[1]
        names = dict(zip(inf[idcol].astype(str), inf[namecol].astype(str), strict=False))
    p1 = df["protein1"].astype(str)
    p2 = df["protein2"].astype(str)
    if names is not None:
        p1 = p1.map(names).fillna(p1)
        p2 = p2.map(names).fillna(p2)
    edges = pd.DataFrame({"gene1": p1, "gene2": p2, "score": score})
    meta["n_proteins"] = int(pd.unique(pd.concat([edges.gene1, edges.gene2])).size)
    edges = edges[(edges.score >= min_score) & (edges.gene1 != edges.gene2)]
    a = np.where(edges.gene1 < edges.gene2, edges.gene1, edges.gene2)
    b = np.where(edges.gene1 < edges.gene2, edges.gene2, edges.gene1)
    edges = (
        pd.DataFrame({"gene1": a, "gene2": b, "score": edges.score.to_numpy()})
        .groupby(["gene1", "gene2"], as_index=False)["score"]
        .max()
    )
    return edges, meta
