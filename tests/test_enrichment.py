"""Enrichment (Martins et al. 2022, §2.11–2.13) against scipy and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact, poisson, spearmanr
from scipy.stats.contingency import odds_ratio
from statsmodels.stats.multitest import multipletests

from bids_ms.enrichment import (
    BUILTIN_GENE_SETS,
    SpatialNull,
    add_spatial_pvalues,
    conditional_odds_ratio,
    fisher_enrichment,
    harmonise_symbols,
    load_builtin_gene_sets,
    pls_list_enrichment,
    rank_enrichment,
    read_gene_sets,
    read_string_links,
    spin_category_enrichment,
    string_network,
)
from bids_ms.errors import InputDataError, UsageError

from .helpers import ENRICHMENT_COLUMNS

BACKGROUND = [f"G{i}" for i in range(2000)]


def test_fisher_against_scipy():
    rng = np.random.default_rng(0)
    genes = list(rng.choice(BACKGROUND, 150, replace=False))
    sets = {
        "enriched": genes[:40] + list(rng.choice(BACKGROUND, 60, replace=False)),
        "random": list(rng.choice(BACKGROUND, 300, replace=False)),
        "small": genes[:2] + ["G1999"],
    }
    # genes outside the background are ignored in the list and in the sets
    table = fisher_enrichment(genes + ["NOT_IN_BG"], sets, background=BACKGROUND)
    lst = set(genes)
    for _, row in table.iterrows():
        members = set(sets[row.gene_set]) & set(BACKGROUND)
        a = len(lst & members)
        b = len(lst) - a
        c = len(members) - a
        d = len(BACKGROUND) - a - b - c
        assert row.overlap == a and row.set_size == len(members)
        stat, p = fisher_exact([[a, b], [c, d]], alternative="greater")
        assert row.p == pytest.approx(p, rel=1e-9)
        assert row.odds_ratio_sample == pytest.approx(stat, rel=1e-9)
        cond = odds_ratio([[a, b], [c, d]], kind="conditional").statistic
        assert row.odds_ratio == pytest.approx(cond, rel=1e-8)
    assert table.loc[table.gene_set == "enriched", "p"].item() < 1e-10
    assert list(table.p_fdr) == pytest.approx(
        list(pd.Series(table.p).pipe(lambda s: _bh(s.to_numpy())))
    )


def _bh(p):
    from statsmodels.stats.multitest import multipletests

    return multipletests(p, method="fdr_bh")[1]


def test_conditional_odds_ratio_edges():
    out = conditional_odds_ratio([0, 5, 3], [10, 5, 7], [5, 0, 9], [100, 100, 80])
    assert out[0] == 0 and np.isinf(out[1])
    assert out[2] == pytest.approx(
        odds_ratio([[3, 7], [9, 80]], kind="conditional").statistic, rel=1e-8
    )


def test_conditional_odds_ratio_equals_scipy_table_by_table():
    rng = np.random.default_rng(11)
    n = 150
    a = rng.integers(0, 40, n)
    b = rng.integers(0, 600, n)
    c = rng.integers(0, 400, n)
    d = rng.integers(0, 15000, n)
    a[:5], b[5:10], c[10:15], d[15:20] = 0, 0, 0, 0  # zero cells in every position
    b[:3] = rng.integers(1, 600, 3)  # keep the list non-empty where a is 0
    ours = conditional_odds_ratio(a, b, c, d)
    for i in range(n):
        if a[i] + b[i] == 0:
            continue  # an empty list is never tested by fisher_enrichment (scipy: NaN)
        ref = odds_ratio([[a[i], b[i]], [c[i], d[i]]], kind="conditional").statistic
        if np.isfinite(ref) and ref > 0:
            assert ours[i] == pytest.approx(ref, rel=1e-8), (a[i], b[i], c[i], d[i])
        else:
            assert ours[i] == ref, (a[i], b[i], c[i], d[i])


def test_set_without_overlap_is_reported_not_fatal():
    t = pls_list_enrichment(
        ["G1", "G2"],
        ["G3"],
        {"absent": ["X1", "X2"], "present": ["G1", "G5"]},
        background=BACKGROUND,
    )
    assert list(t.columns[:7]) == ENRICHMENT_COLUMNS
    absent = t[t.gene_set == "absent"]
    assert absent.set_size.eq(0).all() and absent.p.isna().all()
    assert absent.note.str.contains("not in the background|no gene").all()
    assert set(t.direction) == {"PLS1+", "PLS1-"}


def test_read_gmt_and_two_column(tmp_path):
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("A\tdesc\tG1\tG2\t\nB\t\t1-Mar\tSep-07\tG3\n")
    gs = read_gene_sets(gmt)
    assert gs.sets["A"] == ["G1", "G2"]
    assert gs.sets["B"] == ["MARCH1", "SEPT7", "G3"]  # spreadsheet dates repaired
    two = tmp_path / "sets.tsv"
    two.write_text("gene\tset\nG1\tS1\nG2\tS1\nG3\tS2\n")
    assert read_gene_sets(two).sets == {"S1": ["G1", "G2"], "S2": ["G3"]}
    csv = tmp_path / "sets2.csv"
    csv.write_text("term,symbol\nS1,G1\nS1,G4\n")
    assert read_gene_sets(csv).sets == {"S1": ["G1", "G4"]}


@pytest.mark.parametrize(
    "content, match",
    [("", "empty"), ("only_a_name\n", "not a GMT line"), ("A\tdesc\n", "not a GMT line")],
)
def test_bad_gmt(tmp_path, content, match):
    f = tmp_path / "bad.gmt"
    f.write_text(content)
    with pytest.raises(InputDataError, match=match):
        read_gene_sets(f)


def test_missing_gene_set_file_names_download(tmp_path):
    with pytest.raises(UsageError, match="msigdb"):
        read_gene_sets(tmp_path / "kegg.gmt")


def test_bad_two_column(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("G1\nG2\n")
    with pytest.raises(InputDataError, match="two columns"):
        read_gene_sets(f)


def test_harmonise_renamed_symbols():
    bg = {"SEPT7", "MARCH1", "MARC1", "C5orf64", "TP53"}
    assert harmonise_symbols(["SEPTIN7", "MARCHF1", "MTARC1", "C5ORF64", "TP53", "ZZZ"], bg) == [
        "SEPT7",
        "MARCH1",
        "MARC1",
        "C5orf64",
        "TP53",
        "ZZZ",
    ]
    assert harmonise_symbols(["SEPT7"], {"SEPTIN7"}) == ["SEPTIN7"]


def test_builtin_libraries_load():
    cells = load_builtin_gene_sets("celltypes")
    assert list(cells.sets) == ["Astro", "Endo", "Micro", "Neuro-Ex", "Neuro-In", "Oligo", "OPC"]
    assert all(len(v) > 100 for v in cells.sets.values())
    pain = load_builtin_gene_sets("pain")
    assert "GO:0019233 sensory perception of pain" in pain.sets
    assert len(pain.sets["GO:0019233 sensory perception of pain"]) == 103
    assert "NC" in load_builtin_gene_sets("disorders").licence
    assert set(BUILTIN_GENE_SETS) >= {"celltypes", "pain", "disorders", "gobp", "wikipathways"}


def test_rank_enrichment_detects_top_set():
    ranked = [f"G{i}" for i in range(500)]
    sets = {"top": ranked[:20], "bottom": ranked[-20:], "spread": ranked[::25]}
    t = rank_enrichment(ranked, sets, n_perm=300, seed=0).set_index("gene_set")
    assert t.loc["top", "p_top"] < 0.01 and t.loc["top", "p_bottom"] > 0.9
    assert t.loc["bottom", "p_bottom"] < 0.01
    assert 0.05 < t.loc["spread", "p_top"] < 0.95
    assert t.loc["top", "median_rank"] == pytest.approx(np.median(np.arange(1, 21)))


def _string_fixture(tmp_path):
    """Detailed links: A-B by experiments, A-C by text mining only, B-C by database, D-E weak."""
    rows = [
        ("9606.pA", "9606.pB", 0, 0, 0, 0, 900, 0, 0),
        ("9606.pA", "9606.pC", 0, 0, 0, 0, 0, 0, 950),
        ("9606.pB", "9606.pC", 0, 0, 0, 0, 0, 700, 0),
        ("9606.pD", "9606.pE", 0, 0, 0, 150, 0, 0, 0),
        ("9606.pC", "9606.pD", 0, 0, 0, 0, 600, 0, 0),
        ("9606.pB", "9606.pA", 0, 0, 0, 0, 900, 0, 0),
    ]
    cols = "protein1 protein2 neighborhood fusion cooccurence coexpression experimental database textmining"
    df = pd.DataFrame(rows, columns=cols.split())
    links = tmp_path / "links.detailed.txt"
    df.to_csv(links, sep=" ", index=False)
    info = tmp_path / "info.txt"
    pd.DataFrame(
        {"#string_protein_id": [f"9606.p{x}" for x in "ABCDE"], "preferred_name": list("ABCDE")}
    ).to_csv(info, sep="\t", index=False)
    return links, info


def test_string_without_textmining(tmp_path):
    links, info = _string_fixture(tmp_path)
    edges, meta = read_string_links(links, info=info)
    assert meta["textmining_excluded"]
    pairs = set(zip(edges.gene1, edges.gene2, strict=True))
    assert pairs == {("A", "B"), ("B", "C"), ("C", "D")}  # A-C text mining only; D-E < 0.4
    net = string_network(["A", "B", "C", "Z"], edges)
    assert net["nodes"] == 3 and net["edges"] == 2
    deg = {"A": 1, "B": 2, "C": 2, "D": 1}
    M = 3
    exp = sum(
        min(deg[i] * deg[j] / (2 * M), 1) for i, j in itertools.combinations(["A", "B", "C"], 2)
    )
    assert net["expected_edges"] == pytest.approx(exp)
    assert net["ppi_p"] == pytest.approx(poisson.sf(1, exp))


def test_string_plain_links_note(tmp_path):
    f = tmp_path / "links.txt"
    f.write_text("protein1 protein2 combined_score\nA B 900\nA C 300\n")
    edges, meta = read_string_links(f)
    assert not meta["textmining_excluded"] and "could not be excluded" in meta["note"]
    assert len(edges) == 1


def test_spin_category_enrichment_against_loop():
    rng = np.random.default_rng(2)
    n, p = 20, 60
    X = rng.normal(size=(n, p))
    genes = [f"G{i}" for i in range(p)]
    y = X[:, :5].mean(axis=1) + rng.normal(scale=0.3, size=n)
    sets = {"first": genes[:8], "other": genes[30:40], "tiny": genes[:2]}
    perms = np.argsort(rng.random((30, n)), axis=1)
    t = spin_category_enrichment(X, genes, y, sets, perms=perms, min_size=5).set_index("gene_set")

    def score(vec, idx):
        return np.mean([spearmanr(X[:, j], vec)[0] for j in idx])

    for name, idx in (("first", range(8)), ("other", range(30, 40))):
        obs = score(y, idx)
        null = np.array([score(y[q], idx) for q in perms])
        assert t.loc[name, "score"] == pytest.approx(obs, abs=1e-10)
        assert t.loc[name, "p_spin"] == pytest.approx(
            (1 + np.sum(np.abs(null) >= abs(obs) - 1e-12)) / 31
        )
    assert np.isnan(t.loc["tiny", "p_spin"])


# --------------------------------------------------------------------------- spatial null (issue 9)


def test_spatial_null_p_against_an_independent_computation():
    """Category score = mean Spearman rho of its genes with the map; p from the spun maps."""
    rng = np.random.default_rng(21)
    n, p = 18, 50
    X = rng.normal(size=(n, p))
    genes = [f"G{i}" for i in range(p)]
    y = X[:, :4].mean(axis=1) - X[:, 20:24].mean(axis=1) + rng.normal(scale=0.4, size=n)
    y[3] = y[4]  # a tie in the map: ranks are averaged, as spearmanr does
    sets = {
        "up": genes[:6],
        "down": genes[20:26],
        "mixed": genes[2:4] + genes[30:33],
        "absent": ["NOTAGENE"],
    }
    perms = np.argsort(rng.random((40, n)), axis=1)
    cat = SpatialNull(X, genes, y, perms=perms).categories(sets).set_index("gene_set")

    def score(vec, idx):
        return np.mean([spearmanr(X[:, j], vec)[0] for j in idx])

    members = {"up": range(6), "down": range(20, 26), "mixed": [2, 3, 30, 31, 32]}
    for name, idx in members.items():
        obs = score(y, idx)
        null = np.array([score(y[q], idx) for q in perms])
        assert cat.loc[name, "score"] == pytest.approx(obs, abs=1e-12)
        assert cat.loc[name, "p_upper"] == pytest.approx((1 + np.sum(null >= obs - 1e-12)) / 41)
        assert cat.loc[name, "p_lower"] == pytest.approx((1 + np.sum(null <= obs + 1e-12)) / 41)
        assert cat.loc[name, "null_mean"] == pytest.approx(null.mean(), abs=1e-12)
    assert cat.loc["up", "p_upper"] < 0.1 and cat.loc["down", "p_lower"] < 0.1
    assert cat.loc["absent"].drop("set_size").isna().all() and cat.loc["absent", "set_size"] == 0

    # into the PLS1± table: the upper tail for PLS1+, the lower tail for PLS1-, BH per library
    table = pls_list_enrichment(genes[:5], genes[20:25], sets, background=genes)
    out = add_spatial_pvalues(table, cat.reset_index())
    assert list(out.columns[:9]) == [*ENRICHMENT_COLUMNS, "p_spatial", "p_spatial_fdr"]
    for _, row in out.iterrows():
        if row.gene_set == "absent":
            assert np.isnan(row.p_spatial) and np.isnan(row.p_spatial_fdr)
            continue
        tail = "p_upper" if row.direction == "PLS1+" else "p_lower"
        assert row.p_spatial == cat.loc[row.gene_set, tail]
    tested = out.p_spatial.notna()
    np.testing.assert_allclose(
        out.p_spatial_fdr[tested], multipletests(out.p_spatial[tested], method="fdr_bh")[1]
    )
    # with no spatial null the columns exist and are n/a
    none = add_spatial_pvalues(table, None)
    assert none.p_spatial.isna().all() and none.p_spatial_fdr.isna().all()
    # another map through the same (ranked once) expression equals a fresh computation
    y2 = rng.normal(size=n)
    again = SpatialNull(X, genes, y, perms=perms).with_map(y2).categories(sets)
    fresh = SpatialNull(X, genes, y2, perms=perms).categories(sets)
    pd.testing.assert_frame_equal(again, fresh)


def test_spatial_null_enrichment_is_calibrated_on_null_maps():
    """On smooth random maps unrelated to expression, p_spatial < 0.05 about 5 % of the time.

    The expression of the 34 left DK regions (bundled AHBA matrix, 3,000 random genes) and the
    seven cell-type sets; null maps are Gaussian random fields on the regions' sphere
    centroids (squared-exponential kernel, 35 mm), so they share the autocorrelation that makes
    gene-shuffling tests anti-conservative. The gene-shuffling test on the same maps is the
    control that the simulation can detect an anti-conservative test.
    """
    from scipy import stats

    from bids_ms.atlas import DK_LEFT_REGIONS
    from bids_ms.io.expression import load_default_expression
    from bids_ms.spins import load_dk_centroids, spin_permutations

    rng = np.random.default_rng(0)
    expr = load_default_expression().loc[list(DK_LEFT_REGIONS)]
    cols = rng.choice(expr.shape[1], 3000, replace=False)
    X = expr.to_numpy()[:, cols]
    genes = list(expr.columns[cols])
    sets = load_builtin_gene_sets("celltypes").sets
    coords = load_dk_centroids().loc[list(DK_LEFT_REGIONS)].to_numpy()
    perms = spin_permutations(coords, ["L"] * 34, n_spins=300, seed=1)
    d2 = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    L = np.linalg.cholesky(np.exp(-d2 / (2 * 35.0**2)) + 1e-6 * np.eye(34))
    n_maps = 200
    maps = (L @ rng.standard_normal((34, n_maps))).T
    base = SpatialNull(X, genes, maps[0], perms=perms)
    p_spatial, p_shuffle = [], []
    for y in maps:
        sn = base.with_map(y)
        cat = sn.categories(sets)
        p_spatial.append(cat[["p_upper", "p_lower"]].to_numpy())
        gene_scores = sn.yz @ sn.Xz / 33
        z = (cat["score"].to_numpy() - gene_scores.mean()) / (
            gene_scores.std(ddof=1) / np.sqrt(cat["set_size"].to_numpy())
        )
        p_shuffle.append(np.c_[stats.norm.sf(z), stats.norm.cdf(z)])
    p_spatial = np.array(p_spatial)  # (maps, sets, tails)
    p_shuffle = np.array(p_shuffle)
    # each set and tail: independent maps, so the count below 0.05 is binomial(200, <= 0.05)
    limit = stats.binom.ppf(0.999, n_maps, 0.05) / n_maps
    share = (p_spatial < 0.05).mean(axis=0)
    assert share.max() <= limit, share
    assert (p_spatial < 0.05).mean() <= 0.07
    # the gene-shuffling null on the same maps is far from calibrated
    assert (p_shuffle < 0.05).mean() > 0.15
