"""nipype workflows of the participant level: recon-all, then MS extraction.

These factories only wire nodes (sMRIPrep's ``init_*_wf`` convention); the work is done
by :mod:`bids_ms.interfaces` and the science modules they call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nipype.pipeline import engine as pe

from ..interfaces.freesurfer import ReconAll
from ..interfaces.morphometric import MorphometricSimilarity
from ..io.derivatives import participant_prefix

__all__ = ["ReconTarget", "init_bids_ms_wf", "init_single_subject_wf", "freesurfer_subject_id"]

#: Memory recon-all is expected to need (GB), for nipype's MultiProc scheduling.
RECON_ALL_MEM_GB = 8.0


@dataclass
class ReconTarget:
    """One participant (and session) whose T1w images recon-all will process."""

    subject: str
    session: str | None
    t1w: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return participant_prefix(self.subject, self.session)


def freesurfer_subject_id(subject: str, session: str | None = None) -> str:
    """FreeSurfer subject id of a participant: ``sub-<L>`` or ``sub-<L>_ses-<S>``."""
    return participant_prefix(subject, session)


def _node_name(label: str) -> str:
    return label.replace("-", "_")


def init_single_subject_wf(
    *,
    target: ReconTarget,
    subjects_dir: Path,
    output_dir: Path,
    features: tuple[str, ...],
    omp_nthreads: int,
    freesurfer_version: str | None,
    mem_gb: float | None = None,
    name: str | None = None,
) -> pe.Workflow:
    """recon-all on one participant's T1w images, then its MS derivatives.

    Parameters
    ----------
    target : ReconTarget
        Participant, session and T1w files (several runs become several ``-i``).
    subjects_dir : Path
        FreeSurfer ``SUBJECTS_DIR`` (``<out>/sourcedata/freesurfer`` by default).
    output_dir : Path
        bids-ms derivatives folder.
    features : tuple of str
    omp_nthreads : int
        Threads of recon-all (``-openmp``).
    freesurfer_version : str or None
        Recorded in the sidecar when the stats files do not say.
    mem_gb : float, optional
        The memory limit given to nipype (``--mem``); recon-all's estimate (8 GB) is
        capped to it, so MultiProc can schedule the node.
    """
    wf = pe.Workflow(name=name or f"single_subject_{_node_name(target.label)}_wf")
    fs_id = freesurfer_subject_id(target.subject, target.session)
    recon = pe.Node(
        ReconAll(
            subject_id=fs_id,
            directive="all",
            subjects_dir=str(subjects_dir),
            T1_files=list(target.t1w),
            openmp=omp_nthreads,
        ),
        name="recon_all",
        n_procs=omp_nthreads,
        mem_gb=RECON_ALL_MEM_GB if mem_gb is None else min(RECON_ALL_MEM_GB, mem_gb),
    )
    recon.interface._always_run = True  # recon-all decides itself what is left to do
    ms = pe.Node(
        MorphometricSimilarity(
            subject=target.subject,
            session=target.session,
            output_dir=str(output_dir),
            features=list(features),
            source="recon-all",
            freesurfer_version=freesurfer_version,
        ),
        name="morphometric_similarity",
    )
    wf.connect([(recon, ms, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")])])
    return wf


def init_bids_ms_wf(
    *,
    targets: list[ReconTarget],
    subjects_dir: Path,
    output_dir: Path,
    work_dir: Path,
    features: tuple[str, ...],
    omp_nthreads: int,
    freesurfer_version: str | None,
    mem_gb: float | None = None,
    name: str = "bids_ms_wf",
) -> pe.Workflow:
    """The participant-level workflow: one :func:`init_single_subject_wf` per target.

    ``mem_gb`` (``--mem``) caps each node's memory estimate; see
    :func:`init_single_subject_wf`.
    """
    wf = pe.Workflow(name=name, base_dir=str(work_dir))
    # nipype writes crash files into the current folder unless told; keep them in the work
    # folder, where the participant level's failure message points
    wf.config["execution"]["crashdump_dir"] = str(work_dir)
    for target in targets:
        wf.add_nodes(
            [
                init_single_subject_wf(
                    target=target,
                    subjects_dir=subjects_dir,
                    output_dir=output_dir,
                    features=features,
                    omp_nthreads=omp_nthreads,
                    freesurfer_version=freesurfer_version,
                    mem_gb=mem_gb,
                )
            ]
        )
    return wf
