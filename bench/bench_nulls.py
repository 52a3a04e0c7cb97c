"""Cost of the spatial nulls of the transcriptomic stage (issue 9), in one run.

1. Null list sizes: 100 spun response maps, each through the same 1,000 bootstrap resamples
   and |Z| > 3 threshold as the observed map (100,000 PLS1 refits), on the bundled AHBA matrix
   (34 left DK regions x 15,633 genes): ``bids_ms.pls.null_list_sizes`` (the resamples of all
   maps batched as matrix products) against a plain numpy loop (z-score the resample, ``Xᵀy``,
   normalise, sign-align), the loop timed on a subset and extrapolated.
2. Spatial-null enrichment of GO biological process (about 9,000 sets) with 1,000 spins
   (``bids_ms.enrichment.SpatialNull``), and a plain loop over spins for comparison (subset).
3. The whole transcriptomic stage with its defaults (10,000 spins; 1,000 spin + 1,000 shuffle
   permutations; 1,000 bootstraps; 100 null maps; 5 libraries with spatial and Fisher tests)
   on the bundled example's case-control t-map, with the stage times logged.

    python bench/bench_nulls.py [--subset 200] [--skip-stage]

Targets (issue 9): 1. under 15 s and more than 20x the loop; 2. under 30 s.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bids_ms.atlas import DK_LEFT_REGIONS
from bids_ms.enrichment import SpatialNull
from bids_ms.io.expression import load_default_expression
from bids_ms.io.genesets import load_builtin_gene_sets
from bids_ms.pls import bootstrap_indices, null_list_sizes, zscore
from bids_ms.spins import load_dk_centroids, spin_permutations

ROOT = Path(__file__).resolve().parents[1]
TMAP = ROOT / "tests" / "data" / "transcriptomics" / "abide_nyu_usm_desc-casecontrol_tmap.tsv"


def loop_list_sizes(X, y, perms, boots, threshold=3.0):
    """The plain numpy loop: one PLS1 refit per map and resample."""
    plus, minus = [], []
    for q in perms:
        yq = y[q]
        w0 = zscore(X).T @ zscore(yq)
        w0 /= np.linalg.norm(w0)
        W = np.empty((len(boots), X.shape[1]))
        for i, idx in enumerate(boots):
            Xb = X[idx]
            sd = Xb.std(axis=0, ddof=1)
            sd[sd == 0] = np.inf
            w = ((Xb - Xb.mean(axis=0)) / sd).T @ zscore(yq[idx])
            w /= np.linalg.norm(w)
            W[i] = w if np.corrcoef(w, w0)[0, 1] >= 0 else -w
        z = w0 / W.std(axis=0, ddof=1)
        plus.append(int((z > threshold).sum()))
        minus.append(int((z < -threshold).sum()))
    return np.array(plus), np.array(minus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=200, help="refits timed for the plain loop")
    ap.add_argument("--skip-stage", action="store_true", help="skip the whole-stage timing")
    args = ap.parse_args()

    expr = load_default_expression().loc[list(DK_LEFT_REGIONS)]
    X = expr.to_numpy()
    genes = list(expr.columns)
    y = pd.read_csv(TMAP, sep="\t").set_index("region")["value"].loc[list(DK_LEFT_REGIONS)]
    y = y.to_numpy()
    coords = load_dk_centroids().loc[list(DK_LEFT_REGIONS)].to_numpy()
    spins = spin_permutations(coords, ["L"] * 34, n_spins=1000, seed=1)
    boots = bootstrap_indices(34, n_boot=1000, seed=2)
    print(f"data: {X.shape[0]} regions x {X.shape[1]} genes\n")

    # 1. null list sizes
    null_list_sizes(X, y, perms=spins[:2], indices=boots[:50], threshold=3.0)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    res = null_list_sizes(X, y, perms=spins[:100], indices=boots, threshold=3.0)
    t_b, c_b = time.perf_counter() - t0, time.process_time() - c0
    print(f"null list sizes, 100 maps x 1000 bootstraps: {t_b:6.2f} s (CPU {c_b:.1f} s)")
    n_loop = max(1, args.subset)
    t0 = time.perf_counter()
    p_loop, m_loop = loop_list_sizes(X, y, spins[:1], boots[:n_loop])
    t_l = (time.perf_counter() - t0) * 100_000 / n_loop
    print(
        f"plain numpy loop (one map x {n_loop} refits timed, x{100_000 / n_loop:g}): {t_l:6.1f} s"
    )
    print(f"    speed-up: {t_l / t_b:.0f}x (target > 20x; target time < 15 s)")
    check = null_list_sizes(X, y, perms=spins[:1], indices=boots[:n_loop], threshold=3.0)
    print(
        f"    same lists on the timed map: batched {check['plus'][0]}/{check['minus'][0]}, "
        f"loop {p_loop[0]}/{m_loop[0]} (PLS1+/PLS1-; float32 may move a gene at the threshold)"
    )
    print(
        f"    median null sizes PLS1+ {np.median(res['plus']):g}, PLS1- "
        f"{np.median(res['minus']):g}\n"
    )

    # 2. spatial-null enrichment, GO BP
    t0 = time.perf_counter()
    gobp = load_builtin_gene_sets("gobp")
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    cat = SpatialNull(X, genes, y, perms=spins).categories(gobp.sets)
    t_s = time.perf_counter() - t0
    print(
        f"spatial-null enrichment, GO BP ({len(gobp.sets):,} sets) x 1000 spins: {t_s:6.2f} s "
        f"(reading the library: {t_load:.1f} s; target < 30 s)"
    )
    sub = 20
    t0 = time.perf_counter()
    from scipy.stats import rankdata

    col = {g: i for i, g in enumerate(genes)}
    set_idx = [np.array([col[g] for g in m if g in col], dtype=int) for m in gobp.sets.values()]
    set_idx = [i for i in set_idx if i.size]
    Xr = zscore(rankdata(X, axis=0))
    yr = zscore(rankdata(y))
    for q in spins[:sub]:
        g = Xr.T @ yr[q] / 33  # gene scores of one spun map, vectorised
        np.array([g[i].mean() for i in set_idx])  # category scores, one set at a time
    t_loop = (time.perf_counter() - t0) * 1000 / sub
    print(
        f"    plain loop over spins and sets ({sub} spins timed, x{1000 / sub:g}): {t_loop:6.1f} s"
    )
    print(
        f"    sets at spatial p < 0.05 (either tail): {int(((cat.p_upper < 0.05) | (cat.p_lower < 0.05)).sum())}\n"
    )

    # 3. the whole stage with defaults
    if not args.skip_stage:
        from bids_ms.config import GroupSettings, TranscriptomicsSettings, default_of
        from bids_ms.levels.transcriptomics import run_response_map

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        with tempfile.TemporaryDirectory(prefix="bids-ms-bench-") as tmp:
            t0 = time.perf_counter()
            run_response_map(
                TranscriptomicsSettings(response_map=TMAP),
                output_dir=Path(tmp),
                seed=7,
                n_spins=default_of(GroupSettings, "n_spins"),
            )
            print(f"transcriptomic stage with defaults: {time.perf_counter() - t0:6.1f} s")


if __name__ == "__main__":
    main()
