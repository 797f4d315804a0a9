"""A real `websockets` server on loopback, serving one handler per connection in threads."""

from __future__ import annotations

import threading
from typing import Any, Callable

from websockets.sync.server import ServerConnection, serve


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
