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
* the send queue is a :class:`HandOffQueue`: the writer of audio blocks, with
  a bound, until engine.io's backlog has room, so back-pressure reaches the
  connection's own queue (and its overflow policy) instead of piling up in
  engine.io's unbounded one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import socket
import threading
import time
import weakref
from typing import Any, Callable, Dict, Optional, cast

import engineio
import requests
import requests.adapters
import socketio
import urllib3
import urllib3.connection

from voxsync.redact import RedactingFilter

__all__ = [
    "JOIN_TIMEOUT",
    "SUPPORTED_ENGINEIO",
    "THREAD_ROLES",
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
        super().__init__(*args, **kwargs)
        self._close_lock = threading.Lock()

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

    def start_background_task(
        self, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> threading.Thread:
        role = THREAD_ROLES.get(getattr(target, "__name__", ""), "sio-task")
        return self.spawn(role, functools.partial(target, *args, **kwargs))

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

    def _handle_eio_message(self, data: Any) -> None:
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
