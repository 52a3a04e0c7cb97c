"""argparse types shared by every option group (a leaf module: no import of the parsers)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atlas import FEATURES

__all__ = [
    "both_spellings",
    "parse_features",
    "plugin_args",
    "non_negative_int",
    "positive_int",
    "positive_float",
    "memory_gb",
]


def both_spellings(flag: str) -> list[str]:
    """``--fs-license-file`` → ``['--fs-license-file', '--fs_license_file']``."""
    alt = flag.replace("-", "_")
    alt = "--" + alt[2:] if alt.startswith("__") else alt
    return [flag] if alt == flag else [flag, alt]


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


def non_negative_int(value: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


def positive_int(value: str) -> int:
    """argparse type: a whole number >= 1 (the message says so for negative numbers too)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def positive_float(value: str) -> float:
    """argparse type: a number > 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return number


def memory_gb(value: str) -> float:
    """argparse type: memory in GB; ``16``, ``16G``, ``16GB``, ``16000M``, ``1T``."""
    text = value.strip().upper().removesuffix("B")
    scale = {"K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3}
    unit = text[-1:] if text[-1:] in scale else "G"
    number = positive_float(text[:-1] if text[-1:] in scale else text)
    return number * scale[unit]
