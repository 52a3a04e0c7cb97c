"""Wall time of the group level at 250 and 1,000 participants (resampled ABIDE NYU + USM).

Run: ``python bench/bench_group.py [--n-spins 10000] [--sizes 250 1000] [--only WHAT]``.
The 246 real participants of ``examples/abide_nyu_usm`` are processed once by the
participant level; larger cohorts are bootstrap resamples of them (drawn with a fixed
seed), written as symbolic links under new participant labels, so only the group level is
timed. Three benchmarks (``--only sizes|labelperms|example``; all by default):

* ``sizes``: the group level without transcriptomics at each size. Target: 1,000
  participants with 10,000 spins cost less than twice 250.
* ``labelperms``: the hub-susceptibility label-permutation test (issue 9; 5,000
  permutations within site, t-map, controls' template, differentiation index and partial
  rho redone for each) at each size, against a plain numpy loop over the permutations
  (timed on ``--loop-perms`` permutations and extrapolated). Target: seconds at 1,000.
* ``example``: the default ``bids-ms … group --site-column site`` on the bundled example
  (246 participants, every default stage and the reports) through the command line, with
  the time of each stage read from the log. Target: under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bids_ms.config import GroupSettings, ParticipantSettings, stream_rng
from bids_ms.hubs import hub_permutation_test, label_permutations
from bids_ms.levels.group import load_group_data, run_group_level
from bids_ms.levels.participant import run_participant_level
from bids_ms.models import case_control, design_matrix

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"


def _resampled(src: Path, participants: pd.DataFrame, n: int, dst: Path, rng) -> None:
    (dst / "bids").mkdir(parents=True)
    out = dst / "out"
    out.mkdir()
    shutil.copy(src / "dataset_description.json", out)
    rows = []
    for k, i in enumerate(rng.integers(0, len(participants), size=n)):
        row = participants.iloc[i].copy()
        old = row["participant_id"]
        new = f"sub-R{k:05d}"
        anat = out / new / "anat"
        anat.mkdir(parents=True)
        for f in (src / old / "anat").iterdir():
            (anat / f.name.replace(old, new)).symlink_to(f)
        row["participant_id"] = new
        rows.append(row)
    pd.DataFrame(rows).to_csv(
        dst / "bids" / "participants.tsv", sep="\t", index=False, na_rep="n/a"
    )


def _plain_loop(y, is_case, covariates, categorical, perms) -> None:
    """The label-permutation null as a plain loop: every step refitted per permutation."""
    from scipy import stats

    for perm in perms:
        g = is_case[perm]
        t = case_control(y, is_case=g, covariates=covariates, categorical=categorical)["t"]
        control = ~g
        template = y[control].mean(axis=0)
        d = np.empty(len(y))
        k = control.sum()
        for i in range(len(y)):
            tmpl = (template * k - y[i]) / (k - 1) if control[i] else template
            d[i] = np.polyfit(tmpl, y[i], 1)[0]
        t_p = case_control(
            y, is_case=g, covariates=covariates.assign(_d=d), categorical=categorical
        )["t"]
        stats.spearmanr(t, template)
        stats.spearmanr(t_p, template)


def bench_label_perms(real: Path, part: pd.DataFrame, tmp: Path, args) -> None:
    print(
        f"# hub label permutations: {args.label_perms} within site, covariates age sex eTIV "
        f"site; plain loop timed on {args.loop_perms} permutations"
    )
    rng = np.random.default_rng(7)
    for n in args.sizes:
        dst = tmp / f"lp{n}"
        _resampled(real, part, n, dst, rng)
        data = load_group_data(
            GroupSettings(output_dir=dst / "out", bids_dir=dst / "bids", site_column="site")
        )
        y = data.regional.to_numpy()
        covs = data.participants[data.covariates]
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            perms = label_permutations(
                len(y),
                n_perms=args.label_perms,
                strata=data.participants["site"].to_numpy(),
                seed=stream_rng(1, "label_permutations"),
            )
            res = hub_permutation_test(
                y,
                is_case=data.is_case,
                design=design_matrix(covs, categorical=data.categorical),
                perms=perms,
            )
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        _plain_loop(y, data.is_case, covs, data.categorical, perms[: args.loop_perms])
        loop = (time.perf_counter() - t0) * args.label_perms / args.loop_perms
        print(
            f"{n:6d} participants   bids-ms {best:6.2f} s   plain loop {loop:8.1f} s "
            f"(extrapolated)   {loop / best:6.0f}x   p_perm = {res.p_perm:.3f}"
        )


class _Stages(logging.Handler):
    """Times of the log messages that end each stage of the group level."""

    #: (message prefix, the stage that ends when it is logged)
    MARKS = (
        ("group level:", "start-up, reading participants"),
        ("spins:", "case-control models, spins"),
        ("hub susceptibility: rho", "lofo, von Economo, hubs"),
        ("transcriptomic stage", "reference maps"),
        ("transcriptomics: PLS1", "transcriptomics + enrichment"),
        ("writing the group report", "writing the tables"),
    )

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.t0 = time.perf_counter()
        self.seen: list[tuple[str, float]] = []
        self.label_perms = ""

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "label permutations" in msg and " in " in msg and msg.endswith(" s"):
            self.label_perms = msg
        done = {s for s, _ in self.seen}
        for prefix, name in self.MARKS:
            if msg.startswith(prefix) and name not in done:
                self.seen.append((name, time.perf_counter() - self.t0))
                break


def bench_example(real: Path, tmp: Path) -> None:
    import bids_ms.cli.run as run

    out = tmp / "example"
    shutil.copytree(real, out, symlinks=True)
    stages = _Stages()
    setup = run._setup_logging

    def quiet_with_stages(verbosity, output_dir):  # INFO to the stage timer, warnings shown
        setup(verbosity, output_dir)
        for handler in run.LOGGER.handlers:
            handler.setLevel(logging.WARNING)
        run.LOGGER.addHandler(stages)

    run._setup_logging = quiet_with_stages
    t0 = time.perf_counter()
    try:
        code = run.main(
            [str(EXAMPLE / "bids"), str(out), "group", "--site-column", "site"]
            + ["--skip-bids-validation"]
        )
    finally:
        run._setup_logging = setup
    total = time.perf_counter() - t0
    print(f"# default group level on the example (exit code {code}); {os.cpu_count()} CPUs")
    previous = 0.0
    for name, stop in [*stages.seen, ("group report", total)]:
        print(f"  {name:32s} {stop - previous:7.2f} s")
        previous = stop
    print(f"  {'total':32s} {total:7.2f} s (target < 60 s)")
    print(f"  of which: {stages.label_perms}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-spins", type=int, default=10000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 1000])
    ap.add_argument("--label-perms", type=int, default=5000)
    ap.add_argument("--loop-perms", type=int, default=20)
    ap.add_argument("--only", choices=["sizes", "labelperms", "example"], nargs="+", default=None)
    args = ap.parse_args()
    only = set(args.only or ["sizes", "labelperms", "example"])
    logging.getLogger("bids_ms").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bids-ms-bench-") as tmp:
        tmp = Path(tmp)
        real = tmp / "real"
        run_participant_level(
            ParticipantSettings(
                bids_dir=EXAMPLE / "bids",
                output_dir=real,
                work_dir=tmp / "work",
                features=("volume", "area", "thickness"),
                fs_stats_tables=EXAMPLE / "freesurfer_tables",
            )
        )
        part = pd.read_csv(EXAMPLE / "bids" / "participants.tsv", sep="\t", dtype=str)
        if "labelperms" in only:
            bench_label_perms(real, part, tmp, args)
        if "example" in only:
            bench_example(real, tmp)
        if "sizes" in only:
            bench_sizes(real, part, tmp, args)


def bench_sizes(real: Path, part: pd.DataFrame, tmp: Path, args) -> None:
    rng = np.random.default_rng(2022)
    print(
        f"# group level, {args.n_spins} spins, covariates age sex eTIV site, 1 reference map; "
        f"{os.cpu_count()} CPUs"
    )
    times = {}
    for n in args.sizes:
        dst = tmp / f"n{n}"
        _resampled(real, part, n, dst, rng)
        settings = GroupSettings(
            output_dir=dst / "out",
            bids_dir=dst / "bids",
            site_column="site",
            n_spins=args.n_spins,
            seed=1,
            reference_maps=[
                ROOT / "tests" / "data" / "group" / "mddadult_case-controls_CortThick.csv"
            ],
        )
        t0 = time.perf_counter()
        run_group_level(settings)
        times[n] = time.perf_counter() - t0
        print(f"{n:6d} participants   {times[n]:7.2f} s")
    if len(times) >= 2:
        small, large = sorted(times)[0], sorted(times)[-1]
        print(f"ratio {large}/{small}          {times[large] / times[small]:7.2f} (target < 2)")


if __name__ == "__main__":
    main()
