"""Run bids-ms as a brainlife.io app: read ``config.json``, lay the inputs out, run, report.

brainlife.io starts ``main`` in a folder holding ``config.json``; ``main`` runs this file either
with the installed ``bids-ms`` (``BIDS_MS_CMD`` or ``bids-ms`` on ``PATH``) or inside the bids-ms
container. Inputs, any one of (see ``config.json.example`` and README.md):

- ``bids``: a BIDS dataset folder (optionally with ``fs_stats_tables`` or ``fs_subjects_dir``);
- ``t1``: one T1-weighted NIfTI (brainlife ``neuro/anat/t1w``), laid out as a one-participant
  BIDS dataset; recon-all runs, so a FreeSurfer licence is needed;
- ``freesurfer``: one FreeSurfer subject folder (brainlife ``neuro/freesurfer``), reused as
  ``sub-<label>`` of a subjects folder; no recon-all.

The participant label comes from ``participant_label`` or the input's brainlife metadata
(``_inputs[].meta.subject``). Derivatives are written to ``output/`` and a summary to
``product.json`` (shown by brainlife). The exit code is bids-ms's (64 for a bad config).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

EXIT_USAGE = 64
LEVELS = {"participant": ["participant"], "group": ["group"], "both": ["participant", "group"]}
# config.json keys passed through as bids-ms options (key -> flag); lists or space-separated text.
OPTIONS = {
    "participant_label": "--participant-label",
    "session_label": "--session-label",
    "features": "--features",
    "nprocs": "--nprocs",
    "omp_nthreads": "--omp-nthreads",
    "group_column": "--group-column",
    "case_label": "--case-label",
    "control_label": "--control-label",
    "covariates": "--covariates",
    "site_column": "--site-column",
    "harmonize": "--harmonize",
    "n_spins": "--n-spins",
    "n_label_perms": "--n-label-perms",
    "seed": "--seed",
}
PARTICIPANT_ONLY = {"participant_label", "session_label", "omp_nthreads"}
GROUP_ONLY = {
    "group_column", "case_label", "control_label", "covariates", "site_column", "harmonize",
    "n_spins", "n_label_perms", "seed",
}  # fmt: skip
FLAGS = {"skip_bids_validation": "--skip-bids-validation", "overwrite": "--overwrite"}


class ConfigError(Exception):
    """config.json asks for something this app cannot do."""


def _words(value) -> list[str]:
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split()


def _path(config: dict, key: str, base: Path) -> Path | None:
    value = config.get(key)
    if value in (None, ""):
        return None
    path = Path(value)
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise ConfigError(f"config.json: {key} = {value!r}: {path} does not exist")
    return path.resolve()


def _label(config: dict, input_id: str) -> str:
    """Participant label from the config or the brainlife metadata of ``input_id``."""
    label = config.get("participant_label")
    if isinstance(label, list):
        label = label[0] if len(label) == 1 else None
    if not label:
        for item in config.get("_inputs", []):
            if item.get("id") == input_id and item.get("meta", {}).get("subject"):
                label = item["meta"]["subject"]
                break
    label = re.sub(r"[^A-Za-z0-9]", "", str(label or "").removeprefix("sub-"))
    if not label:
        raise ConfigError(
            f"config.json: no participant label for the {input_id!r} input: set "
            "participant_label or the input's subject metadata"
        )
    return label


def _session(config: dict, input_id: str) -> str | None:
    for item in config.get("_inputs", []):
        if item.get("id") == input_id and item.get("meta", {}).get("session"):
            return re.sub(r"[^A-Za-z0-9]", "", str(item["meta"]["session"])) or None
    return None


def _bids_view(root: Path, label: str, session: str | None, t1: Path | None) -> Path:
    """A minimal BIDS dataset for one participant (symlinks; nothing copied)."""
    bids = root / "bids"
    if bids.exists():
        shutil.rmtree(bids)
    bids.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "brainlife.io input", "BIDSVersion": "1.9.0", "DatasetType": "raw"})
        + "\n"
    )
    (bids / "participants.tsv").write_text(f"participant_id\nsub-{label}\n")
    if t1 is not None:
        anat = bids / f"sub-{label}" / (f"ses-{session}" if session else "") / "anat"
        anat.mkdir(parents=True)
        stem = f"sub-{label}" + (f"_ses-{session}" if session else "")
        suffix = ".nii.gz" if t1.name.endswith(".gz") else ".nii"
        (anat / f"{stem}_T1w{suffix}").symlink_to(t1)
    return bids


def build_commands(config: dict, base: Path, workdir: Path) -> list[list[str]]:  # noqa: C901 - a branch per brainlife config key
    """The bids-ms argument lists (without the program) that ``config`` asks for."""
    level = str(config.get("analysis_level", "participant"))
    if level not in LEVELS:
        raise ConfigError(
            f"config.json: analysis_level {level!r}: choose one of {', '.join(LEVELS)}"
        )
    bids = _path(config, "bids", base)
    t1 = _path(config, "t1", base)
    freesurfer = _path(config, "freesurfer", base)
    if sum(x is not None for x in (bids, t1, freesurfer)) != 1:
        raise ConfigError("config.json: give exactly one of bids, t1 or freesurfer")

    shared: list[str] = []
    participant: list[str] = []
    taken: set[str] = set()  # config keys already turned into options
    if bids is None:
        input_id = "t1" if t1 is not None else "freesurfer"
        label = _label(config, input_id)
        session = _session(config, input_id)
        bids = _bids_view(workdir, label, session, t1)
        shared.append("--skip-bids-validation")
        participant += ["--participant-label", label]
        taken.add("participant_label")
        if freesurfer is not None:
            subjects = workdir / "fs_subjects"
            subjects.mkdir(exist_ok=True)
            link = subjects / (f"sub-{label}" + (f"_ses-{session}" if session else ""))
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(freesurfer, target_is_directory=True)
            participant += ["--fs-subjects-dir", str(subjects)]
    for key, flag in (
        ("fs_stats_tables", "--fs-stats-tables"),
        ("fs_subjects_dir", "--fs-subjects-dir"),
    ):
        path = _path(config, key, base)
        if path is not None:
            participant += [flag, str(path)]

    licence = _path(config, "fs_license", base)
    if licence is None and (workdir / "license.txt").is_file():
        licence = workdir / "license.txt"  # written by main from $FREESURFER_LICENSE
    if licence is not None:
        participant += ["--fs-license-file", str(licence)]

    for key, flag in FLAGS.items():
        if config.get(key) in (True, "true", "True", 1) and flag not in shared:
            shared.append(flag)
    group: list[str] = []
    for key, flag in OPTIONS.items():
        words = _words(config.get(key))
        if not words or key in taken:
            continue
        target = participant if key in PARTICIPANT_ONLY else group if key in GROUP_ONLY else shared
        target += [flag, *words]
    participant += shlex.split(str(config.get("participant_args", "")))
    group += shlex.split(str(config.get("group_args", "")))

    out = workdir / "output"
    work = workdir / "work"
    head = [str(bids), str(out)]
    tail = ["-w", str(work), *shared]
    commands = []
    for lvl in LEVELS[level]:
        extra = participant if lvl == "participant" else group
        commands.append([*head, lvl, *tail, *extra])
    return commands


def bids_ms_command() -> list[str]:
    """How to start bids-ms: ``$BIDS_MS_CMD`` (shell words) or ``bids-ms`` on ``PATH``."""
    if os.environ.get("BIDS_MS_CMD"):
        return shlex.split(os.environ["BIDS_MS_CMD"])
    found = shutil.which("bids-ms")
    if found is None:
        raise ConfigError("bids-ms not found: install it, set BIDS_MS_CMD or run in the container")
    return [found]


def _summary(out: Path) -> dict:
    sidecars = sorted(out.glob("sub-*/**/anat/*_desc-MS_regional.json"))
    global_ms = {}
    for path in sidecars:
        try:
            value = json.loads(path.read_text()).get("GlobalMS")
        except (OSError, json.JSONDecodeError):
            continue
        if value is not None:
            global_ms[path.name.split("_atlas-")[0]] = value
    group = sorted(p.name for p in (out / "group").glob("*")) if (out / "group").is_dir() else []
    return {"participants": len(sidecars), "global_ms": global_ms, "group_files": group}


def write_product(path: Path, messages: list[dict], summary: dict | None = None) -> None:
    product = {"brainlife": messages}
    if summary is not None:
        product["bids-ms"] = summary
    path.write_text(json.dumps(product, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config_path = Path(argv[0] if argv else "config.json").resolve()
    workdir = Path.cwd()
    product = workdir / "product.json"
    try:
        config = json.loads(config_path.read_text())
        commands = build_commands(config, config_path.parent, workdir)
        program = bids_ms_command()
    except (OSError, json.JSONDecodeError, ConfigError) as err:
        message = str(err)
        print(f"bids-ms brainlife app: error: {message}", file=sys.stderr)
        write_product(product, [{"type": "error", "msg": message}])
        return EXIT_USAGE
    code = 0
    for args in commands:
        print("+ " + shlex.join([*program, *args]), flush=True)
        code = subprocess.run([*program, *args], check=False).returncode
        if code not in (0, 1):  # 1: some participant failed, the others finished
            break
    summary = _summary(workdir / "output")
    if code == 0:
        msg = {
            "type": "success",
            "msg": f"bids-ms finished: {summary['participants']} participant(s)",
        }
    elif code == 1:
        msg = {"type": "warning", "msg": "bids-ms finished, but some participants failed (see log)"}
    else:
        msg = {"type": "error", "msg": f"bids-ms stopped with exit code {code} (see log)"}
    write_product(product, [msg], summary)
    return code


if __name__ == "__main__":
    sys.exit(main())
