"""The CuPy stand-ins of the tests against the installed CuPy's Python layer (``gpu-check``
extra; it imports without a GPU): where a stand-in and CuPy disagree, a GPU bug hides.

Skipped, with the reason, where CuPy is not installed.
"""

from __future__ import annotations

import fake_cupy
import numpy as np
import pytest
from array_stand_in import CUPY, FakeArray

pytestmark = pytest.mark.skipif(CUPY is None, reason="CuPy is not installed (pip install -e "
                                "'.[gpu-check]' brings its Python layer, no GPU needed)")


def _flags_of_cupy() -> set:
    from cupy._core import flags

    return {name for name in dir(flags.Flags) if not name.startswith("_")}


def test_the_stand_ins_are_of_the_installed_cupy_major_version():
    major = CUPY.__version__.split(".")[0]
    assert fake_cupy.build().__version__.split(".")[0] == major


def test_flags_are_cupys():
    real = _flags_of_cupy()
    assert "writeable" not in real  # what the stand-ins must not offer either
    fake = fake_cupy.build(devices=1)
    for flags in (fake.on(np.ones(3), 0).flags, FakeArray(np.ones(3)).flags):
        offered = {name for name in vars(flags) if not name.startswith("_")}
        assert offered <= real and {"c_contiguous", "f_contiguous"} <= offered, offered


def test_dlpack_export_takes_the_keywords_the_stand_in_takes():
    doc = CUPY.ndarray.__dlpack__.__doc__ or ""
    for keyword in ("stream", "max_version", "dl_device", "copy"):
        assert keyword in doc, doc


def test_implicit_conversion_to_numpy_is_refused_by_both():
    fake = fake_cupy.build(devices=1)
    for array in (fake.on(np.ones(3), 0), FakeArray(np.ones(3))):
        with pytest.raises(TypeError):
            np.asarray(array)
        assert not hasattr(array, "__array_interface__")
    assert not hasattr(CUPY.ndarray, "__array_interface__")
