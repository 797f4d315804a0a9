"""The Socket.IO transport adapter: pinned to python-engineio's private API; the hand-off."""

from __future__ import annotations

import inspect
import queue
import threading
import time
from importlib.metadata import version

import engineio
import engineio.base_client
import engineio.client
import socketio

from voxsync.transport.socketio import (
    SUPPORTED_ENGINEIO,
    THREAD_ROLES,
    EngineIOClient,
    HandOffQueue,
    SocketIOClient,
)


def _release(text: str) -> tuple:
    return tuple(int(p) for p in text.split(".")[:2])


def test_installed_engineio_is_in_the_supported_range() -> None:
    installed = _release(version("python-engineio"))
    low, high = SUPPORTED_ENGINEIO
    assert installed >= _release(low.lstrip(">="))
    assert installed < _release(high.lstrip("<") + ".0")


def test_the_private_api_the_adapter_overrides_is_there() -> None:
    """Fails first when python-engineio changes what the adapter relies on."""
    client = engineio.Client
    for name in ("_read_loop_websocket", "_read_loop_polling", "_write_loop"):
        assert callable(getattr(client, name)), name
    assert set(THREAD_ROLES) == {"_read_loop_websocket", "_read_loop_polling", "_write_loop"}
    assert "kwargs.pop('run_async'" in inspect.getsource(client._trigger_event)
    assert list(inspect.signature(client._send_packet).parameters) == ["self", "pkt"]
    assert list(inspect.signature(client.start_background_task).parameters)[:2] == [
        "self",
        "target",
    ]
    assert {"abort", "reason"} <= set(inspect.signature(client.disconnect).parameters)
    assert callable(client.create_queue)
    assert isinstance(engineio.base_client.connected_clients, list)
    assert hasattr(engineio.packet, "CLOSE") and hasattr(client.reason, "CLIENT_DISCONNECT")
    assert callable(socketio.Client._engineio_client_class)
    assert "Unknown packet type." in inspect.getsource(socketio.Client._handle_eio_message)
    assert SocketIOClient().packet_class.__mro__[1] is socketio.packet.Packet
    # attributes set by the constructor that the adapter reads
    eio = EngineIOClient()
    for name in ("queue", "state", "ws", "read_loop_task", "write_loop_task", "http"):
        assert hasattr(eio, name), name
    assert hasattr(eio, "external_http") and hasattr(eio, "current_transport")
    assert isinstance(eio.queue, HandOffQueue)
    assert callable(eio.http_factory) and not eio.external_http  # a session factory is taken
    assert "self.http_factory()" in inspect.getsource(client._send_request)
    assert isinstance(SocketIOClient().eio, EngineIOClient)


def test_hand_off_blocks_until_the_writer_takes_a_packet() -> None:
    q = HandOffQueue()
    for i in range(5):
        q.put(i)
    assert q.wait_for_room(5, 0.01)  # 5 waiting is within a limit of 5
    taken = []

    def writer() -> None:
        time.sleep(0.2)
        taken.append(q.get())

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.monotonic()
    assert q.wait_for_room(4, 5.0)
    waited = time.monotonic() - started
    thread.join(5)
    assert taken == [0] and 0.15 <= waited < 2.0


def test_hand_off_is_bounded_and_can_be_cancelled_or_woken() -> None:
    q = HandOffQueue()
    for i in range(3):
        q.put(i)
    started = time.monotonic()
    assert not q.wait_for_room(1, 0.2)
    assert 0.15 <= time.monotonic() - started < 2.0
    assert not q.wait_for_room(1, 5.0, cancelled=lambda: True)
    timer = threading.Timer(0.2, q.wake)
    timer.start()
    started = time.monotonic()
    assert not q.wait_for_room(1, 5.0)
    assert time.monotonic() - started < 2.0
    timer.join()
    # put() itself never blocks: control packets and sentinels always go in
    for _ in range(100):
        q.put(None, timeout=0.001)
    assert q.qsize() == 103
    assert isinstance(q, queue.Queue)
