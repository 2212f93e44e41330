"""The CUDA kernels of ``kernels/``, declared once as named objects with their entry points.

Each ``GT_DEFINE_ALL_DTYPES(name, map, outputs)`` line of a ``.cu`` file defines the map-reduce
kernels ``gt_<name>_{inner,outer}_{f32,f64}`` (``kernels/gt_reduce.cuh``); each
``GT_DEFINE_SUM_GRADS_ALL_DTYPES(name, ...)`` of ``fused_sum.cu`` the one-pass kernels
``gt_<name>_{f32,f64}``; every module has its ``gt_finish_{f32,f64}``. The launcher looks the
names up here (no name is assembled at launch), and the NVRTC check in the tests finds every
one of them in the compiled PTX.

>>> MAP_REDUCE["mul"].entry(inner=True, suffix="f32")
'gt_mul_inner_f32'
>>> ONE_PASS["sum_grad_mul"].module, ONE_PASS["sum_grad_mul"].entry("f64")
('fused_sum', 'gt_sum_grad_mul_f64')
"""

from __future__ import annotations

__all__ = ["MapReduce", "OnePass", "MAP_REDUCE", "ONE_PASS", "SUFFIXES", "finish_entry"]

SUFFIXES = ("f32", "f64")  # float32, float64


def finish_entry(suffix: str) -> str:
    """The finishing sum of partial results that every module defines."""
    return _FINISH[suffix]


_FINISH = {suffix: f"gt_finish_{suffix}" for suffix in SUFFIXES}


class MapReduce:
    """A map-reduce kernel: ``outputs`` sums over the broadcast of up to three operands of the
    element map ``name`` (``kernels/gt_math.cuh``), defined in ``kernels/<module>.cu``."""

    __slots__ = ("module", "name", "outputs", "_entries")

    def __init__(self, module: str, name: str, outputs: int = 1) -> None:
        self.module, self.name, self.outputs = module, name, outputs
        self._entries = {(inner, suffix): f"gt_{name}_{'inner' if inner else 'outer'}_{suffix}"
                         for inner in (True, False) for suffix in SUFFIXES}

    def entry(self, inner: bool, suffix: str) -> str:
        return self._entries[(inner, suffix)]

    def entry_points(self) -> "list[str]":
        """Every entry point a launch of this kernel may use, the finishing sum included."""
        return [*self._entries.values(), *_FINISH.values()]

    def __repr__(self) -> str:
        return f"MapReduce({self.module!r}, {self.name!r}, outputs={self.outputs})"


class OnePass:
    """A one-pass kernel of ``kernels/fused_sum.cu``: a full sum together with the inputs'
    gradients for a known cotangent (``gputape.cuda.fused.pattern_sum``)."""

    __slots__ = ("module", "name", "_entries")

    def __init__(self, name: str) -> None:
        self.module, self.name = "fused_sum", name
        self._entries = {suffix: f"gt_{name}_{suffix}" for suffix in SUFFIXES}

    def entry(self, suffix: str) -> str:
        return self._entries[suffix]

    def entry_points(self) -> "list[str]":
        return [*self._entries.values(), *_FINISH.values()]

    def __repr__(self) -> str:
        return f"OnePass({self.name!r})"


MAP_REDUCE = {k.name: k for k in (
    MapReduce("sum", "sum"),
    MapReduce("multiply_grad", "mul"),
    MapReduce("multiply_grad", "mul_pair", outputs=2),
    MapReduce("multiply_grad", "square_grad"),
    MapReduce("power_grad", "pow_grad_x"),
    MapReduce("power_grad", "pow_grad_p"),
    MapReduce("fused_sum", "sum_product"),
    MapReduce("fused_sum", "sum_power"),
    MapReduce("fused_sum", "sum_square"),
)}
ONE_PASS = {k.name: k for k in (
    OnePass("sum_grad_mul"),
    OnePass("sum_grad_square"),
    OnePass("sum_grad_pow"),
    OnePass("sum_grad_pow_p"),
)}
