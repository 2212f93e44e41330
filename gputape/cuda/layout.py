"""Collapse a broadcast map-reduce to the three-group form the fused kernels run.

A fused kernel computes ``out[k1, k2] = sum_r map(op[k1, r, k2], ...)`` (``kernels/gt_reduce.cuh``).
This module turns an N-d problem (the broadcast shape, the kept shape with 1 on reduced
dimensions, and each operand's element strides) into ``(K1, R, K2)`` and per-operand strides
``(a, b, c)``, merging neighbouring dimensions that every operand walks contiguously. Problems
that do not fit (kept, reduced, kept, reduced...) return ``None`` and take the generic path.

Pure Python, so it is tested on machines without a GPU.
"""

from __future__ import annotations

__all__ = ["Plan", "plan", "operand_strides"]


class Plan:
    """``K1, R, K2`` and one ``(a, b, c)`` stride triple per operand (in elements)."""

    __slots__ = ("K1", "R", "K2", "strides")

    def __init__(self, K1: int, R: int, K2: int, strides: list) -> None:  # noqa: N803
        self.K1, self.R, self.K2, self.strides = K1, R, K2, strides

    def __repr__(self) -> str:
        return f"Plan(K1={self.K1}, R={self.R}, K2={self.K2}, strides={self.strides})"


def operand_strides(shape: tuple, strides_bytes: tuple, itemsize: int, full: tuple) -> tuple:
    """Element strides of an array of ``shape`` broadcast to ``full`` (0 where broadcast)."""
    pad = len(full) - len(shape)
    out = [0] * pad
    for n, s, f in zip(shape, strides_bytes, full[pad:]):
        out.append(0 if n == 1 and f != 1 else s // itemsize)
    return tuple(out)


def plan(full: tuple, kept: tuple, strides: list) -> "Plan | None":
    """The three-group form of reducing ``full`` to ``kept`` (same length, 1 where reduced).

    >>> plan((4, 3), (1, 3), [(3, 1)])
    Plan(K1=1, R=4, K2=3, strides=[(0, 3, 1)])
    >>> plan((2, 3, 5), (2, 1, 1), [(15, 5, 1), (0, 0, 0)])
    Plan(K1=2, R=15, K2=1, strides=[(15, 1, 0), (0, 0, 0)])
    """
    groups: list = []  # [size, reduced, [stride of the innermost dimension per operand]]
    for i, n in enumerate(full):
        if n == 1:
            continue
        reduced = kept[i] == 1
        dim_strides = [s[i] for s in strides]
        if groups and groups[-1][1] == reduced and all(
            prev == cur * n for prev, cur in zip(groups[-1][2], dim_strides)
        ):
            groups[-1][0] *= n
            groups[-1][2] = dim_strides
        else:
            groups.append([n, reduced, dim_strides])
    roles = _ROLES.get(tuple(g[1] for g in groups))
    if roles is None:
        return None
    sizes = {"k1": 1, "r": 1, "k2": 1}
    steps = {"k1": [0] * len(strides), "r": [0] * len(strides), "k2": [0] * len(strides)}
    for role, (size, _, dim_strides) in zip(roles, groups):
        sizes[role], steps[role] = size, dim_strides
    triples = [tuple(t) for t in zip(steps["k1"], steps["r"], steps["k2"])]
    return Plan(sizes["k1"], sizes["r"], sizes["k2"], triples)


# Which role each group of dimensions plays, by its pattern of (reduced?) labels. Operands are
# addressed through explicit strides, so the reduced group may sit anywhere; the kept groups, in
# order, are the output's (k1, k2) in C order.
_ROLES = {
    (): (),
    (False,): ("k2",),
    (False, False): ("k1", "k2"),
    (True,): ("r",),
    (False, True): ("k1", "r"),
    (True, False): ("r", "k2"),
    (False, True, False): ("k1", "r", "k2"),
    (True, False, False): ("r", "k1", "k2"),
    (False, False, True): ("k1", "k2", "r"),
}
