"""Reports users read: the group report, one page per participant, and the methods text.

Everything here reads derivatives already written (never recomputes), so the reports can
be rebuilt with ``--reports-only``.
"""

from __future__ import annotations

from .group_report import build_group_report
from .participant_report import build_participant_reports

__all__ = ["build_group_report", "build_participant_reports"]
