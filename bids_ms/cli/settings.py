"""Options ↔ the settings of each level: the one place the command line meets them.

:func:`add_option` declares an option from its settings field: the flag (dash and underscore
spellings), ``dest`` and default all come from :mod:`bids_ms.config`, and a field with choices
shows them as argparse would (the settings check them).

An option whose ``dest`` is the name of a settings field fills that field as parsed (abagen's
``cli/run.py`` passes its namespace to the workflow the same way); a level's function names
only the fields that differ from an option (resolved paths, renamed or derived values).
Defaults and checks are the settings' own (:mod:`bids_ms.config`): building the settings
checks every option, before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ..config import (
    GroupSettings,
    ParticipantSettings,
    TranscriptomicsSettings,
    choices_of,
    default_of,
    field_of,
)
from .types import both_spellings, choice_metavar

__all__ = [
    "add_option",
    "from_args",
    "participant_settings_from_args",
    "group_settings_from_args",
    "transcriptomics_settings_from_args",
]


def add_option(
    group: argparse._ActionsContainer,
    settings_class: type,
    name: str,
    *aliases: str,
    **kwargs: Any,
) -> argparse.Action:
    """Add the option of field ``name`` of ``settings_class`` to ``group``.

    The flag (both spellings, then ``aliases``) is the field's, ``dest`` its name, the default
    its default (``--help`` shows it with ``%(default)s``); ``kwargs`` go to
    :meth:`argparse.ArgumentParser.add_argument` (``help``, ``type``, ``metavar`` ...).
    """
    meta = field_of(settings_class, name).metadata
    kwargs.setdefault("default", default_of(settings_class, name))
    if "metavar" not in kwargs and meta["choices"] is not None:
        kwargs["metavar"] = choice_metavar(choices_of(settings_class, name))
    return group.add_argument(*both_spellings(meta["flag"]), *aliases, dest=name, **kwargs)


def from_args(settings_class: type, args: argparse.Namespace, **given: Any) -> Any:
    """``settings_class`` from ``args``: each field from the option of its name, or ``given``.

    Raises
    ------
    bids_ms.errors.UsageError
        An option out of range (the settings' check, naming the flag).
    """
    values = {
        item.name: getattr(args, item.name)
        for item in dataclasses.fields(settings_class)
        if item.init and item.name not in given and hasattr(args, item.name)
    }
    return settings_class(**values, **given)


def participant_settings_from_args(
    args: argparse.Namespace,
    *,
    bids_dir: Path,
    output_dir: Path,
    work_dir: Path,
    features: tuple[str, ...],
    bids_filters: dict | None = None,
) -> ParticipantSettings:
    """Participant-level settings (paths as checked by the caller; filters as read)."""
    return from_args(
        ParticipantSettings,
        args,
        bids_dir=bids_dir,
        output_dir=output_dir,
        work_dir=Path(work_dir).resolve(),
        participant_labels=args.participant_label,
        session_labels=args.session_label,
        features=features,
        fs_subjects_dir=args.fs_subjects_dir.resolve() if args.fs_subjects_dir else None,
        fs_stats_tables=args.fs_stats_tables.resolve() if args.fs_stats_tables else None,
        bids_filters=bids_filters,
    )


def group_settings_from_args(args: argparse.Namespace, **given: Any) -> GroupSettings:
    """Group-level settings (``bids_dir``/``output_dir`` as given, else as parsed).

    The transcriptomic stage's settings are built too, unless ``given`` has them.
    """
    given.setdefault("output_dir", Path(args.output_dir))
    if "bids_dir" not in given:
        given["bids_dir"] = Path(args.bids_dir) if getattr(args, "bids_dir", None) else None
    given.setdefault("covariates", tuple(args.covariates or ()))
    given.setdefault("reference_maps", list(args.reference_maps or []))
    given.setdefault("combine", list(args.combine or []))
    if "transcriptomics" not in given and hasattr(args, "skip_transcriptomics"):
        given["transcriptomics"] = transcriptomics_settings_from_args(args)
    return from_args(GroupSettings, args, **given)


def transcriptomics_settings_from_args(args: argparse.Namespace) -> TranscriptomicsSettings | None:
    """Transcriptomic settings; ``None`` with ``--skip-transcriptomics``.

    The run's ``--n-spins`` and ``--seed`` are the group level's (:class:`GroupSettings`).
    """
    if getattr(args, "skip_transcriptomics", False):
        return None
    gene_sets = list(args.gene_sets) if args.gene_sets is not None else None
    return from_args(TranscriptomicsSettings, args, gene_sets=gene_sets)
