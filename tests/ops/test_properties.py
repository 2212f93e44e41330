"""Property-based gradient tests: random expressions over the op registry against finite
differences (first order for every expression, second order through nested tapes for smooth ones).

An expression is drawn together with its input point. Every guard it needs is a constant chosen
from the values at that point: a shift that keeps a kink (relu/abs/sign at 0, maximum/minimum at
ties, the arg-extreme of reduce_max/min) at least ``MARGIN`` away, a shift into a log's or a
power's domain, and a rescale that keeps every intermediate value within ``BOUND``. So the drawn
function is smooth around the point by construction and the tolerances stay those of
tests/ops/test_gradients.py.

The elementwise ops are harvested from tests/op_specs.py (each spec built from UNARY_SHAPES or
BINARY_SHAPES, with its domain and smoothness), so a new elementwise spec is drawn here with no
edit; reductions, shape ops, indexing, matmul, softmax and a custom gradient are listed below.

The checks run on the CPU, plainly and through the fused gradient rules ("cpu-fused"); the GPU
is left to the spec table of tests/ops/test_gradients.py, which keeps this file's time bounded.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from op_specs import (
    BINARY_SHAPES,
    SPECS,
    UNARY_SHAPES,
    above_one,
    away_from_zero,
    between_steps,
    inside_unit,
    large,
    normal,
    positive,
    small,
)

import gputape as gt
from gputape.core.registry import differentiable_primitives

BOUND = 4.0  # every intermediate value is rescaled into [-BOUND, BOUND]
MARGIN = 0.1  # the least distance kept from a kink; finite differences move values by ~1e-5
MAX_SIZE = 64  # elements of any intermediate
MAX_DEPTH = 4

PROPERTY_SETTINGS = settings(
    derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- the elementwise ops, harvested from the spec table ---------------------------------------


@dataclass(frozen=True)
class Elementwise:
    name: str  # the primitive's spec name
    fn: Callable
    domains: tuple  # one op_specs domain per argument
    smooth: bool


def _harvest(shape_groups: list) -> "dict[str, Elementwise]":
    """Specs whose leading cases run one function over exactly ``shape_groups``."""
    found = {}
    for name, spec in SPECS.items():
        head = spec.cases[: len(shape_groups)]
        if len(head) != len(shape_groups) or len({id(fn) for fn, _ in head}) != 1:
            continue
        if [tuple(shapes) for _, shapes in head] == [tuple(g) for g in shape_groups]:
            arity = len(shape_groups[0])
            domains = tuple(spec.domain(i) for i in range(arity))
            found[name] = Elementwise(name, head[0][0], domains, spec.smooth)
    return found


UNARY = _harvest([(s,) for s in UNARY_SHAPES])
BINARY = _harvest([tuple(pair) for pair in BINARY_SHAPES])
# A non-smooth binary op is taken to kink where its arguments tie (checked by a test below).
TIE_KINKED = frozenset({"maximum", "minimum"})
# floordiv and floormod step where x / y is an integer: between_steps' dividend (never near 0)
# over large's divisor (3..5) stays inside (-1, 1) and off 0.
STEPPED = frozenset({"floordiv", "floormod"})

# -- expression nodes ----------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """One subexpression: ``op(*children)``, its value at the drawn point, how it reads."""

    op: "Callable | None"  # None for an input
    children: tuple
    value: np.ndarray
    text: str
    ops: frozenset  # the primitives it runs (forward)
    smooth: bool
    index: int = -1  # which input, for a leaf

    @property
    def shape(self) -> tuple:
        return self.value.shape


def _host(t) -> np.ndarray:
    return np.asarray(t.numpy() if isinstance(t, gt.Tensor) else t, dtype=np.float64)


def _make(op, children, text, ops=(), smooth=True) -> Node:
    value = _host(op(*[gt.constant(c.value) for c in children]))
    assert np.all(np.isfinite(value)), f"non-finite value building {text}"
    return Node(op, tuple(children), value, text, frozenset(ops).union(*(c.ops for c in children)),
                smooth and all(c.smooth for c in children))


def _node(op, children, text, ops=(), smooth=True) -> Node:
    return _tame(_make(op, children, text, ops, smooth))


def evaluate(node: Node, xs, replace: "dict | None" = None):
    """The expression on tensors ``xs``; ``replace`` swaps some ops for others."""
    if node.op is None:
        return xs[node.index]
    op = node.op if replace is None else replace.get(node.op, node.op)
    return op(*[evaluate(c, xs, replace) for c in node.children])


# -- guards: constants chosen at the drawn point -------------------------------------------


def _scale(node: Node, limit: float) -> Node:
    peak = float(np.max(np.abs(node.value), initial=0.0))
    if peak <= limit:
        return node
    s = limit / peak
    return _make(lambda a: a * s, [node], f"({node.text} * {s:.3g})", ["multiply"])


def _tame(node: Node) -> Node:
    return _scale(node, BOUND)


def _shift(node: Node, c: float) -> Node:
    return _make(lambda a: a + c, [node], f"({node.text} + {c:.3g})", ["add"])


def _cut(draw, values: np.ndarray) -> float:
    """A constant ``c`` with ``|values - c| >= MARGIN`` everywhere, inside their range where a
    gap allows it (so both sides of the kink are used), else just outside."""
    v = np.unique(values.ravel())
    mids = (v[1:] + v[:-1]) / 2
    inside = mids[(v[1:] - v[:-1]) >= 2 * MARGIN]
    if inside.size and draw(st.integers(0, 3)):
        return float(draw(st.sampled_from(inside.tolist())))
    return float(v[0] - 3 * MARGIN if draw(st.booleans()) else v[-1] + 3 * MARGIN)


def _away_from_zero(draw, node: Node) -> Node:
    if np.min(np.abs(node.value)) >= MARGIN:
        return node
    return _shift(node, -_cut(draw, node.value))


def _positive(draw, node: Node) -> Node:
    low = float(np.min(node.value))
    return node if low >= 0.5 else _shift(node, 0.5 - low + draw(st.sampled_from([0.0, 1.0])))


def _small(draw, node: Node) -> Node:
    return _scale(node, 1.1)  # tan: keep well inside (-pi/2, pi/2)


def _between_steps(draw, node: Node) -> Node:
    """Within 0.1 of k + 0.25: away from floor's jumps (integers) and round's (k + 0.5)."""
    return _shift(_scale(node, 0.1), 0.25 + draw(st.integers(-2, 2)))


def _inside_unit(draw, node: Node) -> Node:
    return _scale(node, 0.8)  # asin, acos, atanh: away from the ends of (-1, 1)


def _above_one(draw, node: Node) -> Node:
    low = float(np.min(node.value))
    return node if low >= 1.2 else _shift(node, 1.2 - low)  # acosh: away from 1


def _large(draw, node: Node) -> Node:
    return _shift(_scale(node, 1.0), 4.0)  # a divisor in 3..5 (see op_specs.large)


GUARDS = {normal: lambda draw, node: node, positive: _positive, small: _small,
          away_from_zero: _away_from_zero, between_steps: _between_steps,
          inside_unit: _inside_unit, above_one: _above_one, large: _large}


def _untie(draw, a: Node, b: Node) -> Node:
    """``b`` shifted so that ``a - b`` keeps ``MARGIN`` from 0 (maximum/minimum kink at ties)."""
    gap = a.value - b.value
    if np.min(np.abs(gap)) >= MARGIN:
        return b
    return _shift(b, _cut(draw, gap))


def _slices(value: np.ndarray, axes: tuple) -> np.ndarray:
    """``value`` with the reduced ``axes`` flattened into the last one."""
    rest = [a for a in range(value.ndim) if a not in axes]
    moved = np.transpose(value, rest + list(axes))
    return moved.reshape(moved.shape[: len(rest)] + (-1,))


def _untie_extreme(node: Node, axes: tuple, largest: bool) -> Node:
    """``node`` plus a constant ramp when an extreme of a slice is within ``MARGIN`` of the
    runner-up: the ramp's steps exceed the values' spread, so it decides the order."""
    ranked = np.sort(_slices(node.value, axes), axis=-1)
    if ranked.shape[-1] < 2:
        return node
    gaps = ranked[..., -1] - ranked[..., -2] if largest else ranked[..., 1] - ranked[..., 0]
    if np.min(gaps) >= MARGIN:
        return node
    step = float(np.ptp(node.value)) + 2 * MARGIN
    count = ranked.shape[-1]
    order = (np.arange(count) * 7919) % count  # a fixed permutation (count <= 64 < 7919, prime)
    kept = tuple(node.shape[a] if a in axes else 1 for a in range(node.value.ndim))
    ramp = (order * step).reshape(kept)
    return _make(lambda a: a + ramp, [node], f"({node.text} + ramp)", ["add"])


# -- the builders: one per drawn op ---------------------------------------------------------


def _axes(draw, ndim: int, max_count: "int | None" = None, shape: tuple = ()):
    """A reduction's ``axis`` argument and the axes it names."""
    subsets = [s for r in range(ndim + 1) for s in itertools.combinations(range(ndim), r)]
    if max_count is not None:
        subsets = [s for s in subsets if math.prod(shape[a] for a in s) <= max_count]
    axes = draw(st.sampled_from(subsets))
    if len(axes) == ndim and max_count is None and draw(st.booleans()):
        return None, axes
    if len(axes) == 1 and draw(st.booleans()):
        return axes[0] - ndim * draw(st.integers(0, 1)), axes
    return tuple(a - ndim * draw(st.integers(0, 1)) for a in axes), axes


def _reduction(name: str, fn, extreme: "str | None" = None, max_count=None):
    def build(draw, rng, x: Node) -> Node:
        axis, axes = _axes(draw, x.value.ndim, max_count, x.shape)
        keepdims = draw(st.booleans())
        smooth = extreme is None
        if extreme is not None:
            x = _untie_extreme(x, axes, extreme == "max")
        if name == "reduce_prod":
            x = _away_from_zero(draw, _scale(x, 1.0))
        return _node(lambda a: fn(a, axis=axis, keepdims=keepdims), [x],
                     f"{fn.__name__}({x.text}, axis={axis}, keepdims={keepdims})",
                     [name], smooth)

    return build


def _shapes_of_size(size: int) -> list:
    dims = [d for d in range(1, size + 1) if size % d == 0]
    return [s for r in range(4) for s in itertools.product(dims, repeat=r) if math.prod(s) == size]


def _reshape(draw, rng, x: Node) -> Node:
    shape = list(draw(st.sampled_from(_shapes_of_size(x.value.size))))
    if shape and draw(st.booleans()):
        shape[draw(st.integers(0, len(shape) - 1))] = -1
    return _node(lambda a: gt.reshape(a, shape), [x], f"reshape({x.text}, {shape})", ["reshape"])


def _transpose(draw, rng, x: Node) -> Node:
    axes = tuple(range(x.value.ndim))
    perm = draw(st.sampled_from([p for p in itertools.permutations(axes) if p != axes]))
    return _node(lambda a: gt.transpose(a, perm), [x], f"transpose({x.text}, {perm})",
                 ["transpose"])


def _broadcast_to(draw, rng, x: Node) -> Node:
    target = list(x.shape)
    for i, d in enumerate(target):  # grow size-1 dimensions while there is room
        if d == 1 and math.prod(target) * 3 <= MAX_SIZE:
            target[i] = draw(st.integers(1, 3))
    if (target == list(x.shape) or draw(st.booleans())) and math.prod(target) * 2 <= MAX_SIZE:
        target.insert(0, draw(st.integers(2, 3 if math.prod(target) * 3 <= MAX_SIZE else 2)))
    target = tuple(target)
    return _node(lambda a: gt.broadcast_to(a, target), [x], f"broadcast_to({x.text}, {target})",
                 ["broadcast_to"])


def _tile(draw, rng, x: Node) -> Node:
    multiples, size = [1] * x.value.ndim, x.value.size
    for i in range(len(multiples)):
        if size * 2 <= MAX_SIZE and draw(st.booleans()):
            multiples[i], size = 2, size * 2
    if size == x.value.size:  # at least one repeat
        multiples[draw(st.integers(0, len(multiples) - 1))] = 2
    return _node(lambda a: gt.tile(a, multiples), [x], f"tile({x.text}, {multiples})", ["tile"])


def _index(draw, rng, shape: tuple):
    axis = draw(st.integers(0, len(shape) - 1))
    d = shape[axis]
    lead = (slice(None),) * axis
    form = draw(st.sampled_from(["slice", "int", "array", "mask", "newaxis"]))
    if form == "slice":
        start = draw(st.integers(0, d - 1))
        stop = draw(st.integers(start + 1, d))
        if draw(st.booleans()):  # reversed
            return lead + (slice(stop - 1, start - 1 if start else None, -1),)
        return lead + (slice(start, stop, draw(st.integers(1, 2))),)
    if form == "int":
        return lead + (draw(st.integers(-d, d - 1)),)
    if form == "array":  # repeats make the gradient scatter-add
        return lead + (np.array(draw(st.lists(st.integers(0, d - 1), min_size=1, max_size=5))),)
    if form == "mask":
        mask = rng.random(shape) < 0.6
        mask.flat[draw(st.integers(0, mask.size - 1))] = True
        return (mask,)
    return (Ellipsis, None) if draw(st.booleans()) else (None,) + lead


def _getitem(draw, rng, x: Node) -> Node:
    index = _index(draw, rng, x.shape)
    shown = ", ".join((f"<mask {k.shape}>" if k.dtype == bool else repr(k.tolist()))
                      if isinstance(k, np.ndarray) else repr(k) for k in index)
    return _node(lambda a: a[index], [x], f"{x.text}[{shown}]", ["getitem"])


def _sum_to(draw, rng, x: Node) -> Node:
    tail = x.shape[draw(st.integers(0, x.value.ndim)):]
    target = tuple(1 if draw(st.booleans()) else d for d in tail)
    return _node(lambda a: gt.sum_to(a, target), [x], f"sum_to({x.text}, {target})", ["sum_to"])


def _along_axis(name: str, fn):
    def build(draw, rng, x: Node) -> Node:
        axis = draw(st.integers(-x.value.ndim, x.value.ndim - 1))
        return _node(lambda a: fn(a, axis=axis), [x], f"{name}({x.text}, axis={axis})", [name])

    return build


def _scan(name: str, fn):
    def build(draw, rng, x: Node) -> Node:
        axis = draw(st.integers(-x.value.ndim, x.value.ndim - 1))
        exclusive, reverse = draw(st.booleans()), draw(st.booleans())
        if name == "cumprod":  # its gradient divides by x
            x = _away_from_zero(draw, _scale(x, 1.5))
        return _node(lambda a: fn(a, axis=axis, exclusive=exclusive, reverse=reverse), [x],
                     f"{name}({x.text}, axis={axis}, exclusive={exclusive}, "
                     f"reverse={reverse})", [name])

    return build


def _sort(draw, rng, x: Node) -> Node:
    """``sort`` (values taken along an axis by index), its values kept ``MARGIN`` apart along
    the axis (a tie is a kink) by a ramp when they are closer."""
    axis = draw(st.integers(-x.value.ndim, x.value.ndim - 1)) % x.value.ndim
    ranked = np.sort(np.moveaxis(x.value, axis, -1), axis=-1)
    if ranked.shape[-1] > 1 and np.min(np.diff(ranked, axis=-1)) < MARGIN:
        n = x.shape[axis]
        step = float(np.ptp(x.value)) + 2 * MARGIN
        ramp = ((np.arange(n) * 7919) % n * step).reshape(
            tuple(n if a == axis else 1 for a in range(x.value.ndim)))
        x = _make(lambda a: a + ramp, [x], f"({x.text} + ramp)", ["add"])
    direction = draw(st.sampled_from(["ASCENDING", "DESCENDING"]))
    return _node(lambda a: gt.sort(a, axis=axis, direction=direction), [x],
                 f"sort({x.text}, axis={axis}, direction={direction!r})", ["take_along_axis"])


def _einsum_transpose(draw, rng, x: Node) -> Node:
    letters = "abcd"[: x.value.ndim]
    equation = f"{letters}->{letters[::-1]}"
    return _node(lambda a: gt.einsum(equation, a), [x], f"einsum({equation!r}, {x.text})",
                 ["einsum_1"])


def _einsum_product(draw, rng, x: Node) -> Node:
    """``x`` contracted over its last axis with a constant matrix."""
    letters = "abcd"[: x.value.ndim]
    w = rng.standard_normal((x.shape[-1], draw(st.integers(1, 3))))
    equation = f"{letters},{letters[-1]}z->{letters[:-1]}z"
    return _node(lambda a: gt.einsum(equation, a, w), [x], f"einsum({equation!r}, {x.text}, W)",
                 ["einsum"])


def _diag_part(draw, rng, x: Node) -> Node:
    return _node(gt.linalg.diag_part, [x], f"diag_part({x.text})", ["diag_part"])


def _diag(draw, rng, x: Node) -> Node:
    return _node(gt.linalg.diag, [x], f"diag({x.text})", ["matrix_diag"])


@gt.custom_gradient
def wavy(x):
    """``x sin x`` with a hand-written rule (in gputape ops, so it has a second derivative)."""
    return x * gt.sin(x), lambda g: g * (gt.sin(x) + x * gt.cos(x))


def _custom(draw, rng, x: Node) -> Node:
    return _node(wavy, [x], f"wavy({x.text})", ["custom_gradient"])


def _elementwise_unary(op: Elementwise):
    def build(draw, rng, x: Node) -> Node:
        x = GUARDS[op.domains[0]](draw, x)
        return _node(op.fn, [x], f"{op.name}({x.text})", [op.name], op.smooth)

    return build


def _elementwise_binary(op: Elementwise):
    def build(draw, rng, a: Node, b: Node) -> Node:
        a, b = GUARDS[op.domains[0]](draw, a), GUARDS[op.domains[1]](draw, b)
        if op.name in TIE_KINKED:
            b = _untie(draw, a, b)
        return _node(op.fn, [a, b], f"{op.name}({a.text}, {b.text})", [op.name], op.smooth)

    return build


def _where(draw, rng, a: Node, b: Node) -> Node:
    mask = rng.random(np.broadcast_shapes(a.shape, b.shape)) < 0.5
    return _node(lambda p, q: gt.where(mask, p, q), [a, b], f"where(<mask>, {a.text}, {b.text})",
                 ["where"])


def _matmul(draw, rng, a: Node, b: Node) -> Node:
    """``a @ b`` in whichever layout fits the shapes, else ``a`` times a constant matrix."""
    sa, sb, k = a.shape, b.shape, a.shape[-1]
    layouts = []
    for ta, tb in itertools.product([False, True], repeat=2):
        if (ta and len(sa) < 2) or (tb and len(sb) < 2) or not sb:
            continue
        inner_a = sa[-2] if ta else sa[-1]
        inner_b = sb[-1] if tb else (sb[-2] if len(sb) >= 2 else sb[-1])
        if inner_a != inner_b:
            continue
        try:
            np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            continue
        layouts.append((ta, tb))
    if layouts:
        ta, tb = draw(st.sampled_from(layouts))
        node = _node(lambda p, q: gt.matmul(p, q, transpose_a=ta, transpose_b=tb), [a, b],
                     f"matmul({a.text}, {b.text}, transpose_a={ta}, transpose_b={tb})",
                     ["matmul"])
        if node.value.size <= MAX_SIZE:
            return node
    w = rng.standard_normal((k, draw(st.integers(1, 3))))
    return _node(lambda p: gt.matmul(p, w), [a], f"matmul({a.text}, W{w.shape})", ["matmul"])


def _concat(draw, rng, a: Node, b: Node) -> Node:
    """``a`` joined with ``b`` where their shapes allow (or ``b`` broadcast to ``a``'s shape),
    else with ``a / 2``."""
    axis = draw(st.integers(-a.value.ndim, a.value.ndim - 1))
    outside = lambda s: s[: axis % len(s)] + s[axis % len(s) + 1:]  # noqa: E731
    if b.value.ndim == a.value.ndim and outside(b.shape) == outside(a.shape):
        return _node(lambda p, q: gt.concat([p, q], axis), [a, b],
                     f"concat([{a.text}, {b.text}], axis={axis})", ["concat"])
    if np.broadcast_shapes(a.shape, b.shape) == a.shape:
        return _node(lambda p, q: gt.concat([p, gt.broadcast_to(q, a.shape)], axis), [a, b],
                     f"concat([{a.text}, broadcast_to({b.text}, {a.shape})], axis={axis})",
                     ["concat", "broadcast_to"])
    return _node(lambda p: gt.concat([p, p * 0.5], axis), [a],
                 f"concat([{a.text}, {a.text} * 0.5], axis={axis})", ["concat", "multiply"])


def _cross_entropy(draw, rng, a: Node, b: Node) -> Node:
    """The cross entropy of labels ``b`` (broadcast against them) and logits ``a`` along a
    drawn axis of ``a``, else with ``a``'s own softmax as labels."""
    axis = draw(st.integers(-a.value.ndim, a.value.ndim - 1))
    xent = gt.nn.softmax_cross_entropy_with_logits
    if np.broadcast_shapes(a.shape, b.shape) == a.shape:
        return _node(lambda p, q: xent(q, p, axis), [a, b],
                     f"softmax_cross_entropy_with_logits({b.text}, {a.text}, axis={axis})",
                     ["softmax_cross_entropy_with_logits"])
    return _node(lambda p: xent(gt.softmax(p * 0.5, axis), p, axis), [a],
                 f"softmax_cross_entropy_with_logits(softmax({a.text} * 0.5), {a.text}, "
                 f"axis={axis})", ["softmax_cross_entropy_with_logits", "softmax", "multiply"])


def _always(shape):
    return True


def _has_axes(shape):
    return len(shape) >= 1


def _room(shape):
    return math.prod(shape) * 2 <= MAX_SIZE


# name -> (does it apply to an operand of this shape, builder)
ONE_CHILD = {
    **{name: (_always, _elementwise_unary(op)) for name, op in UNARY.items()},
    "reduce_sum": (_always, _reduction("reduce_sum", gt.reduce_sum)),
    "reduce_mean": (_always, _reduction("reduce_mean", gt.reduce_mean)),
    "reduce_max": (_always, _reduction("reduce_max", gt.reduce_max, "max")),
    "reduce_min": (_always, _reduction("reduce_min", gt.reduce_min, "min")),
    "reduce_prod": (_always, _reduction("reduce_prod", gt.reduce_prod, max_count=4)),
    "reduce_logsumexp": (_always, _reduction("reduce_logsumexp", gt.reduce_logsumexp)),
    "reshape": (_always, _reshape),
    "transpose": (lambda s: len(s) >= 2, _transpose),
    "broadcast_to": (lambda s: _room(s) and len(s) <= 3, _broadcast_to),
    "tile": (lambda s: _room(s) and len(s) >= 1, _tile),
    "getitem": (_has_axes, _getitem),
    "sum_to": (_has_axes, _sum_to),
    "softmax": (_has_axes, _along_axis("softmax", gt.softmax)),
    "log_softmax": (_has_axes, _along_axis("log_softmax", gt.log_softmax)),
    "custom_gradient": (_always, _custom),
    "cumsum": (_has_axes, _scan("cumsum", gt.cumsum)),
    "cumprod": (lambda s: _has_axes(s) and max(s) <= 4, _scan("cumprod", gt.cumprod)),
    "take_along_axis": (_has_axes, _sort),
    "einsum_1": (lambda s: 1 <= len(s) <= 4, _einsum_transpose),
    "einsum": (lambda s: 1 <= len(s) <= 4 and _room(s), _einsum_product),
    "diag_part": (lambda s: len(s) >= 2, _diag_part),
    "matrix_diag": (lambda s: _has_axes(s) and math.prod(s) * s[-1] <= MAX_SIZE, _diag),
}
TWO_CHILD = {
    **{name: (_always, _elementwise_binary(op)) for name, op in BINARY.items()},
    "where_mask": (_always, _where),
    "matmul": (_has_axes, _matmul),
    "concat": (lambda s: _has_axes(s) and _room(s), _concat),
    "softmax_cross_entropy_with_logits": (_has_axes, _cross_entropy),
}

SQUARE = ("well-conditioned square matrices: the spec table's cases (tests/op_specs.py), "
          "not random expressions")
IMAGES = ("4-d images and filters: the spec table's convolutions and pools, not random "
          "expressions")
COMPOSITES = {"reduce_logsumexp"}  # drawn, but made of other primitives (as in TF)
DRAWN = {{"where_mask": "where"}.get(n, n)
         for n in [*ONE_CHILD, *TWO_CHILD] if n not in COMPOSITES}  # primitives called by name
# Reached only through other ops' gradients, or through the fused route (the cpu-fused device).
INTERNAL = {"extract_patches": IMAGES, "patches_transpose": IMAGES,
            "inv": SQUARE, "solve": SQUARE, "det": SQUARE, "logabsdet": SQUARE,
            "cholesky": SQUARE, "triangular_solve": SQUARE,
            "scatter": "the gradient of getitem",
            "put_along_axis": "the gradient of take_along_axis (sort)", "mul_grad": "fused route",
            "mul_grad_pair": "fused route", "square_grad": "fused route",
            "pow_grad_x": "fused route", "pow_grad_p": "fused route"}


NOT_SMOOTH = {n for n, op in [*UNARY.items(), *BINARY.items()] if not op.smooth} | {
    "reduce_max", "reduce_min"}

# Swarm testing: each example draws from a few ops of each family (the head of a permutation
# seeded like its inputs), so that over the examples every op meets many neighbours, and itself.
FAMILIES = {
    "unary": [n for n in ONE_CHILD if n in UNARY],
    "one operand": [n for n in ONE_CHILD if n not in UNARY],
    "binary": [n for n in TWO_CHILD if n in BINARY],
    "two operands": [n for n in TWO_CHILD if n not in BINARY],
}
SWARM = 4


def _pick(draw, swarm: dict, families: tuple, table: dict, shape: tuple):
    """A builder that fits ``shape``, from the head of one of ``families`` in ``swarm``."""
    names = [n for n in swarm[draw(st.sampled_from(families))] if table[n][0](shape)]
    return table[draw(st.sampled_from(names[:SWARM]))][1]


def _build(draw, rng, swarm: dict, leaves: list, depth: int, root: bool = False) -> Node:
    if depth == 0 or (not root and draw(st.integers(0, 5)) == 0):
        return draw(st.sampled_from(leaves))
    if draw(st.booleans()):  # one operand
        x = _build(draw, rng, swarm, leaves, depth - 1)
        build = _pick(draw, swarm, ("unary", "one operand"), ONE_CHILD, x.shape)
        return build(draw, rng, x)
    a = _build(draw, rng, swarm, leaves, depth - 1)
    b = _build(draw, rng, swarm, leaves, depth - 1)
    try:
        fits = math.prod(np.broadcast_shapes(a.shape, b.shape)) <= MAX_SIZE
    except ValueError:
        fits = False
    if not fits:  # operands that do not broadcast meet as a tensor and a scalar
        b = _node(gt.reduce_sum, [b], f"reduce_sum({b.text})", ["reduce_sum"])
    return _pick(draw, swarm, ("binary", "two operands"), TWO_CHILD, a.shape)(draw, rng, a, b)


# -- the strategy ---------------------------------------------------------------------------


@dataclass
class Case:
    inputs: list  # float64 arrays
    root: Node
    weights: np.ndarray  # the fixed w of reduce_sum(y * w)
    seed: int

    def __call__(self, *xs):
        return gt.reduce_sum(evaluate(self.root, xs) * self.weights)

    def __repr__(self) -> str:
        shapes = ", ".join(f"x{i}: {a.shape}" for i, a in enumerate(self.inputs))
        return f"Case(seed={self.seed}, {shapes}, y={self.root.text})"

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis shows a failing case
        printer.text(repr(self))


@st.composite
def input_shapes(draw):
    """One or two shapes that broadcast together: suffixes of one full shape, some dims 1."""
    rank = max(draw(st.integers(0, 3)), draw(st.integers(0, 3)))  # rank 0 stays rarer
    full = [max(draw(st.integers(1, 4)), draw(st.integers(1, 4))) for _ in range(rank)]
    shapes = []
    for i in range(draw(st.integers(1, 2))):
        tail = full[draw(st.integers(0, len(full))):] if i else full
        shapes.append(tuple(1 if draw(st.integers(0, 4)) == 0 else d for d in tail))
    return shapes


@st.composite
def cases(draw, depth: int = MAX_DEPTH, inject: "Callable | None" = None, smooth: bool = False):
    """A drawn expression and its input point. With ``inject``, the expression is
    ``outer(inject(inner(x)))`` for drawn ``outer`` and ``inner`` of ``depth`` levels each; with
    ``smooth``, it uses smooth ops only."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(s) for s in draw(input_shapes())]
    leaves = [Node(None, (), np.asarray(v), f"x{i}", frozenset(), True, i)
              for i, v in enumerate(inputs)]
    swarm = {family: [n for n in rng.permutation(names) if not (smooth and n in NOT_SMOOTH)]
             for family, names in FAMILIES.items()}
    root = _build(draw, rng, swarm, leaves, depth, root=True)
    if inject is not None:
        middle = _node(inject, [root], f"{inject.__name__}({root.text})", ["custom_gradient"])
        root = _build(draw, rng, swarm, [middle], depth, root=True)
    return Case(inputs, root, rng.standard_normal(root.shape), seed)


# -- the properties --------------------------------------------------------------------------


def _check(case: Case) -> None:
    gt.testing.check_gradients(case, *case.inputs, order=1, rtol=1e-5, atol=1e-6)
    if case.root.smooth:
        gt.testing.check_gradients(case, *case.inputs, order=2, rtol=1e-4, atol=1e-5)


# Two test functions, not one parametrized: hypothesis derandomizes per function, so each
# device variant draws its own 150 expressions (300 in all, for the price of 150 each).
@pytest.mark.parametrize("device", ["cpu"], indirect=True)
@settings(PROPERTY_SETTINGS, max_examples=150)
@given(case=cases())
def test_random_expressions_match_finite_differences(case, device):
    _check(case)


@pytest.mark.parametrize("device", ["cpu-fused"], indirect=True)
@settings(PROPERTY_SETTINGS, max_examples=150)
@given(case=cases())
def test_random_expressions_match_finite_differences_through_fused_rules(case, device):
    _check(case)


@gt.custom_gradient
def cubic(x):
    """``x + x**3 / 3``, whose derivative ``1 + x**2`` is never 0."""
    return x + x * x * x / 3, lambda g: g * (1 + x * x)


@gt.custom_gradient
def cubic_off(x):  # its rule is 0.1% off
    return x + x * x * x / 3, lambda g: g * (1 + x * x) * 1.001


@gt.custom_gradient
def cubic_flat(x):  # its rule is right, but has no derivative of its own (misses 2x)
    return x + x * x * x / 3, lambda g: g * (1 + gt.stop_gradient(x * x))


@settings(PROPERTY_SETTINGS, max_examples=20)
@given(case=cases(depth=2, inject=cubic, smooth=True))
def test_a_wrong_rule_inside_a_drawn_expression_is_caught(case):
    """The property above can fail: it holds for ``outer(cubic(inner(x)))``, and swapping in a
    rule 0.1% off fails at first order, a rule with no second derivative at second order."""
    _, numeric = gt.testing.compute_gradient(case, case.inputs)
    assume(max(np.max(np.abs(n)) for n in numeric) > 1e-2)  # y depends on the inputs

    def swapped(op):
        return lambda *xs: gt.reduce_sum(evaluate(case.root, xs, {cubic: op}) * case.weights)

    assert case.root.smooth
    gt.testing.check_gradients(case, *case.inputs, order=2, rtol=1e-4, atol=1e-5)
    with pytest.raises(AssertionError, match="order 1"):
        gt.testing.check_gradients(swapped(cubic_off), *case.inputs, rtol=1e-5, atol=1e-6)
    gt.testing.check_gradients(swapped(cubic_flat), *case.inputs, rtol=1e-5, atol=1e-6)
    with pytest.raises(AssertionError, match="order 2"):
        gt.testing.check_gradients(swapped(cubic_flat), *case.inputs, order=2, rtol=1e-4,
                                   atol=1e-5)


# -- the strategy itself ----------------------------------------------------------------------


def test_the_tables_cover_the_registry():
    registered = {p.name for p in differentiable_primitives()}
    assert DRAWN <= registered, f"tables name unregistered primitives: {DRAWN - registered}"
    missing = registered - DRAWN - set(INTERNAL)
    assert not missing, f"primitives the expressions never draw: {sorted(missing)}"
    assert not DRAWN & set(INTERNAL)
    assert len(DRAWN) >= 0.8 * len(registered)
    # The harvest from op_specs found the elementwise families.
    assert {"exp", "log", "sqrt", "tan", "relu", "abs", "cast", "copy_to_device"} <= set(UNARY)
    assert {"add", "subtract", "multiply", "divide", "pow", "maximum", "minimum"} <= set(BINARY)


def test_every_kink_and_domain_has_a_guard():
    """A new op whose domain or kink the guards do not know must be taught to them here."""
    for op in [*UNARY.values(), *BINARY.values()]:
        for domain in op.domains:
            assert domain in GUARDS, f"{op.name}: no guard for domain {domain.__name__}"
    for op in UNARY.values():
        if not op.smooth:  # a non-smooth unary op kinks at 0, or steps (floor, round)
            assert op.domains[0] in (away_from_zero, between_steps), (
                f"{op.name}: where is its kink?")
    kinked = {op.name for op in BINARY.values() if not op.smooth}
    assert kinked == TIE_KINKED | STEPPED, f"non-smooth binary ops whose kink is unknown: {kinked}"
    for name in STEPPED:  # their steps are where x / y is an integer: the guards keep it off
        assert BINARY[name].domains == (between_steps, large), name


def test_drawn_expressions_reach_the_tables():
    seen: set = set()
    shapes: set = set()

    @settings(PROPERTY_SETTINGS, max_examples=400)
    @given(case=cases())
    def collect(case):
        seen.update(case.root.ops)
        shapes.update(a.shape for a in case.inputs)

    collect()
    unseen = DRAWN - seen
    assert len(unseen) <= 2, f"ops the profile never drew: {sorted(unseen)}"
    assert () in shapes and {len(s) for s in shapes} == {0, 1, 2, 3}
