"""The op registry: every primitive declared once, its forward and its gradient rules together.

A primitive's forward is written against an array namespace ``xp`` (NumPy or CuPy) and works
on raw arrays. Its vector-Jacobian products (VJPs), one per input, are written with gputape
ops on tensors, so that the backward pass is itself recorded by any outer tape: that is how
derivatives of any order work, with one rule per op and no second code path.

VJP rules receive ``(g, ans, *inputs, **params)``: the cotangent ``g`` (which may carry extra
*leading* batch dimensions, used by ``jacobian``), the op's output ``ans``, its inputs and its
static parameters. They return a gradient broadcastable to the input's shape (the backward walk
sums it back and casts it centrally), or ``None`` for "no gradient".

Fused kernels register as overrides for one array namespace (``"cupy"``), in three ways:

* ``register_override``: another forward for the primitive (a kernel instead of the generic
  array code);
* ``register_gradient_override``: a rule computing every needed input cotangent at once from
  fused gradient primitives (which are themselves differentiable);
* ``deferrable``: the primitive's output may stay pending until first read, so that a
  reduction of it can read the primitive's inputs instead (``gputape.pending``).

``GPUTAPE_FUSED=0`` turns every override off.

A forward may keep what it computed for its rules in a :class:`Saved` passed as the parameter
``saved`` (as TensorFlow's cross entropy keeps its gradient as a second output); rules use it
only where :func:`reusable` says so, and compute it with tensor ops otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ._state import recording

__all__ = [
    "Primitive", "primitive", "defvjp", "REGISTRY", "register_override",
    "register_gradient_override", "fused_enabled", "ufunc", "Saved", "reusable",
]

REGISTRY: "dict[str, Primitive]" = {}


class Primitive:
    """One op the tape knows: a forward over arrays and per-input gradient rules."""

    __slots__ = ("name", "forward", "arg_names", "vjps", "vjp_any", "vjp_all", "differentiable",
                 "float_only", "unify", "batchable", "overrides", "grad_overrides",
                 "deferrable", "host_generic", "joint_rules", "host_joint_rules", "plain_rules",
                 "array_rules", "host_ufunc", "host_walk")

    def __init__(self, name: str, forward: Callable, arg_names: "tuple[str, ...]",
                 differentiable: bool = True, float_only: bool = False,
                 unify: "tuple[int, ...] | None" = None, batchable=True) -> None:
        self.name = name
        self.forward = forward
        self.arg_names = arg_names
        self.vjps: "tuple[Callable | None, ...]" = ()
        self.vjp_any: "Callable | None" = None
        self.vjp_all: "Callable | None" = None
        self.differentiable = differentiable
        self.float_only = float_only
        self.unify = tuple(range(len(arg_names))) if unify is None else unify
        self.batchable = batchable
        self.overrides: "dict[str, Callable]" = {}
        self.grad_overrides: "dict[str, Callable]" = {}
        self.deferrable: "frozenset[str]" = frozenset()
        # False when the rules must get tensors even in backward's array mode (set before
        # refresh(): see host_walk).
        self.array_rules = True
        self.refresh()

    def refresh(self) -> None:
        """Recompute the flags the hot paths read after a rule, override or deferral changed."""
        # True while NumPy arrays get the generic forward, undeferred: dispatch's fast path;
        # then NumPy's ufunc, when the forward is one (see ufunc()): gputape.fastpath.
        self.host_generic = "numpy" not in self.overrides and "numpy" not in self.deferrable
        # True when backward's array mode may run this op's rules on host arrays (results
        # that stay pending on the host need tensors).
        self.host_walk = self.array_rules and "numpy" not in self.deferrable
        ufunc = getattr(self.forward, "host_ufunc", None)
        fast = self.host_generic and self.host_walk and _host_fast_paths
        self.host_ufunc = ufunc if fast else None
        # True when a joint rule may compute every input's cotangent at once: the walk asks;
        # the same for cotangents that are NumPy arrays; and one rule per input, none joint.
        self.joint_rules = self.vjp_all is not None or bool(self.grad_overrides)
        self.host_joint_rules = self.vjp_all is not None or "numpy" in self.grad_overrides
        self.plain_rules = (not self.host_joint_rules and self.vjp_any is None
                            and len(self.vjps) == len(self.arg_names))

    def implementation(self, xp_name: str) -> Callable:
        """The forward to run for arrays of namespace ``xp_name``: a fused override if one is
        registered and enabled, else the generic rule."""
        override = self.overrides.get(xp_name)
        if override is not None and fused_enabled():
            return override
        return self.forward

    def vjp(self, index: int, g, ans, inputs, params):
        """Cotangent for input ``index`` (or ``None`` when the rule gives no gradient)."""
        if self.vjp_any is not None:
            return self.vjp_any(index, g, ans, *inputs, **params)
        rule = self.vjps[index] if index < len(self.vjps) else None
        return None if rule is None else rule(g, ans, *inputs, **params)

    def gradient_override(self, xp_name: str) -> "Callable | None":
        """The fused rule ``rule(g, ans, inputs, params, needed) -> list`` for cotangents of
        namespace ``xp_name``, if one is registered and enabled."""
        rule = self.grad_overrides.get(xp_name)
        return rule if rule is not None and fused_enabled() else None

    def has_rule(self, index: int) -> bool:
        if self.vjp_any is not None:
            return True
        return index < len(self.vjps) and self.vjps[index] is not None

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"


class Saved:
    """What one application of a primitive keeps from its forward for its first-order rules.

    The op's wrapper passes one as the parameter ``saved`` while a tape records (else None),
    and the forward fills ``value``. A rule may read it instead of computing it again, but
    only while no tape records the backward pass (:func:`reusable`): an array from the forward
    is a constant to an outer tape, so higher orders compute it again with tensor ops.

    >>> from gputape.registry import Saved, reusable
    >>> saved = Saved()
    >>> reusable(saved), reusable(None)
    (False, False)
    >>> saved.value = 1.0
    >>> reusable(saved)
    True
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = None

    def __repr__(self) -> str:
        return "<saved>"


def reusable(saved: "Saved | None") -> bool:
    """Whether a rule may use what the forward kept in ``saved`` (see :class:`Saved`)."""
    return saved is not None and saved.value is not None and not recording.tapes


def primitive(name: str, forward: Callable, arg_names: "tuple[str, ...]" = ("x",), *,
              differentiable: bool = True, float_only: bool = False,
              unify: "tuple[int, ...] | None" = None, batchable=True) -> Primitive:
    """Declare a primitive and add it to the registry (names are unique)."""
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} is declared twice")
    prim = Primitive(name, forward, arg_names, differentiable, float_only, unify, batchable)
    REGISTRY[name] = prim
    return prim


def ufunc(name: str) -> Callable:
    """The forward of a primitive that is one ufunc of the array namespace, ``xp.<name>``.

    Declaring it so lets small host calls skip ``apply`` (:mod:`gputape.fastpath`).

    >>> import numpy as np
    >>> from gputape.registry import ufunc
    >>> ufunc("add")(np, np.ones(2), 2.0)
    array([3., 3.])
    """
    def forward(xp, *arrays):
        return getattr(xp, name)(*arrays)

    forward.host_ufunc = getattr(np, name)
    forward.__name__ = forward.__qualname__ = f"ufunc_{name}"
    return forward


def defvjp(prim: Primitive, *rules: "Callable | None") -> Primitive:
    """Attach one VJP rule per input (``None``: that input gets no gradient)."""
    if len(rules) != len(prim.arg_names):
        raise ValueError(f"{prim.name}: {len(prim.arg_names)} inputs but {len(rules)} VJP rules")
    prim.vjps = rules
    prim.refresh()
    return prim


def defvjp_any(prim: Primitive, rule: Callable) -> Primitive:
    """Attach one rule ``rule(index, g, ans, *inputs, **params)`` for ops of variable arity."""
    prim.vjp_any = rule
    prim.refresh()
    return prim


def defvjp_all(prim: Primitive, rule: Callable) -> Primitive:
    """Attach one rule ``rule(g, ans, inputs, params) -> list`` giving every input's cotangent
    at once (for user functions, which compute them together)."""
    prim.vjp_all = rule
    prim.refresh()
    return prim


def register_override(name: str, xp_name: str, forward: Callable) -> None:
    """Make ``forward`` the implementation of primitive ``name`` for arrays of ``xp_name``."""
    prim = REGISTRY[name]
    prim.overrides[xp_name] = forward
    prim.refresh()


def register_gradient_override(name: str, xp_name: str, rule: Callable) -> None:
    """Make ``rule(g, ans, inputs, params, needed)`` compute the cotangents of primitive
    ``name`` when its cotangent is an array of ``xp_name``.

    ``needed[i]`` says whether input ``i`` wants a cotangent; the rule returns one entry per
    input (``None`` where not needed or not connected), written with (fused) gputape ops.
    """
    prim = REGISTRY[name]
    prim.grad_overrides[xp_name] = rule
    prim.refresh()


def remove_gradient_override(name: str, xp_name: str) -> None:
    """Undo :func:`register_gradient_override`."""
    prim = REGISTRY[name]
    prim.grad_overrides.pop(xp_name, None)
    prim.refresh()


def allow_deferral(name: str, xp_name: str) -> None:
    """Let primitive ``name`` leave its output pending on arrays of ``xp_name``."""
    prim = REGISTRY[name]
    prim.deferrable = prim.deferrable | {xp_name}
    prim.refresh()


def forbid_deferral(name: str, xp_name: str) -> None:
    """Undo :func:`allow_deferral`."""
    prim = REGISTRY[name]
    prim.deferrable = prim.deferrable - {xp_name}
    prim.refresh()


_host_fast_paths = True


def set_host_fast_paths(enabled: bool) -> None:
    """Turn :mod:`gputape.fastpath` on or off for every primitive (check_numerics turns it off:
    every result is then checked on the general path)."""
    global _host_fast_paths
    if _host_fast_paths == bool(enabled):
        return
    _host_fast_paths = bool(enabled)
    for prim in REGISTRY.values():
        prim.refresh()


def fused_enabled() -> bool:
    """False when the environment sets ``GPUTAPE_FUSED=0`` (also ``false``, ``no``, ``off``)."""
    return os.environ.get("GPUTAPE_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")


def differentiable_primitives() -> "list[Primitive]":
    """Every registered primitive that has gradient rules, sorted by name."""
    return sorted((p for p in REGISTRY.values() if p.differentiable), key=lambda p: p.name)
