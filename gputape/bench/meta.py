"""What a benchmark run was measured on and how: date, commit, versions, CPU and GPU names."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess

import numpy as np

import gputape as gt

from .timing import gpu_name

__all__ = ["meta", "versions", "TIMING"]


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(names: "list[str]") -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        for dist in (name, f"{name}-cpu"):
            try:
                found[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return found


def meta(has_gpu: bool, devices: "list[str] | None" = None) -> dict:
    """What a run was measured on and how: date, commit, versions, the name of each device in
    ``devices``; where the machine has a GPU (``has_gpu``), its name (that of the first GPU
    measured, else of gpu:0) and CuPy's, the driver's and the runtime's versions."""
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__,
            "gputape": gt.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "cpu": _cpu_name(), "commit": _commit(),
            "gpu": "no GPU found", "timing": TIMING}
    devices = devices if devices is not None else ["cpu", *(["gpu:0"] if has_gpu else [])]
    meta["devices"] = {d: meta["cpu"] for d in devices if d == "cpu"}
    if has_gpu:
        import cupy

        runtime = cupy.cuda.runtime
        gpus = [d for d in devices if d.startswith("gpu")]
        for device in gpus or ["gpu:0"]:
            name = gpu_name(int(device.partition(":")[2]))
            meta["gpu"] = name if meta["gpu"] == "no GPU found" else meta["gpu"]
            if device in gpus:
                meta["devices"][device] = name
        meta["cupy"] = cupy.__version__
        meta["cuda_driver"] = _cuda_version(runtime.driverGetVersion())
        meta["cuda_runtime"] = _cuda_version(runtime.runtimeGetVersion())
    return meta


TIMING = ("warm-up calls excluded; each sample loops the call for at least 50 ms; the median "
          "and interquartile range (spread) over --repeat samples; CPU: perf_counter; GPU: CUDA "
          "events on the current stream around each sample, then a device synchronize")


def _cuda_version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"
