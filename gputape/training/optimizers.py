"""Optimizers with Keras' ``apply_gradients`` rules, and gradient clipping.

Updates run on the raw arrays: they are never recorded on a tape.
"""

from __future__ import annotations

import numbers
import warnings

from ..core import nest
from ..core.device import device_of
from ..core.errors import ArgumentError, ArgumentTypeError, DeviceMismatchError, ShapeError
from ..core.tensor import Tensor, Variable, convert_to_tensor

__all__ = ["Optimizer", "SGD", "Adam", "clip_by_global_norm"]


class Optimizer:
    """Base class: validates ``(gradient, variable)`` pairs and applies ``_update`` to each."""

    def __init__(self, learning_rate=0.001, name: str = "optimizer") -> None:
        _check_learning_rate(name, learning_rate)
        self.learning_rate = learning_rate
        self.name = name
        self.iterations = 0
        self._slots: dict = {}

    def _lr(self) -> float:
        lr = self.learning_rate
        if callable(lr):
            lr = lr(self.iterations)
        _check_learning_rate(self.name, lr)
        return float(lr)

    def apply_gradients(self, grads_and_vars) -> int:
        """Apply each gradient to its variable; pairs with a ``None`` gradient are skipped with
        a warning. Returns the iteration count.

        Examples
        --------
        >>> import gputape as gt
        >>> v = gt.Variable(1.0)
        >>> gt.optimizers.SGD(learning_rate=0.1).apply_gradients([(gt.constant(2.0), v)])
        1
        >>> round(float(v), 6)
        0.8
        """
        pairs = []
        for pair in grads_and_vars:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ArgumentTypeError(
                    f"{self.name}.apply_gradients: expected (gradient, variable) pairs, got "
                    f"{type(pair).__name__} {pair!r:.80}; hint: pass zip(grads, variables)"
                )
            pairs.append(tuple(pair))
        for _, var in pairs:
            if not isinstance(var, Variable):
                raise ArgumentTypeError(
                    f"{self.name}.apply_gradients: every second element must be a gt.Variable, "
                    f"got {type(var).__name__} {var!r:.60}; hint: optimizers update Variables in "
                    f"place, so create the parameters with gt.Variable(...)"
                )
        kept = [(g, v) for g, v in pairs if g is not None]
        missing = [v.name for g, v in pairs if g is None]
        if not kept:
            raise ArgumentError(
                f"{self.name}.apply_gradients: No gradients provided for any variable: {missing}; "
                f"hint: check that the loss was computed inside the GradientTape block from these "
                f"variables"
            )
        if missing:
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss; they "
                f"are left unchanged",
                stacklevel=2,
            )
        lr = self._lr()
        self.iterations += 1
        for grad, var in kept:
            self._update(var, _checked_gradient(self.name, grad, var), lr)
        return self.iterations

    def minimize(self, loss, var_list) -> int:
        """Compute ``loss()`` on a tape and apply its gradients to ``var_list``."""
        from ..autodiff.tape import GradientTape

        if not callable(loss):
            raise ArgumentTypeError(
                f"{self.name}.minimize: loss must be a callable returning the loss, got "
                f"{type(loss).__name__} {loss!r:.40}; hint: pass lambda: compute_loss(...), or "
                f"compute gradients with a GradientTape and call apply_gradients"
            )
        with GradientTape() as tape:
            value = loss()
        grads = tape.gradient(value, list(var_list))
        return self.apply_gradients(zip(grads, var_list))

    def _slot(self, var: Variable, name: str):
        key = (var._uid, name)
        if key not in self._slots:
            self._slots[key] = var._data * 0
        return self._slots[key]

    def _update(self, var: Variable, g, lr: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _checked_gradient(opt: str, grad, var: Variable):
    grad = convert_to_tensor(grad) if not isinstance(grad, Tensor) else grad
    if grad.shape != var.shape:
        raise ShapeError(
            f"{opt}.apply_gradients: gradient of shape {grad.shape} does not match variable "
            f"{var.name!r} of shape {var.shape}; hint: pair each gradient with the variable it "
            f"was computed for (tape.gradient(loss, variables) keeps the order)"
        )
    if device_of(grad._data) != var.device:
        raise DeviceMismatchError(
            f"{opt}.apply_gradients: gradient lives on {grad.device} but variable {var.name!r} on "
            f"{var.device}; hint: grad.to('{var.device}')"
        )
    return grad._data.astype(var.dtype, copy=False)


class SGD(Optimizer):
    """Stochastic gradient descent: ``v -= lr * g``; with ``momentum``,
    ``m = momentum * m - lr * g; v += m`` (Nesterov: ``v += momentum * m - lr * g``).

    Examples
    --------
    >>> import gputape as gt
    >>> opt = gt.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    >>> opt.learning_rate, opt.momentum
    (0.1, 0.9)
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False,
                 name: str = "SGD", **kwargs) -> None:
        learning_rate = kwargs.pop("lr", learning_rate)  # Keras 2 spelling, used by old code
        if kwargs:
            raise ArgumentTypeError(
                f"SGD: unexpected arguments {sorted(kwargs)}; hint: SGD takes learning_rate, "
                f"momentum, nesterov and name"
            )
        if not 0 <= momentum <= 1:
            raise ArgumentError(
                f"SGD: momentum must be in [0, 1], got {momentum}; hint: 0.9 is a common choice"
            )
        super().__init__(learning_rate, name)
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def _update(self, var: Variable, g, lr: float) -> None:
        if not self.momentum:
            new = g * -lr  # one new array, summed into in place: v - lr*g, bit for bit
            new += var._data
            var._set(new)
            return
        m = self.momentum * self._slot(var, "momentum") - lr * g
        self._slots[(var._uid, "momentum")] = m
        step = self.momentum * m - lr * g if self.nesterov else m
        var._set(var._data + step)


class Adam(Optimizer):
    """Adam with Keras' defaults and its bias correction folded into the learning rate.

    Examples
    --------
    >>> import gputape as gt
    >>> v = gt.Variable(1.0)
    >>> opt = gt.optimizers.Adam(learning_rate=0.1)
    >>> _ = opt.apply_gradients([(gt.constant(0.5), v)])
    >>> round(float(v), 4)  # the first step moves by about lr
    0.9
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, name: str = "Adam", **kwargs) -> None:
        learning_rate = kwargs.pop("lr", learning_rate)
        if kwargs:
            raise ArgumentTypeError(
                f"Adam: unexpected arguments {sorted(kwargs)}; hint: Adam takes learning_rate, "
                f"beta_1, beta_2, epsilon and name"
            )
        super().__init__(learning_rate, name)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _update(self, var: Variable, g, lr: float) -> None:
        # Keras rounds the bias-correction powers in the variable's dtype and keeps 1 - beta in
        # Python floats; doing the same reproduces its float32 results to the last digit.
        scalar = var.dtype.type
        beta_1_power = scalar(self.beta_1) ** scalar(self.iterations)
        beta_2_power = scalar(self.beta_2) ** scalar(self.iterations)
        alpha = scalar(lr) * (scalar(1) - beta_2_power) ** scalar(0.5) / (scalar(1) - beta_1_power)
        m = self._slot(var, "m")
        v = self._slot(var, "v")
        m = m + (g - m) * (1 - self.beta_1)
        v = v + (g * g - v) * (1 - self.beta_2)
        self._slots[(var._uid, "m")] = m
        self._slots[(var._uid, "v")] = v
        var._set(var._data - (m * alpha) / (v**0.5 + self.epsilon))


def _check_learning_rate(opt: str, lr) -> None:
    """A learning rate must be a real number (or a one-element tensor); a schedule (a callable)
    is checked on what it returns."""
    if callable(lr) and not isinstance(lr, Tensor):
        return
    if hasattr(lr, "dtype") and hasattr(lr, "shape"):  # a tensor or a NumPy value
        if getattr(lr, "size", 0) == 1 and lr.dtype.kind in "iuf":
            return
        what = f"{type(lr).__name__} of shape {lr.shape} and dtype {lr.dtype}"
    elif isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return
    else:
        what = f"{type(lr).__name__} {lr!r:.40}"
    raise ArgumentTypeError(
        f"{opt}: learning_rate must be a real number, got {what}; hint: e.g. "
        f"learning_rate=0.01, or a schedule: a callable of the step returning one"
    )


def _check_clip_norm(clip_norm) -> None:
    if isinstance(clip_norm, Tensor):
        if clip_norm.size != 1 or clip_norm.dtype.kind not in "iuf":
            raise ArgumentTypeError(
                f"clip_by_global_norm: clip_norm must be a scalar, got a tensor of shape "
                f"{clip_norm.shape} and dtype {clip_norm.dtype}; hint: e.g. clip_norm=1.0"
            )
        return  # its value stays on the device: reading it would wait for the GPU
    if isinstance(clip_norm, bool) or not isinstance(clip_norm, numbers.Real):
        raise ArgumentTypeError(
            f"clip_by_global_norm: clip_norm must be a real number, got "
            f"{type(clip_norm).__name__} {clip_norm!r:.40}; hint: e.g. clip_norm=1.0"
        )
    if not clip_norm > 0:
        raise ArgumentError(
            f"clip_by_global_norm: clip_norm must be > 0, got {clip_norm}; hint: it is the "
            f"largest global norm the clipped tensors may have, e.g. 1.0"
        )


def clip_by_global_norm(t_list, clip_norm, use_norm=None):
    """Scale every tensor of ``t_list`` by ``clip_norm / max(global_norm, clip_norm)``.

    Returns ``(clipped_list, global_norm)``; ``None`` entries stay ``None``. Differentiable.

    Examples
    --------
    >>> import gputape as gt
    >>> clipped, norm = gt.clip_by_global_norm([gt.constant([3.0, 4.0])], 1.0)
    >>> float(norm)
    5.0
    >>> clipped[0].numpy().round(3)
    array([0.6, 0.8], dtype=float32)
    """
    from ..ops import minimum, reduce_sum, sqrt

    if isinstance(t_list, Tensor) or not isinstance(t_list, (list, tuple)):
        raise ArgumentTypeError(
            f"clip_by_global_norm: t_list must be a list or tuple of tensors, got "
            f"{type(t_list).__name__}; hint: wrap a single tensor in a list: [t]"
        )
    _check_clip_norm(clip_norm)
    flat = nest.flatten(list(t_list))
    present = [convert_to_tensor(t) for t in flat if t is not None]
    if use_norm is None:
        if not present:
            raise ArgumentError(
                f"clip_by_global_norm: every tensor in t_list ({len(flat)} entries) is None; "
                f"hint: check that the gradients were computed (see tape.gradient's result)"
            )
        total = reduce_sum(present[0] * present[0])
        for t in present[1:]:
            total = total + reduce_sum(t * t)
        use_norm = sqrt(total)
    use_norm = convert_to_tensor(use_norm)
    scale = clip_norm * minimum(1.0 / use_norm, 1.0 / clip_norm)
    clipped = [None if t is None else convert_to_tensor(t) * scale for t in flat]
    return nest.pack_as(list(t_list), clipped), use_norm
