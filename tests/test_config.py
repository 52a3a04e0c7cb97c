"""The settings of each level: one default and one check per option (bids_ms/config.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bids_ms.config import (
    DEFAULT_GENE_SET_LIBRARIES,
    GroupSettings,
    ParticipantSettings,
    TranscriptomicsSettings,
    default_of,
    option_fields,
)
from bids_ms.errors import UsageError


def test_defaults_are_the_papers():
    g = GroupSettings(output_dir=Path("o"))
    assert (g.n_spins, g.n_label_perms, g.seed, g.harmonize) == (10000, 5000, None, "none")
    assert g.covariates == ("age", "sex", "eTIV") and g.reference_maps == []
    t = TranscriptomicsSettings()
    assert (t.n_components, t.n_perm, t.n_boot, t.z_threshold) == (15, 1000, 1000, 3.0)
    assert (t.perm_null, t.enrichment_null, t.n_null_maps) == ("spin", "spin", 100)
    assert DEFAULT_GENE_SET_LIBRARIES == ("pain", "disorders", "gobp", "wikipathways")
    assert default_of(GroupSettings, "reference_maps") == []  # a fresh list from the factory
    assert default_of(GroupSettings, "reference_maps") is not default_of(
        GroupSettings, "reference_maps"
    )
    with pytest.raises(KeyError):
        default_of(GroupSettings, "output_dir")  # no default: the caller gives it


def test_one_seed_and_one_n_spins_per_run():
    names = [f.name for f in dataclasses.fields(TranscriptomicsSettings)]
    assert "n_spins" not in names and "seed" not in names
    assert sum(name == "n_spins" for name in option_fields()) == 1
    with pytest.raises(TypeError):
        TranscriptomicsSettings(n_spins=10)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (GroupSettings, {"n_spins": -1}, "--n-spins: -1 must be 0 or more"),
        (GroupSettings, {"n_label_perms": -1}, "--n-label-perms: -1 must be 0 or more"),
        (GroupSettings, {"seed": 2**32}, "--seed: 4294967296 must be below 2**32"),
        (GroupSettings, {"seed": -1}, "--seed: -1 must be 0 or more"),
        (GroupSettings, {"harmonize": "ComBat"}, "--harmonize must be one of none, combat"),
        (GroupSettings, {"harmonize": "combat"}, "--harmonize combat needs --site-column"),
        (TranscriptomicsSettings, {"n_components": 0}, "--n-components: 0 must be at least 1"),
        (TranscriptomicsSettings, {"n_boot": -1}, "--n-boot: -1 must be 0 or more"),
        (TranscriptomicsSettings, {"n_null_maps": -5}, "--n-null-maps: -5 must be 0 or more"),
        (TranscriptomicsSettings, {"z_threshold": -1.0}, "--z-threshold: -1.0 must be positive"),
        (TranscriptomicsSettings, {"perm_null": "x"}, "--perm-null must be one of spin, shuffle"),
        (TranscriptomicsSettings, {"enrichment_null": "x"}, "--enrichment-null must be one of"),
        (TranscriptomicsSettings, {"string_info": Path("i")}, "--string-info needs"),
        (
            TranscriptomicsSettings,
            {"ahba_dir": Path("a"), "expression_file": Path("e")},
            "give either --ahba-dir or --expression-file, not both",
        ),
        (ParticipantSettings, {"nprocs": 0}, "--nprocs: 0 must be at least 1"),
        (ParticipantSettings, {"omp_nthreads": 0}, "--omp-nthreads: 0 must be at least 1"),
        (ParticipantSettings, {"mem_gb": 0.0}, "--mem: 0.0 must be positive"),
    ],
)
def test_each_option_is_checked_with_a_line_naming_its_flag(cls, kwargs, message):
    given = {"bids_dir": Path("b"), "work_dir": Path("w")} if cls is ParticipantSettings else {}
    if cls is not TranscriptomicsSettings:
        given["output_dir"] = Path("o")
    with pytest.raises(UsageError) as err:
        cls(**given, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_edges_are_accepted():
    assert GroupSettings(output_dir=Path("o"), n_spins=0, n_label_perms=0, seed=2**32 - 1).seed
    assert GroupSettings(output_dir=Path("o"), harmonize="combat", site_column="site")
    assert TranscriptomicsSettings(n_components=1, n_perm=0, z_threshold=1e-9).n_perm == 0
    assert ParticipantSettings(Path("b"), Path("o"), Path("w"), nprocs=1, mem_gb=0.5).nprocs == 1


def test_omp_threads_default_to_min_8_nprocs():
    assert ParticipantSettings(Path("b"), Path("o"), Path("w"), nprocs=12).omp_nthreads == 8
    assert ParticipantSettings(Path("b"), Path("o"), Path("w"), nprocs=3).omp_nthreads == 3
    given = ParticipantSettings(Path("b"), Path("o"), Path("w"), nprocs=12, omp_nthreads=2)
    assert given.omp_nthreads == 2


def test_transcriptomics_sidecar_settings_keep_their_keys():
    """The sidecars' "Settings" list the run's n_spins and seed where they always stood."""
    keys = list(TranscriptomicsSettings().as_json(n_spins=10000, seed=7))
    assert keys == [
        *("ahba_dir", "expression_file", "response_map", "n_components", "n_perm"),
        *("perm_null", "n_boot", "z_threshold", "n_null_maps", "gene_sets", "string_links"),
        *("string_info", "enrichment_null", "n_spins", "seed", "rank_test"),
    ]
    text = TranscriptomicsSettings(response_map=Path("m.tsv")).as_json(n_spins=5, seed=1)
    assert text["response_map"] == "m.tsv" and (text["n_spins"], text["seed"]) == (5, 1)
    assert "seed" not in TranscriptomicsSettings().as_json()
