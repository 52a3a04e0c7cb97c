"""Participant pages at scale (issue 12): --participant-reports and pages over --nprocs.

On small subsets of the bundled example (tables route), the CLI run in a subprocess.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bids_ms.errors import EXIT_USAGE
from bids_ms.io.derivatives import load_participant_derivatives
from bids_ms.reports.participant_report import (
    LARGE_COHORT,
    build_participants_index,
    default_participant_reports,
    page_complete,
)
from bids_ms.reports.qc import participant_quality

from .conftest import EXAMPLE, run_cli
from .helpers import CHROMIUM, page_checks, render_dom

BIDS = EXAMPLE / "bids"
TABLES = EXAMPLE / "freesurfer_tables"
FEATURES = ("--features", "volume", "area", "thickness")
# the first 8 participants: among them, 3 carry a quality flag (against those 8)
LABELS = sorted(pd.read_csv(BIDS / "participants.tsv", sep="\t").participant_id.str[4:])[:8]


def _participant(out: Path, *extra, labels=LABELS):
    res = run_cli(
        BIDS,
        out,
        "participant",
        "--fs-stats-tables",
        TABLES,
        *FEATURES,
        "--skip-bids-validation",
        "--participant-label",
        *labels,
        *extra,
    )
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The 8 participants with the default pages, over 2 processes. Read-only."""
    out = tmp_path_factory.mktemp("pages") / "out"
    return out, _participant(out, "--nprocs", "2")


@pytest.fixture(scope="module")
def flagged_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The 8 participants with --participant-reports flagged. Read-only: copy it first."""
    out = tmp_path_factory.mktemp("flagged") / "out"
    return out, _participant(out, "--participant-reports", "flagged")


def _pages(out: Path) -> set[str]:
    return {p.name[4:-5] for p in out.glob("sub-*.html")}


def _flagged(out: Path) -> set[str]:
    everyone = load_participant_derivatives(out)
    qc = participant_quality(everyone)
    return {p.subject for p, flag in zip(everyone, qc["flagged"], strict=True) if flag}


def test_default_rule_is_all_up_to_2000_then_flagged():
    assert LARGE_COHORT == 2000
    assert default_participant_reports(1) == "all"
    assert default_participant_reports(LARGE_COHORT) == "all"
    assert default_participant_reports(LARGE_COHORT + 1) == "flagged"
    assert default_participant_reports(40_000) == "flagged"


def test_default_writes_every_page_and_says_so(default_run):
    out, res = default_run
    assert _pages(out) == set(LABELS)
    assert "participant pages: all (--participant-reports default for 8 participant(s)" in (
        res.stderr
    )


def test_flagged_writes_only_the_flagged_participants_pages(flagged_run, tmp_path):
    out = Path(shutil.copytree(flagged_run[0], tmp_path / "out"))
    res = flagged_run[1]
    flagged = _flagged(out)
    assert 0 < len(flagged) < len(LABELS)  # the subset has both kinds
    assert _pages(out) == flagged
    assert all(page_complete(out, s) for s in flagged)
    assert not any((out / f"sub-{s}" / "figures").exists() for s in set(LABELS) - flagged)
    assert "participant pages: flagged (--participant-reports)" in res.stderr
    # the unflagged participants, without a page, are complete: a rerun writes nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("sub-*.html")}
    res = _participant(out, "--participant-reports", "flagged")
    assert "8 participant(s): 0 to process, 8 already done" in res.stderr
    assert "none of the 5 participant(s) checked has a quality flag" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("sub-*.html")} == stamps
    # a flagged participant's page lost: the rerun writes it back, and only it
    lost = sorted(flagged)[0]
    (out / f"sub-{lost}.html").unlink()
    res = _participant(out, "--participant-reports", "flagged")
    assert _pages(out) == flagged
    assert "wrote 1 participant report(s)" in res.stderr


def test_none_writes_no_page_and_all_then_writes_the_missing_ones(tmp_path):
    out = tmp_path / "out"
    res = _participant(out, "--participant-reports", "none")
    assert _pages(out) == set()
    assert not list(out.glob("sub-*/figures"))
    assert "participant pages: none" in res.stderr
    res = _participant(out, "--participant-reports", "none")
    assert "0 to process, 8 already done" in res.stderr
    assert _pages(out) == set()
    res = _participant(out, "--participant-reports", "all")
    assert "0 to process, 8 already done" in res.stderr
    assert "8 participant page(s) missing or incomplete: written now" in res.stderr
    assert _pages(out) == set(LABELS)
    assert all(page_complete(out, s) for s in LABELS)


_STAMP = re.compile(r" on \d{4}-\d\d-\d\d \d\d:\d\d UTC")


def test_parallel_pages_equal_serial_pages(default_run, tmp_path):
    serial, parallel = tmp_path / "serial", default_run[0]  # default_run: --nprocs 2
    _participant(serial, "--nprocs", "1")
    files = sorted(p.relative_to(serial) for p in serial.glob("sub-*/**/*") if p.is_file())
    files += sorted(p.relative_to(serial) for p in serial.glob("sub-*.html"))
    assert len([f for f in files if f.suffix == ".html"]) == len(LABELS)
    assert len([f for f in files if f.suffix == ".png"]) >= 3 * len(LABELS)
    others = sorted(p.relative_to(parallel) for p in parallel.glob("sub-*/**/*") if p.is_file())
    others += sorted(p.relative_to(parallel) for p in parallel.glob("sub-*.html"))
    assert files == others
    for rel in files:
        if rel.suffix == ".html":
            a = _STAMP.sub("", (serial / rel).read_text(encoding="utf-8"))
            b = _STAMP.sub("", (parallel / rel).read_text(encoding="utf-8"))
            assert a == b, rel
        else:
            assert (serial / rel).read_bytes() == (parallel / rel).read_bytes(), rel


@pytest.mark.parametrize("value", ["some", "ALL"])
def test_unknown_participant_reports_value_is_refused(tmp_path, value):
    res = run_cli(BIDS, tmp_path / "out", "participant", "--participant-reports", value)
    assert res.returncode == EXIT_USAGE
    assert "--participant-reports" in res.stderr and "Traceback" not in res.stderr


def test_participants_index_links_existing_pages_and_sorts_in_chromium(flagged_run, tmp_path):
    out = Path(shutil.copytree(flagged_run[0], tmp_path / "out"))
    flagged = _flagged(out)
    page = build_participants_index(out)
    assert page == out / "group" / "participants.html"
    text = page.read_text(encoding="utf-8")
    rows = re.findall(r"<tr[^>]*><td[^>]*>(.*?)</td>", text)
    assert len(rows) == len(LABELS)
    linked = set(re.findall(r'<a href="\.\./sub-(\w+)\.html">', text))
    assert linked == flagged  # only the pages that exist
    assert len(re.findall(r'<tr class="flag">', text)) == len(flagged)
    assert "<script>" not in text and 'class="data sortable"' in text
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    everyone = load_participant_derivatives(out)
    qc = participant_quality(everyone)
    expected = list(qc.sort_values("z_global_ms", na_position="last").participant_id)
    dom, _ = render_dom(page.resolve().as_uri() + "#sort=z_global_ms")
    assert page_checks(dom)["errors"] == 0
    body = dom.split("<tbody>", 1)[1]
    order = re.findall(r"<tr[^>]*><td[^>]*>(?:<a [^>]*>)?(sub-\w+)", body)
    assert order == expected
    assert order != sorted(order)  # the sort did something
