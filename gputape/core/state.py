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
        # Lists collecting the trainable Variables read while a custom_gradient function runs
        # (its gradient function is then given them, as TF's variable watcher does).
        self.variable_watchers: list = []


recording = _Recording()


# A tape entry is one recorded op application, kept as a plain tuple (a tape makes one per op,
# and a tuple is the cheapest object to make and to unpack):
#
#     (prim, inputs, params, output, where, kept)
#
# ``inputs`` is a tuple of Tensors, ``params`` the op's static keyword parameters, ``output`` the
# result Tensor, ``where`` the user's source line while check_numerics is on (else None) and
# ``kept`` what the forward kept for the first-order rules (a :class:`Kept`, else None).
PRIM, INPUTS, PARAMS, OUTPUT, WHERE, KEPT = range(6)


class Kept:
    """What one recorded application of a primitive keeps from its forward for its rules: the
    one channel for such values (residuals).

    A primitive declared with ``keeps=True`` gets one as its forward's keyword ``kept`` while a
    tape records, and fills ``value`` (TensorFlow's cross entropy keeps its gradient as a second
    output); a backend's shortcut gets one too (a pattern sum fills it later, for the op that
    made its operand). The walk hands it to the rules only while no tape records the backward
    pass: to an outer tape an array from the forward is a constant, so higher orders compute
    the value again with tensor ops.

    >>> kept = Kept()
    >>> kept.value is None
    True
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = None

    def __repr__(self) -> str:
        return "<kept>"


def note_escape(tensor, how: str) -> None:
    """Remember, on every recording tape that follows ``tensor``, that its value left gputape
    (``.numpy()``, ``float()``, ...): what is computed from that value is a constant to the
    tape, and ``gradient(..., explain=True)`` says so."""
    uid = tensor._uid
    for tape in recording.tapes:
        if uid in tape._watched or uid in tape._shadow:
            tape._escapes.setdefault(uid, how)
