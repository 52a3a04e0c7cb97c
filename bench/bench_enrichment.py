"""Conditional odds ratio of the Fisher enrichment: bids-ms against scipy, in one run.

``fisher_enrichment`` reports for every gene set R's conditional maximum-likelihood odds ratio
(``fisher.test``; Martins et al. 2022, §2.12). scipy computes the same estimate one table at a
time (``scipy.stats.contingency.odds_ratio(kind="conditional")``); bids-ms solves all tables of
a library at once (``bids_ms.enrichment.conditional_odds_ratio``). This script builds the 2×2
tables of GO biological process (about 9,000 sets, the largest built-in library) for a list of
500 genes drawn from the bundled AHBA background, times both (scipy on a subset, extrapolated)
and prints the largest relative difference.

    python bench/bench_enrichment.py [--subset 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats.contingency import odds_ratio

from bids_ms.enrichment import conditional_odds_ratio
from bids_ms.io.expression import load_default_expression
from bids_ms.io.genesets import load_builtin_gene_sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=500, help="tables timed with scipy")
    args = ap.parse_args()

    background = list(load_default_expression().columns)
    bg = set(background)
    rng = np.random.default_rng(0)
    genes = set(rng.choice(background, size=500, replace=False))
    sets = load_builtin_gene_sets("gobp")
    tables = []
    for members in sets.sets.values():
        mapped = bg.intersection(members)
        if not mapped:
            continue
        a = len(genes & mapped)
        b = len(genes) - a
        c = len(mapped) - a
        d = len(bg) - len(genes) - c
        tables.append((a, b, c, d))
    t = np.array(tables, dtype=np.int64)
    print(f"{len(t)} GO BP tables, background {len(bg)} genes, list 500 genes")

    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        conditional_odds_ratio(t[:, 0], t[:, 1], t[:, 2], t[:, 3])
        best = min(best, time.perf_counter() - start)
    print(f"bids-ms conditional_odds_ratio, all tables: {best:.3f} s (best of 3)")

    sub = t[rng.choice(len(t), size=min(args.subset, len(t)), replace=False)]
    start = time.perf_counter()
    ref = np.array(
        [odds_ratio([[a, b], [c, d]], kind="conditional").statistic for a, b, c, d in sub]
    )
    took = time.perf_counter() - start
    per = took / len(sub)
    print(
        f"scipy odds_ratio(kind='conditional'): {took:.3f} s for {len(sub)} tables, "
        f"{per * len(t):.2f} s for all (extrapolated), {per * len(t) / best:.0f}x slower"
    )
    sub_ours = conditional_odds_ratio(sub[:, 0], sub[:, 1], sub[:, 2], sub[:, 3])
    fin = np.isfinite(ref) & (ref > 0)
    same_edges = np.array_equal(sub_ours[~fin], ref[~fin])
    rel = np.max(np.abs(sub_ours[fin] / ref[fin] - 1)) if fin.any() else 0.0
    print(f"largest relative difference {rel:.2e}; 0 / inf cases equal: {same_edges}")


if __name__ == "__main__":
    main()
