"""Cost of the PLS resamplings of the transcriptomic stage (issue 4), in one run.

The work: 1000 permutations of the response (PLS refitted with 15 components each, variance
explained per component) + 1000 bootstrap resamples of regions (PLS1 refitted, weights
sign-aligned, SE and Z) on the bundled AHBA matrix (34 left DK regions x 15,633 genes) with a
real ENIGMA map as the response. Three implementations of the same work:

1. bids-ms (``bids_ms.pls``: kernel/Krylov PLS for the permutations, batched weighted
   correlations for the bootstraps);
2. a plain numpy loop (NIPALS with deflation per permutation; z-score + ``Xᵀy`` per bootstrap);
3. scikit-learn ``PLSRegression`` refits.

The loops are timed on a subset of the resamples and extrapolated to 1000 + 1000 (printed as
such) unless ``--full`` is given. Peak memory is tracemalloc's peak of the section (numpy
allocations are traced).

    python bench/bench_pls.py [--full] [--subset 100]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from bids_ms.atlas import DK_LEFT_REGIONS
from bids_ms.io.expression import load_default_expression
from bids_ms.pls import bootstrap_indices, pls1_bootstrap, pls_permutation_test, zscore

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "tests" / "data" / "transcriptomics" / "mddadult_case-controls_CortThick.csv"
N_COMP = 15


def measure(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return out, dt, peak


def numpy_nipals_r2(X, y, k):
    Xk = zscore(X)
    yz = zscore(y)
    yk = yz.copy()
    out = []
    for _ in range(k):
        w = Xk.T @ yk
        w /= np.linalg.norm(w)
        t = Xk @ w
        tt = t @ t
        out.append((yz @ t) ** 2 / (tt * (yz @ yz)))
        Xk = Xk - np.outer(t, Xk.T @ t / tt)
        yk = yk - t * (yk @ t) / tt
    return np.array(out)


def numpy_loop(X, y, perms, boots):
    obs = np.cumsum(numpy_nipals_r2(X, y, N_COMP))
    ge = np.zeros(N_COMP)
    for p in perms:
        ge += np.cumsum(numpy_nipals_r2(X, y[p], N_COMP)) >= obs - 1e-12
    Xz, yz = zscore(X), zscore(y)
    w0 = Xz.T @ yz
    w0 /= np.linalg.norm(w0)
    W = np.empty((len(boots), X.shape[1]))
    for i, idx in enumerate(boots):
        w = zscore(X[idx]).T @ zscore(y[idx])
        w /= np.linalg.norm(w)
        W[i] = w if np.corrcoef(w, w0)[0, 1] >= 0 else -w
    se = W.std(axis=0, ddof=1)
    return (1 + ge) / (1 + len(perms)), w0 / se


def sklearn_loop(X, y, perms, boots):
    from sklearn.cross_decomposition import PLSRegression

    def r2(yy):
        m = PLSRegression(n_components=N_COMP, scale=True).fit(X, yy)
        res = yy - m.predict(X).ravel()
        return 1 - res @ res / ((yy - yy.mean()) @ (yy - yy.mean()))

    obs = r2(y)
    ge = sum(r2(y[p]) >= obs - 1e-12 for p in perms)
    w0 = PLSRegression(n_components=1).fit(X, y).x_weights_[:, 0]
    W = []
    for idx in boots:
        w = PLSRegression(n_components=1).fit(X[idx], y[idx]).x_weights_[:, 0]
        W.append(w if np.corrcoef(w, w0)[0, 1] >= 0 else -w)
    return (1 + ge) / (1 + len(perms)), w0 / np.std(W, axis=0, ddof=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="run the loops on all 1000 + 1000")
    ap.add_argument("--subset", type=int, default=100, help="resamples timed for the numpy loop")
    ap.add_argument("--sklearn-subset", type=int, default=20, help="resamples for scikit-learn")
    args = ap.parse_args()

    X = load_default_expression().loc[list(DK_LEFT_REGIONS)].to_numpy()
    y = pd.read_csv(MAP).set_index("Structure")["d_icv"]
    y = y.loc[[r.replace("lh_", "L_") for r in DK_LEFT_REGIONS]].to_numpy()
    rng = np.random.default_rng(0)
    perms = np.argsort(rng.random((1000, y.size)), axis=1)
    boots = bootstrap_indices(y.size, n_boot=1000, seed=1)
    print(
        f"data: {X.shape[0]} regions x {X.shape[1]} genes; 1000 permutations "
        f"({N_COMP} components) + 1000 bootstraps\n"
    )

    def product():
        perm = pls_permutation_test(X, y, n_components=N_COMP, perms=perms)
        boot = pls1_bootstrap(X, y, indices=boots)
        return perm, boot

    # warm-up (imports, BLAS threads), then best of 3
    product()
    runs = [measure(product) for _ in range(3)]
    (perm, boot), t_prod, m_prod = min(runs, key=lambda r: r[1])
    print(f"bids-ms            : {t_prod:7.2f} s   peak {m_prod:6.0f} MB   (best of 3)")

    n = 1000 if args.full else args.subset
    (p_np, z_np), t_np, m_np = measure(lambda: numpy_loop(X, y, perms[:n], boots[:n]))
    scale = 1000 / n
    label = "" if n == 1000 else f"  ({n}+{n} timed, x{scale:g})"
    print(f"plain numpy loop   : {t_np * scale:7.2f} s   peak {m_np:6.0f} MB{label}")
    ref_p = pls_permutation_test(X, y, n_components=N_COMP, perms=perms[:n])["p_perm_cumulative"]
    ref_z = pls1_bootstrap(X, y, indices=boots[:n])["z"]
    print(
        f"    same results   : max |dp| = {np.abs(ref_p - p_np).max():.2e}, "
        f"max |dz|/|z| = {np.nanmax(np.abs(ref_z - z_np) / np.abs(z_np)):.2e}"
    )

    k = 1000 if args.full else args.sklearn_subset
    (p_sk, z_sk), t_sk, m_sk = measure(lambda: sklearn_loop(X, y, perms[:k], boots[:k]))
    scale = 1000 / k
    label = "" if k == 1000 else f"  ({k}+{k} timed, x{scale:g})"
    print(f"sklearn PLSRegression: {t_sk * scale:5.2f} s   peak {m_sk:6.0f} MB{label}")
    print(
        "\nreference: the imaging-transcriptomics package needed 92 s for this work here (issue 4)."
    )
    print(
        f"speed-up vs numpy loop: {t_np * 1000 / n / t_prod:.0f}x; "
        f"vs scikit-learn: {t_sk * 1000 / k / t_prod:.0f}x"
    )
    print(
        f"PLS1 var explained {perm['var_explained'][0]:.4f}, p_perm {perm['p_perm_cumulative'][0]:.4f}; "
        f"{int((boot['z'] > 3).sum())} genes Z > 3, {int((boot['z'] < -3).sum())} Z < -3"
    )


if __name__ == "__main__":
    main()
