"""``gt.linalg``: linear algebra under TensorFlow's ``tf.linalg`` names (``matmul``,
``einsum``, ``norm`` and ``tensordot`` are at the top level too, as in TensorFlow).

>>> import gputape as gt
>>> float(gt.linalg.det([[1.0, 2.0], [3.0, 4.0]]))
-2.0
"""

from .ops.decompositions import (
    adjoint,
    band_part,
    cholesky,
    cholesky_solve,
    det,
    diag,
    diag_part,
    einsum,
    inv,
    logdet,
    norm,
    slogdet,
    solve,
    tensordot,
    trace,
    triangular_solve,
)
from .ops.linalg import matmul
from .ops.shape import matrix_transpose

__all__ = [
    "adjoint", "band_part", "cholesky", "cholesky_solve", "det", "diag", "diag_part", "einsum",
    "inv", "logdet", "matmul", "matrix_transpose", "norm", "slogdet", "solve", "tensordot",
    "trace", "triangular_solve",
]
