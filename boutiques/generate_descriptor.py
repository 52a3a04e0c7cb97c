"""Write ``boutiques/descriptor.json`` from the bids-ms argument parser.

The descriptor follows Boutiques' BIDS-App template (``bosh validate --bids`` accepts it): the
command line starts ``mkdir -p [OUTPUT_DIR]; bids-ms [BIDS_DIR] [OUTPUT_DIR] [ANALYSIS_LEVEL]
[PARTICIPANT_LABEL] [SESSION_LABEL]`` and every other option of ``bids-ms`` follows as one input,
named after the parser's ``dest``. Run it after changing the command line::

    python boutiques/generate_descriptor.py          # rewrite descriptor.json
    python boutiques/generate_descriptor.py --check  # exit 1 when descriptor.json is out of date

``tests/test_distribution.py`` checks that the descriptor and the parser agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DESCRIPTOR = HERE / "descriptor.json"
IMAGE = "ghcr.io/bids-ms/bids-ms"

# Options that take a path which bids-ms creates (not a file that must exist beforehand).
CREATED_PATHS = {"work_dir", "bids_database_dir"}
# No "default-value" is written: bids-ms applies its own defaults (one source of truth, and the
# command Boutiques builds stays the one a user would type); the descriptions give them.
# Options that are not inputs of a run.
SKIP_ACTIONS = (argparse._HelpAction, argparse._VersionAction)

BIDS_APP_POSITIONALS = [
    {
        "id": "bids_dir",
        "name": "BIDS directory",
        "type": "File",
        "description": "Root folder of the BIDS dataset (read only). With --fs-subjects-dir or "
        "--fs-stats-tables it may hold only participants.tsv.",
        "value-key": "[BIDS_DIR]",
        "optional": False,
    },
    {
        "id": "output_dir_name",
        "name": "Output directory name",
        "type": "String",
        "description": "Derivatives folder to write (created; must be outside the BIDS "
        "directory). For the group level, the folder the participant level wrote.",
        "value-key": "[OUTPUT_DIR]",
        "optional": True,
    },
    {
        "id": "participant_level_analysis_dir",
        "name": "Participant-level output directory",
        "type": "File",
        "description": "For the group level: the derivatives folder the participant level wrote.",
        "value-key": "[OUTPUT_DIR]",
        "optional": True,
    },
    {
        "id": "analysis_level",
        "name": "Analysis level",
        "type": "String",
        "description": "participant: FreeSurfer and morphometric similarity per participant "
        "(participants can run in parallel); group: statistics over all participants.",
        "value-key": "[ANALYSIS_LEVEL]",
        "value-choices": ["participant", "group"],
        "optional": False,
    },
]
POSITIONAL_DESTS = {"bids_dir", "output_dir", "analysis_level"}
# Value keys the BIDS-App template fixes, in this order, right after the positionals.
LEADING_KEYS = ["[PARTICIPANT_LABEL]", "[SESSION_LABEL]"]


def _type_of(action: argparse.Action) -> tuple[str, dict]:
    """Boutiques type and extra properties of one argparse action."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._CountAction)):
        return "Flag", {}
    kind = action.type
    name = getattr(kind, "__name__", "")
    default = action.default
    # ranges are the settings' (bids_ms.config), not argparse's: the types parse syntax only
    rule = _option_rules().get(action.dest, {})
    if kind is int or name == "whole_number":
        extra = {"integer": True}
        if rule.get("minimum") is not None:
            extra["minimum"] = rule["minimum"]
        if rule.get("below") is not None:
            extra["maximum"] = rule["below"]
            extra["exclusive-maximum"] = True
        return "Number", extra
    if kind is float or name in {"number", "memory_gb"}:
        extra = {"integer": False}
        if rule.get("positive"):
            extra.update({"minimum": 0, "exclusive-minimum": True})
        return "Number", extra
    if kind is Path or "path" in name.lower() or "file" in name.lower():
        return ("String" if action.dest in CREATED_PATHS else "File"), {}
    if isinstance(default, bool):
        return "Flag", {}
    if isinstance(default, int) and kind is None and not action.choices:
        return "Number", {"integer": True}
    return "String", {}


def _option_rules() -> dict[str, dict]:
    """Range and choices of every option, from the settings' field metadata, by dest."""
    from bids_ms.config import option_fields

    return {name: dict(item.metadata) for name, item in option_fields().items()}


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    text = formatter._expand_help(action) if action.help else ""
    return " ".join(text.split())


def inputs_from_parser(parser: argparse.ArgumentParser) -> list[dict]:
    """One Boutiques input per optional argument of ``parser``."""
    inputs = []
    for action in parser._actions:
        if isinstance(action, SKIP_ACTIONS) or action.dest in POSITIONAL_DESTS:
            continue
        if not action.option_strings:
            raise ValueError(f"unexpected positional argument {action.dest!r}")
        btype, extra = _type_of(action)
        flag = next(
            (o for o in action.option_strings if o.startswith("--")), action.option_strings[0]
        )
        entry = {
            "id": action.dest,
            "name": action.dest.replace("_", " ").capitalize(),
            "type": btype,
            "description": _help(parser, action),
            "value-key": f"[{action.dest.upper()}]",
            "command-line-flag": flag,
            "optional": not action.required,
        }
        entry.update(extra)
        if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1):
            entry["list"] = True
            if action.nargs == "+":
                entry["min-list-entries"] = 1
        elif isinstance(action, argparse._AppendAction):
            # repeatable option: Boutiques passes a list after one flag; bids-ms reads the
            # repeated form (--flag A --flag B), so only one value can be given here.
            entry["description"] += " (through Boutiques: one value)"
        choices = action.choices or _option_rules().get(action.dest, {}).get("choices")
        if choices:
            entry["value-choices"] = list(choices)
        if btype == "Flag":
            entry.pop("optional")
            entry["optional"] = True
        inputs.append(entry)
    return inputs


def exclusive_groups(parser: argparse.ArgumentParser) -> list[dict]:
    """Boutiques groups for the options that exclude each other (``config.EXCLUSIVE_OPTIONS``)."""
    from bids_ms.config import EXCLUSIVE_OPTIONS

    actions = {a.dest: a for a in parser._actions}
    groups = []
    for members in (list(pair) for pair in EXCLUSIVE_OPTIONS):
        flags = " and ".join(
            next(o for o in actions[m].option_strings if o.startswith("--")) for m in members
        )
        groups.append(
            {
                "id": "exclusive_" + "_".join(members),
                "name": " or ".join(m.replace("_", " ") for m in members).capitalize(),
                "description": f"{flags} exclude each other.",
                "members": members,
                "mutually-exclusive": True,
                "one-is-required": False,
            }
        )
    return groups


def build_descriptor(parser: argparse.ArgumentParser, version: str) -> dict:
    """The whole descriptor for ``parser`` (bids-ms ``version``)."""
    options = inputs_from_parser(parser)
    keys = [i["value-key"] for i in options]
    ordered = [k for k in LEADING_KEYS if k in keys] + [k for k in keys if k not in LEADING_KEYS]
    command = "mkdir -p [OUTPUT_DIR]; bids-ms [BIDS_DIR] [OUTPUT_DIR] [ANALYSIS_LEVEL] " + " ".join(
        ordered
    )
    return {
        "name": "bids-ms",
        "tool-version": version,
        "description": (
            "BIDS-App: FreeSurfer recon-all through nipype (or existing FreeSurfer outputs), "
            "morphometric-similarity networks of the 68 Desikan-Killiany regions per participant, "
            "then group statistics and imaging transcriptomics (Martins et al. 2022, PAIN "
            "163:e759, doi:10.1097/j.pain.0000000000002480). Needs a FreeSurfer licence only "
            "when recon-all runs."
        ),
        "author": "bids-ms developers",
        "url": "https://github.com/bids-ms/bids-ms",
        "descriptor-url": "https://github.com/bids-ms/bids-ms/blob/main/boutiques/descriptor.json",
        "command-line": command,
        "container-image": {"type": "docker", "image": f"{IMAGE}:{version}"},
        "schema-version": "0.5",
        "inputs": BIDS_APP_POSITIONALS + options,
        "output-files": [
            {
                "id": "output_dir",
                "name": "Output directory",
                "description": "BIDS derivatives: dataset_description.json, per participant "
                "sub-<label>/anat/*_atlas-DK_morph.tsv, *_atlas-DK_meas-MorphometricSimilarity_relmat.tsv and "
                "*_desc-MS_regional.tsv (+ JSON), and the group level under group/.",
                "path-template": "[OUTPUT_DIR]",
                "optional": False,
            }
        ],
        "groups": [
            {
                "id": "output_directory",
                "name": "Output directory",
                "description": "A new folder name for the participant level, or the folder "
                "the participant level wrote for the group level.",
                "members": ["output_dir_name", "participant_level_analysis_dir"],
                "mutually-exclusive": True,
                "one-is-required": True,
            },
            *exclusive_groups(parser),
        ],
        "error-codes": [
            {"code": 1, "description": "Some participant failed; the others finished (listed)."},
            {"code": 64, "description": "Usage or input error (the message names the problem)."},
            {
                "code": 70,
                "description": "Internal error; the traceback is in output_dir/logs/crash-*.txt.",
            },
            {
                "code": 73,
                "description": "Outputs cannot be written (read-only, disk full, permission).",
            },
            {"code": 126, "description": "recon-all needed but no FreeSurfer licence found."},
            {"code": 127, "description": "recon-all needed but FreeSurfer is not installed."},
        ],
        "suggested-resources": {"cpu-cores": 8, "ram": 16, "walltime-estimate": 86400},
        "tags": {
            "domain": ["neuroinformatics", "mri", "structural", "bids-app"],
            "toolbox": ["freesurfer", "nipype"],
        },
        "custom": {
            "bids-ms:freesurfer-license": "Give --fs-license-file or set FS_LICENSE; the image "
            "holds no licence."
        },
    }


def descriptor_text(parser: argparse.ArgumentParser | None = None) -> str:
    """The descriptor as written to ``descriptor.json`` (stable key order, trailing newline)."""
    from bids_ms import __version__

    if parser is None:
        from bids_ms.cli.parser import get_parser

        parser = get_parser()
    return json.dumps(build_descriptor(parser, __version__), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--check", action="store_true", help="only report whether it is up to date")
    args = cli.parse_args(argv)
    text = descriptor_text()
    if args.check:
        if DESCRIPTOR.exists() and DESCRIPTOR.read_text() == text:
            return 0
        print(f"{DESCRIPTOR} is out of date: run python {Path(__file__).name}", file=sys.stderr)
        return 1
    DESCRIPTOR.write_text(text)
    print(f"wrote {DESCRIPTOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
