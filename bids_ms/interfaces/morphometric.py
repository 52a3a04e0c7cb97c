"""A nipype interface that turns a finished recon-all subject into MS derivatives."""

from __future__ import annotations

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from ..io.derivatives import derive_participant
from ..io.fsstats import read_subject_stats

__all__ = ["MorphometricSimilarity"]


class _MSInputSpec(BaseInterfaceInputSpec):
    subjects_dir = Directory(exists=True, mandatory=True, desc="FreeSurfer SUBJECTS_DIR")
    subject_id = traits.Str(mandatory=True, desc="FreeSurfer subject id")
    subject = traits.Str(mandatory=True, desc="BIDS participant label, without 'sub-'")
    session = traits.Either(None, traits.Str, usedefault=True, desc="BIDS session label")
    output_dir = Directory(mandatory=True, desc="bids-ms output (derivatives) folder")
    features = traits.List(traits.Str, mandatory=True, desc="morphometric features to use")
    source = traits.Str("recon-all", usedefault=True, desc="where the FreeSurfer outputs came from")
    freesurfer_version = traits.Either(None, traits.Str, usedefault=True)


class _MSOutputSpec(TraitedSpec):
    out_files = traits.List(traits.File(exists=True), desc="derivative files written")


class MorphometricSimilarity(SimpleInterface):
    """Read ``?h.aparc.stats``/``aseg.stats``, compute MS, write the participant's derivatives."""

    input_spec = _MSInputSpec
    output_spec = _MSOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        subject_dir = Path(self.inputs.subjects_dir) / self.inputs.subject_id
        stats = read_subject_stats(subject_dir, features=tuple(self.inputs.features))
        paths = derive_participant(
            self.inputs.output_dir,
            subject=self.inputs.subject,
            session=self.inputs.session,
            morphometry=stats.morphometry,
            etiv=stats.etiv,
            freesurfer_version=stats.freesurfer_version or self.inputs.freesurfer_version,
            source=self.inputs.source,
            source_files=[str(p) for p in stats.files],
        )
        self._results["out_files"] = [str(p) for p in paths.values()]
        return runtime
