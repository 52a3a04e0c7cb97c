"""Worker processes end with a killed run (``io.safety.die_with_parent``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ..conftest import ROOT
from ..helpers import process_running

# A run that starts a forked worker pool, as the participant level's writers and pages do,
# prints its workers' pids and waits; the test then kills it with SIGKILL.
RUN = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from bids_ms.io.safety import die_with_parent

    init = die_with_parent if sys.argv[1] == "yes" else None
    with ProcessPoolExecutor(
        2,
        mp_context=multiprocessing.get_context("fork"),
        initializer=init,
        initargs=(os.getpid(),) if init else (),
    ) as pool:
        futures = [pool.submit(time.sleep, 60) for _ in range(2)]
        time.sleep(1.0)
        print(" ".join(str(p) for p in pool._processes), flush=True)
        time.sleep(60)
    """
)


def _workers_after_kill(die: bool) -> list[int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, "yes" if die else "no"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert len(workers) == 2 and all(process_running(p) for p in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + (5 if die else 1.5)  # the control case waits less
    while time.monotonic() < deadline and any(process_running(p) for p in workers):
        time.sleep(0.05)
    left = [p for p in workers if process_running(p)]
    for pid in left:  # the control case: do not leave them behind
        os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's"
)
def test_workers_die_with_a_killed_run():
    assert _workers_after_kill(die=True) == []
    # without it, the forked workers outlive the run (what the participant level's kill tests
    # found before): the check above can fail
    assert len(_workers_after_kill(die=False)) == 2


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's"
)
def test_a_worker_whose_parent_is_gone_exits_and_pid_1_is_a_parent_like_any_other():
    """The parent is the pid the run passed, whatever it is (the run is pid 1 in a container)."""
    code = "import os, sys; from bids_ms.io.safety import die_with_parent; "
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    alive = subprocess.run(
        [sys.executable, "-c", code + "die_with_parent(os.getppid()); print('working')"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert alive.returncode == 0 and alive.stdout == "working\n"
    gone = subprocess.run(
        [sys.executable, "-c", code + "die_with_parent(os.getppid() + 1); print('working')"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert gone.returncode == 1 and gone.stdout == ""
