"""The local Palabra server: one base URL, the REST session API and every socket.

* ``POST /session-storage/session`` (also the legacy ``/sessions``): create a
  session; ``DELETE /session-storage/sessions/{id}``; ``GET
  /session-storage/sessions``. Credentials in the ``ClientID`` /
  ``ClientSecret`` headers.
* the speech-to-speech translation socket at the ``ws_url`` it hands out
  (``/streaming-api/v1/speech-to-speech/stream``) and at the 2.x path
  ``/streaming-api/{anything}/v1/speech-to-speech/stream``; the token is a
  session's ``publisher`` (or the ``api_key``).
* more socket paths plug in with :meth:`PalabraEmulator.add_socket_route`
  (realtime STT, realtime TTS).

A small front accepts each TCP connection and peeks at its first bytes:
``POST`` / ``DELETE`` go to a minimal HTTP/1.1 handler, anything else to the
``websockets`` library's synchronous server connection, which routes by path
and checks the token (HTTP 401 when it is not valid).

Every thread is named ``voxsync-emulator-palabra-...`` and joined by
:meth:`PalabraEmulator.stop` (see :class:`voxsync.emulators.base.EmulatorServer`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import secrets
import socket
import threading
import uuid
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request
from websockets.sync.server import ServerConnection

# the HTTP and websockets plumbing the emulators share
from voxsync.emulators.base import url_host
from voxsync.emulators.wsfront import (
    HttpRequest,
    TrackedConnection,
    WebSocketFront,
    http_response,
    read_http_request,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "PalabraEmulator",
    "PalabraFaults",
    "SocketHandler",
    "Translator",
    "pseudo_translate",
]

log = logging.getLogger(__name__)

#: Credentials the emulator accepts unless told otherwise.
DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
_THREAD_PREFIX = "voxsync-emulator-palabra"
_MAX_FRAME = 4 * 1024 * 1024

#: A translator: ``(text, source_language, target_language) -> translated text``.
Translator = Callable[[str, str, str], str]
#: A socket handler: ``(emulator, connection, query) -> None``, runs until the socket ends.
SocketHandler = Callable[["PalabraEmulator", ServerConnection, Dict[str, List[str]]], None]

S2S_PATH = "/streaming-api/v1/speech-to-speech/stream"
TTS_PATH = "/tts-api/v1/text-to-speech/stream"


def pseudo_translate(text: str, source: str, target: str) -> str:
    """The default translator, honest about being one: ``"[es] hello world"``.

    The emulator does not translate; it marks the source text with the
    target language. Pass ``translator=`` (any callable) or scripted texts
    (``translations=``) for something else.
    """
    return f"[{target}] {text}"


@dataclasses.dataclass
class PalabraFaults:
    """Faults the emulator injects (all off by default).

    Attributes
    ----------
    rest_5xx : int
        Answer the next N REST requests with HTTP 503.
    refuse_auth : bool
        Refuse every credential and token (REST 401, socket upgrade 401).
    drop_after_chunks : int or None
        Cut the translation socket (no close frame) after N audio chunks.
    drop_after_seconds : float or None
        Cut it N seconds after it became ready.
    stall_after_chunks : int or None
        After N audio chunks, stop answering anything (pings still answered).
    malformed_after_chunks : int or None
        Send one frame that is not JSON after N audio chunks.
    rate_limit_close : bool
        Close every new translation socket at once with code 1008.
    never_ready : bool
        Accept the task but never start the pipeline.
    double_encode : bool
        Send every ``data`` as a JSON string (as some servers do).
    """

    rest_5xx: int = 0
    refuse_auth: bool = False
    drop_after_chunks: Optional[int] = None
    drop_after_seconds: Optional[float] = None
    stall_after_chunks: Optional[int] = None
    malformed_after_chunks: Optional[int] = None
    rate_limit_close: bool = False
    never_ready: bool = False
    double_encode: bool = False


class PalabraEmulator(WebSocketFront):
    """A local Palabra server on ``host:port`` (0 picks a free port).

    Parameters
    ----------
    host, port
        Where to listen.
    engine : str or Engine
        Recognition: ``"pocketsphinx"`` (real, default) or ``"scripted"``
        (see :func:`voxsync.emulators.engine.make_engine`), or an engine.
    translator : callable or None
        ``(text, source, target) -> text``; default :func:`pseudo_translate`.
    translations : list of str or None
        Scripted translations, used in turn (cycling) instead of ``translator``.
    client_id, client_secret : str
        The REST credentials accepted.
    api_key : str or None
        Also accepted as a socket token (the 2.x flow).
    faults : PalabraFaults or None
    idle_timeout : float
        Seconds without audio on a running task before the server ends the
        stream with ``SERVICE_TIMEOUT`` (close 1008).
    ready_delay : float
        Seconds between ``set_task`` and the pipeline running (0: at once).
    pacing_tolerance : float
        Seconds the input may run ahead of / behind the wall clock before an
        ``AUDIO_STREAM_TOO_FAST`` / ``TOO_SLOW`` warning.
    **engine_options
        Passed to ``make_engine`` (``transcripts=``, ``vocabulary=``).
    """

    name = "palabra"
    rest_methods = (b"POST ", b"DELET", b"PUT ")
    max_frame = _MAX_FRAME

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        engine: Any = "pocketsphinx",
        *,
        translator: Optional[Translator] = None,
        translations: Optional[List[str]] = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        api_key: Optional[str] = None,
        faults: Optional[PalabraFaults] = None,
        idle_timeout: float = 10.0,
        ready_delay: float = 0.0,
        pacing_tolerance: float = 2.0,
        **engine_options: Any,
    ) -> None:
        super().__init__(host, port, engine, **engine_options)
        if translations:
            cycle = itertools.cycle(list(translations))
            lock = threading.Lock()

            def scripted(text: str, source: str, target: str) -> str:
                with lock:
                    return next(cycle)

            translator = scripted
        self.translator: Translator = translator or pseudo_translate
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_key = api_key
        self.faults = faults or PalabraFaults()
        self.idle_timeout = idle_timeout
        self.ready_delay = ready_delay
        self.pacing_tolerance = pacing_tolerance
        #: session id -> create reply ``data``
        self.sessions: Dict[str, Dict[str, Any]] = {}
        #: every frame received on translation sockets, for tests: (message_type, data)
        self.received: List[Tuple[str, Any]] = []
        self._tokens: Dict[str, str] = {}
        self._routes: List[Tuple[str, Callable[[str], bool], SocketHandler]] = []
        self._synthesizer: Any = None
        from voxsync.emulators.palabra.translation import serve_translation

        self.add_socket_route("s2s", _is_s2s_path, serve_translation)
        # realtime speech-to-text and text-to-speech sockets
        from voxsync.emulators.palabra import asr, tts

        self.asr = asr.register(self)
        self.tts = tts.register(self)

    # ------------------------------------------------------------- info
    @property
    def ws_base(self) -> str:
        """``ws://host:port``."""
        return f"ws://{url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The translation socket (no query string: clients append ``?token=``)."""
        return self.ws_base + S2S_PATH

    @property
    def ws_tts_url(self) -> str:
        """The realtime TTS socket advertised in session replies."""
        return self.ws_base + TTS_PATH

    def env(self) -> Dict[str, str]:
        """Environment variables pointing ``voxsync.palabra.Palabra()`` at this emulator."""
        return {
            "PALABRA_CLIENT_ID": self.client_id,
            "PALABRA_CLIENT_SECRET": self.client_secret,
            "PALABRA_API_URL": self.base_url,
        }

    def issue_session(self) -> Dict[str, Any]:
        """Create a session as ``POST /session-storage/session`` does; return its ``data``."""
        session_id = uuid.uuid4().hex
        publisher = "pub-" + secrets.token_urlsafe(24)
        data = {
            "id": session_id,
            "publisher": publisher,
            "subscriber": [],
            "webrtc_room_name": session_id[:8],
            "webrtc_url": f"{self.base_url}/stream/",
            "ws_url": self.ws_url,
            "ws_tts_url": self.ws_tts_url,
            "intent": "api",
        }
        with self._lock:
            self.sessions[session_id] = data
            self._tokens[publisher] = session_id
        return data

    def token_ok(self, token: str) -> bool:
        """True if ``token`` opens sockets (a live session's publisher, or the API key)."""
        if self.faults.refuse_auth or not token:
            return False
        if self.api_key is not None and secrets.compare_digest(token, self.api_key):
            return True
        with self._lock:
            return token in self._tokens

    def add_socket_route(
        self, name: str, match: Callable[[str], bool], handler: SocketHandler
    ) -> None:
        """Serve WebSocket upgrades whose path satisfies ``match`` with ``handler``.

        ``handler(emulator, connection, query)`` runs on its own thread until
        the socket ends; the token (``query["token"]``) was already checked.
        Routes are tried in the order they were added.
        """
        with self._lock:
            self._routes.append((name, match, handler))

    def synthesizer(self) -> Any:
        """The shared :class:`~voxsync.emulators.palabra.synth.SpeechSynthesizer`."""
        with self._lock:
            if self._synthesizer is None:
                from voxsync.emulators.palabra.synth import SpeechSynthesizer

                self._synthesizer = SpeechSynthesizer()
            return self._synthesizer

    # ------------------------------------------------------------ hooks
    def _prepare(self) -> None:
        super()._prepare()
        # load one recognizer now: loading holds the interpreter lock for seconds, which
        # must not happen while a client streams (the engine pools it for the first socket)
        self.engine.new_session(16000).close()

    def _serve_http(self, sock: socket.socket) -> None:
        request = read_http_request(sock)
        if request is None:
            http_response(sock, 400, {"ok": False, "errors": [{"detail": "bad request"}]})
            return
        status, body = self._rest(request)
        http_response(sock, status, body)

    # --------------------------------------------------------------- REST
    def _problem(self, status: int, detail: str) -> Tuple[int, Dict[str, Any]]:
        phrase = HTTPStatus(status).phrase
        return status, {
            "ok": False,
            "errors": [
                {
                    "detail": detail,
                    "error_code": status,
                    "instance": "",
                    "status": status,
                    "title": phrase,
                    "type": "about:blank",
                }
            ],
        }

    def _rest(self, request: HttpRequest) -> Tuple[int, Dict[str, Any]]:
        with self._lock:
            if self.faults.rest_5xx > 0:
                self.faults.rest_5xx -= 1
                fail = True
            else:
                fail = False
        if fail:
            return self._problem(503, "service temporarily unavailable (emulated fault)")
        client_id = request.headers.get("clientid", "")
        client_secret = request.headers.get("clientsecret", "")
        if (
            self.faults.refuse_auth
            or not secrets.compare_digest(client_id, self.client_id)
            or not secrets.compare_digest(client_secret, self.client_secret)
        ):
            return self._problem(401, "invalid ClientID or ClientSecret")
        path = urlsplit(request.target).path.rstrip("/")
        if request.method == "POST" and path in (
            "/session-storage/session",
            "/session-storage/sessions",
        ):
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                return self._problem(400, "the body is not JSON")
            if not isinstance(body, dict) or not isinstance(body.get("data", {}), dict):
                return self._problem(422, 'the body must be {"data": {...}}')
            return 201, {"ok": True, "data": self.issue_session()}
        prefix = "/session-storage/sessions/"
        if request.method == "DELETE" and path.startswith(prefix):
            session_id = path[len(prefix) :]
            with self._lock:
                data = self.sessions.pop(session_id, None)
                if data is not None:
                    self._tokens.pop(data["publisher"], None)
            if data is None:
                return self._problem(404, f"no session {session_id}")
            return 200, {"ok": True, "data": {}}
        return self._problem(404, f"no such endpoint: {request.method} {path}")

    # ---------------------------------------------------------- websockets
    def _route(self, conn: ServerConnection, request: Request, url: Any) -> Any:
        route = url.path.rstrip("/")
        if route == "/session-storage/sessions":
            with self._lock:
                sessions = [{"id": k, "created_at": None} for k in self.sessions]
            response = conn.respond(
                HTTPStatus.OK, json.dumps({"ok": True, "data": {"sessions": sessions}})
            )
            return response
        # tokens are appended verbatim by the clients: parse without decoding "+"
        query = parse_qs(url.query, keep_blank_values=True)
        with self._lock:
            routes = list(self._routes)
        for _name, match, handler in routes:
            if match(route):
                token = query.get("token", [""])[0]
                if not self.token_ok(token):
                    return conn.respond(HTTPStatus.UNAUTHORIZED, "invalid or missing token\n")
                refusal = getattr(handler, "check", lambda q: None)(query)
                if refusal is not None:  # a route's own upgrade refusal (400, 409, ...)
                    return conn.respond(HTTPStatus(refusal[0]), f"{refusal[1]}\n")
                return (handler, query)
        return conn.respond(HTTPStatus.NOT_FOUND, f"no such path: {url.path}\n")

    def _serve_route(self, conn: TrackedConnection, route: Any) -> None:
        handler, query = route
        handler(self, conn, query)


def _is_s2s_path(path: str) -> bool:
    if path == S2S_PATH:
        return True
    parts = path.split("/")
    # /streaming-api/{anything}/v1/speech-to-speech/stream
    return (
        len(parts) == 6
        and parts[1] == "streaming-api"
        and bool(parts[2])
        and parts[3:] == ["v1", "speech-to-speech", "stream"]
    )
