"""WebSocket servers on loopback for tests: a real `websockets` one, and a raw one."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import threading
from typing import Any, Callable, List, Optional, Tuple

from websocket._abnf import frame_buffer
from websockets.sync.server import ServerConnection, serve

#: RFC 6455's key for the handshake's Sec-WebSocket-Accept.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketServer:
    """``with WebSocketServer(handler) as srv:`` serves on ``ws://127.0.0.1:<srv.port>``."""

    def __init__(self, handler: Callable[[ServerConnection], Any], name: str = "ws-server") -> None:
        self._server = serve(handler, "127.0.0.1", 0)
        self.port: int = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=name)

    def __enter__(self) -> WebSocketServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)
        assert not self._thread.is_alive(), "the test server did not stop"


class RawServer:
    """Accepts one WebSocket client, then writes exactly the bytes a test gives it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.conn: Optional[socket.socket] = None
        self._thread = threading.Thread(target=self._accept, name="raw-ws-server")
        self._thread.start()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = re.search(rb"(?i)sec-websocket-key: *(\S+)", request).group(1)  # type: ignore[union-attr]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.conn = conn

    def ready(self) -> socket.socket:
        self._thread.join(5)
        assert self.conn is not None
        return self.conn

    def read_frames(self, count: int) -> List[Tuple[int, bytes]]:
        """``count`` frames the client sent (unmasked by websocket-client's reader)."""
        conn = self.ready()
        conn.settimeout(5)
        out = []
        buffer = frame_buffer(conn.recv, skip_utf8_validation=True)
        for _ in range(count):
            frame = buffer.recv_frame()
            out.append((frame.opcode, frame.data))
        return out

    def drain(self, quiet: float = 0.5) -> bytes:
        """What the client sent that is still unread, once nothing came for ``quiet`` s."""
        conn = self.ready()
        conn.settimeout(quiet)
        data = bytearray()
        try:
            while True:
                piece = conn.recv(1 << 20)
                assert piece, "the client closed its socket"
                data += piece
        except socket.timeout:
            return bytes(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()
