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
        # {id: value} of the tensors the backward walk now running knows to hold one value
        # everywhere, or None (gputape.autodiff.unitseed).
        self.units = None


recording = _Recording()


# A tape entry is one recorded op application, kept as a plain tuple (a tape makes one per op,
# and a tuple is the cheapest object to make and to unpack):
#
#     (prim, inputs, params, output, where)
#
# ``inputs`` is a tuple of Tensors, ``params`` the op's static keyword parameters, ``output`` the
# result Tensor and ``where`` the user's source line while check_numerics is on (else None).
PRIM, INPUTS, PARAMS, OUTPUT, WHERE = range(5)


def note_escape(tensor, how: str) -> None:
    """Remember, on every recording tape that follows ``tensor``, that its value left gputape
    (``.numpy()``, ``float()``, ...): what is computed from that value is a constant to the
    tape, and ``gradient(..., explain=True)`` says so."""
    uid = tensor._uid
    for tape in recording.tapes:
        if uid in tape._watched or uid in tape._shadow:
            tape._escapes.setdefault(uid, how)
