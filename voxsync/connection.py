"""The provider-neutral connection runtime.

Every voxsync connection (local, aiOla, Uh!ive, ...) is a :class:`Connection`
subclass. The base class owns everything that is the same for all providers:

* the lifecycle ``idle -> connecting -> open -> finishing -> closed``, with a
  typed error for every call made in the wrong state;
* a bounded send queue of typed items - audio chunks and control frames -
  drained by one **writer**, with an explicit overflow policy, so
  ``send()`` never blocks the caller for long and a command never overtakes
  audio queued before it;
* one **dispatcher** that runs your handlers one at a time, in arrival
  order, so a slow handler never stalls receiving, keepalives, sending or
  other connections;
* the handler-exception policy: logged with its traceback on the
  ``voxsync.connection`` logger, re-emitted as an ``error`` event
  (:class:`~voxsync.errors.HandlerError`); the stream goes on;
* ``finish()`` (send the queued audio, the provider's end of stream, wait -
  bounded - for the last results), ``close()``, ``wait()``, ``events()``,
  the context manager, Ctrl+C handling and :class:`~voxsync.metrics.Metrics`.

The writer and the dispatcher are lanes of the shared worker pool
(:mod:`voxsync.pool`): the pool's daemon threads run them one step at a
time, taking the name ``voxsync-<provider>-<n>-writer`` or ``-dispatch``
meanwhile. A provider's own threads (a WebSocket's ``reader``) are daemons
named ``voxsync-<provider>-<n>-<role>``. ``close()`` waits for all of them
(and for the pool's workers once no connection is left). A provider adds
only its transport and codec by overriding the ``_open``, ``_read_loop``,
``_write_chunk``, ``_write_control``, ``_end_of_stream``, ``_keepalive`` and
``_close_transport`` hooks; a WebSocket product subclasses
:class:`voxsync.wsconnection.WebSocketConnection`, which implements most of
them. Provider services, for subclasses only:

``_deliver(event)``
    queue an event for the dispatcher (any thread);
``_send_control(frame)``
    queue a control frame behind the audio already queued;
``_request(frame, request, timeout)``
    send a frame in order with the audio and wait, bounded, for the reply a
    :class:`voxsync.request.Request` matches; the receiving thread offers
    every decoded message with ``_offer_reply(message)``;
``_stream_ended()``
    the provider's end-of-stream marker arrived (``finish()`` succeeds);
``_fail(error)``
    a fatal error: store it, emit it, close.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import itertools
import logging
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    FrozenSet,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

if TYPE_CHECKING:  # pragma: no cover
    from voxsync.notebook import LiveView

from pyee import EventEmitter

from voxsync.errors import (
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    HandlerError,
    LocalProtocolError,
    QueueFullError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import Connected, Disconnected, DisconnectReason, Event, StreamWarning
from voxsync.format import AudioData, AudioFormat
from voxsync.metrics import Metrics
from voxsync.pool import Lane
from voxsync.pool import pool as _pool
from voxsync.request import Request

__all__ = ["OVERFLOW_POLICIES", "Connection", "EventIterator", "State", "close_all"]

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)
Emitted = Union[Event, BaseException]

#: Accepted values of the ``overflow`` argument.
OVERFLOW_POLICIES = ("block", "drop_oldest", "raise")

#: Seconds ``close()`` waits, in total, for voxsync's threads to end.
CLOSE_JOIN_TIMEOUT = 2.0

_POLL = 0.1  # slice for waits that must notice Ctrl+C and state changes

_BATCH = 64  # items a lane handles before the pool turns to another lane

# send() writes a chunk itself only if the previous send() was at least this
# long ago: paced audio (a microphone, real time) is written through, saving
# a hand-off per chunk; a burst (a file sent faster than real time) is queued
# and the writer takes it in batches, which costs less than a write per call
_THROUGH_GAP = 0.002

# ---- notebook support: a process-wide registry of connections (weak: it
# never keeps a connection alive), so close_all() can close the ones a
# re-run notebook cell left behind.
_live: weakref.WeakSet[Connection] = weakref.WeakSet()
_live_lock = threading.Lock()


def close_all() -> int:
    """Close every voxsync connection of this process that is still open.

    Meant for notebooks and interactive sessions: re-running a cell that
    creates a connection leaves the previous one streaming; call
    ``voxsync.close_all()`` at the top of that cell (or any time) to close
    them all. Each close is :meth:`Connection.close` (immediate; queued
    audio is discarded).

    Returns
    -------
    int
        How many connections were open (connecting, open or finishing) and
        are now closed.

    Examples
    --------
    >>> import voxsync
    >>> conn = voxsync.connection().connect()
    >>> voxsync.close_all()
    1
    >>> conn.state
    <State.CLOSED: 'closed'>
    """
    with _live_lock:
        conns = list(_live)
    closed = 0
    for conn in conns:
        if conn.state in (State.CONNECTING, State.OPEN, State.FINISHING):
            conn.close()
            closed += 1
    return closed


class State(str, enum.Enum):
    """Lifecycle state of a connection (``conn.state``); compares equal to its value."""

    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    FINISHING = "finishing"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


class _Control:
    """Send queue item: a control frame, written in order with the audio around it."""

    __slots__ = ("frame",)

    def __init__(self, frame: Union[str, bytes]) -> None:
        self.frame = frame

    def __repr__(self) -> str:
        return f"<control {len(self.frame)} {'chars' if isinstance(self.frame, str) else 'bytes'}>"


class _Failed:
    """Send queue item: a write on the caller's thread (see ``send()``) failed with ``error``.

    The writer lane takes it first and fails the stream with it, as if its
    own write had failed.
    """

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"<failed write: {type(self.error).__name__}>"


_FINISH = _Sentinel("finish")  # send queue: audio before it is flushed, then end of stream
_STOP = _Sentinel("stop")  # send / event queue: the thread ends
_END = _Sentinel("end")  # event iterators: no more events


class _LaneQueue(queue.Queue[Any]):
    """A bounded ``queue.Queue`` consumed by a pool lane, which never blocks in ``get()``.

    ``queue.Queue`` holds three conditions, each with its own ``deque`` of
    waiters (about 0.7 KiB apiece). Only producers waiting for room ever
    wait on this queue, so one condition serves all three roles: a notify
    meant for a consumer wakes, at worst, a producer that checks for room
    and waits again; ``get_nowait()``'s notify still reaches a waiting
    producer. Nothing joins it (``task_done()`` is never called).
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.not_empty = self.all_tasks_done = self.not_full


def _force_put(q: queue.Queue[Any], item: Any) -> None:
    """Put ``item`` even if ``q`` is full: end-of-life markers must never block."""
    with q.mutex:
        q.queue.append(item)
        q.unfinished_tasks += 1
        q.not_empty.notify()


def _put_first(q: queue.Queue[Any], item: Any) -> None:
    """Put ``item`` at the head of ``q``, even if it is full."""
    with q.mutex:
        q.queue.appendleft(item)
        q.unfinished_tasks += 1
        q.not_empty.notify()


def _takes_argument(f: Callable[..., Any]) -> bool:
    """True if ``f`` can be called with one positional argument."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


def _qualified_name(f: Callable[..., Any]) -> Tuple[str, str]:
    """``(module, qualname)`` of a handler, the key of ``on(..., replace=True)``."""
    return (getattr(f, "__module__", None) or "", getattr(f, "__qualname__", None) or repr(f))


class _Call:
    """A registered handler: calls ``run`` (pyee's wrapper) with or without the event."""

    __slots__ = ("handler", "pass_event", "run")

    def __init__(
        self, handler: Callable[..., Any], run: Callable[..., Any], pass_event: bool
    ) -> None:
        self.handler = handler
        self.run = run
        self.pass_event = pass_event

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.pass_event:
            return self.run(*args, **kwargs)
        return self.run()


class _Emitter(EventEmitter):
    """pyee emitter with voxsync's handler policy.

    * handlers that take no argument are called without one (vendor snippets
      write ``def on_connect():``);
    * a raising handler is logged and re-emitted as ``error``
      (:class:`HandlerError`); a raising ``error`` handler is only logged;
    * an ``error`` event with no listener is logged, never raised into the
      dispatcher thread.
    """

    def __init__(self, owner: str) -> None:
        super().__init__()
        self._owner = owner
        self._current_event = ""

    def _add_event_handler(self, event: str, k: Callable[..., Any], v: Callable[..., Any]) -> None:
        super()._add_event_handler(event, k, _Call(k, v, _takes_argument(k)))

    def _call_handlers(self, event: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> bool:
        self._current_event = event
        return bool(super()._call_handlers(event, args, kwargs))

    def _emit_run(
        self, f: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> None:
        event = self._current_event
        try:
            f(*args, **kwargs)
        except Exception as exc:
            handler = f.handler if isinstance(f, _Call) else f
            if event == "error":
                log.exception("%s: the 'error' handler %r raised", self._owner, handler)
                return
            log.exception("%s: handler %r for %r raised", self._owner, handler, event)
            self.emit("error", HandlerError(event, handler, exc))
            self._current_event = event

    def _emit_handle_potential_error(self, event: str, error: Any) -> None:
        if event == "error" and not isinstance(error, HandlerError):
            log.warning("%s: error with no 'error' handler: %s", self._owner, error)


class EventIterator(Iterator[Emitted]):
    """Blocking iterator over a connection's events (see :meth:`Connection.events`).

    Yields every event object in dispatch order (errors as exception
    objects), ends after the :class:`~voxsync.events.Disconnected` event.
    Use it from one thread. ``close()`` (or leaving a ``with`` block, or
    breaking out of a ``for`` loop and dropping it) stops the subscription.
    """

    def __init__(self, conn: Connection, timeout: Optional[float], maxsize: int) -> None:
        self._conn = conn
        self._timeout = timeout
        self._q: queue.Queue[Any] = queue.Queue(maxsize)
        self._done = False
        self._overflowed = False

    def _push(self, item: Any) -> None:
        if self._overflowed:
            return
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self._overflowed = True
            self._conn._unsubscribe(self)
            self._q.queue.clear()
            self._q.queue.append(_END)

    def __iter__(self) -> EventIterator:
        return self

    def __next__(self) -> Emitted:
        if self._done:
            raise StopIteration
        try:
            item = self._get()
        except KeyboardInterrupt:  # Ctrl+C in `for ev in conn.events()`: as in wait()
            self.close()
            self._conn.close()
            raise
        if item is _END:
            self._done = True
            self._conn._unsubscribe(self)
            if self._overflowed:
                raise QueueFullError(
                    f"events() iterator fell {self._q.maxsize} events behind and was "
                    "stopped; consume events faster or use handlers"
                )
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def _get(self) -> Any:
        # waits in slices so Ctrl+C is noticed promptly
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            wait = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
            try:
                return self._q.get(timeout=max(0.0, wait))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"no event within {self._timeout} s") from None

    def close(self) -> None:
        """Stop receiving events; the iterator ends."""
        self._done = True
        self._conn._unsubscribe(self)

    def __enter__(self) -> EventIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Connection:
    """A live stream to a speech service; base class of every provider's connection.

    Parameters
    ----------
    input_format : AudioFormat or None
        What :meth:`send` accepts (set by the provider); None for a product
        that takes text, not audio (:meth:`send` then raises).
    output_format : AudioFormat or None
        What the ``audio`` events of an audio-out product carry; None when
        the product returns no audio.
    audio_format : AudioFormat or None
        Deprecated spelling of ``input_format``.
    queue_size : int
        Capacity of the send queue, in chunks (default 256: about 25 s of
        100 ms chunks).
    overflow : {"block", "drop_oldest", "raise"}
        What :meth:`send` does when the queue is full: wait up to
        ``send_timeout`` seconds for room, then raise
        :class:`~voxsync.errors.TimeoutError`; discard the oldest queued
        chunk (counted in ``metrics.chunks_dropped`` and reported as a
        ``warning`` event with code ``"audio_dropped"``); or raise
        :class:`~voxsync.errors.QueueFullError` at once.
    send_timeout : float
        Longest wait of a blocking ``send()`` (policy ``"block"``).
    finish_timeout : float
        Default bound of :meth:`finish`.
    keepalive_interval : float or None
        Seconds of send-queue silence after which the provider's keepalive
        runs on the writer thread; None for none.
    name : str or None
        Shown in ``repr`` and log messages; default ``"<provider>-<n>"``.
    event_queue_size : int
        Capacity of the queue between the receiving thread and the
        dispatcher. When handlers fall this far behind, receiving pauses
        (the socket applies back-pressure) instead of growing memory.

    Notes
    -----
    Thread safety: ``send``, ``finish``, ``close`` and the handler
    registration methods may be called from any thread, including from
    inside a handler (``close()`` there does not join the dispatcher it runs
    on). ``wait()`` and ``events()`` must not be called from a handler.
    """

    provider: ClassVar[str] = "base"
    #: Event names this connection emits; registering any other name raises.
    event_names: ClassVar[FrozenSet[str]] = frozenset(
        {"connect", "disconnect", "error", "warning", "message", "reconnecting", "reconnected"}
    )
    #: Longest audio (seconds) the service takes in one message: the writer
    #: cuts longer chunks into pieces of this length (whole frames). None: any.
    max_chunk_seconds: ClassVar[Optional[float]] = None
    _uses_reader_thread: ClassVar[bool] = False
    _counters: ClassVar[Dict[str, Iterator[int]]] = {}
    _counters_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        input_format: Optional[AudioFormat] = None,
        *,
        output_format: Optional[AudioFormat] = None,
        audio_format: Optional[AudioFormat] = None,
        queue_size: int = 256,
        overflow: str = "block",
        send_timeout: float = 5.0,
        finish_timeout: float = 10.0,
        keepalive_interval: Optional[float] = None,
        name: Optional[str] = None,
        event_queue_size: int = 10000,
    ) -> None:
        if input_format is None:
            input_format = audio_format
        elif audio_format is not None:
            raise ConfigurationError("pass input_format or its old name audio_format, not both")
        for label, fmt in (("input_format", input_format), ("output_format", output_format)):
            if fmt is not None and not isinstance(fmt, AudioFormat):
                raise ConfigurationError(f"{label} must be a voxsync.AudioFormat or None")
        if overflow not in OVERFLOW_POLICIES:
            raise ConfigurationError(
                f"overflow must be one of {', '.join(map(repr, OVERFLOW_POLICIES))}, "
                f"got {overflow!r}"
            )
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigurationError(f"queue_size must be a positive int, got {queue_size!r}")
        for label, value in (("send_timeout", send_timeout), ("finish_timeout", finish_timeout)):
            if not value > 0:
                raise ConfigurationError(f"{label} must be > 0 seconds, got {value!r}")
        if keepalive_interval is not None and not keepalive_interval > 0:
            raise ConfigurationError("keepalive_interval must be None or > 0 seconds")
        with Connection._counters_lock:
            counter = Connection._counters.setdefault(self.provider, itertools.count(1))
            self._number = next(counter)
        self.name = name or f"{self.provider}-{self._number}"
        self._input_format = input_format
        self._output_format = output_format
        self._close_callbacks: List[Callable[[], Any]] = []
        self._requests: List[Request] = []
        self._overflow = overflow
        self._send_timeout = send_timeout
        self._finish_timeout = finish_timeout
        self._keepalive_interval = keepalive_interval
        self._send_q: queue.Queue[Any] = _LaneQueue(queue_size)
        self._event_q: queue.Queue[Any] = _LaneQueue(event_queue_size)
        self._emitter = _Emitter(self.name)
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._state = State.IDLE
        self._closing = False
        self._dispatch_stopped = False
        self._pending: Optional[List[Tuple[str, Emitted, float]]] = None
        self._threads: Dict[str, threading.Thread] = {}
        self._closed = threading.Event()
        self._stream_done = threading.Event()
        self._fatal: Optional[VoxsyncError] = None
        self._subscribers: List[EventIterator] = []
        self._connect_info: Dict[str, Any] = {}
        self._context: Optional[contextvars.Context] = None  # set by connect()
        # the connection's ordered work on the shared pool (see voxsync.pool)
        self._dispatch_lane: Optional[Lane] = None
        self._writer_lane: Optional[Lane] = None
        self._writer_stopped = False  # the writer failed or was cut: it discards until _STOP
        # held by the writer lane for each step, and by send() while it writes a
        # chunk itself (_write_through): one writer at a time, in queue order
        self._write_lock = threading.Lock()
        self._through = False  # the provider implements _write_through
        self._last_send = 0.0  # time.monotonic() of the last send() that got this far
        self._last_write = 0.0
        self._piece: Optional[int] = None
        self._last_chunk = b""  # the chunk last passed to send(): last_chunk
        self.metrics = Metrics(input_format, self._send_q.qsize)

    # ------------------------------------------------------------------ info
    @property
    def input_format(self) -> Optional[AudioFormat]:
        """The audio :meth:`send` accepts (rate, channels, encoding); None if it takes text.

        Audio sources in :mod:`voxsync.audio` convert to it automatically.
        """
        return self._input_format

    @property
    def output_format(self) -> Optional[AudioFormat]:
        """The audio that ``audio`` events carry; None for a product with no audio out."""
        return self._output_format

    @property
    def audio_format(self) -> AudioFormat:
        """Deprecated name of :attr:`input_format`, for products that take audio.

        Raises
        ------
        LocalProtocolError
            The product takes text, not audio (``input_format`` is None).
        """
        return self._require_input_format("audio_format")

    def _require_input_format(self, what: str) -> AudioFormat:
        fmt = self._input_format
        if fmt is None:
            raise LocalProtocolError(
                f"{what}: {type(self).__name__} takes text, not audio; use send_text()"
            )
        return fmt

    @property
    def state(self) -> State:
        """Current lifecycle state: idle, connecting, open, finishing or closed."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while the stream is open (including while finishing)."""
        return self._state in (State.OPEN, State.FINISHING)

    @property
    def error(self) -> Optional[VoxsyncError]:
        """The failure that closed the connection, or None."""
        return self._fatal

    # ---- notebook support: the input level and the live view
    @property
    def last_chunk(self) -> bytes:
        """The audio last passed to :meth:`send` (``b""`` before any).

        :func:`voxsync.audio.level` turns it into the level the live view
        (:meth:`show`) and ``voxsync listen`` draw as a meter.
        """
        return self._last_chunk

    def show(self, *, max_lines: int = 200) -> LiveView:
        """Show a live transcript of this connection under the current notebook cell.

        Partial transcripts are rewritten in place, final ones appended,
        translations shown beside their source, and a level meter moves while
        audio is sent. Works for every provider; call it before or after
        :meth:`connect`. See :class:`voxsync.notebook.LiveView`.

        Returns
        -------
        LiveView
            The view; ``view.close()`` stops updating it.

        Raises
        ------
        ConfigurationError
            Not running inside a Jupyter kernel.
        """
        from voxsync.notebook import LiveView

        return LiveView(self, max_lines=max_lines).show()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} state={self._state.value} {self._formats()}>"

    def _formats(self) -> str:
        """``repr`` fragment naming the audio formats: ``in=... out=...`` or the input's."""
        if self._output_format is None:
            return str(self._input_format) if self._input_format is not None else "text in"
        source = "text" if self._input_format is None else str(self._input_format)
        return f"in={source} out={self._output_format}"

    # -------------------------------------------------------------- handlers
    @overload
    def on(self, event: str, *, replace: bool = False) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, f: H, *, replace: bool = False) -> H: ...

    def on(
        self, event: Any, f: Optional[H] = None, *, replace: bool = False
    ) -> Union[H, Callable[[H], H]]:
        """Register ``f`` for ``event``; as a decorator when ``f`` is omitted.

        Parameters
        ----------
        event : str
            An event name (``"transcript"``, ``"error"``, ...; an enum whose
            value is the name works too). Unknown names raise
            :class:`~voxsync.errors.ConfigurationError`, so a typo cannot
            leave a handler silently uncalled.
        f : callable
            Called with one event object, or with no argument if it takes
            none (``def on_connect(): ...``).
        replace : bool
            If True, first remove the handlers of ``event`` that have the
            same qualified name (``module.qualname``) as ``f``. Re-running a
            notebook cell defines a new function object with the same name;
            with ``replace=True`` it takes the place of the old one instead
            of running beside it.

        Returns
        -------
        The handler (so decorated functions stay callable), or a decorator.

        Notes
        -----
        Handlers run on the connection's dispatcher - a worker thread of
        voxsync's shared pool, named ``voxsync-<provider>-<n>-dispatch`` while
        it runs them - one at a time, in the order events arrived. A slow
        handler delays this connection's later handlers only; receiving,
        keepalives, sending and other connections go on. If a handler raises, the exception is
        logged (logger ``voxsync.connection``) and emitted as an ``error``
        event wrapped in :class:`~voxsync.errors.HandlerError`; the stream
        goes on. If an ``error`` handler raises, that is only logged.

        Handlers run inside a copy of the :mod:`contextvars` context of the
        thread that called :meth:`connect`, taken when it was called: context
        variables set there (a logging or tracing context; in Jupyter, the
        cell that output belongs to) are seen by every handler.

        Examples
        --------
        >>> import voxsync
        >>> conn = voxsync.connection()
        >>> @conn.on("transcript")
        ... def show(ev):
        ...     print(ev.text)
        >>> @conn.on("transcript", replace=True)   # the same cell, run again
        ... def show(ev):
        ...     print(ev.text)
        >>> len(conn.listeners("transcript"))
        1
        >>> conn.on("error", lambda err: print(err))  # doctest: +ELLIPSIS
        <function <lambda> at 0x...>
        """
        name = self._event_name(event)
        if f is None:

            def decorator(handler: H) -> H:
                return self.on(name, handler, replace=replace)

            return decorator
        if replace:
            self._remove_same_name(name, f)
        self._emitter.add_listener(name, f)
        return f

    def _remove_same_name(self, name: str, f: Handler) -> None:
        # on(..., replace=True): drop the handlers that share f's module + qualname
        key = _qualified_name(f)
        for old in self._emitter.listeners(name):
            if _qualified_name(old) == key:
                self.off(name, old)

    @overload
    def once(self, event: str) -> Callable[[H], H]: ...
    @overload
    def once(self, event: str, f: H) -> H: ...

    def once(self, event: Any, f: Optional[H] = None) -> Union[H, Callable[[H], H]]:
        """Like :meth:`on`, but the handler is removed after its first call."""
        name = self._event_name(event)
        result: Union[H, Callable[[H], H]] = self._emitter.once(name, f)
        return result

    def off(self, event: Any, f: Optional[Handler] = None) -> None:
        """Remove handler ``f`` of ``event``, or all of its handlers if ``f`` is None.

        Removing a handler that is not registered does nothing.
        """
        name = self._event_name(event)
        if f is None:
            self._emitter.remove_all_listeners(name)
            return
        try:
            self._emitter.remove_listener(name, f)
        except KeyError:
            pass

    def listeners(self, event: Any) -> List[Handler]:
        """Handlers registered for ``event``."""
        return list(self._emitter.listeners(self._event_name(event)))

    def _event_name(self, event: Any) -> str:
        name = getattr(event, "value", event)
        if not isinstance(name, str):
            raise ConfigurationError(f"event name must be a string, got {event!r}")
        if name not in self.event_names:
            raise ConfigurationError(
                f"{type(self).__name__} has no event {name!r}; "
                f"known events: {', '.join(sorted(self.event_names))}"
            )
        return name

    # ------------------------------------------------------------- lifecycle
    def connect(self, timeout: float = 10.0) -> Connection:
        """Open the stream; return when the service has accepted it.

        Starts the connection's threads. The ``connect`` event is the first
        event handlers receive.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the service.

        Returns
        -------
        Connection
            ``self``, so ``conn = Provider(...).connect()`` works.

        Raises
        ------
        LocalProtocolError
            The connection is not idle (already connected, or closed).
        AuthenticationError, ConnectionError, TimeoutError, ServerError
            The service refused or could not be reached. The connection
            returns to ``idle``; ``connect()`` may be called again.
        """
        with self._lock:
            if self._state is not State.IDLE:
                raise LocalProtocolError(
                    f"connect() needs an idle connection, this one is {self._state.value}; "
                    "create a new connection to stream again"
                )
            self._state = State.CONNECTING
            self._pending = []
            self._closed.clear()
            self._stream_done.clear()
            self._dispatch_stopped = False
        self._capture_context()
        self._start_lane("dispatch")
        try:
            self._open(timeout)
        except BaseException:
            self._abort_connect()
            raise
        with self._lock:
            if self._state is not State.CONNECTING:  # closed while connecting
                raise self._fatal or DisconnectedError("the connection was closed while connecting")
            self._state = State.OPEN
            self.metrics.connected_at = time.time()
            pending, self._pending = self._pending or [], None
            self._put_event("connect", Connected(self.provider, self._connect_info))
            for item in pending:
                self._put_event(*item[:2], received=item[2])
        self._start_lane("writer")
        if self._uses_reader_thread:
            self._start_thread("reader", self._reader_main)
        log.debug("%s: connected", self.name)
        return self

    def _capture_context(self) -> None:
        # Notebook support: remember the caller's contextvars context (in
        # Jupyter it names the cell that output belongs to) for the threads
        # _start_thread starts, and enter the registry close_all() uses.
        self._context = contextvars.copy_context()
        with _live_lock:
            _live.add(self)

    def _abort_connect(self) -> None:
        try:
            self._close_transport()
        except Exception:
            log.debug(
                "%s: closing the transport after a failed connect raised", self.name, exc_info=True
            )
        with self._lock:
            self._pending = None
            self._dispatch_stopped = True
            _force_put(self._event_q, _STOP)
            self._notify_dispatch()
        self._join_threads(CLOSE_JOIN_TIMEOUT)
        with self._lock:
            self._threads.clear()
            self._state = State.IDLE
            self._fatal = None
            self._drain_send_queue()

    def send(self, chunk: AudioData) -> None:
        """Queue one chunk of audio for sending; returns at once while there is room.

        When nothing is queued, the connection's writer is idle and the
        previous ``send()`` was more than 2 ms ago (paced audio, not a
        burst), a provider that can write without blocking (the WebSocket
        products) writes the chunk at once on the calling thread, which
        saves the hand-off to the writer; otherwise the chunk is queued and
        the writer (a lane of the shared worker pool, :mod:`voxsync.pool`)
        writes it. Either way chunks and commands go out in the order they
        were given, the overflow policy applies to what is queued, and a
        failed write ends the stream the same way (the error goes to
        :meth:`wait` and the ``error`` handlers; this call returns).

        Parameters
        ----------
        chunk : bytes-like or numpy array
            Audio in :attr:`input_format`: a whole number of frames. Any
            length is accepted; providers re-chunk where the service needs it.
            A contiguous ``memoryview`` works; a numpy array of the format's
            sample type (int16 for ``pcm_s16le``, float32 for ``pcm_f32le``,
            uint8 for G.711) shaped ``(frames,)`` or ``(frames, channels)``
            is taken as it is; a float32 array for ``pcm_s16le`` is converted.

        Raises
        ------
        AudioFormatError
            ``chunk`` is not audio of this format (not bytes-like, not a
            whole number of frames, a non-contiguous or released view, an
            array of the wrong type or shape); the message says what is
            expected.
        LocalProtocolError
            Not connected yet, or ``finish()`` / ``close()`` was called, or
            the product takes text (``input_format`` is None).
        DisconnectedError
            The stream failed (server gone, network error); ``__cause__``
            holds why. Audio is never dropped silently.
        TimeoutError
            Policy ``"block"``: no room in the queue within ``send_timeout``.
        QueueFullError
            Policy ``"raise"``: no room in the queue.
        """
        fmt = self._input_format
        if fmt is None:
            fmt = self._require_input_format("send()")
        if type(chunk) is bytes:
            if len(chunk) % fmt.frame_size:
                fmt.check(chunk)  # raises with the full message
            data = chunk
        else:
            data = fmt.to_bytes(chunk)
        if self._state is not State.OPEN:
            self._raise_not_open("send()")
        if not data:
            return
        self._last_chunk = data  # last_chunk (the notebook's level meter)
        if self._through:
            now = time.monotonic()
            paced, self._last_send = now - self._last_send >= _THROUGH_GAP, now
            if paced and not self._send_q.queue and self._write_now(data):
                return
        try:
            self._send_q.put_nowait(data)
        except queue.Full:
            self._send_full(data)
        lane = self._writer_lane
        if lane is not None:
            lane.notify()
        self.metrics._queued(len(data), self._send_q.qsize())

    def _write_now(self, data: bytes) -> bool:
        """Write ``data`` on the caller's thread if that is safe and cannot block.

        True when it was written (or its write failed: the writer lane then
        fails the stream); False to queue it. Never waits: the writer lane
        may be in a step (``_write_lock`` busy), something may be queued,
        or the provider's :meth:`_write_through` may decline.
        """
        lock = self._write_lock
        if not lock.acquire(False):
            return False
        try:
            piece = self._piece
            if (
                self._send_q.queue  # queued meanwhile: never overtake it
                or self._writer_stopped
                or self._state is not State.OPEN
                or (piece is not None and len(data) > piece)
            ):
                return False
            try:
                if not self._write_through(data):
                    return False
            except Exception as exc:  # the writer lane fails the stream, as for its own write
                _put_first(self._send_q, _Failed(exc))
                lane = self._writer_lane
                if lane is not None:
                    lane.notify()
                self.metrics._queued(len(data), 1)
                return True
            self._last_write = self._last_send
        finally:
            lock.release()
        metrics = self.metrics
        metrics._queued(len(data), 0)
        metrics._sent(len(data))
        return True

    def _send_full(self, data: bytes) -> None:
        if self._overflow == "raise":
            raise QueueFullError(
                f"send queue full ({self._send_q.maxsize} chunks): the service is not keeping up; "
                "send slower, raise queue_size, or choose overflow='block' or 'drop_oldest'"
            )
        if self._overflow == "drop_oldest":
            with self._send_lock:
                oldest = self._drop_oldest_audio()
                if oldest is None:  # finish/close raced us: fail below
                    self._raise_not_open("send()")
                _force_put(self._send_q, data)
            if oldest:
                count = self.metrics._dropped(len(oldest))
                self._deliver(
                    StreamWarning(
                        "audio_dropped",
                        f"send queue full: dropped {len(oldest)} bytes of the oldest audio "
                        f"({count} chunks dropped so far)",
                        count,
                    )
                )
            return
        deadline = time.monotonic() + self._send_timeout
        while True:
            try:
                self._send_q.put(data, timeout=_POLL)
            except queue.Full:
                if self._state is not State.OPEN:
                    self._raise_not_open("send()")
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"send queue stayed full for {self._send_timeout} s: the service is not "
                        "keeping up; pace the audio to real time or raise queue_size"
                    ) from None
                continue
            if self._closing:  # room made by close() emptying the queue: never sent
                self._raise_not_open("send()")
            return

    def _drop_oldest_audio(self) -> Optional[bytes]:
        """Remove the oldest queued audio chunk (control frames stay); None behind a sentinel."""
        q = self._send_q
        with q.mutex:
            for index, item in enumerate(q.queue):
                if isinstance(item, _Sentinel):
                    return None
                if type(item) is bytes:
                    del q.queue[index]
                    q.unfinished_tasks -= 1
                    return item
        return b""  # only control frames queued: the new chunk goes after them

    def _raise_not_open(self, what: str) -> None:
        state = self._state
        if state is State.IDLE or state is State.CONNECTING:
            raise LocalProtocolError(f"{what} before the connection is open; call connect() first")
        if self._fatal is not None:
            raise DisconnectedError(
                f"{what} on a failed connection: {self._fatal}"
            ) from self._fatal
        if state is State.FINISHING:
            raise LocalProtocolError(f"{what} after finish(); no more audio can be sent")
        raise LocalProtocolError(f"{what} on a closed connection; create a new connection")

    def finish(self, timeout: Optional[float] = None) -> None:
        """End the stream gracefully, keeping the last words; then close.

        Sends every queued chunk, then the provider's end of stream, waits
        until the service delivered its last results and your handlers ran
        for them, then closes. Bounded: after ``timeout`` seconds the
        connection is closed anyway and :class:`~voxsync.errors.TimeoutError`
        says the tail may be incomplete.

        Parameters
        ----------
        timeout : float or None
            Seconds; default the connection's ``finish_timeout``.

        Raises
        ------
        LocalProtocolError
            Not connected, or already closed normally.
        DisconnectedError
            The stream failed, or the service closed it before its
            end-of-stream marker (then ``code`` and ``reason`` hold the
            WebSocket close code and reason, where there was one);
            ``__cause__`` holds why. ``finish()`` returns normally only
            after the marker.
        TimeoutError
            The last results did not arrive in time (the connection is closed).
        """
        timeout = self._finish_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._state is State.FINISHING:
                first = False
            elif self._state is State.OPEN:
                first = True
                self._state = State.FINISHING
            else:
                self._raise_not_open("finish()")
        try:
            done = self._finish_wait(first, deadline)
        except BaseException:  # Ctrl+C while waiting: still close
            self.close()
            raise
        self.close()
        fatal = self._fatal
        if fatal is not None:
            raise DisconnectedError(
                f"the stream failed before it finished: {fatal}",
                code=fatal.code if isinstance(fatal, DisconnectedError) else None,
                reason=fatal.reason if isinstance(fatal, DisconnectedError) else "",
            ) from fatal
        if not done:
            raise TimeoutError(
                f"finish() gave up after {timeout} s waiting for the last results; "
                "the connection is closed and the end of the transcript may be missing"
            )

    def _finish_wait(self, first: bool, deadline: float) -> bool:
        if first:
            self._put_until(self._send_q, _FINISH, deadline)
        if not self._wait_flag(self._stream_done, deadline):
            return False
        if self._fatal is not None:
            return True
        return self._wait_dispatched(deadline)

    def _wait_dispatched(self, deadline: float) -> bool:
        """Wait until the handlers of every event queued so far have run (bounded).

        Returns at once (True) inside a handler of this connection.
        """
        if self._on_dispatcher():
            return True
        with self._lock:
            barrier = None if self._dispatch_stopped else threading.Event()
            if barrier is not None:
                _force_put(self._event_q, barrier)
                self._notify_dispatch()
        return self._wait_flag(self._closed if barrier is None else barrier, deadline)

    def _put_until(self, q: queue.Queue[Any], item: Any, deadline: float) -> None:
        while True:
            try:
                q.put(item, timeout=_POLL)
                lane = self._writer_lane if q is self._send_q else self._dispatch_lane
                if lane is not None:
                    lane.notify()
                return
            except queue.Full:
                if self._closing or time.monotonic() >= deadline:
                    return

    def _wait_flag(self, flag: threading.Event, deadline: float) -> bool:
        while not flag.is_set():
            if self._closed.is_set() or self._fatal is not None:
                return flag.is_set()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            flag.wait(min(_POLL, remaining))
        return True

    def close(self) -> None:
        """Close at once: stop sending, close the transport, end the threads.

        Audio still queued is discarded (counted in
        ``metrics.chunks_discarded``); use :meth:`finish` to send it and get
        its results first. Events received but not yet dispatched are
        discarded too (counted in ``metrics.events_discarded`` and in the
        ``disconnect`` event's ``events_discarded``): the handler running
        now completes, then the ``disconnect`` handlers run, and the
        dispatcher ends. Pending commands fail with
        :class:`~voxsync.errors.DisconnectedError`. Idempotent, never
        raises, safe from any thread including a handler (it then does not
        wait for the dispatcher it runs on). Returns once voxsync's threads
        ended - unless a handler still runs, which it waits for at most
        about 2 s.
        """
        self._shutdown(DisconnectReason.CLIENT, None, discard_events=True)
        self._join_threads(CLOSE_JOIN_TIMEOUT)
        if not self._threads_alive(include_current=False):
            self._closed.set()

    #: Default bound, in seconds, of :meth:`disconnect`'s wait for pending
    #: results; set it on a connection to change it for that connection.
    disconnect_timeout: float = 2.0

    def disconnect(self, timeout: Optional[float] = None) -> bool:
        """End the stream, waiting a short, bounded while for pending results.

        The polite end that vendors' examples call right after their last
        chunk: an open connection is finished as by :meth:`finish` - queued
        audio sent, the provider's end of stream, the last results
        delivered to your handlers - but for at most ``timeout`` seconds
        (default :attr:`disconnect_timeout`, 2 s), and without raising:
        when the time runs out or the stream fails, the connection is
        closed as by :meth:`close`. On a connection that is not open, and
        from inside a handler (whose own dispatcher would have to deliver
        the results), it is :meth:`close`. Idempotent; ``KeyboardInterrupt``
        while it waits closes the connection and is raised again.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait for pending results; default
            :attr:`disconnect_timeout`.

        Returns
        -------
        bool
            True when nothing was left pending (the stream ended gracefully,
            or there was no open stream); False when pending audio or
            results were given up (then ``wait()`` and :attr:`error` say why
            if the stream failed).
        """
        timeout = self.disconnect_timeout if timeout is None else timeout
        on_dispatcher = self._on_dispatcher()
        if self.state not in (State.OPEN, State.FINISHING) or on_dispatcher:
            pending = self.state in (State.OPEN, State.FINISHING)
            self.close()
            return not pending and self._fatal is None
        try:
            self.finish(timeout)
        except VoxsyncError:  # gave up (TimeoutError), or the stream failed
            self.close()
            return False
        return True

    def add_close_callback(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` once when the connection closes.

        Parameters
        ----------
        fn : callable
            Called with no argument, once, on the thread that closes the
            connection (the caller of :meth:`close`/:meth:`finish`, or the
            reader/writer thread after a failure), after the transport was
            released. A failed :meth:`connect` leaves the connection idle and
            reusable and does not run it; ``close()`` on an idle connection
            does. An exception it raises is logged (logger
            ``voxsync.connection``) and ignored. Use it to release resources
            that live as long as the connection (an HTTP session, a
            temporary file). Callbacks run in the order they were added.
        """
        if not callable(fn):
            raise ConfigurationError(f"add_close_callback() needs a callable, got {fn!r}")
        with self._lock:
            self._close_callbacks.append(fn)

    def _run_close_callbacks(self) -> None:
        with self._lock:
            callbacks, self._close_callbacks = self._close_callbacks, []
        for fn in callbacks:
            try:
                fn()
            except Exception:
                log.exception("%s: close callback %r raised", self.name, fn)

    def send_text(self, text: str, **options: Any) -> None:
        """Send text to a product that takes text (text-to-speech, a text channel).

        Parameters
        ----------
        text : str
            The text.
        **options
            Product-specific options (a voice, a language, ...).

        Raises
        ------
        LocalProtocolError
            This product takes audio, not text (the base implementation);
            use :meth:`send`.
        """
        raise LocalProtocolError(
            f"{type(self).__name__} takes audio, not text; send audio with send()"
        )

    def report_warning(self, warning: StreamWarning) -> None:
        """Emit ``warning`` as a ``warning`` event (any thread).

        For audio sources feeding this connection (a microphone that dropped
        blocks, ...): the warning reaches the connection's handlers and
        :meth:`events` iterators in order with the other events.
        """
        if not isinstance(warning, StreamWarning):
            raise ConfigurationError(f"report_warning() needs a StreamWarning, got {warning!r}")
        self._deliver(warning, "warning")

    def report_error(self, error: BaseException) -> None:
        """Emit ``error`` as a non-fatal ``error`` event (any thread).

        For audio sources feeding this connection: a send that failed
        (queue full, ...) is reported to the handlers; the stream goes on.
        To end the stream, call :meth:`close`.
        """
        if not isinstance(error, BaseException):
            raise ConfigurationError(f"report_error() needs an exception, got {error!r}")
        self._deliver(error, "error")

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the connection is closed.

        Parameters
        ----------
        timeout : float or None
            Seconds; None waits as long as it takes.

        Returns
        -------
        bool
            True if closed, False if ``timeout`` ran out first.

        Raises
        ------
        DisconnectedError, ServerError, ...
            The failure that closed the connection, if it did not end
            normally.
        KeyboardInterrupt
            After closing the connection (within about 2 s).
        LocalProtocolError
            Called before ``connect()`` or from one of the connection's threads.
        """
        if self._state is State.IDLE:
            raise LocalProtocolError("wait() before connect(); connect first")
        if self._on_own_thread():
            raise LocalProtocolError("wait() from a handler would block the dispatcher forever")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._closed.wait(_POLL):
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        except KeyboardInterrupt:
            self.close()
            raise
        self._join_threads(CLOSE_JOIN_TIMEOUT)
        if self._fatal is not None:
            raise self._fatal
        return True

    def events(self, timeout: Optional[float] = None, maxsize: int = 10000) -> EventIterator:
        """Iterate over events instead of (or besides) registering handlers.

        Subscribes at once; events dispatched before the call are not
        replayed, so subscribe before :meth:`connect` (or before ``with
        conn:``) to see every event from ``connect`` on. Ends after the
        ``disconnect`` event. Events are buffered until you iterate, so the
        loop may also run after the stream has ended. A
        :exc:`KeyboardInterrupt` (Ctrl+C, a notebook's interrupt) while the
        loop waits closes the connection, then propagates.

        Parameters
        ----------
        timeout : float or None
            Longest wait for the next event; when it runs out the iterator
            raises :class:`~voxsync.errors.TimeoutError`.
        maxsize : int
            Events buffered for a slow consumer; beyond it the iterator stops
            and raises :class:`~voxsync.errors.QueueFullError` (handlers and
            the stream are not held up).

        Examples
        --------
        >>> import voxsync
        >>> from voxsync.audio import stream_file
        >>> conn = voxsync.connection()
        >>> events = conn.events(timeout=30)     # before connect: sees everything
        >>> with conn:                           # connect ... finish + close
        ...     seconds = stream_file(conn, "yes.wav", realtime=False)
        >>> for ev in events:
        ...     if isinstance(ev, voxsync.Transcript) and ev.is_final:
        ...         print(ev.text)
        ...     elif not isinstance(ev, voxsync.Transcript):
        ...         print(ev.event_name)
        connect
        yes
        disconnect
        """
        if self._on_own_thread():
            raise LocalProtocolError("events() from a handler would block the dispatcher")
        it = EventIterator(self, timeout, maxsize)
        with self._lock:
            if self._dispatch_stopped and self._state is State.CLOSED:
                it._push(_END)
            else:
                self._subscribers.append(it)
        return it

    def _unsubscribe(self, it: EventIterator) -> None:
        with self._lock:
            if it in self._subscribers:
                self._subscribers.remove(it)

    def __enter__(self) -> Connection:
        if self._state is State.IDLE:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is not None:
            self.close()
            return
        if self._state in (State.OPEN, State.FINISHING):
            self.finish()
            return
        self.close()
        if self._fatal is not None:
            raise self._fatal

    # -------------------------------------------------------- provider hooks
    def _open(self, timeout: float) -> None:
        """Open the transport and handshake (caller's thread, inside ``connect()``)."""

    def _read_loop(self) -> None:
        """Receive until the transport closes (reader thread)."""

    def _write_chunk(self, chunk: bytes) -> None:
        """Send one validated chunk of audio (writer thread)."""
        raise NotImplementedError

    def _end_of_stream(self) -> None:
        """Send the provider's end of stream (writer thread, after all queued audio).

        Call :meth:`_stream_ended` when the last results were delivered.
        """
        self._stream_ended()

    def _keepalive(self) -> None:
        """Keep an idle stream alive (writer thread, every ``keepalive_interval``)."""

    def _write_control(self, frame: Union[str, bytes]) -> None:
        """Write one control frame queued by :meth:`_send_control` (writer thread)."""
        raise NotImplementedError(f"{type(self).__name__} does not send control frames")

    def _write_through(self, chunk: bytes) -> bool:
        """Write one chunk of audio now, on the caller's thread, if that cannot block.

        Called by :meth:`send` on the caller's thread, only while the stream
        is open, nothing is queued, the writer lane is between steps (the
        connection's ``_write_lock`` is held, so no other write of this
        connection runs meanwhile), the writer has not failed, and ``chunk``
        is no longer than ``max_chunk_seconds``. Return True once the chunk
        was written as :meth:`_write_chunk` would write it; return False,
        having written nothing, to have it queued for the writer instead
        (the default: providers that do not override this always queue).
        Must not wait: decline when a write could block. A failed write
        raises: the writer lane then fails the stream with
        :meth:`_write_failed`, exactly as if its own write had failed.
        """
        return False

    def _write_failed(self, error: Exception) -> None:
        """Raise the error of a failed :meth:`_write_through` (writer thread).

        The writer lane calls this before anything queued after that chunk;
        what it raises fails the stream like an error of :meth:`_write_chunk`.
        """
        raise error

    def _close_transport(self) -> None:
        """Release the transport so the reader returns (any thread; idempotent)."""

    # ------------------------------------------------------ provider services
    def _deliver(self, event: Emitted, name: Optional[str] = None) -> None:
        """Queue ``event`` for the dispatcher (any thread). Errors go out as ``error``."""
        if name is None:
            name = "error" if isinstance(event, BaseException) else event.event_name
        self._put_event(name, event, time.perf_counter())

    def _put_event(self, name: str, event: Emitted, received: Optional[float] = None) -> None:
        item = (name, event, time.perf_counter() if received is None else received)
        with self._lock:
            if self._pending is not None:
                self._pending.append(item)
                return
            if self._dispatch_stopped:
                log.debug("%s: %s arrived after close; not dispatched", self.name, name)
                return
            try:
                self._event_q.put_nowait(item)
            except queue.Full:
                if self._on_dispatcher():
                    log.error("%s: event queue full inside a handler; %s lost", self.name, name)
                    return
            else:
                lane = self._dispatch_lane
                if lane is not None:
                    lane.notify()
                return
        while True:  # back-pressure on the receiving thread, outside the lock
            try:
                self._event_q.put(item, timeout=_POLL)
                self._notify_dispatch()
                return
            except queue.Full:
                if self._closing:
                    log.debug("%s: %s not dispatched, closing", self.name, name)
                    return

    def _send_control(self, frame: Union[str, bytes]) -> None:
        """Queue a control frame behind the audio already queued (any thread).

        The writer thread writes it with :meth:`_write_control` after every
        chunk queued before it and before every chunk queued after it, so a
        command never overtakes audio. Control frames are never dropped by
        the ``drop_oldest`` policy and never wait for room in the queue.

        Raises
        ------
        LocalProtocolError, DisconnectedError
            The connection is not open (or finishing).
        """
        with self._lock:
            if self._state is not State.OPEN and self._state is not State.FINISHING:
                self._raise_not_open("sending a command")
            _force_put(self._send_q, _Control(frame))
            lane = self._writer_lane
        if lane is not None:
            lane.notify()

    def _request(self, frame: Union[str, bytes], request: Request, timeout: float) -> Any:
        """Send ``frame`` in order with the audio and wait, bounded, for its reply.

        ``request`` (a :class:`~voxsync.request.Request`) is registered before
        the frame is queued, so a fast reply is never missed; the receiving
        thread hands every decoded message to :meth:`_offer_reply`. Any
        thread may call this, including a handler (the reply is matched on
        the receiving thread).

        When it returns (or raises the error reply), the handlers of every
        event delivered before the reply was offered have run - unless it is
        called from a handler, which must not wait for the dispatcher it runs
        on. Providers deliver a reply's events before offering it.

        Returns
        -------
        The matching message.

        Raises
        ------
        TimeoutError
            No reply within ``timeout`` seconds.
        DisconnectedError
            The connection closed or failed while waiting (at once, not at
            the end of ``timeout``).
        Exception
            The error reply, as built by the request's ``error`` function.
        """
        deadline = time.monotonic() + timeout
        self._start_request(request)
        try:
            self._send_control(frame)
            try:
                reply = request.wait(timeout)
            except (TimeoutError, DisconnectedError):
                raise
            except Exception:  # an error reply: its events reach the handlers first, too
                self._wait_dispatched(deadline)
                raise
            self._wait_dispatched(deadline)
            return reply
        finally:
            self._end_request(request)

    def _start_request(self, request: Request) -> None:
        """Register ``request`` for :meth:`_offer_reply` (see :meth:`_request`)."""
        with self._lock:
            if self._closing:
                raise DisconnectedError("the connection is closed")
            self._requests.append(request)

    def _end_request(self, request: Request) -> None:
        with self._lock:
            if request in self._requests:
                self._requests.remove(request)

    def _offer_reply(self, message: Any) -> bool:
        """Offer a decoded message to the pending requests (receiving thread).

        Returns True if it answered one. The message is still the
        provider's to emit as an event if it wants.
        """
        if not self._requests:
            return False
        with self._lock:
            pending = list(self._requests)
        answered = False
        for request in pending:
            answered = request.offer(message) or answered
        return answered

    def _abort_requests(self, error: BaseException) -> None:
        with self._lock:
            pending, self._requests = self._requests, []
        for request in pending:
            request.abort(error)

    def _stream_ended(self) -> None:
        """The provider's end-of-stream answer arrived; ``finish()`` may complete."""
        self._stream_done.set()

    def _fail(self, exc: VoxsyncError) -> None:
        """A fatal error: store it for ``wait()``/``send()``, emit ``error``, close.

        Safe from any thread; does not wait for threads to end. Only the
        first failure counts: later ones (usually its consequences on other
        threads) and failures while closing are logged at debug level.
        """
        with self._lock:
            if self._closing or self._fatal is not None:  # the first failure is the cause
                log.debug("%s: error after the stream failed or while closing: %s", self.name, exc)
                return
            self._fatal = exc
        log.error("%s: stream failed: %s", self.name, exc)
        self._deliver(exc)
        reason = (
            DisconnectReason.SERVER
            if isinstance(exc, DisconnectedError) and exc.__cause__ is None
            else DisconnectReason.TRANSPORT_ERROR
        )
        self._shutdown(reason, exc)

    def _start_thread(self, role: str, target: Callable[[], None]) -> threading.Thread:
        """Start a named daemon thread ``voxsync-<provider>-<n>-<role>``, joined by ``close()``."""
        # each thread runs in its own copy of the context captured by connect()
        # (one Context object cannot be entered by two threads at once)
        context = (self._context or contextvars.copy_context()).copy()
        thread = threading.Thread(
            target=context.run,
            args=(target,),
            name=f"voxsync-{self.provider}-{self._number}-{role}",
            daemon=True,
        )
        with self._lock:  # registered and started together: close() never joins an unstarted one
            if self._closing:  # closed meanwhile (e.g. by the "connect" handler): not needed
                log.debug("%s: closed before the %s thread started", self.name, role)
                return thread
            self._threads[role] = thread
            thread.start()
        return thread

    def _start_lane(self, role: str) -> None:
        """Start the ``dispatch`` or ``writer`` lane on the shared pool (see :mod:`voxsync.pool`).

        Its steps run one at a time on a pool worker that takes the name
        ``voxsync-<provider>-<n>-<role>`` meanwhile, in a copy of the context
        captured by ``connect()``.
        """
        context = (self._context or contextvars.copy_context()).copy()
        name = f"voxsync-{self.provider}-{self._number}-{role}"
        if role == "dispatch":
            events = self._event_q.queue
            lane = _pool.lane(name, self._dispatch_step, lambda: bool(events), context)
        else:
            sends = self._send_q.queue
            lane = _pool.lane(name, self._writer_step, lambda: bool(sends), context)
            fmt, seconds = self._input_format, self.max_chunk_seconds
            self._piece = None
            if fmt is not None and seconds is not None:
                self._piece = max(fmt.frame_size, fmt.nbytes(seconds))
            self._writer_stopped = False
            self._last_write = time.monotonic()
            self._through = type(self)._write_through is not Connection._write_through
        with self._lock:  # like _start_thread: not started once closed
            if self._closing:
                log.debug("%s: closed before the %s lane started", self.name, role)
                return
            if role == "dispatch":
                self._dispatch_lane = lane
            else:
                self._writer_lane = lane
            lane.open()
        if role == "writer" and self._keepalive_interval is not None:
            lane.wake_at(self._last_write + self._keepalive_interval)

    def _notify_dispatch(self) -> None:
        lane = self._dispatch_lane
        if lane is not None:
            lane.notify()

    def _on_dispatcher(self) -> bool:
        """True inside a handler of this connection (on its dispatch lane)."""
        lane = self._dispatch_lane
        return lane is not None and lane.running_here()

    def _on_own_thread(self) -> bool:
        """True on a thread doing this connection's work (a handler, its writer, reader, ...)."""
        if threading.current_thread() in self._threads.values():
            return True
        return any(lane is not None and lane.running_here() for lane in self._lanes())

    def _lanes(self) -> Tuple[Optional[Lane], Optional[Lane]]:
        return self._dispatch_lane, self._writer_lane

    # ----------------------------------------------------------- internals
    def _shutdown(
        self, reason: str, error: Optional[BaseException], discard_events: bool = False
    ) -> None:
        with self._lock:
            if self._state is State.IDLE:
                idle = True
            elif self._closing:
                return
            else:
                idle = False
        if idle:
            self._run_close_callbacks()
            return
        with self._lock:
            if self._closing or self._state is State.IDLE:
                return
            self._closing = True
            self._state = State.CLOSED
            self._pending = None
        fatal = self._fatal
        self._abort_requests(
            DisconnectedError(f"the connection failed: {fatal}")
            if fatal is not None
            else DisconnectedError("the connection was closed")
        )
        discarded = self._drain_send_queue()
        if discarded:
            self.metrics._discarded(discarded)
            log.debug("%s: %d queued chunks discarded by close()", self.name, discarded)
        _force_put(self._send_q, _STOP)
        lane = self._writer_lane
        if lane is not None:
            lane.notify()
        try:
            self._close_transport()
        except Exception:
            log.debug("%s: closing the transport raised", self.name, exc_info=True)
        with self._lock:
            dropped = self._discard_events() if discard_events else 0
            _force_put(
                self._event_q,
                (
                    "disconnect",
                    Disconnected(reason, error, events_discarded=dropped),
                    time.perf_counter(),
                ),
            )
            _force_put(self._event_q, _STOP)
            self._dispatch_stopped = True
            self._notify_dispatch()
        self._run_close_callbacks()
        log.debug("%s: closed (%s)", self.name, reason)

    def _discard_events(self) -> int:
        """Empty the event queue (caller holds ``_lock``); count the events dropped."""
        q = self._event_q
        count = 0
        with q.mutex:
            kept = []
            for item in q.queue:
                if isinstance(item, tuple):
                    count += 1
                else:  # finish() barriers: released, so no waiter hangs
                    kept.append(item)
            q.queue.clear()
            q.queue.extend(kept)
            q.unfinished_tasks = len(kept)
            q.not_full.notify_all()
        if count:
            self.metrics._events_discarded(count)
            log.debug("%s: %d events not dispatched (closed)", self.name, count)
        return count

    def _drain_send_queue(self) -> int:
        count = 0
        with self._send_lock:
            while True:
                try:
                    item = self._send_q.get_nowait()
                except queue.Empty:
                    return count
                if isinstance(item, bytes):
                    count += 1

    def _join_threads(self, timeout: float) -> None:
        """Wait, within ``timeout`` s in all, for this connection's work to end.

        Its lanes (except one running on the calling thread), its own
        threads, and - when no connection of the process is left - the
        pool's workers.
        """
        deadline = time.monotonic() + timeout
        for lane in self._lanes():
            if lane is None or lane.running_here():
                continue
            if not lane.wait_closed(deadline - time.monotonic()):
                log.warning("%s: %s did not end within %.1f s", self.name, lane.name, timeout)
        current = threading.current_thread()
        with self._lock:
            threads = [t for t in self._threads.values() if t is not current]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning(
                    "%s: thread %s did not end within %.1f s", self.name, thread.name, timeout
                )
        _pool.join_if_unused(max(0.0, deadline - time.monotonic()))

    def _threads_alive(self, include_current: bool) -> bool:
        for lane in self._lanes():
            if (
                lane is not None
                and not lane.closed
                and (include_current or not lane.running_here())
            ):
                return True
        current = threading.current_thread()
        with self._lock:
            return any(
                t.is_alive() and (include_current or t is not current)
                for t in self._threads.values()
            )

    def _writer_step(self) -> bool:
        """Write a batch of queued items (writer lane); True once ``_STOP`` was taken.

        Audio is cut into pieces of ``max_chunk_seconds``; a control frame
        is written in its place in the queue; ``_FINISH`` sends the end of
        stream; after ``keepalive_interval`` seconds without an item the
        provider's keepalive runs. A failure fails the connection; what is
        queued after it is discarded (counted) until ``_STOP``.
        """
        with self._write_lock:  # send() writes nothing itself meanwhile
            return self._writer_batch()

    def _writer_batch(self) -> bool:
        q = self._send_q
        pending = q.queue
        taken = 0
        while taken < _BATCH and pending:  # the lane is this queue's one consumer
            item = q.get_nowait()
            taken += 1
            if item is _STOP:
                return True
            if self._writer_stopped:
                if type(item) is bytes:
                    self.metrics._discarded(1)
                continue
            try:
                self._write_item(item)
            except Exception as exc:
                self._writer_stopped = True
                if not self._closing:
                    self._fail(self._wrap_transport_error("sending", exc))
        interval = self._keepalive_interval
        if interval is not None and not self._writer_stopped:
            now = time.monotonic()
            if taken:
                self._last_write = now
            elif now - self._last_write >= interval:
                self._last_write = now
                try:
                    self._keepalive()
                except Exception as exc:
                    self._writer_stopped = True
                    if not self._closing:
                        self._fail(self._wrap_transport_error("sending", exc))
                    return False
            lane = self._writer_lane
            if lane is not None:
                lane.wake_at(self._last_write + interval)
        return False

    def _write_item(self, item: Any) -> None:
        if type(item) is _Failed:
            self._write_failed(item.error)
            return
        if item is _FINISH:
            self._end_of_stream()
            return
        if type(item) is _Control:
            self._write_control(item.frame)
            return
        piece = self._piece
        if piece is None or len(item) <= piece:
            self._write_chunk(item)
        else:  # a huge send(): in pieces the service takes
            for start in range(0, len(item), piece):
                if self._closing:
                    self._writer_stopped = True
                    return
                self._write_chunk(item[start : start + piece])
        self.metrics._sent(len(item))

    def _reader_main(self) -> None:
        try:
            self._read_loop()
        except Exception as exc:
            if self._closing:
                return
            if self._stream_done.is_set():
                # the provider's end of stream arrived; a transport error after it
                # (a server dropping the socket) ends the stream, it does not fail it
                log.debug("%s: transport error after the end of stream: %s", self.name, exc)
                self._shutdown(DisconnectReason.SERVER, None)
                return
            self._fail(self._wrap_transport_error("receiving", exc))
            return
        if self._closing:
            return
        if self._stream_done.is_set():
            self._shutdown(DisconnectReason.SERVER, None)
        elif self._state is State.FINISHING:
            # the end-of-stream marker never came: finish() must not report success
            self._fail(self._peer_closed_error("before the end of the stream"))
        else:
            self._fail(self._peer_closed_error("during the stream"))

    def _peer_closed_error(self, what: str) -> DisconnectedError:
        """The error for a transport the service closed (reader thread); adds close details."""
        return DisconnectedError(f"the service closed the connection {what}")

    def _wrap_transport_error(self, doing: str, exc: Exception) -> VoxsyncError:
        # a transport failure on an open stream is a DisconnectedError for every
        # provider; other voxsync errors (server errors, protocol errors) stay as they are
        if isinstance(exc, VoxsyncError) and not (
            isinstance(exc, ConnectionError) and not isinstance(exc, DisconnectedError)
        ):
            return exc
        detail = str(exc) if isinstance(exc, VoxsyncError) else f"{type(exc).__name__}: {exc}"
        err = DisconnectedError(f"{doing} failed: {detail}")
        err.__cause__ = exc
        return err

    def _dispatch_step(self) -> bool:
        """Run the handlers of a batch of queued events (dispatch lane); True at ``_STOP``."""
        q = self._event_q
        pending = q.queue
        emit = self._emitter.emit
        clock = time.perf_counter
        for _ in range(_BATCH):
            if not pending:  # the lane is this queue's one consumer
                return False
            item = q.get_nowait()
            if item is _STOP:
                break
            if isinstance(item, threading.Event):  # finish() barrier
                item.set()
                continue
            name, event, received = item
            start = clock()
            emit(name, event)
            self.metrics._dispatched(name, start - received, clock() - start)
            if self._subscribers:
                with self._lock:
                    subscribers = list(self._subscribers)
                for sub in subscribers:
                    sub._push(event)
        else:
            return False
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for sub in subscribers:
            sub._push(_END)
        self._closed.set()
        return True
