"""The documentation site builds with no warning, and a broken API reference fails the build.

It needs Sphinx and its extensions (the ``docs`` extra, which ``make test`` installs); where
they are missing the tests skip, saying so, unless ``GPUTAPE_REQUIRE_DOCS=1`` (as ``make test``
sets), where a missing Sphinx fails.
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

if os.environ.get("GPUTAPE_REQUIRE_DOCS") != "1":
    for module in ("sphinx", "myst_parser", "pydata_sphinx_theme"):
        pytest.importorskip(module, reason=f"{module} is not installed (the docs extra)")


def _build(source: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(source), str(out)],
        capture_output=True, text=True, timeout=600)


def test_the_site_builds_without_warnings(tmp_path):
    result = _build(REPO / "docs", tmp_path / "html")
    assert result.returncode == 0, result.stdout + result.stderr
    ops = (tmp_path / "html" / "api" / "ops.html").read_text()
    # every op of gt.* is on its page, under its public name, with its docstring's example
    from gputape import ops as library

    missing = [name for name in library.__all__ if f'id="gputape.{name}"' not in ops]
    assert not missing, f"ops without an entry in the API reference: {missing}"
    assert "float(gt.sin(0.0))" in re.sub(r"<[^>]+>", "", ops)  # (highlighted in spans)
    tour = (tmp_path / "html" / "tour.html").read_text()
    assert "Higher order" in tour  # the README's tour, taken from the README
    assert any((tmp_path / "html" / "_images").glob("*.png")), "the benchmark plot is missing"


def test_a_broken_reference_fails_the_build(tmp_path):
    source = tmp_path / "docs"
    shutil.copytree(REPO / "docs", source, ignore=shutil.ignore_patterns("_build"))
    shutil.copy(REPO / "README.md", tmp_path / "README.md")  # the pages include ../README.md
    shutil.copytree(REPO / "bench" / "results", tmp_path / "bench" / "results")
    with open(source / "api" / "ops.rst", "a") as page:
        page.write("\n.. autofunction:: gputape.no_such_op\n")
    result = _build(source, tmp_path / "html")
    assert result.returncode != 0
    assert "no_such_op" in result.stdout + result.stderr
