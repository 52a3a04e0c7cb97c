"""Rebuild the expression test extracts from the full source files (see PROVENANCE.md).

Usage: ``python make_extracts.py AHBA_CSV_GZ ENIGMA_CSV OUT_DIR``. The extracts copy the source
text unchanged (header spelling, value text, byte-order mark, line endings); only columns are
dropped. gzip output is written with mtime 0 so that a rebuild is byte-identical.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

#: Gene symbols that spreadsheet software turned into dates (``Mar-01``, ``1-Sep``, …), with
#: pandas' de-duplication suffix allowed.
DATE_LIKE = re.compile(r"^(\d{1,2}-[A-Za-z]{3}|[A-Za-z]{3}-\d{1,2})(\.\d+)?$")
AHBA_EVERY = 50  # every 50th gene column of the AHBA matrix (gene columns 0, 50, 100, …)
ENIGMA_EVERY = 5  # every 5th gene column of the ENIGMA matrix


def _cut(text: str, keep) -> str:
    """Keep the columns ``keep(index, header_name)`` selects, on every line, text unchanged."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(newline)
    header = lines[0].split(",")
    cols = [i for i, name in enumerate(header) if keep(i, name.lstrip("\ufeff"))]
    out = []
    for line in lines:
        if not line:  # the final newline, when the file has one
            out.append(line)
            continue
        fields = line.split(",")
        assert len(fields) == len(header), "quoted commas are not expected in these files"
        out.append(",".join(fields[i] for i in cols))
    return newline.join(out)


def _write_gz(path: Path, text: str) -> None:
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as fh:
        fh.write(text.encode("utf-8"))


def main(ahba: str, enigma: str, out_dir: str) -> None:
    out = Path(out_dir)
    text = gzip.open(ahba, "rb").read().decode("utf-8")
    # columns 0 and 1 are `label` and `Region`; gene column j is file column j + 2
    sub = _cut(text, lambda i, n: i < 2 or (i - 2) % AHBA_EVERY == 0 or bool(DATE_LIKE.match(n)))
    _write_gz(out / "ahba_dk_extract.csv.gz", sub)
    text = Path(enigma).read_bytes().decode("utf-8")
    # column 0 is `label` (the region names)
    sub = _cut(text, lambda i, n: i == 0 or (i - 1) % ENIGMA_EVERY == 0)
    _write_gz(out / "enigma_allgenes_stable_r0.6_extract.csv.gz", sub)


if __name__ == "__main__":
    main(*sys.argv[1:4])
