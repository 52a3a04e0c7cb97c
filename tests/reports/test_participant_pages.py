"""Participant pages at scale: --participant-reports, stored flags and pages over --nprocs.

On small subsets of the bundled example (tables route), the CLI run in a subprocess.
"""

from __future__ import annotations

import os
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
    stored_flags,
)
from bids_ms.reports.qc import participant_quality

from ..conftest import EXAMPLE, run_cli
from ..helpers import CHROMIUM, page_checks, render_dom

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


def test_flagged_rerun_reads_the_stored_flags_instead_of_recomputing(tmp_path, monkeypatch):
    from bids_ms.reports import participant_report as pr

    out = tmp_path / "out"
    _participant(out, "--participant-reports", "flagged")
    flagged = _flagged(out)  # computed now, independently of the stored file
    assert stored_flags(out) == {s: s in flagged for s in LABELS}

    def no_qc(*args, **kwargs):
        raise AssertionError("the quality measures were recomputed")

    monkeypatch.setattr(pr, "participant_quality", no_qc)
    skipped = [f"sub-{s}" for s in LABELS]
    assert pr.pages_to_write(out, [], skipped, mode="flagged") == []
    lost = sorted(flagged)[0]
    (out / f"sub-{lost}.html").unlink()
    assert pr.pages_to_write(out, [], skipped, mode="flagged") == [lost]
    without_page = sorted((set(LABELS) - flagged) | {lost})
    # the size rule at 8 participants means all: every subject without a page is due
    assert pr.pages_to_write(out, [], skipped, mode=None) == without_page
    # the same files rewritten (an identical rerun): the stored flags still apply
    marker = next((out / f"sub-{LABELS[0]}" / "anat").glob("*_desc-MS_regional.json"))
    later = marker.stat().st_mtime_ns + 2_000_000_000
    os.utime(marker, ns=(later, later))
    assert stored_flags(out) == {s: s in flagged for s in LABELS}
    # a participant rerun on other data: the stored flags no longer apply
    regional = marker.with_suffix(".tsv")
    text = regional.read_text()
    other = text.replace("\t0.", "\t-0.", 1) if "\t0." in text else text.replace("\t-0.", "\t0.", 1)
    assert other != text
    regional.write_text(other)
    assert stored_flags(out) is None
    assert pr.pages_to_write(out, [], skipped, mode="flagged") == without_page
    # a page whose shared template is gone is incomplete (and rewritten by the next run)
    kept = sorted(flagged - {lost})[0]
    assert page_complete(out, kept)
    next((out / "figures").glob("bids-ms-page-profile.*.png")).unlink()
    assert not page_complete(out, kept)


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


def test_page_overlays_carry_the_participants_values(tmp_path):
    """Each overlay against an independent drawing of the same values (matplotlib, scipy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    from bids_ms.atlas import DK_REGIONS
    from bids_ms.reports import surface
    from bids_ms.reports.page_figures import draw_page_templates

    rng = np.random.default_rng(3)
    regions = list(DK_REGIONS)
    measures = ["volume", "thickness", "ms"]
    group = {m: rng.normal(10.0, 2.0, (40, 68)) for m in measures}
    figs = draw_page_templates(group, tmp_path / "figures", threshold=3.5, ms_range=(8.0, 12.0))
    for layer in (figs.matrix, figs.profile, figs.surface):
        assert (tmp_path / "figures" / layer.template).is_file()

    # MS matrix: one pixel per cell, as imshow draws it at one screen pixel per cell
    values = np.clip(rng.normal(0, 0.5, (68, 68)), -1, 1)
    values[5, 5] = np.nan
    matrix = pd.DataFrame(values, index=regions, columns=regions)
    png = np.asarray(Image.open(figs.ms_matrix(matrix, tmp_path / "m.png")).convert("RGB"))
    fig = plt.figure(figsize=(68 / 100, 68 / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.canvas.draw()
    drawn = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    assert png.shape == (68, 68, 3)
    assert np.abs(png.astype(int) - drawn.astype(int)).max() <= 1
    assert tuple(png[5, 5]) == (255, 255, 255)  # NaN: the white of the axes

    # feature profile: one dot per value; circles exactly where |z| > threshold
    own = pd.DataFrame({m: rng.normal(10.0, 1.0, 68) for m in measures}, index=regions)
    z = pd.DataFrame(0.0, index=regions, columns=measures)
    z.iloc[[3, 40], 0] = 5.0
    z.iloc[10, 2] = -4.0
    overlay = Image.open(figs.feature_profile(own, tmp_path / "p.png", robust_z=z))
    rgba = np.asarray(overlay.convert("RGBA")).astype(int)
    opaque = rgba[..., 3] > 128
    dark = opaque & (rgba[..., :3].max(axis=2) < 80)
    red = opaque & (rgba[..., 0] > 150) & (rgba[..., 1] < 100)
    dots, n_dots = ndimage.label(dark)
    assert n_dots == 68 * len(measures)
    _, n_rings = ndimage.label(red, structure=np.ones((3, 3)))
    assert n_rings == 3
    centres = np.array(ndimage.center_of_mass(dark, dots, range(1, n_dots + 1)))
    # the panels stack top to bottom; in each, x follows the regions, y the values
    rows = centres[:, 0]
    order = np.argsort(rows)
    bands = [np.sort(order[68 * k : 68 * (k + 1)]) for k in range(len(measures))]
    for k, measure in enumerate(measures):
        band = centres[bands[k]]
        band = band[np.argsort(band[:, 1])]  # left to right: the regions in order
        rho = pd.Series(-band[:, 0]).corr(pd.Series(own[measure].to_numpy()), method="spearman")
        assert rho > 0.99, (measure, rho)

    # regional MS on the surface: each region in cmap(norm(value)); outside transparent
    regional = pd.Series(rng.uniform(8.0, 12.0, 68), index=regions)
    regional.iloc[7] = np.nan
    image = Image.open(figs.regional_map(regional, tmp_path / "s.png"))
    index = np.asarray(image)
    palette = np.asarray(image.getpalette()[: 3 * 70]).reshape(70, 3)
    view = surface.VIEWS[0]  # left lateral, the first view from the left
    labels, _ = surface.render_view(view)
    cmap = plt.get_cmap("viridis")
    for region in (0, 20, 33):
        expected = np.round(np.asarray(cmap((regional.iloc[region] - 8.0) / 4.0)[:3]) * 255)
        assert np.abs(palette[region + 1] - expected).max() <= 1
        assert (labels == region).sum() > 0
    np.testing.assert_array_equal(palette[8], [230, 230, 230])  # NaN: the missing colour
    assert image.info.get("transparency") == 0 and (index == 0).any()
    # the first view's pixels carry its regions (palette entry = region + 1)
    top = index.shape[0] - labels.shape[0]
    first = index[top:, : labels.shape[1]]
    inside = labels >= 0
    np.testing.assert_array_equal(first[inside], labels[inside] + 1)
