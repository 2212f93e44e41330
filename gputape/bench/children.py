"""The environment of the runner's child processes (memory probes, peers, distributed runs)."""

from __future__ import annotations

import os

__all__ = ["child_env"]


def child_env() -> "tuple[str, dict]":
    """The folder holding this ``gputape`` package and an environment whose Python imports
    ``gputape`` from it (a checkout, or site-packages): for the runner's child processes."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return root, dict(os.environ, PYTHONPATH=path)
