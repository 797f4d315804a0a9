"""Socket.IO client transport: python-socketio / python-engineio, adapted to voxsync.

Every override of python-engineio's private API lives in this one module,
and ``tests/test_transport_socketio.py`` pins it to the supported release
range (:data:`SUPPORTED_ENGINEIO`): the methods and attributes used here
must exist with the expected shape, or the tests fail before anything else
does.

What the adaptation changes:

* background threads are started through a ``spawn(role, target)`` callable
  the connection provides, so they are named after the connection and
  joined by its ``close()`` (:data:`THREAD_ROLES` maps engine.io's loops to
  roles);
* messages are handled on the reader thread, in order, instead of one new
  thread each;
* ``disconnect()`` has bounded waits and works from any thread, the
  reader's included;
* on a WebSocket (directly or after the long-polling upgrade) there is no
  write loop thread: packets are written to the socket by the thread that
  sends them (:class:`DirectWriter`), the connection's writer for audio,
  the reader for its pong replies; the reader is the transport's one
  thread;
* while long-polling (before an upgrade, or when the server offers none)
  engine.io's write loop thread posts the packets, and the send queue is a
  :class:`HandOffQueue`: the writer of audio blocks, with a bound, until
  engine.io's backlog has room, so back-pressure reaches the connection's
  own queue (and its overflow policy) instead of piling up in engine.io's
  unbounded one. On a WebSocket the socket's own buffer is that bound.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import queue
import re
import select
import socket
import threading
import time
import weakref
from typing import Any, Callable, Deque, Dict, Optional, Tuple, cast

import engineio
import requests
import requests.adapters
import socketio
import urllib3
import urllib3.connection
import websocket

from voxsync.redact import RedactingFilter

__all__ = [
    "CONTROL_WAIT",
    "JOIN_TIMEOUT",
    "SUPPORTED_ENGINEIO",
    "THREAD_ROLES",
    "DirectWriter",
    "EngineIOClient",
    "HandOffQueue",
    "MalformedPacketError",
    "SocketIOClient",
    "TransportLogFilter",
]

log = logging.getLogger("voxsync.transport.socketio")

#: python-engineio releases whose private API this module relies on (as in setup.cfg).
SUPPORTED_ENGINEIO = (">=4.9", "<5")

#: Seconds ``disconnect()`` waits for each of engine.io's threads.
JOIN_TIMEOUT = 2.0

#: Seconds a pong (or another packet sent from the reader thread) waits for the
#: socket; when the socket is still busy, the next write sends it.
CONTROL_WAIT = 0.5

#: A Socket.IO ACK without arguments (``3/nsp,<id>[]``): decoded without JSON.
_EMPTY_ACK = re.compile(r"3(?:(/[^,?]*),)?(\d+)\[\]")

#: engine.io's loop functions -> the role their thread gets in the connection.
THREAD_ROLES: Dict[str, str] = {
    "_read_loop_websocket": "reader",
    "_read_loop_polling": "reader",
    "_write_loop": "sio-writer",
}


class TransportLogFilter(RedactingFilter):
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


class HandOffQueue(queue.Queue):  # type: ignore[type-arg]
    """engine.io's send queue, with a blocking, bounded wait for room.

    ``put()`` never blocks (engine.io puts control packets and its writer's
    stop sentinel from any thread, and must not hang); the one writer of
    audio calls :meth:`wait_for_room` first. ``get()`` wakes it as soon as
    engine.io's writer takes a packet; :meth:`wake` wakes it at close.
    """

    def __init__(self) -> None:
        super().__init__()
        self._woken = 0

    def wait_for_room(
        self, limit: int, timeout: float, cancelled: Callable[[], bool] = lambda: False
    ) -> bool:
        """Block until at most ``limit`` packets wait, ``timeout`` runs out or ``cancelled()``.

        Returns
        -------
        bool
            True when there is room; False on timeout or cancellation.
        """
        if self._qsize() <= limit:  # the common case, without the lock
            return True
        deadline = time.monotonic() + timeout
        with self.not_full:
            woken = self._woken
            while self._qsize() > limit:
                if cancelled() or self._woken != woken:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.not_full.wait(remaining)
            return True

    def wake(self) -> None:
        """Wake every :meth:`wait_for_room` (they return False)."""
        with self.not_full:
            self._woken += 1
            self.not_full.notify_all()


class DirectWriter:
    """Writes engine.io packets to a WebSocket on the thread that sends them.

    It stands where engine.io keeps its write loop thread
    (``write_loop_task``): no queue, no thread, no wake-up per packet.
    Packets are written in the order they were sent: each goes into a FIFO
    of pending packets, and whoever holds the write lock writes every
    pending one. A sender without a bound (``wait=None``: the connection's
    writer, sending audio) waits for the lock and for the socket, so the
    socket's buffer is the back-pressure; a bounded sender (the reader's
    pong, the CLOSE of a disconnect) waits at most ``wait`` seconds for the
    lock and for the socket to be writable, and otherwise leaves its packet
    to the next write. A failed write marks the writer broken and calls
    ``on_broken`` (on the thread that wrote); what was pending is dropped
    with the connection, as it would be in engine.io's queue. So does a
    write interrupted by an exception such as ``KeyboardInterrupt`` (which
    then propagates): part of a frame may have gone out, and nothing may
    follow it on the socket.
    """

    def __init__(self, ws: Any, on_broken: Callable[[], None]) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._pending: Deque[Tuple[Any, bool]] = collections.deque()  # (encoded, binary)
        self._on_broken = on_broken
        self.broken = False

    @property
    def pending(self) -> int:
        """Packets sent and not written yet."""
        return len(self._pending)

    def send(self, pkt: Any, wait: Optional[float] = None) -> None:
        """Write ``pkt`` after every packet sent before it (see the class notes).

        The packet is encoded here, on the sender's thread, so that a packet
        that cannot be encoded raises to its sender and never blocks the
        packets after it.
        """
        self._pending.append((pkt.encode(), pkt.binary))
        self._flush(wait)

    def join(self, timeout: Optional[float] = None) -> None:
        """Write what is pending within ``timeout`` seconds; without one, return at once.

        Without a timeout (engine.io's reader at its end, the connection
        gone) there is no thread to wait for.
        """
        if timeout is not None:
            self._flush(timeout)

    def _flush(self, wait: Optional[float]) -> None:
        deadline = None if wait is None else time.monotonic() + wait
        lock = self._lock
        while self._pending and not self.broken:
            if deadline is None:
                lock.acquire()
            elif not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return  # its holder writes what is pending
            try:
                self._write_pending(deadline)
            finally:
                lock.release()
            if self._pending and deadline is not None and time.monotonic() >= deadline:
                return  # the socket stayed busy: the next write sends the rest
            # else: a packet came while the lock was held, from a sender that
            # may have given up on the lock: written here, or by a new holder
            if deadline is None:
                deadline = time.monotonic()

    def _write_pending(self, deadline: Optional[float]) -> None:
        ws = self._ws
        pending = self._pending
        while pending and not self.broken:
            data, binary = pending[0]
            try:
                if deadline is not None and not self._writable(deadline):
                    return
                if binary:
                    ws.send_binary(data)
                else:
                    ws.send(data)
            except (websocket.WebSocketException, OSError, ValueError):
                self._break()
                return
            except BaseException:
                # interrupted inside a write (Ctrl+C on the thread that sends:
                # a caller's connect(), close() or control message): part of
                # the frame may be out, and any byte after it would read as
                # its rest, so nothing more is written on this socket
                self._break()
                raise
            pending.popleft()

    def _break(self) -> None:
        self.broken = True
        self._pending.clear()
        self._on_broken()

    def _writable(self, deadline: float) -> bool:
        sock = self._ws.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("the socket is closed")
        timeout = max(0.0, deadline - time.monotonic())
        return bool(select.select([], [sock], [], timeout)[1])


class _SocketRegistry:
    """The TCP sockets an HTTP session opened, so that a close can cut them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def add(self, sock: Optional[socket.socket]) -> None:
        if sock is not None:
            with self._lock:
                self._sockets.add(sock)

    def shutdown(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _tracked_session(registry: _SocketRegistry) -> requests.Session:
    """A requests session whose connections register their sockets in ``registry``."""

    def track(base: type) -> type:
        def connect(self: Any) -> None:
            cast(Any, base).connect(self)
            registry.add(getattr(self, "sock", None))

        return type(f"Tracked{base.__name__}", (base,), {"connect": connect})

    pools = {
        "http": type(
            "TrackedHTTPPool",
            (urllib3.HTTPConnectionPool,),
            {"ConnectionCls": track(urllib3.connection.HTTPConnection)},
        ),
        "https": type(
            "TrackedHTTPSPool",
            (urllib3.HTTPSConnectionPool,),
            {"ConnectionCls": track(urllib3.connection.HTTPSConnection)},
        ),
    }

    class Adapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    session = requests.Session()
    session.mount("http://", Adapter())
    session.mount("https://", Adapter())
    return session


class EngineIOClient(engineio.Client):  # type: ignore[misc]
    """engineio client whose threads belong to the voxsync connection.

    Set :attr:`spawn` before connecting: ``spawn(role, target) -> Thread``
    starts ``target`` on a thread of the connection.
    """

    spawn: Callable[[str, Callable[[], None]], threading.Thread]
    state: str
    http: Any
    external_http: bool
    queue: HandOffQueue

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sockets = _SocketRegistry()
        if "http_session" not in kwargs:
            kwargs["http_session"] = functools.partial(_tracked_session, self._sockets)
        # Engine.IO's text is decoded strictly in C by websocket-client's recv()
        # (a bad byte ends the transport as before); its pure-Python UTF-8
        # check of every text frame first is the same work done twice
        options = dict(kwargs.get("websocket_extra_options") or {})
        options.setdefault("skip_utf8_validation", True)
        kwargs["websocket_extra_options"] = options
        super().__init__(*args, **kwargs)
        self._close_lock = threading.Lock()
        self._reader_ident: Optional[int] = None
        #: set when a disconnect starts: from then on no write waits without a bound
        self.closing = False
        #: the WebSocket's writer, once the transport is a WebSocket (else None)
        self.direct: Optional[DirectWriter] = None

    def abort_io(self) -> None:
        """Shut down every socket of the transport: blocked reads and writes end at once."""
        ws = self.ws
        sock = getattr(ws, "sock", None) if ws is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._sockets.shutdown()

    def create_queue(self, *args: Any, **kwargs: Any) -> HandOffQueue:
        return HandOffQueue()

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        name = getattr(target, "__name__", "")
        if name == "_write_loop" and self.current_transport == "websocket" and self.ws is not None:
            return self._start_direct_writer()
        role = THREAD_ROLES.get(name, "sio-task")
        task = functools.partial(target, *args, **kwargs)
        if role == "reader":
            task = functools.partial(self._run_reader, task)
        return self.spawn(role, task)

    def _run_reader(self, loop: Callable[[], None]) -> None:
        self._reader_ident = threading.get_ident()
        loop()

    def _start_direct_writer(self) -> DirectWriter:
        """The WebSocket is up: write packets from the senders' threads from now on."""
        writer = DirectWriter(self.ws, self._direct_writer_broke)
        # packets sent before the WebSocket was up (the namespace CONNECT
        # while long-polling) go first, in order
        while True:
            try:
                pkt = self.queue.get_nowait()
            except queue.Empty:
                break
            if pkt is not None:
                writer.send(pkt, JOIN_TIMEOUT)
        self.direct = writer
        return writer

    def _direct_writer_broke(self) -> None:
        """A write failed: the reader's loop ends, as when engine.io's write loop ends."""
        self.logger.warning("WebSocket connection was closed, aborting")
        self.write_loop_task = None
        self.abort_io()  # a reader blocked in recv() returns now

    def _send_packet(self, pkt: Any) -> None:
        writer = self.direct
        if writer is None:
            super()._send_packet(pkt)
            return
        if self.state != "connected":
            return
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(
                "Sending packet %s data %s",
                engineio.packet.packet_names[pkt.packet_type],
                pkt.data if not isinstance(pkt.data, bytes) else "<binary>",
            )
        if pkt.packet_type == engineio.packet.CLOSE or self.closing:
            # disconnect() waits for these, bounded, then cuts the socket (a
            # write stuck on a stalled server holds the lock until then)
            writer.send(pkt, 0.0)
        elif pkt.packet_type == engineio.packet.PONG or (
            threading.get_ident() == self._reader_ident
        ):
            writer.send(pkt, CONTROL_WAIT)  # the reader must get back to reading
        else:
            writer.send(pkt)

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)

    def disconnect(self, abort: bool = False, reason: Any = None) -> None:
        """Close within about :data:`JOIN_TIMEOUT` seconds, from any thread.

        engineio's own version joins the reader without a timeout (a
        long-poll can last 45 s when the server is gone), waits up to that
        long for the server's WebSocket close reply, cannot run on the
        reader thread (which handles server-initiated closes here), and with
        ``abort`` may drain the writer's stop sentinel from the queue. Here
        the writer gets a short while to send the CLOSE packet; then the
        transport's sockets are shut down, which ends blocked reads and
        writes whatever the server does.
        """
        self.closing = True
        with self._close_lock:
            if self.state != "connected":
                # closing already, or closed: engineio would reset the queue
                # under a writer that may still need its stop sentinel
                return
            self._send_packet(engineio.packet.Packet(engineio.packet.CLOSE))
            self.queue.put(None)
            self.state = "disconnecting"
        self.queue.wake()
        current = threading.current_thread()
        self._trigger_event("disconnect", reason or self.reason.CLIENT_DISCONNECT, run_async=False)
        writer = self.write_loop_task
        if writer is not None and writer is not current:
            writer.join(JOIN_TIMEOUT / 2)  # time to flush the CLOSE packet
        self.abort_io()
        if self.current_transport == "websocket" and self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.shutdown()
        deadline = time.monotonic() + JOIN_TIMEOUT / 2
        for thread in (writer, self.read_loop_task):
            if thread is not None and thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        self.state = "disconnected"
        with contextlib.suppress(ValueError):
            engineio.base_client.connected_clients.remove(self)
        http = self.http
        if http is not None and not self.external_http:
            with contextlib.suppress(Exception):
                http.close()


class MalformedPacketError(ValueError):
    """A Socket.IO packet that python-socketio cannot decode."""


class _CheckedPacket(socketio.packet.Packet):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except Exception as exc:  # json / int parsing of a broken packet
            raise MalformedPacketError(f"{type(exc).__name__}: {exc}") from exc


class SocketIOClient(socketio.Client):  # type: ignore[misc]
    """python-socketio client on :class:`EngineIOClient`.

    A packet it cannot decode goes to :attr:`on_malformed` (``fn(data,
    error)``, called on the reader thread) instead of being logged and
    forgotten inside engine.io; the stream goes on.
    """

    eio: EngineIOClient
    packet_class: type
    on_malformed: Optional[Callable[[Any, Exception], None]] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.packet_class is socketio.packet.Packet:
            self.packet_class = _CheckedPacket

    def _engineio_client_class(self) -> type:
        return EngineIOClient

    def disconnect(self) -> None:
        """Send the namespaces' DISCONNECT packets, bounded, then close (see EngineIOClient)."""
        self.eio.closing = True
        super().disconnect()

    def _handle_eio_message(self, data: Any) -> None:
        if type(data) is str and data[:1] == "3" and not self._binary_packet:
            # an acknowledgement of audio, once per chunk: no packet object, no JSON
            ack = _EMPTY_ACK.fullmatch(data)
            if ack is not None:
                self._handle_ack(ack.group(1) or "/", int(ack.group(2)), [])
                return
        try:
            super()._handle_eio_message(data)
        except MalformedPacketError as exc:
            self._malformed(data, exc)
        except ValueError as exc:
            if str(exc) != "Unknown packet type.":
                raise
            self._malformed(data, exc)

    def _malformed(self, data: Any, exc: Exception) -> None:
        self._binary_packet = None
        hook = self.on_malformed
        if hook is None:
            raise exc
        hook(data, exc)


def safe_disconnect(sio: Optional[socketio.Client]) -> None:
    """Disconnect ``sio`` and its engine.io client; never raises."""
    if sio is None:
        return
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
