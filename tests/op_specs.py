"""One spec per differentiable primitive: how to call it and on which inputs.

Each spec lists cases ``(function, input shapes)``; inputs are drawn from ``domain``. The
gradient tests run every case on every device, in float64 against finite differences (first
order, and second order for smooth ops) and in float32 against float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import gputape as gt
from gputape.core.dispatch import apply
from gputape.cuda import fused
from gputape.ops import sorting
from gputape.ops.indexing import SCATTER

BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3))]
UNARY_SHAPES = [(), (5,), (2, 3)]


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def between_steps(rng, shape):
    """Fractional parts in 0.1..0.4: away from floor's and round's jumps."""
    return rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.4, shape)


def small(rng, shape):
    return rng.uniform(-1.2, 1.2, shape)


def inside_unit(rng, shape):
    """In (-0.8, 0.8): away from the ends of asin's, acos' and atanh's domains."""
    return rng.uniform(-0.8, 0.8, shape)


def above_one(rng, shape):
    return rng.uniform(1.2, 3.0, shape)


def well_conditioned(rng, shape):
    """Square matrices near twice the identity: far from singular."""
    return 2 * np.eye(shape[-1]) + 0.3 * rng.standard_normal(shape)


def _spd(a):
    """A symmetric positive definite matrix made of ``a`` (differentiably): a a^T + 3 I."""
    n = a.shape[-1]
    return gt.matmul(a, a, transpose_b=True) + 3.0 * gt.eye(n, dtype=a.dtype)


def large(rng, shape):
    """In 3..5: a divisor of floordiv and floormod there, with a dividend between steps (in
    -2.85..2.35, never near 0), keeps the quotient's floor away from its jumps."""
    return rng.uniform(3.0, 5.0, shape)


@dataclass
class Spec:
    cases: list
    domains: tuple = (normal,)  # one per input; the last repeats
    smooth: bool = True  # second-order check applies

    def domain(self, i):
        return self.domains[min(i, len(self.domains) - 1)]


def unary(fn, domain=normal, smooth=True, shapes=UNARY_SHAPES):
    return Spec([(fn, (s,)) for s in shapes], (domain,), smooth)


def binary(fn, domains=(normal,), smooth=True):
    return Spec([(fn, shapes) for shapes in BINARY_SHAPES], domains, smooth)


def _custom_cube():
    @gt.custom_gradient
    def cube(x):
        def grad(upstream):
            return upstream * 3 * x * x

        return x * x * x, grad

    return cube


_MASK = np.array([[True, False, True, True], [False, True, False, False], [True] * 4])


def _fused_case(prim, shape, batch=0):
    return lambda *args: apply(prim, *args, shape=shape, batch=batch)


def _pair_case(shape, batch=0):
    def pair(g, x, y):
        out = apply(fused.MUL_GRAD_PAIR, g, x, y, shape=shape, batch=batch)
        return out[0] * out[1] + out[1]

    return pair


def _where(x, y):
    mask = _MASK[: x.shape[0]] if x.ndim == 2 and x.shape == (3, 4) else np.asarray(True)
    return gt.where(mask, x, y)


SPECS: "dict[str, Spec]" = {
    "add": binary(gt.add),
    "subtract": binary(gt.subtract),
    "multiply": binary(gt.multiply),
    "divide": binary(gt.divide, (normal, away_from_zero)),
    "pow": Spec([(gt.pow, s) for s in BINARY_SHAPES] + [(lambda x: x ** 3, ((4,),)),
                                                        (lambda x: gt.pow(x, 2.5), ((4,),))],
                (positive, small)),
    "maximum": binary(gt.maximum, smooth=False),
    "minimum": binary(gt.minimum, smooth=False),
    "where": binary(_where),
    "negative": unary(gt.negative),
    "square": unary(gt.square),
    "sqrt": unary(gt.sqrt, positive),
    "exp": unary(gt.exp),
    "log": unary(gt.log, positive),
    "log1p": unary(gt.log1p, positive),
    "expm1": unary(gt.expm1),
    "sin": unary(gt.sin),
    "cos": unary(gt.cos),
    "tan": unary(gt.tan, small),
    "atan": unary(gt.atan),
    "tanh": unary(gt.tanh),
    "sigmoid": unary(gt.sigmoid),
    "softplus": unary(gt.softplus),
    "relu": unary(gt.relu, away_from_zero, smooth=False),
    "step": unary(lambda x: x * gt.relu(x), away_from_zero, smooth=False),
    "abs": unary(gt.abs, away_from_zero, smooth=False),
    "asin": unary(gt.asin, inside_unit),
    "acos": unary(gt.acos, inside_unit),
    "atan2": binary(gt.atan2, (normal, away_from_zero)),
    "sinh": unary(gt.sinh),
    "cosh": unary(gt.cosh),
    "asinh": unary(gt.asinh),
    "acosh": unary(gt.acosh, above_one),
    "atanh": unary(gt.atanh, inside_unit),
    "erf": unary(gt.erf),
    "erfc": unary(gt.erfc),
    "reciprocal": unary(gt.reciprocal, away_from_zero),
    "rsqrt": unary(gt.rsqrt, positive),
    "squared_difference": binary(gt.squared_difference),
    "divide_no_nan": binary(gt.divide_no_nan, (normal, away_from_zero)),
    "xlogy": binary(gt.xlogy, (away_from_zero, positive)),
    "xdivy": binary(gt.xdivy, (away_from_zero, away_from_zero)),
    "floormod": binary(gt.floormod, (between_steps, large), smooth=False),
    "floordiv": binary(lambda x, y: x * gt.floordiv(x, y), (between_steps, large), smooth=False),
    "cumsum": Spec([(gt.cumsum, ((5,),)),
                    (lambda x: gt.cumsum(x, axis=1, exclusive=True), ((3, 4),)),
                    (lambda x: gt.cumsum(x, axis=0, reverse=True), ((3, 4),)),
                    (lambda x: gt.cumsum(x, axis=-1, exclusive=True, reverse=True), ((2, 3),))]),
    "cumprod": Spec([(gt.cumprod, ((5,),)),
                     (lambda x: gt.cumprod(x, axis=1, exclusive=True), ((3, 4),)),
                     (lambda x: gt.cumprod(x, axis=0, reverse=True, exclusive=True), ((3, 4),))],
                    (away_from_zero,)),
    "einsum": Spec([(lambda a, b: gt.einsum("ij,jk->ik", a, b), ((2, 3), (3, 4))),
                    (lambda a, b: gt.einsum("bi,bi->b", a, b), ((3, 4), (3, 4))),
                    (lambda a, b: gt.einsum("ij,k->ikj", a, b), ((2, 3), (2,))),
                    (lambda a, b: gt.einsum("ijk,j->", a, b), ((2, 3, 2), (3,)))]),
    "einsum_1": Spec([(lambda a: gt.einsum("ij->ji", a), ((2, 3),)),
                      (lambda a: gt.einsum("ijk->j", a), ((2, 3, 2),))]),
    "diag_part": Spec([(gt.linalg.diag_part, ((3, 3),)), (gt.linalg.diag_part, ((2, 4, 3),)),
                       (gt.linalg.trace, ((2, 3, 3),))]),
    "matrix_diag": Spec([(gt.linalg.diag, ((3,),)), (gt.linalg.diag, ((2, 2),))]),
    "inv": Spec([(gt.linalg.inv, ((3, 3),)), (gt.linalg.inv, ((2, 2, 2),))], (well_conditioned,)),
    "solve": Spec([(gt.linalg.solve, ((3, 3), (3, 2))), (gt.linalg.solve, ((2, 2, 2), (2, 2, 1)))],
                  (well_conditioned, normal)),
    "det": Spec([(gt.linalg.det, ((3, 3),)), (gt.linalg.det, ((2, 2, 2),))], (well_conditioned,)),
    "logabsdet": Spec([(lambda a: gt.linalg.slogdet(a)[1], ((3, 3),))], (well_conditioned,)),
    "cholesky": Spec([(lambda a: gt.linalg.cholesky(_spd(a)), ((3, 3),)),
                      (lambda a: gt.linalg.cholesky(_spd(a)), ((2, 2, 2),))]),
    "triangular_solve": Spec(
        [(lambda a, b: gt.linalg.triangular_solve(a, b), ((3, 3), (3, 2))),
         (lambda a, b: gt.linalg.triangular_solve(a, b, lower=False, adjoint=True),
          ((3, 3), (3, 1)))], (well_conditioned, normal)),
    # (a convolution gathers windows, extract_patches, and its gradient adds them back)
    "extract_patches": Spec([
        (lambda x, w: gt.nn.conv2d(x, w, 1, "VALID"), ((2, 4, 4, 2), (3, 3, 2, 3))),
        (lambda x, w: gt.nn.conv2d(x, w, 2, "SAME"), ((1, 5, 5, 1), (3, 3, 1, 2))),
        (lambda x, w: gt.nn.conv2d(x, w, 1, "SAME", dilations=2), ((1, 5, 4, 1), (2, 2, 1, 1))),
        (lambda x: gt.nn.max_pool2d(x, 2, 2, "VALID"), ((1, 4, 4, 2),)),
        (lambda x: gt.nn.avg_pool2d(x, 3, 2, "SAME"), ((1, 5, 5, 1),))]),
    "patches_transpose": Spec([
        (lambda x, w: gt.nn.conv2d_transpose(x, w, (1, 5, 5, 2), 2, "SAME"),
         ((1, 3, 3, 1), (3, 3, 2, 1))),
        (lambda x, w: gt.nn.conv2d_transpose(x, w, (2, 4, 4, 1), 1, "VALID"),
         ((2, 2, 2, 3), (3, 3, 1, 3)))]),
    # (sort and top_k take their values by index: take_along_axis; its transpose put_along_axis)
    "take_along_axis": Spec([(gt.sort, ((6,),)),
                             (lambda x: gt.sort(x, axis=0, direction="DESCENDING"), ((4, 3),)),
                             (lambda x: gt.top_k(x, k=2).values, ((3, 5),))]),
    "put_along_axis": Spec([(lambda g: apply(sorting.PUT, g, indices=np.array([[2, 0], [1, 3]]),
                                             axis=-1, shape=(2, 4)), ((2, 2),))]),
    "sign": unary(lambda x: x * gt.sign(x), away_from_zero, smooth=False),
    # on real inputs (the complex convention has its own checks: test_tf_contract_complex.py)
    "conj": unary(gt.conj),
    "real": unary(gt.real),
    "imag": unary(lambda x: x + gt.imag(x)),
    # recorded with a None gradient: only the factor x carries one
    "floor": unary(lambda x: x * gt.floor(x), between_steps, smooth=False),
    "round": unary(lambda x: x * gt.round(x), between_steps, smooth=False),
    "identity": unary(gt.identity),
    "cast": unary(lambda x: gt.cast(gt.cast(x, "float64") ** 2, x.dtype)),
    "reduce_sum": Spec([
        (gt.reduce_sum, ((2, 3, 4),)),
        (lambda x: gt.reduce_sum(x, axis=1), ((2, 3, 4),)),
        (lambda x: gt.reduce_sum(x, axis=(0, 2), keepdims=True), ((2, 3, 4),)),
        (lambda x: gt.reduce_sum(x * x, axis=-1), ((3, 2),)),
        (gt.reduce_sum, ((),)),
    ]),
    "reduce_max": Spec([
        (gt.reduce_max, ((3, 4),)),
        (lambda x: gt.reduce_max(x, axis=0), ((3, 4),)),
        (lambda x: gt.reduce_max(x, axis=-1, keepdims=True), ((2, 3, 2),)),
    ], smooth=False),
    "reduce_min": Spec([
        (gt.reduce_min, ((3, 4),)),
        (lambda x: gt.reduce_min(x, axis=(0, 2)), ((2, 3, 2),)),
    ], smooth=False),
    "reduce_prod": Spec([
        (gt.reduce_prod, ((5,),)),
        (lambda x: gt.reduce_prod(x, axis=1), ((3, 4),)),
        (lambda x: gt.reduce_prod(x, axis=0, keepdims=True), ((2, 3),)),
    ], (away_from_zero,)),
    "reduce_mean": Spec([
        (gt.reduce_mean, ((2, 3, 4),)),
        (lambda x: gt.reduce_mean(x * x, axis=1), ((2, 3, 4),)),
        (lambda x: gt.reduce_mean(x, axis=(0, 2), keepdims=True), ((2, 3, 4),)),
        (gt.reduce_mean, ((),)),
    ]),
    "sum_to": Spec([
        (lambda x: gt.sum_to(x, (1, 4)), ((3, 4),)),
        (lambda x: gt.sum_to(x * x, (4,)), ((2, 3, 4),)),
        # many leading rows: summed by BLAS on the host, also when un-broadcasting a bias
        (lambda x: gt.sum_to(x * x, (1, 3)), ((4, 5, 3),)),
        (lambda x: gt.sin(x[:, :3] + x[0, 3:]), ((20, 6),)),
    ]),
    # The fused gradient primitives: (g, operands) -> sum_to(map, shape), g leading.
    "mul_grad": Spec([
        (_fused_case(fused.MUL_GRAD, (4,)), ((3, 4), (3, 4))),
        (_fused_case(fused.MUL_GRAD, (3, 4)), ((3, 4), (4,))),
        (_fused_case(fused.MUL_GRAD, (1, 4)), ((2, 3, 4), (3, 1))),
        (_fused_case(fused.MUL_GRAD, (4,), batch=1), ((2, 3, 4), (4,))),
        (_fused_case(fused.MUL_GRAD, ()), ((), (2, 3))),
    ]),
    "mul_grad_pair": Spec([
        (_pair_case((3, 4)), ((3, 4), (3, 4), (3, 4))),
        (_pair_case((4,)), ((2, 4), (4,), (4,))),
        (_pair_case((3, 1), batch=1), ((2, 3, 4), (3, 1), (3, 1))),
    ]),
    "square_grad": Spec([
        (_fused_case(fused.SQUARE_GRAD, (3, 4)), ((3, 4), (3, 4))),
        (_fused_case(fused.SQUARE_GRAD, (1, 4)), ((2, 3, 4), (1, 4))),
    ]),
    "pow_grad_x": Spec([
        (_fused_case(fused.POW_GRAD_X, (3, 4)), ((3, 4), (3, 4), ())),
        (_fused_case(fused.POW_GRAD_X, (4,)), ((3, 4), (4,), (3, 1))),
        (_fused_case(fused.POW_GRAD_X, (4,), batch=1), ((2, 4), (4,), (4,))),
    ], (normal, positive, small)),
    "pow_grad_p": Spec([
        (_fused_case(fused.POW_GRAD_P, ()), ((3, 4), (3, 4), ())),
        (_fused_case(fused.POW_GRAD_P, (3, 1)), ((3, 4), (4,), (3, 1))),
        (_fused_case(fused.POW_GRAD_P, (4,), batch=1), ((2, 4), (4,), (4,))),
    ], (normal, positive, small)),
    "reshape": Spec([
        (lambda x: gt.reshape(x, (4, 3)) * gt.range(3, dtype=x.dtype), ((3, 4),)),
        (lambda x: gt.reshape(x, (-1,)), ((2, 3),)),
    ]),
    "transpose": Spec([
        (lambda x: gt.transpose(x) * gt.range(3, dtype=x.dtype), ((3, 4),)),
        (lambda x: gt.transpose(x * x, (1, 2, 0)), ((2, 3, 4),)),
    ]),
    "broadcast_to": Spec([
        (lambda x: gt.broadcast_to(x, (2, 3, 4)) * gt.range(4, dtype=x.dtype), ((3, 1),)),
        (lambda x: gt.broadcast_to(x * x, (3, 2)), ((2,),)),
    ]),
    "concat": Spec([
        (lambda x, y: gt.concat([x, y * y, x], axis=0), ((2, 3), (1, 3))),
        (lambda x, y: gt.concat([x, y], axis=-1), ((2, 3), (2, 2))),
    ]),
    "tile": Spec([
        (lambda x: gt.tile(x, [2, 3]) * gt.range(6, dtype=x.dtype), ((2, 2),)),
    ]),
    "getitem": Spec([
        (lambda x: x[1] * x[2], ((3, 4),)),
        (lambda x: x[:, ::2] * x[:, 1::2], ((3, 4),)),
        (lambda x: x[np.array([0, 2, 0])] * x[np.array([1, 1, 2])], ((3, 4),)),
        (lambda x: x[..., 1:] * x[None, 0, :3], ((3, 4),)),
        (lambda x: x[x > 0] ** 2, ((3, 4),)),
        (lambda x: gt.gather(x * x, [3, 0, 3], axis=1), ((2, 4),)),
    ]),
    "scatter": Spec([
        (lambda g: apply(SCATTER, g * g, index=(np.array([0, 2, 0]),), shape=(4,), out_ndim=1),
         ((3,),)),
        (lambda g: apply(SCATTER, g * g, index=(slice(None), 1), shape=(2, 3), out_ndim=1),
         ((2,),)),
    ]),
    "copy_to_device": unary(lambda x: (x * x).to("cpu").to(x.device)),
    "matmul": Spec([
        (gt.matmul, ((3, 4), (4, 2))),
        (gt.matmul, ((2, 3, 4), (4, 5))),
        (gt.matmul, ((2, 1, 3, 4), (3, 4, 2))),
        (lambda a, b: a @ b, ((4,), (4, 3))),
        (lambda a, b: gt.matmul(a, b, transpose_a=True, transpose_b=True), ((4, 3), (2, 4))),
        (lambda a, b: gt.matmul(a, b, transpose_a=True), ((4, 3), (4, 2))),
        (lambda a, b: gt.matmul(a, b, transpose_b=True), ((3, 4), (2, 4))),
        (lambda a, b: gt.matmul(a, b, transpose_a=True), ((2, 4, 3), (4, 5))),
        (lambda a, b: gt.matmul(a, b, transpose_b=True), ((3, 4), (2, 5, 4))),
    ]),
    "softmax": Spec([
        (lambda x: gt.softmax(x) * gt.range(4, dtype=x.dtype), ((3, 4),)),
        (lambda x: gt.softmax(x, axis=0) ** 2, ((3, 4),)),
        # many short rows: the row maxima column by column
        (lambda x: gt.softmax(x) * gt.range(2, dtype=x.dtype), ((70, 2),)),
    ]),
    "log_softmax": Spec([
        (lambda x: gt.log_softmax(x) * gt.range(4, dtype=x.dtype), ((3, 4),)),
        (lambda x: gt.log_softmax(x) * gt.range(3, dtype=x.dtype), ((150, 3),)),
    ]),
    "softmax_cross_entropy_with_logits": Spec([
        (gt.nn.softmax_cross_entropy_with_logits, ((3, 4), (3, 4))),
        (lambda x: gt.nn.softmax_cross_entropy_with_logits(gt.softmax(x), x * 2), ((2, 3),)),
        (lambda lab, x: gt.nn.softmax_cross_entropy_with_logits(lab, x, axis=0), ((3, 4), (3, 4))),
        (lambda lab, x: gt.nn.softmax_cross_entropy_with_logits(lab, x, axis=-2),
         ((2, 3, 4), (3, 4))),
        # labels broadcast along the classes, and along the examples
        (gt.nn.softmax_cross_entropy_with_logits, ((3, 1), (3, 4))),
        (gt.nn.softmax_cross_entropy_with_logits, ((4,), (3, 4))),
        # many short rows: the row maxima column by column
        (gt.nn.softmax_cross_entropy_with_logits, ((150, 3), (150, 3))),
    ]),
    "custom_gradient": Spec([(lambda x: _custom_cube()(x), ((3,),))]),
}


def cases():
    """``(spec name, case index)`` pairs, for parametrization."""
    return [(name, i) for name, spec in SPECS.items() for i in range(len(spec.cases))]


def inputs(name: str, index: int, dtype, rng, device):
    spec = SPECS[name]
    fn, shapes = spec.cases[index]
    arrays = [np.asarray(spec.domain(i)(rng, shape), dtype=dtype) for i, shape in enumerate(shapes)]
    return fn, [gt.constant(a, device=device) for a in arrays], arrays


