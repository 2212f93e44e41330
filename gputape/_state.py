"""Per-thread recording state shared by dispatch (which records) and tapes (which collect)."""

from __future__ import annotations

import threading


class _Recording(threading.local):
    def __init__(self) -> None:
        # GradientTapes currently recording in this thread, outermost first.
        self.tapes: list = []
        # The entry whose gradient rule is running, while check_numerics is on.
        self.backward_of = None
        # True while a backward walk that no tape records runs rules on host arrays: ops
        # given arrays then return arrays (dispatch.apply_to_arrays).
        self.arrays = False


recording = _Recording()


class TapeEntry:
    """One recorded op application: what its gradient rules need, and nothing else."""

    # ``where`` (the user's source line) is only set while check_numerics is on.
    __slots__ = ("prim", "inputs", "params", "output", "where")

    def __init__(self, prim, inputs: tuple, params: dict, output) -> None:
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.output = output


def note_escape(tensor, how: str) -> None:
    """Remember, on every recording tape that follows ``tensor``, that its value left gputape
    (``.numpy()``, ``float()``, ...): what is computed from that value is a constant to the
    tape, and ``gradient(..., explain=True)`` says so."""
    uid = tensor._uid
    for tape in recording.tapes:
        if uid in tape._watched or uid in tape._shadow:
            tape._escapes.setdefault(uid, how)
