"""gputape: TensorFlow-style GradientTape autodiff over NumPy (CPU) and CuPy (NVIDIA GPU).

>>> import gputape as gt
>>> x = gt.constant(3.0)
>>> with gt.GradientTape() as tape:
...     tape.watch(x)
...     y = x ** 2
>>> float(tape.gradient(y, x))
6.0
"""

from . import autodiff, linalg, math, nn, random
from . import ops as _ops
from .autodiff.custom_gradient import custom_gradient, recompute_grad
from .autodiff.explain import UnconnectedGradientWarning
from .autodiff.functional import (
    grad,
    gradients_function,
    hessian,
    jacfwd,
    jacobian,
    jvp,
    value_and_grad,
    value_and_gradients_function,
    vectorized_map,
    vjp,
)
from .autodiff.tape import GradientTape, UnconnectedGradients
from .core import errors, nest  # noqa: F401 - gt.errors, as before the layers
from .core.device import Device, default_device, device, list_devices
from .core.dtypes import (
    as_dtype,
    bool_,
    complex64,
    complex128,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)
from .core.errors import (
    ArgumentError,
    ArgumentTypeError,
    CheckpointError,
    CustomGradientError,
    CustomGradientTypeError,
    DeviceError,
    DeviceMismatchError,
    DTypeError,
    GputapeError,
    GradientRuleError,
    IndexOutOfRangeError,
    ShapeError,
    TapeError,
    TapeTypeError,
    TapeValueError,
)
from .core.tensor import Tensor, Variable, constant, convert_to_tensor
from .cuda import table as _cuda_table
from .host import pool as hostpool
from .host import threads as hostthreads
from .ops import *  # noqa: F403 - the op library is the public surface
from .tools import debugging, interop, testing  # noqa: F401 - gt.interop too
from .tools.interop import from_dlpack
from .training import optimizers
from .training.checkpoint import load, save
from .training.optimizers import clip_by_global_norm

__version__ = "0.1.0"

# The CUDA backend registers its kernels and fused rules under the ops (it imports no CuPy).
_cuda_table.route("cupy")


def __getattr__(name: str):
    # gt.distributed loads on first use: plain `import gputape` stays free of MPI.
    if name == "distributed":
        import importlib

        return importlib.import_module(".distributed", __name__)
    raise AttributeError(f"module 'gputape' has no attribute {name!r}")

__all__ = [
    "ArgumentError", "ArgumentTypeError", "as_dtype", "bool_", "CheckpointError",
    "CustomGradientError", "CustomGradientTypeError",
    "clip_by_global_norm", "complex128", "complex64", "constant", "convert_to_tensor",
    "custom_gradient", "debugging", "default_device", "Device", "device", "DeviceError",
    "DeviceMismatchError", "DTypeError", "float16", "float32", "float64", "from_dlpack",
    "GputapeError", "grad", "GradientRuleError", "gradients_function", "GradientTape", "hessian",
    "hostpool",
    "hostthreads",
    "IndexOutOfRangeError", "int16", "int32", "int64", "int8", "list_devices", "load", "nest",
    "nn", "optimizers", "save", "ShapeError", "TapeError", "TapeTypeError", "TapeValueError",
    "Tensor", "testing", "uint8", "UnconnectedGradients", "UnconnectedGradientWarning",
    "value_and_grad", "value_and_gradients_function", "vjp", "jvp", "jacfwd", "jacobian",
    "Variable", "autodiff", "linalg", "math", "random", "recompute_grad", "vectorized_map",
    *_ops.__all__,
]
