"""Request/reply over a stream: the runtime primitive behind blocking commands.

Many streaming protocols mix audio with commands that the service answers
(a recognition command and its result, a readiness probe, a synthesis
request). :class:`Request` is one such exchange: it is registered with the
connection, its frame goes out **in order with the audio queued before it**
(:meth:`voxsync.connection.Connection._request`), the receiving thread offers
every decoded message to the pending requests, and the caller waits -
bounded - for the first message that matches (or one that reports an
error, or the connection closing).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from voxsync.errors import RemoteProtocolError, TimeoutError

__all__ = ["Request"]

_POLL = 0.1  # wait slices, so Ctrl+C is noticed on every platform


class Request:
    """A pending request: which incoming message answers it, and the answer.

    Parameters
    ----------
    match : callable
        ``match(message) -> bool``: True for the message that completes the
        request (its reply). Called on the receiving thread; keep it cheap.
    error : callable, optional
        ``error(message) -> exception or None``: an exception when
        ``message`` is an error reply to this request (the request then
        fails with it), else None. Checked before ``match``.
    what : str
        How messages name the request (``"SET-PARAMS"``, ``"synthesize"``).

    Notes
    -----
    Thread safety: :meth:`offer` and :meth:`abort` run on the connection's
    threads, :meth:`wait` on the caller's; the first resolution wins.
    """

    __slots__ = ("_done", "_error", "_lock", "_match", "_result", "error", "what")

    def __init__(
        self,
        match: Callable[[Any], bool],
        *,
        error: Optional[Callable[[Any], Optional[BaseException]]] = None,
        what: str = "the request",
    ) -> None:
        self._match = match
        self._error = error
        self.what = what
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._result: Any = None
        #: The exception the request failed with, or None.
        self.error: Optional[BaseException] = None

    @property
    def done(self) -> bool:
        """True once answered, failed or aborted."""
        return self._done.is_set()

    def offer(self, message: Any) -> bool:
        """Offer an incoming message (receiving thread); True if it answered this request."""
        if self._done.is_set():
            return False
        failure = self._error(message) if self._error is not None else None
        matched = failure is None and self._match(message)
        if failure is None and not matched:
            return False
        with self._lock:
            if self._done.is_set():
                return False
            if failure is not None:
                self.error = failure
            else:
                self._result = message
            self._done.set()
        return True

    def abort(self, error: BaseException) -> None:
        """Fail the request with ``error`` unless it is already resolved (any thread)."""
        with self._lock:
            if self._done.is_set():
                return
            self.error = error
            self._done.set()

    def wait(self, timeout: float) -> Any:
        """Block until resolved; return the reply.

        Raises
        ------
        TimeoutError
            No reply within ``timeout`` seconds.
        Exception
            The error reply, or the reason the request was aborted (e.g.
            :class:`~voxsync.errors.DisconnectedError` when the connection
            closed).
        """
        deadline = time.monotonic() + timeout
        while not self._done.wait(min(_POLL, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no answer to {self.what} from the service within {timeout} s")
        if self.error is not None:
            raise self.error
        if self._result is None:  # pragma: no cover - resolved with a result or an error
            raise RemoteProtocolError(f"no answer to {self.what}")
        return self._result
