"""Seed 002: GradientTape.gradient on x**3, first and second order (TF prints 48.0 and 24.0)."""

import gputape as gt


def test_first_order(device, capsys):
    x = gt.constant(4.0)
    with gt.GradientTape() as gfg:
        gfg.watch(x)
        y = x * x * x
    res = gfg.gradient(y, x)
    print("res: ", res)
    assert capsys.readouterr().out == "res:  gt.Tensor(48.0, shape=(), dtype=float32)\n"


def test_second_order_with_nested_tapes(device, capsys):
    x = gt.constant(4.0)
    with gt.GradientTape() as gfg:
        gfg.watch(x)
        with gt.GradientTape() as gg:
            gg.watch(x)
            y = x * x * x
        first_order = gg.gradient(y, x)
    second_order = gfg.gradient(first_order, x)
    print("first_order: ", first_order)
    print("second_order: ", second_order)
    assert capsys.readouterr().out == (
        "first_order:  gt.Tensor(48.0, shape=(), dtype=float32)\n"
        "second_order:  gt.Tensor(24.0, shape=(), dtype=float32)\n"
    )
