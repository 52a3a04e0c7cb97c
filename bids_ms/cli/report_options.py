"""Command-line options of the reports and the rebuild they trigger.

``--reports-only`` (or ``--reports_only``) rebuilds the reports from the derivatives already
in ``output_dir`` without recomputing anything: at the participant level the
``sub-<label>.html`` pages, at the group level ``group/report.html`` and
``logs/CITATION.md`` (and the group membership shown on the participant pages).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .types import both_spellings

__all__ = ["add_report_arguments", "build_reports"]


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the report options to ``parser`` as one argument group.

    Returns
    -------
    argparse._ArgumentGroup
    """
    grp = parser.add_argument_group(
        "reports",
        "HTML reports built from the derivatives: output_dir/sub-<label>.html per participant "
        "(participant level) and output_dir/group/report.html with the methods text in "
        "output_dir/logs/CITATION.md (group level)",
    )
    grp.add_argument(
        *both_spellings("--reports-only"),
        dest="reports_only",
        action="store_true",
        help="only rebuild the reports of this level from the derivatives already in output_dir "
        "(nothing is recomputed; no BIDS validation)",
    )
    grp.add_argument(
        *both_spellings("--participant-reports"),
        dest="participant_reports",
        choices=("all", "flagged", "none"),
        default=None,
        help="participant level: which sub-<label>.html pages to write: all, only those of "
        "participants with a quality flag (flagged), or none; a participant without a page "
        "still counts as done. Default: all up to 2,000 participants in output_dir, flagged "
        "above (the choice is logged). Pages are drawn over --nprocs processes",
    )
    return grp


def build_reports(
    analysis_level: str,
    output_dir: Path,
    *,
    participant_label: list[str] | None = None,
    participant_reports: str | None = "all",
    nprocs: int = 1,
) -> list[Path]:
    """Build the reports of ``analysis_level`` from the derivatives in ``output_dir``.

    Parameters
    ----------
    analysis_level : {'participant', 'group'}
    output_dir : Path
    participant_label : list of str, optional
        Participants whose pages to build at the participant level (default all).
    participant_reports : {'all', 'flagged', 'none', None}
        ``--participant-reports`` (``None``: the size rule).
    nprocs : int
        Processes drawing the participant pages.

    Returns
    -------
    list of Path
        The reports written.

    Raises
    ------
    bids_ms.errors.InputDataError
        Nothing in ``output_dir`` to report on.
    """
    from ..reports import build_group_report, build_participant_reports

    if analysis_level == "group":
        from ..reports.participant_report import (
            build_participants_index,
            read_quality_table,
            refresh_group_membership,
        )

        started = time.time()
        report = build_group_report(output_dir)
        # the participant pages say who entered the models, and why others did not
        refresh_group_membership(output_dir)
        # one sortable table of every participant's QC, linking to the pages: the group
        # report has just computed it (group/desc-qc_participants.tsv), so it is read back
        # rather than recomputed from every participant's derivatives
        quality = read_quality_table(output_dir, written_since=started)
        build_participants_index(output_dir, quality=quality)
        return [report]
    return build_participant_reports(
        output_dir, participants=participant_label, mode=participant_reports, nprocs=nprocs
    )
