"""Large elementwise host ufuncs, split across threads.

NumPy runs every ufunc on one core. On a few million elements a transcendental such as ``sin``
is bound by arithmetic, not memory, and two cores take half the time (PyTorch splits such ops
across its intra-op threads for the same reason). For results of at least :data:`MIN_BYTES`,
the pooled forwards (:mod:`gputape.host.pool`) hand the ufunc to :func:`run`, which cuts the
elements into contiguous chunks that the calling thread and ``count() - 1`` workers take in
turn. NumPy releases the GIL inside its loops, so the chunks run at once; a worker that starts
late (its core busy elsewhere) finds the chunks taken, so the call is never slower than one
thread by more than a few microseconds.

Each element is computed by the same loop as before, so the results are the same bits.
NumPy's floating-point error settings (``np.errstate``) of the calling thread apply in every
worker, and an error raised in a worker is raised in the caller. Below the threshold, or when
another thread is already using the workers, the ufunc runs as usual, in the calling thread.

``GPUTAPE_HOST_THREADS`` sets the count (default: the CPUs this process may run on, at most
4; ``1`` turns the splitting off); :func:`set_count` changes it at run time.
"""

from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["MIN_BYTES", "count", "run", "set_count"]

MIN_BYTES = 1 << 22  # below about 4 MB, waking a thread costs more than it saves (NOTES.md)
_ALIGN = 64  # elements per chunk boundary: chunks start on whole cache lines
_CHUNKS_PER_THREAD = 4  # so that a thread that starts late still finds work, or none
_DEFAULT_MAX = 4


class _Job:
    """One ufunc call cut into chunks that every participant takes in turn until none is left.

    A participant that comes late finds nothing to do; the caller never waits for one that has
    not started, only for chunks already being computed.
    """

    def __init__(self, ufunc, args: list, out: np.ndarray, bounds: "list[int]") -> None:
        self.ufunc = ufunc
        self.args = args
        self.out = out
        self.bounds = bounds
        self.errors = np.geterr()
        self.error: "BaseException | None" = None
        self._taken = 0
        self._left = len(bounds) - 1
        self._lock = threading.Lock()
        self.finished = threading.Lock()
        self.finished.acquire()

    def work(self) -> None:
        """Compute chunks until none is left."""
        bounds = self.bounds
        chunks = len(bounds) - 1
        while True:
            with self._lock:
                i = self._taken
                self._taken += 1
            if i >= chunks:
                return
            lo, hi = bounds[i], bounds[i + 1]
            try:
                self.ufunc(*_share(self.args, lo, hi), out=self.out[lo:hi])
            except BaseException as error:  # raised in the caller, once every chunk is done
                self.error = self.error or error
            with self._lock:
                self._left -= 1
                if self._left == 0:
                    self.finished.release()


class _Worker:
    """A daemon thread that helps with one job at a time."""

    def __init__(self) -> None:
        self.busy = False  # set by the caller when it hands a job, cleared here when done
        self._job: "_Job | None" = None
        self._go = threading.Lock()
        self._go.acquire()
        threading.Thread(target=self._loop, name="gputape-host", daemon=True).start()

    def help(self, job: _Job) -> None:
        self.busy = True
        self._job = job
        self._go.release()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            job, self._job = self._job, None
            with np.errstate(**job.errors):
                job.work()
            del job  # holds the job's arrays, pooled buffers among them
            self.busy = False


class _Threads:
    """The workers, used by one caller at a time."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._workers: "list[_Worker]" = []
        self._busy = threading.Lock()

    def run(self, ufunc, args: tuple, out: np.ndarray) -> bool:
        """Run ``ufunc(*args, out=out)`` in chunks; False (nothing done) when it cannot."""
        views = _flat_views(args, out)
        if views is None or not self._busy.acquire(blocking=False):
            return False
        try:
            flat_args, flat_out = views
            helpers = self.count - 1
            while len(self._workers) < helpers:
                self._workers.append(_Worker())
            job = _Job(ufunc, flat_args, flat_out,
                       _bounds(flat_out.shape[0], _CHUNKS_PER_THREAD * self.count))
            for worker in self._workers[:helpers]:
                if not worker.busy:  # one still busy with an earlier job is left out
                    worker.help(job)
            job.work()
            job.finished.acquire()  # chunks other threads are still computing
            if job.error is not None:
                raise job.error
            return True
        finally:
            self._busy.release()


def _flat_views(args: tuple, out: np.ndarray) -> "tuple[list, np.ndarray] | None":
    """``args`` and ``out`` as views split along their first axis (flattened when every array
    is C-contiguous), or None when they cannot be split so."""
    arrays = [a for a in args if type(a) is np.ndarray and a.ndim]
    if out.flags.c_contiguous and all(a.flags.c_contiguous for a in arrays):
        flat = [a.reshape(-1) if type(a) is np.ndarray and a.ndim else a for a in args]
        return flat, out.reshape(-1)
    if out.ndim and out.shape[0] >= 2 * _ALIGN:
        return list(args), out
    return None


def _bounds(length: int, parts: int) -> "list[int]":
    """``parts + 1`` boundaries of near-equal shares of ``range(length)``, on multiples of
    :data:`_ALIGN`."""
    step = -(-length // parts)
    step = -(-step // _ALIGN) * _ALIGN
    inner = [min(length, i * step) for i in range(1, parts)]
    return [0] + [b for b in inner if 0 < b < length] + [length]


def _share(args: list, lo: int, hi: int) -> list:
    return [a[lo:hi] if type(a) is np.ndarray and a.ndim else a for a in args]


def _count_from_environment() -> int:
    value = os.environ.get("GPUTAPE_HOST_THREADS", "").strip()
    if not value:
        try:
            available = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            available = os.cpu_count() or 1
        return max(1, min(available, _DEFAULT_MAX))
    try:
        return _checked(int(value))
    except ValueError:
        raise ValueError(
            f"GPUTAPE_HOST_THREADS={value!r} is not a positive integer; hint: the threads "
            f"that large elementwise host ops are split across, 1 to turn splitting off"
        ) from None


def _checked(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(
            f"hostthreads.set_count: expected a positive integer, got {n!r}; hint: 1 turns "
            f"splitting off"
        )
    return n


_THREADS = _Threads(_count_from_environment())


def _after_fork_in_child() -> None:
    # A forked child has the parent's objects but none of its threads.
    global _THREADS
    _THREADS = _Threads(_THREADS.count)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def count() -> int:
    """How many threads large elementwise host ops are split across (1: not split).

    Examples
    --------
    >>> import gputape as gt
    >>> gt.hostthreads.count() >= 1
    True
    """
    return _THREADS.count


def set_count(n: int) -> int:
    """Split large elementwise host ops across ``n`` threads from now on; returns the previous
    count. ``1`` runs them in the calling thread only.

    Examples
    --------
    >>> import gputape as gt
    >>> before = gt.hostthreads.set_count(1)
    >>> gt.hostthreads.count()
    1
    >>> _ = gt.hostthreads.set_count(before)
    """
    previous = _THREADS.count
    _THREADS.count = _checked(n)  # workers already started stay, idle, for a later increase
    return previous


def run(ufunc, args: tuple, out: np.ndarray) -> np.ndarray:
    """``ufunc(*args, out=out)``, split across threads when ``out`` is large enough.

    ``args`` are arrays of ``out``'s shape, 0-d arrays or Python numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from gputape.host import threads as hostthreads
    >>> x = np.linspace(0.0, 1.0, 1 << 21)
    >>> out = hostthreads.run(np.sin, (x,), np.empty_like(x))
    >>> bool(np.array_equal(out, np.sin(x)))
    True
    """
    threads = _THREADS
    if threads.count < 2 or out.nbytes < MIN_BYTES or not threads.run(ufunc, args, out):
        ufunc(*args, out=out)
    return out
