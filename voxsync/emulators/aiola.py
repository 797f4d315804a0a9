"""A local aiOla server: auth REST, file transcription REST and Socket.IO streaming.

One base URL serves every path of the real services, so a client only swaps
hosts:

=========================================  ==========================================
``POST /voip-auth/apiKey2Token``           API key -> temporary token
``POST /voip-auth/session``                temporary token -> access token (JWT)
``DELETE /voip-auth/session``              frees the session's concurrency slot
``POST /api/speech-to-text/file``          multipart file transcription
``/api/voice-streaming/socket.io``         Socket.IO v5, namespace ``/events``
=========================================  ==========================================

Streaming: the namespace connect handler checks the access token (the
``Authorization: Bearer`` header, or the ``x-aiola-api-token`` query
parameter) and refuses with a Socket.IO CONNECT_ERROR. ``binary_data``
(16 kHz mono s16le) goes to the recognition engine; each final utterance is
emitted as ``transcript {"transcript": text}``, with the session's keywords
(spoken -> written) applied, followed by ``translation`` when
``tasks_config`` asks for ``TRANSLATION`` (an *emulated* translation: the
text prefixed with ``[<target language>]``) and ``structured`` for
``FORM_FILLING`` / ``ENTITY_DETECTION_FROM_LIST``. Malformed audio (not
bytes, odd byte count) gets an ``error {"message", "details"}`` event.

Faults (:class:`AiolaFaults`) are attributes that tests may change while the
server runs: ``emu.faults.drop_after_chunks = 20``.

Example
-------
::

    from voxsync.emulators.aiola import AiolaEmulator
    from voxsync.emulators.engine import make_engine

    with AiolaEmulator(engine=make_engine("scripted", every_bytes=32000,
                                          transcripts=["hello"])) as emu:
        client = AiolaClient(api_key="any", base_url=emu.base_url,
                             auth_base_url=emu.base_url)
        ...

The server is python-socketio's in threading mode behind werkzeug's
threaded WSGI server (which lets simple-websocket take over the socket for
the WebSocket transport). Every thread it starts is named
``voxsync-emulator-aiola-...`` and joined by :meth:`AiolaEmulator.stop`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
import wave
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union
from urllib.parse import parse_qs

import engineio
import simple_websocket  # type: ignore[import-untyped]
import socketio
from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from voxsync.emulators._cli import (
    add_server_arguments,
    engine_options_from_args,
    serve_until_stopped,
)
from voxsync.emulators.base import EmulatorServer
from voxsync.redact import RedactingFilter, redact

__all__ = [
    "NAMESPACE",
    "SOCKETIO_PATH",
    "AiolaEmulator",
    "AiolaFaults",
    "add_cli_arguments",
    "run_cli",
]

log = logging.getLogger(__name__)
# the server libraries' loggers: their messages can carry tokens (query strings)
_SIO_LOG = logging.getLogger(f"{__name__}.socketio")
_EIO_LOG = logging.getLogger(f"{__name__}.engineio")
for _logger in (_SIO_LOG, _EIO_LOG):
    _logger.addFilter(RedactingFilter())


def _best_effort(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Call ``fn`` for a teardown step whose failure changes nothing; log it at debug."""
    try:
        fn(*args, **kwargs)
    except Exception:
        log.debug("aiOla emulator: %s failed", what, exc_info=True)


#: Engine.IO path of the streaming service (no leading slash, as python-socketio wants it).
SOCKETIO_PATH = "api/voice-streaming/socket.io"
#: Socket.IO namespace of the streaming events.
NAMESPACE = "/events"
SAMPLE_RATE = 16000

_STOP = object()
_CUT = object()  # outbox marker: cut the transport once the acknowledgements queued went out
_RAW = "\x00raw"  # outbox marker: the payload is a raw engine.io message
_HISTORY = 1000  # entries kept in the connections / keyword_updates / rest_requests lists
_JOIN_TIMEOUT = 5.0


@dataclasses.dataclass
class AiolaFaults:
    """Limits and faults of an :class:`AiolaEmulator`; change them at any time.

    Attributes
    ----------
    max_sessions : int or None
        Concurrent auth sessions allowed (created by ``POST /voip-auth/session``,
        freed by ``DELETE`` or expiry). Beyond it: HTTP 409 with code
        ``MAX_CONCURRENCY_REACHED``.
    idle_timeout : float or None
        Seconds without any ``binary_data`` after which the server disconnects
        the stream (a Socket.IO namespace disconnect).
    drop_after_chunks : int or None
        Abruptly close the transport (no Socket.IO goodbye, as a network
        failure would) after this many audio chunks on one connection. Those
        chunks are processed and acknowledged; chunks arriving after them
        are neither (the transport is cut once the acknowledgements left).
    drop_after_seconds : float or None
        The same, this many seconds after the connection was accepted.
    drop_times : int
        How many connections the two drop faults apply to (then they stop).
    event_delay : float
        Seconds to hold every server event before emitting it.
    result_delay : float
        Seconds between the audio that ends an utterance and its results
        (``transcript``, ``translation``, ``structured``), added to
        ``event_delay``: a real recognizer's latency. The audio itself is
        acknowledged at once.
    refuse_auth : bool
        Refuse every credential: 401 from the REST endpoints, CONNECT_ERROR
        on streaming connects.
    malformed_event : bool
        Emit one ``transcript`` event whose payload is not an object right
        after each accepted connection.
    malformed_packet : bool
        Send one Socket.IO packet that cannot be decoded (truncated JSON)
        right after each accepted connection.
    unavailable : bool
        Refuse new streaming connections with a CONNECT_ERROR of code
        ``SERVICE_UNAVAILABLE`` (as an overloaded service would).
    rest_failures : int
        Answer this many of the next REST requests with HTTP 503 (counts down).
    """

    max_sessions: Optional[int] = None
    idle_timeout: Optional[float] = None
    drop_after_chunks: Optional[int] = None
    drop_after_seconds: Optional[float] = None
    drop_times: int = 1
    event_delay: float = 0.0
    result_delay: float = 0.0
    refuse_auth: bool = False
    malformed_event: bool = False
    malformed_packet: bool = False
    unavailable: bool = False
    rest_failures: int = 0


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Tokens:
    """Issues and checks HS256 JWTs signed with a per-emulator random key."""

    def __init__(self) -> None:
        self._key = os.urandom(32)

    def issue(self, claims: Mapping[str, Any], ttl: float) -> str:
        now = int(time.time())
        payload = dict(claims, iat=now, exp=now + int(ttl), jti=uuid.uuid4().hex)
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
        sig = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64url(sig)}"

    def check(self, token: str, kind: str) -> Dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3:
            raise _Refused(401, "INVALID_TOKEN", "Invalid token")
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            good = hmac.compare_digest(expected, _b64url_decode(parts[2]))
            claims: Dict[str, Any] = json.loads(_b64url_decode(parts[1]))
        except (ValueError, TypeError):
            raise _Refused(401, "INVALID_TOKEN", "Invalid token") from None
        if not good or claims.get("type") != kind:
            raise _Refused(401, "INVALID_TOKEN", "Invalid token")
        if claims.get("exp", 0) <= time.time():
            raise _Refused(401, "TOKEN_EXPIRED", "Token expired")
        return claims


class _WebSocket(SimpleWebSocketWSGI):  # type: ignore[misc]
    """engineio's simple-websocket adapter with named threads and drop support."""

    emulator: AiolaEmulator  # set on the per-emulator subclass

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Any:
        emu = self.emulator

        def thread_class(target: Callable[[], None]) -> threading.Thread:
            return emu.threads.new("ws", target)

        self.ws = simple_websocket.Server(environ, thread_class=thread_class, **self.server_args)
        # self.app is the engine.io socket's bound websocket handler
        eio_sid = getattr(getattr(self.app, "__self__", None), "sid", "")
        emu._register_ws(eio_sid, self.ws)
        try:
            self.app(self)
        finally:
            emu._unregister_ws(eio_sid)
            # the WebSocket is over: end the TCP connection too (werkzeug would
            # otherwise wait for another HTTP request on it)
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        # werkzeug: the socket now belongs to simple-websocket; end the request quietly
        raise ConnectionError()


def _engineio_class(emu: AiolaEmulator) -> Type[engineio.Server]:
    ws_class = type("_EmulatorWebSocket", (_WebSocket,), {"emulator": emu})

    class _EngineIOServer(engineio.Server):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._async: Dict[str, Any] = dict(self._async, websocket=ws_class)

        def start_background_task(
            self, target: Callable[..., Any], *args: Any, **kwargs: Any
        ) -> threading.Thread:
            return emu.threads.start("eio", target, *args, **kwargs)

        def sleep(self, seconds: float = 0) -> None:
            emu.stopping.wait(seconds)

    return _EngineIOServer


class _SocketIOServer(socketio.Server):  # type: ignore[misc]
    def __init__(self, emu: AiolaEmulator, **kwargs: Any) -> None:
        self._emu = emu
        super().__init__(**kwargs)

    def _engineio_server_class(self) -> Type[engineio.Server]:
        return _engineio_class(self._emu)


# ------------------------------------------------------------------ HTTP server
class _RequestHandler(WSGIRequestHandler):
    # request lines carry tokens in their query (x-aiola-api-token): redact
    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("http %s: %s", type, redact(message % args if args else message))

    def log_request(self, code: Union[int, str] = "-", size: Union[int, str] = "-") -> None:
        log.debug("http %s %s", redact(getattr(self, "requestline", "?")), code)


class _HTTPServer(ThreadedWSGIServer):
    emulator: AiolaEmulator

    def process_request(self, request: Any, client_address: Any) -> None:
        emu = self.emulator
        emu.track_socket(request)

        def run() -> None:
            try:
                self.process_request_thread(request, client_address)
            finally:
                emu.track_socket(request, open=False)

        emu.threads.start("http", run)

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("http %s: %s", type, redact(message % args if args else message))

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("http: error handling a request from %s", client_address, exc_info=True)


# --------------------------------------------------------------- stream session
class _Stream:
    """State of one accepted Socket.IO connection."""

    def __init__(self, emu: AiolaEmulator, sid: str, eio_sid: str, params: Dict[str, Any]) -> None:
        self.emu = emu
        self.sid = sid
        self.eio_sid = eio_sid
        self.lang: str = params["lang_code"]
        self.keywords: Dict[str, str] = params["keywords"]
        self.tasks: Dict[str, Any] = params["tasks_config"]
        self.params = params
        self.engine_session = emu.engine.new_session(SAMPLE_RATE)
        self.engine_lock = threading.Lock()
        self.chunks = 0
        self.audio_bytes = 0
        self.opened = time.monotonic()
        self.last_audio = self.opened
        self.dropped = False
        self.schema_values: Dict[str, List[Any]] = {}
        self.closed = False
        self.cutting = False  # a drop fault was decided: no more audio is taken
        self.cut = threading.Event()  # ... and the transport is cut
        self.outbox: queue.Queue[Any] = queue.Queue()
        self.thread = emu.threads.start("stream", self._run)

    # Socket.IO handlers run on the connection's request thread (async_handlers=False)
    def audio(self, data: Any) -> None:
        if self.cutting:
            # neither processed nor acknowledged: wait for the cut, which
            # loses the acknowledgement python-socketio sends on return
            self.cut.wait(2.0)
            return
        if not isinstance(data, (bytes, bytearray)):
            self.send(
                "error",
                {
                    "message": "Invalid audio",
                    "details": "binary_data expects raw PCM bytes (16 kHz, 16-bit, mono), "
                    f"got {type(data).__name__}",
                },
            )
            return
        self.last_audio = time.monotonic()
        if not data:  # keepalive
            return
        if len(data) % 2:
            self.send(
                "error",
                {
                    "message": "Invalid audio",
                    "details": f"expected 16 kHz PCM16 mono: {len(data)} bytes is not a whole "
                    "number of 2-byte samples",
                },
            )
            return
        with self.engine_lock:
            if self.closed:
                return
            segments = self.engine_session.feed(bytes(data))
        self.chunks += 1
        self.audio_bytes += len(data)
        with self.emu._lock:
            self.emu.audio_bytes_received += len(data)
        self._results(segments)
        limit = self.emu.faults.drop_after_chunks
        if limit is not None and self.chunks >= limit and not self.dropped:
            self.dropped = True  # considered once, whether or not drops are left
            if self.emu._claim_drop():
                # this chunk is acknowledged (when the handler returns), later
                # ones are not taken: the cut comes once the acknowledgement left
                self.cutting = True
                self.outbox.put(_CUT)

    def _results(self, segments: Iterable[Any]) -> None:
        for seg in segments:
            if not seg.is_final or not seg.text.strip():
                continue
            text = _apply_keywords(seg.text, self.keywords)
            latency = self.emu.faults.result_delay
            self.send("transcript", {"transcript": text}, latency)
            translation = self.tasks.get("TRANSLATION")
            if isinstance(translation, Mapping):
                dst = translation.get("dst_lang_code") or "?"
                self.send("translation", {"translation": f"[{dst}] {text}"}, latency)
            results = _structured(text, self.tasks)
            if results is not None:
                self.send("structured", {"results": results}, latency)

    def send(self, event: str, payload: Any, delay: float = 0.0) -> None:
        """Queue an event, due after ``event_delay`` + ``delay`` (events keep their order)."""
        due = time.monotonic() + self.emu.faults.event_delay + delay
        self.outbox.put((due, event, payload))

    def close(self) -> None:
        with self.engine_lock:
            if self.closed:
                return
            self.closed = True
            _best_effort("closing an engine session", self.engine_session.close)
        self.cut.set()
        self.outbox.put(_STOP)

    def _cut(self) -> None:
        """Cut the transport (drop fault) after the packets queued for the client went out."""
        eio_socket = self.emu._sio.eio.sockets.get(self.eio_sid)
        deadline = time.monotonic() + 0.5
        while eio_socket is not None and time.monotonic() < deadline:
            if eio_socket.queue.qsize() == 0:
                time.sleep(0.05)  # taken by its writer: time to be written
                break
            time.sleep(0.005)
        self.emu._drop(self)
        self.cut.set()

    def _deadline(self) -> Optional[float]:
        faults = self.emu.faults
        times = []
        if faults.idle_timeout is not None:
            times.append(self.last_audio + faults.idle_timeout)
        if faults.drop_after_seconds is not None and not self.dropped:
            times.append(self.opened + faults.drop_after_seconds)
        return min(times) if times else None

    def _run(self) -> None:
        """Emit events in order (honouring event_delay); enforce the timers."""
        pending: List[Tuple[float, str, Any]] = []
        sio = self.emu._sio
        while True:
            now = time.monotonic()
            wake = [d for d in (self._deadline(),) if d is not None]
            if pending:
                wake.append(pending[0][0])
            # wake at least every second: faults may be changed at any time
            timeout = 1.0 if not wake else min(max(0.0, min(wake) - now), 1.0)
            try:
                item = self.outbox.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if item is _CUT:
                self._cut()
                continue
            if item is not None:
                pending.append(item)
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, event, payload = pending.pop(0)
                if self.emu._stamp and isinstance(payload, dict):
                    payload = dict(payload, emitted_at=time.time())
                try:
                    if event is _RAW:  # a raw engine.io message (malformed_packet fault)
                        sio.eio.send(self.eio_sid, payload)
                    else:
                        sio.emit(event, payload, to=self.sid, namespace=NAMESPACE)
                except Exception:
                    log.debug("emit %s to %s failed", event, self.sid, exc_info=True)
            faults = self.emu.faults
            after = faults.drop_after_seconds
            if after is not None and not self.dropped and now >= self.opened + after:
                self.dropped = True  # considered once, whether or not drops are left
                if self.emu._claim_drop():
                    self.emu._drop(self)
            if faults.idle_timeout is not None and now >= self.last_audio + faults.idle_timeout:
                log.info("stream %s idle for %.1f s: disconnecting", self.sid, faults.idle_timeout)
                _best_effort("an idle disconnect", sio.disconnect, self.sid, namespace=NAMESPACE)
                self.last_audio = float("inf")


def _apply_keywords(text: str, keywords: Mapping[str, str]) -> str:
    """Replace each spoken form (whole words, case-insensitive) by its written form."""
    if not keywords:
        return text
    words = text.split()
    out: List[str] = []
    rules = sorted(
        ((k.lower().split(), v) for k, v in keywords.items() if k.strip()),
        key=lambda kv: -len(kv[0]),
    )
    i = 0
    while i < len(words):
        for spoken, written in rules:
            n = len(spoken)
            if [w.lower() for w in words[i : i + n]] == spoken:
                out.append(written)
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def _structured(text: str, tasks: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    if "ENTITY_DETECTION_FROM_LIST" in tasks:
        cfg = tasks["ENTITY_DETECTION_FROM_LIST"] or {}
        entities = cfg.get("entity_list", []) if isinstance(cfg, Mapping) else []
        lowered = f" {text.lower()} "
        return {
            "entities": [e for e in entities if isinstance(e, str) and f" {e.lower()} " in lowered]
        }
    if "FORM_FILLING" in tasks:
        return {"fields": {"utterance": text}, "emulated": True}
    return None


def _parse_json_param(name: str, raw: Optional[str], kind: type) -> Any:
    if raw is None or raw == "":
        return kind()
    try:
        value = json.loads(raw)
    except ValueError:
        raise _Refused(400, "VALIDATION_ERROR", f"{name} must be JSON") from None
    if not isinstance(value, kind):
        raise _Refused(400, "VALIDATION_ERROR", f"{name} must be a JSON {kind.__name__}")
    return value


def _keywords_from(payload: Any) -> Dict[str, str]:
    """Accept every shape of ``set_keywords`` seen in aiOla clients."""
    if isinstance(payload, (bytes, bytearray)):
        payload = json.loads(bytes(payload).decode("utf-8"))
    if (
        isinstance(payload, Mapping)
        and set(payload) == {"data"}
        and isinstance(payload["data"], list)
    ):
        payload = payload["data"]
    if isinstance(payload, list):
        if not all(isinstance(w, str) for w in payload):
            raise ValueError("keyword list must contain strings")
        return {w: w for w in payload}
    if isinstance(payload, Mapping):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in payload.items()):
            raise ValueError("keywords must map spoken strings to written strings")
        return dict(payload)
    raise ValueError(f"keywords must be an object or a list, got {type(payload).__name__}")


# ------------------------------------------------------------------- emulator
class AiolaEmulator(EmulatorServer):
    """A local aiOla service (auth, file transcription and streaming) on one port.

    Parameters
    ----------
    host : str
        Interface to listen on.
    port : int
        TCP port; 0 picks a free one (read :attr:`base_url` after start).
    engine : None, str or Engine
        Recognition engine: ``"pocketsphinx"`` (default, real recognition),
        ``"scripted"`` (deterministic canned transcripts, see ``engine_options``)
        or an engine object from :func:`voxsync.emulators.engine.make_engine`.
    api_keys : iterable of str or None
        Accepted API keys; None (default) accepts any non-empty key.
    token_ttl : float
        Lifetime in seconds of the access tokens issued (aiOla: about 30 min).
    faults : AiolaFaults or None
        Initial limits and faults (see :attr:`faults`).
    stamp_events : bool
        Add ``"emitted_at"`` (``time.time()`` at emit) to every event payload,
        for latency measurements.
    ping_interval, ping_timeout : float
        Engine.IO heartbeat, sent to clients in the OPEN packet.
    engine_options
        Passed to ``make_engine`` when ``engine`` is a string.

    Notes
    -----
    Usable as a context manager (``with AiolaEmulator() as emu:``). All
    threads are named ``voxsync-emulator-aiola-...``; :meth:`stop` ends and
    joins them.
    """

    name = "aiola"
    join_timeout = _JOIN_TIMEOUT

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        engine: Any = None,
        *,
        api_keys: Optional[Iterable[str]] = None,
        token_ttl: float = 1800.0,
        faults: Optional[AiolaFaults] = None,
        stamp_events: bool = False,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        **engine_options: Any,
    ) -> None:
        super().__init__(host, port, engine, **engine_options)
        self.faults = faults or AiolaFaults()
        self.api_keys = None if api_keys is None else set(api_keys)
        self.token_ttl = token_ttl
        self._stamp = stamp_events
        self._ping = (ping_interval, ping_timeout)
        self._tokens = _Tokens()
        self._lock = threading.Lock()
        self._sessions: Dict[str, float] = {}  # session id -> expiry (time.time())
        self._streams: Dict[str, _Stream] = {}  # socket.io sid -> stream
        self._websockets: Dict[str, simple_websocket.Server] = {}
        self._drops_done = 0
        self._sio: Any = None
        self._http: Optional[_HTTPServer] = None
        #: The accepted streaming connections, in order (the last 1000; for
        #: tests): their query parameters (``lang_code``, ``keywords``, ...),
        #: the Engine.IO ``transport`` of the request that opened the session
        #: (``"polling"`` when it was upgraded later, ``"websocket"`` when it
        #: started on one) and ``token_in``, where the access token checked came:
        #: ``"header"`` (``Authorization: Bearer``), ``"query"``
        #: (``x-aiola-api-token``) or ``"legacy"`` (``x-aiola-api-key`` or
        #: ``X-API-Key``).
        self.connections: List[Dict[str, Any]] = []
        #: ``"METHOD /path"`` of every REST request, in order (for tests).
        self.rest_requests: List[str] = []
        #: Keyword updates received with ``set_keywords`` (for tests).
        self.keyword_updates: List[Dict[str, str]] = []
        #: Audio bytes received and processed, over every connection (for tests).
        self.audio_bytes_received = 0

    # ---------------------------------------------------------- lifecycle
    def env(self) -> Dict[str, str]:
        """``AIOLA_BASE_URL`` (API and auth) and an ``AIOLA_API_KEY`` the emulator accepts."""
        keys = sorted(self.api_keys) if self.api_keys is not None else ["emulator-key"]
        env = {"AIOLA_BASE_URL": self.base_url}
        if keys:
            env["AIOLA_API_KEY"] = keys[0]
        return env

    def _prepare(self) -> None:
        self._sio = _SocketIOServer(
            self,
            async_mode="threading",
            async_handlers=False,
            cors_allowed_origins="*",
            ping_interval=self._ping[0],
            ping_timeout=self._ping[1],
            max_http_buffer_size=4_000_000,
            logger=_SIO_LOG,
            engineio_logger=_EIO_LOG,
        )
        self._register_handlers(self._sio)

    def _serve(self, listener: socket.socket) -> None:
        app = socketio.WSGIApp(self._sio, self._rest_app, socketio_path=SOCKETIO_PATH)
        server_class = type("_AiolaHTTPServer", (_HTTPServer,), {"emulator": self})
        # werkzeug serves a duplicate of the bound socket's descriptor
        self._http = server_class(
            self.host, self.port, app, handler=_RequestHandler, fd=listener.fileno()
        )
        self.threads.start("serve", self._http.serve_forever, 0.2)

    def _close_clients(self) -> None:
        http, self._http = self._http, None
        if http is None:
            return
        sio = self._sio
        # say goodbye on the namespace first (a pending long-poll takes it at once)
        with self._lock:
            sids = list(self._streams)
        for sid in sids:
            _best_effort("disconnecting a stream", sio.disconnect, sid, namespace=NAMESPACE)
        deadline = time.monotonic() + 1.0 if sids else 0.0
        while time.monotonic() < deadline and any(
            not (s.closed or s.closing) and not s.queue.empty()
            for s in list(sio.eio.sockets.values())
        ):
            time.sleep(0.02)
        # engine.io's own disconnect() waits for polling clients to collect
        # the CLOSE packet, which may never happen: close without waiting
        eio = sio.eio
        for eio_sid in list(eio.sockets):
            eio_socket = eio.sockets.pop(eio_sid, None)
            if eio_socket is not None:
                _best_effort(
                    "closing a transport",
                    eio_socket.close,
                    wait=False,
                    reason=eio.reason.SERVER_DISCONNECT,
                )
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream.close()
        http.shutdown()
        _best_effort("shutting the Socket.IO server down", sio.shutdown)
        http.server_close()

    # ----------------------------------------------------------- helpers
    @property
    def active_sessions(self) -> int:
        """Auth sessions currently holding a concurrency slot."""
        now = time.time()
        with self._lock:
            return sum(1 for exp in self._sessions.values() if exp > now)

    @property
    def active_streams(self) -> int:
        """Streaming connections currently open."""
        with self._lock:
            return len(self._streams)

    def stream_stats(self) -> List[Dict[str, Any]]:
        """Open streams: ``{"sid", "chunks", "audio_bytes", "keywords"}`` each, oldest first."""
        with self._lock:
            streams = list(self._streams.values())
        return [
            {
                "sid": st.sid,
                "chunks": st.chunks,
                "audio_bytes": st.audio_bytes,
                "keywords": dict(st.keywords),
            }
            for st in streams
        ]

    def issue_access_token(self, ttl: Optional[float] = None, workflow_id: str = "emulator") -> str:
        """An access token as ``POST /voip-auth/session`` would return (opens a session)."""
        return self._open_session(ttl, workflow_id, limit=None)[0]

    def _open_session(
        self, ttl: Optional[float], workflow_id: str, limit: Optional[int]
    ) -> Tuple[str, str]:
        """Take a concurrency slot (checked and taken at once) and issue its token."""
        session_id = uuid.uuid4().hex
        ttl = self.token_ttl if ttl is None else ttl
        now = time.time()
        with self._lock:
            for sid in [k for k, exp in self._sessions.items() if exp <= now]:
                del self._sessions[sid]  # expired: the slot is free again
            if limit is not None and len(self._sessions) >= limit:
                raise _Refused(
                    409,
                    "MAX_CONCURRENCY_REACHED",
                    f"Maximum concurrent sessions ({limit}) reached; close a session first",
                )
            self._sessions[session_id] = now + ttl
        token = self._tokens.issue(
            {"type": "access", "sessionId": session_id, "workflow_id": workflow_id}, ttl
        )
        return token, session_id

    def _register_ws(self, eio_sid: str, ws: simple_websocket.Server) -> None:
        with self._lock:
            self._websockets[eio_sid] = ws

    def _unregister_ws(self, eio_sid: str) -> None:
        with self._lock:
            self._websockets.pop(eio_sid, None)

    def _claim_drop(self) -> bool:
        with self._lock:
            if self._drops_done >= self.faults.drop_times:
                return False
            self._drops_done += 1
            return True

    def _drop(self, stream: _Stream) -> None:
        """Cut the transport of ``stream`` without any goodbye."""
        log.info("fault: dropping connection %s", stream.sid)
        with self._lock:
            ws = self._websockets.get(stream.eio_sid)
        if ws is not None and ws.sock is not None:
            with contextlib.suppress(OSError):
                ws.sock.shutdown(socket.SHUT_RDWR)
            return
        eio_socket = self._sio.eio.sockets.pop(stream.eio_sid, None)
        if eio_socket is not None:  # polling: end the session without a goodbye
            _best_effort("dropping a polling session", eio_socket.close, wait=False, abort=True)

    def _check_access(self, token: str) -> Dict[str, Any]:
        if self.faults.refuse_auth:
            raise _Refused(401, "UNAUTHORIZED", "Unauthorized")
        if not token:
            raise _Refused(401, "UNAUTHORIZED", "Missing access token")
        claims = self._tokens.check(token, "access")
        with self._lock:
            exp = self._sessions.get(claims.get("sessionId", ""))
        if exp is None or exp <= time.time():
            raise _Refused(401, "INVALID_TOKEN", "Session closed or expired")
        return claims

    # --------------------------------------------------------------- REST
    def _rest_app(
        self, environ: Dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            self.rest_requests.append(f"{request.method} {request.path}")
            del self.rest_requests[:-_HISTORY]
            fail = self.faults.rest_failures > 0
            if fail:
                self.faults.rest_failures -= 1
        try:
            if fail:
                raise _Refused(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable")
            response = self._route(request)
        except _Refused as exc:
            response = _json_response(
                {"error": {"message": exc.message, "code": exc.code}}, status=exc.status
            )
        except Exception:
            log.exception("aiOla emulator: REST handler failed")
            response = _json_response(
                {"error": {"message": "Internal error", "code": "INTERNAL"}}, status=500
            )
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        routes: Dict[Tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/voip-auth/apiKey2Token"): self._api_key_to_token,
            ("POST", "/voip-auth/session"): self._create_session,
            ("DELETE", "/voip-auth/session"): self._delete_session,
            ("POST", "/api/speech-to-text/file"): self._transcribe_file,
        }
        handler = routes.get((request.method, path))
        if handler is None:
            if any(p == path for _, p in routes):
                raise _Refused(405, "METHOD_NOT_ALLOWED", f"{request.method} not allowed on {path}")
            raise _Refused(404, "NOT_FOUND", f"no such endpoint: {path}")
        return handler(request)

    @staticmethod
    def _bearer(request: Request) -> str:
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""

    def _api_key_to_token(self, request: Request) -> Response:
        key = self._bearer(request)
        if (
            self.faults.refuse_auth
            or not key
            or (self.api_keys is not None and key not in self.api_keys)
        ):
            raise _Refused(401, "UNAUTHORIZED", "Invalid API key")
        token = self._tokens.issue(
            {"type": "temporary", "key": _b64url(hashlib.sha256(key.encode()).digest()[:9])}, 300
        )
        return _json_response({"context": {"token": token}})

    def _create_session(self, request: Request) -> Response:
        if self.faults.refuse_auth:
            raise _Refused(401, "UNAUTHORIZED", "Unauthorized")
        self._tokens.check(self._bearer(request), "temporary")
        body = request.get_json(silent=True) or {}
        workflow_id = body.get("workflow_id") if isinstance(body, dict) else None
        if not isinstance(workflow_id, str) or not workflow_id:
            raise _Refused(400, "VALIDATION_ERROR", "workflow_id is required")
        token, session_id = self._open_session(None, workflow_id, self.faults.max_sessions)
        return _json_response({"jwt": token, "sessionId": session_id})

    def _delete_session(self, request: Request) -> Response:
        claims = self._check_access(self._bearer(request))
        with self._lock:
            self._sessions.pop(claims["sessionId"], None)
        deleted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return _json_response({"status": "deleted", "deletedAt": deleted})

    def _transcribe_file(self, request: Request) -> Response:
        self._check_access(self._bearer(request))
        upload = request.files.get("file")
        if upload is None:
            raise _Refused(400, "VALIDATION_ERROR", "multipart field 'file' is required")
        data = upload.read()
        language = request.form.get("language", "en")
        keywords = _parse_json_param("keywords", request.form.get("keywords"), dict)
        _parse_json_param("vad_config", request.form.get("vad_config"), dict)
        try:
            pcm, rate, channels = _decode_audio(data)
        except ValueError as exc:
            raise _Refused(400, "INVALID_AUDIO_FORMAT", str(exc)) from None
        session = self.engine.new_session(rate)
        try:
            segments = [
                s for s in session.feed(pcm) + session.flush() if s.is_final and s.text.strip()
            ]
        finally:
            session.close()
        raw = " ".join(s.text for s in segments)
        duration = len(pcm) / 2 / rate
        body = {
            "transcript": _apply_keywords(raw, keywords),
            "raw_transcript": raw,
            "segments": [{"start": s.start, "end": s.end} for s in segments],
            "metadata": {
                "file_duration": duration,
                "language": language,
                "sample_rate": rate,
                "num_channels": channels,
                "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "segments_count": len(segments),
                "total_speech_duration": sum(s.end - s.start for s in segments),
            },
        }
        return _json_response(body)

    # ------------------------------------------------------------ Socket.IO
    def _register_handlers(self, sio: socketio.Server) -> None:
        sio.on("connect", self._on_connect, namespace=NAMESPACE)
        sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        sio.on("binary_data", self._on_binary_data, namespace=NAMESPACE)
        sio.on("set_keywords", self._on_set_keywords, namespace=NAMESPACE)
        sio.on("set_schema_values", self._on_set_schema_values, namespace=NAMESPACE)

    def _on_connect(self, sid: str, environ: Dict[str, Any], auth: Any = None) -> None:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        token = ""
        scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
        # where the client put its token: the SDKs send it both ways
        carried = {
            "header": token,
            "query": query.get("x-aiola-api-token", ""),
            "legacy": query.get("x-aiola-api-key", "") or environ.get("HTTP_X_API_KEY", ""),
        }
        token = carried["header"] or carried["query"] or carried["legacy"]
        try:
            if self.faults.unavailable:
                raise _Refused(503, "SERVICE_UNAVAILABLE", "Service unavailable, try again later")
            self._check_access(token)
            params = {
                "execution_id": query.get("execution_id", ""),
                "flow_id": query.get("flow_id", ""),
                "time_zone": query.get("time_zone", "UTC"),
                "lang_code": query.get("lang_code", "en"),
                "keywords": _parse_json_param("keywords", query.get("keywords"), dict),
                "tasks_config": _parse_json_param("tasks_config", query.get("tasks_config"), dict),
                "vad_config": _parse_json_param("vad_config", query.get("vad_config"), dict),
            }
            if not params["execution_id"] or not params["flow_id"]:
                raise _Refused(400, "VALIDATION_ERROR", "execution_id and flow_id are required")
        except _Refused as exc:
            log.info("refusing stream %s: %s", sid, exc.message)
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code, "status": exc.status}
            ) from None
        eio_sid = self._sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        stream = _Stream(self, sid, eio_sid, params)
        faults = self.faults
        with self._lock:
            self._streams[sid] = stream
            self.connections.append(
                {
                    **params,
                    "transport": query.get("transport", ""),
                    "token_in": [where for where, value in carried.items() if value == token],
                }
            )
            del self.connections[:-_HISTORY]
        if faults.malformed_event:
            stream.send("transcript", "this payload is not an object")
        if faults.malformed_packet:
            # an EVENT packet whose JSON is cut short: no Socket.IO client can decode it
            stream.send(_RAW, f'2{NAMESPACE},["transcript", {{"transcript": "cut')

    def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        with self._lock:
            stream = self._streams.pop(sid, None)
        if stream is not None:
            stream.close()

    def _stream(self, sid: str) -> Optional[_Stream]:
        with self._lock:
            return self._streams.get(sid)

    def _on_binary_data(self, sid: str, data: Any = None, *metadata: Any) -> None:
        stream = self._stream(sid)
        if stream is not None:
            stream.audio(data)

    def _on_set_keywords(self, sid: str, payload: Any = None) -> Dict[str, str]:
        stream = self._stream(sid)
        try:
            keywords = _keywords_from(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            if stream is not None:
                stream.send("error", {"message": "Invalid keywords", "details": str(exc)})
            return {"error": str(exc)}
        if stream is not None:
            stream.keywords = keywords
        with self._lock:
            self.keyword_updates.append(keywords)
            del self.keyword_updates[:-_HISTORY]
        return {"status": "received"}

    def _on_set_schema_values(self, sid: str, payload: Any = None) -> Dict[str, Any]:
        stream = self._stream(sid)
        try:
            if isinstance(payload, (bytes, bytearray)):
                payload = json.loads(bytes(payload).decode("utf-8"))
            if not isinstance(payload, dict) or not all(
                isinstance(k, str) and isinstance(v, list) for k, v in payload.items()
            ):
                raise ValueError("schema values must map dot-separated field paths to lists")
        except (ValueError, UnicodeDecodeError) as exc:
            answer: Dict[str, Any] = {
                "status": "error",
                "error": {"code": "INVALID_SCHEMA", "details": str(exc)},
            }
        else:
            if stream is not None:
                stream.schema_values.update(payload)
            answer = {"status": "ok"}
        if stream is not None:
            stream.send("schema_values_updated", {"status": answer["status"]})
        return answer


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _decode_audio(data: bytes) -> Tuple[bytes, int, int]:
    """WAV (16-bit PCM, mono or stereo -> mono) or raw 16 kHz s16le."""
    if data[:4] != b"RIFF":
        if len(data) % 2:
            raise ValueError("raw audio must be 16-bit PCM (even byte count)")
        return data, SAMPLE_RATE, 1
    try:
        with wave.open(io.BytesIO(data)) as wav:
            width, rate, channels = wav.getsampwidth(), wav.getframerate(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"unreadable WAV file: {exc}") from None
    if width != 2:
        raise ValueError(f"only 16-bit PCM WAV is supported, got {8 * width}-bit")
    if rate not in (8000, 16000):
        raise ValueError(f"sample rate must be 8000 or 16000 Hz, got {rate}")
    if channels == 2:
        import array

        samples = array.array("h", frames)
        frames = array.array(
            "h", ((samples[i] + samples[i + 1]) // 2 for i in range(0, len(samples), 2))
        ).tobytes()
    elif channels != 1:
        raise ValueError(f"mono or stereo audio expected, got {channels} channels")
    return frames, rate, channels


# ------------------------------------------------------------------------ CLI
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``voxsync emulate aiola``."""
    add_server_arguments(parser)
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this API key (repeatable); default: any non-empty key",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=1800.0, help="access token lifetime, seconds"
    )
    parser.add_argument("--max-sessions", type=int, help="concurrent sessions allowed (409 beyond)")
    parser.add_argument(
        "--idle-timeout", type=float, help="disconnect streams idle this many seconds"
    )
    parser.add_argument(
        "--drop-after-chunks", type=int, help="fault: cut the transport after N chunks"
    )
    parser.add_argument(
        "--drop-after-seconds", type=float, help="fault: cut the transport after N s"
    )
    parser.add_argument("--drop-times", type=int, default=1, help="connections the drop faults hit")
    parser.add_argument(
        "--event-delay", type=float, default=0.0, help="fault: delay every event (s)"
    )
    parser.add_argument(
        "--result-delay",
        type=float,
        default=0.0,
        help="seconds from the end of an utterance to its transcript (recognizer latency)",
    )
    parser.add_argument(
        "--rest-failures", type=int, default=0, help="fault: answer the next N REST calls with 503"
    )
    parser.add_argument(
        "--unavailable", action="store_true", help="fault: refuse streams as unavailable"
    )
    parser.add_argument("--refuse-auth", action="store_true", help="fault: refuse every credential")
    parser.add_argument(
        "--malformed-event",
        action="store_true",
        help="fault: send a malformed transcript on connect",
    )
    parser.add_argument(
        "--malformed-packet",
        action="store_true",
        help="fault: send a Socket.IO packet that cannot be decoded on connect",
    )
    parser.add_argument(
        "--stamp-events",
        action="store_true",
        help='add "emitted_at" (epoch seconds) to event payloads',
    )


def emulator_from_args(args: argparse.Namespace) -> AiolaEmulator:
    """Build an (unstarted) emulator from :func:`add_cli_arguments` options."""
    engine_options = engine_options_from_args(args)
    faults = AiolaFaults(
        max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout,
        drop_after_chunks=args.drop_after_chunks,
        drop_after_seconds=args.drop_after_seconds,
        drop_times=args.drop_times,
        event_delay=args.event_delay,
        result_delay=args.result_delay,
        refuse_auth=args.refuse_auth,
        malformed_event=args.malformed_event,
        malformed_packet=args.malformed_packet,
        unavailable=args.unavailable,
        rest_failures=args.rest_failures,
    )
    return AiolaEmulator(
        args.host,
        args.port,
        args.engine,
        api_keys=args.api_keys,
        token_ttl=args.token_ttl,
        faults=faults,
        stamp_events=args.stamp_events,
        **engine_options,
    )


def run_cli(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C or SIGTERM; print the base URL first."""
    return serve_until_stopped(emulator_from_args(args))
