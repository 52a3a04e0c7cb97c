"""Wall time of the group level at 250 and 1,000 participants (resampled ABIDE NYU + USM).

Run: ``python bench/bench_group.py [--n-spins 10000] [--sizes 250 1000]``. The 246 real
participants of ``examples/abide_nyu_usm`` are processed once by the participant level;
larger cohorts are bootstrap resamples of them (drawn with a fixed seed), written as
symbolic links under new participant labels, so only the group level is timed. Target:
1,000 participants with 10,000 spins cost less than twice 250.
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

from bids_ms.group import GroupSettings, run_group_level
from bids_ms.participant import ParticipantSettings, run_participant_level

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-spins", type=int, default=10000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 1000])
    args = ap.parse_args()
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
