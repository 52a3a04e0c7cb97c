"""Settings of each level, and the one seed that every random draw of a run comes from.

A run has one ``--seed``. Each stage that draws random numbers takes its own numpy sub-stream of
that seed (:class:`numpy.random.SeedSequence` children, by fixed index), so that adding draws to
one stage never shifts another, and every value drawn from the seed repeats with the same
``--seed``:

========================  =====  ==========================================================
stream                    index  used for
========================  =====  ==========================================================
``spins``                 root   spin rotations (§2.14), computed once per run and shared
``pls``                   0      PLS permutations and bootstrap (§2.15)
``rank_enrichment``       1      the rank-based enrichment permutations (§2.16)
``label_permutations``    2      hub-susceptibility label permutations
``null_maps``             3      null maps for the gene-list sizes
========================  =====  ==========================================================

``spins`` is the root stream itself (``numpy.random.default_rng(seed)``), as before; ``pls`` and
``rank_enrichment`` are the two children the transcriptomic stage always used. The label
permutations moved from ``default_rng([seed, 1])`` to child 2: the one change of seed streams,
noted in the CHANGELOG.
"""

from __future__ import annotations

import logging

import numpy as np

LOGGER = logging.getLogger(__name__)

#: Child index of every seeded stage; ``None`` is the root stream (see the module docstring).
SEED_STREAMS: dict[str, int | None] = {
    "spins": None,
    "pls": 0,
    "rank_enrichment": 1,
    "label_permutations": 2,
    "null_maps": 3,
}

#: Seeds drawn when none is given are below this bound (the sidecars record them).
SEED_BOUND = 2**32


def resolve_seed(seed: int | None) -> int:
    """Return ``seed``, or draw one from the system's entropy (logged) when it is None."""
    if seed is not None:
        return int(seed)
    drawn = int(np.random.SeedSequence().entropy % SEED_BOUND)
    LOGGER.info("no --seed given: this run uses seed %d (written to the sidecars)", drawn)
    return drawn


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` of ``stream`` (a key of :data:`SEED_STREAMS`)."""
    index = SEED_STREAMS[stream]
    if index is None:
        return np.random.SeedSequence(int(seed))
    return np.random.SeedSequence(int(seed), spawn_key=(index,))


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """A fresh generator of ``stream`` for the run's ``seed``."""
    return np.random.default_rng(seed_sequence(seed, stream))


def stream_seed(seed: int, stream: str) -> int:
    """An integer seed of ``stream``, for functions that take an ``int`` seed.

    For the root stream this is ``seed`` itself; for a child it is the child's first 32-bit
    state word (what ``SeedSequence(seed).spawn(n)[i].generate_state(1)[0]`` gives).
    """
    if SEED_STREAMS[stream] is None:
        return int(seed)
    return int(seed_sequence(seed, stream).generate_state(1)[0])
