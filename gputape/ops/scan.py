"""Running sums and products along an axis (``tf.math.cumsum``, ``tf.math.cumprod``), with
TensorFlow's ``exclusive`` and ``reverse`` options and its gradients."""

from __future__ import annotations

from ..core.dispatch import apply
from ..core.registry import defvjp, primitive
from ._axes import as_tensor, normalize_axis

__all__ = ["cumprod", "cumsum"]


def _scan(name: str, fill: int):
    """The forward of a scan: ``axis`` is negative (counted from the end), so the same
    primitive runs on a cotangent with leading batch dimensions."""
    def forward(xp, x, axis, exclusive, reverse):
        if reverse:
            x = xp.flip(x, axis)
        out = getattr(xp, name)(x, axis=axis, dtype=x.dtype)
        if exclusive:  # shift one place along the axis, the first slot the identity
            n = x.shape[axis]
            head = xp.full(x.shape[:x.ndim + axis] + (min(n, 1),) + x.shape[x.ndim + axis + 1:],
                           fill, dtype=x.dtype)
            kept = [slice(None)] * x.ndim
            kept[axis] = slice(0, max(n - 1, 0))
            out = xp.concatenate([head, out[tuple(kept)]], axis=axis)
        return xp.flip(out, axis) if reverse else out

    return forward


CUMSUM = defvjp(primitive("cumsum", _scan("cumsum", 0)),
                # TF's: the running sum of the cotangent the other way
                lambda g, ans, x, axis, exclusive, reverse: apply(
                    CUMSUM, g, axis=axis, exclusive=exclusive, reverse=not reverse))


def _cumprod_grad(g, ans, x, axis, exclusive, reverse):
    # TF's: cumsum(prod * g, the other way) divided by x, 0 where x is 0 (div_no_nan: there
    # the true gradient is not 0, but TF's formula cannot give it)
    from .special import divide_no_nan

    total = apply(CUMSUM, ans * g, axis=axis, exclusive=exclusive, reverse=not reverse)
    return divide_no_nan(total, x)


CUMPROD = defvjp(primitive("cumprod", _scan("cumprod", 1)), _cumprod_grad)


def _call(prim, x, axis, exclusive, reverse):
    x = as_tensor(prim.name, "x", x)
    if x.ndim == 0:
        from ..core.errors import ArgumentError

        raise ArgumentError(
            f"{prim.name}: x is 0-d (a scalar) and has no axis to run along; hint: pass a "
            f"tensor of rank 1 or more"
        )
    axis = normalize_axis(prim.name, axis, x.ndim) - x.ndim
    return apply(prim, x, axis=axis, exclusive=bool(exclusive), reverse=bool(reverse))


def cumsum(x, axis=0, exclusive=False, reverse=False):
    """Running sum along ``axis``; ``exclusive`` leaves each element out of its own sum,
    ``reverse`` runs from the end.

    >>> import gputape as gt
    >>> gt.cumsum([1.0, 2.0, 3.0]).numpy()
    array([1., 3., 6.], dtype=float32)
    >>> gt.cumsum([1.0, 2.0, 3.0], exclusive=True, reverse=True).numpy()
    array([5., 3., 0.], dtype=float32)
    """
    return _call(CUMSUM, x, axis, exclusive, reverse)


def cumprod(x, axis=0, exclusive=False, reverse=False):
    """Running product along ``axis`` (``exclusive`` and ``reverse`` as in :func:`cumsum`).
    Its gradient divides by ``x``, and is 0 where ``x`` is 0 (TensorFlow's formula, which is
    wrong there: the true gradient is not 0).

    >>> import gputape as gt
    >>> gt.cumprod([1.0, 2.0, 3.0]).numpy()
    array([1., 2., 6.], dtype=float32)
    """
    return _call(CUMPROD, x, axis, exclusive, reverse)
