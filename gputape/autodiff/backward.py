"""The reverse walk over a tape: cotangents, un-broadcasting, pruning.

One flat loop over the recorded entries in reverse order. Cotangents live in one dict keyed by
tensor id. Entries that no requested source feeds are skipped before the walk starts; inputs
that no source feeds get no cotangent at all. Each rule's result is summed back to its input's
shape and cast to its dtype here, centrally, so rules stay one line.

Cotangents may carry ``batch`` extra leading dimensions (``jacobian`` seeds one row per target
element and walks once); rules are written to broadcast over them.
"""

from __future__ import annotations

import collections

import numpy as np

from ..core import dispatch
from ..core.device import namespace_of
from ..core.numerics import check_gradient
from ..core.state import INPUTS, OUTPUT, PRIM, recording
from ..core.tensor import Tensor
from ..host import threads as hostthreads
from ..host.pool import MIN_BYTES, pooled_numpy
from ..host.views import broadcast_view

_ndarray = np.ndarray


def walk(entries: list, seeds: "list[tuple]", sources: set, batch: int = 0,
         consume: bool = False, followed: "set | None" = None,
         host_rules: "bool | None" = None) -> dict:
    """Cotangents of every id in ``sources``, given ``seeds`` as ``(target, cotangent)`` pairs.

    ``entries`` is the tape in recording order. Returns ``{uid: Tensor}`` for the connected
    sources only. Every id the sources feed is a float tensor (tapes record float outputs
    only, and gradient() passes float sources only), so no dtype is checked here.

    With ``consume``, the walk empties ``entries`` and lets go of each entry once it is done,
    so the arrays the forward pass saved are freed (and their memory reused) during the walk.

    ``followed`` may be given when every tensor the tape was told to watch is a source: the
    ids the tape follows. Then every entry is needed (each was recorded because it read a
    followed id) and the sources feed exactly those ids, so no pruning pass is needed.
    ``host_rules``, when known (the tape tracks it as it records), says whether every entry's
    rules may run on host arrays, as :func:`_all_host_rules` would find.

    When no tape records the walk, nothing checks numerics and everything stays on the host,
    the walk runs in array mode: cotangents are NumPy arrays, small entries' rules get arrays
    (the ops they call then return arrays: ``dispatch.apply_to_arrays``), and only the results
    become tensors. The rules are the same; only their operands are cheaper.
    """
    if followed is not None:
        needed = list(entries)
        feeds = followed if sources <= followed else sources | followed
    else:
        needed, feeds = _prune(entries, sources)
    if consume:
        entries.clear()
    if dispatch.checking_numerics:
        outer = recording.backward_of
        try:
            return _walk(needed, seeds, sources, feeds, batch, True)
        finally:
            recording.backward_of = outer
    if recording.tapes or not _host_seeds(seeds) or not (
            _all_host_rules(needed) if host_rules is None else host_rules):
        return _walk(needed, seeds, sources, feeds, batch, False)
    outer = recording.arrays
    recording.arrays = True
    try:
        found = _walk_arrays(needed, seeds, sources, feeds, batch)
    finally:
        recording.arrays = outer
    return {uid: Tensor._wrap(array) for uid, array in found.items()}


def _host_seeds(seeds: "list[tuple]") -> bool:
    for _, seed in seeds:
        if type(seed) is not Tensor or type(seed._data) is not _ndarray:
            return False
    return True


def _all_host_rules(needed: list) -> bool:
    for entry in needed:
        if not entry[PRIM].host_walk:
            return False
    return True


def _walk(needed: list, seeds: "list[tuple]", sources: set, feeds: set, batch: int,
          checking: bool) -> dict:
    from ..ops import add

    # When no tape records this walk, nobody else sees the sums the walk makes itself, so
    # later contributions are added into them in place (the ids in ``owned``).
    in_place = not recording.tapes
    owned: set = set()
    batch_shape = None
    cotangents: dict = {}
    for target, seed in seeds:
        uid = target._uid
        previous = cotangents.get(uid)
        cotangents[uid] = seed if previous is None else add(previous, seed)
    while needed:  # a list of our own (from _prune): popping frees each entry once done
        entry = needed.pop()
        out_uid = entry[OUTPUT]._uid
        g = cotangents.get(out_uid) if out_uid in sources else cotangents.pop(out_uid, None)
        if g is None:
            continue
        if checking:
            recording.backward_of = entry  # named by errors from ops the rules run
        for index, inp, grad in _cotangents(entry, g, feeds):
            if checking:
                check_gradient(entry, index, grad)
            if batch:
                if batch_shape is None:
                    batch_shape = g.shape[:batch]
                if grad.shape != batch_shape + inp.shape or grad.dtype != inp.dtype:
                    grad = fit(grad, inp, batch_shape)
            elif type(grad) is Tensor and type(inp) is Tensor:
                # Plain tensors: read the arrays' facts directly (identical dtypes are the
                # common case; fit() settles any other).
                have, want = grad._data, inp._data
                if have.shape != want.shape or have.dtype is not want.dtype:
                    grad = fit(grad, inp)
            elif grad.shape != inp.shape or grad.dtype != inp.dtype:
                grad = fit(grad, inp)
            uid = inp._uid
            previous = cotangents.get(uid)
            if previous is None:
                cotangents[uid] = grad
            elif uid in owned:
                _add_into(previous, grad)
            else:
                total = cotangents[uid] = add(previous, grad)
                if in_place and _writable(total._data):
                    owned.add(uid)
    return {uid: cotangents[uid] for uid in sources if uid in cotangents}


def _walk_arrays(needed: list, seeds: "list[tuple]", sources: set, feeds: set,
                 batch: int) -> dict:
    """:func:`_walk` in array mode: the same loop over host arrays (``recording.arrays`` is
    set). Small entries run their per-input rules inline; the rest go through tensor ops.

    The cotangents that reach one id after its first are kept aside (``later``) and summed
    when the id's cotangent is read: one sum instead of one call per contribution. Large ones
    are added at once, into a sum only the walk holds (``owned``), so they never pile up.
    """
    sums = _Sums()
    cotangents = sums.first
    later = sums.later
    give = sums.give
    batch_shape = ()
    for target, seed in seeds:
        batch_shape = seed.shape[:batch]
        give(target._uid, seed._data)
    pop = needed.pop
    while needed:  # a list of our own (from _prune): popping frees each entry once done
        entry = pop()
        prim, inputs, params, output, _ = entry
        uid = output._uid
        g = cotangents.pop(uid, None)
        if g is None:
            continue
        if uid in later:
            g = _total(g, later.pop(uid))
        if uid in sources:
            cotangents[uid] = g
        if g.nbytes >= MIN_BYTES or not prim.plain_rules:
            # Large cotangents go through tensor ops (pooled results); joint rules and rules of
            # variable arity take the general route.
            for _, inp, grad in _tensor_cotangents(entry, g, feeds):
                give(inp._uid, _fit_array(_as_array(grad), inp._data, batch_shape))
            continue
        rules = prim.vjps
        ans = output._data
        # Rules of one or two inputs and no parameters (most) get a plain call: calls that
        # unpack arguments cost a third of a small rule's time.
        count = len(inputs) if not params else 0
        first = inputs[0]._data
        second = inputs[1]._data if count == 2 else None
        index = -1
        for inp in inputs:
            index += 1
            in_uid = inp._uid
            rule = rules[index]
            if in_uid not in feeds or rule is None:
                continue
            if count == 2:
                grad = rule(g, ans, first, second)
            elif count == 1:
                grad = rule(g, ans, first)
            else:
                grad = rule(g, ans, *[t._data for t in inputs], **params)
            if grad is None:
                continue
            want = inp._data
            if type(grad) is not _ndarray or grad.dtype is not want.dtype or (
                    grad.shape != (batch_shape + want.shape if batch else want.shape)):
                grad = _fit_array(_as_array(grad), want, batch_shape)
            if in_uid not in cotangents:
                cotangents[in_uid] = grad
            elif grad.nbytes < MIN_BYTES:
                later[in_uid].append(grad)
            else:
                give(in_uid, grad)
    found = {}
    for uid in sources:
        g = cotangents.get(uid)
        if g is not None:
            found[uid] = _total(g, later.pop(uid)) if uid in later else g
    return found


class _Sums:
    """The cotangents of array mode: each id's first one, and what reached it later."""

    __slots__ = ("first", "later", "owned")

    def __init__(self) -> None:
        self.first: dict = {}  # id -> array
        self.later = collections.defaultdict(list)  # id -> small arrays, in the order they came
        self.owned: set = set()  # ids whose first array is a sum of large ones made here

    def give(self, uid: int, grad) -> None:
        first = self.first.get(uid)
        if first is None:
            self.first[uid] = grad
        elif grad.nbytes < MIN_BYTES:
            self.later[uid].append(grad)
        elif uid in self.owned:
            hostthreads.run(np.add, (first, grad), first)
        else:
            total = pooled_numpy.add(first, grad)
            self.first[uid] = total if type(total) is _ndarray else np.asarray(total)
            if _writable(total):
                self.owned.add(uid)


def _total(first, more: list):
    """``first`` plus every array in ``more``, added in order, as a new array."""
    if len(more) < 8 or first.size < 2:
        total = np.asarray(np.add(first, more[0]))
        for grad in more[1:]:
            np.add(total, grad, out=total)
        return total
    more.insert(0, first)
    # Along the first axis of the stack NumPy adds row after row: the order of the loop above
    # (a stack of single numbers would be summed pairwise instead, hence the size test).
    return np.asarray(np.add.reduce(np.asarray(more), axis=0))


def _cotangents(entry: tuple, g, feeds: set):
    """``(index, input, cotangent)`` for each input of tape ``entry`` a source feeds and its
    rule connects, computed with tensor ops from the cotangent ``g`` of its output."""
    prim, inputs, params, output, _ = entry
    together = _together(entry, g, feeds) if prim.joint_rules else None
    rules = prim.vjps
    for index, inp in enumerate(inputs):
        if inp._uid not in feeds:
            continue
        if together is not None:
            grad = together[index]
        elif prim.vjp_any is not None:
            grad = prim.vjp_any(index, g, output, *inputs, **params)
        elif index < len(rules) and rules[index] is not None:
            if params:
                grad = rules[index](g, output, *inputs, **params)
            else:
                grad = rules[index](g, output, *inputs)
        else:
            continue
        if grad is not None:
            yield index, inp, grad


def _tensor_cotangents(entry: tuple, g, feeds: set) -> list:
    """The cotangents of one entry computed with tensor ops (array mode paused)."""
    recording.arrays = False
    try:
        return list(_cotangents(entry, Tensor._wrap(g), feeds))
    finally:
        recording.arrays = True


def _as_array(grad):
    if isinstance(grad, Tensor):
        grad = grad._data
    return grad if type(grad) is _ndarray else np.asarray(grad)


def _fit_array(grad, like, batch_shape: tuple):
    """:func:`fit` for arrays: ``grad`` summed or broadcast to ``batch_shape + like.shape`` and
    cast to ``like``'s dtype."""
    from ..ops.reduction import SUM_TO, _sum_to_axes

    want = batch_shape + like.shape
    if grad.shape != want:
        batch = len(batch_shape)
        if grad.ndim - batch >= like.ndim and _sum_to_axes(grad.shape[batch:], like.shape):
            grad = SUM_TO.host_forward(np, grad, like.shape, batch)
        if grad.shape != want:
            grad = broadcast_view(grad, want)
    if grad.dtype != like.dtype:
        grad = grad.astype(like.dtype)
    return np.asarray(grad)


def _together(entry: tuple, g, feeds: set) -> "list | None":
    """Every input's cotangent from one joint rule (a user's custom gradient, or a fused
    override for ``g``'s array namespace), or ``None`` to use the per-input rules."""
    prim, inputs, params, output, _ = entry
    if prim.vjp_all is not None:
        return prim.vjp_all(g, output, inputs, params)
    data = g._data if isinstance(g, Tensor) else g
    fused = prim.joint_rule("numpy" if type(data) is _ndarray else "cupy")
    if fused is None:
        return None
    needed = [t._uid in feeds for t in inputs]
    return fused(g, output, inputs, params, needed)


def _writable(data) -> bool:
    """Whether a sum the walk made may be added into: not a read-only broadcast of one value,
    which is what NumPy with pooled results gives for operands that are such broadcasts."""
    return type(data) is not _ndarray or data.flags.writeable


def _add_into(total, grad) -> None:
    """``total += grad`` on the arrays, for a sum only the walk holds."""
    data = total._data
    if type(data) is not type(grad._data):
        raise AssertionError("cotangents of one tensor live in different array namespaces")
    (np if type(data) is np.ndarray else namespace_of(data)).add(data, grad._data, out=data)


def _prune(entries: list, sources: set) -> "tuple[list, set]":
    """The entries a source feeds, and the ids those sources feed (sources included)."""
    feeds = set(sources)
    needed = []
    for entry in entries:
        for inp in entry[INPUTS]:
            if inp._uid in feeds:
                needed.append(entry)
                feeds.add(entry[OUTPUT]._uid)
                break
    return needed, feeds


def fit(grad, like, batch_shape: tuple = ()):
    """``grad`` summed/broadcast to ``batch_shape + like.shape`` and cast to ``like.dtype``."""
    from ..ops import broadcast_to, cast, sum_to

    want = tuple(batch_shape) + like.shape
    if grad.shape != want:
        grad = sum_to(grad, like.shape, batch=len(batch_shape))
        if grad.shape != want:
            grad = broadcast_to(grad, want)
    if grad.dtype != like.dtype:
        grad = cast(grad, like.dtype)
    return grad


def batchable(entries: list, sources: set) -> bool:
    """True when every entry between the sources and the targets accepts batched cotangents."""
    needed, _ = _prune(entries, sources)
    for prim, _, params, _, _ in needed:
        ok = prim.batchable
        if callable(ok):
            ok = ok(params)
        if not ok:
            return False
    return True
