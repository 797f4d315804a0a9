"""send() writing paced audio on the caller's thread (WebSocket products), and its limits."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest
from conftest import voxsync_threads
from faults.proxy import FaultProxy
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection
from wsserver import WebSocketServer

from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.errors import ConnectionError, DisconnectedError, QueueFullError
from voxsync.transport.websocket import WebSocketTransport
from voxsync.uhlive.connection import ConversationConnection

CHUNK = 3200  # 100 ms of 16 kHz 16-bit mono
BROKEN = "sending to Uh!ive failed: [Errno 32] Broken pipe"  # the transport's error
WRITE_FAILED = f"sending to Uh!ive failed: {BROKEN}"  # the stream's error, either path


class RecordingPhoenixServer(WebSocketServer):
    """Accepts the join, records every audio frame's payload in arrival order, answers the leave."""

    def __init__(self) -> None:
        self.audio: List[bytes] = []
        self.left = threading.Event()
        super().__init__(self._handle, "phx-recorder")

    def _handle(self, ws: ServerConnection) -> None:
        try:
            for message in ws:
                if isinstance(message, bytes):
                    # Phoenix binary push: 5 length bytes, join ref, ref, topic, event, payload
                    skip = 5 + sum(message[1:5])
                    self.audio.append(message[skip:])
                    continue
                join_ref, ref, topic, event, _payload = json.loads(message)
                if event in ("phx_join", "phx_leave"):
                    reply = {"status": "ok", "response": {}}
                    ws.send(json.dumps([join_ref, ref, topic, "phx_reply", reply]))
                if event == "phx_leave":
                    self.left.set()
                    ws.send(json.dumps([join_ref, None, topic, "phx_close", {}]))
        except ConnectionClosed:
            return


@pytest.fixture
def phx() -> Iterator[RecordingPhoenixServer]:
    with RecordingPhoenixServer() as srv:
        yield srv


def conversation(url: str, **options: Any) -> ConversationConnection:
    return ConversationConnection(
        "call-7", "alice", token="t0ken", identifier="acme", api_url=url, **options
    )


class SendNowSpy:
    """Records, per call of ``WebSocketTransport.send_now``, the thread and the outcome."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_on: Optional[int] = None) -> None:
        self.calls: List[Tuple[str, Any]] = []
        original = WebSocketTransport.send_now
        spy = self

        def send_now(self: WebSocketTransport, build: Callable[[], Any], size: int) -> bool:
            if fail_on is not None and len(spy.calls) + 1 == fail_on:
                spy.calls.append((threading.current_thread().name, "failed"))
                raise ConnectionError(BROKEN)
            result = original(self, build, size)
            spy.calls.append((threading.current_thread().name, result))
            return result

        monkeypatch.setattr(WebSocketTransport, "send_now", send_now)


def chunk(i: int) -> bytes:
    return bytes([i % 256]) * CHUNK


def test_paced_audio_is_written_on_the_callers_thread(
    phx: RecordingPhoenixServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendNowSpy(monkeypatch)
    conn = conversation(phx.url).connect(timeout=5)
    for i in range(10):
        conn.send(chunk(i))
        assert conn.metrics.snapshot()["chunks_sent"] == i + 1  # written when send() returns
        time.sleep(0.01)
    conn.finish(timeout=5)
    me = threading.current_thread().name
    assert spy.calls == [(me, True)] * 10
    assert phx.audio == [chunk(i) for i in range(10)]
    assert voxsync_threads() == []


def test_a_burst_is_queued_for_the_writer_and_arrives_in_order(
    phx: RecordingPhoenixServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendNowSpy(monkeypatch)
    conn = conversation(phx.url).connect(timeout=5)
    for i in range(100):  # faster than real time: a file, not a microphone
        conn.send(chunk(i))
    conn.finish(timeout=10)
    assert len(spy.calls) <= 2  # the burst's first chunk (and at most one more) only
    assert phx.audio == [chunk(i) for i in range(100)]
    snap = conn.metrics.snapshot()
    assert snap["chunks_sent"] == snap["chunks_queued"] == 100
    assert voxsync_threads() == []


def test_paced_sends_never_overtake_queued_audio(
    phx: RecordingPhoenixServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendNowSpy(monkeypatch)
    conn = conversation(phx.url).connect(timeout=5)
    sent = 0
    for _round in range(5):
        for _ in range(60):  # a burst: queued, the writer busy with it
            conn.send(chunk(sent))
            sent += 1
        for _ in range(15):  # paced sends while the writer may still be writing
            time.sleep(0.003)
            conn.send(chunk(sent))
            sent += 1
    conn.finish(timeout=10)
    assert phx.audio == [chunk(i) for i in range(sent)]
    assert any(result is True for _, result in spy.calls)  # both paths were taken
    assert voxsync_threads() == []


def test_a_stalled_server_never_blocks_send_and_close_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = SendNowSpy(monkeypatch)
    with (
        UhliveEmulator(engine="scripted", transcripts=["hello"]) as emu,
        FaultProxy(("127.0.0.1", emu.port)) as proxy,
    ):
        conn = ConversationConnection(
            speaker="alice",
            conversation_id="call-9",
            model="en",
            client_id="acme",
            client_secret="acme-secret",
            auth_server=emu.base_url,
            api_url=f"ws://127.0.0.1:{proxy.port}",
            queue_size=8,
            overflow="raise",
        ).connect(timeout=5)
        conn.send(chunk(0))
        proxy.stall()
        big = bytes(conn.input_format.nbytes(0.5))  # the most Uh!ive takes in one frame
        slowest = 0.0
        with pytest.raises(QueueFullError):
            for _ in range(2000):
                time.sleep(0.003)  # paced: each send may write through
                start = time.monotonic()
                try:
                    conn.send(big)
                finally:
                    slowest = max(slowest, time.monotonic() - start)
        assert slowest < 0.25, f"a send() took {slowest:.3f} s"
        assert any(result is True for _, result in spy.calls)  # some went through first
        assert spy.calls[-1][1] is False  # then the full socket declined
        start = time.monotonic()
        conn.close()
        assert time.monotonic() - start < 3.0
    assert voxsync_threads() == []


def test_a_failed_write_through_fails_the_stream_like_a_writer_failure(
    phx: RecordingPhoenixServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    SendNowSpy(monkeypatch, fail_on=3)
    conn = conversation(phx.url)
    errors: List[BaseException] = []
    conn.on("error", errors.append)
    conn.connect(timeout=5)
    for i in range(3):
        conn.send(chunk(i))  # the third write fails: send() still returns
        time.sleep(0.01)
    with pytest.raises(DisconnectedError) as info:
        conn.wait(5)
    assert str(info.value) == WRITE_FAILED
    assert type(info.value.__cause__) is ConnectionError
    with pytest.raises(DisconnectedError, match="failed connection"):
        conn.send(chunk(3))
    assert len(errors) == 1 and errors[0] is info.value
    snap = conn.metrics.snapshot()
    assert (snap["chunks_queued"], snap["chunks_sent"]) == (3, 2)
    conn.close()
    assert phx.audio == [chunk(0), chunk(1)]
    assert voxsync_threads() == []


def test_a_failed_queued_write_gives_the_same_error(
    phx: RecordingPhoenixServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the writer lane's own failure, for comparison with the test above
    original = WebSocketTransport._send
    calls: List[int] = []

    def failing(self: WebSocketTransport, data: bytes, opcode: int) -> None:
        if opcode == 0x2:
            calls.append(1)
            if len(calls) == 1:
                raise ConnectionError(BROKEN)
        original(self, data, opcode)

    monkeypatch.setattr(WebSocketTransport, "_send", failing)
    monkeypatch.setattr(WebSocketTransport, "send_now", lambda self, build, size: False)
    conn = conversation(phx.url)
    errors: List[BaseException] = []
    conn.on("error", errors.append)
    conn.connect(timeout=5)
    conn.send(chunk(0))
    with pytest.raises(DisconnectedError) as info:
        conn.wait(5)
    assert str(info.value) == WRITE_FAILED
    assert type(info.value.__cause__) is ConnectionError
    assert len(errors) == 1 and errors[0] is info.value
    conn.close()
    assert voxsync_threads() == []


def test_max_chunk_seconds_pieces_are_left_to_the_writer(
    phx: RecordingPhoenixServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendNowSpy(monkeypatch)
    conn = conversation(phx.url)
    conn.max_chunk_seconds = 0.05
    half = conn.input_format.nbytes(0.05)
    conn.connect(timeout=5)
    conn.send(chunk(1)[: 2 * half])  # cut in two by the writer
    time.sleep(0.01)
    conn.send(chunk(2)[:half])  # fits: written through
    conn.finish(timeout=5)
    assert phx.audio == [chunk(1)[:half], chunk(1)[half : 2 * half], chunk(2)[:half]]
    assert [result for _, result in spy.calls] == [True]
    assert voxsync_threads() == []
