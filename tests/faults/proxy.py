"""A loopback TCP proxy that misbehaves on request, for faults an emulator cannot make.

Put it between a client and a server on 127.0.0.1; it forwards bytes both
ways until told to misbehave::

    with FaultProxy(("127.0.0.1", emulator.port)) as proxy:
        conn = make_connection(port=proxy.port)
        ...
        proxy.stall()               # stop forwarding and reading, keep sockets open

Faults (each applies to every connection through the proxy, now and later):

``stall()``
    Stop reading from both sides and stop forwarding; nothing is closed (a
    server that hangs, or a network path that silently drops everything).
``reset()``
    Forward half of the next chunk (either way), then close the client's
    socket with an RST (``SO_LINGER`` 0): a frame is cut in the middle and
    the client sees ``ECONNRESET``.
``slow_reader(bytes_per_second)``
    Read what the client sends at most this fast (a congested uplink: the
    client's socket buffer fills and its ``send`` blocks).
``close_with_code(code, reason)``
    WebSocket only: at the next server-to-client frame boundary send a close
    frame with ``code`` and ``reason`` to the client, then close both sides.
``drop()``
    Close both sides at once with an orderly FIN (a server that goes away).
``inject_text(text)``
    WebSocket only: at the next server-to-client frame boundary, slip in
    one text frame with ``text`` (a frame the server never sent).

Byte counters ``up`` (client to server) and ``down`` (server to client) count
what was forwarded.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import List, Optional, Tuple

_POLL = 0.05


class _WsFrames:
    """Split a server-to-client (unmasked) WebSocket byte stream at frame boundaries."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> List[bytes]:
        self.buffer.extend(data)
        frames: List[bytes] = []
        while True:
            size = self._frame_size()
            if size is None or len(self.buffer) < size:
                return frames
            frames.append(bytes(self.buffer[:size]))
            del self.buffer[:size]

    def _frame_size(self) -> Optional[int]:
        b = self.buffer
        if len(b) < 2:
            return None
        length = b[1] & 0x7F
        head = 2
        if length == 126:
            if len(b) < 4:
                return None
            length = struct.unpack(">H", b[2:4])[0]
            head = 4
        elif length == 127:
            if len(b) < 10:
                return None
            length = struct.unpack(">Q", b[2:10])[0]
            head = 10
        if b[1] & 0x80:
            head += 4
        return head + length


def text_frame(text: str) -> bytes:
    """An unmasked (server-to-client) WebSocket text frame."""
    payload = text.encode("utf-8")
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    return bytes([0x81, 126]) + struct.pack(">H", len(payload)) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """An unmasked (server-to-client) WebSocket close frame."""
    payload = struct.pack(">H", code) + reason.encode("utf-8")[:123]
    return bytes([0x88, len(payload)]) + payload


class _Pipe:
    """One proxied connection: the client's socket and the upstream socket."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.frames = _WsFrames()
        self.http_done = False  # the HTTP upgrade response went through
        self.closed = False
        self.lock = threading.Lock()

    def close(self, rst: bool = False) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        if rst:
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for s in (self.client, self.upstream):
            if not rst:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            s.close()

    def up_loop(self) -> None:
        proxy = self.proxy
        try:
            while not self.closed and not proxy._stopping:
                if proxy._stalled:
                    time.sleep(_POLL)
                    continue
                rate = proxy._slow_rate
                size = 65536 if rate is None else max(1, int(rate * _POLL))
                self.client.settimeout(_POLL)
                try:
                    data = self.client.recv(size)
                except socket.timeout:
                    continue
                if not data:
                    break
                if proxy._stalled:  # held, never forwarded
                    continue
                if proxy._reset:
                    self.upstream.sendall(data[: max(1, len(data) // 2)])
                    self.close(rst=True)
                    return
                self.upstream.sendall(data)
                proxy._count("up", len(data))
                if rate is not None:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            if not proxy._stalled:
                self.close(rst=proxy._reset)

    def down_loop(self) -> None:
        proxy = self.proxy
        try:
            while not self.closed and not proxy._stopping:
                if proxy._stalled:
                    time.sleep(_POLL)
                    continue
                self.upstream.settimeout(_POLL)
                try:
                    data = self.upstream.recv(65536)
                except socket.timeout:
                    if proxy._close_code is not None and self.http_done:
                        self._send_close()
                        return
                    if self.http_done:
                        self._send_injected()
                    continue
                if not data:
                    break
                if proxy._stalled:
                    continue
                if proxy._reset:
                    self.client.sendall(data[: max(1, len(data) // 2)])
                    self.close(rst=True)
                    return
                self._forward_down(data)
        except OSError:
            pass
        finally:
            if not proxy._stalled:
                self.close(rst=proxy._reset)

    def _forward_down(self, data: bytes) -> None:
        proxy = self.proxy
        if not self.http_done:
            end = data.find(b"\r\n\r\n")
            if end < 0 or not data.startswith(b"HTTP/1.1 101"):
                self.client.sendall(data)  # plain HTTP (REST, polling): pass through
                proxy._count("down", len(data))
                return
            head, data = data[: end + 4], data[end + 4 :]
            self.client.sendall(head)
            proxy._count("down", len(head))
            self.http_done = True
        for frame in self.frames.feed(data):
            if proxy._close_code is not None:
                self._send_close()
                return
            self._send_injected()
            self.client.sendall(frame)
            proxy._count("down", len(frame))
        if proxy._close_code is not None and not self.frames.buffer:
            self._send_close()

    def _send_injected(self) -> None:
        text = self.proxy._take_injection()
        if text is not None:
            self.client.sendall(text_frame(text))

    def _send_close(self) -> None:
        code, reason = self.proxy._close_code or (1011, "")
        try:
            self.client.sendall(close_frame(code, reason))
        except OSError:
            pass
        self.close()


class FaultProxy:
    """Threaded loopback TCP proxy to ``target``; use as a context manager."""

    def __init__(self, target: Tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._pipes: List[_Pipe] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._stalled = False
        self._reset = False
        self._slow_rate: Optional[float] = None
        self._close_code: Optional[Tuple[int, str]] = None
        self._inject: Optional[str] = None
        self.up = 0
        self.down = 0
        self.connections = 0

    # -------------------------------------------------------------- faults
    def stall(self) -> None:
        self._stalled = True

    def reset(self) -> None:
        self._reset = True

    def slow_reader(self, bytes_per_second: float) -> None:
        self._slow_rate = float(bytes_per_second)

    def close_with_code(self, code: int, reason: str = "") -> None:
        self._close_code = (code, reason)

    def inject_text(self, text: str) -> None:
        self._inject = text

    def _take_injection(self) -> Optional[str]:
        with self._lock:
            text, self._inject = self._inject, None
        return text

    def drop(self) -> None:
        with self._lock:
            pipes = list(self._pipes)
        for pipe in pipes:
            pipe.close()

    def heal(self) -> None:
        """Forward normally again (for connections made from now on)."""
        self._stalled = self._reset = False
        self._slow_rate = None
        self._close_code = None
        self._inject = None

    # ------------------------------------------------------------ plumbing
    def _count(self, direction: str, n: int) -> None:
        with self._lock:
            setattr(self, direction, getattr(self, direction) + n)

    def _spawn(self, target: object, name: str) -> None:
        t = threading.Thread(target=target, name=f"fault-proxy-{name}", daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            pipe = _Pipe(self, client, upstream)
            with self._lock:
                self._pipes.append(pipe)
                self.connections += 1
            self._spawn(pipe.up_loop, "up")
            self._spawn(pipe.down_loop, "down")

    def __enter__(self) -> FaultProxy:
        self._spawn(self._accept_loop, "accept")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._stalled = False
        with self._lock:
            pipes = list(self._pipes)
            threads = list(self._threads)
        for pipe in pipes:
            pipe.close()
        for t in threads:
            t.join(5)
            assert not t.is_alive(), f"{t.name} did not stop"
