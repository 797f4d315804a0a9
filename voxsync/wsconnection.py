"""The shared base of every WebSocket product: :class:`WebSocketConnection`.

A WebSocket product (an Uh!ive conversation, an Uh!ive bot, ...) differs
from another only in its codec, its URL and headers, and how it recognises
that the service accepted the stream. Everything else lives here, once:

* the transport (:class:`~voxsync.transport.websocket.WebSocketTransport`)
  and the lock that guards the codec (``self._codec_lock``);
* the handshake against one deadline: fresh codec, transport (and token),
  upgrade, handshake frames, replies until the stream is accepted;
* the reader loop on the reader thread, handing every frame to the codec;
* control frames written by the writer thread in order with the audio
  (:meth:`~voxsync.connection.Connection._send_control`,
  :meth:`~voxsync.connection.Connection._request`);
* the close, and the peer's close code and reason in the
  :class:`~voxsync.errors.DisconnectedError` of a stream the service ended.

A subclass implements :meth:`WebSocketConnection._reset_codec`,
:meth:`~WebSocketConnection._create_transport`,
:meth:`~WebSocketConnection._handshake_frames`,
:meth:`~WebSocketConnection._handshake_reply` and
:meth:`~WebSocketConnection._receive`, plus the audio hooks of
:class:`~voxsync.connection.Connection` (``_write_chunk``, ``_end_of_stream``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, ClassVar, Optional, Sequence, Union

from voxsync.connection import Connection
from voxsync.errors import (
    AuthenticationError,
    ConnectionError,
    DisconnectedError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.transport.websocket import WebSocketTransport

__all__ = ["Frame", "WebSocketConnection"]

log = logging.getLogger(__name__)

#: Seconds a failed write waits for the reader to report the peer's close frame.
_READER_GRACE = 0.5

#: A WebSocket message: ``str`` for a text frame, ``bytes`` for a binary one.
Frame = Union[str, bytes]


class WebSocketConnection(Connection):
    """Base class of the connections that speak a protocol over one WebSocket.

    Takes the arguments of :class:`~voxsync.connection.Connection`. Threads:
    the handshake runs on the caller of ``connect()``; :meth:`_receive` on
    the reader thread (``voxsync-<provider>-<n>-reader``); audio, control
    frames and keepalives on the writer, handlers on the dispatcher (both
    lanes of the shared worker pool, :mod:`voxsync.pool`).

    Notes
    -----
    Subclass hooks (all called with nothing locked unless said):

    ``_reset_codec()``
        Make a fresh codec (under ``_codec_lock``); a failed earlier
        ``connect()`` may have left one half-way through a handshake.
    ``_create_transport(timeout)``
        Return an unconnected transport (URL, headers, secrets to redact);
        may fetch a token within ``timeout`` seconds.
    ``_handshake_frames()``
        Frames to send once the upgrade succeeded (under ``_codec_lock``).
    ``_handshake_reply(frame)``
        One frame received during the handshake: True once the service
        accepted the stream; raise a voxsync error if it refused.
    ``_audio_frame(chunk)``
        The frame that carries one chunk of audio, or None to send nothing
        (on the writer, or on the caller of ``send()`` when it writes the
        chunk itself; with the socket's send lock held). A product that
        implements it gets :meth:`_write_chunk` and the write-through of
        :meth:`~voxsync.connection.Connection.send` from this class; one
        that does not implements ``_write_chunk`` itself.
    ``_receive(frame)``
        One frame received on an open stream (reader thread): decode it,
        :meth:`~voxsync.connection.Connection._offer_reply` it to pending
        requests, deliver events, call ``_stream_ended()`` at the service's
        end-of-stream marker, ``_fail()`` on a fatal error.
    """

    _uses_reader_thread: ClassVar[bool] = True
    #: False for services that send nothing once the upgrade succeeded.
    _awaits_reply: ClassVar[bool] = True
    #: How messages name the service.
    service: ClassVar[str] = "the service"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Guards the codec: the handshake, the reader and the writer share it.
        self._codec_lock = threading.RLock()
        self._transport: Optional[WebSocketTransport] = None
        self._transport_lock = threading.Lock()

    # ------------------------------------------------------ subclass hooks
    def _reset_codec(self) -> None:
        """Start from a fresh codec (caller's thread, under ``_codec_lock``)."""

    def _create_transport(self, timeout: float) -> WebSocketTransport:
        """Return the (unconnected) transport; may fetch a token (caller's thread)."""
        raise NotImplementedError

    def _handshake_frames(self) -> Sequence[Frame]:
        """Frames that open the stream once the socket is up (under ``_codec_lock``)."""
        return ()

    def _handshake_reply(self, frame: Frame) -> bool:
        """One handshake frame; True once the service accepted the stream (caller's thread)."""
        return True

    def _receive(self, frame: Frame) -> None:
        """One frame of the open stream (reader thread)."""

    def _audio_frame(self, chunk: bytes) -> Optional[Frame]:
        """The frame carrying ``chunk``, None to send nothing (see the class notes)."""
        raise NotImplementedError(f"{type(self).__name__} has no audio frames")

    def _refusal(self, exc: VoxsyncError) -> VoxsyncError:
        """The error to raise when the upgrade failed with ``exc`` (caller's thread).

        The default raises ``exc`` itself; a product maps the HTTP status of a
        refused upgrade to its own errors here.
        """
        return exc

    def _accept(self, transport: WebSocketTransport, remaining: Callable[[], float]) -> None:
        """Open the stream on a connected socket (caller's thread).

        The default sends :meth:`_handshake_frames`, then reads replies, each
        within ``remaining()`` seconds, until :meth:`_handshake_reply` accepts
        one. A product whose service never answers the upgrade sets
        ``_awaits_reply = False``; one with its own readiness protocol
        overrides this method.
        """
        with self._codec_lock:
            frames = list(self._handshake_frames())
        for frame in frames:
            self._write_frame(frame)
        while self._awaits_reply:
            try:
                data = transport.recv(timeout=remaining())
            except TimeoutError:
                continue  # remaining() raises now that the deadline has passed
            if data is None:
                raise transport.disconnected_error("before accepting the stream")
            if self._handshake_reply(data):
                break

    # ------------------------------------------------------ runtime hooks
    def _open(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"connecting to {self.service} took more than {timeout} s")
            return left

        with self._codec_lock:
            self._reset_codec()
        transport = self._create_transport(remaining())
        with self._transport_lock:
            self._transport = transport
        try:
            transport.connect(remaining())
        except (AuthenticationError, ConnectionError) as exc:
            refusal = self._refusal(exc)
            if refusal is exc:
                raise
            raise refusal from exc
        self._accept(transport, remaining)
        log.debug("%s: %s accepted the stream", self.name, self.service)

    def _read_loop(self) -> None:
        transport = self._transport
        if transport is None:
            return
        while True:
            data = transport.recv()
            if data is None:
                return
            self._receive(data)

    def _write_control(self, frame: Union[str, bytes]) -> None:
        self._write_frame(frame)

    def _write_chunk(self, chunk: bytes) -> None:
        frame = self._audio_frame(chunk)
        if frame is not None:
            self._write_frame(frame)

    def _write_through(self, chunk: bytes) -> bool:
        # send()'s caller writes the frame itself when the socket has room
        # for it at once (see Connection._write_through)
        if type(self)._audio_frame is WebSocketConnection._audio_frame:
            return False  # the product writes its audio its own way
        transport = self._transport
        if transport is None:
            return False
        # the frame's bound: base64 in JSON (4/3), header and envelope
        return transport.send_now(lambda: self._audio_frame(chunk), 2 * len(chunk) + 512)

    def _write_failed(self, error: Exception) -> None:
        # as _write_frame does for the writer's own writes
        self._let_reader_report()
        if isinstance(error, DisconnectedError) or not isinstance(error, ConnectionError):
            raise error
        raise DisconnectedError(f"sending to {self.service} failed: {error}") from error

    def _keepalive(self) -> None:
        transport = self._transport
        if transport is not None and not transport.closed:
            transport.ping()

    def _close_transport(self) -> None:
        with self._transport_lock:
            transport = self._transport
        if transport is not None:
            transport.close()

    def _peer_closed_error(self, what: str) -> DisconnectedError:
        transport = self._transport
        if transport is None:
            return super()._peer_closed_error(what)
        return transport.disconnected_error(what)

    # ------------------------------------------------------ services
    def _write_frame(self, frame: Frame) -> None:
        """Write one frame now (writer thread, or the handshake on the caller's thread).

        Raises
        ------
        DisconnectedError
            The socket is closed or the write failed.
        """
        transport = self._transport
        if transport is None or transport.closed:
            raise DisconnectedError(f"the connection to {self.service} is closed")
        try:
            if isinstance(frame, str):
                transport.send_text(frame)
            else:
                transport.send_binary(frame)
        except ConnectionError as exc:
            self._let_reader_report()
            if isinstance(exc, DisconnectedError):
                raise
            raise DisconnectedError(f"sending to {self.service} failed: {exc}") from exc

    def _let_reader_report(self) -> None:
        """After a failed write, give the reader a moment to read the peer's close frame.

        A service that closes with a code (1011, 1008) and then drops the
        socket makes our next write fail with a broken pipe while its close
        frame still waits, unread, in the receive buffer. The reader's
        failure carries the code and reason, and the first failure wins, so
        the writer waits (bounded) for the reader to end before failing.
        """
        reader = self._threads.get("reader")
        if reader is not None and reader is not threading.current_thread():
            reader.join(_READER_GRACE)
