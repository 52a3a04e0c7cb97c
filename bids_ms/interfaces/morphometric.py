"""A nipype interface that turns a finished recon-all subject into MS derivatives."""

from __future__ import annotations

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from ..errors import InputDataError
from ..io.derivatives import participant_prefix, write_participant_derivatives
from ..io.fsstats import read_subject_stats
from ..similarity import global_ms, ms_matrices_batched, ms_undefined_reasons, regional_ms

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
        # The same computation as the participant level's batched route, for one participant;
        # everything is computed before the first file is written.
        values = stats.morphometry.to_numpy(dtype=float)[None]
        reason = ms_undefined_reasons(values)[0]
        if reason is not None:
            label = participant_prefix(self.inputs.subject, self.inputs.session)
            raise InputDataError(f"{label}: {reason}; check this participant's FreeSurfer outputs")
        matrix = ms_matrices_batched(values)[0]
        regional = regional_ms(matrix)
        paths = write_participant_derivatives(
            self.inputs.output_dir,
            subject=self.inputs.subject,
            session=self.inputs.session,
            morphometry=stats.morphometry,
            matrix=matrix,
            regional=regional,
            global_ms=float(global_ms(regional)),
            etiv=stats.etiv,
            freesurfer_version=stats.freesurfer_version or self.inputs.freesurfer_version,
            source=self.inputs.source,
            source_files=[str(p) for p in stats.files],
        )
        self._results["out_files"] = [str(p) for p in paths.values()]
        return runtime
