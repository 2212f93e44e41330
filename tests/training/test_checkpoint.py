"""Checkpoints (gt.save / gt.load): round trips, bit-identical resumed training, validation that
changes nothing on a mismatch, no pickle ever, and atomic writes."""

from __future__ import annotations

import json
import os
import pickle
import warnings

import numpy as np
import pytest
from helpers import host

import gputape as gt
from gputape.core.device import device_of
from gputape.training import checkpoint

OPTIMIZERS = {
    "sgd-momentum": lambda: gt.optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "sgd-nesterov": lambda: gt.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: gt.optimizers.Adam(learning_rate=0.01),
}
CHECKPOINT_ERROR = (gt.CheckpointError, ValueError, gt.GputapeError)


def _model(dtype, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "w": gt.Variable(rng.standard_normal((3, 2)).astype(dtype), name="w"),
        "b": gt.Variable(rng.standard_normal(2).astype(dtype), name="b"),
        "s": gt.Variable(np.array(0.5, dtype), name="s"),  # 0-d: its slots are NumPy scalars
    }


def _train(model: dict, opt, steps: int) -> None:
    rng = np.random.default_rng(1)
    dtype = model["w"].dtype
    x = gt.constant(rng.standard_normal((4, 3)).astype(dtype))
    y = gt.constant(rng.standard_normal((4, 2)).astype(dtype))
    params = list(model.values())
    for _ in range(steps):
        with gt.GradientTape() as tape:
            pred = gt.matmul(x, model["w"]) * model["s"] + model["b"]
            loss = gt.reduce_sum((pred - y) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, params), params))


def _state(variables, opt=None) -> tuple:
    """A host snapshot of every value and optimizer slot, to compare before/after."""
    values = variables.values() if isinstance(variables, dict) else variables
    slots = {} if opt is None else {k: np.array(host(v)) for k, v in opt._slots.items()}
    return [host(v) for v in values], slots, None if opt is None else opt.iterations


def _same(a: tuple, b: tuple) -> bool:
    return (
        all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a[0], b[0]))
        and a[1].keys() == b[1].keys()
        and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
        and a[2] == b[2]
    )


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64", "uint8",
                                   "bool", "complex64"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4), (0, 2)])
def test_round_trip_values_dtypes_shapes(device, tmp_path, dtype, shape):
    counts = np.arange(int(np.prod(shape))).reshape(shape)
    saved = [gt.Variable((counts + i) % 3 != 0 if dtype == "bool" else (counts + i) % 3,
                         name=n, dtype=dtype) for i, n in enumerate("ab")]
    gt.save(tmp_path / "ckpt.npz", saved)
    restored = [gt.Variable(np.zeros(shape, dtype), name=n) for n in "ab"]
    assert gt.load(tmp_path / "ckpt.npz", restored) is None
    for want, got in zip(saved, restored):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.device == device and isinstance(got._data, type(want._data))
        np.testing.assert_array_equal(host(got), host(want))


def test_file_is_plain_numbers_loadable_without_pickle(tmp_path):
    model = _model("float32")
    opt = gt.optimizers.Adam(learning_rate=0.01)
    _train(model, opt, 2)
    gt.save(tmp_path / "ckpt.npz", model, opt)
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    assert all(a.dtype != object for a in arrays.values())
    meta = json.loads(arrays["__gputape__"].tobytes())
    assert meta["version"] == checkpoint.FORMAT_VERSION
    assert [e["key"] for e in meta["variables"]] == ["w", "b", "s"]
    assert meta["optimizer"]["class"] == "Adam" and meta["optimizer"]["iterations"] == 2
    assert meta["optimizer"]["hyperparameters"]["beta_1"] == 0.9
    assert {(s["key"], s["slot"]) for s in meta["optimizer"]["slots"]} == {
        (k, n) for k in "wbs" for n in "mv"
    }


def test_pathlike_and_suffix_used_as_given(tmp_path):
    v = gt.Variable([1.0, 2.0], name="v")
    gt.save(tmp_path / "model.ckpt", {"v": v})
    gt.save(str(tmp_path / "model.npz"), {"v": v})
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt", "model.npz"]
    w = gt.Variable([0.0, 0.0])
    gt.load(tmp_path / "model.ckpt", {"v": w})
    np.testing.assert_array_equal(host(w), [1.0, 2.0])


# -- resumed training is bit-identical --------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make_opt", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_resume_is_bit_identical(device, tmp_path, dtype, make_opt):
    model, opt = _model(dtype), make_opt()
    _train(model, opt, 5)
    gt.save(tmp_path / "ckpt.npz", model, opt)
    _train(model, opt, 5)

    fresh, fresh_opt = _model(dtype, seed=7), make_opt()
    gt.load(tmp_path / "ckpt.npz", fresh, fresh_opt)
    assert fresh_opt.iterations == 5
    for (uid, slot), array in fresh_opt._slots.items():
        owner = next(v for v in fresh.values() if v._uid == uid)
        assert device_of(array) == owner.device and array.dtype == owner.dtype, slot
    _train(fresh, fresh_opt, 5)
    for key in model:
        assert fresh[key].dtype == model[key].dtype and fresh[key].device == device
        assert np.array_equal(host(fresh[key]), host(model[key])), key


def test_load_without_optimizer_ignores_its_state(tmp_path):
    model, opt = _model("float32"), gt.optimizers.Adam()
    _train(model, opt, 2)
    gt.save(tmp_path / "ckpt.npz", model, opt)
    fresh = _model("float32", seed=3)
    gt.load(tmp_path / "ckpt.npz", fresh)
    assert all(np.array_equal(host(fresh[k]), host(model[k])) for k in model)


def test_changed_hyperparameters_warn(tmp_path):
    model, opt = _model("float32"), gt.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    _train(model, opt, 2)
    gt.save(tmp_path / "ckpt.npz", model, opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gt.load(tmp_path / "ckpt.npz", _model("float32"), gt.optimizers.SGD(0.1, momentum=0.9))
    with pytest.warns(UserWarning, match=r"learning_rate: saved 0\.1, now 0\.01"):
        gt.load(tmp_path / "ckpt.npz", _model("float32"), gt.optimizers.SGD(0.01, momentum=0.9))


# -- mismatches raise and change nothing ------------------------------------------------------
def _vars(**specs) -> dict:
    return {k: gt.Variable(np.full(shape, 2, dtype), name=k) for k, (shape, dtype) in specs.items()}


MISMATCHES = [
    # (id, as a list?, target variables, target optimizer, substrings of the message)
    ("name", True, _vars(w=((3, 2), "float32"), bias=((2,), "float32")), "adam",
     ["'1'", "'b'", "'bias'", "order"]),
    ("shape", False, _vars(w=((2, 3), "float32"), b=((2,), "float32")), "adam",
     ["'w'", "(3, 2)", "(2, 3)"]),
    ("dtype", False, _vars(w=((3, 2), "float64"), b=((2,), "float32")), "adam",
     ["'w'", "float32", "float64"]),
    ("missing-key", False, _vars(w=((3, 2), "float32"), b=((2,), "float32"),
                                 c=((1,), "float32")), "adam",
     ["'c'", "not in the checkpoint", "['b', 'w']"]),
    ("extra-key", False, _vars(w=((3, 2), "float32")), "adam",
     ["'b'", "(2,)", "float32", "not passed"]),
    ("optimizer-class", False, _vars(w=((3, 2), "float32"), b=((2,), "float32")), "sgd",
     ["Adam", "SGD", "create an Adam"]),
    ("no-optimizer-state", False, _vars(w=((3, 2), "float32"), b=((2,), "float32")), "none",
     ["no optimizer state"]),
]


@pytest.mark.parametrize("case", MISMATCHES, ids=[c[0] for c in MISMATCHES])
def test_mismatch_raises_and_changes_nothing(device, tmp_path, case):
    name, as_list, specs, opt_kind, needles = case
    src = _vars(w=((3, 2), "float32"), b=((2,), "float32"))
    src_opt = gt.optimizers.Adam(learning_rate=0.1)
    src_opt.apply_gradients([(gt.ones_like(v), v) for v in src.values()])
    path = tmp_path / "ckpt.npz"
    gt.save(path, list(src.values()) if as_list else src, None if opt_kind == "none" else src_opt)

    target = {k: gt.Variable(np.array(v.numpy()), name=v.name) for k, v in specs.items()}
    opt = gt.optimizers.SGD(0.1, momentum=0.9) if opt_kind == "sgd" else gt.optimizers.Adam(0.1)
    opt.apply_gradients([(gt.ones_like(v) * 3, v) for v in target.values()])
    variables = list(target.values()) if as_list else target
    before = _state(variables, opt)
    with pytest.raises(CHECKPOINT_ERROR) as info:
        gt.load(path, variables, opt)
    message = str(info.value)
    for needle in [*needles, "hint", "nothing was changed"]:
        assert needle in message, (needle, message)
    assert _same(before, _state(variables, opt))


def test_all_problems_are_listed(tmp_path):
    gt.save(tmp_path / "c.npz", _vars(w=((3,), "float32"), b=((2,), "int32")))
    with pytest.raises(gt.CheckpointError, match="2 problem") as info:
        gt.load(tmp_path / "c.npz", _vars(w=((4,), "float32"), b=((2,), "int64")))
    assert "(3,)" in str(info.value) and "int64" in str(info.value)


# -- files that are not (current) gputape checkpoints -----------------------------------------
_UNPICKLED: list = []


def _record(tag):
    _UNPICKLED.append(tag)
    return tag


class _Trap:
    """Unpickling it leaves a trace: proof that load never unpickles."""

    def __reduce__(self):
        return _record, ("unpickled",)


def _meta(version: int = 1, array: str = "v0") -> np.ndarray:
    meta = {"format": "gputape.training.checkpoint", "version": version, "optimizer": None,
            "variables": [{"key": "0", "name": "v", "dtype": "float32", "shape": [1],
                           "array": array}]}
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


def _write(path, kind: str) -> None:
    one = np.ones(1, np.float32)
    with open(path, "wb") as file:
        if kind == "text":
            file.write(b"hello")
        elif kind == "pickle":
            file.write(pickle.dumps(_Trap()))
        elif kind == "npy":
            np.save(file, np.ones(3))
        elif kind == "npz-no-meta":
            np.savez(file, v0=one)
        elif kind == "object-array":
            np.savez(file, __gputape__=_meta(), v0=np.array([_Trap()], dtype=object))
        elif kind == "newer-version":
            np.savez(file, __gputape__=_meta(version=99), v0=one)
        elif kind == "damaged":
            np.savez(file, __gputape__=_meta(array="v9"), v0=one)


@pytest.mark.parametrize("kind, needle", [
    ("text", "not a gputape checkpoint"), ("pickle", "not a gputape checkpoint"),
    ("npy", "not a gputape checkpoint"), ("npz-no-meta", "not a gputape checkpoint"),
    ("object-array", "object array.*never unpickles"), ("newer-version", "version 99 is newer"),
    ("damaged", "damaged"),
])
def test_foreign_files_are_refused_without_unpickling(tmp_path, kind, needle):
    path = tmp_path / "ckpt.npz"
    _write(path, kind)
    v = gt.Variable([3.0], name="v")
    with pytest.raises(CHECKPOINT_ERROR, match=needle) as info:
        gt.load(path, [v])
    assert "hint" in str(info.value) and str(path) in str(info.value)
    assert _UNPICKLED == [] and host(v).tolist() == [3.0]


# -- atomic writes ----------------------------------------------------------------------------
def _fail_after_writing(real):
    def savez(file, **arrays):
        real(file, **arrays)
        raise KeyboardInterrupt

    return savez


@pytest.mark.parametrize("where", ["savez-before", "savez-after", "replace"])
def test_interrupted_save_keeps_previous_checkpoint(monkeypatch, tmp_path, where):
    path = tmp_path / "ckpt.npz"
    gt.save(path, {"v": gt.Variable([1.0, 2.0])})
    if where == "replace":
        monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    elif where == "savez-after":
        monkeypatch.setattr(np, "savez", _fail_after_writing(np.savez))
    else:
        monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises((OSError, KeyboardInterrupt)):
        gt.save(path, {"v": gt.Variable([7.0, 8.0])})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    v = gt.Variable([0.0, 0.0])
    gt.load(path, {"v": v})
    np.testing.assert_array_equal(host(v), [1.0, 2.0])


# -- save-side argument errors ----------------------------------------------------------------
def test_save_argument_errors(tmp_path):
    path, v = tmp_path / "c.npz", gt.Variable([1.0])
    with pytest.raises(gt.ArgumentTypeError, match="dict"):
        gt.save(path, v)
    with pytest.raises(gt.ArgumentTypeError, match="not a gt.Variable"):
        gt.save(path, {"v": gt.constant([1.0])})
    with pytest.raises(gt.ArgumentTypeError, match="strings"):
        gt.save(path, {1: v})
    with pytest.raises(gt.ArgumentError, match="twice"):
        gt.save(path, [v, v])
    opt = gt.optimizers.Adam()
    opt.apply_gradients([(gt.constant([1.0]), gt.Variable([2.0]))])
    with pytest.raises(gt.CheckpointError, match="not among `variables`"):
        gt.save(path, [v], opt)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_save_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(FileNotFoundError) as info:
        gt.save(path, _model("float32"))
    message = str(info.value)
    assert str(path) in message and "does not exist" in message and "hint" in message
    assert ".tmp" not in message  # not the temporary file's name


_KILLED_SAVE = """
import os, sys, time
import numpy as np
import gputape as gt
from gputape.training import checkpoint

def slow_savez(file, **arrays):  # writes part of the archive, then hangs: killed mid-save
    file.write(b"PK" + bytes(1 << 20))
    file.flush()
    print("writing", flush=True)
    time.sleep(600)

checkpoint.np.savez = slow_savez  # NumPy's own, in this child process only
gt.save(sys.argv[1], {"w": gt.Variable(np.ones(3, np.float32))})
"""


def test_a_save_killed_midway_leaves_its_temporary_file_to_the_next_save(tmp_path):
    """SIGKILL leaves the previous checkpoint intact and a partial ``.NAME.*.tmp`` behind; the
    next save of the same path removes it (and only the temporaries of dead writers)."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "model.npz"
    gt.save(path, _model("float32"))
    before = path.read_bytes()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root, "GPUTAPE_DEVICE": "cpu"}
    for _ in range(2):
        child = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(path)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "writing"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
            child.stdout.close()
    # the second killed save removed the first's orphan when it started; its own is left
    orphans = sorted(p.name for p in tmp_path.glob(".model.npz.*.tmp"))
    assert len(orphans) == 1 and path.read_bytes() == before
    alive = tmp_path / f".model.npz.{os.getpid()}.0123456789ab.tmp"  # a save in progress here
    alive.write_bytes(b"partial")
    other = tmp_path / ".other.npz.1.0123456789ab.tmp"  # another checkpoint's
    other.write_bytes(b"partial")
    gt.save(path, _model("float32", seed=1))
    left = sorted(p.name for p in tmp_path.glob(".*.tmp"))
    assert left == sorted([alive.name, other.name]), left
    w = gt.Variable(np.zeros((3, 2), np.float32))
    gt.load(path, {"w": w, "b": gt.Variable(np.zeros(2, np.float32)),
                   "s": gt.Variable(np.float32(0))})
    np.testing.assert_array_equal(w.numpy(), _model("float32", seed=1)["w"].numpy())
