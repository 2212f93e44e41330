"""Large elementwise host ufuncs split across threads (gputape.host.threads): the same bits as
one call, NumPy's error settings honoured in every thread, errors raised in the caller."""

from __future__ import annotations

import multiprocessing
import threading
import warnings

import numpy as np
import pytest
from helpers import POOLED_UFUNCS

import gputape as gt
from gputape.host import threads as hostthreads

_N = hostthreads.MIN_BYTES // 4 + 77  # float32 elements: just above the threshold, odd


@pytest.fixture
def two_threads():
    before = hostthreads.set_count(2)
    yield
    hostthreads.set_count(before)


@pytest.fixture
def splits(monkeypatch):
    """Counts the calls that were split into shares."""
    calls = []
    run = hostthreads._Threads.run

    def counted(self, ufunc, args, out):
        done = run(self, ufunc, args, out)
        calls.append(done)
        return done

    monkeypatch.setattr(hostthreads._Threads, "run", counted)
    return calls


def _operands(ufunc, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.25, 1.75, shape).astype(dtype) for _ in range(ufunc.nin)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", POOLED_UFUNCS)
def test_split_ufuncs_give_the_bits_of_one_call(name, dtype, two_threads, splits):
    ufunc = getattr(np, name)
    args = _operands(ufunc, (_N,), dtype, len(name))
    with np.errstate(all="ignore"):
        got = hostthreads.run(ufunc, tuple(args), np.empty(_N, dtype))
        want = ufunc(*args)
    np.testing.assert_array_equal(got, want)
    assert splits == [True]


@pytest.mark.parametrize("layout", ["2d", "one-row", "transposed", "scalar-operand"])
def test_layouts_split_along_the_first_axis_or_flattened(layout, two_threads, splits):
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, (1031, 1029))
    y = rng.uniform(-3, 3, (1031, 1029))
    if layout == "one-row":
        x, y = x.reshape(1, -1), y.reshape(1, -1)
    elif layout == "transposed":
        x, y = x.T, y.T
    elif layout == "scalar-operand":
        y = np.asarray(2.5)
    out = np.empty(x.shape)
    hostthreads.run(np.multiply, (x, y), out)
    np.testing.assert_array_equal(out, x * y)
    assert splits == [True]


def test_small_results_and_a_count_of_one_are_not_split(two_threads, splits):
    x = np.linspace(0.0, 1.0, 1000)
    np.testing.assert_array_equal(hostthreads.run(np.sin, (x,), np.empty_like(x)), np.sin(x))
    hostthreads.set_count(1)
    big = np.linspace(0.0, 1.0, _N)
    np.testing.assert_array_equal(hostthreads.run(np.sin, (big,), np.empty_like(big)),
                                  np.sin(big))
    assert splits == []


def test_errors_are_raised_in_the_caller(two_threads, splits):
    x = np.linspace(1.0, 2.0, _N)
    x[::4096] = 0.0  # in every chunk, whichever thread takes it
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        hostthreads.run(np.log, (x,), np.empty_like(x))
    assert splits == []  # raised from within the split call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(divide="ignore"):
            out = hostthreads.run(np.log, (x,), np.empty_like(x))
    assert out[0] == -np.inf and splits == [True]
    # the workers are usable again afterwards
    np.testing.assert_array_equal(hostthreads.run(np.exp, (x,), np.empty_like(x)), np.exp(x))


def test_a_worker_uses_the_callers_error_settings():
    x = np.linspace(1.0, 2.0, 10_000)
    x[-1] = 0.0
    worker = hostthreads._Worker()
    for setting, expected in [("raise", FloatingPointError), ("ignore", type(None))]:
        with np.errstate(divide=setting):
            job = hostthreads._Job(np.log, [x], np.empty_like(x), [0, 5_000, 10_000])
        worker.help(job)  # the caller computes nothing: every chunk is the worker's
        assert job.finished.acquire(timeout=30)
        assert type(job.error) is expected


def test_a_worker_still_busy_is_left_out_and_keeps_nothing_alive(two_threads):
    import gc
    import weakref

    x = np.linspace(0.0, 1.0, _N)
    hostthreads.run(np.sin, (x,), np.empty_like(x))  # the worker exists
    worker = hostthreads._THREADS._workers[0]
    worker.busy = True  # as if it were still on an earlier job
    try:
        out = hostthreads.run(np.sin, (x,), np.empty_like(x))  # the caller does every chunk
    finally:
        worker.busy = False
    np.testing.assert_array_equal(out, np.sin(x))
    out = hostthreads.run(np.cos, (x,), np.empty_like(x))
    np.testing.assert_array_equal(out, np.cos(x))
    alive = weakref.ref(out)
    del out
    for _ in range(3000):  # the worker may still be returning from its last job
        gc.collect(0)
        if alive() is None and not worker.busy:
            break
        threading.Event().wait(0.001)
    assert alive() is None


def test_a_caller_finding_the_workers_busy_runs_alone(two_threads, splits):
    x = np.linspace(0.0, 1.0, _N)
    with hostthreads._THREADS._busy:
        out = hostthreads.run(np.sin, (x,), np.empty_like(x))
    np.testing.assert_array_equal(out, np.sin(x))
    assert splits == [False]


def test_concurrent_callers_get_exact_results(two_threads):
    rng = np.random.default_rng(2)
    inputs = [rng.uniform(-1, 1, _N) for _ in range(4)]
    results = [None] * 4

    def work(i):
        for _ in range(5):
            results[i] = hostthreads.run(np.cos, (inputs[i],), np.empty(_N))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, got in zip(inputs, results):
        np.testing.assert_array_equal(got, np.cos(x))


def _in_child(queue):
    x = np.linspace(0.0, 1.0, _N)
    queue.put(bool(np.array_equal(hostthreads.run(np.sin, (x,), np.empty_like(x)), np.sin(x))))


# Forking a process that has worker threads is the point here; Python 3.12+ warns about it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_its_own_workers(two_threads):
    x = np.linspace(0.0, 1.0, _N)
    hostthreads.run(np.sin, (x,), np.empty_like(x))  # the parent's workers exist
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=60) is True
    finally:
        child.join(timeout=60)
    assert child.exitcode == 0


def test_gradients_are_the_same_bits_with_and_without_threads():
    rng = np.random.default_rng(3)
    x = gt.constant(rng.uniform(0.5, 1.5, _N).astype(np.float32))
    y = gt.constant(rng.uniform(0.5, 1.5, _N).astype(np.float32))

    def grads():
        with gt.GradientTape() as tape:
            tape.watch([x, y])
            loss = gt.reduce_sum(x * y + x ** 3 * gt.sin(y) + gt.exp(y) / x)
        return [g.numpy() for g in tape.gradient(loss, [x, y])]

    before = hostthreads.set_count(1)
    try:
        alone = grads()
        hostthreads.set_count(3)
        split = grads()
    finally:
        hostthreads.set_count(before)
    for a, b in zip(alone, split):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value, message", [("0", "positive"), ("two", "not a positive"),
                                            ("-3", "positive")])
def test_a_bad_thread_count_is_named(monkeypatch, value, message):
    monkeypatch.setenv("GPUTAPE_HOST_THREADS", value)
    with pytest.raises(ValueError, match=message):
        hostthreads._count_from_environment()
    with pytest.raises(ValueError, match="set_count"):
        hostthreads.set_count(0)


def test_the_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("GPUTAPE_HOST_THREADS", "3")
    assert hostthreads._count_from_environment() == 3
    monkeypatch.delenv("GPUTAPE_HOST_THREADS")
    assert 1 <= hostthreads._count_from_environment() <= 4


@pytest.mark.parametrize("length, parts", [(1, 2), (64, 2), (129, 2), (1000, 3), (10**6, 4)])
def test_shares_cover_every_element_once(length, parts):
    bounds = hostthreads._bounds(length, parts)
    assert bounds[0] == 0 and bounds[-1] == length
    assert all(a < b for a, b in zip(bounds, bounds[1:]))
    assert len(bounds) - 1 <= parts
    assert all(b % hostthreads._ALIGN == 0 for b in bounds[1:-1])
