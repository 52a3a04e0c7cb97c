"""Case–control OLS of 68 regions: the vectorised fit of bids-ms against statsmodels, in one run.

``bids_ms.models.case_control`` fits ``ms ~ group + covariates`` for every region with one QR
decomposition of the design (Martins et al. 2022, §2.4); statsmodels fits one region at a time.
The regional models run once per case–control map, and again for every label permutation of
the hub test (5,000 by default), for each leave-one-feature-out map and each cohort, so their
speed matters. The one model of global MS is fitted with statsmodels
(``bids_ms.models.global_model``), whose summary the report shows. This script times, on
synthetic data with the example's covariates (age, sex, eTIV, a two-level site):

* the 68 regional models with ``case_control`` and with a statsmodels ``OLS`` loop (largest
  relative difference of t printed);
* ``global_model`` (statsmodels) against the vectorised fit of one outcome.

    python bench/bench_models.py [--sizes 246 10000 40000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm

from bids_ms.models import case_control, design_matrix, global_model


def _data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    cov = pd.DataFrame(
        {
            "age": rng.uniform(7, 60, n),
            "sex": rng.choice(["F", "M"], n),
            "eTIV": rng.normal(1.5e6, 1.5e5, n),
            "site": rng.choice(["NYU", "USM"], n),
        }
    )
    is_case = rng.random(n) < 0.5
    y = rng.normal(size=(n, 68)) * 0.05 + 0.01 * is_case[:, None]
    return y, is_case, cov


def _best(repeat: int, func, *args, **kwargs) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        func(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best


def _statsmodels_loop(y: np.ndarray, x: np.ndarray) -> list:
    return [sm.OLS(y[:, j], x).fit() for j in range(y.shape[1])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[246, 10_000, 40_000])
    ap.add_argument("--repeat", type=int, default=5, help="best of this many runs")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(
        "participants | 68 regions, case_control | 68 regions, statsmodels loop | ratio | "
        "max rel. diff of t | global_model (statsmodels) | 1 outcome, case_control"
    )
    for n in args.sizes:
        y, is_case, cov = _data(n, rng)
        x = design_matrix(cov, group=is_case).to_numpy()
        kw = {"is_case": is_case, "covariates": cov}
        ours = _best(args.repeat, case_control, y, **kw)
        loop = _best(args.repeat, _statsmodels_loop, y, x)
        t_ours = case_control(y, **kw)["t"].to_numpy()
        t_sm = np.array([fit.tvalues[1] for fit in _statsmodels_loop(y, x)])
        diff = float(np.max(np.abs(t_ours - t_sm) / np.abs(t_sm)))
        glob = _best(args.repeat, global_model, y.mean(axis=1), **kw)
        one = _best(args.repeat, case_control, y.mean(axis=1), **kw)
        print(
            f"{n:,} | {ours * 1e3:.1f} ms | {loop * 1e3:.1f} ms | {loop / ours:.1f}x | "
            f"{diff:.1e} | {glob * 1e3:.1f} ms | {one * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
