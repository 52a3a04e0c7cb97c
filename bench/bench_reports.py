"""Time the participant pages (``sub-<label>.html``) on the bundled example (246 participants).

Run: ``python bench/bench_reports.py [--derivatives DIR] [--repeats 20]``. Without
``--derivatives`` the participant level is run first on ``examples/abide_nyu_usm`` (into a
temporary folder; not timed). Then, in this one process:

* all pages, cold: :func:`bids_ms.reports.build_participant_reports` for every participant,
  including reading the derivatives, the quality flags and drawing the templates (the
  surface views are rasterised once per process); wall and CPU time (on a shared machine
  the CPU time of this process is the steadier figure);
* seconds per page, warm: the same for 1 and for ``--repeats`` + 1 participants again, the
  difference divided by ``--repeats``;
* where a page's time goes: each figure of one participant, drawn ``--repeats`` times;
* with ``--nprocs N`` (N > 1): all pages again over N worker processes (issue 12), wall time.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

T_START = time.perf_counter()
from bids_ms.io.derivatives import load_participant_derivatives  # noqa: E402
from bids_ms.reports import build_participant_reports  # noqa: E402
from bids_ms.reports import participant_report as pr  # noqa: E402
from bids_ms.reports.figures import ParticipantFigures  # noqa: E402
from bids_ms.reports.qc import regional_robust_z  # noqa: E402
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


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _figures(out: Path, repeats: int) -> dict[str, float]:
    """Median seconds of each figure of the first participant."""
    everyone = load_participant_derivatives(out)
    part = everyone[0]
    values = pr._group_measures(everyone)
    drawer = ParticipantFigures(values)
    conn = pr._connectivity(out, part)
    own = part.morphometry.copy()
    own["ms"] = part.regional.reindex(own.index)
    own = own[drawer.measures]
    z = regional_robust_z(everyone).get(part.label)
    with tempfile.TemporaryDirectory(prefix="bids-ms-bench-") as tmp:
        tmp = Path(tmp)
        result = {
            "MS matrix": _median_time(
                lambda: drawer.ms_matrix(conn, tmp / "m.png", title=part.label), repeats
            ),
            "feature profile": _median_time(
                lambda: drawer.feature_profile(own, tmp / "p.png", robust_z=z), repeats
            ),
            "regional map (4 views)": _median_time(
                lambda: plot_regional_map(
                    part.regional,
                    tmp / "s.png",
                    title=f"{part.label}: regional MS",
                    label="regional MS",
                    cmap="viridis",
                    vmin=-0.1,
                    vmax=0.1,
                    symmetric=False,
                ),
                repeats,
            ),
        }
    drawer.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--derivatives", type=Path, help="a participant-level output folder to reuse")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--nprocs", type=int, default=1, help="also time all pages over N processes")
    args = ap.parse_args()
    logging.getLogger("bids_ms").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bids-ms-bench-") as tmp:
        out = args.derivatives
        if out is None:
            out = Path(tmp) / "out"
            _participant_level(out, Path(tmp) / "work")
        labels = sorted({p.subject for p in load_participant_derivatives(out)})
        print(
            f"# participant pages, {len(labels)} participants; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (one used)"
        )
        print(f"import bids_ms.reports                 {T_IMPORT:8.2f} s")
        t0, c0 = time.perf_counter(), time.process_time()
        build_participant_reports(out)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"all {len(labels)} pages, cold                {total:8.2f} s (CPU {cpu:.2f} s)")
        n = min(args.repeats, len(labels) - 1)
        t0 = time.perf_counter()
        build_participant_reports(out, participants=labels[:1])
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_participant_reports(out, participants=labels[: n + 1])
        more = time.perf_counter() - t0
        print(f"fixed cost of a build (read, QC, setup) {one:8.2f} s")
        print(f"one more page, warm                    {(more - one) / n:8.3f} s")
        for name, seconds in _figures(out, args.repeats).items():
            print(f"  {name:36s} {seconds * 1000:6.1f} ms")
        if args.nprocs > 1:
            t0 = time.perf_counter()
            build_participant_reports(out, nprocs=args.nprocs)
            total = time.perf_counter() - t0
            print(f"all {len(labels)} pages, --nprocs {args.nprocs}          {total:8.2f} s")


if __name__ == "__main__":
    main()
