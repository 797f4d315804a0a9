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

python-socketio runs the transport. Its client threads are started through
this connection, so they are named ``voxsync-aiola-<n>-...`` and joined by
``close()``; its per-message handler threads are replaced by inline
decoding on the reader thread (events then go to voxsync's single ordered
dispatcher). Its own reconnection is off: voxsync's explicit policy
(``reconnection_attempts``, ``reconnection_delay``) takes over.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import threading
import time
import uuid
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
)
from urllib.parse import urlencode

import engineio
import numpy as np
import socketio

from voxsync.aiola._rest import AiolaAuthenticationError
from voxsync.aiola.types import DEFAULT_WORKFLOW_ID, Structured
from voxsync.connection import Connection
from voxsync.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
    ServerError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import Event, Message, Reconnected, Reconnecting, Transcript, Translation
from voxsync.format import AudioFormat
from voxsync.redact import RedactingFilter, redact

__all__ = ["NAMESPACE", "SOCKETIO_PATH", "AiolaConnection", "decode_event"]

log = logging.getLogger("voxsync.aiola")
_SIO_LOG = logging.getLogger("voxsync.aiola.socketio")
_EIO_LOG = logging.getLogger("voxsync.aiola.engineio")


class _TransportLogFilter(RedactingFilter):
    """Records of python-socketio / python-engineio as voxsync logs them.

    Their messages can contain URLs with the token in the query: redacted.
    Their warnings describe transport states that voxsync reports itself
    (``reconnecting``, ``error`` and ``disconnect`` events, exceptions), e.g.
    "WebSocket connection was closed" at every normal close: logged at INFO.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        if record.levelno == logging.WARNING:
            record.levelno, record.levelname = logging.INFO, "INFO"
            # the level check ran before the demotion: redo it for INFO
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


for _logger in (_SIO_LOG, _EIO_LOG):
    _logger.addFilter(_TransportLogFilter())

#: engine.io's message for a refused handshake ("Unexpected status code 401 ...")
_AUTH_STATUS = re.compile(r"status code (401|403)\b")

#: packets allowed to wait in engine.io's (unbounded) send queue
_EIO_BACKLOG = 8

SOCKETIO_PATH = "/api/voice-streaming/socket.io"
NAMESPACE = "/events"
AUDIO_FORMAT = AudioFormat(16000, 1, "pcm_s16le")

# seconds close() waits for each python-socketio thread
_JOIN_TIMEOUT = 2.0

# RMS level (16-bit scale) from which audio counts as speech for finish()
_SPEECH_RMS = 300.0

# CONNECT_ERROR codes that mean "these credentials will not do" (no code: the same)
_AUTH_CODES = frozenset({"UNAUTHORIZED", "FORBIDDEN", "INVALID_TOKEN", "TOKEN_EXPIRED"})

_THREAD_ROLES = {
    "_read_loop_websocket": "reader",
    "_read_loop_polling": "reader",
    "_write_loop": "sio-writer",
}


def decode_event(
    name: str,
    data: Any,
    *,
    language: Optional[str] = None,
    translation: Optional[Mapping[str, Any]] = None,
    index: int = 0,
) -> Union[Event, VoxsyncError]:
    """Turn one server event into a voxsync event or error (pure; no I/O).

    Parameters
    ----------
    name : str
        The Socket.IO event name.
    data : object
        Its first argument as python-socketio decoded it.
    language : str or None
        The stream's ``lang_code``, put on transcripts.
    translation : mapping or None
        The stream's ``tasks_config["TRANSLATION"]`` (source/target languages).
    index : int
        Utterance number, used as the transcript ``id``.

    Returns
    -------
    Event or VoxsyncError
        :class:`Transcript`, :class:`Translation`, :class:`Structured`,
        :class:`Message` (anything else, never dropped), :class:`ServerError`
        for ``error`` events, :class:`RemoteProtocolError` for a known event
        with a payload of the wrong shape.
    """
    raw: Mapping[str, Any] = data if isinstance(data, Mapping) else {"data": data}
    if name == "transcript":
        text = raw.get("transcript")
        if not isinstance(text, str):
            return RemoteProtocolError(
                "aiOla sent a transcript event without a text 'transcript' field: "
                f"{redact(repr(data))[:200]}"
            )
        return Transcript(text=text, is_final=True, language=language, id=str(index), raw=raw)
    if name == "translation":
        text = raw.get("translation")
        if not isinstance(text, str):
            return RemoteProtocolError(
                "aiOla sent a translation event without a text 'translation' field: "
                f"{redact(repr(data))[:200]}"
            )
        cfg = translation or {}
        return Translation(
            text=text,
            source_language=cfg.get("src_lang_code") or language,
            target_language=cfg.get("dst_lang_code"),
            id=str(index),
            raw=raw,
        )
    if name == "structured":
        results = raw.get("results")
        return Structured(results=results if isinstance(results, Mapping) else {}, raw=raw)
    if name == "error":
        message = raw.get("message")
        details = raw.get("details")
        text = str(message) if message is not None else "aiOla reported an error"
        if details:
            text = f"{text}: {details}"
        code = raw.get("code")
        return ServerError(redact(text), code=str(code) if code is not None else None, raw=raw)
    return Message(type=name, raw=raw)


class _EngineIOClient(engineio.Client):  # type: ignore[misc]
    """engineio client whose threads belong to the voxsync connection.

    * background threads are started by the connection (named, joined by close());
    * messages are handled on the reader thread, in order, not one thread each;
    * ``disconnect()`` from the reader thread does not try to join itself.
    """

    spawn: Callable[[str, Callable[[], None]], threading.Thread]
    state: str
    http: Any
    external_http: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._close_lock = threading.Lock()

    def start_background_task(
        self, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> threading.Thread:
        role = _THREAD_ROLES.get(getattr(target, "__name__", ""), "sio-task")
        return self.spawn(role, functools.partial(target, *args, **kwargs))

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)

    def disconnect(self, abort: bool = False, reason: Any = None) -> None:
        """Close with bounded waits, from any thread (the reader's included).

        engineio's own version joins the reader without a timeout (a
        long-poll can last 45 s when the server is gone), cannot run on the
        reader thread (which handles server-initiated closes here), and with
        ``abort`` may drain the writer's stop sentinel from the queue.
        """
        with self._close_lock:
            if self.state != "connected":
                # closing already, or closed: engineio would reset the queue
                # under a writer that may still need its stop sentinel
                return
            self._send_packet(engineio.packet.Packet(engineio.packet.CLOSE))
            self.queue.put(None)
            self.state = "disconnecting"
        current = threading.current_thread()
        self._trigger_event("disconnect", reason or self.reason.CLIENT_DISCONNECT, run_async=False)
        writer = self.write_loop_task
        if writer is not None and writer is not current:
            writer.join(_JOIN_TIMEOUT)
        if self.current_transport == "websocket" and self.ws is not None:
            try:
                self.ws.close(timeout=1.0)
            except Exception:
                log.debug("closing the websocket raised", exc_info=True)
        reader = self.read_loop_task
        if reader is not None and reader is not current:
            reader.join(_JOIN_TIMEOUT)
        self.state = "disconnected"
        with contextlib.suppress(ValueError):
            engineio.base_client.connected_clients.remove(self)
        http = self.http
        if http is not None and not self.external_http:
            with contextlib.suppress(Exception):
                http.close()


class _SocketIOClient(socketio.Client):  # type: ignore[misc]
    def _engineio_client_class(self) -> type:
        return _EngineIOClient


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
        :meth:`finish` then waits for the transcript of any speech sent
        since the last one, and until no event arrived for this long; both
        bounded by its timeout. Then it disconnects.
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
    Audio in flight when the transport broke may be lost.
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
        transports: Sequence[str] = ("polling", "websocket"),
        request_timeout: float = 15.0,
        finish_silence: float = 1.0,
        finish_quiet: float = 0.5,
        **options: Any,
    ) -> None:
        super().__init__(AUDIO_FORMAT, **options)
        if not isinstance(reconnection_attempts, int) or reconnection_attempts < 0:
            raise ConfigurationError("reconnection_attempts must be an int >= 0")
        if not reconnection_delay >= 0:
            raise ConfigurationError("reconnection_delay must be >= 0 seconds")
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
        self._transports = list(transports)
        self._request_timeout = request_timeout
        self._finish_silence = finish_silence
        self._finish_quiet = finish_quiet
        self._sio: Optional[_SocketIOClient] = None
        self._sio_lock = threading.Lock()
        self._generation = 0
        self._lost_generation = 0
        self._stop = threading.Event()  # set by _close_transport
        self._ready = threading.Event()  # transport usable (cleared while reconnecting)
        self._connect_timeout = 10.0
        self._connect_error: Optional[Any] = None
        self._last_event = time.monotonic()
        self._voiced_at = 0.0  # when audio with a speech-like level was last sent
        self._transcript_at = 0.0  # when the last transcript arrived
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
        query: Dict[str, str] = {
            "execution_id": self.execution_id,
            "flow_id": self.workflow_id,
            "time_zone": self.time_zone,
            "x-aiola-api-token": token,
        }
        if self.lang_code:
            query["lang_code"] = self.lang_code
        if self._keywords:
            query["keywords"] = json.dumps(self._keywords)
        if self.tasks_config:
            query["tasks_config"] = json.dumps(self.tasks_config)
        if self.vad_config:
            query["vad_config"] = json.dumps(self.vad_config)
        return f"{self._base_url}?{urlencode(query)}"

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
        sio = _SocketIOClient(
            reconnection=False,
            handle_sigint=False,
            request_timeout=max(0.5, min(self._request_timeout, timeout)),
            # loggers of our own: with logger=False python-socketio would
            # attach a stderr handler to its module loggers
            logger=_SIO_LOG,
            engineio_logger=_EIO_LOG,
        )
        sio.eio.spawn = functools.partial(self._spawn, generation)
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
        refusal = self._connect_error
        text = redact(str(exc), [token])
        if isinstance(refusal, Mapping):  # a Socket.IO CONNECT_ERROR from the service
            data = refusal
            message = redact(str(data.get("message", "connection refused")), [token])
            extra = data.get("data")
            code = extra.get("code") if isinstance(extra, Mapping) else data.get("code")
            if code == "MAX_CONCURRENCY_REACHED":
                return ConcurrencyLimitError(
                    f"aiOla refused the stream: {message}; close a session first",
                    code=code,
                    raw=data,
                )
            if code is not None and code not in _AUTH_CODES:
                return ServerError(
                    f"aiOla refused the stream: {message}",
                    code=str(code),
                    retryable=True,
                    raw=data,
                )
            return AiolaAuthenticationError(
                f"aiOla refused the stream: {message}; check the access token / API key",
                code=str(code) if code else None,
                raw=data,
            )
        if _AUTH_STATUS.search(text):
            return AuthenticationError(f"aiOla refused the credentials: {text}")
        if "timed out" in text.lower() or "timeout" in text.lower():
            return TimeoutError(f"aiOla did not accept the stream in time: {text}")
        return ConnectionError(f"cannot connect to aiOla at {redact(self._base_url)}: {text}")

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
            self._transcript_at = self._last_event
        tasks = self.tasks_config or {}
        translation = tasks.get("TRANSLATION")
        index = self._index
        if name == "transcript":
            self._index += 1
        event = decode_event(
            name,
            data,
            language=self.lang_code,
            translation=translation if isinstance(translation, Mapping) else None,
            index=index,
        )
        if isinstance(event, Message) and event.type in self.event_names:
            self._deliver(event, event.type)  # e.g. schema_values_updated
            return
        self._deliver(event)

    def _on_lost(self, generation: int, reason: Any) -> None:
        """The Socket.IO connection ended (reader thread of that connection)."""
        with self._sio_lock:
            if generation <= self._lost_generation:
                return  # this connection's loss is already being handled
            self._lost_generation = generation
        if self._stop.is_set() or self.state in ("idle", "connecting"):
            return
        self._ready.clear()
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

    def _await_ready(self, deadline: float) -> _SocketIOClient:
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

    def _emit_audio(self, chunk: bytes, callback: Optional[Callable[..., None]] = None) -> None:
        deadline = time.monotonic() + self._reconnect_bound()
        while True:
            sio = self._await_ready(deadline)
            # engine.io queues packets without a bound: keep its backlog small so
            # back-pressure lands in voxsync's send queue and its overflow policy
            while sio.eio.queue.qsize() > _EIO_BACKLOG:
                if self._stop.wait(0.005):
                    raise DisconnectedError("the connection is closed")
                if time.monotonic() >= deadline:
                    raise DisconnectedError("aiOla stopped accepting audio")
            try:
                sio.emit("binary_data", chunk, namespace=NAMESPACE, callback=callback)
                return
            except socketio.exceptions.BadNamespaceError:
                # the transport just went away: wait for the reconnection, send again
                self._ready.wait(0.05)
                if time.monotonic() >= deadline:
                    raise DisconnectedError(
                        "the aiOla transport did not come back in time"
                    ) from None

    def _write_chunk(self, chunk: bytes) -> None:
        # finish() needs to know whether speech was sent since the last transcript;
        # once it was, no chunk needs looking at until the next transcript
        if self._voiced_at <= self._transcript_at and len(chunk) >= 2:
            samples = np.frombuffer(chunk, dtype="<i2", count=len(chunk) // 2).astype(np.int64)
            if int(np.dot(samples, samples)) >= _SPEECH_RMS**2 * len(samples):
                self._voiced_at = time.monotonic()
        self._emit_audio(chunk)

    def _keepalive(self) -> None:
        if self._ready.is_set():
            self._emit_audio(b"")

    def _end_of_stream(self) -> None:
        """Append silence so the service ends the last utterance; wait for its results.

        aiOla has no end-of-audio message. The silence is sent asking for an
        acknowledgement: a server that gives one has then processed all the
        audio, and finish waits until no event came for ``finish_quiet``
        seconds after it. Without an acknowledgement, finish waits for the
        transcript of speech sent since the previous transcript (speech is
        told by signal level), then for a quiet period of at least 2 s.
        The wait has no bound of its own: when ``finish()``'s timeout runs out
        it closes the connection, which ends it, and raises ``TimeoutError``.
        """
        acked: List[float] = []
        if self._finish_silence > 0:
            silence = bytes(self.audio_format.nbytes(self._finish_silence))
            self._emit_audio(silence, callback=lambda *_: acked.append(time.monotonic()))
        sent = time.monotonic()
        fallback_quiet = max(2.0, 2 * self._finish_quiet)
        while not self._stop.is_set():
            now = time.monotonic()
            last = max(self._last_event, sent)
            if acked:
                until = max(last, acked[0]) + self._finish_quiet
            elif self._voiced_at > self._transcript_at:
                until = now + 0.05  # speech not transcribed yet: keep waiting
            else:
                until = last + fallback_quiet
            if now >= until:
                break
            self._stop.wait(until - now)
        if not self._stop.is_set():
            self._stream_ended()

    @staticmethod
    def _safe_disconnect(sio: socketio.Client) -> None:
        try:
            sio.disconnect()
        except Exception:
            log.debug("socket.io disconnect raised", exc_info=True)
        eio = sio.eio
        if eio.state != "disconnected":  # e.g. a failed handshake left it half open
            try:
                eio.disconnect(abort=True)
            except Exception:
                log.debug("engine.io disconnect raised", exc_info=True)

    def _close_transport(self) -> None:
        self._stop.set()
        self._ready.clear()
        with self._sio_lock:
            sio, self._sio = self._sio, None
        if sio is not None:
            self._safe_disconnect(sio)
