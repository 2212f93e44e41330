"""Broadcast views of host arrays, made without NumPy's Python-level machinery.

``np.broadcast_to`` sets up an ``nditer`` from Python: 2.4 us for a 0-d array on the 2-core
benchmark box, which every gradient of a reduction pays (the reduced cotangent is spread back
over the input's shape). The same read-only view built directly on the array's memory, with
zero strides along the broadcast dimensions, takes about 1 us (bench/NOTES.md, section 14).
"""

from __future__ import annotations

import numpy as np

__all__ = ["broadcast_view"]

_ndarray = np.ndarray


def broadcast_view(a: np.ndarray, shape: tuple) -> np.ndarray:
    """``np.broadcast_to(a, shape)`` for a host array: a read-only view of ``a``'s memory.

    Arrays this cannot view directly (not contiguous, object dtype, shapes that do not
    broadcast) go to ``np.broadcast_to``, which gives the same view or raises its usual error.

    Examples
    --------
    >>> import numpy as np
    >>> from gputape.host.views import broadcast_view
    >>> v = broadcast_view(np.arange(3.0), (2, 3))
    >>> v
    array([[0., 1., 2.],
           [0., 1., 2.]])
    >>> v.flags.writeable
    False
    """
    extra = len(shape) - a.ndim
    if extra < 0 or type(a) is not _ndarray:
        return np.broadcast_to(a, shape)
    if a.size == 1:
        strides = (0,) * len(shape)
    else:
        strides = [0] * extra
        for have, want, stride in zip(a.shape, shape[extra:], a.strides):
            if have == want:
                strides.append(stride)
            elif have == 1:
                strides.append(0)
            else:
                return np.broadcast_to(a, shape)
    try:
        view = _ndarray(shape, a.dtype, buffer=a, strides=strides)
    except (TypeError, ValueError, BufferError):  # not contiguous, or object dtype
        return np.broadcast_to(a, shape)
    view.flags.writeable = False
    return view
