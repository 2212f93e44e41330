"""The communicator: who the other processes are, and the few collectives training needs.

Every collective first exchanges a short signature (which call, which shapes and dtypes, which
backend, how the arrays are grouped into buffers), so that ranks making different calls get a
clear :class:`DistributedError` instead of a hang or, worse, a sum of unrelated arrays. Waiting
is bounded: ``GPUTAPE_DIST_TIMEOUT`` seconds (default 60) without an answer raises too.
"""

from __future__ import annotations

import hashlib
import os
import time

from ...core.errors import GputapeError

__all__ = ["Communicator", "DistributedError", "SingleProcess"]

_SIGNATURE_BYTES = 16
_yield_core = getattr(os, "sched_yield", lambda: time.sleep(0))


class DistributedError(GputapeError, RuntimeError):
    """Ranks that disagree (different calls, shapes or None patterns), or one that never came."""


def timeout_seconds() -> float:
    value = os.environ.get("GPUTAPE_DIST_TIMEOUT", "60")
    try:
        return float(value)
    except ValueError:
        raise DistributedError(
            f"GPUTAPE_DIST_TIMEOUT={value!r} is not a number of seconds; hint: e.g. 60"
        ) from None


def signature(what: str, arrays: list, detail: str = "") -> "tuple[bytes, str]":
    """A fixed-size digest of a collective call, and its readable form for error messages.

    ``detail`` adds what else the ranks must agree on (the backend, the bucket plan).
    """
    parts = [f"{a.dtype}{tuple(a.shape)}" if a is not None else "None" for a in arrays]
    text = f"{what} of {len(arrays)} array(s): [{', '.join(parts)}]"
    if detail:
        text += f" {detail}"
    return hashlib.blake2b(text.encode(), digest_size=_SIGNATURE_BYTES).digest(), text


class Communicator:
    """The collectives of one backend. ``rank``/``size`` identify this process in the group.

    Subclasses implement the ``_``-prefixed primitives; the public methods add the signature
    check and bounded waiting.
    """

    backend = "abstract"
    rank = 0
    size = 1

    def broadcast(self, arrays: list, root: int = 0, what: str = "broadcast") -> list:
        """Every rank gets ``root``'s arrays (same shapes and dtypes on every rank)."""
        if not 0 <= root < self.size:
            raise DistributedError(
                f"{what}: root={root} is not a rank of this group of {self.size}; hint: use a "
                f"rank in 0..{self.size - 1}"
            )
        self.agree(f"{what} from rank {root}", arrays)
        return [self._broadcast(a, root) for a in arrays] if self.size > 1 else list(arrays)

    def barrier(self) -> None:
        """Wait until every rank has called ``barrier``."""
        self.agree("barrier", [])

    def agree(self, what: str, arrays: list, detail: str = "") -> None:
        """Raise :class:`DistributedError` on every rank unless all ranks make this call, over
        this backend (and with the same ``detail``, such as the bucket plan)."""
        if self.size == 1:
            return
        detail = f"over {self.backend}" + (f", {detail}" if detail else "")
        digest, text = signature(what, arrays, detail)
        digests = self._allgather_bytes(digest, what)
        if all(d == digest for d in digests):
            return
        texts = self._allgather_text(text)
        lines = "\n".join(f"  rank {r}: {t}" for r, t in enumerate(texts))
        raise DistributedError(
            f"{what}: the ranks made different calls (rank {self.rank} of {self.size} sees "
            f"this):\n{lines}\nhint: every rank must compute the same gradients in the same "
            f"order, with the same bucket_bytes and backend; for sources unconnected on some "
            f"ranks only, pass unconnected_gradients='zero' so no rank has None"
        )

    # -- backend primitives -------------------------------------------------------------
    def _allreduce_sum(self, array):  # pragma: no cover - abstract
        raise NotImplementedError

    def _broadcast(self, array, root: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _allgather_bytes(self, data: bytes, what: str) -> list:  # pragma: no cover
        raise NotImplementedError

    def _allgather_text(self, text: str) -> list:  # pragma: no cover - abstract
        raise NotImplementedError


class SingleProcess(Communicator):
    """The group of one process: what a script sees when not started by ``mpiexec``."""

    backend = "single"

    def _allreduce_sum(self, array):
        return array

    def _broadcast(self, array, root: int):
        return array

    def _allgather_bytes(self, data: bytes, what: str) -> list:
        return [data]

    def _allgather_text(self, text: str) -> list:
        return [text]


def wait(request, what: str, rank: int, size: int) -> None:
    """Wait for a non-blocking MPI request, at most ``GPUTAPE_DIST_TIMEOUT`` seconds.

    Polling drives MPI's progress, so it never sleeps: it yields the core between polls, which
    lets a rank sharing the core with this one run.
    """
    deadline = time.monotonic() + timeout_seconds()
    polls = 0
    while not request.Test():
        polls += 1
        if polls & 255 == 0:
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"{what}: rank {rank} of {size} waited {timeout_seconds():g} s and the other "
                    f"ranks did not make the same call; hint: every rank must call the same "
                    f"collectives in the same order (raise GPUTAPE_DIST_TIMEOUT if a rank is "
                    f"only slow); the group cannot be used after this error"
                )
            _yield_core()
