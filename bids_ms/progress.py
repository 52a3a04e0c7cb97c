"""Progress bars for long steps (recon-all, spins, permutations, bootstraps).

Bars go to stderr and are shown only when stderr is a terminal and the log level is
not quieter than INFO (``-q``), so logs of batch jobs stay clean.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

__all__ = ["progress", "progress_enabled", "LOGGER"]

LOGGER = logging.getLogger("bids_ms")
T = TypeVar("T")


def progress_enabled() -> bool:
    """True when a progress bar would be seen by a person."""
    return sys.stderr.isatty() and LOGGER.getEffectiveLevel() <= logging.INFO


def progress(
    iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar when :func:`progress_enabled`, else return it as is."""
    return iter(
        tqdm(
            iterable, desc=desc, total=total, unit=unit, disable=not progress_enabled(), leave=False
        )
    )
