"""Per-thread recording state shared by dispatch (which records) and tapes (which collect)."""

from __future__ import annotations

import threading


class _Recording(threading.local):
    def __init__(self) -> None:
        # GradientTapes currently recording in this thread, outermost first.
        self.tapes: list = []


recording = _Recording()


class TapeEntry:
    """One recorded op application: what its gradient rules need, and nothing else."""

    __slots__ = ("prim", "inputs", "params", "output")

    def __init__(self, prim, inputs: tuple, params: dict, output) -> None:
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.output = output
