"""A stand-in for FreeSurfer's ``recon-all`` that lets the T1w route run end to end in the tests.

It does what a finished recon-all leaves behind, after the real recon-all accepted the command:

1. runs the real FreeSurfer 7.3.2 ``recon-all`` with the same arguments plus ``-dontrun`` (it
   plans every step without running any and needs no licence; ``FS_LICENSE`` is removed from its
   environment, so the real binaries never see the stand-in licence bids-ms was given), and fails
   as it fails (exit code 1): an unknown flag, ``-i`` on an existing subject (a resume must omit it), ...;
2. marks the subject as running (``scripts/IsRunning.lh+rh``), as recon-all does;
3. writes a real subject's FreeSurfer outputs: ``stats/`` copied from ``tests/data/fs_stats``,
   ``scripts/recon-all.log`` ending with recon-all's last line, ``scripts/recon-all.done``.

Environment (set by the tests):
``BIDS_MS_TEST_REAL_FREESURFER_HOME``: the real installation;
``BIDS_MS_TEST_RECON_SOURCES``: a JSON file ``{"<subject id>": "<folder with stats/>"}``;
``BIDS_MS_TEST_RECON_CALLS``: a file to which each call's subject and arguments are appended;
``BIDS_MS_TEST_RECON_HANG``: a folder; when it holds a file named after the subject, that file is
removed and this recon-all hangs after step 2 (to be killed: an interrupted run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _value(argv: list[str], *flags: str) -> str | None:
    for flag in flags:
        if flag in argv and argv.index(flag) + 1 < len(argv):
            return argv[argv.index(flag) + 1]
    return None


def main(argv: list[str]) -> int:
    real_home = Path(os.environ["BIDS_MS_TEST_REAL_FREESURFER_HOME"])
    env = dict(os.environ)
    env.pop("FS_LICENSE", None)
    env["FREESURFER_HOME"] = str(real_home)
    env["PATH"] = f"{real_home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    real = str(real_home / "bin" / "recon-all")
    if not any(a in argv for a in ("-s", "-subjid", "-sid")):  # --version, --help
        return subprocess.run([real, *argv], env=env).returncode

    subject = _value(argv, "-subjid", "-s", "-sid")
    subjects_dir = Path(_value(argv, "-sd") or os.environ["SUBJECTS_DIR"])
    calls = os.environ.get("BIDS_MS_TEST_RECON_CALLS")
    if calls:
        with open(calls, "a") as fobj:
            fobj.write(json.dumps({"subject": subject, "argv": argv}) + "\n")

    plan = subprocess.run([real, *argv, "-dontrun"], env=env, capture_output=True, text=True)
    sys.stdout.write(plan.stdout)
    sys.stderr.write(plan.stderr)
    subject_dir = subjects_dir / subject
    scripts = subject_dir / "scripts"
    if plan.returncode != 0 or "finished without error" not in plan.stdout:
        return plan.returncode or 1

    (scripts / "recon-all.done").unlink(missing_ok=True)  # -dontrun writes one; a run, at its end
    lock = scripts / "IsRunning.lh+rh"
    lock.write_text(f"SUBJECT {subject}\nPID {os.getpid()}\n")
    hang_dir = os.environ.get("BIDS_MS_TEST_RECON_HANG")
    if hang_dir and (Path(hang_dir) / subject).is_file():
        (Path(hang_dir) / subject).unlink()
        print(f"recon-all stand-in: {subject} hangs until killed", flush=True)
        while True:
            time.sleep(1)

    sources = json.loads(Path(os.environ["BIDS_MS_TEST_RECON_SOURCES"]).read_text())
    source = Path(sources[subject])
    shutil.copytree(source / "stats", subject_dir / "stats", dirs_exist_ok=True)
    with open(scripts / "recon-all.log", "a") as fobj:
        fobj.write(
            f"recon-all stand-in: FreeSurfer outputs of {source.name} copied into {subject_dir}\n"
            "#@#%# recon-all-run-time-hours 0.000\n"
            f"recon-all -s {subject} finished without error at {time.ctime()}\n"
        )
    (scripts / "recon-all.done").write_text(f"SUBJECT {subject}\nEND_TIME {time.ctime()}\n")
    lock.unlink()
    print(f"recon-all -s {subject} finished without error at {time.ctime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
