"""aiOla streaming over Socket.IO: :class:`AiolaConnection`.

Wire protocol (Socket.IO v5 over Engine.IO v4):

* path ``/api/voice-streaming/socket.io``, namespace ``/events``;
* query ``execution_id``, ``flow_id``, ``time_zone``, ``x-aiola-api-token``
  and optionally ``lang_code``, ``keywords``, ``tasks_config``,
  ``vad_config`` (JSON-encoded); header ``Authorization: Bearer <token>``;
* client -> server: ``binary_data`` (raw 16 kHz mono s16le),
  ``set_keywords`` ({spoken: written}), ``set_schema_values`` (with ack);
* server -> client: ``transcript {"transcript"}``, ``translation
  {"translation"}``, ``structured {"results"}``, ``error {"message",
  "details"}``; a namespace CONNECT_ERROR refuses the stream.

python-socketio runs the transport. Its one thread, python-engineio's
reader, is started through this connection, so it is named
``voxsync-aiola-<n>-reader`` and joined by ``close()``; its per-message
handler threads are replaced by inline decoding on the reader thread (events
then go to voxsync's single ordered dispatcher). On the WebSocket, packets
are written by the thread that sends them (audio by the connection's
writer, pongs by the reader) instead of by python-engineio's writer thread;
while the transport long-polls (no WebSocket upgrade) python-engineio's
writer thread ``voxsync-aiola-<n>-sio-writer`` posts them
(:mod:`voxsync.transport.socketio`). Its own reconnection is off: voxsync's
explicit policy (``reconnection_attempts``, ``reconnection_delay``) takes
over.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import threading
import time
import uuid
from typing import (
    Any,
    Callable,
    ClassVar,
    Deque,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import socketio

from voxsync.aiola.protocol import (
    CHUNK_BYTES,
    NAMESPACE,
    SOCKETIO_PATH,
    SpeechTracker,
    decode_event,
    refusal_error,
    stream_url,
)
from voxsync.aiola.types import DEFAULT_WORKFLOW_ID
from voxsync.connection import Connection
from voxsync.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import Reconnected, Reconnecting, StreamWarning, UnknownEvent
from voxsync.format import AudioFormat
from voxsync.redact import redact
from voxsync.transport.socketio import SocketIOClient, TransportLogFilter, safe_disconnect

__all__ = ["NAMESPACE", "SOCKETIO_PATH", "AiolaConnection", "decode_event"]

log = logging.getLogger("voxsync.aiola")
_SIO_LOG = logging.getLogger("voxsync.aiola.socketio")
_EIO_LOG = logging.getLogger("voxsync.aiola.engineio")


for _logger in (_SIO_LOG, _EIO_LOG):
    _logger.addFilter(TransportLogFilter())

#: packets allowed to wait in engine.io's (unbounded) send queue
_EIO_BACKLOG = 8

#: seconds between two looks at what finish() still waits for
_FINISH_POLL = 0.02

#: audio packets sent without any acknowledgement after which a server is
#: taken not to acknowledge audio (audio in flight at a reset is then not tracked)
ACK_PROBE = 64

#: Audio codecs the streaming service takes (``send()`` takes this format).
AUDIO_CODECS: tuple[str, ...] = ("pcm_s16le",)
#: Codec -> the :class:`AudioFormat` of ``send()``: 16 kHz mono 16-bit PCM.
AUDIO_FORMATS: Dict[str, AudioFormat] = {"pcm_s16le": AudioFormat(16000, 1, "pcm_s16le")}


class _InFlight:
    """Audio handed to one Socket.IO connection and not acknowledged by the service yet.

    Every ``binary_data`` asks for an acknowledgement; what is still
    unacknowledged when that connection's transport breaks was lost with
    it. A server that acknowledges nothing is detected after
    :data:`ACK_PROBE` packets: then nothing more is asked or tracked.
    Called from the writer (:meth:`add`), the reader (:meth:`acked`) and the
    thread that sees the loss (:meth:`lost`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._pending: Dict[int, int] = {}  # packet number -> bytes
        self._seq = 0
        self._asked = 0
        self._acked_any = False
        self._broken = 0  # the newest connection reported lost

    def add(self, generation: int, nbytes: int) -> Optional[int]:
        """Audio of ``nbytes`` goes to connection ``generation``; its number.

        None: do not ask for an acknowledgement (this server gives none).
        -1: that connection is already lost; send it on the next one.
        """
        with self._lock:
            if generation <= self._broken:
                return -1
            if generation != self._generation:  # a new connection: its server may differ
                self._generation = generation
                self._pending.clear()
                self._asked = 0
                self._acked_any = False
            if not self._acked_any and self._asked >= ACK_PROBE:
                self._pending.clear()  # this server acknowledges no audio
                return None
            self._seq += 1
            self._asked += 1
            self._pending[self._seq] = nbytes
            return self._seq

    def acked(self, generation: int, seq: int) -> None:
        """The service acknowledged packet ``seq`` (reader thread)."""
        with self._lock:
            if generation == self._generation:
                self._acked_any = True
                self._pending.pop(seq, None)

    def cancel(self, generation: int, seq: int) -> None:
        """Packet ``seq`` was not handed to the transport after all."""
        with self._lock:
            if generation == self._generation:
                self._pending.pop(seq, None)

    def lost(self, generation: int) -> Tuple[int, int]:
        """Connection ``generation`` broke: (packets, bytes) never acknowledged, forgotten."""
        with self._lock:
            self._broken = max(self._broken, generation)
            if generation != self._generation:
                return 0, 0
            lost = (len(self._pending), sum(self._pending.values()))
            self._pending.clear()
            return lost


class AiolaConnection(Connection):
    """A live aiOla speech-to-text stream (create it with ``client.stt.stream(...)``).

    Follows the voxsync connection contract (:class:`voxsync.connection.Connection`):
    ``on()`` / ``connect()`` / ``send()`` / ``finish()`` / ``disconnect()`` /
    ``wait()``. Audio: 16 kHz mono 16-bit PCM (:attr:`audio_format`).

    Events: ``transcript`` (:class:`~voxsync.events.Transcript`, reads as
    ``{"transcript": ...}``), ``translation``, ``structured``,
    ``schema_values_updated`` and unknown ones as ``message``; ``error``
    (server ``error`` events are :class:`~voxsync.errors.ServerError`, the
    stream goes on); ``connect``, ``disconnect``, ``reconnecting``,
    ``reconnected``, ``warning``. Handlers run on the connection's
    dispatcher thread, one at a time, in arrival order; one that raises is
    logged and re-emitted as ``error``.

    Parameters
    ----------
    token : callable or str
        The access token, or a function returning a fresh one (called at
        every connect and reconnect).
    base_url : str
        API host, e.g. ``https://apis.aiola.ai`` or an emulator's ``base_url``.
    workflow_id, execution_id, lang_code, time_zone, keywords, tasks_config, vad_config
        Stream parameters (see :meth:`voxsync.aiola.SttClient.stream`).
    reconnection_attempts : int
        Attempts after the transport is lost (0: none; default 3, like aiOla's SDK).
    reconnection_delay : float
        Seconds before each attempt (default 1).
    max_reconnections, reconnection_window : int, float
        At most ``max_reconnections`` successful reconnections within any
        ``reconnection_window`` seconds (default 5 in 60 s): a transport that
        keeps dropping right after each reconnection ends the connection with
        a :class:`~voxsync.errors.DisconnectedError` instead of looping.
    transports : sequence of str
        Engine.IO transports, in order. The default ``("polling",
        "websocket")`` is what aiOla's SDKs use (long-polling handshake, then
        upgrade); ``("websocket",)`` skips the polling round trip.
    request_timeout : float
        Seconds for each HTTP request of the Engine.IO transport.
    finish_silence : float
        Seconds of silence :meth:`finish` appends so the service's voice
        activity detection ends the last utterance (aiOla has no
        end-of-audio message).
    finish_quiet : float
        :meth:`finish` then waits, bounded by its timeout, until every
        utterance sent has its transcript, and until no event arrived for
        this long (default 0.5 s; it returns at once when the last event is
        older). Then it disconnects.
    disconnect_timeout : float
        How long :meth:`disconnect` waits for the results of what was sent
        (default 2 s; see :meth:`voxsync.connection.Connection.disconnect`).
        ``close()`` never waits.
    **options
        :class:`~voxsync.connection.Connection` options: ``queue_size``,
        ``overflow``, ``send_timeout``, ``finish_timeout``,
        ``keepalive_interval`` (sends an empty ``binary_data``, as aiOla's
        web demo does every 30 s), ``name``.

    Notes
    -----
    Reconnection: when the transport fails (not when the server closes the
    stream on purpose), the connection emits ``reconnecting`` before each
    attempt and ``reconnected`` on success; audio sent meanwhile waits in the
    send queue (or follows the ``overflow`` policy) and goes out after the
    reconnection. A refused token ends the attempts at once. When every
    attempt failed the connection closes with a
    :class:`~voxsync.errors.DisconnectedError` that ``wait()`` raises.
    Audio handed to a transport that then broke, and not acknowledged by
    the service, is reported: a ``warning`` event with code
    ``"audio_dropped"`` (``raw["bytes"]`` says how much) and counted in
    ``metrics.bytes_dropped`` instead of ``bytes_sent``.

    ``disconnect()`` right after the last chunk, as aiOla's examples do,
    still delivers the transcript of the speech just sent: it finishes the
    stream for at most ``disconnect_timeout`` seconds. ``close()`` is
    immediate.
    """

    provider = "aiola"
    event_names: ClassVar[FrozenSet[str]] = Connection.event_names | {
        "transcript",
        "translation",
        "structured",
        "schema_values_updated",
    }

    def __init__(
        self,
        token: Union[str, Callable[[], str]],
        *,
        base_url: str,
        workflow_id: str = DEFAULT_WORKFLOW_ID,
        execution_id: Optional[str] = None,
        lang_code: Optional[str] = None,
        time_zone: Optional[str] = None,
        keywords: Optional[Mapping[str, str]] = None,
        tasks_config: Optional[Mapping[str, Any]] = None,
        vad_config: Optional[Mapping[str, Any]] = None,
        reconnection_attempts: int = 3,
        reconnection_delay: float = 1.0,
        max_reconnections: int = 5,
        reconnection_window: float = 60.0,
        transports: Sequence[str] = ("polling", "websocket"),
        request_timeout: float = 15.0,
        finish_silence: float = 1.0,
        finish_quiet: float = 0.5,
        disconnect_timeout: float = 2.0,
        **options: Any,
    ) -> None:
        super().__init__(AUDIO_FORMATS[AUDIO_CODECS[0]], **options)
        if not disconnect_timeout > 0:
            raise ConfigurationError("disconnect_timeout must be > 0 seconds")
        self.disconnect_timeout = disconnect_timeout
        if not isinstance(reconnection_attempts, int) or reconnection_attempts < 0:
            raise ConfigurationError("reconnection_attempts must be an int >= 0")
        if not reconnection_delay >= 0:
            raise ConfigurationError("reconnection_delay must be >= 0 seconds")
        if not isinstance(max_reconnections, int) or max_reconnections < 0:
            raise ConfigurationError("max_reconnections must be an int >= 0")
        if not reconnection_window > 0:
            raise ConfigurationError("reconnection_window must be > 0 seconds")
        bad = [t for t in transports if t not in ("polling", "websocket")]
        if bad or not transports:
            raise ConfigurationError(
                "transports must be a non-empty sequence of 'polling' and 'websocket'"
            )
        self._token_source: Callable[[], str] = token if callable(token) else (lambda: token)
        self._base_url = base_url.rstrip("/")
        self.workflow_id = workflow_id
        self.execution_id = execution_id or str(uuid.uuid4())
        self.lang_code = lang_code
        self.time_zone = time_zone or "UTC"
        self._keywords: Dict[str, str] = self._check_keywords(keywords) if keywords else {}
        self.tasks_config = dict(tasks_config) if tasks_config else None
        self.vad_config = dict(vad_config) if vad_config else None
        self.reconnection_attempts = reconnection_attempts
        self.reconnection_delay = reconnection_delay
        self.max_reconnections = max_reconnections
        self.reconnection_window = reconnection_window
        self._reconnected_at: Deque[float] = collections.deque()
        self._transports = list(transports)
        self._request_timeout = request_timeout
        self._finish_silence = finish_silence
        self._finish_quiet = finish_quiet
        self._sio: Optional[SocketIOClient] = None
        self._sio_lock = threading.Lock()
        self._generation = 0
        self._lost_generation = 0
        self._stop = threading.Event()  # set by _close_transport
        self._ready = threading.Event()  # transport usable (cleared while reconnecting)
        self._connect_timeout = 10.0
        self._connect_error: Optional[Any] = None
        self._last_event = time.monotonic()
        self._speech = SpeechTracker()
        self._in_flight = _InFlight()
        self._index = 0
        self._thread_seq = 0

    # ------------------------------------------------------------- public
    @property
    def keywords(self) -> Dict[str, str]:
        """The keywords (spoken -> written) currently in effect."""
        return dict(self._keywords)

    def set_keywords(self, keywords: Mapping[str, str]) -> None:
        """Replace the stream's keywords (spoken form -> written form).

        Before ``connect()`` they go into the connection query; once
        connected they are sent at once (``set_keywords`` event), and a
        reconnection sends them in its query. Audio already queued may be
        recognised with the old keywords. Safe from any thread.

        Raises
        ------
        ConfigurationError
            Not a mapping of strings to strings.
        DisconnectedError
            The connection is closed.
        """
        checked = self._check_keywords(keywords)
        self._keywords = checked
        if self.state in ("idle", "connecting"):
            return
        if self._stop.is_set():
            raise DisconnectedError("set_keywords() on a closed connection")
        sio = self._sio
        if sio is None or not self._ready.is_set():
            return  # reconnecting: the new connection's query carries them
        try:
            sio.emit("set_keywords", checked, namespace=NAMESPACE)
        except socketio.exceptions.BadNamespaceError:
            pass  # the transport just dropped: the reconnection's query carries them
        except socketio.exceptions.SocketIOError as exc:
            raise DisconnectedError(f"set_keywords() failed: {exc}") from exc

    def set_schema_values(
        self, values: Mapping[str, Sequence[Any]], timeout: float = 10.0
    ) -> Dict[str, Any]:
        """Send ``{"field.path": [values...]}`` and return the service's acknowledgement.

        Returns
        -------
        dict
            ``{"status": "ok"}`` or ``{"status": "error", ...}``.

        Raises
        ------
        ConfigurationError, LocalProtocolError, TimeoutError, DisconnectedError
        """
        if not isinstance(values, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (list, tuple)) for k, v in values.items()
        ):
            raise ConfigurationError("schema values must map field paths (str) to lists of values")
        if self.state != "open":
            raise LocalProtocolError("set_schema_values() needs an open connection")
        sio = self._sio
        if sio is None:
            raise DisconnectedError("set_schema_values() on a closed connection")
        payload = json.dumps({k: list(v) for k, v in values.items()}).encode("utf-8")
        try:
            answer = sio.call("set_schema_values", payload, namespace=NAMESPACE, timeout=timeout)
        except socketio.exceptions.TimeoutError as exc:
            raise TimeoutError(
                f"no acknowledgement of set_schema_values within {timeout} s"
            ) from exc
        except socketio.exceptions.SocketIOError as exc:
            raise DisconnectedError(f"set_schema_values() failed: {exc}") from exc
        return dict(answer) if isinstance(answer, Mapping) else {"status": "ok", "data": answer}

    @staticmethod
    def _check_keywords(keywords: Any) -> Dict[str, str]:
        if not isinstance(keywords, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in keywords.items()
        ):
            raise ConfigurationError(
                'keywords must map spoken forms to written forms, e.g. {"k eight s": "Kubernetes"}'
            )
        return dict(keywords)

    # ------------------------------------------------------------ transport
    def _url(self, token: str) -> str:
        return stream_url(
            self._base_url,
            token,
            execution_id=self.execution_id,
            workflow_id=self.workflow_id,
            time_zone=self.time_zone,
            lang_code=self.lang_code,
            keywords=self._keywords,
            tasks_config=self.tasks_config,
            vad_config=self.vad_config,
        )

    def _spawn(self, generation: int, role: str, target: Callable[[], None]) -> threading.Thread:
        key = role if generation <= 1 else f"{role}-{generation}"
        with self._lock:
            if key in self._threads:
                self._thread_seq += 1
                key = f"{key}-{self._thread_seq}"
        return self._start_thread(key, target)

    def _open(self, timeout: float) -> None:
        self._connect_timeout = timeout
        self._stop.clear()
        self._sio_connect(timeout)
        if self._lost_generation >= self._generation:
            raise ConnectionError("the aiOla connection was lost right after it opened")
        self._ready.set()

    def _sio_connect(self, timeout: float) -> None:
        """Open a new Socket.IO client; raise a voxsync error on failure."""
        deadline = time.monotonic() + timeout
        token = self._token_source()
        with self._sio_lock:
            self._generation += 1
            generation = self._generation
        sio = SocketIOClient(
            reconnection=False,
            handle_sigint=False,
            request_timeout=max(0.5, min(self._request_timeout, timeout)),
            # loggers of our own: with logger=False python-socketio would
            # attach a stderr handler to its module loggers
            logger=_SIO_LOG,
            engineio_logger=_EIO_LOG,
        )
        sio.eio.spawn = functools.partial(self._spawn, generation)
        sio.voxsync_generation = generation
        sio.on_malformed = functools.partial(self._on_malformed, generation)
        sio.on("connect", self._make_handler(generation, "connect"), namespace=NAMESPACE)
        sio.on(
            "connect_error", self._make_handler(generation, "connect_error"), namespace=NAMESPACE
        )
        sio.on("disconnect", self._make_handler(generation, "disconnect"), namespace=NAMESPACE)
        sio.on("*", self._make_handler(generation, "*"), namespace=NAMESPACE)
        self._connect_error = None
        try:
            sio.connect(
                self._url(token),
                headers={"Authorization": f"Bearer {token}"},
                transports=self._transports,
                namespaces=[NAMESPACE],
                socketio_path=SOCKETIO_PATH,
                wait=True,
                wait_timeout=max(0.1, deadline - time.monotonic()),
            )
        # not chained (from None): python-socketio's exceptions hold the request
        # URL, whose query carries the token; the redacted text is in the message
        except socketio.exceptions.ConnectionError as exc:
            self._safe_disconnect(sio)
            raise self._connect_failure(exc, token) from None
        except Exception as exc:
            self._safe_disconnect(sio)
            raise ConnectionError(
                f"cannot connect to aiOla: {type(exc).__name__}: {redact(exc, [token])}"
            ) from None
        with self._sio_lock:
            stale = self._stop.is_set()
            previous = None
            if not stale:
                previous, self._sio = self._sio, sio
        if previous is not None:
            self._safe_disconnect(previous)
        if stale:
            self._safe_disconnect(sio)
            raise DisconnectedError("the connection was closed while connecting")

    def _connect_failure(self, exc: Exception, token: str) -> VoxsyncError:
        return refusal_error(
            self._connect_error, str(exc), base_url=self._base_url, secrets=(token,)
        )

    def _make_handler(self, generation: int, kind: str) -> Callable[..., Any]:
        def handler(*args: Any) -> Any:
            if generation != self._generation:
                return None
            if kind == "connect":
                return None
            if kind == "connect_error":
                self._connect_error = args[0] if args else None
                return None
            if kind == "disconnect":
                self._on_lost(generation, args[0] if args else None)
                return None
            if not args:
                return None
            self._on_event(args[0], args[1] if len(args) > 1 else None)
            return None

        return handler

    def _on_event(self, name: str, data: Any) -> None:
        self._last_event = time.monotonic()
        if name == "transcript":
            self._speech.transcript()
        tasks = self.tasks_config or {}
        translation = tasks.get("TRANSLATION")
        if name == "transcript":
            index = self._index
            self._index += 1
        else:  # a translation follows the transcript it translates: same id
            index = max(self._index - 1, 0)
        event = decode_event(
            name,
            data,
            language=self.lang_code,
            translation=translation if isinstance(translation, Mapping) else None,
            index=index,
        )
        if isinstance(event, UnknownEvent) and event.type in self.event_names:
            self._deliver(event, event.type)  # e.g. schema_values_updated
            return
        self._deliver(event)

    def _on_malformed(self, generation: int, data: Any, exc: Exception) -> None:
        """A packet python-socketio could not decode (reader thread): reported, not dropped."""
        if generation != self._generation:
            return
        shown = redact(repr(data))
        if len(shown) > 120:
            shown = shown[:120] + "..."
        self._deliver(
            RemoteProtocolError(f"aiOla sent a Socket.IO packet that cannot be decoded: {shown}")
        )

    def _on_lost(self, generation: int, reason: Any) -> None:
        """The Socket.IO connection ended (reader thread of that connection)."""
        with self._sio_lock:
            if generation <= self._lost_generation:
                return  # this connection's loss is already being handled
            self._lost_generation = generation
        if self._stop.is_set() or self.state in ("idle", "connecting"):
            return
        self._ready.clear()
        self._report_lost_audio(generation)
        # the service's session is gone, and with it the utterances it had not
        # transcribed yet: finish() must not wait for them
        self._speech.forget()
        self._spawn(generation, "reconnect", functools.partial(self._recover, reason))

    def _recover(self, reason: Any) -> None:
        with self._sio_lock:
            old, self._sio = self._sio, None
        if old is not None:
            self._safe_disconnect(old)
        if self._stop.is_set():
            return
        if reason == socketio.Client.reason.SERVER_DISCONNECT:
            self._fail(DisconnectedError("the aiOla service closed the stream"))
            return
        cause: VoxsyncError = ConnectionError(f"aiOla transport lost ({reason})")
        log.info("%s: transport lost (%s)", self.name, reason)
        now = time.monotonic()
        recent = self._reconnected_at
        while recent and now - recent[0] > self.reconnection_window:
            recent.popleft()
        if len(recent) >= self.max_reconnections:
            err = DisconnectedError(
                f"the aiOla transport dropped again after {len(recent)} reconnection(s) "
                f"within {self.reconnection_window:g} s; giving up"
            )
            err.__cause__ = cause
            self._fail(err)
            return
        for attempt in range(1, self.reconnection_attempts + 1):
            self._deliver(Reconnecting(attempt=attempt, error=cause))
            if self._stop.wait(self.reconnection_delay):
                return
            try:
                self._sio_connect(self._connect_timeout)
            except AuthenticationError as exc:
                self._fail(exc)
                return
            except VoxsyncError as exc:
                log.info("%s: reconnection attempt %d failed: %s", self.name, attempt, exc)
                cause = exc
                continue
            self.metrics.count_reconnect()
            self._reconnected_at.append(time.monotonic())
            self._deliver(Reconnected(attempts=attempt))
            self._ready.set()
            return
        if self._stop.is_set():
            return
        err = DisconnectedError(
            f"lost the aiOla connection and {self.reconnection_attempts} reconnection "
            f"attempt(s) failed: {cause}"
        )
        err.__cause__ = cause
        self._fail(err)

    def _await_ready(self, deadline: float) -> SocketIOClient:
        while True:
            if self._stop.is_set():
                raise DisconnectedError("the connection is closed")
            sio = self._sio
            if self._ready.is_set() and sio is not None:
                return sio
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DisconnectedError("the aiOla transport did not come back in time")
            self._ready.wait(min(0.1, remaining))

    def _reconnect_bound(self) -> float:
        per_attempt = self.reconnection_delay + self._connect_timeout + 1.0
        return per_attempt * max(1, self.reconnection_attempts) + 5.0

    def _emit_audio(
        self,
        chunk: bytes,
        callback: Optional[Callable[..., None]] = None,
        track: bool = False,
    ) -> None:
        """Hand ``chunk`` to the transport (waiting for a reconnection, bounded).

        With ``track``, it is recorded as in flight until the service
        acknowledges it (see :class:`_InFlight`).
        """
        deadline = time.monotonic() + self._reconnect_bound()
        while True:
            sio = self._await_ready(deadline)
            # engine.io queues packets without a bound: keep its backlog small so
            # back-pressure lands in voxsync's send queue and its overflow policy
            room = sio.eio.queue.wait_for_room(
                _EIO_BACKLOG, max(0.0, deadline - time.monotonic()), self._stop.is_set
            )
            if not room:
                if self._stop.is_set():
                    raise DisconnectedError("the connection is closed")
                if time.monotonic() >= deadline:
                    raise DisconnectedError("aiOla stopped accepting audio")
                continue  # woken by a transport change: look again
            generation: int = getattr(sio, "voxsync_generation", 0)
            seq = self._in_flight.add(generation, len(chunk)) if track else None
            if seq == -1:  # that transport just broke: wait for the reconnection
                self._ready.wait(0.05)
                if time.monotonic() >= deadline:
                    raise DisconnectedError("the aiOla transport did not come back in time")
                continue
            on_ack = callback
            if seq is not None:
                on_ack = functools.partial(self._acked, generation, seq, callback)
            try:
                sio.emit("binary_data", chunk, namespace=NAMESPACE, callback=on_ack)
                return
            except socketio.exceptions.BadNamespaceError:
                if seq is not None:
                    self._in_flight.cancel(generation, seq)
                # the transport just went away: wait for the reconnection, send again
                self._ready.wait(0.05)
                if time.monotonic() >= deadline:
                    raise DisconnectedError(
                        "the aiOla transport did not come back in time"
                    ) from None

    def _acked(
        self, generation: int, seq: int, callback: Optional[Callable[..., None]], *args: Any
    ) -> None:
        self._in_flight.acked(generation, seq)
        if callback is not None:
            callback(*args)

    def _report_lost_audio(self, generation: int) -> None:
        """Audio the broken connection ``generation`` never acknowledged: counted and reported."""
        packets, nbytes = self._in_flight.lost(generation)
        if not nbytes:
            return
        metrics = self.metrics
        with metrics._lock:  # it was counted as sent: it is dropped instead
            metrics.bytes_sent -= nbytes
        count = metrics._dropped(nbytes)
        seconds = self.audio_format.duration(nbytes)
        self._deliver(
            StreamWarning(
                code="audio_dropped",
                message=(
                    f"{nbytes} bytes ({seconds:.2f} s) of audio in flight when the aiOla "
                    "transport broke were not acknowledged and are lost"
                ),
                count=count,
                raw={"bytes": nbytes, "chunks": packets, "cause": "transport reset"},
            )
        )

    def _write_chunk(self, chunk: bytes) -> None:
        # a huge send() goes out in pieces of the size the service expects
        for start in range(0, len(chunk), CHUNK_BYTES):
            piece = chunk[start : start + CHUNK_BYTES]
            # finish() needs to know which utterances are not transcribed yet
            self._speech.audio(piece)
            self._emit_audio(piece, track=True)

    def _keepalive(self) -> None:
        if self._ready.is_set():
            self._emit_audio(b"")

    def _end_of_stream(self) -> None:
        """Append silence so the service ends the last utterance; wait for its results.

        aiOla has no end-of-audio message. The silence is sent asking for an
        acknowledgement: a server that gives one has then received all the
        audio. finish then waits until every utterance sent has its
        transcript (:class:`~voxsync.aiola.protocol.SpeechTracker`; results
        may come well after the acknowledgement), and returns once the
        acknowledgement came and no event arrived for ``finish_quiet``
        seconds (at once when the last event is older). Without an
        acknowledgement the quiet period is at least 2 s. The wait has no
        bound of its own: when ``finish()``'s timeout runs out it closes the
        connection, which ends it, and raises ``TimeoutError``.
        """
        acked: List[float] = []
        if self._finish_silence > 0:
            silence = bytes(self.audio_format.nbytes(self._finish_silence))
            self._emit_audio(silence, callback=lambda *_: acked.append(time.monotonic()))
        sent = time.monotonic()
        # without an acknowledgement, results of audio still on its way may
        # come later: wait for a longer quiet period
        fallback_quiet = max(2.0, 2 * self._finish_quiet)
        while not self._stop.is_set():
            now = time.monotonic()
            if self._speech.pending:
                until = now + 1.0  # an utterance without its transcript: keep waiting
            elif acked:
                until = max(acked[0], self._last_event + self._finish_quiet)
            else:
                until = max(self._last_event, sent) + fallback_quiet
            if now >= until:
                break
            # look again soon: a transcript or the acknowledgement may change the answer
            self._stop.wait(min(until - now, _FINISH_POLL))
        if not self._stop.is_set():
            self._stream_ended()

    @staticmethod
    def _safe_disconnect(sio: socketio.Client) -> None:
        safe_disconnect(sio)

    def _close_transport(self) -> None:
        self._stop.set()
        self._ready.clear()
        with self._sio_lock:
            sio, self._sio = self._sio, None
        if sio is not None:
            self._safe_disconnect(sio)
