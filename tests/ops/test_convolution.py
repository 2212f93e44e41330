"""Convolutions and pooling against a direct loop over the windows (written here from the
definitions, not from the library), TF's padding rules, layouts and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gputape as gt


def _same_pads(n, k, s, d):
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _conv_by_loop(x, w, stride, padding, dilation=1):
    """TF's conv2d (NHWC), one output element at a time."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    if padding == "SAME":
        (t, b), (le, r) = _same_pads(h, kh, stride, dilation), _same_pads(wd, kw, stride,
                                                                          dilation)
        x = np.pad(x, [(0, 0), (t, b), (le, r), (0, 0)])
    oh = (x.shape[1] - (kh - 1) * dilation - 1) // stride + 1
    ow = (x.shape[2] - (kw - 1) * dilation - 1) // stride + 1
    out = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride: i * stride + (kh - 1) * dilation + 1: dilation,
                       j * stride: j * stride + (kw - 1) * dilation + 1: dilation, :]
            out[:, i, j, :] = np.tensordot(window, w, axes=3)
    return out


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", [
    ((2, 5, 6, 3), (3, 3, 3, 4), 1, "VALID", 1),
    ((1, 7, 7, 2), (3, 2, 2, 3), 2, "SAME", 1),
    ((2, 6, 5, 1), (2, 3, 1, 2), 1, "SAME", 2),
    ((1, 8, 8, 1), (5, 5, 1, 1), 3, "SAME", 1),
])
def test_conv2d_matches_the_definition(device, shape, kernel, stride, padding, dilation):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(shape), rng.standard_normal(kernel)
    found = gt.nn.conv2d(gt.constant(x), gt.constant(w), stride, padding, dilations=dilation)
    np.testing.assert_allclose(found.numpy(), _conv_by_loop(x, w, stride, padding, dilation),
                               rtol=1e-10, atol=1e-12)


def test_nchw_is_the_transposed_nhwc(device):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 2))
    nhwc = gt.nn.conv2d(x, w, [1, 2, 2, 1], "SAME").numpy()
    nchw = gt.nn.conv2d(np.transpose(x, (0, 3, 1, 2)), w, [1, 1, 2, 2], "SAME",
                        data_format="NCHW").numpy()
    np.testing.assert_allclose(np.transpose(nchw, (0, 2, 3, 1)), nhwc, rtol=1e-12)


def test_conv2d_transpose_is_the_gradient_of_conv2d(device):
    """<conv2d(x, w), y> = <x, conv2d_transpose(y, w)>: the two are adjoint."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 7, 7, 2)), rng.standard_normal((3, 3, 2, 3))
    y = rng.standard_normal((1, 4, 4, 3))
    forward = np.sum(gt.nn.conv2d(x, w, 2, "SAME").numpy() * y)
    back = np.sum(x * gt.nn.conv2d_transpose(y, w, (1, 7, 7, 2), 2, "SAME").numpy())
    assert forward == pytest.approx(back, rel=1e-10)


def test_conv1d_is_conv2d_of_height_one(device):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 9, 2)), rng.standard_normal((3, 2, 4))
    found = gt.nn.conv1d(x, w, stride=2, padding="SAME").numpy()
    wanted = _conv_by_loop(x[:, None], w[None], 2, "SAME")[:, 0]
    np.testing.assert_allclose(found, wanted, rtol=1e-10)


def test_pools_as_tf():
    """max: the window's maximum ('SAME' pads with -inf); avg: 'SAME' averages the window's
    elements inside the input only (TF's)."""
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    found = gt.nn.max_pool2d(x, 2, 2, "SAME").numpy()[0, :, :, 0]
    assert found.tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    avg = gt.nn.avg_pool2d(x, 2, 2, "SAME").numpy()[0, :, :, 0]
    assert avg.tolist() == [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]]


def test_gradients_of_a_small_cnn(device):
    """conv -> relu -> max pool -> dense: gradients w.r.t. the filters and the input against
    finite differences."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 6, 1))
    w, dense = rng.standard_normal((3, 3, 1, 2)), rng.standard_normal((8, 1))

    def net(x, w):
        h = gt.nn.max_pool2d(gt.nn.relu(gt.nn.conv2d(x, w, 1, "VALID") + 0.1), 2, 2, "VALID")
        return gt.matmul(gt.reshape(h, (2, 8)), dense)

    gt.testing.check_gradients(net, x, w, order=1, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("call, words", [
    (lambda: gt.nn.conv2d(gt.ones((4, 4, 1)), gt.ones((3, 3, 1, 1)), 1, "VALID"),
     ["conv2d", "4-d", "hint"]),
    (lambda: gt.nn.conv2d(gt.ones((1, 4, 4, 2)), gt.ones((3, 3, 1, 1)), 1, "VALID"),
     ["in_channels = 2"]),
    (lambda: gt.nn.conv2d(gt.ones((1, 2, 2, 1)), gt.ones((3, 3, 1, 1)), 1, "VALID"),
     ["does not fit", "hint"]),
    (lambda: gt.nn.conv2d(gt.ones((1, 4, 4, 1)), gt.ones((3, 3, 1, 1)), 1, "FULL"),
     ["'SAME', 'VALID'"]),
    (lambda: gt.nn.max_pool2d(gt.ones((1, 4, 4, 1)), 2, 0, "VALID"), ["strides"]),
])
def test_bad_arguments_are_refused(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for word in words:
        assert word in str(info.value), str(info.value)


def test_the_product_runs_through_blas(monkeypatch):
    """conv2d is one matrix product of the gathered windows by the filters (im2col), not a
    loop over the output."""
    calls = []
    real = gt.matmul

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    import gputape.ops.convolution as convolution

    monkeypatch.setattr(convolution, "matmul", counting)
    gt.nn.conv2d(gt.ones((8, 28, 28, 1)), gt.ones((3, 3, 1, 16)), 1, "SAME")
    assert calls == [(8 * 28 * 28, 9)] and math.prod(calls[0]) == 8 * 28 * 28 * 9


# -- cases found comparing with TensorFlow 2.21 side by side ----------------------------------


def test_explicit_four_pairs_follow_the_data_format():
    """TF's [[0, 0], [0, 0], [top, bottom], [left, right]] in NCHW pads height and width (it
    was read in NHWC order)."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((3, 3, 3, 4))
    nhwc = gt.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 1], [0, 0]]).numpy()
    nchw = gt.nn.conv2d(np.transpose(x, (0, 3, 1, 2)), w, 1, [[0, 0], [0, 0], [1, 2], [0, 1]],
                        data_format="NCHW").numpy()
    assert nhwc.shape == (2, 8, 5, 4)
    np.testing.assert_allclose(np.transpose(nchw, (0, 2, 3, 1)), nhwc, rtol=1e-12)


def test_conv1d_takes_tfs_lists_for_stride_and_dilations():
    """TF 2.21: dilations=[1, 2, 1] dilates (it was read as the batch entry); stride=[2]
    works in NWC."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 9, 2)), rng.standard_normal((3, 2, 2))
    listed = gt.nn.conv1d(x, w, stride=1, padding="VALID", dilations=[1, 2, 1]).numpy()
    plain = gt.nn.conv1d(x, w, stride=1, padding="VALID", dilations=2).numpy()
    assert listed.shape == (2, 5, 2) and np.array_equal(listed, plain)
    assert gt.nn.conv1d(gt.ones((1, 5, 2)), gt.ones((1, 2, 2)), stride=[2],
                        padding="SAME").shape == (1, 3, 2)
