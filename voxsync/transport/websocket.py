"""A WebSocket connection shaped for voxsync's reader and writer threads.

:class:`WebSocketTransport` opens the connection with websocket-client (the
HTTP upgrade, proxies, TLS) and then reads and writes the frames itself,
so that providers share one place that

* maps handshake failures to voxsync errors (HTTP 401/403 ->
  :class:`~voxsync.errors.AuthenticationError`, other statuses and network
  failures -> :class:`~voxsync.errors.ConnectionError`, timeouts ->
  :class:`~voxsync.errors.TimeoutError`), with credentials redacted from
  every message;
* lets one thread block in :meth:`recv` while another sends (websocket-client
  serialises sends with its own lock, which voxsync's writes take too);
* builds the frames it sends itself (:func:`encode_frame`: RFC 6455 framing,
  the payload masked by numpy with a fresh random key per frame), about five
  times cheaper than websocket-client's masking in pure Python;
* writes a frame without blocking when the socket has room for it
  (:meth:`WebSocketTransport.send_now`), so a sender may skip a hand-off
  to a writer thread;
* reads frames from a buffer filled in large pieces, usually one ``recv``
  call per frame or none, answering pings;
* closes in bounded time: :meth:`close` wakes a reader blocked in ``recv``;
* keeps the peer's close code and reason (:attr:`WebSocketTransport.close_code`,
  :attr:`~WebSocketTransport.close_reason`, :meth:`~WebSocketTransport.disconnected_error`),
  since some services signal rate limits or policy refusals only there
  (1008).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Deque, List, Optional, Tuple, Union

from voxsync.errors import (
    AuthenticationError,
    ConnectionError,
    DisconnectedError,
    RemoteProtocolError,
    TimeoutError,
)
from voxsync.redact import redact

__all__ = [
    "OPCODE_BINARY",
    "OPCODE_CLOSE",
    "OPCODE_CONT",
    "OPCODE_PING",
    "OPCODE_PONG",
    "OPCODE_TEXT",
    "WebSocketTransport",
    "encode_frame",
]

log = logging.getLogger(__name__)

#: Frame opcodes (RFC 6455, section 5.2).
OPCODE_CONT = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA

_RECV_SIZE = 4096  # bytes asked of the socket at a time (allocated while recv() waits)
_RECV_MAX = 1 << 20  # at most, for the rest of a large frame


class _Violation(Exception):
    """A frame that breaks RFC 6455 (mapped to RemoteProtocolError)."""


class _Lost(Exception):
    """The socket ended without a close frame (mapped to ConnectionError)."""


_np: Any = None  # numpy, imported by the first frame (import voxsync stays light)
_u32: Any = None

try:  # Linux: bytes not yet acknowledged in a socket's send queue
    import fcntl
    import termios

    _TIOCOUTQ: Optional[int] = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - other platforms
    _TIOCOUTQ = None

_DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)

Frame = Union[str, bytes]


# Masking keys: drawn from os.urandom 256 at a time and each used once, so a
# frame does not cost a system call (which would also release the interpreter
# lock) for its key; a forked child draws its own.
_KEYS_AT_ONCE = 256
_keys: Deque[bytes] = deque()


def _mask_key() -> bytes:
    """A fresh, unpredictable 4-byte masking key (any thread)."""
    while True:
        try:
            return _keys.popleft()  # atomic: no two frames get the same key
        except IndexError:
            block = os.urandom(4 * _KEYS_AT_ONCE)
            _keys.extend(block[i : i + 4] for i in range(0, len(block), 4))


if hasattr(os, "register_at_fork"):  # pragma: no branch
    os.register_at_fork(after_in_child=_keys.clear)


def _numpy() -> Any:
    global _np, _u32
    if _np is None:
        import numpy as np

        _u32 = np.dtype(np.uint32)
        _np = np
    return _np


def encode_frame(opcode: int, payload: bytes, mask_key: Optional[bytes] = None) -> bytearray:
    """One final, masked client frame carrying ``payload`` (RFC 6455, section 5.2).

    Parameters
    ----------
    opcode : int
        :data:`OPCODE_TEXT` (``payload`` is UTF-8), :data:`OPCODE_BINARY`,
        :data:`OPCODE_PING`, ...
    payload : bytes-like
        The message, unfragmented.
    mask_key : bytes, optional
        The 4-byte masking key; by default a fresh one from ``os.urandom``
        for every frame (drawn 256 at a time, each used once), as the RFC
        requires of a client: a key the peer's path could predict defeats
        the masking. Only tests pass one.

    Returns
    -------
    bytearray
        Header, masking key and masked payload, ready for the socket.
    """
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    key = _mask_key() if mask_key is None else mask_key
    if len(key) != 4:
        raise ValueError("a WebSocket masking key has 4 bytes")
    frame = bytearray(header)
    frame += key
    start = len(frame)
    frame += payload
    words = n >> 2
    if words:
        np = _np if _np is not None else _numpy()
        view = np.frombuffer(frame, dtype=_u32, count=words, offset=start)
        view ^= np.frombuffer(key, dtype=_u32)[0]  # the same key bytes over every 4
    for i in range(words << 2, n):  # the 0-3 bytes left over
        frame[start + i] ^= key[i & 3]
    return frame


class WebSocketTransport:
    """One WebSocket connection (client side).

    Parameters
    ----------
    url : str
        ``ws://`` or ``wss://`` URL; it may carry a token (it is redacted
        wherever it is shown).
    headers : mapping, optional
        Extra HTTP headers for the upgrade request (e.g. ``Authorization``).
    secrets : iterable of str
        Values to redact from messages besides the usual token shapes.
    service : str
        How errors name the peer (``"Uh!ive"``, ...).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        secrets: Iterable[str] = (),
        service: str = "the service",
    ) -> None:
        self.url = url
        self._headers: List[str] = [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._secrets = tuple(s for s in secrets if s)
        self.service = service
        self._ws: Any = None
        self._closed = False
        self._rbuf = bytearray()  # received bytes not yet parsed into frames
        # bytes the socket's send buffer surely takes now (see _has_room); guarded
        # by websocket-client's send lock, like every write
        self._room = 0
        # set when a write was cut off inside a frame (Ctrl+C between the parts
        # of a partial write): nothing may follow it on the wire, not even a
        # close frame
        self._torn = False
        self._fragments: List[bytes] = []  # of a fragmented message being received
        self._fragment_opcode = OPCODE_BINARY
        self._close_lock = threading.Lock()
        #: Close code of the peer's close frame (None until one arrived, or if it had none).
        self.close_code: Optional[int] = None
        #: Close reason of the peer's close frame (``""`` if none).
        self.close_reason = ""
        #: True once the peer's close frame arrived.
        self.closed_by_peer = False

    def __repr__(self) -> str:
        return f"<WebSocketTransport {self._redact(self.url)}>"

    def _redact(self, text: object) -> str:
        return redact(text, self._secrets)

    # -------------------------------------------------------------- lifecycle
    def connect(self, timeout: float) -> None:
        """Open the connection (HTTP upgrade) within ``timeout`` seconds.

        Raises
        ------
        AuthenticationError
            The server answered the upgrade with 401 or 403.
        ConnectionError
            Any other refusal status, or the host could not be reached.
        TimeoutError
            No answer within ``timeout``.
        """
        import websocket

        # recv() decodes text frames itself (strict UTF-8, in C): websocket-client's
        # own validation, in Python, cost ~60 us per frame for the same check
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        try:
            ws.connect(self.url, header=self._headers, timeout=timeout)  # type: ignore[no-untyped-call]
        except websocket.WebSocketBadStatusException as exc:
            status = getattr(exc, "status_code", None)
            if status in (401, 403):
                raise AuthenticationError(
                    f"{self.service} refused the credentials (HTTP {status}); "
                    "check the token or request a new one",
                    status_code=status,
                ) from exc
            raise ConnectionError(
                f"{self.service} refused the WebSocket upgrade with HTTP {status}: "
                f"{self._redact(exc)}"
            ) from exc
        except (websocket.WebSocketTimeoutException, socket.timeout) as exc:
            raise TimeoutError(
                f"{self.service} did not answer within {timeout} s ({self._redact(self.url)})"
            ) from exc
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionError(
                f"cannot connect to {self.service} at {self._redact(self.url)}: {self._redact(exc)}"
            ) from exc
        ws.settimeout(None)
        # from here on voxsync reads and writes the frames itself; websocket-client
        # did the handshake (reading the reply byte by byte, so no frame is left
        # in a buffer of its own) and its send lock serialises the writes
        self._ws = ws

    def close(self, status: int = 1000) -> None:
        """Send a close frame (best effort) and close the socket; idempotent.

        A thread blocked in :meth:`recv` returns ``None`` promptly.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        ws = self._ws
        if ws is None:
            return
        sock = getattr(ws, "sock", None)
        # a writer stuck in send() (the peer stopped reading) holds websocket-client's
        # send lock, and send_close() would wait for it forever: skip the close frame
        lock = getattr(ws, "lock", None)
        if self._torn:
            log.debug("a frame was cut off: closing %s without a close frame", self.service)
        elif lock is None or lock.acquire(timeout=0.5):
            if lock is not None:
                lock.release()
            try:
                if sock is not None:
                    sock.settimeout(0.5)
                ws.send_close(status)
            except Exception:
                log.debug("sending the close frame failed", exc_info=True)
        else:
            log.debug("a send is stuck: closing %s without a close frame", self.service)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv()
        except OSError:
            pass
        try:
            ws.shutdown()
        except Exception:
            log.debug("closing the socket failed", exc_info=True)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    # -------------------------------------------------------------------- I/O
    def recv(self, timeout: Optional[float] = None) -> Optional[Union[str, bytes]]:
        """Next message: ``str`` (text frame), ``bytes`` (binary) or None when closed.

        Pings are answered automatically. With ``timeout`` (for handshakes on
        the caller's thread) :class:`~voxsync.errors.TimeoutError` is raised
        when nothing arrives in time; without it, waits indefinitely. One
        thread at a time reads (the handshake, then the reader thread).

        Raises
        ------
        RemoteProtocolError
            A text frame that is not UTF-8, or a frame that breaks RFC 6455.
        ConnectionError
            The connection failed or dropped without a close frame.
        """
        ws = self._ws
        if ws is None or self._closed:
            return None
        sock = ws.sock
        if sock is None:
            return None
        if timeout is not None:
            sock.settimeout(timeout)
        try:
            opcode, data = self._recv_message(sock)
        except socket.timeout as exc:
            raise TimeoutError(f"{self.service} sent nothing within {timeout} s") from exc
        except (OSError, _Lost) as exc:
            if self._closed:
                return None
            # a clean close arrives as a close frame (below); this is a dropped connection
            raise ConnectionError(f"connection to {self.service} failed: {exc}") from exc
        except _Violation as exc:
            if self._closed:
                return None
            raise RemoteProtocolError(
                f"{self.service} broke the WebSocket protocol: {exc}"
            ) from exc
        finally:
            if timeout is not None and not self._closed:
                try:
                    sock.settimeout(None)
                except OSError:
                    pass
        if opcode == OPCODE_CLOSE:
            self._peer_closed(data)
            return None
        if opcode == OPCODE_TEXT:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError(
                    f"{self.service} sent a text frame that is not UTF-8"
                ) from exc
        return data

    def _recv_message(self, sock: socket.socket) -> Tuple[int, bytes]:
        """Read frames until a whole message or a close frame; answer pings meanwhile."""
        while True:
            opcode, fin, payload = self._recv_frame(sock)
            if opcode >= OPCODE_CLOSE:  # a control frame, maybe between fragments
                if not fin or len(payload) > 125:
                    raise _Violation("a control frame fragmented or over 125 bytes")
                if opcode == OPCODE_CLOSE:
                    self._answer_close()
                    return opcode, payload
                if opcode == OPCODE_PING:
                    self._send(payload, OPCODE_PONG)
                elif opcode != OPCODE_PONG:
                    raise _Violation(f"unknown opcode {opcode}")
                continue
            fragments = self._fragments
            if opcode == OPCODE_CONT:
                if not fragments:
                    raise _Violation("a continuation frame without a message to continue")
                fragments.append(payload)
                if not fin:
                    continue
                self._fragments = []
                return self._fragment_opcode, b"".join(fragments)
            if opcode != OPCODE_TEXT and opcode != OPCODE_BINARY:
                raise _Violation(f"unknown opcode {opcode}")
            if fragments:
                raise _Violation("a new message before the end of a fragmented one")
            if fin:
                return opcode, payload
            self._fragments = [payload]
            self._fragment_opcode = opcode

    def _recv_frame(self, sock: socket.socket) -> Tuple[int, bool, bytes]:
        """One frame (RFC 6455, section 5.2): opcode, FIN bit, payload.

        Reads the socket in large pieces into a buffer, so a frame usually
        takes one ``recv`` call or none (frames that arrived together).
        """
        buf = self._rbuf
        while len(buf) < 2:
            self._fill(sock, 2)
        first, second = buf[0], buf[1]
        if second & 0x80:
            raise _Violation("a masked frame from the server")
        if first & 0x70:
            raise _Violation("reserved bits set, but no extension was negotiated")
        n = second & 0x7F
        start = 2
        if n == 126:
            while len(buf) < 4:
                self._fill(sock, 4)
            n = (buf[2] << 8) | buf[3]
            start = 4
        elif n == 127:
            while len(buf) < 10:
                self._fill(sock, 10)
            n = int.from_bytes(buf[2:10], "big")
            if n >> 63:
                raise _Violation("a frame length over 2**63")
            start = 10
        end = start + n
        while len(buf) < end:
            self._fill(sock, end)
        payload = bytes(buf[start:end])
        del buf[:end]
        return first & 0x0F, bool(first & 0x80), payload

    def _fill(self, sock: socket.socket, want: int) -> None:
        buf = self._rbuf
        # between frames a reader may wait for minutes: it waits with a
        # one-byte peek, so an idle connection does not hold a 4 KiB receive
        # buffer meanwhile (a plain socket; TLS takes no flags)
        if not buf and not hasattr(sock, "context") and not sock.recv(1, socket.MSG_PEEK):
            raise _Lost("the connection was lost without a close frame")
        data = sock.recv(min(max(_RECV_SIZE, want - len(buf)), _RECV_MAX))
        if not data:
            raise _Lost("the connection was lost without a close frame")
        buf += data

    def _answer_close(self) -> None:
        # a courtesy: when the peer has already gone (it closed with a code and
        # shut the socket), the answer fails, which must not hide what it said
        try:
            self._send(struct.pack("!H", 1000), OPCODE_CLOSE)
        except ConnectionError:
            log.debug("answering %s's close frame failed", self.service, exc_info=True)

    def _peer_closed(self, payload: bytes) -> None:
        self.closed_by_peer = True
        if len(payload) >= 2:
            self.close_code = int.from_bytes(payload[:2], "big")
            self.close_reason = self._redact(payload[2:].decode("utf-8", "replace"))
        log.debug(
            "%s closed the WebSocket: %s %r", self.service, self.close_code, self.close_reason
        )

    def disconnected_error(self, what: str) -> DisconnectedError:
        """A :class:`~voxsync.errors.DisconnectedError` for a stream the peer ended.

        ``what`` says what was going on (``"before the end of the stream"``).
        The error carries the peer's close ``code`` and ``reason`` (None and
        ``""`` when the connection dropped without a close frame), and its
        message quotes them.
        """
        if self.close_code is not None:
            detail = f" (close code {self.close_code}"
            detail += f": {self.close_reason})" if self.close_reason else ")"
        elif self.closed_by_peer:
            detail = " (close frame without a code)"
        else:
            detail = ""
        return DisconnectedError(
            f"{self.service} closed the connection {what}{detail}",
            code=self.close_code,
            reason=self.close_reason,
        )

    def send_text(self, text: str) -> None:
        """Send one text frame (any thread; waits while the peer does not read)."""
        self._send(text.encode("utf-8"), OPCODE_TEXT)

    def send_binary(self, data: bytes) -> None:
        """Send one binary frame (any thread; waits while the peer does not read)."""
        self._send(data, OPCODE_BINARY)

    def ping(self, payload: bytes = b"") -> None:
        """Send a WebSocket ping (keepalive)."""
        self._send(payload, OPCODE_PING)

    def _send(self, data: bytes, opcode: int) -> None:
        ws = self._ws
        if ws is None or self._closed:
            raise ConnectionError(f"the connection to {self.service} is closed")
        frame = encode_frame(opcode, data)
        try:
            with ws.lock:  # websocket-client's own sends (pong, close) take it too
                sock = ws.sock
                if sock is None or self._torn:
                    raise ConnectionError(f"the connection to {self.service} is closed")
                sock.sendall(frame)
                self._room -= len(frame)
        except OSError as exc:
            raise ConnectionError(f"sending to {self.service} failed: {exc}") from exc

    def send_now(self, build: Callable[[], Optional[Frame]], size: int) -> bool:
        """Send the frame ``build()`` returns now, if that cannot block; else send nothing.

        For a sender that would otherwise hand the frame to a writer thread:
        called on any thread, it never waits for the peer. It declines
        (returns False without calling ``build``) when another thread is
        sending on this socket, or when the socket's send buffer may not
        take ``size`` bytes at once (on Linux its free space is asked of the
        kernel; elsewhere only plain sockets that select() finds writable
        are written, and nothing is written through TLS). ``build`` runs
        with the socket's send lock held, so frames go out in the order
        they were built; it returns the frame (``str``: a text frame,
        ``bytes``: binary), or None to send nothing (then True is returned).
        In the rare case the kernel takes only part of the frame, the rest
        is written waiting, as :meth:`send_binary` would; :meth:`close`
        ends such a wait.

        Parameters
        ----------
        build : callable
            Makes the frame; called at most once.
        size : int
            An upper bound of the frame's length in bytes.

        Returns
        -------
        bool
            True if the frame was sent (or ``build`` returned None), False
            if nothing was (send it the usual way then).

        Raises
        ------
        ConnectionError
            The write failed (``build``'s own errors propagate as they are).
        """
        ws = self._ws
        if ws is None or self._closed:
            return False
        lock = ws.lock
        if not lock.acquire(False):
            return False
        try:
            sock = ws.sock
            if sock is None or (size > self._room and not self._has_room(sock, size)):
                return False
            frame = build()
            if frame is None:
                return True
            if isinstance(frame, str):
                data = encode_frame(OPCODE_TEXT, frame.encode("utf-8"))
            else:
                data = encode_frame(OPCODE_BINARY, frame)
            if _DONTWAIT and not hasattr(sock, "context"):  # a plain socket (TLS takes no flags)
                try:
                    sent = sock.send(data, _DONTWAIT)
                except BlockingIOError:
                    return False  # no room after all: nothing of the frame went out
                if sent < len(data):  # the rest of the frame must follow before anything else
                    self._send_rest(sock, memoryview(data)[sent:])
            else:
                self._send_rest(sock, data)
            self._room -= len(data)
            return True
        except OSError as exc:
            raise ConnectionError(f"sending to {self.service} failed: {exc}") from exc
        finally:
            lock.release()

    def _send_rest(self, sock: socket.socket, data: Union[bytes, bytearray, memoryview]) -> None:
        """``sock.sendall(data)``, marking the stream torn if it stops inside a frame.

        On the caller's thread a Ctrl+C may interrupt the write after part of
        the frame went out; any frame after it, a close frame included,
        would then be read as the rest of the cut one.
        """
        try:
            sock.sendall(data)
        except BaseException:
            self._torn = True
            raise

    def _has_room(self, sock: socket.socket, size: int) -> bool:
        """True when ``size`` more bytes fit, with a margin, in the socket's send buffer.

        On Linux, asks the kernel what is queued and keeps the room found in
        ``_room``, from which every write (under the send lock) subtracts
        its size: what the kernel holds only shrinks meanwhile, so the
        figure stays a lower bound and the kernel is asked again only when
        it runs out, not for every frame.
        """
        if _TIOCOUTQ is not None:
            queued: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0"))[0]
            # the kernel counts its bookkeeping against the buffer too: keep half spare
            self._room = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2 - queued
            return size <= self._room
        if not _DONTWAIT or hasattr(sock, "context"):  # pragma: no cover - other platforms
            return False
        return bool(select.select((), (sock,), (), 0)[1])  # pragma: no cover
