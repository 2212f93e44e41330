"""Why is a gradient None? ``tape.gradient(..., explain=True)`` answers in one sentence per
unconnected source, as an :class:`UnconnectedGradientWarning`.

A tape keeps, next to its entries, a few ids (never arrays) for this: the results no gradient
flows through (non-differentiable ops, integer results) and what was computed from them, the
values that left gputape (``.numpy()``, ``float()``), when it recorded and when each source was
watched. The reasons are looked for in a fixed order, from the most specific to "the target
does not depend on it".
"""

from __future__ import annotations

import warnings

from ..core.state import OUTPUT
from ..core.tensor import Tensor, Variable
from .sources import LIVE_TAPES

__all__ = ["UnconnectedGradientWarning"]


class UnconnectedGradientWarning(UserWarning):
    """Issued by ``GradientTape.gradient(..., explain=True)`` for each source whose gradient is
    unconnected (``None``, or zeros with ``unconnected_gradients="zero"``), with the reason."""


class Evidence:
    """What a tape knew when ``gradient`` was called (copied: the walk may consume the tape)."""

    __slots__ = ("tape", "entries", "watched", "blocked", "escapes", "spans", "pauses",
                 "watch_ids", "watches_variables")

    def __init__(self, tape) -> None:
        self.tape = tape
        self.entries = list(tape._entries)
        self.watched = set(tape._watched)
        self.blocked = list(tape._blocked)
        self.escapes = dict(tape._escapes)
        self.spans = [tuple(span) for span in tape._spans]
        self.pauses = list(tape._pauses)
        self.watch_ids = dict(tape._watch_ids)
        self.watches_variables = tape._watch_accessed_variables


def warn_unconnected(evidence: Evidence, targets: list, sources: list, found: dict) -> None:
    """One warning per source of ``sources`` (tensors or Variables, as the user gave them)
    that has no cotangent in ``found``."""
    for index, source in enumerate(sources):
        if source.dtype.kind in "fc" and source._uid in found:
            continue
        reason = reason_for(evidence, targets, source)
        warnings.warn(
            UnconnectedGradientWarning(
                f"gradient: {_label(source, index, len(sources))} is unconnected to the "
                f"target: {reason}"
            ),
            stacklevel=3,
        )


def _label(source: Tensor, index: int, count: int) -> str:
    what = f"{source.dtype} {source.shape}"
    if isinstance(source, Variable):
        return f"Variable {source.name!r} ({what})"
    return f"source {index} ({what})" if count > 1 else f"the source ({what})"


def reason_for(ev: Evidence, targets: list, source: Tensor) -> str:
    """The one-sentence reason why ``targets`` do not depend on ``source`` on this tape."""
    if source.dtype.kind not in "fc":
        return (
            f"its dtype is {source.dtype}, and gradients flow only through floating-point "
            f"tensors (TensorFlow gives None too); hint: compute with gt.cast(x, gt.float32) "
            f"and take the gradient w.r.t. that float tensor"
        )
    produced = {entry[OUTPUT]._uid for entry in ev.entries}
    outside = next((where for t in targets if (where := _location(ev, t, produced))), None)
    if source._uid not in ev.watched:
        return _not_watched(ev, source, outside)
    if outside is not None:
        return outside
    late = _watched_late(ev, targets, source, produced)
    if late is not None:
        return late
    via = _paths_from(ev, source._uid)
    blocking = sorted({name for t in targets for name in via.get(t._uid, ())})
    if blocking:
        return (
            f"every path from it to the target goes through ops without a gradient: "
            f"{', '.join(repr(n) for n in blocking)} (piecewise constant or integer-valued, "
            f"as in TensorFlow); hint: keep a floating-point, differentiable path (e.g. a "
            f"smooth relaxation) between the source and the target"
        )
    for uid, how in ev.escapes.items():
        if uid in via:
            what = "the source" if uid == source._uid else (
                f"the result of {_producer(ev, uid)!r}, computed from it,")
            return (
                f"{what} left gputape through {how} inside the block, and whatever was "
                f"computed from that NumPy value is a constant to the tape; hint: stay with "
                f"gputape ops (gt.sin, gt.reduce_sum, ...) from the source to the target"
            )
    return (
        "the target does not depend on it: no recorded op connects them (the target was "
        "computed from other tensors); hint: check that the target is computed from this "
        "source, or pass unconnected_gradients='zero' to get zeros instead of None"
    )


def _not_watched(ev: Evidence, source: Tensor, outside: "str | None") -> str:
    if isinstance(source, Variable):
        if not source.trainable:
            return (
                "it is a Variable with trainable=False, which tapes do not watch on their own; "
                "hint: call tape.watch(v) inside the block, or create it with trainable=True"
            )
        if not ev.watches_variables:
            return (
                "the tape was created with watch_accessed_variables=False and this Variable "
                "was never passed to tape.watch(); hint: call tape.watch(v) inside the block"
            )
        if outside is not None:
            return outside
        return (
            "no op read this Variable while the tape recorded (a trainable Variable is "
            "watched when an op inside the `with` block reads it); hint: compute the target "
            "from it inside the block"
        )
    return (
        "it was never watched: a tape follows only the tensors given to tape.watch() and the "
        "trainable Variables read inside its block; hint: call tape.watch(x) inside the "
        "`with` block before computing with x, or make x a gt.Variable"
    )


def _location(ev: Evidence, target: Tensor, produced: set) -> "str | None":
    """Why the tape cannot have recorded ``target``: made outside its block, by another tape,
    or inside ``stop_recording``; ``None`` when it was made while the tape recorded."""
    uid = target._uid
    if uid in produced or uid in ev.watched or not ev.spans:
        return None
    if any(start < uid and (stop is None or uid < stop) for start, stop in ev.spans):
        return None
    for other in _other_tapes(ev.tape):
        if any(entry[OUTPUT]._uid == uid for entry in other._entries):
            return (
                "the target was recorded by a different GradientTape, not this one; hint: call "
                "gradient() on the tape whose `with` block computed the target, or nest the "
                "tapes"
            )
    if any(stop < uid < start for stop, start in ev.pauses):
        return (
            "the target was computed inside tape.stop_recording(), where nothing is recorded; "
            "hint: compute it outside the stop_recording block"
        )
    if uid < ev.spans[0][0]:
        return (
            "the target was computed before this tape's `with` block started, so the tape "
            "never saw the ops that made it; hint: compute the target inside the block"
        )
    return (
        "the target was computed after this tape's `with` block ended (ops outside the block "
        "are not recorded); hint: compute the target inside the block"
    )


def _other_tapes(tape) -> list:
    return [other for other in list(LIVE_TAPES) if other is not tape]


def _watched_late(ev: Evidence, targets: list, source: Tensor, produced: set) -> "str | None":
    stamp = ev.watch_ids.get(source._uid)
    if stamp is None or any(t._uid in produced or t._uid > stamp for t in targets):
        return None
    return (
        "it was watched only after the target had been computed; hint: call tape.watch(x) "
        "before the ops that use x"
    )


def _paths_from(ev: Evidence, uid: int) -> dict:
    """``{id: names of the gradient-less ops on the way}`` for every id computed from ``uid``,
    through recorded and unrecorded (blocked) ops alike, in the order they ran."""
    steps = [(output._uid, tuple(t._uid for t in inputs), prim.name, _no_rule(prim))
             for prim, inputs, _, output, _, _ in ev.entries]
    steps += ev.blocked
    steps.sort(key=lambda step: step[0])
    via: dict = {uid: frozenset()}
    for out, inputs, name, blocking in steps:
        names = [via[i] for i in inputs if i in via]
        if names:
            via[out] = frozenset().union(*names) | ({name} if blocking else frozenset())
    return via


def _no_rule(prim) -> bool:
    """True for a recorded op whose gradient is None for every input (floor, round: TF's
    rules), which blocks a path as an unrecorded op does."""
    return (prim.vjp_any is None and prim.vjp_all is None and not prim.joint_rules_for
            and all(rule is None for rule in prim.vjps))


def _producer(ev: Evidence, uid: int) -> str:
    for prim, _, _, output, _, _ in ev.entries:
        if output._uid == uid:
            return prim.name
    for out, _inputs, name, _blocking in ev.blocked:
        if out == uid:
            return name
    return "an op"
