"""Peak memory of one workload call, measured in a fresh process per (framework, workload).

The child builds the workload, runs it twice (lazy initialisation, caches), hands freed heap
back to the kernel (``malloc_trim``; for gputape, its pool of host buffers too, else the third
run would reuse memory the process already holds), resets the kernel's high-water mark of its
resident set (``/proc/self/clear_refs``), runs the workload once more and reports how far the
resident set rose above where it started: the memory one forward + gradient needs beyond its
inputs.
Linux only; elsewhere the runner reports no memory column.

Child usage: ``python -m gputape.bench.memory FRAMEWORK WORKLOAD SIZE``; prints the peak in bytes.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import subprocess
import sys

from .children import child_env


def supported() -> bool:
    return sys.platform.startswith("linux") and os.path.exists("/proc/self/clear_refs")


def peak_bytes(framework: str, workload: str, size: int, timeout_s: float = 300) -> "int | None":
    """Peak extra resident memory of one call of ``workload`` in ``framework`` on the CPU, or
    ``None`` when it cannot be measured here."""
    if not supported():
        return None
    root, env = child_env()
    try:
        done = subprocess.run([sys.executable, "-m", "gputape.bench.memory", framework, workload,
                               str(size)], capture_output=True, text=True, env=env,
                              timeout=timeout_s, cwd=root)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        print(f"bench: memory of {framework}/{workload} not measured: "
              f"{done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _measure(run, release=None) -> int:
    run()
    run()
    gc.collect()
    if release is not None:
        release()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    base = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    run()
    return max(0, _status_bytes("VmHWM") - base)


def _child(framework: str, workload: str, size: int) -> int:
    import numpy as np

    rng = np.random.default_rng(0)
    if framework == "gputape":
        from gputape.host.pool import release

        from .workloads import WORKLOADS

        build = {w.name: w.build for w in WORKLOADS}[workload]
        return _measure(build(size, "cpu", rng), release)
    from .peers import PEERS

    builders, _ = PEERS[framework][1]("cpu")
    return _measure(builders[workload](size, rng))


if __name__ == "__main__":
    name, work, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps({"peak_bytes": _child(name, work, count)}))
