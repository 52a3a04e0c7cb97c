"""One report per subject, ``<out>/sub-<label>.html``, as fMRIPrep writes them.

For each of the subject's sessions: the quality flags (against every participant in the
output folder), the MS matrix as a heat map, the feature profile against the group, and
regional MS on the cortical surface. Figures go to ``<out>/sub-<label>/figures/``.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..io.derivatives import (
    ParticipantDerivatives,
    atomic_write_text,
    load_participant_derivatives,
    read_ms_matrix,
    write_json,
)
from ..io.safety import die_with_parent
from ..progress import progress
from .html import Markup, Section, definition_list, escape, layered_figure, note, table, write_page
from .page_figures import PageFigures, draw_page_templates
from .qc import REGIONAL_OUTLIER_LIMIT, Z_THRESHOLD, participant_quality, regional_robust_z
from .results import read_json, read_table

__all__ = [
    "LARGE_COHORT",
    "REPORT_CHOICES",
    "build_participant_reports",
    "build_participants_index",
    "read_quality_table",
    "FLAGS_FILE",
    "stored_flags",
    "store_flags",
    "default_participant_reports",
    "page_complete",
    "pages_to_write",
    "refresh_group_membership",
]

LOGGER = logging.getLogger("bids_ms")


#: Above this many participants, ``--participant-reports`` defaults to ``flagged``:
#: pages nobody opens one by one are not worth their minutes at biobank scale.
LARGE_COHORT = 2000

#: The values of ``--participant-reports``.
REPORT_CHOICES = ("all", "flagged", "none")


def default_participant_reports(n_participants: int) -> str:
    """``all`` up to :data:`LARGE_COHORT` participants, ``flagged`` above."""
    return "all" if n_participants <= LARGE_COHORT else "flagged"


def _connectivity(output_dir: Path, part: ParticipantDerivatives) -> pd.DataFrame | None:
    return read_ms_matrix(output_dir, part.subject, part.session)


_SRC_RE = re.compile(r'<(?:img|script) src="([^"]+)"|url\(\'([^\']+)\'\)')

#: The folder of the files every participant page shares (templates of the figures, the
#: page script), relative to the output folder.
SHARED_FOLDER = "figures"


def page_complete(output_dir: Path, subject: str) -> bool:
    """True when ``sub-<subject>.html`` is whole and every file it uses exists.

    Those are its figures, the shared templates under them and the page script.
    """
    page = Path(output_dir) / f"sub-{subject}.html"
    try:
        text = page.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not text.rstrip().endswith("</html>"):
        return False
    for pair in _SRC_RE.findall(text):
        target = page.parent / html.unescape(pair[0] or pair[1])
        if not target.is_file() or target.stat().st_size == 0:
            return False
    return True


#: The quality flags of the last page build, per subject, with the cohort they were computed
#: on (in the shared folder): a rerun with ``--participant-reports flagged`` reads them
#: instead of recomputing everyone's quality measures.
FLAGS_FILE = "participant-flags.json"


def _cohort(output_dir: Path) -> str:
    """A fingerprint of the participants in ``output_dir``: the names and contents of their
    regional MS tables and sidecars (a participant added, removed or rerun on other data
    changes it; an identical rerun does not, so the stored flags stay as deterministic as
    the derivatives)."""
    out = Path(output_dir)
    digest = hashlib.sha256()
    for marker in sorted(out.glob("sub-*/**/anat/*_atlas-DK_desc-MS_regional.json")):
        digest.update(marker.relative_to(out).as_posix().encode() + b"\0")
        for path in (marker, marker.with_suffix(".tsv")):
            try:
                digest.update(path.read_bytes() + b"\0")
            except OSError:
                digest.update(b"missing\0")
    return digest.hexdigest()


def store_flags(output_dir: Path, qc: pd.DataFrame) -> Path:
    """Write :data:`FLAGS_FILE`: each subject's flag (any session flagged) and the cohort.

    Parameters
    ----------
    qc : pandas.DataFrame
        :func:`~bids_ms.reports.qc.participant_quality` of every participant in the folder.
    """
    out = Path(output_dir)
    subjects = qc["participant_id"].astype(str).str.removeprefix("sub-")
    flags = qc["flagged"].astype(bool).groupby(subjects.to_numpy()).any()
    path = out / SHARED_FOLDER / FLAGS_FILE
    write_json(
        path,
        {
            "Description": "Quality flags of each subject (any session flagged) against the "
            "participants of this folder, as the participant pages show them; read by reruns "
            "with --participant-reports flagged. Rewritten with the pages.",
            "Cohort": _cohort(out),
            "Participants": len(qc),
            "Flagged": {str(k): bool(v) for k, v in flags.items()},
        },
    )
    return path


def stored_flags(output_dir: Path) -> dict[str, bool] | None:
    """Subject → flagged, from :data:`FLAGS_FILE`; None if absent or computed on another cohort."""
    out = Path(output_dir)
    try:
        data = json.loads((out / SHARED_FOLDER / FLAGS_FILE).read_text(encoding="utf-8"))
        flags = {str(k): bool(v) for k, v in data["Flagged"].items()}
        cohort = data["Cohort"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return flags if cohort == _cohort(out) else None


def pages_to_write(
    output_dir: Path, done: Iterable[str], skipped: Iterable[str], *, mode: str | None = "all"
) -> list[str]:
    """Subjects whose page must be (re)written after the participant level.

    Parameters
    ----------
    done, skipped : iterable of str
        ``sub-<L>[_ses-<S>]`` processed now, and those already done before.
    mode : {'all', 'flagged', 'none', None}
        ``--participant-reports``; with ``none`` no page is due (a participant without a
        page is complete). With ``flagged`` or ``None`` (the size rule) the candidates
        are returned and :func:`build_participant_reports` keeps the flagged ones; when
        nobody was processed now and the flags stored by the last build
        (:func:`stored_flags`) are of the same participants, only the flagged candidates
        are returned, without recomputing anyone's quality measures.

    Returns
    -------
    list of str
        Subject labels (without ``sub-``): everyone processed now, and those done before
        whose page is missing or incomplete (a run stopped during the page phase).
    """
    if mode == "none":
        return []
    now = {label.split("_")[0][4:] for label in done}
    before = {label.split("_")[0][4:] for label in skipped} - now
    due = now | {s for s in before if not page_complete(output_dir, s)}
    if mode == "all" or now or not due:
        return sorted(due)
    flags = stored_flags(output_dir)
    if flags is None or (mode is None and len(flags) <= LARGE_COHORT):
        return sorted(due)  # build_participant_reports decides, from fresh quality measures
    flagged = {s for s in due if flags.get(s, True)}  # a subject not in the file: check it
    if not flagged:
        LOGGER.info(
            "participant pages: none of the %d participant(s) checked has a quality flag "
            "(flags stored in %s/%s by the last build); no page written",
            len(due),
            SHARED_FOLDER,
            FLAGS_FILE,
        )
    return sorted(flagged)


def _wanted(labels: Iterable[str] | None) -> set[str] | None:
    if labels is None:
        return None
    return {str(lab)[4:] if str(lab).startswith("sub-") else str(lab) for lab in labels}


def build_participant_reports(
    output_dir: Path,
    *,
    participants: Iterable[str] | None = None,
    mode: str | None = "all",
    nprocs: int = 1,
) -> list[Path]:
    """Write ``<out>/sub-<label>.html`` for each subject with MS derivatives.

    Parameters
    ----------
    output_dir : Path
        The bids-ms output folder.
    participants : iterable of str, optional
        Subject labels (with or without ``sub-``) to report on; default all. Quality flags
        always compare with every participant in the folder.
    mode : {'all', 'flagged', 'none', None}
        ``--participant-reports``: pages for every chosen participant, only for those with
        a quality flag, or none; ``None``: :func:`default_participant_reports` of the
        number of participants in the folder. The choice is logged.
    nprocs : int
        Worker processes drawing the pages (the pages are the same as with one).

    Returns
    -------
    list of Path
        The reports written, sorted.

    Raises
    ------
    InputDataError
        No participant derivatives in ``output_dir``, or none of ``participants`` has any.
    """
    out = Path(output_dir)
    everyone = load_participant_derivatives(out)
    if not everyone:
        raise InputDataError(
            f"{out}: no bids-ms participant derivatives; run the participant level first"
        )
    wanted = _wanted(participants)
    chosen = [p for p in everyone if wanted is None or p.subject in wanted]
    if not chosen:
        have = ", ".join(sorted({p.subject for p in everyone})[:5])
        raise InputDataError(
            f"{out}: no derivatives for participant(s) {', '.join(sorted(wanted or []))} (have e.g. {have})"
        )
    n_subjects = len({p.subject for p in everyone})
    if mode is None:
        mode = default_participant_reports(n_subjects)
        LOGGER.info(
            "participant pages: %s (--participant-reports default for %d participant(s): "
            "all up to %d, flagged above)",
            mode,
            n_subjects,
            LARGE_COHORT,
        )
    else:
        LOGGER.info("participant pages: %s (--participant-reports)", mode)
    if mode == "none":
        return []
    qc = participant_quality(everyone)
    store_flags(out, qc)
    qc.index = [p.label for p in everyone]
    if mode == "flagged":
        # a subject's page holds all its sessions: written when any session is flagged
        flagged = set(qc.index[qc["flagged"].astype(bool)])
        subjects = {p.subject for p in chosen if p.label in flagged}
        chosen = [p for p in chosen if p.subject in subjects]
        if not chosen:
            LOGGER.info(
                "participant pages: none of the %d participant(s) checked has a quality flag; "
                "no page written",
                len(wanted) if wanted is not None else n_subjects,
            )
            return []
    zs = regional_robust_z(everyone)
    group_values = _group_measures(everyone)
    ms_all = group_values["ms"]
    ms_range = (float(np.nanpercentile(ms_all, 2)), float(np.nanpercentile(ms_all, 98)))
    groups = _group_membership(out)
    # what every page shares is drawn once, here, and written to <out>/figures/
    figures = draw_page_templates(
        group_values, out / SHARED_FOLDER, threshold=Z_THRESHOLD, ms_range=ms_range
    )
    by_subject: dict[str, list[ParticipantDerivatives]] = {}
    for p in chosen:
        by_subject.setdefault(p.subject, []).append(p)
    state = {
        "out": out,
        "by_subject": by_subject,
        "figures": figures,
        "qc": qc.to_dict("index"),  # label -> its row: cheaper to read per page than .loc
        "zs": zs,
        "groups": groups,
        "n_group": len(everyone),
    }
    subjects = list(by_subject)
    workers = max(1, min(int(nprocs), len(subjects)))
    if workers == 1:
        _init_pages(state)
        try:
            written = [
                _page_job(s) for s in progress(subjects, desc="participant reports", unit="report")
            ]
        finally:
            _PAGES.clear()
    else:
        # The templates' layout and the shared group data reach the workers once, through
        # the initializer; each page is then its own overlays and HTML.
        with ProcessPoolExecutor(
            workers, initializer=_init_worker, initargs=(state, os.getpid())
        ) as pool:
            chunk = max(1, min(32, len(subjects) // (workers * 4)))
            written = list(
                progress(
                    pool.map(_page_job, subjects, chunksize=chunk),
                    desc="participant reports",
                    unit="report",
                    total=len(subjects),
                )
            )
    LOGGER.info("wrote %d participant report(s) in %s", len(written), out)
    return sorted(written)


_PAGES: dict = {}


def _init_pages(state: dict) -> None:
    """Set up one process (the main one, or a worker) to write pages: the shared data."""
    _PAGES.clear()
    _PAGES.update(state)


def _init_worker(state: dict, parent: int) -> None:
    """A page worker: it dies with the run (:func:`~bids_ms.io.safety.die_with_parent`)."""
    die_with_parent(parent)
    _init_pages(state)


def _page_job(subject: str) -> Path:
    s = _PAGES
    return _write_subject(
        s["out"],
        subject,
        s["by_subject"][subject],
        qc=s["qc"],
        zs=s["zs"],
        figures=s["figures"],
        groups=s["groups"],
        n_group=s["n_group"],
    )


def _group_measures(everyone: list[ParticipantDerivatives]) -> dict[str, np.ndarray]:
    feats = [
        f
        for f in everyone[0].morphometry.columns
        if all(f in p.morphometry.columns for p in everyone)
    ]
    values = {
        f: np.stack([p.morphometry[f].to_numpy(dtype=float) for p in everyone]) for f in feats
    }
    values["ms"] = np.stack([p.regional.to_numpy(dtype=float) for p in everyone])
    return values


#: The group report's quality table, which the participants index reuses.
QC_TABLE = "desc-qc_participants.tsv"


def read_quality_table(
    output_dir: Path, *, written_since: float | None = None
) -> pd.DataFrame | None:
    """``group/desc-qc_participants.tsv`` as :func:`participant_quality` returned it, or None.

    None when the file is absent, cannot be read, or was written before ``written_since``
    (a :func:`time.time` value): a table from an earlier group level may describe other
    participants. Missing values (``n/a``) come back as None in the text columns and NaN
    (``<NA>`` in ``n_outlying_regions``) in the numeric ones; numbers have the TSV's 10
    significant digits.
    """
    path = Path(output_dir) / "group" / QC_TABLE
    try:
        if written_since is not None and path.stat().st_mtime < written_since:
            return None
        qc = pd.read_csv(
            path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"reasons": str}
        )
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    needed = {"participant_id", "flagged", "n_outlying_regions", "reasons"}
    if not needed <= set(qc.columns) or qc["flagged"].dtype != bool:
        return None
    for col in ("participant_id", "session", "source", "reasons", "euler_source"):
        if col in qc:
            qc[col] = qc[col].astype(object).where(qc[col].notna(), None)
    qc["reasons"] = qc["reasons"].fillna("")
    if qc["n_outlying_regions"].isna().any():
        qc["n_outlying_regions"] = qc["n_outlying_regions"].astype("Int64")
    return qc


def build_participants_index(
    output_dir: Path, *, quality: pd.DataFrame | None = None
) -> Path | None:
    """Write ``<out>/group/participants.html``: every participant's QC measures and flags.

    One table, sortable by any column (a click on its header; the script is the reports'
    static file in ``group/figures/``, as the pages' content policy allows no inline
    script), each participant linking to its ``sub-<label>.html`` where that page exists
    (with ``--participant-reports flagged`` or ``none`` some do not).

    Parameters
    ----------
    output_dir : Path
    quality : pandas.DataFrame, optional
        The quality table of every participant in ``output_dir`` (:func:`participant_quality`,
        or :func:`read_quality_table` right after the group report wrote it). Default: read
        every participant's derivatives and compute it.

    Returns
    -------
    Path or None
        The page written; None when ``output_dir`` holds no participant derivatives
        (e.g. a group level run on ``--response-map`` alone), as there is nothing to list.
    """
    out = Path(output_dir)
    if quality is None:
        everyone = load_participant_derivatives(out)
        quality = participant_quality(everyone) if everyone else None
    if quality is None or quality.empty:
        LOGGER.info("no participant derivatives in %s: no participants.html", out)
        return None
    qc = quality.reset_index(drop=True)
    pages = {
        pid: f"../{pid}.html"
        for pid in qc["participant_id"].astype(str).unique()
        if page_complete(out, pid.removeprefix("sub-"))
    }
    qc["page"] = ["yes" if str(pid) in pages else "no" for pid in qc["participant_id"]]
    cols = [
        "participant_id",
        *(["session"] if "session" in qc and qc["session"].notna().any() else []),
        "page",
        "flagged",
        *[c for c in qc.columns if c.startswith("z_")],
        "n_outlying_regions",
        *[c for c in ("euler_lh", "euler_rh") if c in qc],
        "reasons",
    ]
    body = Markup(
        '<p class="lead">{} participants, {} flagged (|robust z| &gt; {} against all '
        "participants in this folder, or {}+ outlying regions). Click a column header to sort; "
        "the same table is <code>group/desc-qc_participants.tsv</code> after the group "
        "report.</p>"
    ).format(f"{len(qc):,}", f"{int(qc['flagged'].sum()):,}", Z_THRESHOLD, REGIONAL_OUTLIER_LIMIT)
    grid = table(
        # rows as mappings: no DataFrame.iterrows over tens of thousands of rows
        qc[[c for c in cols if c in qc.columns]].to_dict("records"),
        columns=cols,
        fmt=".2f",
        flag_column="flagged",
        links=pages,
        link_column="participant_id",
        max_rows=None,  # the index is every participant (its purpose: sort them all)
    )
    body += Markup(str(grid).replace('<table class="data">', '<table class="data sortable">', 1))
    group_dir = out / "group"
    page = write_page(
        group_dir / "participants.html",
        "bids-ms participants",
        f"{len(qc):,} participants: quality measures and flags",
        [Section("participants", "Participants", body)],
        assets=group_dir / "figures",
    )
    LOGGER.info("participants index: %s", page)
    return page


_NOT_RUN = "group level not run yet"
_BLOCK_START = "<!-- bids-ms:group-membership {label} -->"
_BLOCK_END = "<!-- /bids-ms:group-membership -->"
_BLOCK_RE = re.compile(
    r"<!-- bids-ms:group-membership (sub-[A-Za-z0-9]+(?:_ses-[A-Za-z0-9]+)?) -->"
    r".*?<!-- /bids-ms:group-membership -->",
    re.S,
)


def _group_membership(out: Path) -> dict[str, str]:
    """``sub-<L>[_ses-<S>]`` → what the group level did with it (its group, or why excluded).

    From ``group/desc-included_participants.tsv`` and the ``ExcludedParticipants`` of its
    sidecar; ``{}`` when the group level has not run. Participants in neither were not
    selected (``--participant-label`` at the group level): key ``""`` holds that text.
    """
    inc = read_table(out / "group" / "desc-included_participants.tsv")
    side = read_json(out / "group" / "desc-included_participants.json")
    side = side or read_json(out / "group" / "desc-casecontrol_global.json") or {}
    column = side.get("GroupColumn")
    if inc is None or "participant_id" not in inc or column not in inc:
        return {}

    def key(pid, ses) -> str:
        ses = "" if ses is None or pd.isna(ses) else str(ses).removeprefix("ses-")
        return str(pid) + (f"_ses-{ses}" if ses not in ("", "n/a") else "")

    result = {"": "not in the group models (not selected at the group level)"}
    for _, row in inc.iterrows():
        role = (
            "case"
            if str(row[column]) == str(side.get("CaseLabel"))
            else "control"
            if str(row[column]) == str(side.get("ControlLabel"))
            else ""
        )
        group = f"{row[column]}" + (f" ({role})" if role else "")
        result[key(row["participant_id"], row.get("session"))] = (
            f"{group}; in the group models with {len(inc)} participants"
        )
    for item in side.get("ExcludedParticipants") or []:
        if isinstance(item, dict) and item.get("participant_id"):
            label = key(item["participant_id"], item.get("session"))
            result[label] = (
                f"excluded from the group models: {item.get('reason', 'no reason given')}"
            )
    return result


def _membership_block(label: str, groups: dict[str, str]) -> Markup:
    """The marked group-membership text of one page, which the group level rewrites."""
    text = groups.get(label) or groups.get(label.split("_ses-")[0]) or groups.get("", _NOT_RUN)
    start = Markup(_BLOCK_START.format(label=escape(label)))
    return start + escape(text) + Markup(_BLOCK_END)


def refresh_group_membership(output_dir: Path) -> list[Path]:
    """Rewrite the group-membership block of every participant page after the group level.

    Only the text between ``<!-- bids-ms:group-membership ... -->`` markers changes; the
    figures and the rest of each page stay, so this costs a read and a write per page.
    (A JSON per participant loaded by the page would not work: pages open from
    ``file://``, where browsers block such loads, and their content policy allows no
    inline script.) Pages without markers (older pages) are left alone.

    Returns
    -------
    list of Path
        The pages rewritten.
    """
    out = Path(output_dir)
    groups = _group_membership(out)
    changed = []
    for page in sorted(out.glob("sub-*.html")):
        text = page.read_text(encoding="utf-8")
        new = _BLOCK_RE.sub(lambda m: _membership_block(m.group(1), groups), text)
        if new != text:
            atomic_write_text(page, new)
            changed.append(page)
    LOGGER.info("group membership updated in %d participant page(s)", len(changed))
    return changed


def _write_subject(
    out: Path,
    subject: str,
    parts: list[ParticipantDerivatives],
    *,
    qc: dict[str, dict],
    zs: dict[str, pd.DataFrame],
    figures: PageFigures,
    groups: dict[str, str],
    n_group: int,
) -> Path:
    fig_dir = out / f"sub-{subject}" / "figures"
    report = out / f"sub-{subject}.html"
    sections = []
    flagged_any = False
    for part in parts:
        label = part.label
        row = qc.get(label)
        flagged = bool(row is not None and row["flagged"])
        flagged_any |= flagged
        sid = label.replace("_", "-")
        prefix = f"ses-{part.session}: " if part.session else ""
        side = part.sidecar
        items = [
            ("Group", _membership_block(label, groups)),
            ("FreeSurfer statistics from", side.get("Source")),
            ("FreeSurfer version", side.get("FreeSurferVersion") or "not recorded"),
            ("Features", ", ".join(side.get("Features") or part.morphometry.columns)),
            ("eTIV", f"{side['eTIV']:,.0f} mm³" if side.get("eTIV") else "not recorded"),
            (
                "Global MS",
                f"{side.get('GlobalMS', float(part.regional.mean())):.4f}"
                + (
                    f" (robust z = {row['z_global_ms']:+.2f} against {n_group} participants)"
                    if row is not None and np.isfinite(row["z_global_ms"])
                    else ""
                ),
            ),
            (
                "Quality",
                Markup('<span class="badge flag">flagged</span> {}').format(str(row["reasons"]))
                if flagged
                else Markup('<span class="badge ok">no flag</span>'),
            ),
        ]
        if row is not None and np.isfinite(row.get("euler_mean", np.nan)):
            items.append(
                (
                    "Euler number (lh, rh)",
                    f"{row['euler_lh']:.0f}, {row['euler_rh']:.0f} "
                    f"(z of the mean = {row['z_euler_mean']:+.2f}; from {row['euler_source']})",
                )
            )
        elif row is not None:
            items.append(
                (
                    "Euler number",
                    "not available (no recon-all.log or aseg.stats for this participant)",
                )
            )
        body = definition_list(items)
        if row is not None:
            cols = [
                "participant_id",
                *(["session"] if part.session else []),
                *[c for c in row if c.startswith("z_")],
                "n_outlying_regions",
            ]
            body += table([row], columns=cols, fmt=".2f")
            body += Markup(
                f'<p class="lead">Modified z-scores against the {n_group} participants in this folder; flag at '
                f"|z| &gt; {Z_THRESHOLD} or {REGIONAL_OUTLIER_LIMIT}+ outlying regions.</p>"
            )
        sections.append(Section(f"{sid}-summary", f"{label}: summary and quality", body))

        conn = _connectivity(out, part)
        if conn is None:
            body = note("The MS matrix file is missing; rerun the participant level.", kind="warn")
        else:
            layer = figures.matrix
            body = layered_figure(
                figures.ms_matrix(conn, fig_dir / f"{label}_desc-msmatrix.png"),
                "The 68 × 68 morphometric-similarity matrix (Pearson r between the regions' "
                "z-scored feature vectors); left hemisphere first, lines separate the hemispheres.",
                base=out,
                template=out / SHARED_FOLDER / layer.template,
                size=layer.size,
                box=layer.box,
                width=760,
                pixelated=True,
                title=f"{label}: MS matrix",
                title_top=layer.title_top,
                lines=layer.lines,
            )
        sections.append(Section(f"{sid}-matrix", f"{prefix}MS matrix", body))

        values = part.morphometry.assign(
            ms=part.regional.reindex(part.morphometry.index).to_numpy()
        )
        layer = figures.profile
        body = layered_figure(
            figures.feature_profile(
                values[figures.measures],
                fig_dir / f"{label}_desc-profile.png",
                robust_z=zs.get(label),
            ),
            "Each feature and regional MS of this participant (dots) against the 5–95 % range and "
            f"median of all {n_group} participants; circled: |robust z| > {Z_THRESHOLD}.",
            base=out,
            template=out / SHARED_FOLDER / layer.template,
            size=layer.size,
            box=layer.box,
        )
        sections.append(Section(f"{sid}-profile", f"{prefix}Feature profile", body))

        layer = figures.surface
        body = layered_figure(
            figures.regional_map(part.regional, fig_dir / f"{label}_desc-regionalms_map.png"),
            "Regional MS (each region's mean MS with the other 67) on the fsaverage5 inflated "
            "surface; colour limits are the 2nd–98th percentiles over all participants, so pages compare.",
            base=out,
            template=out / SHARED_FOLDER / layer.template,
            size=layer.size,
            box=layer.box,
            shade=out / SHARED_FOLDER / layer.shade,
            title=f"{label}: regional MS",
            title_top=layer.title_top,
        )
        sections.append(Section(f"{sid}-surface", f"{prefix}Regional MS on the surface", body))
    about = Markup(
        "<p>Morphometric similarity after Seidlitz et al. 2018 and Martins et al. 2022. The group "
        'report is <a href="group/report.html">group/report.html</a> (when the group level has run); '
        "the methods text with references is in <code>logs/CITATION.md</code>.</p>"
    )
    sections.append(Section("about", "About", about))
    subtitle = (
        f"{len(parts)} session(s)" if len(parts) > 1 or parts[0].session else "participant report"
    )
    if flagged_any:
        subtitle += " · flagged for review"
    return write_page(
        report, f"bids-ms: sub-{subject}", subtitle, sections, assets=out / SHARED_FOLDER
    )
