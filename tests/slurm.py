"""A real one-node SLURM cluster for the tests: munged, slurmctld and slurmd of Debian's
``munge``, ``slurmctld``, ``slurmd`` and ``slurm-client`` packages (``.ci/run`` installs them).

Everything the daemons write (key, sockets, state, spool, logs, pid files) lives in a fresh
temporary folder and the ports are chosen free, so the cluster touches nothing of the host's
own configuration and two test sessions do not meet. The daemons are stopped by the pids in
their pid files when the session ends, also when a test failed. Where the packages are not
installed the tests that need the cluster are skipped with the reason printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

__all__ = ["OneNodeCluster", "slurm_cluster"]

_DAEMONS = {
    "munged": "/usr/sbin/munged",
    "slurmctld": "/usr/sbin/slurmctld",
    "slurmd": "/usr/sbin/slurmd",
}
_CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "scontrol")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _which(name: str) -> str | None:
    return shutil.which(name) or (
        _DAEMONS.get(name) if Path(_DAEMONS.get(name, "/-")).is_file() else None
    )


def missing_programs() -> list[str]:
    """The programs of the one-node cluster that are not installed."""
    return [name for name in (*_DAEMONS, *_CLIENTS) if _which(name) is None]


class OneNodeCluster:
    """munged + slurmctld + slurmd on this host, configured in ``root``.

    Parameters
    ----------
    root : Path
        An empty folder for the key, configuration, state, spool, logs and pid files.
    cpus : int
        CPUs of the node (``CPUs=`` in slurm.conf).
    """

    def __init__(self, root: Path, *, cpus: int = 2):
        self.root = Path(root)
        self.cpus = cpus
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge.socket"
        self.pid_files = {
            "munged": self.root / "munged.pid",
            "slurmctld": self.root / "slurmctld.pid",
            "slurmd": self.root / "slurmd.pid",
        }

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, a submit script) needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.conf.write_text(
            "\n".join(
                [
                    f"ClusterName=bidsms{os.getpid()}",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.pid_files['slurmctld']}",
                    f"SlurmdPidFile={self.pid_files['slurmd']}",
                    f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=sched_interval=1",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={self.root / 'log' / 'jobcomp.txt'}",
                    "MinJobAge=600",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=30",
                    "InactiveLimit=0",
                    "KillWait=5",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    "RealMemory=20000 State=UNKNOWN",
                    f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _wait_for(self, what: str, check, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if check():
                return
            time.sleep(0.3)
        raise RuntimeError(
            f"{what} did not come up in {timeout:.0f} s; logs in {self.root / 'log'}"
        )

    def _client(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            check=check,
            timeout=60,
        )

    def start(self) -> None:
        """Start munged, slurmctld and slurmd; return when the node takes jobs."""
        self._write_config()
        subprocess.run(
            [
                _which("munged"),
                "--force",
                f"--key-file={self.root / 'munge.key'}",
                f"--socket={self.munge_socket}",
                f"--pid-file={self.pid_files['munged']}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={self.root / 'munged.seed'}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self._wait_for("munged", self.munge_socket.exists)
        env = {**os.environ, **self.env}
        subprocess.run([_which("slurmctld"), "-f", str(self.conf)], check=True, env=env, timeout=30)
        self._wait_for("slurmctld", lambda: self._client("scontrol", "ping").returncode == 0)
        subprocess.run(
            [_which("slurmd"), "-f", str(self.conf), "-N", self.node],
            check=True,
            env=env,
            timeout=30,
        )

        def idle() -> bool:
            out = self._client("sinfo", "-h", "-N", "-o", "%t").stdout.strip()
            return out in ("idle", "mix", "alloc")

        self._wait_for("slurmd", idle, timeout=60)

    def stop(self) -> None:
        """Cancel what is still queued or running, then stop the daemons by the pids in their
        pid files (slurmd first)."""
        if self.pid_files["slurmctld"].is_file():
            queued = self._client("squeue", "-h", "-o", "%A").stdout.split()
            if queued:
                self._client("scancel", *sorted(set(queued)))
                end = time.monotonic() + 20
                while time.monotonic() < end and self._client("squeue", "-h").stdout.strip():
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.pid_files[name]
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def queue(self) -> list[str]:
        """Ids of the jobs queued or running now."""
        return self._client("squeue", "-h", "-o", "%i").stdout.split()

    def wait(self, *job_ids: str, timeout: float = 300) -> dict[str, dict[str, str]]:
        """Wait until the jobs left the queue; return :meth:`jobs`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            out = self._client("squeue", "-h", "-o", "%i", "-j", ",".join(job_ids))
            if out.returncode == 0 and not out.stdout.strip():
                break
            time.sleep(1)
        else:
            raise TimeoutError(f"SLURM jobs {job_ids} still queued after {timeout:.0f} s")
        return self.jobs()

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every finished job's record (JobState, StartTime, EndTime, ExitCode, ...) from the
        job-completion log, keyed ``"<array job>_<task>"`` for array tasks, else ``"<job>"``."""
        jobs: dict[str, dict[str, str]] = {}
        comp = self.root / "log" / "jobcomp.txt"
        if not comp.is_file():
            return jobs
        for line in comp.read_text().splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            key = fields.get("JobId", "")
            if fields.get("ArrayJobId") and fields.get("ArrayTaskId"):
                key = f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"
            jobs[key] = fields
        return jobs


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node SLURM cluster for the whole session (skipped where not installed)."""
    # .ci/run sets BIDS_MS_REQUIRE_SLURM=1 once it has installed SLURM: then these tests run.
    skip = pytest.fail if os.environ.get("BIDS_MS_REQUIRE_SLURM") else pytest.skip
    missing = missing_programs()
    if missing:
        skip(
            f"SLURM one-node cluster not available: {', '.join(missing)} not installed "
            "(apt-get install slurmctld slurmd slurm-client munge, as .ci/run does)"
        )
    if os.geteuid() != 0:
        skip("the one-node SLURM cluster's slurmd must run as root")
    root = Path(tempfile.mkdtemp(prefix="bids-ms-slurm-"))
    cluster = OneNodeCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
