"""A small loopback provider for testing the runtime over a real TCP socket.

Wire format, both directions: 1 type byte + 4-byte big-endian length + payload.
Client -> server: b"H" hello (payload = token), b"A" audio, b"E" end of stream,
b"C" a control command (payload = its id).
Server -> client: b"J" one JSON event.

The server answers hello with {"type": "ready"} (or {"type": "denied"}), each
audio chunk with {"type": "transcript", "text": "chunk <n>", "bytes": len},
a command with {"type": "ack", "id": id, "after": <audio chunks received so
far>}, and end of stream with {"type": "eos"} - unless told otherwise by its
fault options.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Any, ClassVar, Dict, List, Optional, Union

from voxsync.audio.format import AudioFormat
from voxsync.connection import Connection
from voxsync.errors import AuthenticationError, ConnectionError
from voxsync.events import Message, Transcript
from voxsync.request import Request

HEADER = struct.Struct(">cI")


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)


def recv_exact(sock: socket.socket, n: int) -> Optional[bytes]:
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return buf


def recv_frame(sock: socket.socket) -> Optional[tuple]:
    head = recv_exact(sock, HEADER.size)
    if head is None:
        return None
    kind, size = HEADER.unpack(head)
    payload = recv_exact(sock, size) if size else b""
    if payload is None:
        return None
    return kind, payload


class LoopbackServer:
    """Threaded TCP server on 127.0.0.1:0; use as a context manager."""

    def __init__(
        self,
        *,
        token: str = "good",
        drop_after: Optional[int] = None,
        reply_eos: bool = True,
        reply_delay: float = 0.0,
        ack: bool = True,
    ) -> None:
        self.ack = ack
        self.token = token
        self.drop_after = drop_after
        self.reply_eos = reply_eos
        self.reply_delay = reply_delay
        self.received: List[bytes] = []
        self.received_lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._conns: List[socket.socket] = []
        self._stopping = False

    def __enter__(self) -> LoopbackServer:
        t = threading.Thread(target=self._accept_loop, name="loopback-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._listener.close()
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(5)
            assert not t.is_alive(), f"{t.name} did not stop"

    def received_count(self) -> int:
        with self.received_lock:
            return len(self.received)

    def wait_received(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.received_count() < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            t = threading.Thread(
                target=self._serve, args=(conn,), name="loopback-conn", daemon=True
            )
            t.start()
            self._threads.append(t)

    def _reply(self, conn: socket.socket, obj: Dict[str, Any]) -> None:
        if self.reply_delay:
            time.sleep(self.reply_delay)
        send_frame(conn, b"J", json.dumps(obj).encode())

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                frame = recv_frame(conn)
                if frame is None:
                    return
                kind, payload = frame
                if kind == b"H":
                    ok = payload.decode() == self.token
                    self._reply(conn, {"type": "ready" if ok else "denied"})
                    if not ok:
                        return
                elif kind == b"A":
                    with self.received_lock:
                        self.received.append(payload)
                        n = len(self.received)
                    if self.drop_after is not None and n >= self.drop_after:
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    self._reply(
                        conn, {"type": "transcript", "text": f"chunk {n}", "bytes": len(payload)}
                    )
                elif kind == b"C" and self.ack:
                    with self.received_lock:
                        n = len(self.received)
                    self._reply(conn, {"type": "ack", "id": payload.decode(), "after": n})
                elif kind == b"E" and self.reply_eos:
                    self._reply(conn, {"type": "custom", "note": "tail"})
                    self._reply(conn, {"type": "eos"})
        except OSError:
            return
        finally:
            conn.close()


class LoopbackConnection(Connection):
    """A provider speaking the loopback protocol (reader, writer, dispatcher threads)."""

    provider: ClassVar[str] = "loopback"
    event_names = Connection.event_names | {"transcript"}
    _uses_reader_thread: ClassVar[bool] = True

    def __init__(self, port: int, token: str = "good", **options: Any) -> None:
        options.setdefault("audio_format", AudioFormat(16000, 1, "pcm_s16le"))
        super().__init__(**options)
        self._port = port
        self._token = token
        self._sock: Optional[socket.socket] = None
        #: transport seam for overflow tests: the writer waits on it before each chunk
        self.write_gate = threading.Event()
        self.write_gate.set()

    def _open(self, timeout: float) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self._port), timeout=timeout)
        except OSError as exc:
            raise ConnectionError(f"cannot reach the loopback server: {exc}") from exc
        self._sock = sock
        send_frame(sock, b"H", self._token.encode())
        frame = recv_frame(sock)
        if frame is None or json.loads(frame[1])["type"] != "ready":
            raise AuthenticationError("token refused")
        sock.settimeout(None)

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            frame = recv_frame(sock)
            if frame is None:
                return
            msg = json.loads(frame[1])
            if msg["type"] == "transcript":
                self._deliver(Transcript(msg["text"], raw=msg))
            elif msg["type"] == "eos":
                self._stream_ended()
            else:
                self._deliver(Message(msg["type"], raw=msg))
                if msg["type"] == "ack":  # offered after its event is queued
                    self._offer_reply(msg)

    def _write_chunk(self, chunk: bytes) -> None:
        while not self.write_gate.wait(0.05):
            if self._closing:
                return
        assert self._sock is not None
        send_frame(self._sock, b"A", chunk)

    def command(self, command_id: str, timeout: float = 5.0) -> Dict[str, Any]:
        """Send a control command in order with the audio; return the server's ack."""
        request = Request(lambda msg: msg.get("id") == command_id, what=f"command {command_id}")
        reply: Dict[str, Any] = self._request(command_id.encode(), request, timeout)
        return reply

    def _write_control(self, frame: Union[str, bytes]) -> None:
        assert isinstance(frame, bytes) and self._sock is not None
        send_frame(self._sock, b"C", frame)

    def _end_of_stream(self) -> None:
        assert self._sock is not None
        send_frame(self._sock, b"E", b"")

    def _close_transport(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
