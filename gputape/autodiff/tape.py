"""GradientTape: records ops in its ``with`` block and differentiates them, with TensorFlow 2's
semantics (see the project's SEMANTICS contract)."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

import numpy as np

from ..core import nest
from ..core.errors import ShapeError, TapeError, TapeTypeError, TapeValueError
from ..core.state import recording
from ..core.tensor import FilledTensor, Tensor, Variable, _ids
from . import backward
from . import jacobian as jacobians
from .explain import Evidence, warn_unconnected
from .sources import (
    LIVE_TAPES,
    UnconnectedGradients,
    as_tensors,
    finish,
    reachable,
    unconnected_mode,
)

__all__ = ["GradientTape", "UnconnectedGradients"]


class GradientTape:
    """Record operations in a ``with`` block, then compute gradients of a target w.r.t. sources.

    Trainable Variables read in the block are watched automatically; other tensors need
    ``tape.watch(x)``. A non-persistent tape answers one ``gradient``/``jacobian`` call and then
    releases what it recorded.

    Examples
    --------
    >>> import gputape as gt
    >>> x = gt.constant(3.0, device="cpu")
    >>> with gt.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x * x
    >>> tape.gradient(y, x)
    <gt.Tensor shape=() dtype=float32 device=cpu numpy=6.0>
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self._persistent = bool(persistent)
        self._watch_accessed_variables = bool(watch_accessed_variables)
        self._entries: list = []
        self._watched: set = set()  # the ids the tape follows: watched, and results from them
        self._roots: set = set()  # the float ids it was told (or chose) to watch
        self._host_rules = True  # every entry's rules may run on host arrays (dispatch.record)
        self._variables: dict = {}
        self._recording = False
        self._consumed = False
        self._warned_in_context = False
        self._owner: "int | None" = None  # the thread that entered the tape
        # What explain=True reads (ids only, no arrays): results no gradient flows through
        # and what follows them, values that left gputape, and when the tape recorded.
        self._blocked: list = []
        self._shadow: set = set()
        self._escapes: dict = {}
        self._spans: list = []  # [start id, stop id] of each recording stretch
        self._pauses: list = []  # (stop id, start id) around each stop_recording block
        self._watch_ids: dict = {}  # source id -> the id counter when watch() was called
        LIVE_TAPES.add(self)

    # -- recording ------------------------------------------------------------------------
    def __enter__(self) -> "GradientTape":
        if self._owner is None:
            self._owner = threading.get_ident()
        self._check_thread("__enter__")
        if self._recording:
            raise TapeValueError(
                "GradientTape: this tape is already recording; re-entering it is not allowed; "
                "hint: use a new GradientTape for a nested block"
            )
        self._start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._recording:
            self._stop()

    def _start(self) -> None:
        recording.tapes.append(self)
        self._recording = True
        self._spans.append([next(_ids), None])

    def _stop(self) -> None:
        tapes = recording.tapes
        for i in range(len(tapes) - 1, -1, -1):
            if tapes[i] is self:
                del tapes[i]
                break
        self._recording = False
        self._spans[-1][1] = next(_ids)

    def _check_thread(self, method: str) -> None:
        if self._owner is not None and self._owner != threading.get_ident():
            raise TapeError(
                f"GradientTape.{method}: this tape belongs to thread {self._owner} (which "
                f"entered it) but was used from thread {threading.get_ident()}; tapes record "
                f"only the ops of their own thread; hint: create one GradientTape per thread"
            )

    def watch(self, tensor) -> None:
        """Watch a tensor, a Variable, or any nest (list/tuple/dict) of them.

        Examples
        --------
        >>> import gputape as gt
        >>> x = gt.constant(2.0, device="cpu")
        >>> with gt.GradientTape() as tape:
        ...     tape.watch([x])
        ...     y = x ** 3
        >>> float(tape.gradient(y, x))
        12.0
        """
        self._check_thread("watch")
        for item in nest.flatten(tensor):
            if not isinstance(item, Tensor):
                raise TapeValueError(
                    f"GradientTape.watch: can only watch gt.Tensor or gt.Variable objects, got "
                    f"{type(item).__name__} ({item!r:.60}); hint: wrap values with gt.constant(...)"
                    f" first and use that tensor in the computation"
                )
            if item.dtype.kind not in "fc":
                warnings.warn(
                    f"GradientTape.watch: the dtype of the watched tensor must be floating (e.g. "
                    f"gt.float32), got {item.dtype}; its gradient will be None",
                    stacklevel=2,
                )
            self._watch_one(item)
            self._watch_ids.setdefault(item._uid, next(_ids))

    def _watch_one(self, tensor: Tensor) -> None:
        # Only float ids: an op is recorded when one of its inputs' ids is watched, and TF
        # never records through an integer tensor, watched or not.
        if tensor.dtype.kind in "fc":
            self._watched.add(tensor._uid)
            self._roots.add(tensor._uid)
        if isinstance(tensor, Variable) and tensor._uid not in self._variables:
            self._variables[tensor._uid] = tensor

    def watched_variables(self) -> tuple:
        """The Variables watched so far, in the order the Variables were created (as TF)."""
        return tuple(sorted(self._variables.values(), key=lambda v: v._uid))

    @contextlib.contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Context manager: ops inside are not recorded on this tape.

        Examples
        --------
        >>> import gputape as gt
        >>> x = gt.constant(2.0, device="cpu")
        >>> with gt.GradientTape() as tape:
        ...     tape.watch(x)
        ...     with tape.stop_recording():
        ...         y = x * x
        >>> print(tape.gradient(y, x))
        None
        """
        self._check_thread("stop_recording")
        if not self._recording:
            raise TapeError(
                "GradientTape.stop_recording: the tape is not recording; hint: call it inside "
                "the tape's `with` block"
            )
        self._stop()
        try:
            yield
        finally:
            self._start()
            self._pauses.append((self._spans[-2][1], self._spans[-1][0]))

    def reset(self) -> None:
        """Drop everything recorded so far; recording goes on. Only while the tape records:
        inside its ``with`` block and outside ``stop_recording()`` (TF raises there too)."""
        self._check_thread("reset")
        if not self._recording:
            raise TapeValueError(
                "GradientTape.reset: Tape is not recording (outside the tape's `with` block, "
                "or inside stop_recording()); hint: call reset() inside the `with` block, or "
                "make a new GradientTape"
            )
        self._forget()
        self._variables = {}
        self._consumed = False
        self._spans = [[next(_ids), None]] if self._recording else []
        self._pauses = []

    def _forget(self) -> None:
        self._entries = []
        self._watched = set()
        self._roots = set()
        self._host_rules = True
        self._blocked = []
        self._shadow = set()
        self._escapes = {}
        self._watch_ids = {}

    # -- differentiation ------------------------------------------------------------------
    def gradient(self, target, sources, output_gradients=None,
                 unconnected_gradients=UnconnectedGradients.NONE, explain: bool = False):
        """Gradient of ``target`` (summed if a list/nest) w.r.t. every tensor in ``sources``.

        Returns the structure of ``sources`` with a gradient (or ``None`` for an unconnected
        source) in place of each tensor. ``output_gradients`` (one per flattened target) weight
        each target's seed. With ``explain=True``, each unconnected source also gets a
        :class:`gputape.UnconnectedGradientWarning` saying why, in one sentence.

        Examples
        --------
        >>> import gputape as gt
        >>> w = gt.Variable(5.0, device="cpu")
        >>> with gt.GradientTape() as tape:
        ...     z = [3 * w, w ** 2]
        >>> float(tape.gradient(z, w))
        13.0
        """
        self._begin("gradient")
        if target is None:
            raise TapeTypeError(
                "gradient: argument `target` should be a tensor or a nest of tensors to be "
                "differentiated, but received None; hint: pass the tensor computed inside the "
                "tape's block (e.g. the loss)"
            )
        mode = unconnected_mode(unconnected_gradients, "gradient")
        targets = as_tensors(nest.flatten(target), "gradient", "target")
        originals = nest.flatten(sources)
        flat_sources = as_tensors(originals, "gradient", "sources")
        seeds = list(zip(targets, _seeds(targets, output_gradients)))
        wanted = reachable(originals, self._watched, {t._uid for t in targets})
        evidence = Evidence(self) if explain else None
        # When every watched tensor is a source, nothing needs pruning (see backward.walk).
        followed = self._watched if self._roots <= wanted else None
        if self._persistent:
            found = backward.walk(self._entries, seeds, wanted, followed=followed,
                                  host_rules=self._host_rules)
        else:
            # As TensorFlow, a non-persistent tape is spent as soon as the walk starts; the
            # walk frees what the forward pass saved as it goes.
            entries, host_rules = self._entries, self._host_rules
            self._end()
            found = backward.walk(entries, seeds, wanted, consume=True, followed=followed,
                                  host_rules=host_rules)
        grads = [finish(found.get(s._uid) if s.dtype.kind in "fc" else None, mode, s.shape, s)
                 for s in flat_sources]
        if evidence is not None:
            warn_unconnected(evidence, targets, originals, found)
        return nest.pack_as(sources, grads)

    def jacobian(self, target, sources, unconnected_gradients=UnconnectedGradients.NONE,
                 parallel_iterations=None, experimental_use_pfor=True):
        """Full Jacobian of ``target`` w.r.t. each source: shape ``target.shape + source.shape``.

        Computed in batched backward passes where the recorded rules allow it:
        ``parallel_iterations`` rows of the Jacobian per pass, or by default as many as fit the
        memory budget (the ``GPUTAPE_JACOBIAN_BYTES`` environment variable, 256 MiB unless set),
        all of them where the budget allows.

        Examples
        --------
        >>> import gputape as gt
        >>> x = gt.constant([1.0, 2.0], device="cpu")
        >>> with gt.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x ** 2
        >>> tape.jacobian(y, x).numpy()
        array([[2., 0.],
               [0., 4.]], dtype=float32)
        """
        self._require_persistent_without_pfor("jacobian", experimental_use_pfor)
        self._begin("jacobian")
        mode = unconnected_mode(unconnected_gradients, "jacobian")
        result = jacobians.jacobian(self._entries, self._watched, target, sources, mode,
                                    vectorize=experimental_use_pfor,
                                    parallel_iterations=parallel_iterations)
        self._end()
        return result

    def batch_jacobian(self, target, source, unconnected_gradients=UnconnectedGradients.NONE,
                       parallel_iterations=None, experimental_use_pfor=True):
        """Per-example Jacobian: ``target[b]`` w.r.t. ``source[b]`` for a shared batch dimension.

        Returns shape ``(batch,) + target.shape[1:] + source.shape[1:]``; the rows go through
        the walk in chunks as in :meth:`jacobian` (``parallel_iterations``, the budget).

        Examples
        --------
        >>> import gputape as gt
        >>> x = gt.constant([[1.0, 2.0], [3.0, 4.0]], device="cpu")
        >>> with gt.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * x
        >>> tape.batch_jacobian(y, x).shape
        (2, 2, 2)
        """
        self._require_persistent_without_pfor("batch_jacobian", experimental_use_pfor)
        self._begin("batch_jacobian")
        mode = unconnected_mode(unconnected_gradients, "batch_jacobian")
        result = jacobians.batch_jacobian(self._entries, self._watched, target, source, mode,
                                          vectorize=experimental_use_pfor,
                                          parallel_iterations=parallel_iterations)
        self._end()
        return result

    def _require_persistent_without_pfor(self, method: str, use_pfor) -> None:
        if not use_pfor and not self._persistent:  # TF: the rows need one walk each
            raise TapeError(
                f"GradientTape.{method}: GradientTape must be created with persistent=True to "
                f"compute the {method} with experimental_use_pfor=False; hint: "
                f"GradientTape(persistent=True), or leave experimental_use_pfor=True"
            )

    def _begin(self, method: str) -> None:
        self._check_thread(method)
        if self._consumed:
            raise TapeError(
                "A non-persistent GradientTape can only be used to compute one set of gradients "
                "(or jacobians); hint: use GradientTape(persistent=True) for several calls"
            )
        if self._recording:
            if not self._persistent:
                self._stop()
            elif not self._warned_in_context:
                self._warned_in_context = True
                warnings.warn(
                    f"GradientTape.{method} called on a persistent tape inside its context: the "
                    f"gradient ops are recorded on the tape too, which costs time and memory; "
                    f"call it outside the `with` block unless you want higher-order gradients",
                    stacklevel=3,
                )

    def _end(self) -> None:
        if not self._persistent:
            self._consumed = True
            self._forget()


def _seeds(targets: list, output_gradients) -> list:
    if output_gradients is None:  # ones, known to be ones (FilledTensor)
        if all(type(t._data) is np.ndarray for t in targets):
            return [FilledTensor.like(Tensor._wrap(_host_ones(t._data)), 1.0) for t in targets]
        from ..ops import ones_like

        return [FilledTensor.like(ones_like(t), 1.0) for t in targets]
    from ..ops import broadcast_to, cast, convert_like
    grads = nest.flatten(output_gradients)
    if len(grads) != len(targets):
        raise TapeValueError(
            f"gradient: output_gradients has {len(grads)} entries but the target has "
            f"{len(targets)} tensors; hint: give one output gradient per flattened target"
        )
    seeds = []
    for i, (t, g) in enumerate(zip(targets, grads)):
        if g is None:
            raise TapeValueError(
                f"gradient: output_gradients[{i}] is None; hint: pass gt.ones_like(target) for "
                f"a plain gradient"
            )
        g = convert_like(g, t, "gradient.output_gradients")
        if g.shape != t.shape:
            try:
                g = broadcast_to(g, t.shape)
            except ShapeError:
                raise TapeValueError(
                    f"gradient: output_gradients[{i}] has shape {g.shape}, which does not "
                    f"broadcast to target shape {t.shape}; hint: give one output gradient "
                    f"shaped like its target"
                ) from None
        seeds.append(cast(g, t.dtype) if g.dtype != t.dtype else g)
    return seeds


_ONES: dict = {}  # dtype -> a read-only 0-d one: the seed of every scalar host target


def _host_ones(like: np.ndarray) -> np.ndarray:
    """Ones shaped like ``like``: the seed of a host target (a shared one for a scalar)."""
    if like.ndim:
        return np.ones(like.shape, like.dtype)
    one = _ONES.get(like.dtype)
    if one is None:
        one = _ONES[like.dtype] = np.ones((), like.dtype)
        one.flags.writeable = False
    return one
