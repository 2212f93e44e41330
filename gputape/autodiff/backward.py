"""The reverse walk over a tape: cotangents, un-broadcasting, pruning.

One flat loop over the recorded entries in reverse order, and one accumulator (:class:`_Sums`)
keyed by tensor id. Entries that no requested source feeds are skipped before the walk starts;
inputs that no source feeds get no cotangent at all. Each rule's result is checked, summed
back to its input's shape and cast to its dtype here, centrally, so rules stay one line; a
result that cannot be summed to its input's shape is a :class:`GradientRuleError`.

Cotangents may carry ``batch`` extra leading dimensions (``jacobian`` seeds one row per target
element and walks once); rules are written to broadcast over them.

When no tape records the walk, nothing checks numerics and everything stays on the host, the
walk is in *array mode*: cotangents are NumPy arrays, small entries' rules get arrays (the ops
they call return arrays while ``recording.arrays`` is set: ``dispatch.apply_to_arrays``), and
only the results become tensors. The rules are the same; only their operands are cheaper.
"""

from __future__ import annotations

import collections

import numpy as np

from ..core import dispatch
from ..core.device import namespace_of
from ..core.errors import GradientRuleError
from ..core.numerics import check_gradient
from ..core.state import INPUTS, OUTPUT, PRIM, recording
from ..core.tensor import FilledTensor, Tensor
from ..host import threads as hostthreads
from ..host.pool import MIN_BYTES, pooled_numpy

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
    """
    if followed is not None:
        needed = list(entries)
        feeds = followed if sources <= followed else sources | followed
    else:
        needed, feeds = _prune(entries, sources)
    if consume:
        entries.clear()
    checking = dispatch.checking_numerics
    arrays = (not checking and not recording.tapes and _host_seeds(seeds)
              and (_all_host_rules(needed) if host_rules is None else host_rules))
    for _, seed in seeds:
        if seed._data.dtype.kind == "c":
            seeds = [(target, _conj(seed)) for target, seed in seeds]
            break
    outer = recording.arrays, recording.backward_of
    recording.arrays = arrays
    try:
        found = _walk(needed, seeds, sources, feeds, batch, arrays, checking)
    finally:
        recording.arrays, recording.backward_of = outer
    if arrays:
        wrap = Tensor._wrap
        return {uid: wrap(array) if array.dtype.kind != "c" else wrap(_conj_array(array))
                for uid, array in found.items()}
    for uid, g in found.items():  # (a pending GPU result says its dtype without computing)
        if (g._data if type(g) is Tensor else g).dtype.kind == "c":
            found[uid] = _conj(g)
    return found


def _conj(tensor: Tensor) -> Tensor:
    """TensorFlow's complex convention at the walk's ends: the rules are written unconjugated
    (``g * f'(z)``), so the seeds go in conjugated and the gradients come out conjugated, which
    makes each holomorphic step ``g * conj(f'(z))`` as in TF. Real tensors pass as they are;
    a recording tape records the conjugation (for higher orders)."""
    if tensor.dtype.kind != "c":
        return tensor
    from ..ops import conj

    return conj(tensor)


def _conj_array(array):
    out = array.conj()
    return out if out.ndim or type(out) is type(array) else np.asarray(out)  # (0-d: a scalar)


def _host_seeds(seeds: "list[tuple]") -> bool:
    for _, seed in seeds:
        if not isinstance(seed, Tensor) or type(seed._data) is not _ndarray:
            return False
    return True


def _all_host_rules(needed: list) -> bool:
    for entry in needed:
        if not entry[PRIM].host_walk:
            return False
    return True


def _walk(needed: list, seeds: "list[tuple]", sources: set, feeds: set, batch: int,
          arrays: bool, checking: bool) -> dict:
    """The loop. In array mode, entries with small cotangents and one plain rule per input
    (most) call their rules inline on arrays; every other entry runs its rules with tensors
    (:func:`_cotangents`)."""
    sums = _Sums(arrays, in_place=not recording.tapes)
    give, take = sums.give, sums.take
    # The accumulator's common cases are inlined below (an id's first cotangent; reading one
    # with nothing kept aside): they run for every entry.
    cotangents, later = sums.first, sums.later
    batch_shape = ()
    for target, seed in seeds:
        batch_shape = seed.shape[:batch]
        give(target._uid, seed._data if arrays else seed)
    pop = needed.pop
    while needed:  # a list of our own (from _prune): popping frees each entry once done
        entry = pop()
        prim, inputs, params, output, _, _ = entry
        uid = output._uid
        if uid in sources or uid in later:
            g = take(uid, uid in sources)
        else:
            g = cotangents.pop(uid, None)
        if g is None:
            continue
        if arrays and prim.plain_rules and g.nbytes < MIN_BYTES:
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
                rule = rules[index]
                if rule is None or inp._uid not in feeds:
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
                    grad = fit(_as_array(grad), inp, batch_shape, entry, index)
                in_uid = inp._uid
                if in_uid not in cotangents:
                    cotangents[in_uid] = grad
                elif grad.nbytes < MIN_BYTES:
                    later[in_uid].append(grad)  # (as give() does, inline)
                else:
                    give(in_uid, grad)
            continue
        if checking:
            recording.backward_of = entry  # named by errors from ops the rules run
        for index, inp, grad in (_array_rules(entry, g, feeds) if arrays
                                 else _cotangents(entry, g, feeds)):
            if checking:
                check_gradient(entry, index, grad)
            if arrays:
                grad = fit(grad, inp, batch_shape, entry, index)
            elif type(grad) is Tensor and type(inp) is Tensor:
                # Plain tensors: read the arrays' facts directly (identical dtypes are the
                # common case; fit() settles any other).
                have, want = grad._data, inp._data
                if have.dtype is not want.dtype or have.shape != batch_shape + want.shape:
                    grad = fit(grad, inp, batch_shape, entry, index)
            elif grad.dtype != inp.dtype or grad.shape != batch_shape + inp.shape:
                grad = fit(grad, inp, batch_shape, entry, index)  # (a pending one stays so)
            in_uid = inp._uid
            if in_uid in cotangents:
                give(in_uid, grad)
            else:
                cotangents[in_uid] = grad
    return sums.totals(sources)


class _Sums:
    """The walk's one accumulator (HIPS autograd's ``add_outgrads`` is the model): an id's first
    cotangent is kept as it comes; the second makes a fresh sum, which the walk then owns and
    adds later ones into, in place, when no tape records the walk (an outer tape must see every
    sum as an op). In array mode, small contributions are kept aside and added in order when
    the id's cotangent is read: one sum instead of one call per contribution."""

    __slots__ = ("arrays", "in_place", "first", "later", "owned")

    def __init__(self, arrays: bool, in_place: bool) -> None:
        self.arrays = arrays
        self.in_place = in_place
        self.first: dict = {}  # id -> the cotangent (an array in array mode, else a Tensor)
        self.later = collections.defaultdict(list)  # id -> small arrays, in the order they came
        self.owned: set = set()  # ids whose cotangent is a sum made here, added into in place

    def give(self, uid: int, grad) -> None:
        first = self.first.get(uid)
        if first is None:
            self.first[uid] = grad
            return
        if self.arrays:
            if grad.nbytes < MIN_BYTES:
                self.later[uid].append(grad)
                return
            if uid in self.owned:
                hostthreads.run(np.add, (first, grad), first)
                return
            total = pooled_numpy.add(first, grad)
            total = total if type(total) is _ndarray else np.asarray(total)
            data = total
        else:
            if uid in self.owned:
                _add_into(first, grad)
                return
            total = _ops().add(first, grad)
            data = total._data
        self.first[uid] = total
        if self.in_place and _writable(data):
            self.owned.add(uid)

    def take(self, uid: int, keep: bool):
        """The whole cotangent of ``uid`` (None if none came), kept for later reads if
        ``keep`` (a source that is also an op's output)."""
        g = self.first.get(uid) if keep else self.first.pop(uid, None)
        if g is not None and uid in self.later:
            g = _total(g, self.later.pop(uid))
            if keep:
                self.first[uid] = g
                self.owned.discard(uid)
        return g

    def totals(self, sources: set) -> dict:
        found = {}
        for uid in sources:
            g = self.take(uid, True)
            if g is not None:
                found[uid] = g
        return found


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


def _array_rules(entry: tuple, g, feeds: set) -> list:
    """:func:`_cotangents` in array mode, for entries whose rules need tensors: ``g`` wrapped,
    array mode paused for the ops they call, and the results unwrapped."""
    recording.arrays = False
    try:
        found = list(_cotangents(entry, Tensor._wrap(g), feeds))
    finally:
        recording.arrays = True
    return [(index, inp, _as_array(grad)) for index, inp, grad in found]


def _cotangents(entry: tuple, g, feeds: set):
    """``(index, input, cotangent)`` for each input of tape ``entry`` a source feeds and its
    rule connects, computed with tensor ops from the cotangent ``g`` of its output."""
    prim, inputs, params, output, _, kept = entry
    if kept is not None and recording.tapes:
        kept = None  # a constant to the tape that records this walk: the rules recompute it
    together = _together(entry, g, feeds, kept) if prim.joint_rules else None
    filled = None
    if together is None and type(g) is FilledTensor:
        # Only joint rules use the known value, and the ops take plain tensors faster; a rule
        # that passes the cotangent on unchanged passes the knowledge on too (below).
        filled, g = g, g.plain()
    rules = prim.vjps
    for index, inp in enumerate(inputs):
        if inp._uid not in feeds:
            continue
        if together is not None:
            grad = together[index]
        elif prim.vjp_any is not None:
            grad = prim.vjp_any(index, g, output, *inputs, **params)
        elif index < len(rules) and rules[index] is not None:
            if prim.keeps:
                grad = rules[index](g, output, *inputs, kept=kept, **params)
            elif params:
                grad = rules[index](g, output, *inputs, **params)
            else:
                grad = rules[index](g, output, *inputs)
        else:
            continue
        if grad is not None:
            yield index, inp, (filled if filled is not None and grad is g else grad)


def _together(entry: tuple, g, feeds: set, kept) -> "list | None":
    """Every input's cotangent from one joint rule (a user's custom gradient, or a backend's
    rule for ``g``'s array namespace), or ``None`` to use the per-input rules."""
    prim, inputs, params, output, _, _ = entry
    if prim.vjp_all is not None:
        return prim.vjp_all(g, output, inputs, params)
    data = g._data if isinstance(g, Tensor) else g
    joint = prim.joint_rule("numpy" if type(data) is _ndarray else "cupy")
    if joint is None:
        return None
    needed = [t._uid in feeds for t in inputs]
    return joint(g, output, inputs, params, needed, kept)


def _as_array(grad):
    if isinstance(grad, Tensor):
        grad = grad._data
    return grad if type(grad) is _ndarray else np.asarray(grad)


def _summable(have: tuple, batch_shape: tuple, shape: tuple) -> bool:
    """Whether a rule's result of shape ``have`` can be made the cotangent of shape
    ``batch_shape + shape``: past the batch dimensions (if it carries them) it must broadcast
    against ``shape``, extra leading dimensions included; then it is summed back. Dimensions
    that differ and are not 1 are a faulty rule (a reshape there would scramble the values)."""
    batch = len(batch_shape)
    if batch and len(have) > len(shape):  # it carries the batch dimensions
        for h, w in zip(have[:batch], batch_shape):
            if h != w and h != 1:
                return False
        have = have[batch:]
    n = min(len(have), len(shape))
    for h, w in zip(have[len(have) - n:], shape[len(shape) - n:]):
        if h != w and h != 1 and w != 1:
            return False
    return True


def _refuse(entry, index: int, have: tuple, want: tuple) -> GradientRuleError:
    prim = entry[PRIM]
    return GradientRuleError(
        f"{prim.name}: the gradient rule for input {prim.arg_name(index)!r} returned shape "
        f"{have}, which cannot be summed to the input's shape {want}; hint: a rule returns "
        f"something that broadcasts against its input (with g's leading batch dimensions, if "
        f"any), or None"
    )


def fit(grad, like, batch_shape: tuple = (), entry=None, index: int = 0):
    """``grad`` summed/broadcast to ``batch_shape + like.shape`` and cast to ``like.dtype``;
    a :class:`GradientRuleError` naming ``entry``'s primitive and input ``index`` where it
    cannot be (see :func:`_summable`). In array mode ``grad`` is an array, and so is the
    result (the ops return arrays there)."""
    from ..ops import broadcast_to, cast, sum_to

    want = tuple(batch_shape) + like.shape
    if grad.shape != want:
        if entry is not None and not _summable(grad.shape, tuple(batch_shape), like.shape):
            raise _refuse(entry, index, grad.shape, want)
        grad = sum_to(grad, like.shape, batch=len(batch_shape))
        if grad.shape != want:
            grad = broadcast_to(grad, want)
    if grad.dtype != like.dtype:
        grad = cast(grad, like.dtype)
    return grad


def _ops():
    """The op library (imported on first use: it imports this module's package)."""
    global _OPS
    if _OPS is None:
        from .. import ops

        _OPS = ops
    return _OPS


_OPS = None


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


def batchable(entries: list, sources: set) -> bool:
    """True when every entry between the sources and the targets accepts batched cotangents."""
    needed, _ = _prune(entries, sources)
    for prim, _, params, _, _, _ in needed:
        ok = prim.batchable
        if callable(ok):
            ok = ok(params)
        if not ok:
            return False
    return True
