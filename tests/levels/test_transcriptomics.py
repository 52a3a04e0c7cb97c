"""The transcriptomic stage end to end (its output contract) and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_ms.atlas import DK_LEFT_REGIONS
from bids_ms.errors import InputDataError, UsageError
from bids_ms.io.outputs import columns as output_columns
from bids_ms.levels.transcriptomics import (
    TranscriptomicsSettings,
    check_response,
    run_response_map,
    run_transcriptomics,
)
from bids_ms.spins import SpinSet

DATA = Path(__file__).resolve().parents[1] / "data" / "transcriptomics"
ENIGMA_MDD = DATA / "mddadult_case-controls_CortThick.csv"
# the leading columns of each table, from the output contract
CONTRACT = {
    "desc-pls_components.tsv": output_columns("desc-pls_components.tsv")[:3],
    "desc-pls1_genes.tsv": output_columns("desc-pls1_genes.tsv")[:6],
    "desc-pls1_scores.tsv": output_columns("desc-pls1_scores.tsv")[:2],
    "desc-enrichment_celltypes.tsv": output_columns("desc-enrichment_celltypes.tsv")[:7],
}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)


def _run(y, settings, group_dir, *, n_spins: int, seed: int, description=None) -> dict:
    """The stage as the group level calls it: the run's seed and its shared spins."""
    spins = SpinSet(n_spins=n_spins, seed=seed)
    return run_transcriptomics(
        y, settings=settings, group_dir=group_dir, seed=seed, spins=spins, description=description
    )


@pytest.fixture(scope="module")
def enigma_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    gmt = out.parent / "user_sets.gmt"
    gmt.write_text("first_genes\t\tA1BG\tA2M\tAAAS\nnot_in_matrix\t\tNOTAGENE1\tNOTAGENE2\n")
    settings = TranscriptomicsSettings(
        response_map=ENIGMA_MDD,
        n_perm=200,
        n_boot=200,
        gene_sets=["pain", "disorders", str(gmt)],
        enrichment_null="spin",
    )
    result = run_response_map(settings, output_dir=out, seed=1234, n_spins=200)
    return out, result, settings


def test_end_to_end_enigma_map(enigma_run):
    out, result, _ = enigma_run
    group = out / "group"
    written = sorted(p.name for p in group.iterdir())
    expected = (DATA / "expected_outputs.txt").read_text().split()
    assert written == expected
    for name, columns in CONTRACT.items():
        table = _read(group / name)
        assert list(table.columns[: len(columns)]) == columns, name
        sidecar = json.loads((group / name).with_suffix(".json").read_text())
        assert sidecar["Seed"] == 1234 and "numpy" in sidecar["SoftwareVersions"]
    assert (out / "dataset_description.json").is_file()

    comps = _read(group / "desc-pls_components.tsv")
    assert list(comps.component) == list(range(1, 16))
    assert comps.var_explained.between(0, 1).all() and comps.var_explained.sum() <= 1 + 1e-9
    assert comps.p_perm.between(1 / 201 - 1e-12, 1).all()

    genes = _read(group / "desc-pls1_genes.tsv")
    assert len(genes) == 15633 and genes.gene.is_unique
    assert (np.diff(genes.z.to_numpy()) <= 0).all()  # sorted by z, descending
    assert list(genes["rank"]) == list(range(1, 15634))
    np.testing.assert_allclose(genes.z, genes.weight / genes.se, rtol=1e-6)
    plus = (group / "desc-pls1plus_genes.txt").read_text().split()
    minus = (group / "desc-pls1minus_genes.txt").read_text().split()
    assert plus == genes.loc[genes.z > 3, "gene"].tolist()
    assert set(minus) == set(genes.loc[genes.z < -3, "gene"]) and plus and minus
    assert result["pls1_plus"] == plus

    scores = _read(group / "desc-pls1_scores.tsv")
    assert list(scores.region) == list(DK_LEFT_REGIONS)
    stats = json.loads((group / "desc-pls1_stats.json").read_text())
    assert {"r", "p_spin", "var_explained"} <= set(stats)
    assert stats["r"] == pytest.approx(np.corrcoef(scores.score, scores.response)[0, 1])
    assert stats["r"] > 0 and 0 < stats["p_spin"] <= 1
    assert stats["var_explained"] == pytest.approx(comps.var_explained[0])
    # the response is the ENIGMA map's left-hemisphere d
    enigma = pd.read_csv(ENIGMA_MDD).set_index("Structure")["d_icv"]
    np.testing.assert_allclose(
        scores.response, enigma.loc[[r.replace("lh_", "L_") for r in DK_LEFT_REGIONS]]
    )

    cells = _read(group / "desc-enrichment_celltypes.tsv")
    assert set(cells.direction) == {"PLS1+", "PLS1-"} and len(cells) == 14
    user = _read(group / "desc-enrichment_usersets.tsv")
    missing = user[user.gene_set == "not_in_matrix"]
    assert missing.p.isna().all() and missing.set_size.eq(0).all()
    ppi = _read(group / "desc-ppi_network.tsv")
    assert ppi.note.str.contains("no STRING file").all()


def test_spatial_nulls_in_the_outputs(enigma_run):
    """Spin and shuffle p of the components, null list sizes and p_spatial in the outputs."""
    from bids_ms.enrichment import SpatialNull
    from bids_ms.io.expression import load_default_expression
    from bids_ms.io.genesets import load_builtin_gene_sets
    from bids_ms.pls import bootstrap_indices, null_list_sizes, pls_permutation_test
    from bids_ms.spins import load_dk_centroids, spin_permutations

    out, result, settings = enigma_run
    group = out / "group"
    expr = load_default_expression().loc[list(DK_LEFT_REGIONS)]
    X = expr.to_numpy()
    y = _read(group / "desc-pls1_scores.tsv")["response"].to_numpy()
    coords = load_dk_centroids().loc[list(DK_LEFT_REGIONS)].to_numpy()
    spins = spin_permutations(coords, ["L"] * 34, n_spins=200, seed=1234)

    comps = _read(group / "desc-pls_components.tsv")
    meta = json.loads((group / "desc-pls_components.json").read_text())
    assert meta["PermNull"] == "spin" and meta["NumberOfSpins"] == 200
    assert meta["NumberOfShuffles"] == 200
    expected = pls_permutation_test(X, y, n_components=15, perms=spins)["p_perm_cumulative"]
    np.testing.assert_allclose(comps.p_spin, expected, rtol=1e-9)
    np.testing.assert_array_equal(comps.p_perm, comps.p_spin)  # the default null
    assert comps.p_shuffle.between(1 / 201 - 1e-12, 1).all()
    assert not np.allclose(comps.p_shuffle, comps.p_spin)

    stats = json.loads((group / "desc-pls1_stats.json").read_text())
    assert stats["perm_null"] == "spin" and stats["p_perm"] == pytest.approx(comps.p_spin[0])
    assert stats["p_shuffle"] == pytest.approx(comps.p_shuffle[0])
    null = stats["null_list_size"]
    assert null["n_null_maps"] == settings.n_null_maps == 100
    # the same bootstrap draws as the observed map (run_pls' child stream of the PLS seed)
    pls_seed = int(np.random.SeedSequence(1234).spawn(2)[0].generate_state(1)[0])
    boot_rng = np.random.default_rng(np.random.SeedSequence(pls_seed).spawn(2)[1])
    idx = bootstrap_indices(34, n_boot=200, seed=boot_rng)
    sizes = null_list_sizes(X, y, perms=spins[:100], indices=idx, threshold=3.0)
    assert null["plus_median"] == pytest.approx(np.median(sizes["plus"]))
    assert null["minus_q95"] == pytest.approx(np.quantile(sizes["minus"], 0.95))
    assert stats["empirical_fdr_plus"] == pytest.approx(null["plus_median"] / stats["n_pls1_plus"])
    assert stats["empirical_fdr_minus"] == pytest.approx(
        null["minus_median"] / stats["n_pls1_minus"]
    )
    assert stats["Exploratory"] == (stats["p_spin"] >= 0.05)

    cells = _read(group / "desc-enrichment_celltypes.tsv")
    assert list(cells.columns[7:9]) == ["p_spatial", "p_spatial_fdr"]
    cat = (
        SpatialNull(X, list(expr.columns), y, perms=spins)
        .categories(load_builtin_gene_sets("celltypes").sets)
        .set_index("gene_set")
    )
    for _, row in cells.iterrows():
        tail = "p_upper" if row.direction == "PLS1+" else "p_lower"
        assert row.p_spatial == pytest.approx(cat.loc[row.gene_set, tail])
    side = json.loads((group / "desc-enrichment_celltypes.json").read_text())
    assert side["NumberOfSpins"] == 200 and "paper's test" in side["p"]["Description"]
    for path in group.glob("desc-enrichment_*.tsv"):
        table = _read(path)
        assert {"p_spatial", "p_spatial_fdr"} <= set(table.columns), path.name
        tested = table.set_size > 0
        assert table.loc[tested, "p_spatial"].between(1 / 201 - 1e-12, 1).all(), path.name
        assert table.loc[~tested, ["p_spatial", "p_spatial_fdr"]].isna().all().all()
    user = _read(group / "desc-enrichment_usersets.tsv")
    assert user.loc[user.gene_set == "not_in_matrix", "p_spatial"].isna().all()
    methods = (group / "desc-transcriptomics_methods.md").read_text()
    assert "spin permutations" in methods and "Fisher" in methods
    # Fulcher et al. 2021 (the spatial null of the lists and of the gene sets) is cited and listed
    fulcher = [line for line in methods.splitlines() if "Fulcher BD, Arnatkevičiūtė A" in line]
    assert len(fulcher) == 1 and f"[{fulcher[0].split('.')[0]}]" in methods
    assert "Markello RD, Misic B" in methods


def test_resamplings_off_say_so(tmp_path, caplog):
    y = pd.read_csv(ENIGMA_MDD).set_index("Structure")["d_icv"]
    settings = TranscriptomicsSettings(n_perm=0, n_boot=0, gene_sets=["none"], rank_test=True)
    with caplog.at_level("WARNING", logger="bids_ms"):
        res = _run(y, settings, tmp_path, n_spins=0, seed=3)
    assert "exploratory" in caplog.text and "--n-spins 0" in caplog.text
    comps = json.loads((tmp_path / "desc-pls_components.json").read_text())
    assert "switched off" in comps["Note"]
    assert _read(tmp_path / "desc-pls_components.tsv").p_perm.isna().all()
    genes_meta = json.loads((tmp_path / "desc-pls1_genes.json").read_text())
    assert "bootstrap switched off" in genes_meta["Note"]
    stats = json.loads((tmp_path / "desc-pls1_stats.json").read_text())
    assert stats["p_spin"] is None and "switched off" in stats["Note"]
    assert stats["null_list_size"]["n_null_maps"] == 0 and stats["empirical_fdr_plus"] is None
    assert stats["Exploratory"] is True
    cells = _read(tmp_path / "desc-enrichment_celltypes.tsv")
    assert cells.p_spatial.isna().all() and cells.p_spatial_fdr.isna().all()
    assert res["pls1_plus"] == [] and (tmp_path / "desc-pls1plus_genes.txt").read_text() == ""
    assert not list(tmp_path.glob("desc-rankenrichment_*"))


def test_spin_permutation_null_recorded(tmp_path):
    y = pd.read_csv(ENIGMA_MDD).set_index("Structure")["d_icv"]
    settings = TranscriptomicsSettings(n_perm=50, n_boot=20, perm_null="spin", gene_sets=["none"])
    _run(y, settings, tmp_path, n_spins=80, seed=9, description="MDD map")
    meta = json.loads((tmp_path / "desc-pls_components.json").read_text())
    assert "spin" in meta["Null"] and meta["NumberOfNullResponses"] == 50
    assert meta["PermNull"] == "spin"
    assert meta["Response"] == "MDD map"


def test_paper_nulls_on_request(tmp_path):
    """--perm-null shuffle, --n-null-maps 0, --enrichment-null none: the paper's tests alone
    are reported, and the spatial columns stay, n/a."""
    y = pd.read_csv(ENIGMA_MDD).set_index("Structure")["d_icv"]
    settings = TranscriptomicsSettings(
        n_perm=40,
        n_boot=30,
        perm_null="shuffle",
        n_null_maps=0,
        enrichment_null="none",
        gene_sets=["none"],
    )
    _run(y, settings, tmp_path, n_spins=40, seed=11)
    comps = _read(tmp_path / "desc-pls_components.tsv")
    np.testing.assert_array_equal(comps.p_perm, comps.p_shuffle)
    assert comps.p_spin.notna().all()  # computed beside it all the same
    meta = json.loads((tmp_path / "desc-pls_components.json").read_text())
    assert meta["PermNull"] == "shuffle" and "shuffle" not in meta["SpinNull"]
    stats = json.loads((tmp_path / "desc-pls1_stats.json").read_text())
    assert stats["perm_null"] == "shuffle" and stats["p_perm"] == stats["p_shuffle"]
    assert stats["null_list_size"]["n_null_maps"] == 0 and stats["empirical_fdr_minus"] is None
    cells = _read(tmp_path / "desc-enrichment_celltypes.tsv")
    assert cells.p_spatial.isna().all() and cells.p.notna().any()
    assert not list(tmp_path.glob("desc-spinenrichment_*"))
    methods = (tmp_path / "desc-transcriptomics_methods.md").read_text()
    assert "(the p-value reported)" in methods.split("random permutations")[1]
    assert "(the p-value reported)" not in methods.split("random permutations")[0]


def test_expression_file_source(tmp_path):
    from bids_ms.io.expression import load_default_expression

    expr = load_default_expression().iloc[:34, :300]
    f = tmp_path / "expr.csv"
    expr.to_csv(f)
    y = pd.Series(np.linspace(-1, 1, 34) ** 3, index=list(DK_LEFT_REGIONS))
    settings = TranscriptomicsSettings(expression_file=f, n_perm=10, n_boot=20, gene_sets=["none"])
    _run(y, settings, tmp_path / "g", n_spins=0, seed=1)
    genes = _read(tmp_path / "g" / "desc-pls1_genes.tsv")
    assert len(genes) == 300
    meta = json.loads((tmp_path / "g" / "desc-pls1_genes.json").read_text())
    assert meta["Expression"]["ExpressionFile"] == str(f)


@pytest.mark.parametrize(
    "values, match",
    [
        (pd.Series(1.0, index=list(DK_LEFT_REGIONS)), "constant"),
        (pd.Series(np.r_[np.nan, np.arange(33.0)], index=list(DK_LEFT_REGIONS)), "missing"),
        (pd.Series(np.arange(33.0), index=list(DK_LEFT_REGIONS)[:33]), "lh_insula"),
        (pd.Series(np.arange(35.0), index=[*DK_LEFT_REGIONS, "lh_fakeregion"]), "not in the"),
        (np.arange(30.0), "30 values, expected 34"),
    ],
)
def test_bad_response_maps(values, match):
    with pytest.raises(InputDataError, match=match):
        check_response(values)


def test_bad_response_file(tmp_path):
    f = tmp_path / "map.tsv"
    f.write_text("region\tvalue\nlh_bankssts\t1\nlh_nowhere\t2\n")
    with pytest.raises(InputDataError):
        _run(None, TranscriptomicsSettings(response_map=f), tmp_path / "g", n_spins=10, seed=1)


def test_settings_validation():
    with pytest.raises(UsageError, match="not both"):
        TranscriptomicsSettings(ahba_dir=Path("a"), expression_file=Path("b"))
    with pytest.raises(UsageError, match="perm-null"):
        TranscriptomicsSettings(perm_null="random")
    with pytest.raises(UsageError, match="n-boot"):
        TranscriptomicsSettings(n_boot=-1)
    with pytest.raises(UsageError, match="string-links"):
        TranscriptomicsSettings(string_info=Path("x"))


def test_string_networks_in_outputs(tmp_path):
    from bids_ms.io.expression import load_default_expression

    y = pd.read_csv(ENIGMA_MDD).set_index("Structure")["d_icv"]
    genes = list(load_default_expression().columns[:40])
    rows = [(a, b, 0, 0, 0, 0, 800, 0, 0) for a, b in zip(genes[:-1], genes[1:], strict=True)]
    rows.append((genes[0], genes[5], 0, 0, 0, 0, 0, 0, 990))  # text mining only: dropped
    cols = "protein1 protein2 neighborhood fusion cooccurence coexpression experimental database textmining"
    links = tmp_path / "links.txt"
    pd.DataFrame(rows, columns=cols.split()).to_csv(links, sep=" ", index=False)
    settings = TranscriptomicsSettings(n_perm=0, n_boot=50, gene_sets=["none"], string_links=links)
    res = _run(y, settings, tmp_path / "g", n_spins=0, seed=5)
    ppi = _read(tmp_path / "g" / "desc-ppi_network.tsv")
    assert list(ppi.direction) == ["PLS1+", "PLS1-"]
    assert ppi.nodes.notna().all() and ppi.expected_edges.notna().all()
    edges = _read(tmp_path / "g" / "desc-ppi_pls1plus_edges.tsv")
    plus = set(res["pls1_plus"])
    assert all(a in plus and b in plus for a, b in zip(edges.gene1, edges.gene2, strict=True))
    meta = json.loads((tmp_path / "g" / "desc-ppi_network.json").read_text())
    assert meta["TextMiningExcluded"] is True


def test_end_to_end_abide_casecontrol_map(tmp_path):
    """``--response-map`` with the ABIDE case–control t-map of the bundled example."""
    tmap = DATA / "abide_nyu_usm_desc-casecontrol_tmap.tsv"
    settings = TranscriptomicsSettings(
        response_map=tmap, n_perm=100, n_boot=100, gene_sets=["none"]
    )
    res = run_response_map(settings, output_dir=tmp_path, seed=7, n_spins=100)
    group = tmp_path / "group"
    scores = _read(group / "desc-pls1_scores.tsv")
    t = _read(tmap).set_index("region")["value"]
    np.testing.assert_allclose(scores.response, t.loc[list(DK_LEFT_REGIONS)])
    stats = json.loads((group / "desc-pls1_stats.json").read_text())
    assert stats["r"] > 0 and stats["n_pls1_plus"] == len(res["pls1_plus"])
    cells = _read(group / "desc-enrichment_celltypes.tsv")
    assert len(cells) == 14 and cells.p.between(0, 1).all()


# --------------------------------------------------------------------------- one methods text


def test_methods_file_is_the_citation_text(enigma_run):
    """The stage's methods file is reports/citation.methods_text of the sidecars it wrote."""
    from bids_ms.reports.citation import methods_markdown, methods_text

    out, _, _ = enigma_run
    group = out / "group"

    def sidecar(name):
        return json.loads((group / name).read_text())

    stats = sidecar("desc-pls1_stats.json")
    stages = {
        "pls": stats,
        "pls_components": sidecar("desc-pls_components.json"),
        "celltypes": sidecar("desc-enrichment_celltypes.json"),
        "genesets": {
            name: sidecar(f"desc-enrichment_{name}.json")
            for name in ("disorders", "pain", "usersets")
        },
        "ppi": sidecar("desc-ppi_network.json"),
    }
    expected = methods_markdown(
        methods_text(participants=None, group=None, stages=stages),
        title="Imaging transcriptomics: methods",
    )
    text = (group / "desc-transcriptomics_methods.md").read_text()
    assert text == expected
    # the facts of this run: numbers, seed, software versions
    assert "200 spin permutations" in text and "200 random permutations" in text
    assert "200 bootstrap resamples" in text and "100 spun response maps" in text
    assert "15,633 genes" in text and "Random seed 1234." in text
    assert f"numpy {np.__version__}" in text and "bids-ms " in text
    assert "disorders, pain and usersets" in text
    # one reference style: numbered, each number a listed reference
    import re

    cited = {int(n) for g in re.findall(r"\[([\d, ]+)\]", text) for n in g.split(",")}
    assert cited == set(range(1, len(re.findall(r"^\d+\. ", text, flags=re.M)) + 1))


# --------------------------------------------------------------------------- seed and spins


def test_rank_enrichment_draws_from_the_rank_stream(enigma_run):
    """The median-rank test uses the run's rank_enrichment stream: SeedSequence(seed) child 1."""
    from bids_ms.config import stream_seed
    from bids_ms.enrichment import rank_enrichment
    from bids_ms.io.genesets import load_builtin_gene_sets

    out, _, _ = enigma_run
    group = out / "group"
    rank_seed = int(np.random.SeedSequence(1234).spawn(2)[1].generate_state(1)[0])
    assert stream_seed(1234, "rank_enrichment") == rank_seed
    ranking = _read(group / "desc-pls1_genes.tsv")["gene"].tolist()
    sets = load_builtin_gene_sets("celltypes").sets
    expected = rank_enrichment(ranking, sets, n_perm=200, seed=rank_seed)
    written = _read(group / "desc-rankenrichment_celltypes.tsv")
    assert list(written.columns) == list(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[column]):
            np.testing.assert_allclose(written[column], expected[column], rtol=1e-9)
        else:
            assert written[column].tolist() == expected[column].tolist()


def test_the_stage_uses_the_runs_spins(tmp_path):
    """Spins come from the SpinSet handed in (the group level's), not from the seed."""
    from bids_ms.io.expression import load_default_expression
    from bids_ms.pls import pls_permutation_test

    class Recording(SpinSet):
        def perms(self, regions):
            self.asked.append(tuple(regions))
            return super().perms(regions)

    spins = Recording(n_spins=30, seed=5)
    spins.asked = []
    y = pd.read_csv(ENIGMA_MDD).set_index("Structure")["d_icv"]
    settings = TranscriptomicsSettings(
        n_perm=30, n_boot=0, n_null_maps=0, gene_sets=["none"], enrichment_null="none"
    )
    run_transcriptomics(y, settings=settings, group_dir=tmp_path, seed=99, spins=spins)
    assert spins.asked[0] == tuple(DK_LEFT_REGIONS)  # (then the 68 regions it restricts)
    comps = _read(tmp_path / "desc-pls_components.tsv")
    X = load_default_expression().loc[list(DK_LEFT_REGIONS)].to_numpy()
    yv = _read(tmp_path / "desc-pls1_scores.tsv")["response"].to_numpy()
    left = SpinSet(n_spins=30, seed=5).perms(DK_LEFT_REGIONS)
    expected = pls_permutation_test(X, yv, n_components=15, perms=left)["p_perm_cumulative"]
    np.testing.assert_allclose(comps.p_spin, expected, rtol=1e-9)
    stats = json.loads((tmp_path / "desc-pls1_stats.json").read_text())
    assert stats["n_spins"] == 30 and stats["Seed"] == 99


def test_software_versions():
    from importlib.metadata import version

    import abagen

    from bids_ms import __version__
    from bids_ms.harmonize import combat_software
    from bids_ms.reports.citation import software_versions

    plain = software_versions()
    assert list(plain) == ["bids-ms", "python", "numpy", "scipy", "pandas"]
    assert plain["bids-ms"] == __version__ and plain["numpy"] == np.__version__
    assert plain["pandas"] == version("pandas")
    assert software_versions(abagen=True)["abagen"] == abagen.__version__
    assert software_versions(harmonize="combat") == {**plain, **combat_software()}
    assert software_versions(harmonize="none") == plain
