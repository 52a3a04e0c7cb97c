"""Enrichment (Martins et al. 2022, §2.11–2.13) against scipy and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact, poisson, spearmanr
from scipy.stats.contingency import odds_ratio

from bids_ms.enrichment import (
    BUILTIN_GENE_SETS,
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


def test_set_without_overlap_is_reported_not_fatal():
    t = pls_list_enrichment(
        ["G1", "G2"],
        ["G3"],
        {"absent": ["X1", "X2"], "present": ["G1", "G5"]},
        background=BACKGROUND,
    )
    assert list(t.columns[:7]) == [
        "gene_set",
        "direction",
        "overlap",
        "set_size",
        "odds_ratio",
        "p",
        "p_fdr",
    ]
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
