"""The participant workflow's wiring (no FreeSurfer needed to build it)."""

from __future__ import annotations

from pathlib import Path

from bids_ms.interfaces.freesurfer import ReconAll
from bids_ms.interfaces.morphometric import MorphometricSimilarity
from bids_ms.workflows.base import ReconTarget, init_bids_ms_wf


def test_one_subworkflow_per_target_recon_then_ms(tmp_path):
    (tmp_path / "fs").mkdir()  # made by the participant level before wiring
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.nii.gz").write_bytes(b"")
    targets = [
        ReconTarget("01", None, [str(tmp_path / "a.nii.gz")]),
        ReconTarget("02", "pre", [str(tmp_path / "b.nii.gz"), str(tmp_path / "c.nii.gz")]),
    ]
    wf = init_bids_ms_wf(
        targets=targets,
        subjects_dir=tmp_path / "fs",
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
        features=("volume", "area", "thickness"),
        omp_nthreads=4,
        freesurfer_version="7.3.2",
    )
    names = sorted(wf.list_node_names())
    assert names == [
        "single_subject_sub_01_wf.morphometric_similarity",
        "single_subject_sub_01_wf.recon_all",
        "single_subject_sub_02_ses_pre_wf.morphometric_similarity",
        "single_subject_sub_02_ses_pre_wf.recon_all",
    ]
    sub = wf.get_node("single_subject_sub_02_ses_pre_wf")
    recon, ms = sub.get_node("recon_all"), sub.get_node("morphometric_similarity")
    assert isinstance(recon.interface, ReconAll) and isinstance(
        ms.interface, MorphometricSimilarity
    )
    assert recon.inputs.subject_id == "sub-02_ses-pre"
    assert recon.inputs.T1_files == [str(tmp_path / "b.nii.gz"), str(tmp_path / "c.nii.gz")]
    assert recon.inputs.openmp == 4 and recon.n_procs == 4
    assert ms.inputs.session == "pre" and ms.inputs.features == ["volume", "area", "thickness"]
    edges = {(u.name, v.name): d["connect"] for u, v, d in sub._graph.edges(data=True)}
    assert edges[("recon_all", "morphometric_similarity")] == [
        ("subjects_dir", "subjects_dir"),
        ("subject_id", "subject_id"),
    ]
    assert Path(wf.base_dir) == tmp_path / "work"
    assert wf.config["execution"]["crashdump_dir"] == str(tmp_path / "work")
