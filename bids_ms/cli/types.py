"""argparse types shared by every option group (a leaf module: no import of the parsers).

The types parse syntax only; ranges and choices are checked once, by the settings
(:mod:`bids_ms.config`), when :mod:`bids_ms.cli.settings` builds them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atlas import FEATURES

__all__ = [
    "both_spellings",
    "choice_metavar",
    "parse_features",
    "plugin_args",
    "whole_number",
    "number",
    "memory_gb",
]


def both_spellings(flag: str) -> list[str]:
    """``--fs-license-file`` → ``['--fs-license-file', '--fs_license_file']``."""
    alt = flag.replace("-", "_")
    alt = "--" + alt[2:] if alt.startswith("__") else alt
    return [flag] if alt == flag else [flag, alt]


def choice_metavar(choices: tuple[str, ...]) -> str:
    """``('spin', 'shuffle')`` → ``'{spin,shuffle}'``, as argparse shows ``choices``."""
    return "{" + ",".join(choices) + "}"


def parse_features(values: list[str]) -> tuple[str, ...]:
    """``['volume,area', 'thickness']`` → ``('volume', 'area', 'thickness')`` in canonical order."""
    chosen = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    unknown = [c for c in chosen if c not in FEATURES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown feature(s) {', '.join(unknown)}; choose from {', '.join(FEATURES)}"
        )
    if len(set(chosen)) < 2:
        raise argparse.ArgumentTypeError("MS needs at least two features (five by default)")
    return tuple(f for f in FEATURES if f in chosen)


def plugin_args(value: str) -> dict:
    path = Path(value)
    try:
        text = path.read_text() if path.is_file() else value
        data = json.loads(text)
    except (OSError, json.JSONDecodeError) as err:
        raise argparse.ArgumentTypeError(
            f"--nipype-plugin-args takes JSON or a JSON file, e.g. "
            f'\'{{"sbatch_args": "--mem=8G"}}\' ({err})'
        ) from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError("--nipype-plugin-args must be a JSON object")
    return data


def whole_number(value: str) -> int:
    """argparse type: a whole number (its range is the settings' check, :mod:`bids_ms.config`)."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


def number(value: str) -> float:
    """argparse type: a number (its range is the settings' check, :mod:`bids_ms.config`)."""
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


def memory_gb(value: str) -> float:
    """argparse type: memory in GB; ``16``, ``16G``, ``16GB``, ``16000M``, ``1T``."""
    text = value.strip().upper().removesuffix("B")
    scale = {"K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3}
    unit = text[-1:] if text[-1:] in scale else "G"
    return number(text[:-1] if text[-1:] in scale else text) * scale[unit]
