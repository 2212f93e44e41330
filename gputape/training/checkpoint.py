"""Checkpoints: variables and optimizer state in one ``.npz`` file, written atomically.

The file is a plain NumPy archive that loads with ``allow_pickle=False``: one array per variable
(``v0``, ``v1``, ...) and per optimizer slot (``s0``, ...), and ``__gputape__``, a uint8 array of
UTF-8 JSON metadata (format version; each variable's key, name, dtype and shape; the optimizer's
class, iterations, numeric hyperparameters, and which key each slot belongs to). Slots are tied
to variables by checkpoint key, never by the process-local variable id, so training saved in one
process resumes bit for bit in another.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import time
import warnings
import zipfile

import numpy as np

from ..core.device import move
from ..core.errors import ArgumentError, ArgumentTypeError, CheckpointError
from ..core.tensor import Variable

__all__ = ["save", "load", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_FORMAT = "gputape.training.checkpoint"
_META = "__gputape__"


def save(path: "str | os.PathLike", variables, optimizer=None) -> None:
    """Write ``variables`` (and the state of ``optimizer``) to the ``.npz`` file at ``path``.

    Written atomically: to a temporary file in the same folder, flushed and fsynced, then renamed
    onto ``path``, so a failure (``KeyboardInterrupt`` included) leaves any previous checkpoint
    intact and no temporary file behind. ``path`` is used exactly as given: no ``.npz`` suffix is
    appended (ending it in ``.npz`` is recommended). GPU arrays are copied to the host.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its folder must exist.
    variables : dict of {str: Variable}, or list or tuple of Variable
        A dict's keys name the entries; a list's entries are keyed ``"0"``, ``"1"``, ... and
        :func:`load` also checks each variable's ``name``.
    optimizer : gputape.training.optimizers.Optimizer, optional
        Saves its class name, ``iterations``, every slot (each must belong to one of
        ``variables``, else :class:`CheckpointError`) and its plain-number hyperparameters
        (for information; a callable learning rate is not saved).

    Examples
    --------
    >>> import os, tempfile
    >>> import gputape as gt
    >>> w = gt.Variable([1.0, 2.0], name="w")
    >>> opt = gt.optimizers.Adam(learning_rate=0.1)
    >>> _ = opt.apply_gradients([(gt.constant([0.5, 0.5]), w)])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     gt.save(os.path.join(tmp, "model.npz"), {"w": w}, opt)
    ...     sorted(os.listdir(tmp))
    ['model.npz']
    """
    items, _ = _items(variables, "save")
    arrays, entries, key_of = {}, [], {var._uid: key for key, var in items}
    for i, (key, var) in enumerate(items):
        arrays[f"v{i}"] = _host(var._data)
        entries.append({"key": key, "name": var.name, "dtype": str(var.dtype),
                        "shape": list(var.shape), "array": f"v{i}"})
    meta = {"format": _FORMAT, "version": FORMAT_VERSION, "variables": entries, "optimizer": None}
    if optimizer is not None:
        slots = []
        for (uid, slot), value in optimizer._slots.items():
            if uid not in key_of:
                raise CheckpointError(f"gt.save: {type(optimizer).__name__} holds {slot!r} state "
                                      f"for a variable not among `variables`; hint: pass every "
                                      f"variable it updates, or that state would be lost")
            slots.append({"key": key_of[uid], "slot": slot, "array": f"s{len(slots)}"})
            arrays[slots[-1]["array"]] = _host(value)
        meta["optimizer"] = {"class": type(optimizer).__name__,
                             "iterations": int(optimizer.iterations),
                             "hyperparameters": _hyperparameters(optimizer), "slots": slots}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    _write_atomically(os.fspath(path), arrays)


def load(path: "str | os.PathLike", variables, optimizer=None) -> None:
    """Restore a checkpoint written by :func:`save` into existing ``variables`` and ``optimizer``.

    Everything is checked before anything is assigned: on a mismatch, :class:`CheckpointError`
    lists every problem (key, shapes or dtypes found and expected, a hint) and nothing changes.
    Values keep each variable's own device and dtype; slots go on their variable's device and
    ``iterations`` is restored, so training resumes bit for bit. Returns ``None``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save` (read with ``allow_pickle=False``). Anything else, a newer
        format version or an object (pickled) array raises :class:`CheckpointError`.
    variables : dict of {str: Variable}, or list or tuple of Variable
        The keys used at save time (a list: same length, order and names).
    optimizer : gputape.training.optimizers.Optimizer, optional
        Of the saved class; its slots for ``variables`` are replaced and its hyperparameters kept
        (a warning names those that differ from the saved ones). If omitted, saved optimizer state
        is ignored.

    Examples
    --------
    >>> import os, tempfile
    >>> import gputape as gt
    >>> w, opt = gt.Variable([1.0, 2.0]), gt.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    >>> _ = opt.apply_gradients([(gt.constant([1.0, 1.0]), w)])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     gt.save(os.path.join(tmp, "ckpt.npz"), [w], opt)
    ...     w2, opt2 = gt.Variable([0.0, 0.0]), gt.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    ...     gt.load(os.path.join(tmp, "ckpt.npz"), [w2], opt2)
    >>> w2.numpy(), opt2.iterations
    (array([0.9, 1.9], dtype=float32), 1)
    """
    where = f"gt.load({os.fspath(path)!r})"
    items, by_list = _items(variables, "load")
    meta, arrays = _read(os.fspath(path), where)
    saved = {entry["key"]: entry for entry in meta["variables"]}
    given = dict(items)
    problems = [f"variable {key!r} is not in the checkpoint (it holds {sorted(saved)}); hint: "
                f"use the keys it was saved with" for key in given if key not in saved]
    problems += [f"the checkpoint holds variable {key!r} (shape {tuple(e['shape'])}, dtype "
                 f"{e['dtype']}) that was not passed; hint: pass every saved variable"
                 for key, e in saved.items() if key not in given]
    fitting = []  # slots are checked only for variables that fit (one report per mismatch)
    for key, var in items:
        entry = saved.get(key)
        if entry is None:
            continue
        if by_list and entry["name"] != var.name:
            problems.append(f"variable {key!r}: name {entry['name']!r} in the checkpoint, "
                            f"{var.name!r} passed; hint: pass them in the order they were saved")
        found = _fits(f"variable {key!r}", arrays[entry["array"]], var)
        fitting += [key] if not found else []
        problems += found
    state, slots = meta["optimizer"], []
    if optimizer is not None:
        cls = type(optimizer).__name__
        if state is None:
            problems.append("an optimizer was passed but the checkpoint holds no optimizer "
                            "state; hint: load without optimizer=, or save with one")
        elif state["class"] != cls:
            problems.append(f"optimizer: {state['class']} in the checkpoint, {cls} passed; hint: "
                            f"create {_article(state['class'])} {state['class']} as at save "
                            f"time")
        else:
            for ref in state["slots"]:
                if ref["key"] in fitting:
                    var, array = given[ref["key"]], arrays[ref["array"]]
                    what = f"{cls} slot {ref['slot']!r} of variable {ref['key']!r}"
                    problems += _fits(what, array, var)
                    slots.append(((var._uid, ref["slot"]), array, var))
    if problems:
        listed = "\n  - ".join(problems)
        raise CheckpointError(f"{where}: the checkpoint does not fit ({len(problems)} "
                              f"problem(s)); nothing was changed:\n  - {listed}")
    for key, var in items:
        var._set(move(arrays[saved[key]["array"]], var.device))
    if optimizer is not None:
        uids = {var._uid for var in given.values()}
        for slot_key in [k for k in optimizer._slots if k[0] in uids]:
            del optimizer._slots[slot_key]
        for slot_key, array, var in slots:
            optimizer._slots[slot_key] = move(array, var.device)
        optimizer.iterations = int(state["iterations"])
        now = _hyperparameters(optimizer)
        changed = [f"{k}: saved {v}, now {now.get(k)}" for k, v in
                   state["hyperparameters"].items() if now.get(k) != v]
        if changed:
            warnings.warn(f"{where}: {cls} hyperparameters differ from the checkpoint "
                          f"({'; '.join(changed)}); training goes on with the current values",
                          stacklevel=2)


def _items(variables, fn: str) -> "tuple[list, bool]":
    if isinstance(variables, dict):
        items, by_list = list(variables.items()), False
        for key in variables:
            if not isinstance(key, str):
                raise ArgumentTypeError(f"gt.{fn}: variable keys must be strings, got {key!r}")
    elif isinstance(variables, (list, tuple)):
        items, by_list = [(str(i), v) for i, v in enumerate(variables)], True
    else:
        raise ArgumentTypeError(f"gt.{fn}: variables must be a dict {{name: Variable}} or a list "
                                f"of Variables, got {type(variables).__name__}")
    seen: dict = {}
    for key, var in items:
        if not isinstance(var, Variable):
            raise ArgumentTypeError(f"gt.{fn}: variables[{key!r}] is a {type(var).__name__}, "
                                    f"not a gt.Variable; hint: wrap it in gt.Variable(...)")
        if seen.setdefault(var._uid, key) != key:
            raise ArgumentError(f"gt.{fn}: variable {var.name!r} is passed twice (keys "
                                f"{seen[var._uid]!r} and {key!r}); hint: pass it once")
    return items, by_list


def _host(array) -> np.ndarray:
    # NumPy arithmetic on 0-d slots can leave a scalar; CuPy arrays are copied off the GPU.
    return np.asarray(array) if isinstance(array, (np.ndarray, np.generic)) else array.get()


def _hyperparameters(optimizer) -> dict:
    return {k: v.item() if isinstance(v, np.generic) else v
            for k, v in getattr(optimizer, "__dict__", {}).items()
            if not k.startswith("_") and k != "iterations"
            and isinstance(v, (bool, int, float, np.bool_, np.number))}


def _fits(what: str, array: np.ndarray, var: Variable) -> list:
    problems = []
    if array.shape != var.shape:
        problems.append(f"{what}: shape {array.shape} in the checkpoint, {var.shape} expected; "
                        f"hint: build the variables with the shapes they were saved with")
    if array.dtype != var.dtype:
        problems.append(f"{what}: dtype {array.dtype} in the checkpoint, {var.dtype} expected; "
                        f"hint: create the variable with dtype={array.dtype}")
    return problems


# A temporary file whose writer has gone (a process killed mid-save) is removed by the next
# save of the same checkpoint. Its name carries the writer's process id; one without (an older
# name) counts as gone after this many seconds.
_STALE_SECONDS = 3600


def _write_atomically(path: str, arrays: dict) -> None:
    folder, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            errno.ENOENT, f"gt.save: the folder {folder!r} of {path!r} does not exist; hint: "
            f"create it first, e.g. os.makedirs({folder!r}, exist_ok=True)", path)
    _remove_stale_temporaries(folder, base)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 (not mkstemp's 0o600) so the umask decides the final permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)  # a file object: np.savez appends no ".npz"
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable (POSIX; Windows refuses)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _remove_stale_temporaries(folder: str, base: str) -> None:
    """Remove the temporary files of earlier saves of ``base`` whose process is gone."""
    prefix = f".{base}."
    for name in os.listdir(folder):
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid, _, token = name[len(prefix):-len(".tmp")].partition(".")
        full = os.path.join(folder, name)
        if token and pid.isdigit():
            if int(pid) == os.getpid() or _running(int(pid)):
                continue  # a save in progress (in this process: another thread's)
        else:
            with contextlib.suppress(OSError):
                if time.time() - os.path.getmtime(full) < _STALE_SECONDS:
                    continue
        with contextlib.suppress(OSError):
            os.remove(full)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (always True on Windows, where probing
    with signal 0 would end it: there the age rule of older names does not apply either)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def _read(path: str, where: str) -> "tuple[dict, dict]":
    hint = "hint: pass a file written by gt.save"
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{where}: not a gputape checkpoint ({exc}); {hint}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a .npy file: one bare array
        raise CheckpointError(f"{where}: not a gputape checkpoint (not an .npz); {hint}")
    with archive:
        if _META not in archive.files:
            raise CheckpointError(f"{where}: not a gputape checkpoint (no {_META}); {hint}")
        try:
            arrays = {name: archive[name] for name in archive.files}
        except (ValueError, zipfile.BadZipFile) as exc:  # object arrays: refused, not unpickled
            raise CheckpointError(f"{where}: an entry is an object array (pickled data), which "
                                  f"gputape never unpickles, or is unreadable ({exc}); {hint}"
                                  ) from None
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode())
        known = meta.get("format") == _FORMAT and isinstance(meta.get("version"), int)
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        known = False
    if not known:
        raise CheckpointError(f"{where}: not a gputape checkpoint (bad metadata); {hint}")
    if meta["version"] > FORMAT_VERSION:
        raise CheckpointError(f"{where}: checkpoint format version {meta['version']} is newer "
                              f"than this gputape reads (<= {FORMAT_VERSION}); hint: upgrade it")
    try:
        keys, state = {entry["key"] for entry in meta["variables"]}, meta["optimizer"]
        refs = meta["variables"] + (state["slots"] if state else [])
        damaged = any(ref["array"] not in arrays or ref["key"] not in keys for ref in refs) or any(
            {"name", "dtype", "shape"} - e.keys() for e in meta["variables"]
        ) or bool(state and {"class", "iterations", "hyperparameters"} - state.keys())
    except (KeyError, TypeError, AttributeError):
        damaged = True
    if damaged:
        raise CheckpointError(f"{where}: damaged checkpoint (an entry without its array, key or "
                              f"variable); hint: save it again")
    return meta, arrays


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
