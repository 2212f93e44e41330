"""Convolutions and pooling (``tf.nn.conv1d``, ``conv2d``, ``conv2d_transpose``,
``max_pool2d``, ``avg_pool2d``), TensorFlow's layouts (NHWC, or NCHW) and padding rules.

A convolution is two linear primitives and a matrix product: the input's sliding windows are
gathered into one array (``extract_patches``, a strided view copied once: im2col) and
multiplied by the filters through BLAS; the transpose of the gathering (``patches_transpose``,
each window added back where it came from) is the gathering's gradient and the other way
round, so every order of derivative follows from these two and ``matmul``.
"""

from __future__ import annotations

import math
import numbers

from ..core.dispatch import apply
from ..core.errors import ArgumentError, ShapeError
from ..core.registry import defvjp, primitive
from ._axes import as_tensor
from .linalg import matmul
from .reduction import reduce_max, reduce_sum
from .shape import reshape, transpose

# gt.nn's (as tf.nn's), none at the top level
__all__: "list[str]" = []
NN = ["avg_pool2d", "conv1d", "conv2d", "conv2d_transpose", "max_pool2d"]


def _patches_forward(xp, x, ksize, strides, dilations):
    """(N, H, W, C) -> (N, OH, OW, KH, KW, C): every window, as a strided view, copied."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = ksize, strides, dilations
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    x = xp.ascontiguousarray(x)
    s = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]))
    return xp.ascontiguousarray(view)


def _patches_transpose_forward(xp, p, shape, strides, dilations):
    """(N, OH, OW, KH, KW, C) -> (N, H, W, C) of ``shape``: each window added back."""
    out = xp.zeros(shape, p.dtype)
    _, oh, ow, kh, kw, _ = p.shape
    (sh, sw), (dh, dw) = strides, dilations
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
            cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
            out[:, rows, cols, :] += p[:, :, :, i, j, :]
    return out


PATCHES = primitive("extract_patches", _patches_forward, ("input",), batchable=False)
PATCHES_T = primitive("patches_transpose", _patches_transpose_forward, ("patches",),
                      batchable=False)
defvjp(PATCHES, lambda g, ans, x, ksize, strides, dilations: apply(
    PATCHES_T, g, shape=x.shape, strides=strides, dilations=dilations))
defvjp(PATCHES_T, lambda g, ans, p, shape, strides, dilations: apply(
    PATCHES, g, ksize=p.shape[3:5], strides=strides, dilations=dilations))


def _pair(op: str, name: str, value, data_format: str = "NHWC") -> "tuple[int, int]":
    """An int, a pair, or TF's 4-list (batch and channel entries 1) as (height, width)."""
    if isinstance(value, numbers.Integral):
        values = (int(value), int(value))
    else:
        values = tuple(int(v) for v in value)
        if len(values) == 4:
            values = values[1:3] if data_format == "NHWC" else values[2:4]
        elif len(values) == 1:
            values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise ArgumentError(f"{op}: {name} must be a positive int, a pair or a 4-list, got "
                            f"{value!r}")
    return values


def _padding(op: str, padding, size: "tuple[int, int]", ksize, strides, dilations,
             data_format: str = "NHWC"):
    """((top, bottom), (left, right)) for TF's 'SAME' or 'VALID', or explicit pairs (TF's four
    in the data format's order, or the two spatial ones)."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode == "SAME":  # TF's: the output ceil(in / stride), the extra pad at the end
            pads = []
            for n, k, s, d in zip(size, ksize, strides, dilations):
                out = -(-n // s)
                total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ArgumentError(f"{op}: padding must be 'SAME', 'VALID' or explicit pairs, got "
                            f"{padding!r}")
    pairs = [tuple(int(v) for v in p) for p in padding]
    if len(pairs) == 4:
        pairs = pairs[1:3] if data_format == "NHWC" else pairs[2:4]
    if len(pairs) != 2 or any(len(p) != 2 or min(p) < 0 for p in pairs):
        raise ArgumentError(f"{op}: explicit padding must be two (before, after) pairs for "
                            f"height and width (or TF's four), got {padding!r}")
    return tuple(pairs)


def _padded(x, pads, value=0.0):
    from .arrange import pad

    if not any(a or b for a, b in pads):
        return x
    return pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]], constant_values=value)


def _nhwc(op: str, value, data_format: str, arg: str = "input"):
    x = as_tensor(op, arg, value)
    if data_format not in ("NHWC", "NCHW"):
        raise ArgumentError(f"{op}: data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    if x.ndim != 4:
        raise ShapeError(f"{op}: {arg} must be 4-d ({data_format}), got shape {x.shape}; "
                         f"hint: add a batch or channel axis with gt.expand_dims")
    return transpose(x, (0, 2, 3, 1)) if data_format == "NCHW" else x


def _back(y, data_format: str):
    return transpose(y, (0, 3, 1, 2)) if data_format == "NCHW" else y


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None):  # noqa: A002
    """2-d convolution (TF's cross-correlation): ``input`` of shape (N, H, W, C) (or NCHW),
    ``filters`` (KH, KW, C, O); ``strides`` and ``dilations`` an int, a pair or TF's 4-list;
    ``padding`` 'SAME', 'VALID' or explicit pairs.

    >>> import gputape as gt
    >>> x = gt.ones((1, 4, 4, 1))
    >>> gt.nn.conv2d(x, gt.ones((3, 3, 1, 2)), strides=1, padding="VALID").shape
    (1, 2, 2, 2)
    """
    x = _nhwc("conv2d", input, data_format)
    w = as_tensor("conv2d", "filters", filters)
    if w.ndim != 4 or w.shape[2] != x.shape[3]:
        raise ShapeError(f"conv2d: filters must be (height, width, in_channels, "
                         f"out_channels) with in_channels = {x.shape[3]} (the input's), got "
                         f"{w.shape}")
    ksize = w.shape[:2]
    strides = _pair("conv2d", "strides", strides, data_format)
    dilations = _pair("conv2d", "dilations", 1 if dilations is None else dilations,
                      data_format)
    pads = _padding("conv2d", padding, x.shape[1:3], ksize, strides, dilations, data_format)
    x = _padded(x, pads)
    effective = [(k - 1) * d + 1 for k, d in zip(ksize, dilations)]
    if any(e > n for e, n in zip(effective, x.shape[1:3])):
        raise ShapeError(f"conv2d: a {ksize} filter (dilated to {tuple(effective)}) does not "
                         f"fit the padded input {x.shape[1:3]}; hint: padding='SAME'")
    patches = apply(PATCHES, x, ksize=tuple(ksize), strides=strides, dilations=dilations)
    n, oh, ow = patches.shape[:3]
    rows = reshape(patches, (n * oh * ow, math.prod(w.shape[:3])))
    out = matmul(rows, reshape(w, (math.prod(w.shape[:3]), w.shape[3])))
    return _back(reshape(out, (n, oh, ow, w.shape[3])), data_format)


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None):  # noqa: A002
    """1-d convolution: ``input`` (N, W, C) (or NCW), ``filters`` (K, C, O); a 2-d one of
    height 1 (as TF computes it).

    >>> import gputape as gt
    >>> gt.nn.conv1d(gt.ones((1, 5, 1)), gt.ones((3, 1, 1)), stride=1, padding="SAME").shape
    (1, 5, 1)
    """
    from .shape import expand_dims, squeeze

    if data_format not in ("NWC", "NCW"):
        raise ArgumentError(f"conv1d: data_format must be 'NWC' or 'NCW', got "
                            f"{data_format!r}")
    x = as_tensor("conv1d", "input", input)
    w = as_tensor("conv1d", "filters", filters)
    if x.ndim != 3 or w.ndim != 3:
        raise ShapeError(f"conv1d: input must be 3-d and filters (width, in, out), got "
                         f"{x.shape} and {w.shape}")
    four = "NHWC" if data_format == "NWC" else "NCHW"

    def width(value, name):  # an int, [w], or TF's 3-list in the data format's order
        if isinstance(value, numbers.Integral):
            return int(value)
        values = [int(v) for v in value]
        if len(values) == 1:
            return values[0]
        if len(values) == 3:
            return values[1] if data_format == "NWC" else values[2]
        raise ArgumentError(f"conv1d: {name} must be an int, a 1-list or a 3-list, got "
                            f"{value!r}")

    stride = width(stride, "stride")
    dilation = 1 if dilations is None else width(dilations, "dilations")
    y = conv2d(expand_dims(x, 1 if four == "NHWC" else 2), expand_dims(w, 0),
               strides=(1, int(stride)), padding=padding, data_format=four,
               dilations=(1, int(dilation)))
    return squeeze(y, 1 if four == "NHWC" else 2)


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME",  # noqa: A002
                     data_format="NHWC", dilations=None):
    """The transpose of :func:`conv2d` (the gradient of a convolution with respect to its
    input): ``filters`` (KH, KW, out_channels, in_channels), the result of
    ``output_shape``.

    >>> import gputape as gt
    >>> y = gt.nn.conv2d_transpose(gt.ones((1, 2, 2, 1)), gt.ones((3, 3, 1, 1)),
    ...                            output_shape=(1, 4, 4, 1), strides=2)
    >>> y.shape
    (1, 4, 4, 1)
    """
    x = _nhwc("conv2d_transpose", input, data_format)
    w = as_tensor("conv2d_transpose", "filters", filters)
    shape = tuple(int(s) for s in output_shape)
    if data_format == "NCHW":
        shape = (shape[0], shape[2], shape[3], shape[1])
    if w.ndim != 4 or w.shape[3] != x.shape[3] or w.shape[2] != shape[3]:
        raise ShapeError(f"conv2d_transpose: filters must be (height, width, "
                         f"{shape[3]}, {x.shape[3]}) for this input and output, got {w.shape}")
    ksize = w.shape[:2]
    strides = _pair("conv2d_transpose", "strides", strides, data_format)
    dilations = _pair("conv2d_transpose", "dilations", 1 if dilations is None else dilations,
                      data_format)
    pads = _padding("conv2d_transpose", padding, shape[1:3], ksize, strides, dilations,
                    data_format)
    padded = (shape[0], shape[1] + sum(pads[0]), shape[2] + sum(pads[1]), shape[3])
    n, oh, ow, o = x.shape
    expected = [(p - (k - 1) * d - 1) // s + 1 for p, k, s, d in
                zip(padded[1:3], ksize, strides, dilations)]
    if [oh, ow] != expected:
        raise ShapeError(f"conv2d_transpose: an input of spatial shape {(oh, ow)} does not "
                         f"come from output_shape {tuple(output_shape)} with these strides and "
                         f"padding (a convolution of it gives {tuple(expected)})")
    rows = matmul(reshape(x, (n * oh * ow, o)),
                  reshape(w, (math.prod(w.shape[:3]), o)), transpose_b=True)
    patches = reshape(rows, (n, oh, ow) + tuple(w.shape[:3]))
    full = apply(PATCHES_T, patches, shape=padded, strides=strides, dilations=dilations)
    (top, bottom), (left, right) = pads
    y = full[:, top:padded[1] - bottom, left:padded[2] - right, :]
    return _back(y, data_format)


def _pool(op: str, value, ksize, strides, padding, data_format, fill):
    x = _nhwc(op, value, data_format)
    ksize = _pair(op, "ksize", ksize, data_format)
    strides = _pair(op, "strides", strides, data_format)
    pads = _padding(op, padding, x.shape[1:3], ksize, strides, (1, 1), data_format)
    padded = _padded(x, pads, fill)
    return x, pads, apply(PATCHES, padded, ksize=tuple(ksize), strides=strides,
                          dilations=(1, 1)), ksize, strides


def _tiled(op: str, value, ksize, strides, padding, data_format):
    """For windows that tile the input (strides = ksize, no padding needed): the input
    reshaped to (N, OH, KH, OW, KW, C), a view (no windows copied), else None."""
    x = _nhwc(op, value, data_format)
    ksize = _pair(op, "ksize", ksize, data_format)
    strides = _pair(op, "strides", strides, data_format)
    h, w = x.shape[1:3]
    if ksize != strides or h % ksize[0] or w % ksize[1]:
        return None
    if _padding(op, padding, (h, w), ksize, strides, (1, 1), data_format) != ((0, 0), (0, 0)):
        return None
    n, c = x.shape[0], x.shape[3]
    return reshape(x, (n, h // ksize[0], ksize[0], w // ksize[1], ksize[1], c))


def max_pool2d(input, ksize, strides, padding, data_format="NHWC"):  # noqa: A002
    """The maximum of each window (``tf.nn.max_pool2d``); 'SAME' pads with -inf. Where the
    windows tile the input, the first of tied maxima gets the gradient (as TF's); overlapping
    windows share it between ties.

    >>> import gputape as gt
    >>> x = gt.reshape(gt.range(16.0), (1, 4, 4, 1))
    >>> gt.nn.max_pool2d(x, 2, 2, "VALID").numpy()[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    tiles = _tiled("max_pool2d", input, ksize, strides, padding, data_format)
    if tiles is not None:  # the windows' elements as strided slices, folded by maximum
        from .elementwise import maximum

        kh, kw = tiles.shape[2], tiles.shape[4]
        x = reshape(tiles, (tiles.shape[0], tiles.shape[1] * kh, tiles.shape[3] * kw,
                            tiles.shape[5]))
        found = None
        for i in range(kh):  # (maximum's tie rule: the first of tied maxima gets the gradient)
            for j in range(kw):
                part = x[:, i::kh, j::kw, :]
                found = part if found is None else maximum(found, part)
        return _back(found, data_format)
    _, _, patches, _, _ = _pool("max_pool2d", input, ksize, strides, padding, data_format,
                                -math.inf)
    return _back(reduce_max(patches, axis=(3, 4)), data_format)


def avg_pool2d(input, ksize, strides, padding, data_format="NHWC"):  # noqa: A002
    """The mean of each window (``tf.nn.avg_pool2d``); with 'SAME', of the window's elements
    inside the input only (TF's).

    >>> import gputape as gt
    >>> x = gt.reshape(gt.range(16.0), (1, 4, 4, 1))
    >>> gt.nn.avg_pool2d(x, 2, 2, "VALID").numpy()[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    tiles = _tiled("avg_pool2d", input, ksize, strides, padding, data_format)
    if tiles is not None:
        from .reduction import reduce_mean

        return _back(reduce_mean(tiles, axis=(2, 4)), data_format)
    x, pads, patches, ksize, strides = _pool("avg_pool2d", input, ksize, strides, padding,
                                             data_format, 0.0)
    total = reduce_sum(patches, axis=(3, 4))
    if not any(a or b for a, b in pads):
        return _back(total / float(ksize[0] * ksize[1]), data_format)
    from ..core.tensor import Tensor

    xp = x.device.xp
    inside = xp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
    inside = xp.pad(inside, ((0, 0), pads[0], pads[1], (0, 0)))
    counts = _patches_forward(xp, inside, tuple(ksize), strides, (1, 1)).sum(axis=(3, 4))
    return _back(total / Tensor._wrap(counts), data_format)
