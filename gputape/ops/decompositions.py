"""``tf.linalg``: einsum and tensordot, diagonals and bands, the inverse, solves, determinants,
the Cholesky factor and norms, each primitive's forward beside its gradient (TensorFlow's
formulas: matrix calculus with the factors the forward computed). Batched over leading
dimensions like ``matmul``.
"""

from __future__ import annotations

import numbers
import string

from ..core.dispatch import apply
from ..core.errors import ArgumentError, ShapeError
from ..core.registry import defvjp, primitive
from ._axes import as_tensor
from .elementwise import abs, cast, conj, log, sqrt
from .linalg import matmul
from .reduction import reduce_max, reduce_sum
from .shape import expand_dims, matrix_transpose, reshape

# At the top level, as tf.einsum, tf.tensordot and tf.norm; all of them under gt.linalg.
__all__ = ["einsum", "norm", "tensordot"]
LINALG = [
    "adjoint", "band_part", "cholesky", "cholesky_solve", "det", "diag", "diag_part", "einsum",
    "inv", "logdet", "norm", "slogdet", "solve", "tensordot", "trace", "triangular_solve",
]

# -- einsum ---------------------------------------------------------------------------------


def _einsum_grad(g, ans, *operands, equation, which):
    """The cotangent of operand ``which``: the einsum of the output's cotangent with the other
    operands, into this operand's subscripts; subscripts found nowhere else (summed away by
    the forward) are restored by broadcasting."""
    inputs, output = equation.split("->")
    subs = inputs.split(",")
    mine = subs[which]
    others = [s for i, s in enumerate(subs) if i != which]
    present = set(output).union(*others)
    kept = "".join(c for c in mine if c in present)
    terms = [output, *others]
    rest = [op for i, op in enumerate(operands) if i != which]
    partial = apply(EINSUM if rest else EINSUM1, g, *rest,
                    equation=f"{','.join(terms)}->{kept}")
    if kept == mine:
        return partial
    shape = operands[which].shape
    for position, c in enumerate(mine):
        if c not in present:
            partial = expand_dims(partial, position)
    from .shape import broadcast_to

    return broadcast_to(partial, shape)


def _einsum_rules(count: int):
    return [(lambda which: lambda g, ans, *ops, equation: _einsum_grad(
        g, ans, *ops, equation=equation, which=which))(i) for i in range(count)]


EINSUM = primitive("einsum", lambda xp, *ops, equation: xp.einsum(equation, *ops),
                   ("a", "b"), batchable=False)
EINSUM1 = primitive("einsum_1", lambda xp, a, equation: xp.einsum(equation, a), ("a",),
                    batchable=False)
defvjp(EINSUM, *_einsum_rules(2))
defvjp(EINSUM1, *_einsum_rules(1))


def _check_equation(equation: str, operands: list) -> str:
    if not isinstance(equation, str):
        raise ArgumentError(f"einsum: equation must be a string such as 'ij,jk->ik', got "
                            f"{type(equation).__name__}")
    equation = equation.replace(" ", "")
    if "..." in equation:
        raise ArgumentError("einsum: ellipses ('...') are not supported yet; hint: name each "
                            "dimension with a letter")
    inputs, arrow, output = equation.partition("->")
    subs = inputs.split(",")
    if not arrow:  # NumPy's implicit output: the letters seen once, in order
        letters = "".join(subs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(subs) != len(operands) or len(operands) not in (1, 2):
        raise ArgumentError(f"einsum: {equation!r} names {len(subs)} operand(s) but "
                            f"{len(operands)} were given (gputape's einsum takes one or two)")
    for s, op in zip(subs, operands):
        if len(s) != op.ndim or not set(s) <= set(string.ascii_letters):
            raise ShapeError(f"einsum: subscripts {s!r} do not fit an operand of shape "
                             f"{op.shape}; hint: one letter per dimension")
        if len(set(s)) != len(s):
            raise ArgumentError(f"einsum: a repeated subscript within one operand ({s!r}, a "
                                f"diagonal) is not supported yet; hint: gt.linalg.diag_part")
    return f"{','.join(subs)}->{output}"


def einsum(equation, *inputs):
    """Einstein summation over one or two operands (``tf.einsum``): ``'ij,jk->ik'`` is a
    matrix product, ``'ij->ji'`` a transpose, ``'bi,bi->b'`` row-wise dot products.

    >>> import gputape as gt
    >>> gt.linalg.einsum("ij,j->i", [[1.0, 2.0], [3.0, 4.0]], [1.0, 1.0]).numpy()
    array([3., 7.], dtype=float32)
    """
    operands = [as_tensor("einsum", "inputs", x) for x in inputs]
    equation = _check_equation(equation, operands)
    prim = EINSUM if len(operands) == 2 else EINSUM1
    return apply(prim, *operands, equation=equation)


def tensordot(a, b, axes):
    """The sum over ``axes`` of ``a``'s and ``b``'s products (``tf.tensordot``): an int ``n``
    (``a``'s last ``n`` with ``b``'s first ``n``) or a pair of axis lists.

    >>> import gputape as gt
    >>> gt.linalg.tensordot(gt.ones((2, 3)), gt.ones((3, 4)), 1).shape
    (2, 4)
    """
    from ._axes import normalize_axis

    a, b = as_tensor("tensordot", "a", a), as_tensor("tensordot", "b", b)
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        if not 0 <= axes <= min(a.ndim, b.ndim):
            raise ArgumentError(f"tensordot: axes={axes} must be in 0..{min(a.ndim, b.ndim)} "
                                f"(the ranks are {a.ndim} and {b.ndim})")
        a_axes, b_axes = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    elif isinstance(axes, (list, tuple)) and len(axes) == 2:
        a_axes, b_axes = ([x] if isinstance(x, numbers.Integral) else list(x) for x in axes)
    else:
        raise ArgumentError(f"tensordot: axes must be an int or a pair of axis lists, got "
                            f"{axes!r}; hint: e.g. 1, or [[1], [0]]")
    if len(a_axes) != len(b_axes):
        raise ArgumentError(f"tensordot: {len(a_axes)} axis (axes) of a but {len(b_axes)} of "
                            f"b; hint: contract them in pairs")
    a_axes = [normalize_axis("tensordot", x, a.ndim) for x in a_axes]
    b_axes = [normalize_axis("tensordot", x, b.ndim) for x in b_axes]
    if len(set(a_axes)) != len(a_axes) or len(set(b_axes)) != len(b_axes):
        raise ArgumentError(f"tensordot: an axis is named twice in {axes!r}")
    letters = iter(string.ascii_letters)
    a_subs = [next(letters) for _ in range(a.ndim)]
    b_subs = [None] * b.ndim
    for i, j in zip(a_axes, b_axes):
        b_subs[j] = a_subs[i]
    b_subs = [s or next(letters) for s in b_subs]
    out = [s for i, s in enumerate(a_subs) if i not in a_axes] + [
        s for j, s in enumerate(b_subs) if j not in b_axes]
    return einsum(f"{''.join(a_subs)},{''.join(b_subs)}->{''.join(out)}", a, b)


# -- diagonals, bands, transposes ---------------------------------------------------------


def _diag_part_forward(xp, x):
    return xp.diagonal(x, axis1=-2, axis2=-1).copy()


def _matrix_diag_forward(xp, d, rows, cols):
    out = xp.zeros(d.shape[:-1] + (rows, cols), d.dtype)
    index = xp.arange(d.shape[-1])
    out[..., index, index] = d
    return out


DIAG_PART = primitive("diag_part", _diag_part_forward, ("input",))
MATRIX_DIAG = primitive("matrix_diag", _matrix_diag_forward, ("diagonal",))
defvjp(DIAG_PART, lambda g, ans, x: _place_diagonal(g, x.shape[-2], x.shape[-1]))
defvjp(MATRIX_DIAG, lambda g, ans, d, rows, cols: apply(DIAG_PART, g))


def _place_diagonal(d, rows: int, cols: int):
    """``rows`` x ``cols`` matrices (batched) with ``d`` (``min(rows, cols)`` long) on their
    diagonals."""
    return apply(MATRIX_DIAG, d, rows=rows, cols=cols)


def diag_part(input):  # noqa: A002 - TensorFlow's name
    """The main diagonal of each matrix (the last two dimensions).

    >>> import gputape as gt
    >>> gt.linalg.diag_part([[1.0, 2.0], [3.0, 4.0]]).numpy()
    array([1., 4.], dtype=float32)
    """
    return apply(DIAG_PART, _matrices("diag_part", input))


def diag(diagonal):
    """Square matrices with ``diagonal`` (its last dimension) on their diagonals.

    >>> import gputape as gt
    >>> gt.linalg.diag([1.0, 2.0]).numpy()
    array([[1., 0.],
           [0., 2.]], dtype=float32)
    """
    d = as_tensor("diag", "diagonal", diagonal)
    if d.ndim == 0:
        raise ArgumentError("diag: diagonal must have at least one dimension")
    return apply(MATRIX_DIAG, d, rows=d.shape[-1], cols=d.shape[-1])


def trace(x):
    """The sum of each matrix's diagonal.

    >>> import gputape as gt
    >>> float(gt.linalg.trace([[1.0, 2.0], [3.0, 4.0]]))
    5.0
    """
    return reduce_sum(diag_part(x), axis=-1)


def band_part(input, num_lower, num_upper):  # noqa: A002 - TensorFlow's name
    """Each matrix with everything outside a band around the diagonal set to 0: ``num_lower``
    subdiagonals and ``num_upper`` superdiagonals kept (-1: all of them). ``(-1, 0)`` is the
    lower triangle.

    >>> import gputape as gt
    >>> gt.linalg.band_part(gt.ones((3, 3)), 0, -1).numpy()
    array([[1., 1., 1.],
           [0., 1., 1.],
           [0., 0., 1.]], dtype=float32)
    """
    x = _matrices("band_part", input)
    num_lower, num_upper = (int(v.numpy()) if hasattr(v, "numpy") else int(v)
                            for v in (num_lower, num_upper))
    xp = x.device.xp
    rows, cols = x.shape[-2:]
    offset = xp.arange(cols)[None, :] - xp.arange(rows)[:, None]  # column - row
    keep = xp.ones((rows, cols), bool)
    if num_lower >= 0:
        keep &= offset >= -num_lower
    if num_upper >= 0:
        keep &= offset <= num_upper
    from ..core.tensor import Tensor
    from .elementwise import where

    return where(Tensor._wrap(keep), x, 0)  # (a where: inf or NaN outside the band gives 0)


def adjoint(matrix):
    """The conjugate transpose of each matrix (the transpose for real ones).

    >>> import gputape as gt
    >>> gt.linalg.adjoint(gt.constant([[1 + 2j, 3j]])).numpy()
    array([[1.-2.j],
           [0.-3.j]])
    """
    x = _matrices("adjoint", matrix)
    return conj(matrix_transpose(x)) if x.dtype.kind == "c" else matrix_transpose(x)


def _matrices(op: str, value, square: bool = False):
    x = as_tensor(op, "input", value)
    if x.ndim < 2 or (square and x.shape[-1] != x.shape[-2]):
        kind = "square matrices" if square else "matrices"
        raise ShapeError(f"{op}: expects {kind} in its last two dimensions, got shape "
                         f"{x.shape}; hint: add a dimension with gt.expand_dims or reshape")
    return x


# -- inverse, solves, determinants, Cholesky ----------------------------------------------

INV = primitive("inv", lambda xp, a: xp.linalg.inv(a), ("input",), float_only=True,
                hint="the matrix is singular or nearly so")
# TF's: -inv(A)^T g inv(A)^T
defvjp(INV, lambda g, ans, a: -matmul(ans, matmul(g, ans, transpose_b=True), transpose_a=True))

SOLVE = primitive("solve", lambda xp, a, b: xp.linalg.solve(a, b), ("matrix", "rhs"),
                  float_only=True, hint="the matrix is singular or nearly so")


def _solve_grad_rhs(g, ans, a, b):
    return solve(matrix_transpose(a), g)


defvjp(SOLVE, lambda g, ans, a, b: -matmul(_solve_grad_rhs(g, ans, a, b), ans,
                                            transpose_b=True),
       _solve_grad_rhs)

DET = primitive("det", lambda xp, a: xp.linalg.det(a), ("input",), float_only=True)
# TF's: g * det(A) * inv(A)^T
defvjp(DET, lambda g, ans, a: expand_dims(expand_dims(g * ans, -1), -1)
       * matrix_transpose(inv(a)))

LOGABSDET = primitive("logabsdet", lambda xp, a: xp.linalg.slogdet(a)[1], ("input",),
                      float_only=True)
defvjp(LOGABSDET, lambda g, ans, a: expand_dims(expand_dims(cast(g, a.dtype), -1), -1)
       * matrix_transpose(inv(a)))


def _cholesky_forward(xp, a):
    return xp.linalg.cholesky(a)


CHOLESKY = primitive("cholesky", _cholesky_forward, ("input",), float_only=True,
                     hint="the matrix is not symmetric positive definite")


def _in_tf_convention(rule):
    """A rule written as TF's (adjoints, for TF's conjugated complex gradients) in the walk's
    unconjugated convention: the cotangent goes in conjugated and the gradients come out
    conjugated (a no-op for real tensors; see gputape.autodiff.backward._conj)."""
    def unconjugated(g, ans, *inputs, **params):
        if g.dtype.kind != "c":
            return rule(g, ans, *inputs, **params)
        found = rule(conj(g), ans, *inputs, **params)
        return conj(found) if found.dtype.kind == "c" else found

    return unconjugated


def _cholesky_grad(g, ans, a):
    """TF's CholeskyGrad (Murray 2016): with L the factor, Phi(L^H g) (the lower triangle,
    its diagonal halved) between L^-H and L^-1, made Hermitian and halved."""
    n = a.shape[-1]
    from .creation import eye

    l_inverse = triangular_solve(ans, eye(n, dtype=a.dtype, device=a.device), lower=True)
    middle = matmul(adjoint(ans), g)
    middle = band_part(middle, -1, 0) - 0.5 * _place_diagonal(diag_part(middle), n, n)
    grad = matmul(matmul(adjoint(l_inverse), middle), l_inverse)
    return 0.5 * (grad + adjoint(grad))


defvjp(CHOLESKY, _in_tf_convention(_cholesky_grad))


def _triangular_forward(xp, a, b, lower, adjoint):
    if adjoint:
        a = xp.swapaxes(a, -1, -2).conj()
        lower = not lower
    mask = xp.tril(xp.ones(a.shape[-2:], bool)) if lower else xp.triu(xp.ones(a.shape[-2:],
                                                                               bool))
    return xp.linalg.solve(xp.where(mask, a, 0), b)


TRIANGULAR_SOLVE = primitive("triangular_solve", _triangular_forward, ("matrix", "rhs"),
                             float_only=True, hint="a zero on the diagonal")


def _triangular_grad_rhs(g, ans, a, b, lower, adjoint):
    return triangular_solve(a, g, lower=lower, adjoint=not adjoint)


def _triangular_grad_matrix(g, ans, a, b, lower, adjoint):
    # TF's: -grad_b x^H (x grad_b^H with adjoint), kept to the triangle the solve reads
    grad_b = _triangular_grad_rhs(g, ans, a, b, lower, adjoint)
    full = -(matmul(ans, globals()["adjoint"](grad_b)) if adjoint
             else matmul(grad_b, globals()["adjoint"](ans)))
    return band_part(full, -1, 0) if lower else band_part(full, 0, -1)


defvjp(TRIANGULAR_SOLVE, _in_tf_convention(_triangular_grad_matrix),
       _in_tf_convention(_triangular_grad_rhs))


def inv(input, adjoint=False):  # noqa: A002 - TensorFlow's names
    """The inverse of each square matrix (of its adjoint with ``adjoint=True``).

    >>> import gputape as gt
    >>> gt.linalg.inv([[2.0, 0.0], [0.0, 4.0]]).numpy()
    array([[0.5 , 0.  ],
           [0.  , 0.25]], dtype=float32)
    """
    x = _matrices("inv", input, square=True)
    return apply(INV, globals()["adjoint"](x) if adjoint else x)


def solve(matrix, rhs, adjoint=False):
    """``X`` with ``matrix @ X = rhs`` for each square matrix (``adjoint``: its adjoint's).

    >>> import gputape as gt
    >>> gt.linalg.solve([[2.0, 0.0], [0.0, 4.0]], [[2.0], [2.0]]).numpy()
    array([[1. ],
           [0.5]], dtype=float32)
    """
    a = _matrices("solve", matrix, square=True)
    b = _matrices("solve", rhs)
    if b.shape[-2] != a.shape[-1]:
        raise ShapeError(f"solve: matrix {a.shape} and rhs {b.shape} do not fit: rhs needs "
                         f"{a.shape[-1]} rows; hint: a vector rhs is a column, shape (n, 1)")
    return apply(SOLVE, globals()["adjoint"](a) if adjoint else a, b)


def triangular_solve(matrix, rhs, lower=True, adjoint=False):
    """``X`` with ``matrix @ X = rhs``, reading only the lower (``lower=True``) or upper
    triangle of each matrix (``adjoint``: solving with its adjoint).

    >>> import gputape as gt
    >>> gt.linalg.triangular_solve([[2.0, 9.0], [1.0, 1.0]], [[2.0], [2.0]]).numpy()
    array([[1.],
           [1.]], dtype=float32)
    """
    a = _matrices("triangular_solve", matrix, square=True)
    b = _matrices("triangular_solve", rhs)
    return apply(TRIANGULAR_SOLVE, a, b, lower=bool(lower), adjoint=bool(adjoint))


def det(input):  # noqa: A002 - TensorFlow's name
    """The determinant of each square matrix.

    >>> import gputape as gt
    >>> float(gt.linalg.det([[2.0, 1.0], [1.0, 3.0]]))
    5.0
    """
    return apply(DET, _matrices("det", input, square=True))


def slogdet(input):  # noqa: A002 - TensorFlow's name
    """``(sign, log|det|)`` of each square matrix (stable where the determinant over- or
    underflows); the gradient flows through ``log|det|``.

    >>> import gputape as gt
    >>> sign, logabs = gt.linalg.slogdet([[-2.0, 0.0], [0.0, 3.0]])
    >>> float(sign), round(float(logabs), 6)
    (-1.0, 1.791759)
    """
    x = _matrices("slogdet", input, square=True)
    from ..core.tensor import Tensor

    xp = x.device.xp
    sign_of = Tensor._wrap(xp.asarray(xp.linalg.slogdet(x._data)[0]))
    return sign_of, apply(LOGABSDET, x)


def logdet(matrix):
    """``log(det)`` of each Hermitian positive definite matrix, from its Cholesky factor.

    >>> import gputape as gt
    >>> round(float(gt.linalg.logdet([[2.0, 0.0], [0.0, 3.0]])), 6)
    1.791759
    """
    factor = cholesky(matrix)
    return 2.0 * reduce_sum(log(diag_part(factor)), axis=-1)


def cholesky_solve(chol, rhs):
    """``X`` with ``A @ X = rhs`` given the Cholesky factor ``chol`` of ``A`` (two triangular
    solves).

    >>> import gputape as gt
    >>> factor = gt.linalg.cholesky([[4.0, 2.0], [2.0, 2.0]])
    >>> gt.linalg.cholesky_solve(factor, [[6.0], [4.0]]).numpy()
    array([[1.],
           [1.]], dtype=float32)
    """
    half = triangular_solve(chol, rhs, lower=True)
    return triangular_solve(chol, half, lower=True, adjoint=True)


def cholesky(input):  # noqa: A002 - TensorFlow's name
    """The lower Cholesky factor ``L`` of each symmetric positive definite matrix
    (``L @ L^T = input``).

    >>> import gputape as gt
    >>> gt.linalg.cholesky([[4.0, 2.0], [2.0, 2.0]]).numpy()
    array([[2., 0.],
           [1., 1.]], dtype=float32)
    """
    return apply(CHOLESKY, _matrices("cholesky", input, square=True))


# -- norms ------------------------------------------------------------------------------


def norm(tensor, ord="euclidean", axis=None, keepdims=False):  # noqa: A002 - TF's names
    """Vector and matrix norms (``tf.norm``): with ``axis`` None or an int, the vector norm
    ``ord`` (``'euclidean'``/2, 1, ``np.inf``, any p > 0) of the flattened tensor or along the
    axis; with a pair of axes, the matrix norm (``'fro'``/``'euclidean'``, 1: the largest
    column sum, ``np.inf``: the largest row sum).

    >>> import gputape as gt
    >>> float(gt.linalg.norm([3.0, -4.0])), float(gt.linalg.norm([3.0, -4.0], ord=1))
    (5.0, 7.0)
    """
    x = as_tensor("norm", "tensor", tensor)
    from ._axes import normalize_axis

    if isinstance(axis, (tuple, list)) and len(axis) not in (1, 2):
        raise ArgumentError(f"norm: axis must be None, an int or a pair of ints, got {axis!r}")
    if isinstance(axis, (tuple, list)) and len(axis) == 1:
        axis = axis[0]
    matrix = isinstance(axis, (tuple, list))
    if matrix:
        rows, cols = (normalize_axis("norm", a, x.ndim) for a in axis)
        if rows == cols:
            raise ArgumentError(f"norm: the two axes of a matrix norm must differ, got {axis}")
        if ord in ("fro", "euclidean"):
            out = sqrt(reduce_sum(_abs_squared(x), axis=(rows, cols), keepdims=True))
        elif ord == 1:
            out = reduce_max(reduce_sum(abs(x), axis=rows, keepdims=True), axis=cols,
                             keepdims=True)
        elif ord == float("inf"):
            out = reduce_max(reduce_sum(abs(x), axis=cols, keepdims=True), axis=rows,
                             keepdims=True)
        else:
            raise ArgumentError(f"norm: the matrix norm ord={ord!r} is not supported; hint: "
                                f"'fro', 1 or np.inf")
        reduced = (rows, cols)
    else:
        flattened = axis is None
        if flattened:
            rank = x.ndim
            x = reshape(x, (-1,))
            axis = 0
        reduced = (normalize_axis("norm", axis, x.ndim),)
        if ord in ("euclidean", 2, 2.0):
            out = sqrt(reduce_sum(_abs_squared(x), axis=reduced, keepdims=True))
        elif ord == 1:
            out = reduce_sum(abs(x), axis=reduced, keepdims=True)
        elif ord == float("inf"):
            out = reduce_max(abs(x), axis=reduced, keepdims=True)
        elif isinstance(ord, numbers.Real) and ord > 0:
            out = reduce_sum(abs(x) ** ord, axis=reduced, keepdims=True) ** (1.0 / ord)
        else:
            raise ArgumentError(f"norm: ord={ord!r} is not a vector norm; hint: 'euclidean', "
                                f"1, 2, np.inf or any p > 0")
    if not matrix and flattened:
        return reshape(out, (1,) * rank if keepdims else ())
    if keepdims:
        return out
    from .shape import squeeze

    return squeeze(out, reduced)


def _abs_squared(x):
    return x * x if x.dtype.kind != "c" else cast(abs(x), x.dtype.type(0).real.dtype) ** 2

