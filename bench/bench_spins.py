"""Time 10,000 spin permutations of the 68 DK regions: bids-ms vs neuromaps.

Run: ``python bench/bench_spins.py [--n-spins 10000] [--repeats 3]``. neuromaps is
optional (``pip install neuromaps``; a benchmark peer only, not a dependency of bids-ms);
both use the same centroids (``bids_ms.spins.load_dk_centroids``), the same hemisphere
split and the Hungarian assignment (neuromaps ``gen_spinsamples(method='hungarian')``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from bids_ms.atlas import DK_REGIONS, hemisphere_of
from bids_ms.spins import load_dk_centroids, spin_permutations


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-spins", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    coords = load_dk_centroids().to_numpy()
    hemi = [hemisphere_of(r) for r in DK_REGIONS]
    n = args.n_spins
    print(
        f"# spins: {n} rotations of {len(hemi)} DK regions; best of {args.repeats}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    ours = _best(lambda: spin_permutations(coords, hemi, n_spins=n, seed=1), args.repeats)
    print(f"bids-ms spin_permutations            {ours:8.2f} s")
    try:
        from neuromaps.nulls.spins import gen_spinsamples
    except ImportError as err:
        print(f"neuromaps gen_spinsamples            not installed ({err})")
        return
    hemiid = np.array([0 if h == "L" else 1 for h in hemi])
    theirs = _best(
        lambda: gen_spinsamples(coords, hemiid, n_rotate=n, method="hungarian", seed=1),
        args.repeats,
    )
    print(f"neuromaps gen_spinsamples(hungarian) {theirs:8.2f} s")
    print(f"speed-up                             {theirs / ours:8.1f} x (target >= 5x)")
    left = coords[:34]
    t_left = _best(lambda: spin_permutations(left, hemi[:34], n_spins=n, seed=1), args.repeats)
    print(f"bids-ms, 34 left regions only        {t_left:8.2f} s")


if __name__ == "__main__":
    main()
