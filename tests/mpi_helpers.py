"""Starting a few MPI ranks on this machine for the tests: loopback only, bounded in time, and
on a timeout every process of the group ended (mpiexec and the ranks it started), not only
mpiexec."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def find_mpiexec() -> "str | None":
    """``mpiexec`` next to this Python (a virtual environment with the mpich wheel), else on
    PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


def missing() -> "str | None":
    """Why ranks cannot be started here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'gputape[dist]'; make test does)"
    if find_mpiexec() is None:
        return f"no mpiexec next to {sys.executable} or on PATH (pip install mpich)"
    return None


@functools.cache
def _is_hydra(mpiexec: str) -> bool:
    done = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    return "HYDRA" in done.stdout


def command(ranks: int, args: "list[str]") -> "list[str]":
    """``mpiexec -n RANKS ARGS``, with MPICH's launcher kept to local processes over the
    loopback interface (no ssh, no other network)."""
    mpiexec = find_mpiexec()
    local = ["-launcher", "fork", "-iface", "lo"] if _is_hydra(mpiexec) else []
    return [mpiexec, *local, "-n", str(ranks), *args]


def run_group(argv: "list[str]", timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, capture_output=True, text=True)`` in a session of its own: on a
    timeout the whole process group is killed, then ``TimeoutExpired`` is raised with what
    was printed."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # the group may have just ended
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(argv, timeout, output=out, stderr=err) from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
