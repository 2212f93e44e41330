"""Seed 003: the tape's basic use, a persistent tape, and watching a list (TF: 6, 108, 48)."""

import gputape as gt


def test_basic(device):
    x = gt.constant(3.0)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x**2
    dy_dx = tape.gradient(y, x)
    assert str(dy_dx) == "gt.Tensor(6.0, shape=(), dtype=float32)"


def test_persistent(device):
    x = gt.constant(3.0)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x**2
        z = y**2
    dy_dx = tape.gradient(y, x)
    dz_dx = tape.gradient(z, x)
    assert (float(dy_dx), float(dz_dx)) == (6.0, 108.0)


def test_watch_a_list(device):
    x = gt.constant(3.0)
    y = gt.constant(4.0)
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        z = x**2 + y**3
    dz_dx, dz_dy = tape.gradient(z, [x, y])
    assert (float(dz_dx), float(dz_dy)) == (6.0, 48.0)
