"""Devices: where a tensor's array lives, and which array namespace (NumPy or CuPy) runs on it.

CuPy is imported lazily, the first time a GPU is asked for (or the default device is resolved
on a machine where CuPy is installed), never by ``import gputape`` itself.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator

import numpy as np

from .errors import DeviceError

__all__ = ["Device", "device", "list_devices", "default_device", "cupy_or_none"]

_ENV_VAR = "GPUTAPE_DEVICE"


class Device:
    """A place where arrays live: the host (``"cpu"``) or one CUDA GPU (``"gpu:N"``).

    Examples
    --------
    >>> import gputape as gt
    >>> gt.Device("cpu")
    Device('cpu')
    >>> gt.Device("cpu") == "cpu"
    True
    """

    __slots__ = ("kind", "index")

    def __init__(self, spec: "str | Device") -> None:
        if isinstance(spec, Device):
            self.kind, self.index = spec.kind, spec.index
            return
        self.kind, self.index = _parse(spec)

    @property
    def name(self) -> str:
        return "cpu" if self.kind == "cpu" else f"gpu:{self.index}"

    @property
    def xp(self):
        """The array namespace of this device: ``numpy`` or ``cupy``."""
        return np if self.kind == "cpu" else _require_cupy()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except DeviceError:
                return False
        if not isinstance(other, Device):
            return NotImplemented
        return self.kind == other.kind and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.kind, self.index))

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def __str__(self) -> str:
        return self.name


def _parse(spec: object) -> "tuple[str, int]":
    if not isinstance(spec, str):
        raise DeviceError(
            f"device: expected a string like 'cpu', 'gpu' or 'gpu:0', got {type(spec).__name__} "
            f"{spec!r}; hint: "
            + (f"gt.Device('gpu:{spec}') for a GPU index" if isinstance(spec, int)
               else "see gt.list_devices() for the names")
        )
    text = spec.strip().lower().lstrip("/")
    text = text.replace("device:", "").replace("cuda", "gpu")
    head, _, tail = text.partition(":")
    if head == "cpu" and tail in ("", "0"):
        return "cpu", 0
    if head == "gpu":
        if tail == "":
            return "gpu", 0
        if tail.isdigit():
            return "gpu", int(tail)
    raise DeviceError(
        f"device: cannot understand {spec!r}; hint: use 'cpu', 'gpu' or 'gpu:N' "
        f"(available: {', '.join(d.name for d in list_devices())})"
    )


_CUPY_STATE: dict = {}
_NVIDIA_DRIVER_GPUS = "/proc/driver/nvidia/gpus"  # one folder per GPU the NVIDIA driver sees


def cupy_or_none():
    """Return the ``cupy`` module when CuPy is installed and sees a CUDA device, else ``None``.

    The answer is computed once. CuPy is imported only if it is installed; why it is unusable
    is kept for error messages (:func:`why_no_gpu`).
    """
    if "module" not in _CUPY_STATE:
        module, why = None, None
        try:
            if importlib.util.find_spec("cupy") is None:
                why = "CuPy is not installed"
            else:
                import cupy

                if cupy.cuda.runtime.getDeviceCount() > 0:
                    module = cupy
                else:
                    why = "CuPy sees no CUDA device"
        except Exception as exc:  # blocked, broken, no driver or no device: as if CuPy were absent
            why = f"CuPy failed to start: {type(exc).__name__}: {exc}"
        _CUPY_STATE["module"] = module
        _CUPY_STATE["why"] = why
    return _CUPY_STATE["module"]


def why_no_gpu() -> "str | None":
    """Why gputape has no GPU here (``None`` when it has one), naming an NVIDIA GPU that the
    driver lists but CuPy cannot use.

    Examples
    --------
    >>> from gputape.core.device import cupy_or_none, why_no_gpu
    >>> (why_no_gpu() is None) == (cupy_or_none() is not None)
    True
    """
    if cupy_or_none() is not None:
        return None
    why = _CUPY_STATE.get("why") or "CuPy cannot be used"
    if nvidia_gpus_listed():
        why += f" although the NVIDIA driver lists {nvidia_gpus_listed()} GPU(s)"
    return why


def nvidia_gpus_listed(driver_gpus: str = _NVIDIA_DRIVER_GPUS) -> int:
    """How many GPUs the NVIDIA driver lists on this machine, whether or not CuPy can use them
    (0 without the driver).

    Examples
    --------
    >>> from gputape.core.device import nvidia_gpus_listed
    >>> nvidia_gpus_listed() >= 0
    True
    """
    try:
        return len(os.listdir(driver_gpus))
    except OSError:
        return 0


def _require_cupy():
    cupy = cupy_or_none()
    if cupy is None:
        raise DeviceError(
            f"gpu: no usable CUDA device ({why_no_gpu()}); hint: install CuPy "
            f"(pip install 'gputape[cuda13]') on a machine with an NVIDIA GPU, or use "
            f"gt.device('cpu')"
        )
    return cupy


def list_devices() -> "list[Device]":
    """All devices gputape can use: the CPU first, then every CUDA GPU CuPy sees.

    Examples
    --------
    >>> import gputape as gt
    >>> gt.list_devices()[0]
    Device('cpu')
    """
    devices = [Device("cpu")]
    if os.environ.get(_ENV_VAR, "").strip().lower() == "cpu":
        return devices
    cupy = cupy_or_none()
    if cupy is not None:
        count = cupy.cuda.runtime.getDeviceCount()
        devices += [Device(f"gpu:{i}") for i in range(count)]
    return devices


_RESOLVED_DEFAULT: dict = {}


def _process_default() -> Device:
    if "device" not in _RESOLVED_DEFAULT:
        requested = os.environ.get(_ENV_VAR, "").strip()
        if requested:
            try:
                chosen = Device(requested)
                if chosen.kind == "gpu":
                    _check_gpu_exists(chosen)
            except DeviceError as exc:
                raise DeviceError(f"environment variable {_ENV_VAR}={requested!r}: {exc}") from None
        else:
            chosen = Device("gpu:0") if cupy_or_none() is not None else Device("cpu")
        _RESOLVED_DEFAULT["device"] = chosen
    return _RESOLVED_DEFAULT["device"]


def _check_gpu_exists(dev: Device) -> None:
    cupy = _require_cupy()
    count = cupy.cuda.runtime.getDeviceCount()
    if dev.index >= count:
        raise DeviceError(
            f"device: {dev.name} does not exist; this machine has {count} GPU(s) "
            f"(gpu:0..gpu:{count - 1})"
        )


class _Scope(threading.local):
    def __init__(self) -> None:
        self.stack: list[Device] = []


_scope = _Scope()


def default_device() -> Device:
    """The device new tensors are placed on: the innermost ``gt.device(...)`` scope, else
    ``$GPUTAPE_DEVICE``, else the first GPU when CuPy sees one, else the CPU.

    Examples
    --------
    >>> import gputape as gt
    >>> with gt.device("cpu"):
    ...     gt.default_device()
    Device('cpu')
    """
    stack = _scope.stack
    return stack[-1] if stack else _process_default()


@contextlib.contextmanager
def device(spec: "str | Device") -> Iterator[Device]:
    """Context manager that places new tensors on ``spec`` (``"cpu"``, ``"gpu"``, ``"gpu:N"``).

    Examples
    --------
    >>> import gputape as gt
    >>> with gt.device("cpu"):
    ...     x = gt.constant([1.0, 2.0])
    >>> x.device
    Device('cpu')
    """
    dev = Device(spec)
    if dev.kind == "gpu":
        _check_gpu_exists(dev)
    _scope.stack.append(dev)
    try:
        yield dev
    finally:
        _scope.stack.pop()


def device_of(array) -> Device:
    """The device an array lives on (NumPy arrays: the CPU)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return _CPU
    return Device(f"gpu:{array.device.id}")


def namespace_of(array):
    """``numpy`` for a NumPy array, ``cupy`` for a CuPy array."""
    if isinstance(array, np.ndarray):
        return np
    return _require_cupy()


def move(array, dev: Device):
    """Copy ``array`` to ``dev`` (no copy when it is already there)."""
    if dev.kind == "cpu":
        if isinstance(array, np.ndarray):
            return array
        return array.get()
    cupy = _require_cupy()
    if isinstance(array, cupy.ndarray) and array.device.id != dev.index and not (
            array.flags.c_contiguous):
        # CuPy copies between GPUs only from contiguous memory (NotImplementedError for a
        # strided or broadcast view): make it contiguous on its own GPU first.
        with array.device:
            array = cupy.ascontiguousarray(array)
    with cupy.cuda.Device(dev.index):
        return cupy.asarray(array)


_CPU = Device("cpu")
