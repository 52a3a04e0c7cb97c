"""Biobank scale (issue 12): stage times and peak memory of both levels at 1,000 to 40,000
participants, tables route.

Run: ``python bench/bench_scale.py [--sizes 1000 10000] [--nprocs 2] [--keep DIR]
[--participant-reports none] [--levels participant group]`` (``--sizes 1000 10000 40000`` for
the full issue-12 range; ``--participant-reports none`` times the derivatives without the pages).
After the participant level, the same command runs again on the finished folder (a resume that
finds every participant done: it must take seconds and rewrite nothing).

A cohort of N participants is generated from the bundled tables (``examples/abide_nyu_usm``,
246 real ABIDE participants): N rows are drawn with replacement (fixed seed), given unique ids
(``S000001`` in the tables, ``sub-S000001`` in participants.tsv), and every morphometric value and
eTIV is multiplied by ``1 + 0.02 z`` (z standard normal), so no two participants are equal.
Then, as a user runs them (``python -m bids_ms`` in a subprocess):

* ``participant --fs-stats-tables <tables> --features volume area thickness --nprocs P``;
* ``group --site-column site --nprocs P`` (every default: 10,000 spins, 5,000 label
  permutations, transcriptomics, reports).

Stage times come from the run's own log (``<out>/logs/*.log``, millisecond timestamps): the time
from the start of the level to each INFO line, and named stages where the line is recognised.
Peak memory: the largest single process (``ru_maxrss`` of the waited-for tree) and the sum of
the resident memory of the whole process tree (sampled every 0.2 s from /proc), both in MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+): (.*)$")
STAGES = {
    "participant": [
        ("indexing before the first participant", r"participant\(s\): \d+ to process"),
        ("MS derivatives", r"participant level finished"),
        ("participant pages", r"participant report\(s\)|participant reports? written"),
    ],
    "group": [
        ("loading derivatives", r"included|participants? in the models|case.control"),
        ("statistics (to the report)", r"writing the group report"),
        ("report", r"group report:"),
    ],
}


def make_cohort(n: int, dst: Path, *, seed: int = 12) -> tuple[Path, Path]:
    """Write a BIDS folder (participants.tsv) and aparcstats2table/asegstats2table tables for
    ``n`` participants resampled from the example, ids unique, values jittered by 2 %."""
    rng = np.random.default_rng(seed)
    participants = pd.read_csv(EXAMPLE / "bids" / "participants.tsv", sep="\t", dtype=str)
    tables_in = EXAMPLE / "freesurfer_tables"
    tables = {
        p.name: pd.read_csv(p, sep="\t", index_col=0) for p in sorted(tables_in.glob("*.tsv"))
    }
    first = next(iter(tables.values()))
    common = [i for i in first.index if all(i in t.index for t in tables.values())]
    ids = participants.set_index("abide_id").loc[[i for i in participants.abide_id if i in common]]
    draw = rng.integers(0, len(ids), size=n)
    new_ids = [f"S{k + 1:06d}" for k in range(n)]
    bids = dst / "bids"
    out_tables = dst / "tables"
    bids.mkdir(parents=True)
    out_tables.mkdir()
    for name, table in tables.items():
        rows = table.loc[ids.index[draw]]
        numeric = rows.select_dtypes("number")
        jitter = 1 + 0.02 * rng.standard_normal(numeric.shape)
        keep = ~numeric.columns.str.contains("NumVert|BrainSegVolNotVent", regex=True)
        values = numeric.to_numpy() * np.where(keep, jitter, 1.0)
        rows = pd.DataFrame(values, columns=numeric.columns, index=new_ids)
        rows.index.name = table.index.name
        rows.to_csv(out_tables / name, sep="\t", float_format="%.6f")
    pheno = ids.iloc[draw].reset_index()[list(participants.columns)]
    pheno["participant_id"] = [f"sub-{i}" for i in new_ids]
    pheno["abide_id"] = new_ids
    pheno.to_csv(bids / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    shutil.copy(EXAMPLE / "bids" / "dataset_description.json", bids)
    if (EXAMPLE / "bids" / "participants.json").is_file():
        shutil.copy(EXAMPLE / "bids" / "participants.json", bids)
    return bids, out_tables


def _tree_rss_mb(root_pid: int) -> float:
    """Resident memory of ``root_pid`` and all its descendants, in MB (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fobj:
                stat = fobj.read()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    tree = {root_pid}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(rss.get(pid, 0) for pid in tree) / 1e6


def run_level(args: list[str]) -> dict:
    """Run ``python -m bids_ms *args``; return wall time, exit code and peak memory."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bids_ms", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr_tail: list[str] = []
    for line in proc.stderr:
        stderr_tail = (stderr_tail + [line])[-20:]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    return {
        "wall": time.monotonic() - start,
        "returncode": proc.returncode,
        "max_process_mb": usage.ru_maxrss / 1024,
        # CPU seconds of the level and its waited-for workers: unlike the wall time, this
        # hardly moves with the load of a shared machine
        "cpu": usage.ru_utime + usage.ru_stime,
        "tree_mb": peak[0],
        "stderr": "".join(stderr_tail),
    }


def stage_times(log: Path, level: str) -> list[tuple[str, float]]:
    """(stage, seconds since the level started) for each named stage found in the log."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        match = _LOG_LINE.match(line)
        if match:
            when = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            times.append((when, match.group(2), match.group(3)))
    if not times:
        return []
    start = times[0][0]
    found = []
    for name, pattern in STAGES[level]:
        for when, kind, message in times:
            if kind == "INFO" and re.search(pattern, message):
                found.append((name, (when - start).total_seconds()))
                break
    found.append(("whole level (log)", (times[-1][0] - start).total_seconds()))
    return found


def _newest_log(out: Path, level: str) -> Path | None:
    logs = sorted((out / "logs").glob(f"bids-ms_{level}_*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def bench_size(
    n: int, work: Path, nprocs: int, reports: str | None = None, levels=("participant", "group")
) -> None:
    t0 = time.monotonic()
    bids, tables = make_cohort(n, work)
    print(f"\n== {n:,} participants (cohort written in {time.monotonic() - t0:.1f} s) ==")
    out = work / "out"
    runs = {
        "participant": [
            bids, out, "participant", "--fs-stats-tables", tables,
            "--features", "volume", "area", "thickness",
            "--skip-bids-validation", "--nprocs", nprocs, "-w", work / "work",
            *(["--participant-reports", reports] if reports else []),
        ],
        "group": [
            bids, out, "group", "--site-column", "site", "--skip-bids-validation",
            "--nprocs", nprocs, "-w", work / "work",
        ],
    }  # fmt: skip
    for level, args in runs.items():
        if level not in levels:
            continue
        result = run_level(args)
        status = "ok" if result["returncode"] == 0 else f"exit {result['returncode']}"
        print(
            f"{level} level: {result['wall']:.1f} s wall, {result['cpu']:.1f} s CPU ({status}); "
            "peak memory "
            f"{result['max_process_mb']:.0f} MB largest process, "
            f"{result['tree_mb']:.0f} MB whole process tree"
        )
        if result["returncode"] != 0:
            print(result["stderr"])
        log = _newest_log(out, level)
        if level == "participant":
            again = run_level(args)
            print(
                f"participant level again, every participant done: {again['wall']:.1f} s wall, "
                f"{again['cpu']:.1f} s CPU (exit {again['returncode']}), "
                f"{again['max_process_mb']:.0f} MB"
            )
        previous = 0.0
        for stage, seconds in stage_times(log, level) if log else []:
            if stage.startswith("whole"):
                print(f"  {stage:<40} {seconds:8.1f} s")
            else:
                print(f"  {stage:<40} {seconds - previous:8.1f} s  (at {seconds:.1f} s)")
                previous = seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the cohorts and outputs in this folder")
    parser.add_argument(
        "--participant-reports",
        choices=["all", "flagged", "none"],
        help="passed to the participant level (default: bids-ms's own default)",
    )
    parser.add_argument(
        "--levels", nargs="+", choices=["participant", "group"], default=["participant", "group"]
    )
    args = parser.parse_args(argv)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"bids-ms scale benchmark, {os.cpu_count()} CPUs, numpy {np.__version__}, "
        f"pandas {pd.__version__}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
    for n in args.sizes:
        if args.keep:
            work = args.keep / f"n{n}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            bench_size(n, work, args.nprocs, args.participant_reports, args.levels)
        else:
            with tempfile.TemporaryDirectory(prefix=f"bids-ms-scale-{n}-") as tmp:
                bench_size(n, Path(tmp), args.nprocs, args.participant_reports, args.levels)


if __name__ == "__main__":
    main()
