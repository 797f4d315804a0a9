"""The Socket.IO transport's direct WebSocket writes: order, bounds, failure, threads."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any, Iterator, List

import engineio.packet
import pytest
import websocket
from websockets.sync.server import ServerConnection
from wsserver import RawServer, WebSocketServer

from voxsync.aiola import AiolaClient, AiolaConnection
from voxsync.emulators.aiola import AiolaEmulator
from voxsync.emulators.engine import make_engine
from voxsync.pool import pool
from voxsync.transport.socketio import CONTROL_WAIT, DirectWriter

CHUNK = 3200  # 100 ms of 16 kHz mono s16le


class Collector:
    """Server side: every message received on the one connection, in order."""

    def __init__(self) -> None:
        self.messages: List[Any] = []
        self.cond = threading.Condition()
        self.release = threading.Event()

    def handler(self, conn: ServerConnection) -> None:
        try:
            for message in conn:
                with self.cond:
                    self.messages.append(message)
                    self.cond.notify_all()
        except Exception:
            pass

    def wait_for(self, count: int, timeout: float = 10.0) -> List[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"got {len(self.messages)} of {count} messages"
                self.cond.wait(left)
            return list(self.messages)


@contextlib.contextmanager
def held_elsewhere(writer: DirectWriter) -> Iterator[None]:
    """Hold the writer's lock on another thread for the block, as another sender would."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold, name="lock-holder")
    holder.start()
    try:
        assert held.wait(5)
        yield
    finally:
        release.set()
        holder.join(5)


@pytest.fixture
def collector() -> Iterator[tuple]:
    coll = Collector()
    with WebSocketServer(coll.handler) as server:
        ws = websocket.create_connection(server.url, enable_multithread=True, timeout=10)
        try:
            yield coll, ws
        finally:
            ws.close(timeout=1)


def message(text: str) -> engineio.packet.Packet:
    return engineio.packet.Packet(engineio.packet.MESSAGE, data=text)


def test_packets_from_several_threads_keep_each_senders_order(collector: tuple) -> None:
    coll, ws = collector
    broken: List[int] = []
    writer = DirectWriter(ws, lambda: broken.append(1))

    def sender(k: int) -> None:
        for i in range(200):
            if i % 2:
                writer.send(engineio.packet.Packet(engineio.packet.MESSAGE, data=bytes([k, i])))
            else:
                writer.send(message(f"{k}-{i}"))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    got = coll.wait_for(800)
    assert len(got) == 800 and not broken and writer.pending == 0
    for k in range(4):
        mine = []
        for m in got:
            if isinstance(m, str) and m.startswith(f"4{k}-"):
                mine.append(int(m.split("-")[1]))
            elif isinstance(m, bytes) and m[0] == k:  # binary: engine.io adds no prefix
                mine.append(m[1])
        assert mine == list(range(200)), k


def test_a_bounded_sender_leaves_its_packet_to_the_next_write(collector: tuple) -> None:
    coll, ws = collector
    writer = DirectWriter(ws, lambda: None)
    with held_elsewhere(writer):  # another sender is writing (e.g. stuck on a full socket)
        started = time.monotonic()
        writer.send(message("pong-like"), 0.1)
        waited = time.monotonic() - started
        assert 0.08 <= waited < 1.0
        assert writer.pending == 1  # not lost: waiting for the next write
    writer.send(message("audio"))  # a writer without a bound sends both, in order
    assert coll.wait_for(2) == ["4pong-like", "4audio"]
    assert writer.pending == 0


def test_a_packet_sent_while_the_lock_was_held_is_written_by_the_holder(
    collector: tuple,
) -> None:
    coll, ws = collector
    writer = DirectWriter(ws, lambda: None)
    gate = threading.Event()
    real_send = ws.send

    def slow_send(data: Any, *args: Any) -> Any:
        gate.wait(5)  # the holder is busy writing ...
        return real_send(data, *args)

    ws.send = slow_send
    holder = threading.Thread(target=writer.send, args=(message("first"),))
    holder.start()
    time.sleep(0.1)
    writer.send(message("second"), 0.0)  # ... so this one gives up at once
    assert writer.pending == 2
    gate.set()
    holder.join(5)
    assert coll.wait_for(2) == ["4first", "4second"]
    assert writer.pending == 0


def test_a_failed_write_reports_once_and_drops_what_was_pending(collector: tuple) -> None:
    coll, ws = collector
    broken: List[float] = []
    writer = DirectWriter(ws, lambda: broken.append(time.monotonic()))
    writer.send(message("before"))
    coll.wait_for(1)
    ws.sock.close()  # the socket is gone under the writer
    writer.send(message("lost"))
    assert writer.broken and len(broken) == 1 and writer.pending == 0
    writer.send(message("after"))  # no exception, nothing written, reported once
    writer.join(0.5)
    assert len(broken) == 1 and writer.pending == 1
    assert coll.messages == ["4before"]


def test_a_packet_that_cannot_be_encoded_raises_to_its_sender_only(collector: tuple) -> None:
    coll, ws = collector
    writer = DirectWriter(ws, lambda: None)
    with pytest.raises(TypeError):
        writer.send(engineio.packet.Packet(engineio.packet.MESSAGE, data={"x": object()}))
    assert writer.pending == 0 and not writer.broken
    writer.send(message("next"))  # the packets after it still go out
    assert coll.wait_for(1) == ["4next"]


def test_join_without_a_timeout_does_not_wait(collector: tuple) -> None:
    _, ws = collector
    writer = DirectWriter(ws, lambda: None)
    with held_elsewhere(writer):
        writer.send(message("x"), 0.0)
        started = time.monotonic()
        writer.join()  # engine.io's reader at its end: no thread to wait for
        writer.join(0.1)  # with a timeout: bounded
        assert time.monotonic() - started < 1.0
    assert writer.pending == 1


def test_a_write_cut_off_by_ctrl_c_is_followed_by_nothing() -> None:
    """Ctrl+C inside a write on a caller's thread: nothing more goes on that socket.

    The server does not read, so the kernel takes only part of a packet far
    larger than the socket buffers and SIGINT interrupts the write. Part of
    that frame is out: any byte after it (a later packet, the CLOSE of the
    disconnect) would read as the frame's rest.
    """
    server = RawServer()
    ws = websocket.create_connection(server.url, enable_multithread=True, timeout=10)
    server.ready()
    broken: List[str] = []
    writer = DirectWriter(ws, lambda: broken.append(threading.current_thread().name))
    payload = os.urandom(16 << 20)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            writer.send(engineio.packet.Packet(engineio.packet.MESSAGE, data=payload))
            time.sleep(5)  # not reached when the write is interrupted
    finally:
        timer.cancel()
        timer.join()
    try:
        assert writer.broken and writer.pending == 0
        assert broken == [threading.current_thread().name]
        out = server.drain()  # what the kernel took before the interrupt
        assert out[:2] == bytes((0x82, 0xFF))  # the binary frame, masked, 64-bit length
        assert int.from_bytes(out[2:10], "big") == len(payload)
        assert 0 < len(out) < 14 + len(payload)  # cut off inside the frame
        writer.send(message("close-like"), 0.0)
        writer.send(message("audio"))
        assert server.drain() == b""  # nothing followed the cut frame
    finally:
        ws.sock.close()
        server.close()


# ------------------------------------------------------------- with aiOla
def _roles(conn: AiolaConnection) -> set:
    workers = pool.threads()
    return {
        t.name.split("-", 3)[3]
        for t in threading.enumerate()
        if t.name.startswith(f"voxsync-{conn.name}-") and t not in workers
    }


@pytest.fixture
def quick_pings() -> Iterator[AiolaEmulator]:
    engine = make_engine("scripted", every_bytes=16000, transcripts=["one", "two"], partial_ms=0)
    with AiolaEmulator(engine=engine, ping_interval=0.2, ping_timeout=0.4) as emulator:
        yield emulator


@pytest.mark.parametrize("transports", [("polling", "websocket"), ("websocket",)])
def test_the_reader_answers_pings_on_an_idle_websocket(
    quick_pings: AiolaEmulator, transports: tuple
) -> None:
    client = AiolaClient(api_key="k", base_url=quick_pings.base_url)
    conn = client.stt.stream(transports=transports, finish_silence=0)
    events: List[str] = []
    for name in ("reconnecting", "disconnect", "error"):
        conn.on(name, lambda ev, name=name: events.append(name))
    conn.connect(timeout=10)
    try:
        assert _roles(conn) == {"reader"}  # no engine.io writer thread
        # ten ping intervals without audio: only the reader's pongs keep it open
        assert not conn.wait(timeout=2.0)
        assert conn.connected and events == []
        for _ in range(10):
            conn.send(bytes(CHUNK))
        # the pongs still go out between audio packets
        assert not conn.wait(timeout=1.0)
        assert conn.connected and events == []
    finally:
        conn.close()
    assert conn.metrics.snapshot()["bytes_sent"] == 10 * CHUNK


def test_long_polling_keeps_engineios_writer_thread(quick_pings: AiolaEmulator) -> None:
    client = AiolaClient(api_key="k", base_url=quick_pings.base_url)
    conn = client.stt.stream(transports=("polling",), finish_silence=0)
    transcripts: List[str] = []
    conn.on("transcript", lambda ev: transcripts.append(ev.text))
    conn.connect(timeout=10)
    try:
        assert _roles(conn) == {"reader", "sio-writer"}
        for _ in range(10):  # 1 s of audio: a scripted transcript per 0.5 s
            conn.send(bytes(CHUNK))
        deadline = time.monotonic() + 10
        while len(transcripts) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert transcripts == ["one", "two"]
        assert not conn.wait(timeout=1.0) and conn.connected  # pings answered by POST
    finally:
        conn.close()


def test_close_is_bounded_while_the_socket_is_full_and_the_lock_held(
    quick_pings: AiolaEmulator,
) -> None:
    client = AiolaClient(api_key="k", base_url=quick_pings.base_url)
    conn = client.stt.stream(transports=("websocket",), finish_silence=0)
    conn.connect(timeout=10)
    sio = conn._sio
    assert sio is not None and sio.eio.direct is not None
    writer = sio.eio.direct
    with held_elsewhere(writer):  # as if a write were stuck on a stalled server
        started = time.monotonic()
        conn.close()
        assert time.monotonic() - started < 2.5
        assert conn.state == "closed"
    assert CONTROL_WAIT < 1.0
