"""Threads, memory and immutability: what a long training run relies on."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import gputape as gt

# -- threads --------------------------------------------------------------------------------


def test_tapes_are_thread_local():
    threads, iterations = 8, 200
    barrier = threading.Barrier(threads)
    errors: list = []

    def train(seed: int) -> None:
        rng = np.random.default_rng(seed)
        w0, x0, t0 = (rng.standard_normal(5) for _ in range(3))
        w = gt.Variable(w0, name=f"w{seed}", device="cpu")
        x, t = gt.constant(x0, device="cpu"), gt.constant(t0, device="cpu")
        barrier.wait()
        for step in range(iterations):
            with gt.GradientTape() as tape:
                loss = gt.reduce_sum((w * x - t) ** 2)
            grad = tape.gradient(loss, w)
            want = 2 * (w.numpy() * x0 - t0) * x0
            if tape.watched_variables() != (w,) or not np.allclose(grad.numpy(), want,
                                                                   rtol=1e-12, atol=0):
                errors.append((seed, step, grad.numpy(), want))
                return
            w.assign_sub(grad * 0.01)

    workers = [threading.Thread(target=train, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []


@pytest.mark.parametrize("use", [
    lambda tape, x: tape.watch(x),
    lambda tape, x: tape.gradient(x * 2, x),
    lambda tape, x: tape.reset(),
    lambda tape, x: tape.stop_recording().__enter__(),
])
def test_a_tape_used_from_another_thread_raises(use):
    x = gt.constant(1.0, device="cpu")
    caught: list = []
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x

        def other() -> None:
            try:
                use(tape, x)
            except Exception as exc:  # noqa: BLE001 - the test inspects it below
                caught.append(exc)

        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert len(caught) == 1 and isinstance(caught[0], gt.TapeError)
    assert "belongs to thread" in str(caught[0]) and "one GradientTape per thread" in str(
        caught[0])
    assert float(tape.gradient(y, x)) == 2.0  # the owner can still use it


# -- memory ---------------------------------------------------------------------------------


def _record(tape, x) -> "tuple[gt.Tensor, list]":
    """A small recorded computation; weak references to the arrays the tape saves."""
    a = gt.sin(x)
    b = a * x
    c = gt.exp(b)
    return gt.reduce_sum(c), [weakref.ref(t._data) for t in (a, b, c)]


def _alive(refs: list) -> int:
    return sum(ref() is not None for ref in refs)


@pytest.fixture
def no_gc():
    """Run without the cycle collector: whatever is freed is freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_non_persistent_tape_holds_nothing_after_gradient(no_gc):
    x = gt.constant(np.linspace(0.1, 1.0, 1000), device="cpu")
    with gt.GradientTape() as tape:
        tape.watch(x)
        y, saved = _record(tape, x)
    assert _alive(saved) == 3
    grad = tape.gradient(y, x)
    assert _alive(saved) == 0
    assert grad.shape == x.shape


@pytest.mark.parametrize("release", ["del", "reset"])
def test_persistent_tape_holds_nothing_after_del_or_reset(no_gc, release):
    x = gt.constant(np.linspace(0.1, 1.0, 1000), device="cpu")
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y, saved = _record(tape, x)
    tape.gradient(y, x)
    tape.gradient(y, x)
    assert _alive(saved) == 3
    if release == "del":
        del tape
    else:
        with tape:  # reset() only while recording
            tape.reset()
    assert _alive(saved) == 0


def _training_step(w, b, x, t, opt) -> None:
    with gt.GradientTape() as tape:
        loss = gt.reduce_mean((gt.tanh(gt.matmul(x, w) + b) - t) ** 2)
    opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))


def _model(rng):
    w = gt.Variable(rng.standard_normal((4, 3)) * 0.1, device="cpu")
    b = gt.Variable(np.zeros(3), device="cpu")
    x = gt.constant(rng.standard_normal((8, 4)), device="cpu")
    t = gt.constant(rng.standard_normal((8, 3)), device="cpu")
    return w, b, x, t


def test_training_makes_no_reference_cycles(no_gc, rng):
    w, b, x, t = _model(rng)
    opt = gt.optimizers.Adam(0.01)
    for _ in range(20):
        _training_step(w, b, x, t, opt)
    assert gc.collect() == 0


def test_ten_thousand_steps_keep_memory_flat(rng):
    w, b, x, t = _model(rng)
    opt = gt.optimizers.SGD(0.01, momentum=0.9)
    for _ in range(300):  # warm up: caches, slots, first allocations
        _training_step(w, b, x, t, opt)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            _training_step(w, b, x, t, opt)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # One leaked array per step (the smallest here is 24 bytes, plus its header) would show
    # as well over 1 MB; a steady state moves by a few KB.
    assert growth < 256 * 1024, f"memory grew by {growth} bytes over 10,000 steps"


# -- immutability ---------------------------------------------------------------------------


def test_changing_the_array_given_to_constant_cannot_corrupt_a_tape():
    host = np.array([1.0, 2.0, 3.0])
    x = gt.constant(host, device="cpu")
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    host[:] = 100.0
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [2.0, 4.0, 6.0])


def test_changing_an_array_passed_to_an_op_cannot_corrupt_a_tape():
    host = np.array([1.0, 2.0, 3.0])
    x = gt.constant([1.0, 1.0, 1.0], dtype="float64", device="cpu")
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.multiply(x, host)
    host[:] = -5.0
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("export", [
    lambda t: t.numpy(),
    lambda t: np.asarray(t),
    lambda t: np.array(t, dtype=np.float64),
])
def test_changing_an_exported_array_cannot_corrupt_a_tape(export):
    x = gt.constant([1.0, 2.0], device="cpu")
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    for tensor in (x, y):
        export(tensor)[...] = 7.0
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(y.numpy(), [1.0, 4.0])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [2.0, 4.0])


def test_variables_copy_what_they_are_given():
    host = np.array([1.0, 2.0])
    v = gt.Variable(host, device="cpu")
    host[:] = 0.0
    update = np.array([5.0, 6.0])
    v.assign(update)
    update[:] = 0.0
    v.numpy()[...] = -1.0
    np.testing.assert_array_equal(v.numpy(), [5.0, 6.0])


@pytest.mark.parametrize("opt", [
    lambda: gt.optimizers.SGD(0.1),
    lambda: gt.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    lambda: gt.optimizers.Adam(0.1),
])
def test_optimizer_updates_cannot_corrupt_a_persistent_tape(opt):
    w = gt.Variable([1.0, 2.0], device="cpu")
    with gt.GradientTape(persistent=True) as tape:
        y = gt.reduce_sum(w * w)
    first = tape.gradient(y, w)
    optimizer = opt()
    for _ in range(3):
        optimizer.apply_gradients([(first, w)])
    assert not np.array_equal(w.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(tape.gradient(y, w).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(first.numpy(), [2.0, 4.0])
