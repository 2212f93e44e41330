"""The CUDA kernels compiled by NVRTC exactly as ``cupy.RawModule`` compiles them, without a GPU.

NVRTC is a library: compiling needs no driver, only loading the result does. CuPy assembles
its options in ``cupy._core.core.compile_with_cache`` (include folders, then ``-ftz=true``, the
architecture and ``--device-as-default-execution-space`` further down) and hands them to
``_NVRTCProgram.compile``. :func:`cupy_options` runs that assembly on the loader's source and
options, stops at the hand-over, and returns what NVRTC would have been given; :func:`build`
compiles with those options (plus ptxas' resource report) and keeps the log and the PTX.

The two places that would ask a driver for the current GPU's architecture are given ``arch``
instead: the per-device memo ``_get_arch_for_options_for_nvrtc`` (replaced by its own rule for
a named architecture) and nothing else. ``CUPY_CACHE_IN_MEMORY=1`` keeps CuPy's disk cache out.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass

from gputape.cuda import loader

ARCHS = ("90", "100")  # Hopper (H100/H200) and Blackwell (B200)
MODULES = tuple(sorted(path.stem for path in loader.kernel_dir().glob("*.cu")))
REQUIRE = "GPUTAPE_REQUIRE_NVRTC"  # set to 1 (as `make test` does): no NVRTC fails, not skips
_lock = threading.Lock()


def unavailable() -> "str | None":
    """Why NVRTC cannot be used through CuPy here, or None when it can."""
    try:
        import cupy  # noqa: F401
        from cupy._core import core  # noqa: F401
        from cupy.cuda import compiler  # noqa: F401
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as error:  # noqa: BLE001 - any failure means: no NVRTC here
        return (f"CuPy's NVRTC is not usable ({type(error).__name__}: {error}); hint: "
                f"pip install -e '.[gpu-check]'")
    return None


class _Handed(Exception):
    """Raised by the spy at the point where CuPy hands the options to NVRTC."""

    def __init__(self, options: tuple) -> None:
        super().__init__("captured")
        self.options = options


def cupy_options(source: str, options: tuple, arch: str) -> tuple:
    """The options CuPy 14 passes to NVRTC for ``RawModule(code=source, options=options)`` on
    a GPU of compute capability ``arch``."""
    from cupy._core import core
    from cupy.cuda import compiler

    program = compiler._NVRTCProgram
    real_compile = program.compile
    real_arch = compiler._get_arch_for_options_for_nvrtc
    assert int(arch) <= int(compiler._get_max_compute_capability()), (
        f"this NVRTC does not know sm_{arch}")

    def spy(self, options=(), log_stream=None):
        if self.src == source:
            raise _Handed(tuple(options))
        return real_compile(self, options, log_stream)  # CuPy's empty-file probe

    with _lock:
        saved = os.environ.get("CUPY_CACHE_IN_MEMORY")
        os.environ["CUPY_CACHE_IN_MEMORY"] = "1"
        program.compile = spy
        # Real rule for a named architecture when CUPY_COMPILE_WITH_PTX is unset: a cubin.
        compiler._get_arch_for_options_for_nvrtc = lambda a=None: (f"-arch=sm_{a}", "cubin")
        try:
            core.compile_with_cache(source, tuple(options), arch=arch,
                                    prepend_cupy_headers=False)
        except _Handed as handed:
            return handed.options
        finally:
            program.compile = real_compile
            compiler._get_arch_for_options_for_nvrtc = real_arch
            if saved is None:
                os.environ.pop("CUPY_CACHE_IN_MEMORY", None)
            else:
                os.environ["CUPY_CACHE_IN_MEMORY"] = saved
    raise AssertionError("CuPy never handed the kernel source to NVRTC")


class CompileError(AssertionError):
    pass


_ENTRY = re.compile(r"\.entry\s+(\w+)\s*\(([^)]*)\)")
_PARAM = re.compile(r"\.param\s+(?:\.align\s+\d+\s+)?\.(\w+)\s+\w+")
_PTXAS_INFO = re.compile(r"^ptxas(\s+info\s*:|\s+\.)")
_FUNCTION = re.compile(r"Compiling entry function '(\w+)'")
_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_REGISTERS = re.compile(r"Used (\d+) registers")


@dataclass(frozen=True)
class Build:
    """One module compiled for one architecture: NVRTC's options, its log, the PTX."""

    module: str
    arch: str
    options: tuple
    log: str
    ptx: str

    @property
    def warnings(self) -> list:
        """Every line of the log that is not ptxas' resource report."""
        return [line for line in self.log.splitlines()
                if line.strip() and not _PTXAS_INFO.match(line)]

    @property
    def entries(self) -> dict:
        """``{kernel name: [PTX type of each parameter, e.g. "u64", "f32"]}``."""
        return {name: _PARAM.findall(params) for name, params in _ENTRY.findall(self.ptx)}

    @property
    def resources(self) -> dict:
        """``{kernel name: (registers, spill store bytes, spill load bytes)}`` from ptxas."""
        found: dict = {}
        name = None
        spills = (0, 0)
        for line in self.log.splitlines():
            if (match := _FUNCTION.search(line)) is not None:
                name = match.group(1)
            elif (match := _SPILLS.search(line)) is not None:
                spills = (int(match.group(1)), int(match.group(2)))
            elif (match := _REGISTERS.search(line)) is not None and name is not None:
                found[name] = (int(match.group(1)), *spills)
        return found


@functools.cache
def build(module: str, arch: str, source: "str | None" = None,
          options: "tuple | None" = None) -> Build:
    """``kernels/<module>.cu`` (or ``source``) compiled as the loader has CuPy compile it."""
    from cupy_backends.cuda.libs import nvrtc

    text = loader.source(f"{module}.cu") if source is None else source
    final = cupy_options(text, loader.OPTIONS if options is None else options, arch)
    program = nvrtc.createProgram(text, f"{module}.cu", (), ())
    try:
        try:
            nvrtc.compileProgram(program, [*final, "--ptxas-options=--verbose"])
        except nvrtc.NVRTCError as error:
            raise CompileError(
                f"NVRTC failed on kernels/{module}.cu for sm_{arch} ({error}):\n"
                f"{nvrtc.getProgramLog(program)}") from None
        log = nvrtc.getProgramLog(program)
        ptx = nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)
    if isinstance(ptx, bytes):
        ptx = ptx.decode()
    return Build(module, arch, final, log.rstrip("\0"), ptx.rstrip("\0"))


def kernel_ptx(build: Build, name: str) -> str:
    """The PTX body of one entry point of ``build``."""
    start = build.ptx.index(f".entry {name}(")
    return build.ptx[start:build.ptx.index("\n}", start)]


def require_or_skip() -> None:
    """Skip the calling test when NVRTC is not usable, or fail it where it is required."""
    import pytest

    reason = unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}")
    pytest.skip(reason)


if __name__ == "__main__":  # the resource table: python tests/nvrtc_build.py
    for module in MODULES:
        for arch in ARCHS:
            for name, (registers, stores, loads) in sorted(build(module, arch).resources.items()):
                print(f"sm_{arch} {module:14} {name:34} {registers:4} registers, "
                      f"spills {stores}/{loads} bytes")
