"""Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011; the generator TensorFlow's stateless ops and CUDA's cuRAND offer), written against
the array namespace ``xp``: counter blocks in, random 32-bit words out, the same words on NumPy
and on CuPy (integer multiplies, xors and shifts only), and from them the floats of
:mod:`gputape.ops.random`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["philox4x32", "blocks", "uniform_floats"]

_M0, _M1 = 0xD2511F53, 0xCD9E8D57  # the round multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # the Weyl key increments (golden ratio, sqrt(3) - 1)
_MASK = 0xFFFFFFFF


def philox4x32(xp, counters, key: "tuple[int, int]", rounds: int = 10):
    """The Philox4x32 output of each counter block: ``counters`` is a uint32 array of shape
    ``(..., 4)``, ``key`` two 32-bit ints; returns uint32 of the same shape.

    Example (Random123's first known answer): ``philox4x32(np, np.zeros((1, 4), np.uint32),
    (0, 0))`` is ``[[0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]]``.
    """
    c = [counters[..., i].astype(xp.uint64) for i in range(4)]
    k0, k1 = int(key[0]) & _MASK, int(key[1]) & _MASK
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
        p0 = c[0] * _M0  # 32 x 32 -> 64 bits, exact in uint64
        p1 = c[2] * _M1
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & _MASK, (p0 >> 32) ^ c[3] ^ k1, p0 & _MASK]
    return xp.stack(c, axis=-1).astype(xp.uint32)


def blocks(xp, count: int, key: "tuple[int, int]", offset: int = 0):
    """``count`` blocks of four random words: the counters ``offset``, ``offset + 1``, ... (a
    64-bit block index in the first two words of the counter), flattened to ``4 * count``
    uint32 words."""
    index = xp.arange(offset, offset + count, dtype=xp.uint64)
    counters = xp.zeros((count, 4), dtype=xp.uint32)
    counters[:, 0] = (index & _MASK).astype(xp.uint32)
    counters[:, 1] = (index >> 32).astype(xp.uint32)
    return philox4x32(xp, counters, key).reshape(-1)


def uniform_floats(xp, words, dtype):
    """Floats in [0, 1) from random words: float32 from one word (its top 23 bits as the
    mantissa of a number in [1, 2), minus 1, as TensorFlow's), float64 from two (52 bits)."""
    if np.dtype(dtype) == np.float64:
        hi = words[0::2].astype(xp.uint64) << 20
        bits = hi | (words[1::2].astype(xp.uint64) >> 12) | np.uint64(0x3FF0000000000000)
        return bits.view(xp.float64) - 1.0
    bits = (words >> 9) | np.uint32(0x3F800000)
    return (bits.view(xp.float32) - np.float32(1.0)).astype(dtype)
