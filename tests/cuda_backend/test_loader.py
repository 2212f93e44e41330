"""The kernel loader's cache, checked without a GPU: a stand-in CuPy counts the modules it
compiles and the kernels looked up in them.

Each ``kernels/<module>.cu`` is compiled once per GPU (a CuPy module belongs to the device that
was current when it was built), each kernel looked up once per device, and nothing is compiled
before the first fused op asks for a kernel: ``import gputape`` builds nothing.
"""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest
from helpers import run_python

from gputape.cuda import loader


class _StubCupy(types.ModuleType):
    """What the loader uses of CuPy: ``RawModule``, ``cuda.Device`` (as the current device,
    and for its attributes). Records every module built and every kernel looked up."""

    def __init__(self, build_seconds: float = 0.0) -> None:
        super().__init__("cupy")
        self.built: list = []  # (current device, source text, options)
        self.lookups: list = []  # (the module's device, kernel name)
        self.attribute_reads: list = []  # device ids
        current = [0]
        stub = self

        class RawModule:
            def __init__(self, code: str, options: tuple = ()) -> None:
                time.sleep(build_seconds)  # compiling takes a while: a window for races
                self.device = current[-1]
                stub.built.append((self.device, code, options))

            def get_function(self, name: str):
                stub.lookups.append((self.device, name))
                return types.SimpleNamespace(name=name, device=self.device)

        class Device:
            def __init__(self, device_id: int) -> None:
                self.id = device_id

            def __enter__(self):
                current.append(self.id)
                return self

            def __exit__(self, *exc) -> bool:
                current.pop()
                return False

            @property
            def attributes(self) -> dict:
                stub.attribute_reads.append(self.id)
                return {"MultiProcessorCount": 100 + self.id}

        self.RawModule = RawModule
        self.cuda = types.SimpleNamespace(Device=Device)


@pytest.fixture
def stub_cupy(monkeypatch):
    """A stand-in CuPy, and the loader with empty caches (restored afterwards)."""
    stub = _StubCupy()
    monkeypatch.setitem(sys.modules, "cupy", stub)
    for cache in ("_modules", "_functions", "_sm_counts"):
        monkeypatch.setattr(loader, cache, {})
    return stub


def test_a_module_is_built_once_per_device(stub_cupy):
    first = loader.function("sum", "gt_sum_outer_f32", 0)
    assert loader.function("sum", "gt_sum_outer_f32", 0) is first
    assert [(device, options) for device, _, options in stub_cupy.built] == [
        (0, ("--std=c++17", "--fmad=false"))]
    assert stub_cupy.built[0][1] == loader.source("sum.cu")  # the headers expanded
    assert stub_cupy.lookups == [(0, "gt_sum_outer_f32")]

    # another kernel of the same module on the same device: looked up, not built again
    loader.function("sum", "gt_sum_inner_f32", 0)
    assert len(stub_cupy.built) == 1
    assert stub_cupy.lookups[-1] == (0, "gt_sum_inner_f32")

    # the same kernel on a second device: built again there, with that device current
    other = loader.function("sum", "gt_sum_outer_f32", 1)
    assert other is not first and other.device == 1
    assert [device for device, _, _ in stub_cupy.built] == [0, 1]
    assert loader.function("sum", "gt_sum_outer_f32", 1) is other
    assert loader.function("sum", "gt_sum_outer_f32", 0) is first
    assert len(stub_cupy.built) == 2 and len(stub_cupy.lookups) == 3


def test_each_module_is_its_own_source(stub_cupy):
    loader.function("sum", "gt_finish_f64", 0)
    loader.function("multiply_grad", "gt_finish_f64", 0)
    assert [code for _, code, _ in stub_cupy.built] == [
        loader.source("sum.cu"), loader.source("multiply_grad.cu")]
    assert "#include" not in "".join(code for _, code, _ in stub_cupy.built)


def test_multiprocessor_counts_are_read_once_per_device(stub_cupy):
    assert [loader.multiprocessors(d) for d in (0, 0, 1, 1, 0)] == [100, 100, 101, 101, 100]
    assert stub_cupy.attribute_reads == [0, 1]


def test_concurrent_first_calls_build_once(monkeypatch):
    stub = _StubCupy(build_seconds=0.05)
    monkeypatch.setitem(sys.modules, "cupy", stub)
    monkeypatch.setattr(loader, "_modules", {})
    monkeypatch.setattr(loader, "_functions", {})
    found: list = []
    start = threading.Barrier(8)

    def first_call():
        start.wait()
        found.append(loader.function("fused_sum", "gt_sum_grad_mul_f32", 0))

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stub.built) == 1 and len(stub.lookups) == 1
    assert all(f is found[0] for f in found)


def test_import_and_host_work_build_nothing():
    """A CuPy that sees a GPU is importable, yet ``import gputape`` and work on the host build
    no module; the first kernel asked for builds one (so the stand-in is the one in use)."""
    result = run_python("""
        import json, sys, types
        built = []

        class RawModule:
            def __init__(self, code, options=()):
                built.append(len(code))

            def get_function(self, name):
                return name

        class Device:
            def __init__(self, device_id):
                self.id = device_id

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        stub = types.ModuleType("cupy")
        stub.RawModule = RawModule
        stub.cuda = types.SimpleNamespace(
            Device=Device, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
        sys.modules["cupy"] = stub

        import gputape as gt
        from gputape.cuda import loader

        with gt.device("cpu"):
            x = gt.constant([1.0, 2.0, 3.0])
            with gt.GradientTape() as tape:
                tape.watch(x)
                total = gt.reduce_sum(x * x + x ** 3.0)
            tape.gradient(total, x)
        after_work = (len(built), len(loader._modules), len(loader._functions))
        loader.function("sum", "gt_sum_outer_f32", 0)
        print(json.dumps({"after_work": after_work, "after_first_kernel": len(built)}))
    """)
    assert result == {"after_work": [0, 0, 0], "after_first_kernel": 1}
