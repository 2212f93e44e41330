"""Devices: listing, the default device and its sources (scope, $GPUTAPE_DEVICE, hardware),
placement of results, mismatch errors, lazy CuPy, and GPU round trips.

Tests that need a GPU carry the ``gpu`` marker and skip with a stated reason when
``gt.list_devices()`` holds none. Process-wide choices ($GPUTAPE_DEVICE, a missing CuPy) are
tested in fresh subprocesses.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from helpers import NO_GPU, host, run_python

import gputape as gt
from gputape.core.device import nvidia_gpus_listed

GPUS = [d.name for d in gt.list_devices() if d.name.startswith("gpu")]
HAS_GPU = bool(GPUS)
HAS_GPU_REASON = "a CUDA GPU is present, so the no-GPU behaviour cannot be observed here"


def requires_gpu(test):
    return pytest.mark.gpu(pytest.mark.skipif(not HAS_GPU, reason=NO_GPU)(test))


# -- listing and the default device ------------------------------------------------------------


def test_list_devices_cpu_first():
    devices = gt.list_devices()
    assert devices and all(isinstance(d, gt.Device) for d in devices)
    assert devices[0] == gt.Device("cpu") and devices[0].name == "cpu"
    names = [d.name for d in devices]
    assert len(set(names)) == len(names)
    assert names[1:] == [f"gpu:{i}" for i in range(len(names) - 1)]


def test_default_device_is_listed():
    default = gt.default_device()
    assert isinstance(default, gt.Device)
    assert default in gt.list_devices()


def test_default_device_prefers_the_first_gpu():
    result = run_python("""
        import json, gputape as gt
        print(json.dumps({"default": gt.default_device().name,
                          "tensor": gt.constant(1.0).device.name,
                          "devices": [d.name for d in gt.list_devices()]}))
    """)
    assert result["devices"][0] == "cpu"
    expected = "gpu:0" if "gpu:0" in result["devices"] else "cpu"
    assert result["default"] == expected and result["tensor"] == expected
    if "GPUTAPE_DEVICE" not in os.environ:
        assert result["devices"] == [d.name for d in gt.list_devices()]


@pytest.mark.parametrize("value", ["cpu", "CPU", " cpu "])
def test_env_var_selects_cpu(value):
    result = run_python("""
        import json, gputape as gt
        x = gt.constant([1.0, 2.0])
        print(json.dumps({"default": gt.default_device().name, "tensor": x.device.name,
                          "devices": [d.name for d in gt.list_devices()]}))
    """, env={"GPUTAPE_DEVICE": value})
    assert result == {"default": "cpu", "tensor": "cpu", "devices": ["cpu"]}


_RAISES_ON_FIRST_TENSOR = """
    import json, gputape as gt
    try:
        gt.constant(1.0)
        print(json.dumps({"raised": None}))
    except gt.DeviceError as exc:
        print(json.dumps({"raised": type(exc).__name__, "message": str(exc)}))
"""


def test_env_var_with_a_bad_value_raises_clear_error():
    result = run_python(_RAISES_ON_FIRST_TENSOR, env={"GPUTAPE_DEVICE": "tpu:7"})
    assert result["raised"] == "DeviceError"
    assert "tpu:7" in result["message"] and "GPUTAPE_DEVICE" in result["message"]


@pytest.mark.skipif(HAS_GPU, reason=HAS_GPU_REASON)
def test_env_var_naming_a_missing_gpu_raises():
    result = run_python(_RAISES_ON_FIRST_TENSOR, env={"GPUTAPE_DEVICE": "gpu"})
    assert result["raised"] == "DeviceError"
    assert "gpu" in result["message"] and "cpu" in result["message"]


# -- lazy CuPy --------------------------------------------------------------------------------

# A stand-in "cupy" appended to sys.path: a real CuPy still wins, and on machines without one an
# import of the stand-in still lands in sys.modules, so these tests can fail everywhere.
_FAKE_CUPY = """
    import os, sys
    sys.path.append(os.environ["FAKE_CUPY_DIR"])
"""


@pytest.fixture
def fake_cupy(tmp_path) -> dict:
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("FAKE = True\n")
    return {"FAKE_CUPY_DIR": str(tmp_path)}


def test_import_does_not_import_cupy(fake_cupy):
    result = run_python(_FAKE_CUPY, """
        import json, sys
        import gputape as gt
        print(json.dumps({"cupy": "cupy" in sys.modules, "cupyx": "cupyx" in sys.modules}))
    """, env=fake_cupy)
    assert result == {"cupy": False, "cupyx": False}


def test_cpu_work_with_env_cpu_does_not_import_cupy(fake_cupy):
    result = run_python(_FAKE_CUPY, """
        import json, sys
        import numpy as np
        import gputape as gt
        x = gt.constant([1.0, 2.0, 3.0])
        v = gt.Variable(np.ones((3, 2), np.float32))
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.reduce_sum(gt.exp(x) @ v) + x[0] * 2.0
        g = tape.gradient(y, [x, v])
        with gt.device("cpu"):
            z = gt.zeros((2, 2)) + 1
        print(json.dumps({"cupy": "cupy" in sys.modules, "device": x.device.name,
                          "default": gt.default_device().name,
                          "devices": [d.name for d in gt.list_devices()],
                          "grad": g[0].numpy().tolist(), "z": float(gt.reduce_sum(z))}))
    """, env={"GPUTAPE_DEVICE": "cpu", **fake_cupy})
    assert result["cupy"] is False
    assert result["device"] == "cpu" and result["default"] == "cpu"
    assert result["devices"] == ["cpu"]
    expected = 2 * np.exp(np.array([1.0, 2.0, 3.0])) + np.array([2.0, 0.0, 0.0])
    np.testing.assert_allclose(result["grad"], expected, rtol=1e-5)
    assert result["z"] == 4.0


# Finders that make CuPy look absent: one refuses the import while the module is looked up,
# the other finds a spec whose loader fails (an installed but unusable CuPy).
_BLOCKERS = {
    "finder-raises": """
        import importlib.abc, sys
        class BlockCupy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "cupy" or name.startswith(("cupy.", "cupyx")):
                    raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
                return None
        sys.meta_path.insert(0, BlockCupy())
    """,
    "loader-raises": """
        import importlib.abc, importlib.machinery, sys
        class FailingLoader(importlib.abc.Loader):
            def create_module(self, spec):
                raise ImportError("cupy is blocked in this test")
            def exec_module(self, module):
                raise ImportError("cupy is blocked in this test")
        class BlockCupy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "cupy" or name.startswith(("cupy.", "cupyx")):
                    return importlib.machinery.ModuleSpec(name, FailingLoader())
                return None
        sys.meta_path.insert(0, BlockCupy())
    """,
}


@pytest.mark.parametrize("blocker", list(_BLOCKERS))
def test_without_cupy_the_default_device_is_cpu(blocker):
    result = run_python(_BLOCKERS[blocker], """
        import json, sys
        import gputape as gt
        out = {"default": gt.default_device().name,
               "devices": [d.name for d in gt.list_devices()],
               "tensor": gt.constant([1.0]).device.name,
               "cupy": "cupy" in sys.modules}
        try:
            with gt.device("gpu"):
                pass
            out["gpu_scope"] = None
        except gt.DeviceError as exc:
            out["gpu_scope"] = str(exc)
        print(json.dumps(out))
    """)
    assert result["default"] == "cpu" and result["tensor"] == "cpu"
    assert result["devices"] == ["cpu"]
    assert result["cupy"] is False
    assert result["gpu_scope"] is not None and "cpu" in result["gpu_scope"]


# -- device names and scopes --------------------------------------------------------------------


@pytest.mark.parametrize("spec, name", [
    ("cpu", "cpu"), ("CPU", "cpu"), ("/device:CPU:0", "cpu"), ("cpu:0", "cpu"),
    ("gpu", "gpu:0"), ("gpu:0", "gpu:0"), ("GPU:1", "gpu:1"), ("cuda:2", "gpu:2"),
])
def test_device_names_parse(spec, name):
    dev = gt.Device(spec)
    assert dev.name == name and str(dev) == name
    assert dev == name and dev == gt.Device(name)
    assert hash(dev) == hash(gt.Device(name))


@pytest.mark.parametrize("spec", ["tpu", "gpu:x", "cpu:1", "", 3, None])
def test_bad_device_names_raise(spec):
    with pytest.raises(gt.DeviceError) as info:
        gt.Device(spec)
    assert isinstance(info.value, gt.GputapeError)
    assert repr(spec) in str(info.value) or str(spec) in str(info.value)
    with pytest.raises(gt.DeviceError):
        with gt.device(spec):
            pass
    assert gt.Device("cpu") != spec


def test_device_scope_nests_and_restores():
    before = gt.default_device()
    with gt.device("cpu") as dev:
        assert dev == "cpu" and isinstance(dev, gt.Device)
        assert gt.default_device() == "cpu"
        with gt.device(gt.Device("cpu")):
            assert gt.default_device() == "cpu"
        assert gt.constant(1.0).device == "cpu"
    assert gt.default_device() == before
    with pytest.raises(KeyError):
        with gt.device("cpu"):
            raise KeyError("inside the scope")
    assert gt.default_device() == before


def test_tensors_and_results_land_on_the_scoped_device(device):
    made = [gt.constant([1.0, 2.0]), gt.convert_to_tensor([1.0]), gt.Variable([1.0]),
            gt.zeros((2,)), gt.ones((2,)), gt.fill((2,), 3.0), gt.eye(2), gt.range(3),
            gt.linspace(0.0, 1.0, 3), gt.zeros_like([1.0, 2.0])]
    for t in made:
        assert t.device == device, repr(t)
    x = gt.constant(np.arange(6.0).reshape(2, 3))
    results = [x + 1, 2.0 * x, x ** 2, -x, x @ gt.transpose(x), gt.reduce_sum(x, 0), x[0],
               x > 2, gt.exp(x), gt.maximum(x, 1), gt.reshape(x, (3, 2)), x + [1.0, 2.0, 3.0],
               x * np.ones(3)]
    for r in results:
        assert r.device == device, repr(r)
    assert type(results[0].numpy()) is np.ndarray
    np.testing.assert_array_equal(host(results[0]), np.arange(6.0).reshape(2, 3) + 1)


def test_results_follow_operands_not_the_scope(device):
    x = gt.constant([1.0, 2.0], device=device)
    with gt.device("cpu"):
        y = x * 3.0 + 1
    assert y.device == device
    np.testing.assert_array_equal(host(y), [4.0, 7.0])


def test_gradient_lives_on_the_source_device(device):
    x = gt.constant(np.array([0.5, 1.0, 2.0]))
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(gt.sin(x) * 2.0)
    g = tape.gradient(y, x)
    assert g.device == device and g.dtype == np.float64
    np.testing.assert_allclose(host(g), 2.0 * np.cos([0.5, 1.0, 2.0]), rtol=1e-12)


@pytest.mark.skipif(HAS_GPU, reason=HAS_GPU_REASON)
def test_asking_for_a_missing_gpu_raises():
    with pytest.raises(gt.DeviceError) as info:
        with gt.device("gpu"):
            pass
    assert isinstance(info.value, RuntimeError) and "cpu" in str(info.value)
    with pytest.raises(gt.DeviceError):
        gt.constant(1.0, device="gpu:0")
    with pytest.raises(gt.DeviceError):
        gt.constant([1.0]).to("gpu")
    assert gt.default_device() == "cpu"
    assert float(gt.constant(2.0) * 2) == 4.0  # nothing broken afterwards


# -- GPU only ------------------------------------------------------------------------------

MIXED_OPS = {
    "add": lambda a, b: gt.add(a, b),
    "operator*": lambda a, b: a * b,
    "matmul": lambda a, b: a @ b,
    "maximum": gt.maximum,
    "where": lambda a, b: gt.where(a > 0, a, b),
    "concat": lambda a, b: gt.concat([a, b], axis=0),
}


@requires_gpu
@pytest.mark.parametrize("name", list(MIXED_OPS))
@pytest.mark.parametrize("order", ["cpu-first", "gpu-first"])
def test_mixing_cpu_and_gpu_tensors_raises(name, order):
    cpu = gt.constant(np.ones((2, 2), np.float32), device="cpu")
    gpu = gt.constant(np.ones((2, 2), np.float32), device="gpu:0")
    a, b = (cpu, gpu) if order == "cpu-first" else (gpu, cpu)
    with pytest.raises(gt.DeviceMismatchError) as info:
        MIXED_OPS[name](a, b)
    assert isinstance(info.value, TypeError)
    message = str(info.value)
    assert "cpu" in message and "gpu:0" in message and ".to(" in message
    np.testing.assert_array_equal(host(MIXED_OPS[name](a, b.to(a.device))),
                                  host(MIXED_OPS[name](a.to("cpu"), b.to("cpu"))))


@requires_gpu
def test_python_values_are_fine_next_to_gpu_tensors():
    x = gt.constant([1.0, 2.0], device="gpu:0")
    for out in (x + 1, 2.5 * x, x - [1.0, 1.0], x * np.array([2.0, 2.0], np.float32),
                gt.maximum(x, 1.5), 1.0 / x):
        assert out.device == "gpu:0"
    np.testing.assert_array_equal(host(x * 3 + 1), [4.0, 7.0])


@requires_gpu
def test_gpu_tensor_facts_and_host_copies():
    with gt.device("gpu") as dev:
        assert dev == "gpu:0"
        x = gt.constant(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert x.device == "gpu:0"
    a = x.numpy()
    assert type(a) is np.ndarray
    a[0, 0] = 99.0
    b = np.asarray(x)
    assert type(b) is np.ndarray
    np.testing.assert_array_equal(b, np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert repr(gt.constant([1.0, 2.0], device="gpu")) == (
        "<gt.Tensor shape=(2,) dtype=float32 device=gpu:0 numpy=[1. 2.]>")
    assert float(x[1, 2]) == 5.0 and len(x) == 2


@requires_gpu
def test_to_gpu_round_trip_with_gradient_flowing_back():
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    w = np.array([1.0, -2.0, 0.5])
    x = gt.constant(a, device="cpu")
    with gt.GradientTape() as tape:
        tape.watch(x)
        on_gpu = x.to("gpu")
        assert on_gpu.device == "gpu:0"
        y_gpu = gt.reduce_sum(gt.sin(on_gpu) * gt.constant(w, device="gpu:0"))
        y = y_gpu.to("cpu") * 3.0
    assert y.device == "cpu"
    np.testing.assert_allclose(float(y), 3.0 * np.sum(np.sin(a) * w), rtol=1e-12)
    g = tape.gradient(y, x)
    assert g.device == "cpu" and g.dtype == np.float64 and g.shape == a.shape
    np.testing.assert_allclose(host(g), 3.0 * np.cos(a) * w, rtol=1e-12)


@requires_gpu
def test_gpu_source_through_cpu_computation():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    v = gt.Variable(a, device="gpu:0")
    with gt.GradientTape() as tape:
        y = gt.reduce_sum(v.to("cpu") ** 2) + gt.reduce_sum(v * 1.5).to("cpu")
    assert y.device == "cpu"
    g = tape.gradient(y, v)
    assert g.device == "gpu:0" and g.dtype == np.float32
    np.testing.assert_allclose(host(g), 2 * a + 1.5, rtol=1e-6)


@requires_gpu
def test_gpu_variable_refuses_cpu_values():
    v = gt.Variable([1.0, 2.0], device="gpu:0")
    with pytest.raises(gt.DeviceMismatchError) as info:
        v.assign(gt.constant([3.0, 4.0], device="cpu"))
    assert "cpu" in str(info.value) and "gpu:0" in str(info.value)
    v.assign([3.0, 4.0]).assign_add(gt.constant([1.0, 1.0], device="gpu:0"))
    assert v.device == "gpu:0"
    np.testing.assert_array_equal(host(v), [4.0, 5.0])


@requires_gpu
def test_cupy_inputs_stay_on_the_gpu():
    import cupy

    base = cupy.arange(12, dtype=cupy.float64).reshape(3, 4)
    strided = base[:, ::2]
    t = gt.constant(strided)
    assert t.device == "gpu:0" and t.dtype == np.float64
    expected = np.arange(12.0).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(host(t), expected)
    with gt.GradientTape() as tape:
        tape.watch(t)
        y = gt.reduce_sum(t * t)
    np.testing.assert_array_equal(host(tape.gradient(y, t)), 2 * expected)


@requires_gpu
def test_default_device_is_gpu_and_env_cpu_hides_it():
    plain = run_python("""
        import json, gputape as gt
        print(json.dumps({"default": gt.default_device().name,
                          "devices": [d.name for d in gt.list_devices()]}))
    """)
    assert plain["default"] == "gpu:0" and "gpu:0" in plain["devices"]
    hidden = run_python("""
        import json, gputape as gt
        print(json.dumps({"default": gt.default_device().name,
                          "devices": [d.name for d in gt.list_devices()]}))
    """, env={"GPUTAPE_DEVICE": "cpu"})
    assert hidden == {"default": "cpu", "devices": ["cpu"]}


@pytest.mark.gpu
@pytest.mark.skipif(len(GPUS) < 2, reason="needs two CUDA GPUs: fewer are listed")
def test_mixing_two_gpus_raises():
    a = gt.constant([1.0], device="gpu:0")
    b = gt.constant([1.0], device="gpu:1")
    with pytest.raises(gt.DeviceMismatchError, match="gpu:1"):
        a + b
    assert (a + b.to("gpu:0")).device == "gpu:0"


@pytest.mark.gpu
@pytest.mark.skipif(len(GPUS) < 2, reason="needs two CUDA GPUs: fewer are listed")
def test_strided_and_broadcast_views_move_between_gpus():
    base = np.arange(12.0).reshape(3, 4)
    x = gt.constant(base, device="gpu:1")
    views = {"strided": x[:, ::2], "broadcast": gt.broadcast_to(x[0], (2, 4)),
             "transposed": gt.transpose(x)}
    for name, view in views.items():
        moved = view.to("gpu:0")
        assert moved.device == "gpu:0" and moved._data.device.id == 0, name
        np.testing.assert_array_equal(moved.numpy(), view.numpy(), err_msg=name)


@requires_gpu
def test_out_of_range_index_lists_raise_on_the_gpu():
    """CuPy wraps such indices around; gputape checks them first, as on the CPU."""
    x = gt.constant([1.0, 2.0, 3.0], device="gpu:0")
    for index in ([0, 5], np.array([-4]), gt.constant([3], device="gpu:0")):
        with pytest.raises(gt.IndexOutOfRangeError, match="out of range"):
            x[index]
    with pytest.raises(gt.IndexOutOfRangeError, match="gather"):
        gt.gather(x, gt.constant([0, 3], device="gpu:0"))
    np.testing.assert_array_equal(x[[2, -3]].numpy(), [3.0, 1.0])


# -- a GPU the driver lists but CuPy cannot use ------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(nvidia_gpus_listed() == 0,
                    reason="no NVIDIA GPU on this machine: the NVIDIA driver lists none")
def test_a_gpu_the_driver_lists_is_usable():
    # Without this, a machine with a GPU but a missing or broken CuPy would skip every GPU test.
    from gputape.core.device import why_no_gpu

    assert HAS_GPU, f"the GPU tests would all skip: {why_no_gpu()}"


def test_nvidia_gpus_listed_counts_the_driver_folders(tmp_path):
    for bus in ("0000:18:00.0", "0000:3b:00.0"):
        (tmp_path / bus).mkdir()
    assert nvidia_gpus_listed(str(tmp_path)) == 2
    assert nvidia_gpus_listed(str(tmp_path / "absent")) == 0


@pytest.mark.parametrize("case", ["not installed", "no device", "broken"])
def test_why_no_gpu_names_the_cause(case, monkeypatch):
    import importlib
    import importlib.machinery
    import importlib.util
    import types

    device_module = importlib.import_module("gputape.core.device")  # gt.device is the function
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 0)
    if case == "broken":
        def fail():
            raise RuntimeError("cudaErrorInsufficientDriver")

        runtime.getDeviceCount = fail
    fake = types.ModuleType("cupy")
    fake.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    fake.cuda = types.SimpleNamespace(runtime=runtime)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        None if case == "not installed" and name == "cupy" else real_find_spec(name, *a)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(device_module, "_CUPY_STATE", {})
    monkeypatch.setattr(device_module, "nvidia_gpus_listed", lambda *a: 1)

    assert device_module.cupy_or_none() is None
    expected = {"not installed": "CuPy is not installed", "no device": "CuPy sees no CUDA device",
                "broken": "CuPy failed to start: RuntimeError: cudaErrorInsufficientDriver"}[case]
    why = device_module.why_no_gpu()
    assert why == f"{expected} although the NVIDIA driver lists 1 GPU(s)"
    with pytest.raises(gt.DeviceError) as raised:
        _ = device_module.Device("gpu:0").xp
    assert why in str(raised.value) and "gt.device('cpu')" in str(raised.value)
