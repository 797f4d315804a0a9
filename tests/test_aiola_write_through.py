"""aiOla: send() emitting paced audio on the caller's thread over a WebSocket, and its limits."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from conftest import voxsync_threads
from faults.proxy import FaultProxy

from voxsync.aiola import AiolaClient, AiolaConnection
from voxsync.emulators.aiola import AiolaEmulator
from voxsync.emulators.engine import Engine, EngineSession, Segment
from voxsync.errors import QueueFullError
from voxsync.transport.socketio import DirectWriter

CHUNK = 3200  # 100 ms of 16 kHz 16-bit mono


class RecordingEngine(Engine):
    """Recognizes nothing; keeps every stream's audio in arrival order."""

    def __init__(self) -> None:
        self.audio: List[bytearray] = []

    def new_session(self, sample_rate: int = 16000) -> EngineSession:
        buf = bytearray()
        self.audio.append(buf)
        return _RecordingSession(buf, sample_rate)


class _RecordingSession(EngineSession):
    def __init__(self, buf: bytearray, sample_rate: int) -> None:
        self.buf = buf
        self.sample_rate = sample_rate

    def feed(self, pcm: bytes) -> List[Segment]:
        self.buf += pcm
        return []

    def flush(self) -> List[Segment]:
        return []

    def close(self) -> None:
        pass


class WriteNowSpy:
    """Records, per call of ``DirectWriter.write_now``, the thread and the outcome."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: List[Tuple[str, bool]] = []
        original = DirectWriter.write_now
        spy = self

        def write_now(self: DirectWriter, send: Callable[[], bool], size: int) -> bool:
            result = original(self, send, size)
            spy.calls.append((threading.current_thread().name, result))
            return result

        monkeypatch.setattr(DirectWriter, "write_now", write_now)


@pytest.fixture
def recorded() -> Iterator[Tuple[AiolaEmulator, RecordingEngine]]:
    engine = RecordingEngine()
    with AiolaEmulator(engine=engine) as emu:
        yield emu, engine


def stream(base_url: str, **options: Any) -> Tuple[AiolaClient, AiolaConnection]:
    client = AiolaClient(api_key="k", base_url=base_url)
    options.setdefault("transports", ("websocket",))
    return client, client.stt.stream(finish_silence=0, **options)


def chunk(i: int) -> bytes:
    # quiet (samples below 256: never speech), and each chunk tells its place
    return bytes([i % 256, 0]) * (CHUNK // 2)


def test_paced_audio_is_emitted_on_the_callers_thread(
    recorded: Tuple[AiolaEmulator, RecordingEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, engine = recorded
    spy = WriteNowSpy(monkeypatch)
    client, conn = stream(emu.base_url)
    with client:
        conn.connect(timeout=10)
        for i in range(10):
            conn.send(chunk(i))
            assert conn.metrics.snapshot()["chunks_sent"] == i + 1  # written when send() returns
            time.sleep(0.01)
        conn.finish(timeout=10)
    me = threading.current_thread().name
    assert spy.calls == [(me, True)] * 10
    (audio,) = engine.audio
    assert bytes(audio) == b"".join(chunk(i) for i in range(10))
    assert emu.audio_bytes_received == conn.metrics.snapshot()["bytes_sent"] == 10 * CHUNK
    assert voxsync_threads() == []


def test_long_polling_leaves_the_audio_to_the_writer(
    recorded: Tuple[AiolaEmulator, RecordingEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, engine = recorded
    spy = WriteNowSpy(monkeypatch)
    client, conn = stream(emu.base_url, transports=("polling",))
    with client:
        conn.connect(timeout=10)
        for i in range(5):
            conn.send(chunk(i))
            time.sleep(0.01)
        conn.finish(timeout=10)
    assert spy.calls == []  # no WebSocket, no direct writer: every chunk was queued
    (audio,) = engine.audio
    assert bytes(audio) == b"".join(chunk(i) for i in range(5))
    assert voxsync_threads() == []


def test_paced_sends_never_overtake_queued_audio(
    recorded: Tuple[AiolaEmulator, RecordingEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, engine = recorded
    spy = WriteNowSpy(monkeypatch)
    client, conn = stream(emu.base_url)
    sent = 0
    with client:
        conn.connect(timeout=10)
        for _round in range(5):
            for _ in range(40):  # a burst: queued, the writer busy with it
                conn.send(chunk(sent))
                sent += 1
            for _ in range(15):  # paced sends while the writer may still be writing
                time.sleep(0.003)
                conn.send(chunk(sent))
                sent += 1
        conn.finish(timeout=20)
    (audio,) = engine.audio
    assert bytes(audio) == b"".join(chunk(i) for i in range(sent))
    assert any(result for _, result in spy.calls)  # both paths were taken
    snap = conn.metrics.snapshot()
    assert snap["chunks_sent"] == sent and snap["bytes_dropped"] == 0
    assert voxsync_threads() == []


def test_a_stalled_server_never_blocks_send_and_close_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = WriteNowSpy(monkeypatch)
    with (
        AiolaEmulator(engine=RecordingEngine()) as emu,
        FaultProxy(("127.0.0.1", emu.port)) as proxy,
    ):
        client, conn = stream(f"http://127.0.0.1:{proxy.port}", queue_size=8, overflow="raise")
        with client:
            conn.connect(timeout=10)
            conn.send(chunk(0))
            proxy.stall()
            slowest = 0.0
            with pytest.raises(QueueFullError):
                for i in range(5000):
                    time.sleep(0.003)  # paced: each send may write through
                    start = time.monotonic()
                    try:
                        conn.send(chunk(i))
                    finally:
                        slowest = max(slowest, time.monotonic() - start)
            assert slowest < 0.25, f"a send() took {slowest:.3f} s"
            assert any(result for _, result in spy.calls)  # some went through first
            assert spy.calls[-1][1] is False  # then the full socket declined
            start = time.monotonic()
            conn.close()
            assert time.monotonic() - start < 3.0
    assert voxsync_threads() == []
