"""``tile``: copies of a tensor along each dimension; its gradient sums over the copies."""

from __future__ import annotations

from ..core.dispatch import apply
from ..core.errors import ShapeError
from ..core.registry import defvjp, primitive
from ._axes import as_shape, as_tensor, lead
from .reduction import reduce_sum
from .shape import reshape

__all__ = ["tile"]


def _tile_vjp(g, ans, x, multiples):
    batch = lead(g, ans)
    split = batch + tuple(d for pair in zip(multiples, x.shape) for d in pair)
    nb = len(batch)
    return reduce_sum(reshape(g, split), axis=tuple(nb + 2 * i for i in range(x.ndim)))


TILE = defvjp(primitive("tile", lambda xp, x, multiples: xp.tile(x, multiples), ("input",),
                        unify=()),
              _tile_vjp)



def tile(input, multiples):  # noqa: A002 - TensorFlow's name
    """Repeat ``input`` ``multiples[i]`` times along dimension ``i``.

    >>> import gputape as gt
    >>> gt.tile([[1.0, 2.0]], [2, 3]).shape
    (2, 6)
    """
    x = as_tensor("tile", "input", input)
    multiples = as_shape("tile", multiples)
    if len(multiples) != x.ndim or any(m < 0 for m in multiples):
        raise ShapeError(
            f"tile: multiples {multiples} must hold one non-negative int per dimension of shape "
            f"{x.shape}; hint: give {x.ndim} multiples"
        )
    return apply(TILE, x, multiples=multiples)
