"""Seed 004: a list target is summed; per-target gradients (TF: [40,10],[46,10],[50,10] and
[136, 30] for f(w1, w2) = 3 w1**2 + 2 w1 w2 at w1=5, w2=3)."""

import gputape as gt


def f(w1, w2):
    return 3 * w1**2 + 2 * w1 * w2


def _targets():
    w1, w2 = gt.Variable(5.0), gt.Variable(3.0)
    with gt.GradientTape(persistent=True) as tape:
        z1 = f(w1, w2 + 2.0)
        z2 = f(w1, w2 + 5.0)
        z3 = f(w1, w2 + 7.0)
    return tape, (w1, w2), (z1, z2, z3)


def test_per_target_gradients(device):
    tape, ws, zs = _targets()
    grads = [tape.gradient(z, list(ws)) for z in zs]
    assert [[float(g) for g in pair] for pair in grads] == [[40.0, 10.0], [46.0, 10.0],
                                                            [50.0, 10.0]]


def test_list_target_is_summed(device):
    tape, ws, zs = _targets()
    grads = tape.gradient(list(zs), list(ws))
    assert [float(g) for g in grads] == [136.0, 30.0]
    assert all("dtype=float32" in repr(g) for g in grads)
