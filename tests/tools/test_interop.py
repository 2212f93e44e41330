"""Zero-copy interop: DLPack both ways, the CUDA Array Interface, and PyTorch.

CPU tests run everywhere. GPU tests carry the ``gpu`` marker and skip, with the reason, when
CuPy sees no CUDA device; the PyTorch ones also need a CUDA build of PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import NO_GPU, host

import gputape as gt
from gputape.core.device import cupy_or_none
from gputape.core.dlpack import export_dlpack


def requires_gpu(test):
    return pytest.mark.gpu(pytest.mark.skipif(cupy_or_none() is None, reason=NO_GPU)(test))


def shares(a: np.ndarray, b: np.ndarray) -> bool:
    return np.shares_memory(a, b)


# -- CPU: NumPy round trips ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)], ids=["0d", "1d", "2d"])
def test_numpy_round_trip_shares_memory(dtype, shape):
    a = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    x = gt.from_dlpack(a)
    assert isinstance(x, gt.Tensor) and x.device == "cpu"
    assert x.shape == shape and x.dtype == dtype
    back = np.from_dlpack(x)
    assert back.shape == shape and back.dtype == dtype
    assert shares(back, a)
    np.testing.assert_array_equal(host(x), a)


@pytest.mark.parametrize("view", ["step", "transpose", "column"])
def test_non_contiguous_views_share_memory(view):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    a = {"step": base[:, ::2], "transpose": base.T, "column": base[:, 1]}[view]
    x = gt.from_dlpack(a)
    assert x.shape == a.shape
    np.testing.assert_array_equal(host(x), a)
    back = np.from_dlpack(x)
    assert shares(back, base) and back.strides == a.strides


def test_tensor_exports_its_own_memory():
    x = gt.constant([[1.0, 2.0], [3.0, 4.0]], device="cpu")
    assert x.__dlpack_device__() == (1, 0)
    a, b = np.from_dlpack(x), np.from_dlpack(x)
    assert shares(a, b)
    np.testing.assert_array_equal(a, [[1.0, 2.0], [3.0, 4.0]])
    assert gt.from_dlpack(x).shape == (2, 2) and shares(np.from_dlpack(gt.from_dlpack(x)), a)


def test_dlpack_copy_keyword_is_honoured():
    x = gt.constant([1.0, 2.0, 3.0], device="cpu")
    copied = np.from_dlpack(x, copy=True)
    assert not shares(copied, np.from_dlpack(x))
    np.testing.assert_array_equal(copied, [1.0, 2.0, 3.0])


def test_variable_exports_its_current_value():
    v = gt.Variable([1.0, 2.0], device="cpu")
    v.assign([5.0, 6.0])
    np.testing.assert_array_equal(np.from_dlpack(v), [5.0, 6.0])


def test_cpu_tensor_has_no_cuda_array_interface():
    x = gt.constant([1.0, 2.0], device="cpu")
    assert not hasattr(x, "__cuda_array_interface__")
    with pytest.raises(AttributeError, match="cpu.*only GPU tensors"):
        x.__cuda_array_interface__  # noqa: B018 - the access is the test


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, "abc", None, object()],
                         ids=["list", "float", "str", "None", "object"])
def test_from_dlpack_rejects_non_producers(bad):
    with pytest.raises(gt.ArgumentTypeError) as info:
        gt.from_dlpack(bad)
    message = str(info.value)
    assert "from_dlpack" in message and type(bad).__name__ in message and "hint" in message
    assert isinstance(info.value, TypeError)


def test_from_dlpack_rejects_unknown_device_types():
    class OnMetal:
        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be called")

        def __dlpack_device__(self):
            return (8, 0)

    with pytest.raises(gt.DeviceError, match="device type 8"):
        gt.from_dlpack(OnMetal())


def test_cuda_producer_without_cupy_raises_device_error(monkeypatch):
    class OnCuda:
        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be called")

        def __dlpack_device__(self):
            return (2, 0)

    monkeypatch.setattr(gt.interop, "cupy_or_none", lambda: None)
    with pytest.raises(gt.DeviceError) as info:
        gt.from_dlpack(OnCuda())
    message = str(info.value)
    assert "from_dlpack" in message and "CUDA device 0" in message and "hint" in message


def test_from_dlpack_is_exported():
    assert "from_dlpack" in gt.__all__ and gt.from_dlpack is gt.interop.from_dlpack


def test_gradient_flows_through_from_dlpack():
    a = np.array([1.0, -2.0, 3.0], dtype=np.float64)
    x = gt.from_dlpack(a)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(x * x * x)
    g = tape.gradient(y, x)
    assert g.dtype == np.float64 and g.device == "cpu"
    np.testing.assert_allclose(host(g), 3 * a**2)


def test_from_dlpack_tensor_feeds_a_variable():
    w = gt.Variable(gt.from_dlpack(np.array([2.0, 3.0], dtype=np.float32)))
    with gt.GradientTape() as tape:
        y = gt.reduce_sum(w * w)
    np.testing.assert_allclose(host(tape.gradient(y, w)), [4.0, 6.0])


class _OldStyleArray(np.ndarray):
    """A NumPy array whose ``__dlpack__`` takes ``stream`` only, as before DLPack 1.0."""

    calls: list = []

    def __dlpack__(self, *, stream=None):
        _OldStyleArray.calls.append(stream)
        return np.asarray(self).__dlpack__(stream=stream)


def _consume(export) -> np.ndarray:
    """``np.from_dlpack`` of the capsule ``export()`` returns."""

    class Producer:
        def __dlpack__(self, **kwargs):
            return export()

        def __dlpack_device__(self):
            return (1, 0)

    return np.from_dlpack(Producer())


def test_export_falls_back_for_pre_dlpack_1_arrays():
    a = np.arange(4.0)
    old = a.view(_OldStyleArray)
    _OldStyleArray.calls.clear()
    shared = _consume(lambda: export_dlpack(old, max_version=(1, 0), dl_device=(1, 0)))
    assert shares(shared, a) and _OldStyleArray.calls == [None]
    copied = _consume(lambda: export_dlpack(old, max_version=(1, 0), copy=True))
    assert not shares(copied, a)
    np.testing.assert_array_equal(copied, a)
    with pytest.raises(BufferError, match="device"):
        export_dlpack(old, max_version=(1, 0), dl_device=(2, 0))


def test_export_passes_keywords_to_current_arrays():
    a = np.arange(4.0)
    copied = _consume(lambda: export_dlpack(a, max_version=(1, 0), copy=True))
    assert not shares(copied, a)
    np.testing.assert_array_equal(copied, a)
    assert shares(_consume(lambda: export_dlpack(a, max_version=(1, 0), copy=False)), a)


class _CupyLikeArray:
    """What gputape reads of a CuPy 14 array on GPU 1 for an export: ``__dlpack__`` refuses
    ``copy=True`` unless the copy goes to the host (as CuPy does), ``copy()`` lands on the
    current device (hence ``device``, a context manager making the array's GPU current)."""

    def __init__(self, values: np.ndarray, device_id: int = 1) -> None:
        self.values, self.device_id, self.log = values, device_id, []
        self.current = [0]

    @property
    def device(self):
        array = self

        class Device:
            def __enter__(self):
                array.current.append(array.device_id)

            def __exit__(self, *exc):
                array.current.pop()

        return Device()

    def __dlpack_device__(self):
        return (2, self.device_id)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        self.log.append({"copy": copy, "dl_device": dl_device})
        to_host = dl_device is not None and tuple(dl_device) == (1, 0)
        if copy and not to_host:
            raise BufferError("copy=True is only supported for copying to the host")
        return self.values.__dlpack__()

    def copy(self):
        copied = _CupyLikeArray(self.values.copy(), self.current[-1])
        self.log.append({"copied_on": self.current[-1]})
        return copied


def test_export_copy_of_a_gpu_array_copies_on_its_gpu_first():
    a = _CupyLikeArray(np.arange(3.0))
    export_dlpack(a, max_version=(1, 0), copy=True)
    assert a.log == [{"copied_on": 1}]  # the copy made, on GPU 1, before the export
    export_dlpack(a, max_version=(1, 0), dl_device=(2, 1), copy=True)
    assert a.log[-1] == {"copied_on": 1}
    export_dlpack(a, max_version=(1, 0), dl_device=(1, 0), copy=True)  # CuPy copies to host
    assert a.log[-1] == {"copy": True, "dl_device": (1, 0)}
    export_dlpack(a, max_version=(1, 0), copy=False)
    assert a.log[-1] == {"copy": False, "dl_device": None}


# -- CPU: PyTorch ----------------------------------------------------------------------------


def test_torch_cpu_round_trip_shares_memory():
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x = gt.from_dlpack(t)
    assert x.device == "cpu" and x.shape == (2, 3) and x.dtype == np.float32
    assert np.from_dlpack(x).ctypes.data == t.data_ptr()
    back = torch.from_dlpack(x)
    assert back.data_ptr() == t.data_ptr() and back.dtype == torch.float32


# -- GPU: CuPy -------------------------------------------------------------------------------


@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_cupy_round_trip_shares_memory(dtype):
    cupy = cupy_or_none()
    a = cupy.arange(12, dtype=dtype).reshape(3, 4)
    x = gt.from_dlpack(a)
    assert x.device == "gpu:0" and x.shape == (3, 4) and x.dtype == np.dtype(dtype)
    assert x.__dlpack_device__()[0] == 2
    assert x._data.data.ptr == a.data.ptr
    back = cupy.from_dlpack(x)
    assert back.data.ptr == a.data.ptr
    np.testing.assert_array_equal(host(x), cupy.asnumpy(a))


@requires_gpu
def test_cupy_export_with_copy_true():
    """CuPy's own __dlpack__ copies only to the host: gputape copies on the GPU first."""
    cupy = cupy_or_none()
    x = gt.constant([[1.0, 2.0], [3.0, 4.0]], device="gpu:0")
    copied = cupy.from_dlpack(x, copy=True)
    assert copied.data.ptr != x._data.data.ptr
    np.testing.assert_array_equal(cupy.asnumpy(copied), [[1.0, 2.0], [3.0, 4.0]])
    on_host = np.from_dlpack(x, device="cpu", copy=True)
    np.testing.assert_array_equal(on_host, [[1.0, 2.0], [3.0, 4.0]])


@requires_gpu
def test_cupy_non_contiguous_and_0d():
    cupy = cupy_or_none()
    base = cupy.arange(24, dtype=cupy.float64).reshape(4, 6)
    strided = gt.from_dlpack(base[:, ::2])
    assert cupy.from_dlpack(strided).data.ptr == base.data.ptr
    np.testing.assert_array_equal(host(strided), cupy.asnumpy(base)[:, ::2])
    scalar = gt.from_dlpack(cupy.asarray(2.5, dtype=cupy.float32))
    assert scalar.shape == () and float(scalar) == 2.5


@requires_gpu
def test_cupy_asarray_uses_the_cuda_array_interface():
    cupy = cupy_or_none()
    x = gt.constant([[1.0, 2.0], [3.0, 4.0]], device="gpu:0")
    assert hasattr(x, "__cuda_array_interface__")
    interface = x.__cuda_array_interface__
    assert interface["shape"] == (2, 2) and interface["data"][0] == x._data.data.ptr
    a = cupy.asarray(x)
    assert a.data.ptr == x._data.data.ptr
    np.testing.assert_array_equal(cupy.asnumpy(a), [[1.0, 2.0], [3.0, 4.0]])


@requires_gpu
def test_constant_and_convert_keep_cupy_arrays_on_their_gpu():
    cupy = cupy_or_none()
    a = cupy.arange(6, dtype=cupy.float32)
    for make in (gt.constant, gt.convert_to_tensor):
        x = make(a)
        assert x.device == "gpu:0" and isinstance(x._data, cupy.ndarray)
        assert x.dtype == np.float32
        # A copy, like NumPy input: later writes to `a` do not reach the immutable tensor.
        assert x._data.data.ptr != a.data.ptr
    x = gt.constant(a, dtype="float64")
    assert x.device == "gpu:0" and x.dtype == np.float64
    with gt.device("cpu"):
        assert gt.constant(a).device == "gpu:0"
    assert gt.constant(a, device="cpu").device == "cpu"


@requires_gpu
def test_gradient_flows_through_a_cupy_from_dlpack_tensor():
    cupy = cupy_or_none()
    x = gt.from_dlpack(cupy.asarray([1.0, -2.0, 3.0]))
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(x * x)
    g = tape.gradient(y, x)
    assert g.device == "gpu:0"
    np.testing.assert_allclose(host(g), [2.0, -4.0, 6.0])


# -- GPU: PyTorch ----------------------------------------------------------------------------


def _cuda_torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA build of PyTorch and a GPU: torch.cuda.is_available() is False")
    return torch


@requires_gpu
def test_torch_from_gputape_gpu_tensor_shares_memory():
    torch = _cuda_torch()
    x = gt.constant([[1.0, 2.0], [3.0, 4.0]], device="gpu:0")
    t = torch.from_dlpack(x)
    assert t.is_cuda and t.device.index == 0 and t.data_ptr() == x._data.data.ptr
    assert t.dtype == torch.float32 and tuple(t.shape) == (2, 2)


@requires_gpu
def test_gputape_from_torch_gpu_tensor_shares_memory():
    torch = _cuda_torch()
    t = torch.arange(8, dtype=torch.float64, device="cuda:0").reshape(2, 4)
    x = gt.from_dlpack(t)
    assert x.device == "gpu:0" and x.shape == (2, 4) and x.dtype == np.float64
    assert x._data.data.ptr == t.data_ptr()
    np.testing.assert_array_equal(host(x), t.cpu().numpy())
