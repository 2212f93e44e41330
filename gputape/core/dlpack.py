"""DLPack export of a tensor's array: the work of ``Tensor.__dlpack__`` (the other way,
``gt.from_dlpack``, is :mod:`gputape.tools.interop`)."""

from __future__ import annotations

import numpy as np

__all__ = ["export_dlpack"]


def export_dlpack(array, stream=None, max_version=None, dl_device=None, copy=None):
    """The DLPack capsule of a NumPy or CuPy ``array`` (the work of ``Tensor.__dlpack__``).

    Keywords are passed on only when given, and array libraries older than DLPack 1.0 (NumPy
    < 2.1, CuPy < 14), whose ``__dlpack__`` takes ``stream`` alone, still work: ``copy=True``
    copies first and a ``dl_device`` other than the array's raises ``BufferError``. A GPU
    array asked for a copy on its own device is copied here, on its GPU, then exported (CuPy's
    ``__dlpack__`` copies only to the host).
    """
    if copy and not isinstance(array, np.ndarray) and (
            dl_device is None or tuple(map(int, dl_device)) == _device_pair(array)):
        # CuPy copies only to the host on export (BufferError otherwise): copy on the GPU.
        array, copy = _copy(array), None
    keywords = {name: value for name, value in
                (("max_version", max_version), ("dl_device", dl_device), ("copy", copy))
                if value is not None}
    if keywords:
        try:
            return array.__dlpack__(stream=stream, **keywords)
        except TypeError as exc:
            if "keyword" not in str(exc):
                raise
    if dl_device is not None and tuple(map(int, dl_device)) != _device_pair(array):
        raise BufferError(
            f"__dlpack__: cannot export to DLPack device {tuple(dl_device)} from "
            f"{_device_pair(array)} with this array library; hint: upgrade NumPy/CuPy or "
            f"move the tensor with .to(device) first"
        )
    if copy:
        array = _copy(array)
    return array.__dlpack__(stream=stream)


def _device_pair(array) -> tuple:
    device_type, device_id = array.__dlpack_device__()
    return int(device_type), int(device_id)


def _copy(array):
    if isinstance(array, np.ndarray):
        return array.copy()
    with array.device:  # CuPy copies onto the current device, not the array's
        return array.copy()
