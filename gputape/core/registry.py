"""The op registry: every primitive declared once, its forward and its gradient rules together.

A primitive's forward is written against an array namespace ``xp`` (NumPy or CuPy) and works
on raw arrays. Its vector-Jacobian products (VJPs), one per input, are written with gputape
ops on tensors, so that the backward pass is itself recorded by any outer tape: that is how
derivatives of any order work, with one rule per op and no second code path.

VJP rules receive ``(g, ans, *inputs, **params)``: the cotangent ``g`` (which may carry extra
*leading* batch dimensions, used by ``jacobian``), the op's output ``ans``, its inputs and its
static parameters. They return a gradient broadcastable to the input's shape (the backward walk
sums it back and casts it centrally), or ``None`` for "no gradient".

Backends register under a primitive, per array namespace (``"numpy"``, ``"cupy"``), as JAX
registers a platform lowering under its primitive; the declaration never forks on ``xp``:

* :func:`implement`: another forward for that namespace (a host trick such as BLAS, or a CUDA
  kernel); it wins over the generic forward, and the host fast path runs the host one;
* :func:`register_joint_rule`: one rule computing every needed input cotangent at once (from
  fused gradient primitives, which are themselves differentiable);
* :func:`register_shortcut`: a function that may produce the result itself: left pending until
  read (``x * y`` on the GPU), or a sum computed in one pass from the inputs of a pending
  operand (``reduce_sum(x * y)``); see ``gputape.cuda.pending``.

Registrations made with ``fused=True`` (the CUDA backend's) are off when the environment sets
``GPUTAPE_FUSED=0``.

A primitive declared with ``keeps=True`` may keep what its forward computed for its rules in a
:class:`gputape.core.state.Kept` (the keyword ``kept`` of its forward and of its rules); the
walk hands it to the rules only while no tape records the backward pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

__all__ = [
    "Primitive", "primitive", "defvjp", "defvjp_any", "defvjp_all", "REGISTRY", "implement",
    "register_joint_rule", "register_shortcut", "unregister", "fused_enabled", "ufunc",
    "describe",
]

REGISTRY: "dict[str, Primitive]" = {}


class Primitive:
    """One op the tape knows: a forward over arrays, per-input gradient rules, and what the
    backends registered under it for their array namespace."""

    __slots__ = ("name", "forward", "arg_names", "vjps", "vjp_any", "vjp_all", "differentiable",
                 "float_only", "unify", "batchable", "hint", "keeps", "implementations",
                 "joint_rules_for", "shortcuts", "fused", "host_forward", "host_ufunc",
                 "host_generic", "joint_rules", "host_joint_rules", "plain_rules", "array_rules",
                 "host_walk")

    def __init__(self, name: str, forward: Callable, arg_names: "tuple[str, ...]",
                 differentiable: bool = True, float_only: bool = False,
                 unify: "tuple[int, ...] | None" = None, batchable=True,
                 hint: str = "", keeps: bool = False) -> None:
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
        self.hint = hint  # check_numerics' advice when this op makes a NaN or an Inf
        self.keeps = keeps  # its forward and rules take ``kept`` (gputape.core.state.Kept)
        # What backends registered, per array namespace name.
        self.implementations: "dict[str, Callable]" = {}
        self.joint_rules_for: "dict[str, Callable]" = {}
        self.shortcuts: "dict[str, Callable]" = {}
        self.fused: "set[tuple[str, str]]" = set()  # (table, namespace) made with fused=True
        # False when the rules must get tensors even in backward's array mode (set before
        # refresh(): see host_walk).
        self.array_rules = True
        self.refresh()

    def refresh(self) -> None:
        """Recompute the flags the hot paths read after a rule or a registration changed."""
        # What the host runs: the host backend's implementation, else the generic forward.
        self.host_forward = self.implementations.get("numpy", self.forward)
        # True while NumPy arrays may take dispatch's fast path (no shortcut on the host, and
        # nothing to keep: the general path hands the forward its Kept).
        self.host_generic = "numpy" not in self.shortcuts and not self.keeps
        # True when backward's array mode may run this op's rules on host arrays (results
        # that stay pending on the host need tensors).
        self.host_walk = self.array_rules and "numpy" not in self.shortcuts
        ufunc = getattr(self.host_forward, "host_ufunc", None)
        fast = self.host_generic and self.host_walk and _host_fast_paths
        self.host_ufunc = ufunc if fast else None
        # True when a joint rule may compute every input's cotangent at once: the walk asks;
        # the same for cotangents that are NumPy arrays; and one rule per input, none joint.
        self.joint_rules = self.vjp_all is not None or bool(self.joint_rules_for)
        self.host_joint_rules = self.vjp_all is not None or "numpy" in self.joint_rules_for
        self.plain_rules = (not self.host_joint_rules and self.vjp_any is None
                            and not self.keeps and len(self.vjps) == len(self.arg_names))

    def _registered(self, table: str, xp_name: str) -> "Callable | None":
        found = getattr(self, table).get(xp_name)
        if found is not None and (table, xp_name) in self.fused and not fused_enabled():
            return None
        return found

    def implementation(self, xp_name: str) -> Callable:
        """The forward to run for arrays of namespace ``xp_name``: the backend's if one is
        registered (and enabled), else the generic one."""
        if xp_name == "numpy":
            return self.host_forward
        return self._registered("implementations", xp_name) or self.forward

    def joint_rule(self, xp_name: str) -> "Callable | None":
        """The rule ``rule(g, ans, inputs, params, needed) -> list`` registered for cotangents
        of namespace ``xp_name`` (and enabled), if any."""
        return self._registered("joint_rules_for", xp_name)

    def shortcut(self, xp_name: str) -> "Callable | None":
        """The function that may produce this primitive's result itself on ``xp_name``."""
        return self._registered("shortcuts", xp_name)

    def arg_name(self, i: int) -> str:
        """The name of argument ``i`` (``values[2]`` for the third of a variable-arity op)."""
        names = self.arg_names
        if i < len(names):
            return names[i]
        return f"{names[-1]}[{i}]" if names else f"arg{i}"

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"


def describe(prim: Primitive, tensors) -> str:
    """``x: float32 (2, 3) on cpu, y: ...``: the operands of ``prim``, for error messages."""
    return ", ".join(
        f"{prim.arg_name(i)}: {t.dtype} {t.shape} on {t.device}" for i, t in enumerate(tensors)
    )


def primitive(name: str, forward: Callable, arg_names: "tuple[str, ...]" = ("x",), *,
              differentiable: bool = True, float_only: bool = False,
              unify: "tuple[int, ...] | None" = None, batchable=True,
              hint: str = "", keeps: bool = False) -> Primitive:
    """Declare a primitive and add it to the registry (names are unique).

    ``hint`` is check_numerics' advice when the op makes a NaN or an Inf; with ``keeps``, the
    forward and the rules take the keyword ``kept`` (see :class:`gputape.core.state.Kept`).
    """
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} is declared twice")
    prim = Primitive(name, forward, arg_names, differentiable, float_only, unify, batchable,
                     hint, keeps)
    REGISTRY[name] = prim
    return prim


def ufunc(name: str) -> Callable:
    """The forward of a primitive that is one ufunc of the array namespace, ``xp.<name>``.

    Declaring it so lets small host calls skip ``apply`` (:mod:`gputape.core.fastpath`).

    >>> import numpy as np
    >>> from gputape.core.registry import ufunc
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


def _prim(name) -> Primitive:
    return name if isinstance(name, Primitive) else REGISTRY[name]


def _register(table: str, name, xp_name: str, value: Callable, fused: bool) -> Primitive:
    prim = _prim(name)
    getattr(prim, table)[xp_name] = value
    if fused:
        prim.fused.add((table, xp_name))
    else:
        prim.fused.discard((table, xp_name))
    prim.refresh()
    return prim


def implement(name, xp_name: str, forward: Callable, *, fused: bool = False) -> Primitive:
    """Make ``forward(xp, *arrays, **params)`` the implementation of primitive ``name`` (or the
    Primitive itself) for arrays of namespace ``xp_name``.

    >>> import numpy as np
    >>> prim = primitive("doc_twice", lambda xp, x: x + x)
    >>> _ = implement(prim, "numpy", lambda xp, x: np.multiply(x, 2))
    >>> prim.implementation("numpy")(np, np.ones(2))
    array([2., 2.])
    >>> unregister(prim, "numpy"); del REGISTRY["doc_twice"]
    """
    return _register("implementations", name, xp_name, forward, fused)


def register_joint_rule(name, xp_name: str, rule: Callable, *, fused: bool = False) -> Primitive:
    """Make ``rule(g, ans, inputs, params, needed, kept)`` compute the cotangents of primitive
    ``name`` when its cotangent is an array of ``xp_name``.

    ``needed[i]`` says whether input ``i`` wants a cotangent; ``kept`` is what the entry kept
    (a :class:`gputape.core.state.Kept`, or None while a tape records the walk). The rule
    returns one entry per input (``None`` where not needed or not connected), written with
    (fused) gputape ops.
    """
    return _register("joint_rules_for", name, xp_name, rule, fused)


def register_shortcut(name, xp_name: str, shortcut: Callable, *,
                      fused: bool = False) -> Primitive:
    """Let ``shortcut(prim, tensors, params, xp, kept)`` produce the result Tensor of primitive
    ``name`` on arrays of ``xp_name`` (pending, or computed its own way), or return None: the
    forward runs. Dispatch records what it returns as usual, with ``kept`` (a Kept while a tape
    records, else None) as what the entry kept."""
    return _register("shortcuts", name, xp_name, shortcut, fused)


def unregister(name, xp_name: str, tables=("implementations", "joint_rules_for",
                                            "shortcuts")) -> None:
    """Remove what was registered under primitive ``name`` for ``xp_name`` (in ``tables``)."""
    prim = _prim(name)
    for table in tables:
        getattr(prim, table).pop(xp_name, None)
        prim.fused.discard((table, xp_name))
    prim.refresh()


_host_fast_paths = True


def set_host_fast_paths(enabled: bool) -> None:
    """Turn :mod:`gputape.core.fastpath` on or off for every primitive (check_numerics turns it off:
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
