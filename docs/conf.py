"""Sphinx configuration of gputape's documentation: ``make docs`` builds it into docs/_build.

The pages are Markdown (MyST) that take their text from the README, so that the two never
drift apart; the API reference is generated from the docstrings (autodoc, NumPy style read by
napoleon).
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gputape  # noqa: E402 - after the checkout is on the path

project = "gputape"
author = "the gputape developers"
copyright = "2026, the gputape developers"  # noqa: A001 - the name Sphinx reads
release = version = gputape.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# The README's sections start at level 2 or 3 under a page title of level 1.
suppress_warnings = ["myst.header"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

html_theme = "pydata_sphinx_theme"
html_title = f"gputape {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}


# -- ".. gputape-names:: MODULE [PUBLIC]": every name of MODULE.__all__ that the public
# namespace PUBLIC (``gputape`` unless given) exports, documented under it (gt.sin, not
# gputape.ops.elementwise.sin), so that a new op needs no edit here.

def _expanded(line: str) -> str:
    import importlib
    import inspect

    words = line.split("::", 1)[1].split()
    module = importlib.import_module(words[0])
    public_name = words[1] if len(words) > 1 else "gputape"
    public = importlib.import_module("gputape")
    for part in public_name.split(".")[1:]:  # gt.debugging is an attribute, not a module
        public = getattr(public, part)
    out = []
    names = getattr(module, "__all__", None) or [n for n in vars(module) if n[0] != "_"]
    for name in names:
        obj = getattr(module, name)
        if getattr(public, name, None) is not obj:
            continue  # not part of the public surface
        if inspect.isclass(obj):
            kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        elif callable(obj):
            kind = "autofunction"
        else:
            continue  # constants are described in the module's prose
        out.append(f".. {kind}:: {public_name}.{name}\n")
    return "\n".join(out)


def _expand_names(app, docname, source):
    source[0] = "\n".join(_expanded(line) if line.startswith(".. gputape-names::") else line
                          for line in source[0].split("\n"))


def setup(app):
    app.connect("source-read", _expand_names)
