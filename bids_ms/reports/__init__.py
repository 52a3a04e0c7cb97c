"""Reports users read: the group report, one page per participant, and the methods text.

Everything here reads derivatives already written (never recomputes), so the reports can
be rebuilt with ``--reports-only``.

The package imports none of its modules itself: :func:`build_group_report` and
:func:`build_participant_reports` are loaded on first use (PEP 562 module ``__getattr__``),
so that the modules, which import their siblings through this package, form no import
circle with it.
"""

from __future__ import annotations

import importlib

__all__ = ["build_group_report", "build_participant_reports"]

_PUBLIC = {
    "build_group_report": "group_report",
    "build_participant_reports": "participant_report",
}


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
