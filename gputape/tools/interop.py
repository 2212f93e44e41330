"""Zero-copy exchange with other array libraries through DLPack.

:func:`from_dlpack` turns any DLPack producer (NumPy, CuPy, PyTorch, JAX, ...) into a tensor
that shares the producer's memory; ``Tensor.__dlpack__`` goes the other way. CPU memory is
read through ``numpy.from_dlpack``, CUDA memory through
``cupy.from_dlpack``; CuPy is imported only when a CUDA producer arrives.
"""

from __future__ import annotations

import numpy as np

from ..core.device import cupy_or_none
from ..core.errors import ArgumentTypeError, DeviceError
from ..core.tensor import Tensor

__all__ = ["from_dlpack"]

# DLDeviceType codes of the DLPack standard that this module can read.
_HOST = {1: "CPU", 3: "CUDAHost"}  # host memory (pinned memory included): NumPy reads it
_CUDA = {2: "CUDA", 13: "CUDAManaged"}  # CUDA device memory: CuPy reads it


def from_dlpack(obj) -> Tensor:
    """A tensor sharing memory with ``obj``, any object implementing the DLPack protocol.

    CPU producers become CPU tensors, CUDA producers tensors on the same GPU; nothing is
    copied. Tensors are immutable, so the producer must not write into the memory afterwards.

    Parameters
    ----------
    obj
        An array with ``__dlpack__`` and ``__dlpack_device__`` (a NumPy or CuPy array, a
        PyTorch tensor, a JAX array, a gputape tensor, ...).

    Returns
    -------
    Tensor
        A tensor of ``obj``'s shape and dtype, on ``obj``'s device.

    Raises
    ------
    ArgumentTypeError
        If ``obj`` does not implement the DLPack protocol.
    DeviceError
        If ``obj`` lives on a CUDA device and CuPy is not usable, or on a device gputape does
        not support.

    Examples
    --------
    >>> import numpy as np
    >>> import gputape as gt
    >>> a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    >>> x = gt.from_dlpack(a)
    >>> x
    <gt.Tensor shape=(3,) dtype=float32 device=cpu numpy=[1. 2. 3.]>
    >>> np.shares_memory(np.from_dlpack(x), a)
    True
    """
    if not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        raise ArgumentTypeError(
            f"from_dlpack: expected an object implementing the DLPack protocol (with "
            f"__dlpack__ and __dlpack_device__), got {type(obj).__name__}; hint: pass a NumPy "
            f"or CuPy array, a PyTorch tensor or a JAX array, or use gt.constant(value) to copy "
            f"other data into a tensor"
        )
    device_type, device_id = obj.__dlpack_device__()
    device_type, device_id = int(device_type), int(device_id)
    if device_type in _HOST:
        return Tensor._wrap(np.from_dlpack(obj))
    if device_type in _CUDA:
        cupy = cupy_or_none()
        if cupy is None:
            raise DeviceError(
                f"from_dlpack: the {type(obj).__name__} lives on CUDA device {device_id} "
                f"({_CUDA[device_type]} memory), but CuPy is not installed or sees no GPU; hint: "
                f"install CuPy (pip install 'gputape[cuda13]'), or move the data to the host "
                f"first (e.g. .cpu() in PyTorch)"
            )
        with cupy.cuda.Device(device_id):  # the producer syncs with this device's stream
            return Tensor._wrap(cupy.from_dlpack(obj))
    raise DeviceError(
        f"from_dlpack: the {type(obj).__name__} lives on DLPack device type {device_type} "
        f"(id {device_id}), which gputape cannot read; it reads CPU memory (types 1, 3) and CUDA "
        f"memory (types 2, 13); hint: copy the data to the host or to a CUDA GPU first"
    )
