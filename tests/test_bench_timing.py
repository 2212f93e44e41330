"""The runner's timing, checked without a GPU: the host clock path with a fake clock, and the
GPU path (CUDA events, synchronisation, the copy ceiling, the GPU's name and versions) with a
stand-in CuPy put where ``bench`` imports it from (``sys.modules``). The stand-in keeps a log
of what was called in which order and a clock that each call of the workload moves on."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from bench import timing

WARMUP_S = 100.0  # a warm-up call takes this long: timed, it would swamp every sample


class _Clock:
    def __init__(self, durations):
        self.now, self.log, self.durations = 0.0, [], list(durations)

    def work(self):
        """A call of the workload: logged, and the clock moves on by the next duration."""
        self.log.append("run")
        self.now += self.durations.pop(0)


class _Event:
    count = 0

    def __init__(self, clock):
        _Event.count += 1
        self.clock, self.name, self.time, self.synced = clock, f"event{_Event.count}", None, False

    def record(self, stream=None):
        assert stream == "current stream", "events go on the device's current stream"
        self.time, self.synced = self.clock.now, False
        self.clock.log.append(("record", self.name))

    def synchronize(self):
        self.synced = True
        self.clock.log.append(("wait", self.name))


class _FakeArray:
    """What the copy ceiling reads of a CuPy array, without the memory."""

    def __init__(self, first, count, itemsize=4):
        self.first, self.size, self.nbytes = first, count, count * itemsize


def _fake_cupy(clock, free_bytes=64 * 2**30, copy_gb_per_s=1000.0):
    cupy = types.ModuleType("cupy")
    cupy.__version__ = "13.6.0"
    cupy.uint32 = np.uint32
    copies = []

    class Device:
        def __init__(self, index):
            self.index = index

        def synchronize(self):
            clock.log.append(("device sync", self.index))

        def __enter__(self):
            clock.log.append(("on", self.index))
            return self

        def __exit__(self, *exc):
            return False

    def elapsed_ms(start, end):
        assert end.synced, "the end event is waited for before its time is read"
        clock.log.append("elapsed")
        return (end.time - start.time) * 1e3

    def copyto(dst, src):
        assert dst.nbytes == src.nbytes
        copies.append(src)
        clock.log.append("copy")
        clock.now += 2 * src.nbytes / (copy_gb_per_s * 1e9)

    runtime = types.SimpleNamespace(
        getDeviceProperties=lambda i: {"name": f"Fake GPU {i}".encode()},
        driverGetVersion=lambda: 12040, runtimeGetVersion=lambda: 12030,
        memGetInfo=lambda: (free_bytes, 80 * 2**30), getDeviceCount=lambda: 2)
    cupy.cuda = types.SimpleNamespace(
        Device=Device, Event=lambda: _Event(clock), runtime=runtime,
        get_current_stream=lambda: "current stream", get_elapsed_time=elapsed_ms)
    cupy.arange = lambda start, stop, dtype: _FakeArray(start, stop - start)
    cupy.empty_like = lambda a: _FakeArray(None, a.size)
    cupy.copyto = copyto
    cupy.copies = copies
    return cupy


def _install(monkeypatch, cupy):
    monkeypatch.setitem(sys.modules, "cupy", cupy)


SAMPLES = [3.0, 1.0, 2.0, 9.0, 4.0]  # median 3 (mean 3.8, min 1)


def test_gpu_samples_are_timed_with_cuda_events(monkeypatch):
    clock = _Clock([WARMUP_S, WARMUP_S, 0.5, *SAMPLES])
    _install(monkeypatch, _fake_cupy(clock))
    result = timing.measure(clock.work, "gpu:1", repeat=5, warmup=2, min_time_s=0.0)
    assert result.median_s == pytest.approx(3.0)
    assert result.spread_s == pytest.approx(6.5 - 1.5)  # SAMPLES' quartiles (exclusive method)
    assert (result.repeats, result.loops, result.clock) == (5, 1, "cuda-events")
    log = clock.log
    assert log[:4] == [("on", 1), "run", "run", ("device sync", 1)]  # warm-up: no event
    # the calibrating call, then each sample: events around the calls, the end event waited
    # for before its time is read, then the device synchronized
    body = log[4:]
    for i in range(6):
        start, end = body[6 * i][1], body[6 * i + 2][1]
        assert body[6 * i:6 * i + 6] == [("record", start), "run", ("record", end),
                                         ("wait", end), "elapsed", ("device sync", 1)]
    assert len(body) == 36


def test_gpu_samples_loop_short_calls_and_report_time_per_call(monkeypatch):
    clock = _Clock([1.0, 0.01] + [0.01, 0.03] * 3)
    _install(monkeypatch, _fake_cupy(clock))
    result = timing.measure(clock.work, "gpu:0", repeat=3, warmup=1, min_time_s=0.025)
    assert result.loops == 2 and result.median_s == pytest.approx(0.02)
    assert clock.log.count("run") == 1 + 1 + 3 * 2


def test_host_samples_synchronize_inside_the_timed_region(monkeypatch):
    """A peer on a GPU passes its own synchronize: the queued work must count."""
    clock = _Clock([])
    queued = []
    work = [WARMUP_S, WARMUP_S, 0.5, *SAMPLES]

    def run():  # enqueues, returns at once
        clock.log.append("run")
        queued.append(work.pop(0))

    def sync():  # waits for what was queued
        clock.log.append("sync")
        clock.now += sum(queued)
        queued.clear()

    monkeypatch.setattr(timing, "_now", lambda: clock.now)
    result = timing.measure(run, "gpu:0", repeat=5, warmup=2, min_time_s=0.0, sync=sync)
    assert result.median_s == pytest.approx(3.0) and result.clock == "host"
    assert clock.log[:3] == ["run", "run", "sync"]
    assert clock.log[3:] == ["run", "sync"] * 6


def test_cpu_samples_exclude_warm_up_and_report_the_median(monkeypatch):
    clock = _Clock([WARMUP_S, WARMUP_S, 0.5, *SAMPLES])
    monkeypatch.setattr(timing, "_now", lambda: clock.now)
    result = timing.measure(clock.work, "cpu", repeat=5, warmup=2, min_time_s=0.0)
    assert result.median_s == pytest.approx(3.0)
    assert (result.repeats, result.clock) == (5, "host")


def test_measure_refuses_no_samples():
    with pytest.raises(ValueError, match="repeat=0"):
        timing.measure(lambda: None, "cpu", repeat=0)


def test_gpu_copy_ceiling_is_a_device_copy_timed_with_events(monkeypatch):
    clock = _Clock([])
    cupy = _fake_cupy(clock, copy_gb_per_s=2500.0)
    _install(monkeypatch, cupy)
    ceiling = timing.copy_ceiling("gpu:1", repeat=3)
    assert ceiling["buffer_bytes"] == 256 * 2**20
    assert ceiling["gb_per_s"] == pytest.approx(2500.0)  # bytes read + bytes written
    assert all(src.first >= 1 for src in cupy.copies)  # 1, 2, 3, ...: no zeros
    assert clock.log[0] == ("on", 1)
    assert clock.log.count("copy") == 2 + 1 + 3  # warm-up, calibration, samples
    assert clock.log.count("elapsed") == 1 + 3


def test_gpu_copy_ceiling_fits_in_free_memory(monkeypatch):
    clock = _Clock([])
    _install(monkeypatch, _fake_cupy(clock, free_bytes=64 * 2**20))
    assert timing.copy_ceiling("gpu:0", repeat=1)["buffer_bytes"] == 16 * 2**20


def test_cpu_copy_ceiling_counts_bytes_read_and_written():
    ceiling = timing.copy_ceiling("cpu", 2**20, repeat=3)
    assert ceiling["buffer_bytes"] == 2**20 and ceiling["repeats"] == 3
    assert ceiling["gb_per_s"] == pytest.approx(2 * 2**20 / ceiling["median_s"] / 1e9)
    assert "np.copyto" in ceiling["method"]
    assert timing.cpu_ceiling_bytes(10**3) == 64 * 2**20  # out of the caches
    assert timing.cpu_ceiling_bytes(10**8) == 4 * 10**8  # the largest array of the run
    assert timing.cpu_ceiling_bytes(10**10) == 2**30


def test_meta_names_the_gpus_and_cuda_versions(monkeypatch):
    from bench.__main__ import _meta

    _install(monkeypatch, _fake_cupy(_Clock([])))
    meta = _meta(True, ["cpu", "gpu:0", "gpu:1"])
    assert meta["devices"]["gpu:0"] == "Fake GPU 0" and meta["devices"]["gpu:1"] == "Fake GPU 1"
    assert meta["devices"]["cpu"] == meta["cpu"]
    assert meta["gpu"] == "Fake GPU 0"
    assert (meta["cupy"], meta["cuda_driver"], meta["cuda_runtime"]) == ("13.6.0", "12.4", "12.3")
    assert "CUDA events" in meta["timing"]
    cpu_run = _meta(True, ["cpu", "gpu:1"])  # the machine's GPU is named, measured or not
    assert cpu_run["gpu"] == "Fake GPU 1" and list(cpu_run["devices"]) == ["cpu", "gpu:1"]
    assert _meta(True, ["cpu"])["gpu"] == "Fake GPU 0"
    plain = _meta(False)
    assert plain["gpu"] == "no GPU found" and list(plain["devices"]) == ["cpu"]
    assert "cupy" not in plain


def test_gpu_synchronizer_waits_for_the_device(monkeypatch):
    clock = _Clock([])
    _install(monkeypatch, _fake_cupy(clock))
    timing.synchronizer("gpu:1")()
    timing.synchronizer("cpu")()
    assert clock.log == [("device sync", 1)]
