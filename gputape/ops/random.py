"""Random numbers, as ``tf.random``: a :class:`Generator` with state, TensorFlow's stateless
functions (``stateless_normal(shape, seed)``...) and the global functions seeded by
:func:`set_seed`, all drawn from Philox4x32-10 counters (:mod:`.philox`).

The same seed gives the same numbers on the CPU and on a GPU, as JAX's keys do (NumPy's and
CuPy's own generators do not): the random words are computed with integer arithmetic in the
device's array namespace, and a uniform float is their bits; normal numbers go through
float64 logarithms and sines, then are rounded to their dtype (so float32 normals agree to the
bit but for a rare rounding tie, float64 ones to an ulp).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..core import dtypes
from ..core.device import Device, default_device
from ..core.errors import ArgumentError, ArgumentTypeError
from ..core.tensor import Tensor
from . import philox
from ._axes import as_shape

__all__ = [
    "Generator", "categorical", "get_global_generator", "normal", "set_seed", "shuffle",
    "stateless_categorical", "stateless_normal", "stateless_truncated_normal",
    "stateless_uniform", "truncated_normal", "uniform",
]

_MASK = 0xFFFFFFFF


def _key_of(op: str, seed) -> "tuple[int, int]":
    """A Philox key from an int seed (its low and high 32 bits) or a pair of ints."""
    if isinstance(seed, Tensor):
        seed = seed.numpy().tolist()
    if isinstance(seed, (list, tuple, np.ndarray)) and len(seed) == 2 and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in seed):
        return int(seed[0]) & _MASK, int(seed[1]) & _MASK
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        return seed & _MASK, seed >> 32
    raise ArgumentTypeError(
        f"{op}: seed must be an int or a pair of ints (TF's shape [2] seed), got "
        f"{type(seed).__name__} {seed!r:.40}; hint: e.g. seed=(1, 2) or seed=42"
    )


def _device(device) -> Device:
    return Device(device) if device is not None else default_device()


def _float_dtype(op: str, dtype):
    dtype = dtypes.as_dtype(dtype)
    if dtype.kind != "f":
        raise ArgumentError(f"{op}: dtype must be floating point, got {dtype}; hint: "
                            f"gt.float32 or gt.float64")
    return dtype


class Generator:
    """A random number generator with state (``tf.random.Generator``): a Philox key and the
    next counter block. Each draw takes fresh blocks, so successive draws differ and a
    generator made from the same seed repeats them, on any device.

    >>> import gputape as gt
    >>> a = gt.random.Generator.from_seed(7).normal((2,))
    >>> b = gt.random.Generator.from_seed(7).normal((2,))
    >>> bool((a.numpy() == b.numpy()).all())
    True
    """

    def __init__(self, key: "tuple[int, int]", counter: int = 0) -> None:
        self.key = (int(key[0]) & _MASK, int(key[1]) & _MASK)
        self.counter = int(counter)  # the next block

    @classmethod
    def from_seed(cls, seed) -> "Generator":
        """A generator whose numbers depend only on ``seed`` (an int or a pair of ints)."""
        return cls(_key_of("Generator.from_seed", seed))

    def split(self, count: int = 1) -> "list[Generator]":
        """``count`` new generators, their keys drawn from this one (which advances)."""
        words = self._words(2 * count, Device("cpu"))
        return [Generator((int(words[2 * i]), int(words[2 * i + 1]))) for i in range(count)]

    def _words(self, count: int, dev: Device):
        n_blocks = -(-count // 4)
        xp = dev.xp
        if dev.kind == "gpu":
            with xp.cuda.Device(dev.index):
                words = philox.blocks(xp, n_blocks, self.key, self.counter)
        else:
            words = philox.blocks(np, n_blocks, self.key, self.counter)
        self.counter += n_blocks
        return words[:count]

    def _uniform01(self, shape: tuple, dtype, dev: Device):
        n = math.prod(shape)
        per = 2 if np.dtype(dtype) == np.float64 else 1
        return philox.uniform_floats(dev.xp, self._words(per * n, dev), dtype).reshape(shape)

    def uniform(self, shape, minval=0, maxval=None, dtype=dtypes.float32, device=None):
        """Uniform numbers in ``[minval, maxval)`` (``maxval`` 1 for floats; required for
        integers, drawn as random words modulo the range, as TF's).

        >>> import gputape as gt
        >>> g = gt.random.Generator.from_seed(1)
        >>> x = g.uniform((1000,), 2.0, 3.0).numpy()
        >>> bool(x.min() >= 2.0 and x.max() < 3.0)
        True
        """
        shape, dtype, dev = as_shape("uniform", shape), dtypes.as_dtype(dtype), _device(device)
        if dtype.kind in "iu":
            if maxval is None:
                raise ArgumentError("uniform: an integer dtype needs maxval; hint: e.g. "
                                    "uniform((3,), 0, 10, dtype=gt.int32)")
            span = int(maxval) - int(minval)
            if span <= 0:
                raise ArgumentError(f"uniform: maxval ({maxval}) must be above minval "
                                    f"({minval})")
            words = self._words(math.prod(shape), dev).astype(dev.xp.uint64)
            values = (words % span).astype(dev.xp.int64) + int(minval)
            return Tensor._wrap(values.astype(dtype).reshape(shape))
        if dtype.kind != "f":
            raise ArgumentError(f"uniform: dtype must be a float or an integer, got {dtype}")
        u = Tensor._wrap(self._uniform01(shape, dtype, dev))
        high = 1.0 if maxval is None else maxval
        if isinstance(minval, Tensor) or isinstance(high, Tensor):
            return minval + u * (high - minval)
        return Tensor._wrap((float(minval) + u._data * (float(high) - float(minval)))
                            .astype(dtype))

    def _standard_normal(self, shape: tuple, dtype, dev: Device):
        """Box-Muller on pairs of uniform floats, computed in float64."""
        n = math.prod(shape)
        pairs = -(-n // 2)
        xp = dev.xp
        u = philox.uniform_floats(xp, self._words(4 * pairs, dev), np.float64)
        radius = xp.sqrt(-2.0 * xp.log(1.0 - u[0::2]))  # 1 - u is in (0, 1]
        angle = (2.0 * math.pi) * u[1::2]
        z = xp.stack([radius * xp.cos(angle), radius * xp.sin(angle)], axis=-1).reshape(-1)
        return z[:n].reshape(shape).astype(dtype)

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=dtypes.float32, device=None):
        """Normal numbers; ``mean`` and ``stddev`` may be tensors (then differentiable).

        >>> import gputape as gt
        >>> x = gt.random.Generator.from_seed(3).normal((20000,)).numpy()
        >>> abs(float(x.mean())) < 0.03 and abs(float(x.std()) - 1) < 0.03
        True
        """
        shape, dev = as_shape("normal", shape), _device(device)
        dtype = _float_dtype("normal", dtype)
        z = Tensor._wrap(self._standard_normal(shape, dtype, dev))
        return _scaled(z, mean, stddev, dtype)

    def truncated_normal(self, shape, mean=0.0, stddev=1.0, dtype=dtypes.float32,
                         device=None):
        """Normal numbers more than 2 standard deviations from the mean drawn again (TF's).

        >>> import gputape as gt
        >>> x = gt.random.Generator.from_seed(3).truncated_normal((1000,)).numpy()
        >>> bool(abs(x).max() <= 2.0)
        True
        """
        shape, dev = as_shape("truncated_normal", shape), _device(device)
        dtype = _float_dtype("truncated_normal", dtype)
        xp = dev.xp
        z = self._standard_normal(shape, np.float64, dev).reshape(-1)
        outside = xp.flatnonzero(xp.abs(z) > 2.0)
        while outside.size:  # (about 4.6 % a round)
            z[outside] = self._standard_normal((int(outside.size),), np.float64, dev)
            outside = outside[xp.abs(z[outside]) > 2.0]
        return _scaled(Tensor._wrap(z.reshape(shape).astype(dtype)), mean, stddev, dtype)

    def categorical(self, logits, num_samples: int, dtype=dtypes.int64):
        """``num_samples`` class indices per row of ``logits`` (shape [batch, classes]), each
        class with probability softmax(logits) (the Gumbel-max trick).

        >>> import gputape as gt
        >>> g = gt.random.Generator.from_seed(0)
        >>> g.categorical([[0.0, -1e9]], 3).numpy().tolist()
        [[0, 0, 0]]
        """
        logits = _as_logits(logits)
        batch, classes = logits.shape
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
            raise ArgumentError(f"categorical: num_samples must be a non-negative int, got "
                                f"{num_samples!r}")
        dev = logits.device
        xp = dev.xp
        u = self._uniform01((batch, num_samples, classes), np.float64, dev)
        gumbel = -xp.log(-xp.log1p(-u))  # -log(-log(1 - u)), u in [0, 1)
        scores = logits._data.astype(np.float64)[:, None, :] + gumbel
        return Tensor._wrap(xp.argmax(scores, axis=-1).astype(dtypes.as_dtype(dtype)))

    def permutation(self, n: int, device=None):
        """A random permutation of ``0 .. n - 1`` (int64).

        >>> import gputape as gt
        >>> sorted(gt.random.Generator.from_seed(5).permutation(4).numpy().tolist())
        [0, 1, 2, 3]
        """
        dev = _device(device)
        words = self._words(2 * int(n), dev).astype(dev.xp.uint64)
        keys = (words[0::2] << 32) | words[1::2]  # 64 random bits each: ties are negligible
        return Tensor._wrap(dev.xp.argsort(keys, kind="stable").astype(np.int64))

    def shuffle(self, value):
        """``value`` with its first axis in a random order (``tf.random.shuffle``).

        >>> import gputape as gt
        >>> x = gt.random.Generator.from_seed(2).shuffle([1.0, 2.0, 3.0]).numpy()
        >>> sorted(x.tolist())
        [1.0, 2.0, 3.0]
        """
        from .indexing import gather

        value = value if isinstance(value, Tensor) else Tensor._wrap(np.asarray(value))
        if value.ndim == 0:
            raise ArgumentError("shuffle: value is 0-d and has no first axis to shuffle")
        order = self.permutation(value.shape[0], device=value.device)
        return gather(value, order)


def _scaled(z: Tensor, mean, stddev, dtype) -> Tensor:
    if isinstance(mean, Tensor) or isinstance(stddev, Tensor):
        return z * stddev + mean
    if mean == 0.0 and stddev == 1.0:
        return z
    return Tensor._wrap((z._data * float(stddev) + float(mean)).astype(dtype))


def _as_logits(logits) -> Tensor:
    logits = logits if isinstance(logits, Tensor) else Tensor._wrap(
        np.asarray(logits, dtype=np.float32))
    if logits.ndim != 2 or logits.dtype.kind != "f":
        raise ArgumentError(
            f"categorical: logits must be a 2-d float tensor [batch, classes], got shape "
            f"{logits.shape} and dtype {logits.dtype}; hint: add a batch axis with "
            f"gt.expand_dims(logits, 0)"
        )
    return logits


# -- stateless functions: a seed in, numbers out, no state ---------------------------------


def stateless_uniform(shape, seed, minval=0, maxval=None, dtype=dtypes.float32, device=None):
    """Uniform numbers that depend only on ``seed`` (a pair of ints), as TF's.

    >>> import gputape as gt
    >>> a = gt.random.stateless_uniform((3,), seed=(1, 2))
    >>> bool((a.numpy() == gt.random.stateless_uniform((3,), seed=(1, 2)).numpy()).all())
    True
    """
    return Generator(_key_of("stateless_uniform", seed)).uniform(shape, minval, maxval, dtype,
                                                                 device)


def stateless_normal(shape, seed, mean=0.0, stddev=1.0, dtype=dtypes.float32, device=None):
    """Normal numbers that depend only on ``seed`` (a pair of ints), as TF's.

    >>> import gputape as gt
    >>> gt.random.stateless_normal((2, 3), seed=(4, 2)).shape
    (2, 3)
    """
    return Generator(_key_of("stateless_normal", seed)).normal(shape, mean, stddev, dtype,
                                                               device)


def stateless_truncated_normal(shape, seed, mean=0.0, stddev=1.0, dtype=dtypes.float32,
                               device=None):
    """Truncated normal numbers that depend only on ``seed``.

    >>> import gputape as gt
    >>> bool(abs(gt.random.stateless_truncated_normal((500,), (1, 1)).numpy()).max() <= 2)
    True
    """
    return Generator(_key_of("stateless_truncated_normal", seed)).truncated_normal(
        shape, mean, stddev, dtype, device)


def stateless_categorical(logits, num_samples: int, seed, dtype=dtypes.int64):
    """Class indices drawn from ``logits`` that depend only on ``seed``.

    >>> import gputape as gt
    >>> gt.random.stateless_categorical([[-1e9, 0.0]], 2, seed=(0, 0)).numpy().tolist()
    [[1, 1]]
    """
    return Generator(_key_of("stateless_categorical", seed)).categorical(logits, num_samples,
                                                                         dtype)


# -- the global generator -----------------------------------------------------------------

_GLOBAL = [Generator.from_seed(0x5EED)]


def set_seed(seed) -> None:
    """Seed the global generator (``tf.random.set_seed``): the global functions then repeat
    their numbers from run to run.

    >>> import gputape as gt
    >>> gt.random.set_seed(1); a = gt.random.normal((2,)).numpy()
    >>> gt.random.set_seed(1); b = gt.random.normal((2,)).numpy()
    >>> bool((a == b).all())
    True
    """
    _GLOBAL[0] = Generator.from_seed(seed)
    _OP_SEEDED.clear()


def get_global_generator() -> Generator:
    """The generator the global functions draw from (``tf.random.get_global_generator``)."""
    return _GLOBAL[0]


_OP_SEEDED: dict = {}  # op seed -> its generator, until the next set_seed


def _global(seed) -> Generator:
    """The global generator, or with an op-level ``seed`` the generator of the global key and
    that seed, which advances from call to call and starts over at :func:`set_seed` (TF's
    eager op seeds: calls differ, a program repeats)."""
    if seed is None:
        return _GLOBAL[0]
    found = _OP_SEEDED.get(int(seed))
    if found is None:
        key = _GLOBAL[0].key
        found = _OP_SEEDED[int(seed)] = Generator(
            (key[0] ^ (int(seed) & _MASK), key[1] ^ (int(seed) >> 32 & _MASK)))
    return found


_op_generator = _global


def uniform(shape, minval=0, maxval=None, dtype=dtypes.float32, seed=None, device=None):
    """Uniform numbers from the global generator (``tf.random.uniform``).

    >>> import gputape as gt
    >>> gt.random.uniform((2, 2)).shape
    (2, 2)
    """
    return _global(seed).uniform(shape, minval, maxval, dtype, device)


def normal(shape, mean=0.0, stddev=1.0, dtype=dtypes.float32, seed=None, device=None):
    """Normal numbers from the global generator (``tf.random.normal``).

    >>> import gputape as gt
    >>> gt.random.normal((3,)).dtype
    dtype('float32')
    """
    return _global(seed).normal(shape, mean, stddev, dtype, device)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=dtypes.float32, seed=None,
                     device=None):
    """Truncated normal numbers from the global generator (``tf.random.truncated_normal``).

    >>> import gputape as gt
    >>> gt.random.truncated_normal((3,)).shape
    (3,)
    """
    return _global(seed).truncated_normal(shape, mean, stddev, dtype, device)


def categorical(logits, num_samples: int, dtype=dtypes.int64, seed=None):
    """Class indices from the global generator (``tf.random.categorical``).

    >>> import gputape as gt
    >>> gt.random.categorical([[0.0, 0.0]], 5).shape
    (1, 5)
    """
    return _global(seed).categorical(logits, num_samples, dtype)


def shuffle(value, seed=None):
    """``value`` with its first axis shuffled by the global generator (``tf.random.shuffle``).

    >>> import gputape as gt
    >>> gt.random.shuffle([[1.0], [2.0]]).shape
    (2, 1)
    """
    return _global(seed).shuffle(value)
