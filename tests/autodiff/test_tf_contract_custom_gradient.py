"""custom_gradient against TensorFlow 2.21: Variables read inside the function, and the errors
for gradient functions that return the wrong number of gradients.

The expected values and exception kinds were obtained by running the same functions with
tensorflow-cpu 2.21.0 in eager mode (``tf.custom_gradient``, ``tf.GradientTape``, v =
``tf.Variable(3.0)``, x = ``tf.constant(2.0)``); each test names the TF behaviour it matches.
"""

from __future__ import annotations

import pytest

import gputape as gt


def _scaled_by(v, *, takes_variables=True, variable_grads=None):
    """``f(x) = x * v`` as a custom_gradient function whose rule gives d/dx = v, d/dv = x."""
    @gt.custom_gradient
    def f(x):
        if takes_variables:
            def grad(upstream, variables):
                assert [w is v for w in variables] == [True]  # the Variable itself
                found = [upstream * x] if variable_grads is None else variable_grads
                return upstream * v, found
        else:
            def grad(upstream):
                return upstream * v
        return x * v, grad

    return f


def test_a_variable_read_inside_gets_the_gradient_the_rule_gives(device):
    """TF: ``tape.gradient(f(x), [x, v])`` is ``[3.0, 2.0]`` (the rule's, given
    ``variables=[v]``); before, gputape gave v a silent None."""
    v, x = gt.Variable(3.0), gt.constant(2.0)
    f = _scaled_by(v)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    assert [float(g) for g in tape.gradient(y, [x, v])] == [3.0, 2.0]


def test_the_variable_is_watched_without_watch_accessed_variables_off(device):
    """The outer tape watches a Variable read inside the function as it watches any read
    (``watched_variables``), and a tape with watch_accessed_variables=False does not."""
    v, x = gt.Variable(3.0), gt.constant(2.0)
    f = _scaled_by(v)
    with gt.GradientTape() as tape:
        tape.watch(x)
        f(x)
    assert list(tape.watched_variables()) == [v]
    with gt.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        y = f(x)
    grads = tape.gradient(y, [x, v])
    assert float(grads[0]) == 3.0 and grads[1] is None


def test_second_order_through_the_rule_reaches_the_variable(device):
    """The rule's ops are recorded by an outer tape: d/dv (d f/dx) = d v/dv = 1."""
    v, x = gt.Variable(3.0), gt.constant(2.0)
    f = _scaled_by(v)
    with gt.GradientTape() as outer:
        with gt.GradientTape() as inner:
            inner.watch(x)
            y = f(x)
        dx = inner.gradient(y, x)
    assert float(dx) == 3.0 and float(outer.gradient(dx, v)) == 1.0


def test_a_rule_without_variables_is_a_type_error_at_the_call(device):
    """TF raises ``TypeError: @tf.custom_gradient grad_fn must accept keyword argument
    'variables', since function uses variables: [...]`` when f is called (not at gradient),
    with or without a tape."""
    v = gt.Variable(3.0, name="scale")
    f = _scaled_by(v, takes_variables=False)
    for taping in (True, False):
        x = gt.constant(2.0)
        with pytest.raises(TypeError, match="accept a keyword argument 'variables'") as info:
            if taping:
                with gt.GradientTape() as tape:
                    tape.watch(x)
                    f(x)
            else:
                f(x)
        assert isinstance(info.value, gt.CustomGradientTypeError)
        assert "'f'" in str(info.value) and "'scale'" in str(info.value)
        assert "hint" in str(info.value)


def test_variables_that_need_no_keyword(device):
    """A Variable given as an argument is an input, and a non-trainable Variable is not
    watched: neither asks for ``variables=`` (TF filters both out)."""
    v, frozen = gt.Variable(3.0), gt.Variable(4.0, trainable=False)

    @gt.custom_gradient
    def f(x, w):
        def grad(upstream):
            return upstream * w * frozen, upstream * x * frozen
        return x * w * frozen, grad

    x = gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = f(x, v)
    assert [float(g) for g in tape.gradient(y, [x, v])] == [12.0, 8.0]


def test_wrong_number_of_variable_gradients_is_a_value_error(device):
    """TF: ``ValueError: Must return gradient for each variable from @custom_gradient
    grad_fn.`` at ``tape.gradient``."""
    v, x = gt.Variable(3.0), gt.constant(2.0)
    f = _scaled_by(v, variable_grads=[])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    with pytest.raises(ValueError, match="0 variable gradient") as info:
        tape.gradient(y, [x, v])
    assert isinstance(info.value, gt.CustomGradientError) and "'f'" in str(info.value)


@pytest.mark.parametrize("inputs, returned", [(1, 2), (2, 1)])
def test_wrong_number_of_input_gradients_is_a_value_error(device, inputs, returned):
    """TF: ``ValueError: custom_gradient function expected to return 1 gradients, but returned
    2 instead.`` (and 2 for 1) at ``tape.gradient``; gputape keeps its own message and raises a
    ValueError (still a GradientRuleError)."""
    @gt.custom_gradient
    def f(*xs):
        def grad(upstream):
            return [upstream] * returned if returned > 1 else upstream
        return sum(xs[1:], xs[0]), grad

    xs = [gt.constant(float(i)) for i in range(inputs)]
    with gt.GradientTape() as tape:
        tape.watch(xs)
        y = f(*xs)
    with pytest.raises(ValueError, match=f"returned {returned} gradient") as info:
        tape.gradient(y, xs)
    assert isinstance(info.value, gt.CustomGradientError)
    assert isinstance(info.value, gt.GradientRuleError)  # what it was before
    assert f"{inputs} tensor input(s)" in str(info.value)
