"""Find the CUDA sources, build them with CuPy once per device, and hand out kernels.

The sources are the ``.cu``/``.cuh`` files of the top-level ``kernels/`` folder of a source
checkout, or the copy an installed wheel carries as ``gputape/_kernels``. Local ``#include``
lines are expanded here, so the text CuPy compiles (and hashes for its on-disk cache) is the
whole kernel, headers included.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from ..core.errors import DeviceError

__all__ = ["OPTIONS", "kernel_dir", "source", "function", "multiprocessors"]

# What ``cupy.RawModule`` is given besides the source; CuPy adds its own options (include
# folders, ``-ftz=true``, the GPU's architecture). ``--fmad=false`` keeps NVRTC from contracting
# a product and a sum into one fused multiply-add, so each product is rounded in the tensor's
# type, as the generic (one CuPy kernel per op) path rounds it.
OPTIONS = ("--std=c++17", "--fmad=false")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)
_PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\s*$", re.MULTILINE)
_lock = threading.Lock()
_modules: dict = {}
_functions: dict = {}
_sm_counts: dict = {}


def kernel_dir() -> Path:
    """The folder holding the kernel sources (wheel copy first, then the source checkout)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_kernels", package.parent / "kernels"):
        if (candidate / "gt_reduce.cuh").is_file():
            return candidate
    raise DeviceError(
        f"fused kernels: no CUDA sources next to the package (looked in {package / '_kernels'} "
        f"and {package.parent / 'kernels'}); hint: reinstall gputape, or set GPUTAPE_FUSED=0 to "
        f"run the generic gradients"
    )


def source(name: str) -> str:
    """The text of ``kernels/<name>`` with its local includes expanded (each header once)."""
    folder = kernel_dir()
    seen: set = set()

    def expand(file: str) -> str:
        if file in seen:
            return ""
        seen.add(file)
        text = _PRAGMA_ONCE.sub("", (folder / file).read_text())
        return _INCLUDE.sub(lambda m: expand(m.group(1)), text)

    return expand(name)


def function(module: str, name: str, device_id: int):
    """Kernel ``name`` of ``kernels/<module>.cu`` built for GPU ``device_id`` (cached)."""
    key = (module, name, device_id)
    found = _functions.get(key)
    if found is None:
        with _lock:
            found = _functions.get(key)
            if found is None:
                found = _functions[key] = _module(module, device_id).get_function(name)
    return found


def _module(module: str, device_id: int):
    import cupy

    key = (module, device_id)
    if key not in _modules:
        with cupy.cuda.Device(device_id):
            _modules[key] = cupy.RawModule(code=source(f"{module}.cu"), options=OPTIONS)
    return _modules[key]


def multiprocessors(device_id: int) -> int:
    """The number of streaming multiprocessors of GPU ``device_id`` (cached)."""
    if device_id not in _sm_counts:
        import cupy

        _sm_counts[device_id] = cupy.cuda.Device(device_id).attributes["MultiProcessorCount"]
    return _sm_counts[device_id]
