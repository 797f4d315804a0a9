"""One port for REST and WebSocket: the front of the Uh!ive and Palabra emulators.

Both services answer plain HTTP requests (OIDC tokens, REST sessions) and
WebSocket upgrades on one base URL. :class:`WebSocketFront` peeks at the
first bytes of each accepted connection: a REST method goes to
:meth:`WebSocketFront._serve_http`, anything else is served as a WebSocket
by the ``websockets`` library's sans-I/O server, routed by
:meth:`WebSocketFront._route` and handed to
:meth:`WebSocketFront._serve_route` on the connection's own thread.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from typing import Any, ClassVar, Dict, Mapping, Optional, Set, Tuple, cast

from websockets.http11 import Request, Response
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol
from websockets.sync.server import Server, ServerConnection

from voxsync.emulators.base import EmulatorServer
from voxsync.redact import RedactingFilter

__all__ = [
    "HttpRequest",
    "TrackedConnection",
    "WebSocketFront",
    "http_response",
    "read_http_request",
]

log = logging.getLogger(__name__)

#: Seconds a client has to send its request line / complete the upgrade.
HANDSHAKE_TIMEOUT = 10.0
_MAX_HEADER = 64 * 1024
_MAX_BODY = 64 * 1024
_PEEK = 5  # len(b"POST "), len(b"DELET")


class HttpRequest:
    """A plain HTTP request read by :func:`read_http_request`."""

    def __init__(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        #: Header names in lower case.
        self.headers = headers
        self.body = body


def read_http_request(sock: socket.socket) -> Optional[HttpRequest]:
    """Read one HTTP/1.1 request (headers and a body of at most 64 KiB); None if malformed."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > _MAX_HEADER:
            return None
        part = sock.recv(4096)
        if not part:
            return None
        buf += part
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    pieces = lines[0].split(" ")
    if len(pieces) != 3:
        return None
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return None
    if length < 0 or length > _MAX_BODY:
        return None
    body = rest
    while len(body) < length:
        part = sock.recv(length - len(body))
        if not part:
            return None
        body += part
    return HttpRequest(pieces[0], pieces[1], headers, body[:length])


def http_response(
    sock: socket.socket,
    status: int,
    body: Mapping[str, Any],
    extra: Optional[Dict[str, str]] = None,
) -> None:
    """Write a JSON response and mark the connection for closing."""
    data = json.dumps(body).encode("utf-8")
    reason = HTTPStatus(status).phrase
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    lines.extend(f"{k}: {v}" for k, v in (extra or {}).items())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)


class _ServerShim:
    """The part of ``websockets.sync.server.Server`` a connection uses."""

    def __init__(self) -> None:
        self.socket_closed = threading.Event()


class TrackedConnection(ServerConnection):
    """A server connection that records when the client last sent any frame."""

    last_activity: float = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.last_activity = time.monotonic()
        super().__init__(*args, **kwargs)

    def process_event(self, event: Any) -> None:
        self.last_activity = time.monotonic()
        super().process_event(event)


class WebSocketFront(EmulatorServer):
    """An emulator serving REST requests and WebSocket streams on one port.

    Subclass hooks (each on the accepted connection's own thread):

    ``_serve_http(sock)``
        Answer one REST request (see :func:`read_http_request`,
        :func:`http_response`).
    ``_route(conn, request, url)``
        Choose the handler of an upgrade: return a value for
        :meth:`_serve_route`, or a ``Response`` (``conn.respond(...)``)
        that refuses it.
    ``_serve_route(conn, route)``
        Serve one open WebSocket until it ends.
    """

    #: First bytes of the requests :meth:`_serve_http` answers.
    rest_methods: ClassVar[Tuple[bytes, ...]] = (b"POST ",)
    #: Largest frame a client may send, in bytes.
    max_frame: ClassVar[int] = 2**22

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._connections: Set[ServerConnection] = set()
        self._shim = _ServerShim()
        # the websockets library logs request lines, which carry tokens
        self._ws_log = logging.getLogger(f"voxsync.emulators.{self.name}.websockets")
        if not any(isinstance(f, RedactingFilter) for f in self._ws_log.filters):
            self._ws_log.addFilter(RedactingFilter())

    # ------------------------------------------------------------ hooks
    def _serve_http(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def _route(self, conn: ServerConnection, request: Request, url: Any) -> Any:
        raise NotImplementedError

    def _serve_route(self, conn: TrackedConnection, route: Any) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ front
    def _prepare(self) -> None:
        self._shim = _ServerShim()

    def _close_clients(self) -> None:
        self._shim.socket_closed.set()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            conn.close_socket()

    def _handle(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(HANDSHAKE_TIMEOUT)
        head = self._peek(sock)
        if head is None:
            return
        if head.startswith(self.rest_methods):
            self._serve_http(sock)
            return
        sock.settimeout(None)
        self.track_socket(sock, open=False)  # the WebSocket connection closes it from now on
        self._serve_websocket(sock)

    def _peek(self, sock: socket.socket) -> Optional[bytes]:
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        while True:
            data = sock.recv(_PEEK, socket.MSG_PEEK)
            if not data:
                return None
            if len(data) >= _PEEK or not any(m.startswith(data) for m in self.rest_methods):
                return data
            if time.monotonic() > deadline or self.stopping.is_set():
                return None
            time.sleep(0.002)

    def _process_request(self, conn: ServerConnection, request: Request) -> Optional[Response]:
        from urllib.parse import urlsplit

        route = self._route(conn, request, urlsplit(request.path))
        if isinstance(route, Response):
            return route
        cast(Any, conn).voxsync_route = route
        return None

    def _serve_websocket(self, sock: socket.socket) -> None:
        protocol = ServerProtocol(max_size=self.max_frame, logger=self._ws_log)
        conn = TrackedConnection(
            sock,
            protocol,
            cast(Server, self._shim),
            ping_interval=None,
            ping_timeout=None,
            close_timeout=2.0,
            max_queue=64,
        )
        self.threads.adopt(conn.recv_events_thread, "wsrecv")
        with self._lock:
            self._connections.add(conn)
        try:
            conn.handshake(self._process_request, None, None, HANDSHAKE_TIMEOUT)
            route = getattr(conn, "voxsync_route", None)
            if conn.protocol.state is WsState.OPEN and route is not None:
                self._serve_route(conn, route)
        except Exception:
            log.exception("%s emulator: socket handler failed", self.name)
        finally:
            try:
                conn.close(1000)
            except Exception:  # already closed or broken
                log.debug("%s emulator: close failed", self.name, exc_info=True)
            conn.close_socket()
            conn.recv_events_thread.join(5.0)
            with self._lock:
                self._connections.discard(conn)
