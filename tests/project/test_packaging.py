"""The wheel and the sdist carry the CUDA sources, and an installed wheel's loader finds them.

The builds run offline with the venv's own hatchling (``--no-build-isolation``), so the test
skips, with the reason, only where hatchling is not installed (it is in the ``test`` extra).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("hatchling", reason="hatchling (the build backend) is not installed")

REPO = Path(__file__).resolve().parents[2]
KERNEL_FILES = sorted(
    path.name for pattern in ("*.cu", "*.cuh") for path in (REPO / "kernels").glob(pattern)
)


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


def _pip(*args) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])


def _build_wheel(project: Path, out: Path) -> Path:
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, project)
    (wheel,) = out.glob("gputape-*.whl")
    return wheel


def _wheel_kernels(wheel: Path) -> list:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    return sorted(
        name.removeprefix("gputape/_kernels/")
        for name in names
        if name.startswith("gputape/_kernels/")
    )


@pytest.fixture(scope="module")
def repo_wheel(tmp_path_factory) -> Path:
    return _build_wheel(REPO, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    build = "import sys\nfrom hatchling.build import build_sdist\nprint(build_sdist(sys.argv[1]))"
    name = _run([sys.executable, "-c", build, str(out)], cwd=REPO).stdout.split()[-1]
    return out / name


def test_kernel_sources_found():
    assert any(name.endswith(".cu") for name in KERNEL_FILES), f"no *.cu in {REPO / 'kernels'}"
    assert any(name.endswith(".cuh") for name in KERNEL_FILES), f"no *.cuh in {REPO / 'kernels'}"


def test_wheel_carries_kernels(repo_wheel):
    assert _wheel_kernels(repo_wheel) == KERNEL_FILES


def test_sdist_carries_kernels_and_builds_a_wheel_with_them(sdist, tmp_path):
    # pip install gputape-X.tar.gz builds the wheel from the sdist, so the sdist needs kernels/.
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "src", **safe)
    (project,) = (tmp_path / "src").iterdir()
    assert sorted(path.name for path in (project / "kernels").iterdir()) == KERNEL_FILES
    assert _wheel_kernels(_build_wheel(project, tmp_path / "wheel")) == KERNEL_FILES


PROBE = """\
import json
import re
import gputape as gt
from gputape.cuda import loader
x = gt.constant([1.0, 2.0, 3.0], device="cpu")
with gt.GradientTape() as tape:
    tape.watch(x)
    y = gt.reduce_sum(x ** 3)
print(json.dumps({
    "package": gt.__file__,
    "version": gt.__version__,
    "gradient": tape.gradient(y, x).numpy().tolist(),
    "kernel_dir": str(loader.kernel_dir()),
    "sum": loader.source("sum.cu"),
}))
"""


def test_installed_wheel_loader_finds_its_kernels(repo_wheel, tmp_path):
    target = tmp_path / "site"
    _pip("install", "--quiet", "--no-deps", "--no-index", "--target", target, repo_wheel)
    # Only the installed copy is importable: the repo is neither the cwd nor on PYTHONPATH.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(target)
    probe = json.loads(_run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env).stdout)
    assert Path(probe["package"]).is_relative_to(target)
    assert probe["gradient"] == [3.0, 12.0, 27.0]
    assert probe["version"] == _metadata(repo_wheel)["Version"][0]
    assert Path(probe["kernel_dir"]) == target / "gputape" / "_kernels"
    assert "GT_DEFINE_ALL_DTYPES(sum" in probe["sum"]
    assert '#include "' not in probe["sum"]


def _metadata(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    fields: dict = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    return fields


def test_wheel_holds_the_package_and_nothing_else(repo_wheel):
    with zipfile.ZipFile(repo_wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names}
    assert "gputape" in top and all(t == "gputape" or t.endswith(".dist-info") for t in top)
    assert "gputape/py.typed" in names
    stray = [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so", ".o"))
             or n.startswith(("tests/", "bench/", "docker/", ".github/"))]
    assert stray == []
    assert "gputape/__init__.py" in names and "gputape/ops/__init__.py" in names


def test_wheel_metadata(repo_wheel):
    meta = _metadata(repo_wheel)
    assert meta["Requires-Python"] == [">=3.10"]
    assert meta["Requires-Dist"][0].startswith("numpy")
    extras = set(meta["Provides-Extra"])
    assert {"cuda12", "cuda13", "test", "bench", "dist", "dist-cuda12", "dist-cuda13",
            "gpu-check"} <= extras
    assert meta.get("License-Expression") == ["MIT"] or meta.get("License") == ["MIT"]
    assert any(c.startswith("Programming Language :: Python :: 3.13") for c in meta["Classifier"])
    assert meta.get("Project-URL")


def _extra_requirements(meta: dict) -> dict:
    """``{extra: [requirement without its marker]}`` from a wheel's Requires-Dist lines."""
    found: dict = {}
    for line in meta["Requires-Dist"]:
        requirement, _, marker = line.partition(";")
        if "extra ==" in marker:
            extra = marker.split("extra ==")[1].strip().strip("'\"")
            found.setdefault(extra, []).append(requirement.strip().replace(" ", ""))
    return found


def test_gpu_extras_bring_what_cupy_loads_at_run_time(repo_wheel):
    """A machine with only the NVIDIA driver: CuPy needs NVRTC and the CUDA headers for every
    kernel (its own included), cuBLAS and the rest for its routines (CuPy 14's ``ctk`` extra),
    and NCCL's wheel, which CuPy 14 no longer bundles, for the NCCL backend."""
    extras = _extra_requirements(_metadata(repo_wheel))
    for major in ("12", "13"):
        (cupy,) = extras[f"cuda{major}"]
        assert cupy.startswith(f"cupy-cuda{major}x[ctk]"), cupy
        assert ">=14" in cupy, f"{cupy}: CuPy 13 has no ctk extra"
        dist = extras[f"dist-cuda{major}"]  # the build backend expands gputape[cudaN,dist]
        assert cupy in dist and any(r.startswith("mpi4py") for r in dist), dist
        assert any(r.startswith(f"nvidia-nccl-cu{major}") and ">=2" in r for r in dist), dist
    check = extras["gpu-check"]
    assert "cupy-cuda13x==14.2.0" in check, check  # pinned: reproducible warnings, registers
    (toolkit,) = [r for r in check if r.startswith("cuda-toolkit")]
    assert "nvrtc" in toolkit and "cudart" in toolkit and "==13." in toolkit, toolkit


def test_make_test_installs_and_requires_the_nvrtc_check():
    makefile = (REPO / "Makefile").read_text()
    install = next(line for line in makefile.splitlines() if "pip install" in line
                   and "-e '.[" in line)
    assert "gpu-check" in install, install
    test_rule = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "GPUTAPE_REQUIRE_NVRTC=1" in test_rule and "pytest" in test_rule, test_rule


def test_the_benchmark_runner_ships_and_runs_outside_the_checkout(repo_wheel, tmp_path):
    """``pip install 'gputape[bench]'`` then ``gputape-bench``: the runner is in the wheel, with
    its console script, and runs from an installed copy (not the checkout's ``bench/``)."""
    with zipfile.ZipFile(repo_wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    for module in ("__main__", "timing", "workloads", "report", "peers", "memory"):
        assert f"gputape/bench/{module}.py" in names, module
    assert "gputape-bench = gputape.bench.__main__:main" in scripts, scripts
    target = tmp_path / "site"
    _pip("install", "--quiet", "--no-deps", "--no-index", "--target", target, repo_wheel)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(target)
    out = _run([sys.executable, "-m", "gputape.bench", "--workloads", "sum_xy", "--sizes",
                "1e3", "--devices", "cpu", "--repeat", "1", "--json", "r.json"],
               cwd=tmp_path, env=env)
    assert "sum_xy" in out.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["workload"] for r in report["results"]] == ["sum_xy"]


def test_the_layer_contracts_are_kept():
    """.importlinter's contracts (layers, no cycles) hold, as ``make test`` checks too; the
    test proves the contract file itself is read and able to fail."""
    import shutil

    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (the test extra brings it)")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([lint, "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_make_bench_installs_only_what_the_runner_needs():
    """``make bench`` on a fresh machine installs the bench extra (plus CuPy for the driver's
    CUDA where an NVIDIA driver answers), not the test, dist or gpu-check tools."""
    makefile = (REPO / "Makefile").read_text()
    bench_rule = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "$(BENCH_STAMP)" in bench_rule.splitlines()[0], bench_rule
    stamp_rule = makefile.split("\n$(BENCH_STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [line for line in stamp_rule.splitlines() if "pip install" in line and "-e" in line]
    extras = {extra for line in installs for extra in
              re.findall(r"-e ['\"]\.\[([^\]]*)\]", line)}
    assert extras == {"bench", "bench,cuda$$major"}, installs
    assert "nvidia-smi" in stamp_rule
