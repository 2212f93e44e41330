"""Forward mode: ``ForwardAccumulator`` (TensorFlow's) and the JAX-named ``jvp`` and ``jacfwd``.

A Jacobian-vector product is computed from two reverse passes, as TensorFlow does for ops
without a forward rule of their own: the pullback ``u -> J^T u`` of the recorded computation is
linear in the cotangent ``u``, so differentiating ``<J^T u, t>`` with respect to ``u`` gives
``J t``. Every primitive whose gradient is differentiable (all of them: the registry-wide check
covers second order) therefore has a forward rule, and forward mode nests with tapes in both
orders (a forward-over-reverse Hessian-vector product is ``acc.jvp(tape.gradient(...))``).
"""

from __future__ import annotations

import warnings

from ..core import nest
from ..core.errors import ArgumentError, ArgumentTypeError
from ..core.tensor import Tensor, Variable, convert_to_tensor
from .sources import UnconnectedGradients, unconnected_mode
from .tape import GradientTape

__all__ = ["ForwardAccumulator"]


class ForwardAccumulator:
    """Jacobian-vector products of everything computed from ``primals`` inside its block, for
    the ``tangents`` given (one per primal, same shapes), as ``tf.autodiff.ForwardAccumulator``.

    ``jvp(target)`` returns the directional derivative of ``target`` along the tangents
    (``None`` for a target the primals do not reach, or zeros with
    ``unconnected_gradients="zero"``). It nests with ``GradientTape`` in both orders.

    Examples
    --------
    >>> import gputape as gt
    >>> x = gt.constant([1.0, 2.0])
    >>> with gt.autodiff.ForwardAccumulator(x, gt.constant([1.0, 0.0])) as acc:
    ...     y = x ** 3
    >>> acc.jvp(y).numpy()
    array([3., 0.], dtype=float32)

    Forward over reverse, a Hessian-vector product:

    >>> with gt.autodiff.ForwardAccumulator(x, gt.constant([0.0, 1.0])) as acc:
    ...     with gt.GradientTape() as tape:
    ...         tape.watch(x)
    ...         loss = gt.reduce_sum(x ** 3)
    ...     g = tape.gradient(loss, x)
    >>> acc.jvp(g).numpy()  # H = diag(6x), times (0, 1)
    array([ 0., 12.], dtype=float32)
    """

    def __init__(self, primals, tangents) -> None:
        flat_primals = nest.flatten(primals)
        flat_tangents = nest.flatten(tangents)
        if len(flat_primals) != len(flat_tangents):
            raise ArgumentError(
                f"ForwardAccumulator: {len(flat_primals)} primal(s) but {len(flat_tangents)} "
                f"tangent(s); hint: give one tangent per primal, in the same structure"
            )
        primals = [_primal(p, i) for i, p in enumerate(flat_primals)]
        tangents = [_tangent(t, p, i) for i, (t, p) in enumerate(zip(flat_tangents, primals))]
        seen: set = set()
        for i, p in enumerate(primals):
            if p._uid in seen:
                raise ArgumentError(
                    f"ForwardAccumulator: primal {i} (shape {p.shape}) was given more than once "
                    f"(TensorFlow refuses it too); hint: give it once, with the sum of its "
                    f"tangents"
                )
            seen.add(p._uid)
        for i, p in enumerate(primals):
            if p.dtype.kind not in "fc":  # as TF: a warning, and no tangent follows it
                warnings.warn(
                    f"ForwardAccumulator: the dtype of primal {i} must be floating (e.g. "
                    f"gt.float32), got {p.dtype}; it carries no tangent", stacklevel=2)
        followed = [i for i, p in enumerate(primals) if p.dtype.kind in "fc"]
        self._primals = [primals[i] for i in followed]
        self._tangents = [tangents[i] for i in followed]
        self._tape = GradientTape(persistent=True, watch_accessed_variables=False)
        self._tape.watch(self._primals)

    def __enter__(self) -> "ForwardAccumulator":
        self._tape.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._tape.__exit__(*exc_info)

    def jvp(self, primals, unconnected_gradients=UnconnectedGradients.NONE):
        """The tangent of each tensor of ``primals`` (a tensor or a nest of them), in the same
        structure.

        Example: ``acc.jvp([y, z])`` is ``[tangent of y, tangent of z]``.
        """
        mode = unconnected_mode(unconnected_gradients, "ForwardAccumulator.jvp")
        return nest.pack_as(primals, [self._jvp_one(t, mode) for t in nest.flatten(primals)])

    def _jvp_one(self, target, mode: UnconnectedGradients):
        if not isinstance(target, Tensor):
            raise ArgumentTypeError(
                f"ForwardAccumulator.jvp: expects tensors computed from the primals, got "
                f"{type(target).__name__} ({target!r:.40}); hint: pass the tensor itself"
            )
        if target.dtype.kind not in "fc":  # as TF: integer results carry no tangent
            return Tensor._wrap(_zeros_like(target)) if mode is UnconnectedGradients.ZERO else None
        cotangent = Tensor._wrap(_zeros_like(target))  # u, a plain tensor (no known fill)
        with GradientTape() as linear:
            linear.watch(cotangent)
            pulled = self._tape.gradient(target, self._primals, output_gradients=[cotangent])
        pairs = [(g, t) for g, t in zip(pulled, self._tangents) if g is not None] \
            if self._primals else []
        if pairs:
            found = linear.gradient([g for g, _ in pairs], cotangent,
                                    output_gradients=[t for _, t in pairs])
            if found is not None:
                return found
        if mode is UnconnectedGradients.ZERO:
            return Tensor._wrap(_zeros_like(target))
        return None


def _zeros_like(tensor: Tensor):
    """Zeros of ``tensor``'s shape and dtype, on its device (an array, not a filled tensor: the
    walk must see an ordinary cotangent)."""
    return tensor.device.xp.zeros_like(tensor._data)


def _primal(value, i: int) -> Tensor:
    if isinstance(value, Variable):
        return value
    if not isinstance(value, Tensor):
        value = convert_to_tensor(value)
    return value


def _tangent(value, primal: Tensor, i: int) -> Tensor:
    if not isinstance(value, Tensor):
        value = convert_to_tensor(value, dtype=primal.dtype, device=primal.device)
    if value.shape != primal.shape:
        raise ArgumentError(
            f"ForwardAccumulator: tangent {i} has shape {value.shape} but its primal has "
            f"shape {primal.shape}; hint: a tangent has its primal's shape"
        )
    if value.dtype != primal.dtype:  # a ValueError, as TF's
        raise ArgumentError(
            f"ForwardAccumulator: tangent {i} is {value.dtype} but its primal is "
            f"{primal.dtype}; hint: gt.cast(tangent, gt.{primal.dtype})"
        )
    return value
