"""Time the participant pages (``sub-<label>.html``) at 1,000 participants.

Run: ``python bench/bench_reports.py [--participants 1000] [--derivatives DIR] [--nprocs N]``.
Without ``--derivatives`` the participant level is run first on the bundled example
``examples/abide_nyu_usm`` (246 participants, into a temporary folder; not timed), and its
participants' derivatives are copied under new labels (``sub-<label>r<k>``) up to
``--participants``. Then, in this one process:

* all pages: :func:`bids_ms.reports.build_participant_reports` for every participant,
  including reading the derivatives, the quality flags and drawing the shared templates;
  wall and CPU time (on a shared machine the CPU time of this process is the steadier
  figure);
* CPU per page: the CPU time of each page's job (its overlays, its HTML and their atomic
  writes), median and mean over all pages; the fixed cost of a build is the rest;
* where a page's time goes: each overlay of one participant, drawn ``--repeats`` times;
* the PNG writer of the group report's surface maps (matplotlib ``imsave``);
* with ``--nprocs N`` (N > 1): all pages again over N worker processes, wall time.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

T_START = time.perf_counter()
from bids_ms.io.derivatives import load_participant_derivatives  # noqa: E402
from bids_ms.reports import build_participant_reports  # noqa: E402
from bids_ms.reports import participant_report as pr  # noqa: E402
from bids_ms.reports.figures import write_png  # noqa: E402
from bids_ms.reports.page_figures import draw_page_templates  # noqa: E402
from bids_ms.reports.qc import Z_THRESHOLD, regional_robust_z  # noqa: E402
from bids_ms.reports.surface import plot_regional_map  # noqa: E402

T_IMPORT = time.perf_counter() - T_START
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"


def _participant_level(out: Path, work: Path) -> None:
    from bids_ms.config import ParticipantSettings
    from bids_ms.levels.participant import run_participant_level

    run_participant_level(
        ParticipantSettings(
            bids_dir=EXAMPLE / "bids",
            output_dir=out,
            work_dir=work,
            features=("volume", "area", "thickness"),
            fs_stats_tables=EXAMPLE / "freesurfer_tables",
        )
    )


def _replicate(out: Path, n: int) -> None:
    """Copy the participants' derivatives under new labels until ``out`` holds ``n``."""
    originals = sorted(p for p in out.glob("sub-*") if p.is_dir())
    have, k = len(originals), 1
    while have < n:
        for src in originals:
            if have >= n:
                break
            label = src.name[4:]
            new = f"{label}r{k}"
            for path in src.rglob("*"):
                if path.is_file() and "figures" not in path.parts:
                    rel = path.relative_to(src).as_posix().replace(f"sub-{label}", f"sub-{new}")
                    target = out / f"sub-{new}" / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if path.suffix == ".json":
                        text = path.read_text(encoding="utf-8").replace(
                            f"sub-{label}", f"sub-{new}"
                        )
                        target.write_text(text, encoding="utf-8")
                    else:
                        shutil.copyfile(path, target)
            have += 1
        k += 1


def _median_cpu(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times))


def _overlays(out: Path, repeats: int) -> dict[str, float]:
    """Median CPU seconds of each overlay of the first participant, and of write_png."""
    everyone = load_participant_derivatives(out)
    part = everyone[0]
    values = pr._group_measures(everyone)
    z = regional_robust_z(everyone).get(part.label)
    with tempfile.TemporaryDirectory(prefix="bids-ms-bench-") as tmp:
        tmp = Path(tmp)
        figures = draw_page_templates(
            values, tmp / "figures", threshold=Z_THRESHOLD, ms_range=(-0.1, 0.1)
        )
        conn = pr._connectivity(out, part)
        own = part.morphometry.copy()
        own["ms"] = part.regional.reindex(own.index)
        own = own[figures.measures]
        result = {
            "MS matrix overlay (68 x 68 PNG)": _median_cpu(
                lambda: figures.ms_matrix(conn, tmp / "m.png"), repeats
            ),
            "feature profile overlay (paletted PNG)": _median_cpu(
                lambda: figures.feature_profile(own, tmp / "p.png", robust_z=z), repeats
            ),
            "regional map (palette swap)": _median_cpu(
                lambda: figures.regional_map(part.regional, tmp / "s.png"), repeats
            ),
        }
        # a real surface map of the group report (regional MS of this participant)
        plot_regional_map(part.regional, tmp / "map.png", title="regional MS", symmetric=False)
        rgb = np.asarray(Image.open(tmp / "map.png").convert("RGB"))
        result["surface map PNG, matplotlib imsave (group report)"] = _median_cpu(
            lambda: write_png(rgb, tmp / "g.png"), max(3, repeats // 4)
        )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--derivatives", type=Path, help="a participant-level output folder to reuse")
    ap.add_argument("--participants", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--nprocs", type=int, default=1, help="also time all pages over N processes")
    args = ap.parse_args()
    logging.getLogger("bids_ms").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bids-ms-bench-") as tmp:
        out = Path(tmp) / "out"
        if args.derivatives is not None:
            shutil.copytree(args.derivatives, out, ignore=shutil.ignore_patterns("*.html"))
        else:
            _participant_level(out, Path(tmp) / "work")
        _replicate(out, args.participants)
        labels = sorted({p.subject for p in load_participant_derivatives(out)})
        print(
            f"# participant pages, {len(labels)} participants; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (one used)"
        )
        print(f"import bids_ms.reports                     {T_IMPORT:8.2f} s")
        page_cpu: list[float] = []
        job = pr._page_job

        def timed(subject):
            c0 = time.process_time()
            try:
                return job(subject)
            finally:
                page_cpu.append(time.process_time() - c0)

        pr._page_job = timed
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            build_participant_reports(out, mode="all")
            total, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            pr._page_job = job
        per_page = np.asarray(page_cpu)
        print(f"all {len(labels)} pages                     {total:8.2f} s (CPU {cpu:.2f} s)")
        print(
            f"CPU per page                           {np.median(per_page) * 1000:8.2f} ms median, "
            f"{per_page.mean() * 1000:.2f} ms mean"
        )
        print(f"fixed CPU of a build (read, QC, templates) {cpu - per_page.sum():6.2f} s")
        for name, seconds in _overlays(out, args.repeats).items():
            print(f"  {name:52s} {seconds * 1000:7.2f} ms")
        if args.nprocs > 1:
            t0 = time.perf_counter()
            build_participant_reports(out, mode="all", nprocs=args.nprocs)
            total = time.perf_counter() - t0
            print(f"all {len(labels)} pages, --nprocs {args.nprocs}          {total:8.2f} s")


if __name__ == "__main__":
    main()
