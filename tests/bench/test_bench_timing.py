"""The runner's timing, checked without a GPU: the host clock path with a fake clock, and the
GPU path (CUDA events, synchronisation, the copy ceiling both ways, the card's specified peak,
the GPU's name and versions) with a stand-in CuPy put where ``bench`` imports it from
(``sys.modules``). The stand-in keeps a log of what was called in which order and a clock that
each call of the workload moves on; its arrays are NumPy arrays, and its copies (``copyto`` and
the copy kernel's launches, which it records) are done in NumPy. The copy kernel itself is
compiled with CuPy's NVRTC where that is installed."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from gputape.bench import timing

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


def _fake_cupy(clock, free_bytes=64 * 2**30, copy_gb_per_s=1000.0, kernel_gb_per_s=None,
               name="Fake GPU {}", kernel_copies=True, memcpy_copies=True):
    """CuPy as the runner uses it. ``copyto`` (the memcpy) and the copy kernel move the clock on
    at their own GB/s (bytes read + bytes written); ``*_copies=False`` makes one of them leave
    its destination untouched. ``name`` is each GPU's name, ``{}`` its index."""
    cupy = types.ModuleType("cupy")
    cupy.__version__ = "13.6.0"
    cupy.uint32 = np.uint32
    kernel_gb_per_s = kernel_gb_per_s or copy_gb_per_s
    cupy.copies, cupy.kernels, cupy.launches = [], [], []

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
        cupy.copies.append(src)
        clock.log.append("copy")
        if memcpy_copies:
            np.copyto(dst, src)
        clock.now += 2 * src.nbytes / (copy_gb_per_s * 1e9)

    class RawKernel:
        """Records its source and its launches; a launch copies as the kernel's arguments say:
        ``(src, dst, nbytes)``, the first ``nbytes`` bytes of ``src`` into ``dst``."""

        def __init__(self, code, name, options=()):
            cupy.kernels.append({"code": code, "name": name, "options": tuple(options)})

        def __call__(self, grid, block, args):
            src, dst, nbytes = args
            assert isinstance(grid, tuple) and isinstance(block, tuple)
            assert isinstance(nbytes, np.uint64), "the kernel takes an unsigned long long"
            assert int(nbytes) <= min(src.nbytes, dst.nbytes)
            cupy.launches.append({"grid": grid, "block": block, "src": src, "dst": dst,
                                  "nbytes": int(nbytes)})
            clock.log.append("kernel")
            if kernel_copies:
                dst.view(np.uint8)[:int(nbytes)] = src.view(np.uint8)[:int(nbytes)]
            clock.now += 2 * int(nbytes) / (kernel_gb_per_s * 1e9)

    runtime = types.SimpleNamespace(
        getDeviceProperties=lambda i: {"name": name.format(i).encode(),
                                       "multiProcessorCount": 132,
                                       "maxThreadsPerMultiProcessor": 2048},
        driverGetVersion=lambda: 12040, runtimeGetVersion=lambda: 12030,
        memGetInfo=lambda: (free_bytes, 80 * 2**30), getDeviceCount=lambda: 2)
    cupy.cuda = types.SimpleNamespace(
        Device=Device, Event=lambda: _Event(clock), runtime=runtime,
        get_current_stream=lambda: "current stream", get_elapsed_time=elapsed_ms)
    cupy.arange = lambda start, stop, dtype: np.arange(start, stop, dtype=dtype)
    cupy.empty_like, cupy.zeros_like = np.empty_like, np.zeros_like
    cupy.array_equal = np.array_equal
    cupy.copyto = copyto
    cupy.RawKernel = RawKernel
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
    # the calibrating call, then each sample (on its device: entered once per sample): events
    # around the calls, the end event waited for before its time is read, then the device
    # synchronized
    assert log.count(("on", 1)) == 1 + 5
    body = [step for step in log[4:] if step != ("on", 1)]
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


ODD_BUFFER = 2 * 2**20 + 12  # 2 MiB and three uint32: a tail past the last 16-byte vector


def test_gpu_copy_ceiling_times_the_memcpy_and_the_kernel_with_events(monkeypatch):
    clock = _Clock([])
    cupy = _fake_cupy(clock, free_bytes=4 * ODD_BUFFER, copy_gb_per_s=2500.0,
                      kernel_gb_per_s=3000.0)
    _install(monkeypatch, cupy)
    ceiling = timing.copy_ceiling("gpu:1", repeat=3)
    assert ceiling["buffer_bytes"] == ODD_BUFFER  # a quarter of the free memory
    # bytes read + bytes written over the median time, each way
    assert ceiling["memcpy"]["gb_per_s"] == pytest.approx(2500.0)
    assert ceiling["kernel"]["gb_per_s"] == pytest.approx(3000.0)
    assert clock.log[0] == ("on", 1)
    runs = [entry for entry in clock.log if entry in ("copy", "kernel")]
    assert runs == ["copy"] * (2 + 1 + 3) + ["kernel"] * (2 + 1 + 3)  # warm-up, calibration,
    assert clock.log.count("elapsed") == 2 * (1 + 3)  # samples: the memcpy, then the kernel
    (kernel,) = cupy.kernels
    assert kernel == {"code": timing.COPY_KERNEL, "name": "copy_ceiling",
                      "options": ("--std=c++17",)}
    sources = cupy.copies + [launch["src"] for launch in cupy.launches]
    assert all(src.min() >= 1 for src in sources)  # 1, 2, 3, ...: no zeros, warm-up included
    # the whole buffer, the tail too; one 16-byte vector a thread: 2 MiB / 16 / 256 blocks
    for launch in cupy.launches:
        assert (launch["nbytes"], launch["grid"], launch["block"]) == (ODD_BUFFER, (512,), (256,))
    assert (ceiling["kernel"]["blocks"], ceiling["kernel"]["threads"]) == (512, 256)


@pytest.mark.parametrize("memcpy, kernel, higher", [(2500.0, 3000.0, "kernel"),
                                                    (3000.0, 2500.0, "memcpy")])
def test_gpu_copy_ceiling_is_the_higher_of_the_two(monkeypatch, memcpy, kernel, higher):
    clock = _Clock([])
    _install(monkeypatch, _fake_cupy(clock, free_bytes=8 * 2**20, copy_gb_per_s=memcpy,
                                     kernel_gb_per_s=kernel))
    ceiling = timing.copy_ceiling("gpu:0", repeat=3)
    assert ceiling["higher"] == higher
    assert ceiling["gb_per_s"] == pytest.approx(3000.0)
    assert ceiling["median_s"] == ceiling[higher]["median_s"]
    lower = "memcpy" if higher == "kernel" else "kernel"
    assert ceiling[lower]["gb_per_s"] == pytest.approx(2500.0)


@pytest.mark.parametrize("broken", ["kernel_copies", "memcpy_copies"])
def test_gpu_copy_ceiling_refuses_a_copy_that_did_not_copy(monkeypatch, broken):
    """Each copy starts from a zeroed destination and is compared with its source after its
    samples: one that moved nothing gives no ceiling."""
    _install(monkeypatch, _fake_cupy(_Clock([]), free_bytes=8 * 2**20, **{broken: False}))
    method = broken.split("_")[0]
    with pytest.raises(RuntimeError, match=f"the {method} copy left its destination"):
        timing.copy_ceiling("gpu:0", repeat=1)


def test_gpu_copy_ceiling_fits_in_free_memory(monkeypatch):
    clock = _Clock([])
    _install(monkeypatch, _fake_cupy(clock, free_bytes=64 * 2**20))
    assert timing.copy_ceiling("gpu:0", repeat=1)["buffer_bytes"] == 16 * 2**20
    assert timing.gpu_ceiling_bytes(64 * 2**30) == 256 * 2**20
    assert timing.gpu_ceiling_bytes(64 * 2**20) == 16 * 2**20


def test_copy_kernel_blocks_fill_the_gpu():
    hopper = {"multiProcessorCount": 132, "maxThreadsPerMultiProcessor": 2048}
    ada = {"multiProcessorCount": 58, "maxThreadsPerMultiProcessor": 1536}
    assert timing.copy_blocks(hopper, 256 * 2**20) == 132 * 8  # 8 resident blocks of 256
    assert timing.copy_blocks(ada, 256 * 2**20) == 58 * 6
    assert timing.copy_blocks(hopper, 16 * 256 * 10) == 10  # one vector a thread, no more
    assert timing.copy_blocks(hopper, 16 * 256 * 10 + 16) == 11
    assert timing.copy_blocks(hopper, 12) == 1  # only a tail


@pytest.mark.parametrize("name, card, gb_per_s", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM5 80GB", 3350.0),
    ("NVIDIA H100 PCIe", "H100 PCIe", 2000.0),
    ("NVIDIA H100 NVL", "H100 NVL", 3900.0),
    ("NVIDIA H200", "H200 (SXM or NVL)", 4800.0),
    ("NVIDIA H200 NVL", "H200 (SXM or NVL)", 4800.0),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM4 80GB", 2039.0),
    ("NVIDIA A100-SXM4-40GB", "A100 SXM4 40GB", 1555.0),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB", 1935.0),
    ("NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB", 1555.0),
    ("NVIDIA L40S", "L40S", 864.0),
    ("NVIDIA L4", "L4", 300.0),
])
def test_specified_peak_of_a_known_card(name, card, gb_per_s):
    peak = timing.specified_peak(name)
    assert (peak.card, peak.gb_per_s) == (card, gb_per_s)
    assert peak.source.startswith("NVIDIA ") and peak.source.endswith(" datasheet")


@pytest.mark.parametrize("name", ["Fake GPU 0", "NVIDIA GH200 480GB", "NVIDIA H800",
                                  "NVIDIA H100 SXM5 94GB", "NVIDIA L40", "NVIDIA A100",
                                  "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "NVIDIA GeForce RTX 4090"])
def test_specified_peak_of_an_unknown_card_is_none(name):
    assert timing.specified_peak(name) is None


def test_gpu_copy_ceiling_gives_the_fraction_of_the_specified_peak(monkeypatch):
    _install(monkeypatch, _fake_cupy(_Clock([]), free_bytes=8 * 2**20, copy_gb_per_s=2000.0,
                                     kernel_gb_per_s=2948.0, name="NVIDIA H100 80GB HBM3"))
    ceiling = timing.copy_ceiling("gpu:0", repeat=3)
    assert ceiling["device"] == "NVIDIA H100 80GB HBM3"
    assert ceiling["peak_gb_per_s"] == 3350.0
    assert ceiling["peak"] == "H100 SXM5 80GB, NVIDIA H100 datasheet"
    assert ceiling["fraction_of_peak"] == pytest.approx(2948.0 / 3350.0)


def test_gpu_copy_ceiling_says_unknown_for_a_card_not_in_the_table(monkeypatch):
    _install(monkeypatch, _fake_cupy(_Clock([]), free_bytes=8 * 2**20))
    ceiling = timing.copy_ceiling("gpu:1", repeat=1)
    assert ceiling["device"] == "Fake GPU 1"
    assert (ceiling["peak_gb_per_s"], ceiling["peak"], ceiling["fraction_of_peak"]) == (
        None, "unknown", None)


def test_gpu_copy_ceiling_json_holds_both_figures_and_the_peak(monkeypatch):
    _install(monkeypatch, _fake_cupy(_Clock([]), free_bytes=8 * 2**20, copy_gb_per_s=2500.0,
                                     kernel_gb_per_s=3000.0, name="NVIDIA H200"))
    ceiling = json.loads(json.dumps(timing.copy_ceiling("gpu:0", repeat=3)))
    assert set(ceiling) == {"gb_per_s", "higher", "memcpy", "kernel", "buffer_bytes",
                            "median_s", "repeats", "method", "device", "peak_gb_per_s", "peak",
                            "fraction_of_peak"}
    assert set(ceiling["memcpy"]) == {"gb_per_s", "median_s", "spread_s", "method"}
    assert set(ceiling["kernel"]) == {"gb_per_s", "median_s", "spread_s", "method", "blocks",
                                      "threads"}
    assert "cudaMemcpyAsync" in ceiling["memcpy"]["method"]
    assert "16-byte" in ceiling["kernel"]["method"]
    assert ceiling["method"].startswith("the higher of cudaMemcpy and a copy kernel")
    assert (ceiling["higher"], ceiling["repeats"], ceiling["peak_gb_per_s"]) == (
        "kernel", 3, 4800.0)
    assert ceiling["fraction_of_peak"] == pytest.approx(3000.0 / 4800.0)


def test_copy_kernel_compiles_warning_free_with_nvrtc():
    """Compiled as its RawKernel is, with CuPy's own options, for sm_90 (no GPU needed): no
    warning, no spill, and the copies are 16-byte vector loads and stores."""
    from nvrtc_build import build, kernel_ptx, require_or_skip

    require_or_skip()
    found = build("copy_ceiling", "90", source=timing.COPY_KERNEL, options=("--std=c++17",))
    assert found.warnings == [], found.warnings
    assert not any(stores or loads for _, stores, loads in found.resources.values())
    ptx = kernel_ptx(found, timing.COPY_KERNEL_NAME)
    assert "ld.global.nc.v4.u32" in ptx and "st.global.v4.u32" in ptx
    assert "ld.global.nc.u8" in ptx  # the tail


def test_cpu_copy_ceiling_counts_bytes_read_and_written():
    ceiling = timing.copy_ceiling("cpu", 2**20, repeat=3)
    assert ceiling["buffer_bytes"] == 2**20 and ceiling["repeats"] == 3
    assert ceiling["gb_per_s"] == pytest.approx(2 * 2**20 / ceiling["median_s"] / 1e9)
    assert "np.copyto" in ceiling["method"]
    assert timing.cpu_ceiling_bytes(10**3) == 64 * 2**20  # out of the caches
    assert timing.cpu_ceiling_bytes(10**8) == 4 * 10**8  # the largest array of the run
    assert timing.cpu_ceiling_bytes(10**10) == 2**30


def test_meta_names_the_gpus_and_cuda_versions(monkeypatch):
    from gputape.bench.meta import meta as _meta

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


@pytest.mark.parametrize("seed", range(5))
def test_the_rank_tests_p_value_counts_the_arrangements(seed):
    """slower_p_value against a count of every way to split the pooled samples in two."""
    import itertools

    from gputape.bench.timing import slower_p_value

    rng = np.random.default_rng(seed)
    before = list(rng.random(5))
    now = list(rng.random(4) + 0.3 * seed)
    pooled = before + now

    def pairs(a, b):
        return sum(y > x for x in a for y in b)

    observed = pairs(before, now)
    splits = list(itertools.combinations(range(len(pooled)), len(before)))
    as_large = sum(
        pairs([pooled[i] for i in split], [pooled[i] for i in range(9) if i not in split])
        >= observed for split in splits)
    assert slower_p_value(before, now) == pytest.approx(as_large / len(splits))
