"""Reading the written derivatives that the reports show (nothing is recomputed here).

Each reader returns ``None`` when its file is absent, so a report can show every stage that
ran and say "not run" for the others. A file that exists but cannot be read is an
:class:`~bids_ms.errors.InputDataError` naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import InputDataError

__all__ = ["GroupResults", "read_table", "read_json"]


def read_table(path: str | Path) -> pd.DataFrame | None:
    """A BIDS TSV (``n/a`` as missing; other text such as the gene ``NA`` kept), or ``None``."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["n/a", ""])
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputDataError(
            f"{path}: cannot be read as a TSV ({err}); rerun the stage that wrote it"
        ) from None


def read_json(path: str | Path) -> dict | None:
    """A JSON sidecar as a dict, or ``None`` when absent."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputDataError(
            f"{path}: cannot be read as JSON ({err}); rerun the stage that wrote it"
        ) from None
    return data if isinstance(data, dict) else {"value": data}


class GroupResults:
    """The files of ``<out>/group/``, read on demand and cached.

    ``results.table('casecontrol_regional')`` reads ``desc-casecontrol_regional.tsv``;
    ``results.sidecar('casecontrol_regional')`` its ``.json``; ``results.json('hubs_stats')``
    reads ``desc-hubs_stats.json``.
    """

    def __init__(self, group_dir: str | Path) -> None:
        self.dir = Path(group_dir)
        self._cache: dict[str, object] = {}

    def path(self, desc: str, ext: str = "tsv") -> Path:
        return self.dir / f"desc-{desc}.{ext}"

    def has(self, desc: str, ext: str = "tsv") -> bool:
        return self.path(desc, ext).is_file()

    def table(self, desc: str) -> pd.DataFrame | None:
        key = f"t:{desc}"
        if key not in self._cache:
            self._cache[key] = read_table(self.path(desc, "tsv"))
        return self._cache[key]  # type: ignore[return-value]

    def sidecar(self, desc: str) -> dict | None:
        return self.json(desc)

    def json(self, desc: str) -> dict | None:
        key = f"j:{desc}"
        if key not in self._cache:
            self._cache[key] = read_json(self.path(desc, "json"))
        return self._cache[key]  # type: ignore[return-value]

    def genes(self, desc: str) -> list[str] | None:
        path = self.path(desc, "txt")
        if not path.is_file():
            return None
        return [
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]

    def enrichment_libraries(self) -> list[str]:
        """Names of the ``desc-enrichment_<name>.tsv`` files other than cell types, sorted."""
        names = sorted(
            p.name[len("desc-enrichment_") : -4] for p in self.dir.glob("desc-enrichment_*.tsv")
        )
        return [n for n in names if n != "celltypes"]
