"""Jacobians from one batched backward pass: the seed carries one row per target element.

Where a recorded rule cannot take batched cotangents (a ``custom_gradient`` function, an index
with separated advanced indices), the rows are walked one at a time instead.
"""

from __future__ import annotations

import math

from ..core import nest
from ..core.errors import TapeValueError
from ..core.tensor import Tensor
from . import backward
from .sources import UnconnectedGradients, as_tensors, finish, reachable


def jacobian(entries: list, watched: set, target, sources, mode, vectorize: bool = True):
    """``target.shape + source.shape`` Jacobian for each source in the nest ``sources``."""
    from ..ops import eye, reshape, zeros

    (target,) = as_tensors([target], "jacobian", "target")
    originals = nest.flatten(sources)
    flat = as_tensors(originals, "jacobian", "sources")
    # A target is its own source only when the tape follows it (TF: jacobian(x, x) of an
    # unwatched x is None, though gradient(x, x) is the seed).
    wanted = reachable(originals, watched, set())
    n = target.size
    seed = eye(n, dtype=target.dtype, device=target.device)
    rows = reshape(seed, (n,) + target.shape)
    found = _walk_rows(entries, target, rows, wanted, vectorize)
    results = []
    for s in flat:
        g = found.get(s._uid)
        if g is not None and n == 0:  # connected, but no row: TF's empty result, a constant
            g = zeros(target.shape + s.shape, dtype=g.dtype, device=g.device)
        elif g is not None:
            g = reshape(g, target.shape + s.shape)
        results.append(finish(g, mode, target.shape + s.shape, s))
    return nest.pack_as(sources, results)


def batch_jacobian(entries: list, watched: set, target, source, mode, vectorize: bool = True):
    """``(batch,) + target.shape[1:] + source.shape[1:]`` per-example Jacobian."""
    from ..ops import broadcast_to, eye, reshape, transpose

    (target,) = as_tensors([target], "batch_jacobian", "target")
    wanted = reachable([source], watched, set())
    (source,) = as_tensors([source], "batch_jacobian", "source")
    if target.ndim < 2 or source.ndim < 2 or target.shape[0] != source.shape[0]:
        raise TapeValueError(
            f"batch_jacobian: target shape {target.shape} and source shape {source.shape} must "
            f"have rank at least 2 and share the leading (batch) dimension; hint: use "
            f"jacobian() for unbatched inputs, or add a trailing dimension of size 1"
        )
    batch, inner = target.shape[0], target.shape[1:]
    k = math.prod(inner)
    seed = reshape(eye(k, dtype=target.dtype, device=target.device), (k, 1) + inner)
    rows = broadcast_to(seed, (k, batch) + inner)
    g = _walk_rows(entries, target, rows, wanted, vectorize).get(source._uid)
    shape = (batch,) + inner + source.shape[1:]
    if g is not None:
        g = transpose(g, (1, 0) + tuple(range(2, g.ndim)))
        g = reshape(g, shape)
    if g is None and mode is not UnconnectedGradients.ZERO:
        # zeros whatever unconnected_gradients says, as TF's batch_jacobian; TF's are then of
        # the target's dtype (with "zero", of the source's)
        return finish(g, UnconnectedGradients.ZERO, shape, target)
    return finish(g, mode, shape, source)


def _walk_rows(entries: list, target: Tensor, rows: Tensor, wanted: set,
               vectorize: bool) -> dict:
    # No row at all (a size-0 target) still walks, batched: a connected source gets its empty
    # jacobian from the walk (recorded on outer tapes), an unconnected one None.
    if (vectorize or rows.shape[0] == 0) and backward.batchable(entries, wanted):
        return backward.walk(entries, [(target, rows)], wanted, batch=1)
    from ..ops import stack, zeros_like

    per_row = [backward.walk(entries, [(target, rows[i])], wanted) for i in range(rows.shape[0])]
    found = {}
    for uid in wanted:
        grads = [row.get(uid) for row in per_row]
        present = next((g for g in grads if g is not None), None)
        if present is not None:
            found[uid] = stack([g if g is not None else zeros_like(present) for g in grads])
    return found
