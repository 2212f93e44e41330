"""gputape: TensorFlow-style GradientTape autodiff over NumPy (CPU) and CuPy (NVIDIA GPU).

>>> import gputape as gt
>>> x = gt.constant(3.0)
>>> with gt.GradientTape() as tape:
...     tape.watch(x)
...     y = x ** 2
>>> float(tape.gradient(y, x))
6.0
"""

from . import (
    nest,
    nn,  # noqa: E402 - needs the ops above
    optimizers,
    testing,
)
from . import ops as _ops
from .custom_gradient import custom_gradient
from .device import Device, default_device, device, list_devices
from .dtypes import (
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
from .errors import (
    ArgumentError,
    ArgumentTypeError,
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
from .functional import (
    grad,
    gradients_function,
    hessian,
    value_and_grad,
    value_and_gradients_function,
)
from .interop import from_dlpack
from .ops import *  # noqa: F403 - the op library is the public surface
from .optimizers import clip_by_global_norm
from .tape import GradientTape, UnconnectedGradients
from .tensor import Tensor, Variable, constant, convert_to_tensor

__version__ = "0.1.0"

__all__ = [
    "ArgumentError", "ArgumentTypeError", "Device", "DeviceError", "DeviceMismatchError",
    "DTypeError", "GradientRuleError", "GradientTape", "GputapeError", "IndexOutOfRangeError",
    "ShapeError", "TapeError", "TapeTypeError", "TapeValueError", "Tensor",
    "UnconnectedGradients", "Variable", "as_dtype", "bool_", "clip_by_global_norm", "complex64",
    "complex128", "constant", "convert_to_tensor", "custom_gradient", "default_device", "device",
    "float16", "float32", "float64", "from_dlpack", "grad", "gradients_function", "hessian",
    "int8", "int16", "int32", "int64", "list_devices", "nest", "nn", "optimizers", "testing",
    "uint8",
    "value_and_grad", "value_and_gradients_function", *_ops.__all__,
]
