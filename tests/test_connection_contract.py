"""The connection contract: input/output formats, send_text, close callbacks, audio sinks."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, List

import numpy as np
import pytest
from conftest import voxsync_threads
from loopback import LoopbackConnection, LoopbackServer

import voxsync
from voxsync.audio import AudioSink, stream_file
from voxsync.audio.format import AudioFormat as OldPathAudioFormat
from voxsync.connection import Connection
from voxsync.errors import (
    AudioFormatError,
    ConfigurationError,
    DisconnectedError,
    LocalProtocolError,
    TimeoutError,
)
from voxsync.events import StreamWarning
from voxsync.format import AudioFormat

CHUNK = b"\x01\x00" * 160  # 10 ms of 16 kHz mono s16le


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


class TextIn(Connection):
    """A text-in, audio-out product shape (no socket needed for these checks)."""

    provider = "textin"

    def __init__(self, **options: Any) -> None:
        super().__init__(None, output_format=AudioFormat(24000, 1), **options)


def test_audio_format_lives_in_the_bottom_layer_and_old_paths_work():
    assert OldPathAudioFormat is AudioFormat
    assert voxsync.audio.AudioFormat is AudioFormat
    assert voxsync.AudioFormat is AudioFormat
    import voxsync.events as events

    assert events.AudioFormat is AudioFormat


def test_input_and_output_formats(server):
    conn = LoopbackConnection(server.port)
    assert conn.input_format == AudioFormat(16000, 1, "pcm_s16le")
    assert conn.audio_format is conn.input_format  # the deprecated name
    assert conn.output_format is None
    conn2 = Connection(input_format=AudioFormat(8000, 1, "mulaw"))
    assert conn2.audio_format.encoding == "mulaw"
    with pytest.raises(ConfigurationError, match="not both"):
        Connection(AudioFormat(), audio_format=AudioFormat())
    with pytest.raises(ConfigurationError, match="output_format"):
        Connection(AudioFormat(), output_format="pcm")  # type: ignore[arg-type]


def test_text_in_product_rejects_audio_and_audio_product_rejects_text(server):
    tts = TextIn()
    assert tts.input_format is None and tts.output_format == AudioFormat(24000, 1)
    assert "out=24000 Hz mono pcm_s16le" in repr(tts)
    with pytest.raises(LocalProtocolError, match="takes text, not audio; use send_text"):
        tts.send(b"\x00\x00")
    with pytest.raises(LocalProtocolError, match="takes text"):
        print(tts.audio_format)
    with pytest.raises(ConfigurationError, match="takes text, not audio"):
        stream_file(tts, "missing.wav")
    conn = LoopbackConnection(server.port)
    with pytest.raises(LocalProtocolError, match="takes audio, not text; send audio with send"):
        conn.send_text("hello")


def test_send_rejects_bad_views_with_a_typed_error_and_takes_numpy(server):
    conn = LoopbackConnection(server.port)
    seen: List[Any] = []
    conn.on("transcript", seen.append)
    conn.connect(timeout=5)
    try:
        released = memoryview(b"\x00\x00\x00\x00")
        released.release()
        with pytest.raises(AudioFormatError, match="released"):
            conn.send(released)
        with pytest.raises(AudioFormatError, match="C-contiguous"):
            conn.send(memoryview(bytearray(64))[::2])
        fortran = np.zeros((8, 2), dtype=np.int16, order="F")
        with pytest.raises(AudioFormatError, match="C-contiguous"):
            conn.send(memoryview(fortran))
        with pytest.raises(AudioFormatError, match=r"shape \(8, 2\).*\(frames, 1\) of int16"):
            conn.send(fortran)
        with pytest.raises(AudioFormatError, match="int32 array; expected"):
            conn.send(np.zeros(8, dtype=np.int32))
        conn.send(np.arange(160, dtype=np.int16))
        conn.send(np.zeros((160, 1), dtype=np.float32, order="F"))
        conn.finish(timeout=5)
    finally:
        conn.close()
    assert [ev.raw["bytes"] for ev in seen] == [320, 320]
    assert conn.metrics.bytes_sent == 640


def test_close_callbacks_run_once_on_the_closing_thread(server, caplog):
    conn = LoopbackConnection(server.port)
    calls: List[str] = []
    conn.add_close_callback(lambda: calls.append(threading.current_thread().name))

    def broken() -> None:
        raise RuntimeError("boom")

    conn.add_close_callback(broken)
    conn.add_close_callback(lambda: calls.append("second"))
    with pytest.raises(ConfigurationError):
        conn.add_close_callback("not callable")  # type: ignore[arg-type]
    conn.connect(timeout=5)
    assert calls == []
    conn.close()
    conn.close()
    assert calls == [threading.current_thread().name, "second"]
    assert "close callback" in caplog.text and "boom" in caplog.text


def test_close_of_an_idle_connection_runs_close_callbacks(server):
    conn = LoopbackConnection(server.port)
    calls: List[int] = []
    conn.add_close_callback(lambda: calls.append(1))
    conn.disconnect()
    conn.disconnect()
    assert calls == [1]


def test_disconnect_is_one_method_of_the_base():
    assert "disconnect" in Connection.__dict__
    import voxsync.uhlive.bot as bot

    assert "disconnect" not in bot.BotConnection.__dict__


def test_a_connection_is_an_audio_sink_and_warnings_are_public(server):
    conn = LoopbackConnection(server.port)
    assert isinstance(conn, AudioSink)
    assert not isinstance(object(), AudioSink)
    seen: List[Any] = []
    conn.on("warning", seen.append)
    conn.on("error", seen.append)
    conn.connect(timeout=5)
    conn.report_warning(StreamWarning("audio_dropped", "dropped 2 blocks", 2))
    conn.report_error(RuntimeError("device hiccup"))
    with pytest.raises(ConfigurationError):
        conn.report_warning("oops")  # type: ignore[arg-type]
    conn.finish(timeout=5)
    assert [type(e) for e in seen] == [StreamWarning, RuntimeError]
    assert conn.error is None


def test_a_control_frame_queued_after_audio_is_written_after_it(server):
    conn = LoopbackConnection(server.port)
    conn.connect(timeout=5)
    try:
        conn.write_gate.clear()  # the writer holds the first chunk: audio piles up
        for _ in range(5):
            conn.send(CHUNK)
        replies: List[Any] = []
        commander = threading.Thread(target=lambda: replies.append(conn.command("c1")))
        commander.start()
        time.sleep(0.2)  # the command is queued behind the five chunks
        assert server.received_count() == 0 and not replies
        conn.write_gate.set()
        commander.join(5)
        assert replies == [{"type": "ack", "id": "c1", "after": 5}]
        conn.send(CHUNK)
        assert conn.command("c2") == {"type": "ack", "id": "c2", "after": 6}
        conn.finish(timeout=5)
    finally:
        conn.close()


def test_drop_oldest_never_drops_a_control_frame(server):
    conn = LoopbackConnection(server.port, queue_size=2, overflow="drop_oldest")
    warnings: List[Any] = []
    conn.on("warning", warnings.append)
    conn.connect(timeout=5)
    try:
        conn.write_gate.clear()
        conn.send(CHUNK)  # taken by the writer, held at the gate
        time.sleep(0.1)
        conn.send(CHUNK)
        replies: List[Any] = []
        commander = threading.Thread(target=lambda: replies.append(conn.command("keep")))
        commander.start()
        time.sleep(0.1)
        for _ in range(3):  # the queue is full: the oldest audio goes, the command stays
            conn.send(CHUNK)
        conn.write_gate.set()
        commander.join(5)
        assert replies and replies[0]["id"] == "keep"
        conn.finish(timeout=5)
    finally:
        conn.close()
    assert conn.metrics.chunks_dropped >= 1 and warnings


def test_a_pending_request_fails_at_once_when_the_connection_closes():
    with LoopbackServer(ack=False) as srv:
        conn = LoopbackConnection(srv.port)
        conn.connect(timeout=5)
        threading.Timer(0.2, conn.close).start()
        start = time.monotonic()
        with pytest.raises(DisconnectedError, match="closed"):
            conn.command("never-answered", timeout=30)
        assert time.monotonic() - start < 2
        conn.close()


def test_a_request_times_out_with_a_typed_error():
    with LoopbackServer(ack=False) as srv:
        conn = LoopbackConnection(srv.port)
        conn.connect(timeout=5)
        try:
            with pytest.raises(TimeoutError, match="command slow"):
                conn.command("slow", timeout=0.3)
            assert conn.state == "open"
        finally:
            conn.close()


def _slow_stream(server: LoopbackServer, **options: Any) -> tuple:
    conn = LoopbackConnection(server.port, **options)
    seen: List[Any] = []
    disconnects: List[Any] = []

    def slow(ev: Any) -> None:
        seen.append(ev)
        time.sleep(0.2)

    conn.on("transcript", slow)
    conn.on("disconnect", disconnects.append)
    conn.connect(timeout=5)
    for _ in range(20):
        conn.send(CHUNK)
    assert server.wait_received(20)
    time.sleep(0.2)  # the replies arrived; the handler is far behind
    return conn, seen, disconnects


def test_close_discards_the_undispatched_backlog_and_leaves_no_thread(server):
    conn, seen, disconnects = _slow_stream(server)
    start = time.monotonic()
    conn.close()
    took = time.monotonic() - start
    assert voxsync_threads() == []  # checked at once, not after a grace period
    assert took < 0.2 + 0.5  # at most the handler running now
    (last,) = disconnects
    assert last.events_discarded == conn.metrics.events_discarded > 0
    assert len(seen) + last.events_discarded == 20
    assert f"{last.events_discarded} events not dispatched" in str(last)


def test_a_timed_out_finish_is_as_immediate_as_close():
    with LoopbackServer(reply_eos=False) as srv:
        conn, _seen, disconnects = _slow_stream(srv)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.finish(timeout=0.3)
        assert time.monotonic() - start < 0.3 + 0.5
        assert voxsync_threads() == []
        assert disconnects and disconnects[0].events_discarded > 0


def test_ctrl_c_inside_an_events_loop_closes_the_connection(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    seen: List[Any] = []
    with pytest.raises(KeyboardInterrupt):
        for ev in conn.events():
            seen.append(ev)
    timer.join()
    assert time.monotonic() - start < 0.3 + 1.0
    assert conn.state == "closed"
    assert voxsync_threads() == []


def test_a_command_returns_after_the_handlers_of_its_reply_ran(server):
    conn = LoopbackConnection(server.port)
    handled: List[str] = []

    def slow(msg: Any) -> None:
        time.sleep(0.3)
        handled.append(msg.raw["id"])

    conn.on("message", slow)
    conn.connect(timeout=5)
    try:
        assert conn.command("c1")["id"] == "c1"
        assert handled == ["c1"]  # not dropped by a close() right after the command
    finally:
        conn.close()
