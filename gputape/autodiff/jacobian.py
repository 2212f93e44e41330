"""Jacobians from batched backward passes: the seed carries one row per target element.

The rows go through the walk in chunks: ``parallel_iterations`` rows at a time when given (as
TensorFlow's argument), else as many as fit a memory budget (``GPUTAPE_JACOBIAN_BYTES``, 256 MiB
by default), since each row carries a cotangent of every recorded result. Where a recorded
rule cannot take batched cotangents (a ``custom_gradient`` function, an index with separated
advanced indices), the rows are walked one at a time instead.
"""

from __future__ import annotations

import math
import os

from ..core import nest
from ..core.errors import ArgumentError, TapeValueError
from ..core.state import OUTPUT
from ..core.tensor import Tensor
from . import backward
from .sources import UnconnectedGradients, as_tensors, finish, reachable

BUDGET_VARIABLE = "GPUTAPE_JACOBIAN_BYTES"
DEFAULT_BUDGET = 256 << 20  # bytes; larger chunks were no faster on a 900 x 900 Hessian


def chunk_rows(entries: list, rows: int, parallel_iterations=None, method="jacobian") -> int:
    """How many of ``rows`` cotangent rows one backward walk takes: ``parallel_iterations``
    when given, else as many as fit the budget, counting for each row one cotangent of every
    result on the tape (a bound: the walk frees most of them as it goes).

    Example: ``chunk_rows([], 900)`` is 900 (an empty tape costs nothing a row).
    """
    if parallel_iterations is not None:
        if isinstance(parallel_iterations, bool) or not isinstance(parallel_iterations, int) \
                or parallel_iterations < 1:
            raise ArgumentError(
                f"{method}: parallel_iterations={parallel_iterations!r} must be a positive int "
                f"(the rows of the Jacobian computed per backward pass); hint: e.g. 32, or "
                f"None to fit the memory budget ({BUDGET_VARIABLE})"
            )
        return max(1, min(rows, parallel_iterations))
    budget = _budget(method)
    per_row = 0
    for entry in entries:
        output = entry[OUTPUT]
        per_row += _size(output) * output.dtype.itemsize if type(output) is not Tensor \
            else output._data.nbytes
    return max(1, min(rows, budget // max(per_row, 1)))


def _size(output) -> int:  # a pending result's size, without computing it
    return math.prod(output.shape)


def _budget(method: str) -> int:
    text = os.environ.get(BUDGET_VARIABLE)
    if not text:
        return DEFAULT_BUDGET
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ArgumentError(
            f"{method}: {BUDGET_VARIABLE}={text!r} is not a number of bytes; hint: e.g. "
            f"{BUDGET_VARIABLE}=2e9 for 2 GB, or unset it for {DEFAULT_BUDGET >> 20} MiB"
        )
    return value


def jacobian(entries: list, watched: set, target, sources, mode, vectorize: bool = True,
             parallel_iterations=None):
    """``target.shape + source.shape`` Jacobian for each source in the nest ``sources``."""
    from ..ops import reshape, zeros

    (target,) = as_tensors([target], "jacobian", "target")
    originals = nest.flatten(sources)
    flat = as_tensors(originals, "jacobian", "sources")
    # A target is its own source only when the tape follows it (TF: jacobian(x, x) of an
    # unwatched x is None, though gradient(x, x) is the seed).
    wanted = reachable(originals, watched, set())
    n = target.size

    def rows(start: int, stop: int) -> Tensor:  # rows start..stop of the identity seed
        seed = target.device.xp.eye(stop - start, n, k=start, dtype=target.dtype)
        return Tensor._wrap(seed.reshape((stop - start,) + target.shape))

    chunk = chunk_rows(entries, n, parallel_iterations, "jacobian")
    found = _walk_rows(entries, target, rows, n, chunk, wanted, vectorize)
    results = []
    for s in flat:
        g = found.get(s._uid)
        if g is not None and n == 0:  # connected, but no row: TF's empty result, a constant
            g = zeros(target.shape + s.shape, dtype=g.dtype, device=g.device)
        elif g is not None:
            g = reshape(g, target.shape + s.shape)
        results.append(finish(g, mode, target.shape + s.shape, s))
    return nest.pack_as(sources, results)


def batch_jacobian(entries: list, watched: set, target, source, mode, vectorize: bool = True,
                   parallel_iterations=None):
    """``(batch,) + target.shape[1:] + source.shape[1:]`` per-example Jacobian."""
    from ..ops import reshape, transpose

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

    def rows(start: int, stop: int) -> Tensor:  # rows start..stop of the identity, per example
        seed = target.device.xp.eye(stop - start, k, k=start, dtype=target.dtype)
        seed = seed.reshape((stop - start, 1) + inner)
        return Tensor._wrap(target.device.xp.broadcast_to(seed, (stop - start, batch) + inner))

    chunk = chunk_rows(entries, k, parallel_iterations, "batch_jacobian")
    g = _walk_rows(entries, target, rows, k, chunk, wanted, vectorize).get(source._uid)
    shape = (batch,) + inner + source.shape[1:]
    if g is not None:
        g = transpose(g, (1, 0) + tuple(range(2, g.ndim)))
        g = reshape(g, shape)
    if g is None and mode is not UnconnectedGradients.ZERO:
        # zeros whatever unconnected_gradients says, as TF's batch_jacobian; TF's are then of
        # the target's dtype (with "zero", of the source's)
        return finish(g, UnconnectedGradients.ZERO, shape, target)
    return finish(g, mode, shape, source)


def _walk_rows(entries: list, target: Tensor, rows, n: int, chunk: int, wanted: set,
               vectorize: bool) -> dict:
    """The walk of the ``n`` seed rows (``rows(start, stop)`` makes them), ``chunk`` rows per
    batched walk, each source's rows stacked in order."""
    from ..ops import concat, stack

    # No row at all (a size-0 target) still walks, batched: a connected source gets its empty
    # jacobian from the walk (recorded on outer tapes), an unconnected one None.
    if (vectorize or n == 0) and backward.batchable(entries, wanted):
        if chunk >= n:
            return backward.walk(entries, [(target, rows(0, n))], wanted, batch=1)
        parts = [backward.walk(entries, [(target, rows(i, min(i + chunk, n)))], wanted, batch=1)
                 for i in range(0, n, chunk)]
        return _gather(parts, wanted, lambda grads: concat(grads, axis=0))
    per_row = [backward.walk(entries, [(target, rows(i, i + 1)[0])], wanted) for i in range(n)]
    return _gather(per_row, wanted, stack)


def _gather(parts: "list[dict]", wanted: set, join) -> dict:
    """Each wanted id's pieces from ``parts`` joined in order, zeros standing in for a piece
    that did not reach it (an id no part reaches stays out: unconnected)."""
    from ..ops import zeros_like

    found = {}
    for uid in wanted:
        grads = [part.get(uid) for part in parts]
        present = next((g for g in grads if g is not None), None)
        if present is not None:
            found[uid] = join([g if g is not None else zeros_like(present) for g in grads])
    return found
