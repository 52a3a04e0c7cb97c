"""Gene-set enrichment of PLS1 gene lists (Martins et al. 2022, §2.11–2.13).

* :func:`fisher_enrichment` — one-sided Fisher's exact test of a gene list against gene sets
  with the genes of the expression matrix as background, as R's GeneOverlap does (§2.12–2.13);
  the odds ratio is R's conditional maximum-likelihood estimate (``fisher.test``), the sample odds
  ratio is reported next to it.
* :func:`rank_enrichment` — the rank-based test of the reference MATLAB code: median rank of a
  set's genes in the PLS1 ranking against random gene sets of the same size.
* :func:`string_network` — the STRING protein network of a gene list at combined score ≥ 0.4
  without text mining: nodes, edges, expected edges and the PPI-enrichment p (§2.11).
* :func:`spin_category_enrichment` — category score = mean gene–map correlation, tested against
  spatially autocorrelated null maps (Fulcher et al. 2021, Nat Commun 12:2669).

Gene-set libraries and STRING networks are read by :mod:`bids_ms.io.genesets`; this module
works on the sets and edge lists it returns.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse, special, stats

from .pls import fdr_bh, zscore

__all__ = [
    "harmonise_symbols",
    "conditional_odds_ratio",
    "fisher_enrichment",
    "pls_list_enrichment",
    "rank_enrichment",
    "string_network",
    "spin_category_enrichment",
    "SpatialNull",
    "add_spatial_pvalues",
]

LOGGER = logging.getLogger("bids_ms")

# Symbols HGNC renamed after the AHBA reannotation (2019–2020), both ways: old <-> new.
_RENAMED_RE = re.compile(r"^(SEPTIN|SEPT|MARCHF|MARCH|MTARC|MARC|DELEC|DEC)(\d+)$")
_RENAMED = {
    "SEPTIN": "SEPT",
    "SEPT": "SEPTIN",
    "MARCHF": "MARCH",
    "MARCH": "MARCHF",
    "MTARC": "MARC",
    "MARC": "MTARC",
    "DELEC": "DEC",
    "DEC": "DELEC",
}


def _symbol_map(symbols: Iterable[str], bg: set[str]) -> dict[str, str]:
    upper: dict[str, str] | None = None
    out = {}
    for g in set(symbols):
        target = g
        if g not in bg:
            m = _RENAMED_RE.match(g)
            if m and f"{_RENAMED[m.group(1)]}{m.group(2)}" in bg:
                target = f"{_RENAMED[m.group(1)]}{m.group(2)}"
            else:
                if upper is None:
                    upper = {x.upper(): x for x in bg}
                target = upper.get(g.upper(), g)
        out[g] = target
    return out


def harmonise_symbols(genes: Sequence[str], background: set[str] | pd.Index) -> list[str]:
    """Map gene-set symbols onto the background's vocabulary.

    Symbols in the background are kept; the old and new HGNC names of the date-prone families
    renamed in 2019–2020 (SEPT/SEPTIN, MARCH/MARCHF, MARC/MTARC, DEC/DELEC) are mapped to whichever
    the background uses; letter case is matched when that finds the gene. Symbols still absent are
    kept (they count in the original set size but not in the test).
    """
    bg = background if isinstance(background, set) else set(background)
    m = _symbol_map(genes, bg)
    return list(dict.fromkeys(m[g] for g in genes))


def _restrict_sets(
    gene_sets: Mapping[str, Sequence[str]], bg: set[str]
) -> list[tuple[str, list[str], int]]:
    """``(name, genes in the background, original size)`` per set, symbols harmonised once."""
    m = _symbol_map(set().union(*[set(v) for v in gene_sets.values()]) if gene_sets else [], bg)
    out = []
    for name, members in gene_sets.items():
        mapped = [x for x in dict.fromkeys(m[g] for g in members) if x in bg]
        out.append((name, mapped, len(set(members))))
    return out


def conditional_odds_ratio(a, b, c, d, *, n_iter: int = 60, chunk: int = 256) -> np.ndarray:
    """Conditional maximum-likelihood odds ratio of 2×2 tables ``[[a, b], [c, d]]`` (vectorised).

    The estimate R's ``fisher.test`` (and so GeneOverlap) reports: the ``ψ`` for which the mean of
    Fisher's noncentral hypergeometric distribution equals ``a``; 0 when ``a`` is at the lower end
    of its support and ``inf`` at the upper end. Solved by Newton steps in ``log ψ`` safeguarded
    by bisection. At the solution the distribution has mean ``a`` and variance below ``a``, so
    its support is truncated to ``a ± (12·√a + 30)`` (the mass left out is below 1e-30).

    Kept instead of ``scipy.stats.contingency.odds_ratio(kind="conditional")`` for speed: it
    agrees with scipy to 1e-10 (tests/test_enrichment.py compares them table by table), but
    scipy solves one table at a time, 140x slower on the ~9,000 GO BP tables of one list
    (``bench/bench_enrichment.py``: 0.02 s against 2.8 s). Tables whose row ``[a, b]`` is
    empty get 0 here and NaN in scipy; :func:`fisher_enrichment` never tests them.
    """
    a, b, c, d = (np.atleast_1d(np.asarray(x, dtype=np.int64)) for x in (a, b, c, d))
    n1, n2, m = a + b, c + d, a + c
    lo = np.maximum(0, m - n2)
    hi = np.minimum(n1, m)
    out = np.full(a.shape, np.nan)
    out[a == lo] = 0.0
    out[(a == hi) & (a != lo)] = np.inf
    todo = np.nonzero((a > lo) & (a < hi))[0]
    half = (12 * np.sqrt(a) + 30).astype(np.int64)
    wlo = np.maximum(lo, a - half)
    whi = np.minimum(hi, a + half)
    todo = todo[np.argsort(whi[todo] - wlo[todo], kind="stable")]
    for start in range(0, todo.size, chunk):
        t = todo[start : start + chunk]
        width = int((whi[t] - wlo[t]).max()) + 1
        k = wlo[t, None] + np.arange(width)[None, :]
        valid = k <= whi[t, None]
        kk = np.where(valid, k, wlo[t, None]).astype(float)
        N1, N2, M = n1[t, None], n2[t, None], m[t, None]
        logc = (
            -special.gammaln(kk + 1)
            - special.gammaln(N1 - kk + 1)
            - special.gammaln(M - kk + 1)
            - special.gammaln(N2 - M + kk + 1)
        )
        logc = np.where(valid, logc, -np.inf)
        x = a[t].astype(float)
        theta = np.log((x + 0.5) * (d[t] + 0.5) / ((b[t] + 0.5) * (c[t] + 0.5)))
        lo_t = np.full(t.size, -60.0)
        hi_t = np.full(t.size, 60.0)
        for _ in range(n_iter):
            z = logc + theta[:, None] * kk
            z -= z.max(axis=1, keepdims=True)
            w = np.exp(z)
            w /= w.sum(axis=1, keepdims=True)
            mean = (w * kk).sum(axis=1)
            var = (w * kk**2).sum(axis=1) - mean**2
            f = mean - x
            if np.all(np.abs(f) < 1e-9 * np.maximum(1.0, x)):
                break
            lo_t = np.where(f < 0, theta, lo_t)
            hi_t = np.where(f > 0, theta, hi_t)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = theta - np.where(var > 1e-12, f / var, 0.0)
            outside = (new <= lo_t) | (new >= hi_t) | ~np.isfinite(new)
            theta = np.where(outside, 0.5 * (lo_t + hi_t), new)
        out[t] = np.exp(theta)
    return out


def fisher_enrichment(
    genes: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    *,
    background: Sequence[str],
) -> pd.DataFrame:
    """One-sided Fisher's exact test of a gene list against gene sets (Martins et al. 2022, §2.12).

    Both the list and every set are restricted to the background (the genes of the expression
    matrix, §2.12). For each set the 2×2 table is ``[[a, b], [c, d]]`` with ``a`` = list ∩ set,
    ``b`` = list − set, ``c`` = set − list, ``d`` = the rest of the background; the p-value is
    ``P(X ≥ a)`` under the hypergeometric null (``fisher.test(alternative="greater")``, GeneOverlap).

    Returns
    -------
    pandas.DataFrame
        ``gene_set, overlap, set_size, set_size_original, list_size, background_size, expected,
        odds_ratio, odds_ratio_sample, p, p_fdr, genes, note`` — one row per set; sets with no
        gene in the background get NaN statistics and a note (reported, not fatal). ``p_fdr`` is
        Benjamini–Hochberg over the tested sets.
    """
    bg_index = pd.Index(pd.unique(pd.Series(list(background), dtype=str)))
    bg = set(bg_index)
    lst = set(g for g in genes if g in bg)
    N = len(bg)
    n_list = len(lst)
    rows = []
    prepared = gene_sets if isinstance(gene_sets, list) else _restrict_sets(gene_sets, bg)
    for set_name, mapped, n_orig in prepared:
        overlap_genes = sorted(lst.intersection(mapped))
        rows.append(
            {
                "gene_set": set_name,
                "overlap": len(overlap_genes),
                "set_size": len(mapped),
                "set_size_original": n_orig,
                "genes": ";".join(overlap_genes),
            }
        )
    df = pd.DataFrame(
        rows, columns=["gene_set", "overlap", "set_size", "set_size_original", "genes"]
    )
    df["list_size"] = n_list
    df["background_size"] = N
    a = df["overlap"].to_numpy(dtype=np.int64)
    m = df["set_size"].to_numpy(dtype=np.int64)
    b = n_list - a
    c = m - a
    d = N - n_list - c
    tested = (m > 0) & (n_list > 0)
    p = np.full(len(df), np.nan)
    p[tested] = stats.hypergeom.sf(a[tested] - 1, N, m[tested], n_list)
    p = np.clip(p, 0.0, 1.0)
    df["expected"] = np.where(tested, m * n_list / max(N, 1), np.nan)
    cor = np.full(len(df), np.nan)
    cor[tested] = conditional_odds_ratio(a[tested], b[tested], c[tested], d[tested])
    with np.errstate(divide="ignore", invalid="ignore"):
        sample_or = np.where(tested, (a * d) / (b * c).astype(float), np.nan)
    df["odds_ratio"] = cor
    df["odds_ratio_sample"] = sample_or
    df["p"] = p
    df["p_fdr"] = fdr_bh(p)
    notes = np.where(
        m == 0,
        "no gene of this set is in the background (expression matrix); not tested",
        np.where(n_list == 0, "empty gene list; not tested", ""),
    )
    df["note"] = notes
    empty = df.loc[m == 0, "gene_set"].tolist()
    if empty:
        LOGGER.info(
            "%d gene sets have no gene in the expression matrix and are not tested (e.g. %r)",
            len(empty),
            empty[0],
        )
    return df[
        [
            "gene_set",
            "overlap",
            "set_size",
            "set_size_original",
            "list_size",
            "background_size",
            "expected",
            "odds_ratio",
            "odds_ratio_sample",
            "p",
            "p_fdr",
            "genes",
            "note",
        ]
    ]


def pls_list_enrichment(
    plus: Sequence[str],
    minus: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    *,
    background: Sequence[str],
) -> pd.DataFrame:
    """:func:`fisher_enrichment` of PLS1+ and of PLS1− (FDR within each direction), stacked.

    Returns the contract columns first: ``gene_set, direction, overlap, set_size, odds_ratio, p,
    p_fdr`` (direction ``PLS1+`` or ``PLS1-``), then the others.
    """
    parts = []
    prepared = _restrict_sets(gene_sets, set(map(str, background)))
    for direction, genes in (("PLS1+", plus), ("PLS1-", minus)):
        t = fisher_enrichment(genes, prepared, background=background)
        t.insert(1, "direction", direction)
        parts.append(t)
    df = pd.concat(parts, ignore_index=True)
    first = ["gene_set", "direction", "overlap", "set_size", "odds_ratio", "p", "p_fdr"]
    return df[first + [c for c in df.columns if c not in first]]


def rank_enrichment(
    ranked_genes: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    *,
    n_perm: int = 1000,
    seed: int | np.random.Generator | None = None,
    min_size: int = 2,
) -> pd.DataFrame:
    """Median-rank test of gene sets in the PLS1 ranking (the reference MATLAB code's test).

    Genes are ranked 1..N by PLS1 Z (1 = most positive). A set's statistic is the median rank of
    its genes in the ranking; the null is the median rank of ``n_perm`` random gene sets of the
    same size drawn from the ranked genes. ``p_top`` (set concentrated among PLS1+ genes) is
    ``(1 + #{null ≤ observed}) / (1 + n_perm)``, ``p_bottom`` the other tail.

    Returns
    -------
    pandas.DataFrame
        ``gene_set, set_size, median_rank, null_mean, p_top, p_bottom, p_fdr_top, p_fdr_bottom``.
    """
    rng = np.random.default_rng(seed)
    ranked = list(ranked_genes)
    N = len(ranked)
    pos = {g: i + 1 for i, g in enumerate(ranked)}
    bg = set(pos)
    rows = []
    null_cache: dict[int, np.ndarray] = {}
    prepared = _restrict_sets(gene_sets, bg)
    sizes = [len(m) for _, m, _ in prepared if len(m) >= min_size]
    if sizes and n_perm > 0:
        # the first s entries of a random permutation of the ranks are a random s-subset, so one
        # set of n_perm permutations serves every set size
        max_s = max(sizes)
        perm_ranks = np.empty((n_perm, max_s), dtype=np.int32)
        for start in range(0, n_perm, 100):  # 100 random orders at a time bounds the memory
            keys = rng.random((min(100, n_perm - start), N))
            part = np.argpartition(keys, max_s - 1, axis=1)[:, :max_s] + 1
            # argpartition leaves the first max_s in arbitrary order: shuffle them so that the
            # first s of every row are still a uniformly random s-subset
            perm_ranks[start : start + len(keys)] = rng.permuted(part, axis=1)
    for set_name, mapped, _ in prepared:
        s = len(mapped)
        if s < min_size or n_perm <= 0:
            rows.append((set_name, s, np.nan, np.nan, np.nan, np.nan))
            continue
        obs = float(np.median([pos[g] for g in mapped]))
        if s not in null_cache:
            null_cache[s] = np.median(perm_ranks[:, :s], axis=1)
        null = null_cache[s]
        p_top = (1 + np.sum(null <= obs)) / (1 + n_perm)
        p_bottom = (1 + np.sum(null >= obs)) / (1 + n_perm)
        rows.append((set_name, s, obs, float(null.mean()), p_top, p_bottom))
    df = pd.DataFrame(
        rows, columns=["gene_set", "set_size", "median_rank", "null_mean", "p_top", "p_bottom"]
    )
    df["p_fdr_top"] = fdr_bh(df["p_top"].to_numpy())
    df["p_fdr_bottom"] = fdr_bh(df["p_bottom"].to_numpy())
    return df


# --------------------------------------------------------------------------- STRING


def string_network(
    genes: Sequence[str], edges: pd.DataFrame, *, universe: Sequence[str] | None = None
) -> dict:
    """Protein network of a gene list and STRING's PPI-enrichment test (§2.11, §3.7).

    Nodes are the list's genes found in the network; edges are the thresholded STRING links among
    them. The expected number of edges keeps every node's degree in the whole network (``universe``
    restricts the whole network, e.g. to the background genes): ``E = Σ_{i<j} d_i d_j / (2M)``
    (configuration model, each term capped at 1), and the PPI-enrichment p is the Poisson
    probability of at least the observed number of edges — the test STRING reports as
    "PPI enrichment p-value" (Szklarczyk et al. 2017, NAR 45:D362; "your proteins have more
    interactions among themselves than what would be expected for a random set of proteins of the
    same size and degree distribution").

    Returns
    -------
    dict
        ``nodes`` (list genes in the network), ``edges``, ``expected_edges``, ``ppi_p``,
        ``mean_degree``, ``edge_list`` (DataFrame).
    """
    e = edges
    if universe is not None:
        u = set(universe)
        e = e[e.gene1.isin(u) & e.gene2.isin(u)]
    deg = pd.concat([e.gene1, e.gene2]).value_counts()
    M = len(e)
    gset = set(genes)
    in_net = sorted(g for g in gset if g in deg.index)
    sub = e[e.gene1.isin(gset) & e.gene2.isin(gset)]
    d = deg.reindex(in_net).to_numpy(dtype=float)
    if M > 0 and d.size > 1:
        P = np.minimum(np.outer(d, d) / (2.0 * M), 1.0)
        expected = float(np.triu(P, 1).sum())
    else:
        expected = 0.0
    observed = len(sub)
    p = float(stats.poisson.sf(observed - 1, expected)) if expected > 0 else float("nan")
    return {
        "nodes": len(in_net),
        "list_size": len(gset),
        "edges": observed,
        "expected_edges": expected,
        "ppi_p": p,
        "mean_degree": 2.0 * observed / len(in_net) if in_net else float("nan"),
        "edge_list": sub.reset_index(drop=True),
    }


# --------------------------------------------------------------------------- spin nulls


class SpatialNull:
    """Gene scores of a map and of its spun copies, shared by every gene-set library.

    The ensemble approach of Fulcher et al. 2021 (Nat Commun 12:2669): a gene's score is its
    Spearman correlation with the map across regions and a category's score is the mean score
    of its genes; the null of a category's score is the same score computed on spatially
    autocorrelated null maps (here spin permutations of the map, Alexander-Bloch et al. 2018),
    which keeps both the map's spatial autocorrelation and the genes' co-expression. Ranks of
    a spun map are the spun ranks, so the map is ranked once; category scores of all spins
    are one product ``Y_z (X_z A) / (n − 1)`` with the sparse membership matrix ``A``.

    Parameters
    ----------
    expression : ndarray, shape (n_regions, n_genes)
    genes : sequence of str
    y : ndarray, shape (n_regions,)
    perms : ndarray, shape (n_spins, n_regions)
        Null map ``k`` is ``y[perms[k]]``.
    """

    def __init__(
        self,
        expression: np.ndarray,
        genes: Sequence[str],
        y: np.ndarray,
        *,
        perms: np.ndarray,
    ) -> None:
        self.Xz = zscore(stats.rankdata(np.asarray(expression, dtype=float), axis=0))
        self.n = self.Xz.shape[0]
        self.col = {g: i for i, g in enumerate(genes)}
        self.yz = zscore(stats.rankdata(np.asarray(y, dtype=float).ravel()))
        self.perms = np.asarray(perms, dtype=int).reshape(-1, self.n)
        self._membership: dict = {}

    @property
    def n_spins(self) -> int:
        return int(self.perms.shape[0])

    def with_map(self, y: np.ndarray, *, perms: np.ndarray | None = None) -> SpatialNull:
        """The same expression (ranked once) with another map (and optionally other spins)."""
        other = copy.copy(self)
        other.yz = zscore(stats.rankdata(np.asarray(y, dtype=float).ravel()))
        if perms is not None:
            other.perms = np.asarray(perms, dtype=int).reshape(-1, self.n)
        other._membership = self._membership
        return other

    def _category_matrix(self, gene_sets: Mapping[str, Sequence[str]], min_size: int):
        key = (id(gene_sets), len(gene_sets), min_size)
        if key not in self._membership:
            names, sizes, members = [], [], []
            for name, mapped, _ in _restrict_sets(gene_sets, set(self.col)):
                names.append(name)
                sizes.append(len(mapped))
                members.append([self.col[g] for g in mapped])
            tested = [i for i, sz in enumerate(sizes) if sz >= max(1, min_size)]
            XzA = None
            if tested:
                rows_i = np.concatenate([members[i] for i in tested])
                cols_j = np.concatenate([np.full(sizes[i], j) for j, i in enumerate(tested)])
                vals = np.concatenate([np.full(sizes[i], 1.0 / sizes[i]) for i in tested])
                A = sparse.csc_matrix(
                    (vals, (rows_i, cols_j)), shape=(self.Xz.shape[1], len(tested))
                )
                XzA = np.asarray((A.T @ self.Xz.T).T) / (self.n - 1)  # (regions, categories)
            self._membership.clear()  # one library at a time
            self._membership[key] = (gene_sets, names, sizes, tested, XzA)
        return self._membership[key][1:]

    def categories(
        self, gene_sets: Mapping[str, Sequence[str]], *, min_size: int = 1, chunk: int = 1000
    ) -> pd.DataFrame:
        """Category scores and their spatial-null p-values.

        Returns
        -------
        pandas.DataFrame
            ``gene_set, set_size, score, null_mean, null_sd, p_upper, p_lower, p_two_sided``:
            ``p_upper = (1 + #{null ≥ obs}) / (1 + n_spins)`` (genes of the set correlate
            positively with the map more than on spun maps), ``p_lower`` the other tail,
            ``p_two_sided`` with ``|null| ≥ |obs|``. Sets with fewer than ``min_size`` genes in
            the matrix get NaN.
        """
        names, sizes, tested, XzA = self._category_matrix(gene_sets, min_size)
        out = pd.DataFrame({"gene_set": names, "set_size": sizes})
        cols = ["score", "null_mean", "null_sd", "p_upper", "p_lower", "p_two_sided"]
        res = {c: np.full(len(names), np.nan) for c in cols}
        if tested:
            obs = self.yz @ XzA
            S = self.n_spins
            up = np.zeros(len(tested))
            lo = np.zeros(len(tested))
            two = np.zeros(len(tested))
            s1 = np.zeros(len(tested))
            s2 = np.zeros(len(tested))
            tol = 1e-12
            for start in range(0, S, chunk):
                null = self.yz[self.perms[start : start + chunk]] @ XzA
                up += (null >= obs - tol).sum(axis=0)
                lo += (null <= obs + tol).sum(axis=0)
                two += (np.abs(null) >= np.abs(obs) - tol).sum(axis=0)
                s1 += null.sum(axis=0)
                s2 += (null**2).sum(axis=0)
            res["score"][tested] = obs
            if S > 0:
                res["null_mean"][tested] = s1 / S
                res["null_sd"][tested] = np.sqrt(np.clip(s2 / S - (s1 / S) ** 2, 0, None))
                res["p_upper"][tested] = (1 + up) / (1 + S)
                res["p_lower"][tested] = (1 + lo) / (1 + S)
                res["p_two_sided"][tested] = (1 + two) / (1 + S)
        for c in cols:
            out[c] = res[c]
        return out


def add_spatial_pvalues(table: pd.DataFrame, categories: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``p_spatial`` and ``p_spatial_fdr`` to a PLS1± enrichment table (the default test).

    ``p_spatial`` of a ``PLS1+`` row is the upper-tail spatial-null p of the set
    (:meth:`SpatialNull.categories`: its genes correlate positively with the map more than on
    spun maps), of a ``PLS1-`` row the lower tail. ``p_spatial_fdr`` is Benjamini–Hochberg
    over all tested rows of the library (both directions). Sets with no gene in the matrix, or
    no spatial null (``categories`` None), get NaN. The columns go right after ``p_fdr``.
    """
    out = table.copy()
    p = np.full(len(out), np.nan)
    score = np.full(len(out), np.nan)
    if categories is not None and len(out):
        cat = categories.drop_duplicates("gene_set").set_index("gene_set")
        up = out["gene_set"].map(cat["p_upper"]).to_numpy(dtype=float)
        lo = out["gene_set"].map(cat["p_lower"]).to_numpy(dtype=float)
        p = np.where(out["direction"].to_numpy() == "PLS1-", lo, up)
        score = out["gene_set"].map(cat["score"]).to_numpy(dtype=float)
    where = list(out.columns).index("p_fdr") + 1 if "p_fdr" in out.columns else len(out.columns)
    out.insert(where, "p_spatial", p)
    out.insert(where + 1, "p_spatial_fdr", fdr_bh(p))
    out["category_score"] = score
    return out


def spin_category_enrichment(
    expression: np.ndarray,
    genes: Sequence[str],
    y: np.ndarray,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    perms: np.ndarray,
    min_size: int = 5,
    chunk: int = 500,
    null: SpatialNull | None = None,
) -> pd.DataFrame:
    """Gene-category enrichment against spatially autocorrelated null maps (Fulcher et al. 2021).

    Each gene's score is its Spearman correlation with the map across regions; a category's score
    is the mean score of its genes. The same is computed for every spun map ``y[perms[k]]`` and the
    two-sided p of a category is the fraction of spun-map category scores at least as extreme as
    the observed one: ``(1 + #{|null| ≥ |obs|}) / (1 + n_spins)``.

    Parameters
    ----------
    expression : ndarray, shape (n_regions, n_genes)
    genes : sequence of str
    y : ndarray, shape (n_regions,)
    gene_sets : mapping
    perms : ndarray, shape (n_spins, n_regions)
    min_size : int
        Categories with fewer genes in the matrix are not tested.
    null : SpatialNull, optional
        Precomputed gene scores of the map and its spins (shared by several libraries).

    Returns
    -------
    pandas.DataFrame
        ``gene_set, set_size, score, null_mean, null_sd, p_spin, p_fdr``.

    References
    ----------
    Fulcher BD, Arnatkevičiūtė A, Fornito A (2021) Nat Commun 12:2669 (ensemble-based null
    models for gene-category enrichment; spatial-lag/spin nulls).
    """
    if null is None:
        null = SpatialNull(expression, genes, y, perms=perms)
    cat = null.categories(gene_sets, min_size=min_size, chunk=chunk)
    out = cat[["gene_set", "set_size", "score", "null_mean", "null_sd"]].copy()
    out["p_spin"] = cat["p_two_sided"].to_numpy()
    out["p_fdr"] = fdr_bh(out["p_spin"].to_numpy())
    return out
