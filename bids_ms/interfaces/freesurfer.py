"""FreeSurfer: finding the installation and licence, and a recon-all that resumes.

:class:`ReconAll` extends nipype's interface (which already adds ``-no<step>`` flags for
the steps whose outputs are up to date) in the way sMRIPrep's does: a subject whose
``scripts/recon-all.done`` and stats files exist is not run again, and the
``scripts/IsRunning.*`` lock files that a killed recon-all leaves behind are removed so a
rerun can resume instead of refusing to start.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from nipype.interfaces.base import traits
from nipype.interfaces.freesurfer import ReconAll as _NipypeReconAll
from nipype.interfaces.freesurfer.preprocess import ReconAllInputSpec

from ..errors import FreeSurferLicenseError, FreeSurferMissingError

__all__ = [
    "ReconAll",
    "find_freesurfer_home",
    "find_license",
    "freesurfer_environment",
    "freesurfer_version",
    "recon_all_complete",
    "ensure_fsaverage",
    "remove_stale_locks",
]

_VERSION_RE = re.compile(r"(\d+\.\d+\.\d+)")
LICENSE_URL = "https://surfer.nmr.mgh.harvard.edu/registration.html"


def find_freesurfer_home(*, needed_for: str = "") -> Path:
    """The FreeSurfer installation (``$FREESURFER_HOME``, else the one of ``recon-all`` on PATH).

    Raises
    ------
    FreeSurferMissingError
        Neither is there (exit code 127).
    """
    env = os.environ.get("FREESURFER_HOME")
    if env and (Path(env) / "bin" / "recon-all").is_file():
        return Path(env)
    on_path = shutil.which("recon-all")
    if on_path:
        return Path(on_path).resolve().parent.parent
    where = f" (FREESURFER_HOME={env} has no bin/recon-all)" if env else ""
    raise FreeSurferMissingError(
        f"recon-all is needed{needed_for} but FreeSurfer is not installed{where}: install "
        "FreeSurfer 7 and set FREESURFER_HOME, run the bids-ms container, or give existing "
        "FreeSurfer outputs with --fs-subjects-dir or --fs-stats-tables"
    )


def find_license(
    license_file: str | Path | None, *, fs_home: Path | None, needed_for: str = ""
) -> Path:
    """The FreeSurfer licence: ``--fs-license-file``, else ``$FS_LICENSE``, else
    ``$FREESURFER_HOME/license.txt`` (the order FreeSurfer itself and fMRIPrep use).

    The file is only located and checked to be a non-empty file; its content is FreeSurfer's
    business (recon-all checks it). No licence is ever written or made up here.

    Raises
    ------
    FreeSurferLicenseError
        No licence file (exit code 126), with how to get one.
    """
    candidates: list[tuple[str, Path]] = []
    if license_file:
        candidates.append(("--fs-license-file", Path(license_file)))
    elif os.environ.get("FS_LICENSE"):
        candidates.append(("FS_LICENSE", Path(os.environ["FS_LICENSE"])))
    elif fs_home is not None:
        candidates += [
            ("FREESURFER_HOME", fs_home / "license.txt"),
            ("FREESURFER_HOME", fs_home / ".license"),
        ]
    for _origin, path in candidates:
        if path.is_file() and path.stat().st_size > 0:
            return path.resolve()
    tried = ", ".join(f"{p} ({o})" for o, p in candidates) or "nothing to try"
    fix = (
        f"get a free licence at {LICENSE_URL} and pass --fs-license-file /path/to/license.txt "
        "or set FS_LICENSE"
    )
    given = [p for o, p in candidates if o != "FREESURFER_HOME" and not p.exists()]
    if given:  # most often a path of the host, not mounted into the container
        fix = (
            f"{given[0]} does not exist here; in a container, mount the folder that holds the "
            "licence (docker run -v /path/to/folder:/fs_license:ro, apptainer -B "
            "/path/to/folder:/fs_license) and pass --fs-license-file /fs_license/license.txt"
        )
    raise FreeSurferLicenseError(
        f"recon-all is needed{needed_for} but no FreeSurfer licence was found (tried {tried}); "
        + fix
    )


def freesurfer_environment(fs_home: Path, *, subjects_dir: Path, license_path: Path | None) -> dict:
    """The environment recon-all needs, as ``SetUpFreeSurfer.sh`` would set it."""
    env = {
        "FREESURFER_HOME": str(fs_home),
        "FREESURFER": str(fs_home),
        "SUBJECTS_DIR": str(subjects_dir),
        "FSFAST_HOME": str(fs_home / "fsfast"),
        "FUNCTIONALS_DIR": str(fs_home / "sessions"),
        "FSF_OUTPUT_FORMAT": "nii.gz",
        "FS_OVERRIDE": "0",
        "LOCAL_DIR": str(fs_home / "local"),
        "MINC_BIN_DIR": str(fs_home / "mni" / "bin"),
        "MINC_LIB_DIR": str(fs_home / "mni" / "lib"),
        "MNI_DIR": str(fs_home / "mni"),
        "MNI_DATAPATH": str(fs_home / "mni" / "data"),
        "PERL5LIB": str(fs_home / "mni" / "share" / "perl5"),
        "MNI_PERL5LIB": str(fs_home / "mni" / "share" / "perl5"),
    }
    if license_path is not None:
        env["FS_LICENSE"] = str(license_path)
    paths = [
        fs_home / "bin",
        fs_home / "fsfast" / "bin",
        fs_home / "tktools",
        fs_home / "mni" / "bin",
    ]
    env["PATH"] = os.pathsep.join([str(p) for p in paths] + [os.environ.get("PATH", "")])
    return env


def freesurfer_version(fs_home: Path | None = None) -> str | None:
    """FreeSurfer's release (``7.3.2``) from ``build-stamp.txt`` or ``recon-all --version``.

    ``recon-all --version`` works without a licence. Returns ``None`` when neither answers.
    """
    fs_home = fs_home or (
        Path(os.environ["FREESURFER_HOME"]) if os.environ.get("FREESURFER_HOME") else None
    )
    texts = []
    if fs_home is not None and (fs_home / "build-stamp.txt").is_file():
        texts.append((fs_home / "build-stamp.txt").read_text(errors="replace"))
    recon = (fs_home / "bin" / "recon-all") if fs_home else shutil.which("recon-all")
    if not texts and recon and Path(recon).is_file():
        env = dict(os.environ)
        if fs_home is not None:
            env["FREESURFER_HOME"] = str(fs_home)
        try:
            res = subprocess.run(
                [str(recon), "--version"], capture_output=True, text=True, timeout=60, env=env
            )
            texts.append(res.stdout + res.stderr)
        except (OSError, subprocess.TimeoutExpired):
            pass
    for text in texts:
        match = _VERSION_RE.search(text.strip().splitlines()[0] if text.strip() else "")
        if match:
            return match.group(1)
    return None


def ensure_fsaverage(subjects_dir: Path, fs_home: Path) -> None:
    """Link ``fsaverage`` into ``subjects_dir`` once, before participants run in parallel.

    recon-all links it itself when it is missing; several recon-alls starting at once
    would race to create the same link, so it is made here first (as sMRIPrep does).
    """
    target = subjects_dir / "fsaverage"
    if target.exists() or target.is_symlink():
        return
    source = fs_home / "subjects" / "fsaverage"
    try:
        target.symlink_to(source, target_is_directory=True)
    except FileExistsError:  # another bids-ms process made it just now
        pass


def remove_stale_locks(subject_dir: Path) -> list[Path]:
    """Delete the ``scripts/IsRunning.*`` files a killed recon-all left (it refuses to start
    while they exist); return what was removed."""
    removed = sorted((Path(subject_dir) / "scripts").glob("IsRunning.*"))
    for lock in removed:
        lock.unlink()
    return removed


def recon_all_complete(subject_dir: Path) -> bool:
    """True when recon-all finished for this subject and wrote the DK stats."""
    return (
        (subject_dir / "scripts" / "recon-all.done").is_file()
        and all((subject_dir / "stats" / f"{h}.aparc.stats").is_file() for h in ("lh", "rh"))
        and not any((subject_dir / "scripts").glob("IsRunning.*"))
    )


class _ReconAllInputSpec(ReconAllInputSpec):
    remove_stale_locks = traits.Bool(
        True,
        usedefault=True,
        desc="remove scripts/IsRunning.* left by a recon-all that was killed, so it can resume",
    )


class ReconAll(_NipypeReconAll):
    """nipype's ``ReconAll`` that skips finished subjects and clears stale locks.

    Examples
    --------
    >>> recon = ReconAll(subject_id="sub-01", directive="all", subjects_dir="/tmp/fs",
    ...                  T1_files=["/data/sub-01_T1w.nii.gz"], openmp=4)  # doctest: +SKIP
    >>> recon.cmdline  # doctest: +SKIP
    'recon-all -all -i /data/sub-01_T1w.nii.gz -openmp 4 -subjid sub-01 -sd /tmp/fs'
    """

    input_spec = _ReconAllInputSpec

    def _subject_dir(self) -> Path:
        return Path(self.inputs.subjects_dir) / self.inputs.subject_id

    @property
    def cmdline(self):
        if recon_all_complete(self._subject_dir()) and not self.force_run:
            return "echo recon-all: nothing to do"
        return super().cmdline

    def _run_interface(self, runtime):
        if self.inputs.remove_stale_locks:
            remove_stale_locks(self._subject_dir())
        return super()._run_interface(runtime)
