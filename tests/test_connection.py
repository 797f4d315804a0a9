"""The provider-neutral runtime, over a real loopback TCP transport."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from typing import Any, List

import pytest
from conftest import voxsync_threads
from loopback import LoopbackConnection, LoopbackServer, recv_frame

from voxsync.audio.format import AudioFormat
from voxsync.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigurationError,
    DisconnectedError,
    HandlerError,
    LocalProtocolError,
    QueueFullError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import (
    Connected,
    Disconnected,
    DisconnectReason,
    Message,
    StreamWarning,
    Transcript,
)

CHUNK = b"\x01\x00" * 160  # 10 ms of 16 kHz mono s16le


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def record(conn: LoopbackConnection, *names: str) -> List[Any]:
    seen: List[Any] = []
    for name in names:
        conn.on(name, seen.append)
    return seen


def test_stream_and_finish_delivers_every_result_in_order(server):
    conn = LoopbackConnection(server.port)
    seen = record(conn, "connect", "transcript", "message", "disconnect")
    conn.connect(timeout=5)
    for _ in range(20):
        conn.send(CHUNK)
    conn.finish(timeout=5)
    assert isinstance(seen[0], Connected)
    assert isinstance(seen[-1], Disconnected) and seen[-1].reason == DisconnectReason.CLIENT
    texts = [ev.text for ev in seen if isinstance(ev, Transcript)]
    assert texts == [f"chunk {n}" for n in range(1, 21)]
    # the tail sent by the server after end of stream reached the handlers before finish returned
    assert any(isinstance(ev, Message) and ev["note"] == "tail" for ev in seen)
    assert conn.state == "closed" and not conn.connected
    assert server.received_count() == 20


def test_thread_names_and_budget(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    try:
        n = conn._number
        names = [t.name for t in voxsync_threads()]
        # its own reader; dispatch and writing run on the shared pool, whose
        # workers carry the name of the lane they run, or voxsync-pool-<k> when idle
        assert names.count(f"voxsync-loopback-{n}-reader") == 1
        workers = [name for name in names if name != f"voxsync-loopback-{n}-reader"]
        assert 1 <= len(workers) <= 2, names
        assert all(
            name.startswith("voxsync-pool-")
            or name in (f"voxsync-loopback-{n}-dispatch", f"voxsync-loopback-{n}-writer")
            for name in workers
        ), names
        assert all(t.daemon for t in voxsync_threads())
    finally:
        conn.close()
    assert voxsync_threads() == []


def test_threads_stay_near_one_per_connection(server):
    conns = [LoopbackConnection(server.port).connect(timeout=5) for _ in range(20)]
    try:
        for _ in range(5):
            for conn in conns:
                conn.send(CHUNK)
        assert server.wait_received(100)
        threads = voxsync_threads()
        readers = [t for t in threads if t.name.endswith("-reader")]
        assert len(readers) == 20
        assert len(threads) <= 30, sorted(t.name for t in threads)
    finally:
        for conn in conns:
            conn.close()
    assert voxsync_threads() == []


def test_misuse_raises_typed_errors_that_say_what_to_do(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(LocalProtocolError, match="connect"):
        conn.send(CHUNK)
    with pytest.raises(LocalProtocolError, match="connect"):
        conn.finish()
    with pytest.raises(LocalProtocolError, match="connect"):
        conn.wait()
    conn.connect(timeout=5)
    with pytest.raises(LocalProtocolError, match="new connection"):
        conn.connect()
    conn.finish(timeout=5)
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.send(CHUNK)
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.finish()
    conn.close()  # idempotent
    conn.close()


def test_send_after_finish_started_is_refused(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    errors: List[BaseException] = []

    @conn.on("transcript")
    def try_send(ev):
        try:
            conn.send(CHUNK)
        except VoxsyncError as exc:
            errors.append(exc)

    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert errors and isinstance(errors[0], LocalProtocolError)
    assert "finish()" in str(errors[0])


@pytest.mark.parametrize(
    ("chunk", "match"),
    [
        ("text", "bytes-like"),
        ([1, 2, 3], "bytes-like"),
        (b"\x00\x01\x02", "whole number of 2-byte frames of 16000 Hz mono pcm_s16le"),
        (bytearray(3), "whole number"),
    ],
)
def test_bad_audio_is_rejected_with_the_expected_format(server, chunk, match):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    try:
        with pytest.raises(AudioFormatError, match=match) as info:
            conn.send(chunk)
        assert isinstance(info.value, ValueError)
    finally:
        conn.close()
    assert server.received_count() == 0


def test_memoryview_and_bytearray_are_accepted(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    conn.send(bytearray(CHUNK))
    conn.send(memoryview(CHUNK))
    conn.finish(timeout=5)
    assert server.received == [CHUNK, CHUNK]


def test_slow_handler_does_not_hold_up_sending_or_receiving(server):
    conn = LoopbackConnection(server.port)
    release = threading.Event()
    got: List[str] = []

    @conn.on("transcript")
    def slow(ev):
        if ev.text == "chunk 1":
            assert release.wait(10)
        got.append(ev.text)

    conn.connect(timeout=5)
    try:
        for _ in range(50):
            conn.send(CHUNK)
        # all audio reaches the server and its replies are received while the handler blocks
        assert server.wait_received(50, timeout=5)
        deadline = time.monotonic() + 5
        while conn.metrics.queue_depth or conn._event_q.qsize() < 49:
            assert time.monotonic() < deadline, (
                "replies were not received while the handler blocked"
            )
            time.sleep(0.01)
        assert got == []
    finally:
        release.set()
    conn.finish(timeout=5)
    assert got == [f"chunk {n}" for n in range(1, 51)]


def test_raising_handler_becomes_error_event_and_stream_goes_on(server, caplog):
    conn = LoopbackConnection(server.port)
    errors: List[BaseException] = []
    texts: List[str] = []

    @conn.on("transcript")
    def bad(ev):
        if ev.text == "chunk 2":
            raise RuntimeError("boom")
        texts.append(ev.text)

    conn.on("error", errors.append)
    with caplog.at_level(logging.ERROR, logger="voxsync.connection"):
        conn.connect(timeout=5)
        for _ in range(3):
            conn.send(CHUNK)
        conn.finish(timeout=5)
    assert texts == ["chunk 1", "chunk 3"]
    assert len(errors) == 1 and isinstance(errors[0], HandlerError)
    assert errors[0].event == "transcript" and isinstance(errors[0].__cause__, RuntimeError)
    assert any("boom" in (r.exc_text or "") for r in caplog.records), "traceback not logged"


def test_raising_error_handler_is_logged_not_looped(server, caplog):
    conn = LoopbackConnection(server.port)
    calls: List[BaseException] = []

    @conn.on("transcript")
    def bad(ev):
        raise ValueError("first")

    @conn.on("error")
    def worse(err):
        calls.append(err)
        raise RuntimeError("second")

    with caplog.at_level(logging.ERROR, logger="voxsync.connection"):
        conn.connect(timeout=5)
        conn.send(CHUNK)
        conn.send(CHUNK)
        conn.finish(timeout=5)
    assert len(calls) == 2  # one per failing transcript handler, no recursion
    assert sum("'error' handler" in r.getMessage() for r in caplog.records) == 2


def test_close_from_inside_a_handler(server):
    conn = LoopbackConnection(server.port)
    seen = record(conn, "disconnect")

    @conn.on("transcript")
    def stop(ev):
        conn.close()

    conn.connect(timeout=5)
    conn.send(CHUNK)
    assert conn.wait(timeout=5) is True
    assert len(seen) == 1 and seen[0].reason == DisconnectReason.CLIENT
    assert conn.state == "closed"


def test_finish_from_inside_a_handler(server):
    conn = LoopbackConnection(server.port)
    done = threading.Event()

    @conn.on("transcript")
    def end(ev):
        conn.finish(timeout=5)
        done.set()

    conn.connect(timeout=5)
    conn.send(CHUNK)
    assert conn.wait(timeout=5)
    assert done.is_set()


def _blocked_writer_conn(server, **options):
    conn = LoopbackConnection(server.port, queue_size=4, **options)
    conn.write_gate.clear()
    conn.connect(timeout=5)
    conn.send(CHUNK)  # taken by the writer, which then waits at the gate
    deadline = time.monotonic() + 5
    while conn.metrics.queue_depth:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return conn


def test_overflow_raise(server):
    conn = _blocked_writer_conn(server, overflow="raise")
    try:
        for _ in range(4):
            conn.send(CHUNK)
        with pytest.raises(QueueFullError, match="queue_size"):
            conn.send(CHUNK)
        assert conn.metrics.chunks_dropped == 0
    finally:
        conn.close()
    assert conn.metrics.chunks_discarded == 4


def test_overflow_drop_oldest_counts_and_reports_every_drop(server):
    conn = _blocked_writer_conn(server, overflow="drop_oldest")
    warnings = record(conn, "warning")
    chunks = [bytes([i, 0]) * 160 for i in range(10)]
    for c in chunks:
        conn.send(c)
    conn.write_gate.set()
    conn.finish(timeout=5)
    assert conn.metrics.chunks_dropped == 6
    assert [w.count for w in warnings] == [1, 2, 3, 4, 5, 6]
    assert all(isinstance(w, StreamWarning) and w.code == "audio_dropped" for w in warnings)
    assert server.received == [CHUNK, *chunks[6:]]


def test_overflow_block_times_out(server):
    conn = _blocked_writer_conn(server, overflow="block", send_timeout=0.3)
    try:
        for _ in range(4):
            conn.send(CHUNK)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="queue"):
            conn.send(CHUNK)
        assert time.monotonic() - start >= 0.25
    finally:
        conn.close()


def test_overflow_block_waits_for_room(server):
    conn = _blocked_writer_conn(server, overflow="block", send_timeout=5)
    for _ in range(4):
        conn.send(CHUNK)
    threading.Timer(0.2, conn.write_gate.set).start()
    conn.send(CHUNK)  # blocks until the writer moves again
    conn.finish(timeout=5)
    assert server.received_count() == 6


def test_server_drop_is_fatal_and_never_silent(server):
    server.drop_after = 3
    conn = LoopbackConnection(server.port)
    errors = record(conn, "error")
    ends = record(conn, "disconnect")
    conn.connect(timeout=5)
    for _ in range(3):
        conn.send(CHUNK)
    with pytest.raises(DisconnectedError):
        conn.wait(timeout=5)
    with pytest.raises(DisconnectedError) as info:
        conn.send(CHUNK)
    assert info.value.__cause__ is conn.error
    assert len(errors) == 1 and isinstance(errors[0], DisconnectedError)
    assert ends[0].reason == DisconnectReason.SERVER and ends[0].error is errors[0]


def test_finish_times_out_when_the_service_never_answers(server):
    server.reply_eos = False
    conn = LoopbackConnection(server.port).connect(timeout=5)
    conn.send(CHUNK)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="end of the transcript"):
        conn.finish(timeout=0.5)
    assert time.monotonic() - start < 3
    assert conn.state == "closed"


def test_refused_connect_returns_to_idle_without_threads(server):
    conn = LoopbackConnection(server.port, token="bad")
    with pytest.raises(AuthenticationError):
        conn.connect(timeout=5)
    assert conn.state == "idle"
    assert voxsync_threads() == []
    conn._token = "good"
    conn.connect(timeout=5)
    conn.close()


def test_connect_to_nothing_is_a_connection_error():
    with LoopbackServer() as srv:
        port = srv.port
    conn = LoopbackConnection(port)
    with pytest.raises(VoxsyncError) as info:
        conn.connect(timeout=2)
    assert isinstance(info.value, ConnectionError)


def test_events_iterator_yields_everything_then_ends(server):
    conn = LoopbackConnection(server.port)
    it = conn.events(timeout=5)
    conn.connect(timeout=5)
    for _ in range(3):
        conn.send(CHUNK)
    threading.Timer(0.1, conn.finish).start()
    kinds = [type(ev).__name__ for ev in it]
    assert kinds[0] == "Connected" and kinds[-1] == "Disconnected"
    assert kinds.count("Transcript") == 3
    conn.wait(timeout=5)


def test_events_iterator_timeout(server):
    conn = LoopbackConnection(server.port)
    dispatched = threading.Event()
    conn.on("connect", dispatched.set)
    conn.connect(timeout=5)
    try:
        assert dispatched.wait(5)  # subscribe after "connect" went out: nothing else comes
        it = conn.events(timeout=0.2)
        with pytest.raises(TimeoutError):
            next(it)
    finally:
        conn.close()


def test_handler_registration_forms(server):
    conn = LoopbackConnection(server.port)
    calls: List[str] = []

    @conn.on("connect")
    def no_args():
        calls.append("connect")

    def once_handler(ev):
        calls.append(f"once {ev.text}")

    conn.once("transcript", once_handler)

    def removed(ev):
        calls.append("removed")

    conn.on("transcript", removed)
    conn.off("transcript", removed)
    conn.off("transcript", removed)  # removing twice is harmless
    assert conn.listeners("transcript") == [once_handler]
    with pytest.raises(ConfigurationError, match="known events"):
        conn.on("transcripts", removed)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert calls == ["connect", "once chunk 1"]


def test_context_manager_finishes_on_normal_exit(server):
    got: List[str] = []
    conn = LoopbackConnection(server.port)
    conn.on("transcript", lambda ev: got.append(ev.text))
    with conn:
        for _ in range(5):
            conn.send(CHUNK)
    assert got == [f"chunk {n}" for n in range(1, 6)]


def test_context_manager_does_not_mask_the_original_exception(server):
    server.reply_eos = False  # a finish() would time out; close() must be used instead
    conn = LoopbackConnection(server.port)
    with pytest.raises(KeyError, match="original"), conn:
        conn.send(CHUNK)
        raise KeyError("original")
    assert conn.state == "closed"


def _sigint_after(delay: float) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_in_wait_closes_everything_quickly(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    conn.send(CHUNK)
    timer = _sigint_after(0.3)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        conn.wait()
    timer.join()
    assert time.monotonic() - start < 0.3 + 2.0
    assert conn.state == "closed"
    assert voxsync_threads() == []


def test_ctrl_c_inside_with_block_closes_everything_quickly(server):
    conn = LoopbackConnection(server.port)
    timer = _sigint_after(0.3)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), conn:
        while True:
            conn.send(CHUNK)
            time.sleep(0.01)
    timer.join()
    assert time.monotonic() - start < 0.3 + 2.0
    assert conn.state == "closed"
    assert voxsync_threads() == []


def test_metrics(server):
    conn = LoopbackConnection(server.port)
    conn.connect(timeout=5)
    for _ in range(10):
        conn.send(CHUNK)
    conn.finish(timeout=5)
    snap = conn.metrics.snapshot()
    assert snap["chunks_sent"] == 10 and snap["bytes_sent"] == 10 * len(CHUNK)
    assert snap["seconds_sent"] == pytest.approx(0.1)
    assert snap["events"]["transcript"] == 10 and snap["events"]["connect"] == 1
    assert snap["events"]["disconnect"] == 1
    assert snap["queue_high_water"] >= 1
    assert 0 <= snap["latency_p50"] <= snap["latency_p99"] <= snap["latency_max"]
    assert snap["handler_seconds"] >= 0 and snap["chunks_dropped"] == 0


def test_constructor_validation():
    fmt = AudioFormat()
    with pytest.raises(ConfigurationError, match="overflow"):
        LoopbackConnection(1, audio_format=fmt, overflow="lose")
    with pytest.raises(ConfigurationError, match="queue_size"):
        LoopbackConnection(1, queue_size=0)
    with pytest.raises(ConfigurationError, match="finish_timeout"):
        LoopbackConnection(1, finish_timeout=0)


def test_repr_is_short_and_has_no_secret(server):
    conn = LoopbackConnection(server.port, token="s3cr3t-token")
    assert "s3cr3t" not in repr(conn)
    assert repr(conn).startswith("<LoopbackConnection loopback-")


def test_only_the_first_failure_counts(server):
    """A failure's consequences on other threads must not replace it as the cause."""

    class Racing(LoopbackConnection):
        def _deliver(self, event, name=None):
            if isinstance(event, DisconnectedError) and str(event) == "first":
                # another thread fails in the window before the shutdown starts
                self._fail(DisconnectedError("consequence"))
            super()._deliver(event, name)

    conn = Racing(server.port).connect(timeout=5)
    errors = record(conn, "error")
    conn._fail(DisconnectedError("first"))
    with pytest.raises(DisconnectedError, match="first"):
        conn.wait(timeout=5)
    assert [str(e) for e in errors] == ["first"]
    assert str(conn.error) == "first"


def test_transport_failure_is_a_disconnected_error(server):
    """A provider's ConnectionError on an open stream reaches wait() as DisconnectedError."""
    from voxsync.errors import ConnectionError as VoxsyncConnectionError

    class Failing(LoopbackConnection):
        def _read_loop(self):
            raise VoxsyncConnectionError("socket reset")

    conn = Failing(server.port).connect(timeout=5)
    with pytest.raises(DisconnectedError, match="socket reset") as info:
        conn.wait(timeout=5)
    assert isinstance(info.value.__cause__, VoxsyncConnectionError)


def test_transport_error_after_the_end_of_stream_is_no_failure(server):
    """A server may drop the socket once it has sent its end of stream."""
    from voxsync.errors import ConnectionError as VoxsyncConnectionError

    class DropsAfterEos(LoopbackConnection):
        def _read_loop(self):
            sock = self._sock
            while True:
                frame = recv_frame(sock)
                if frame is None:
                    return
                msg = json.loads(frame[1])
                if msg["type"] == "eos":
                    self._stream_ended()
                    raise VoxsyncConnectionError("reset by peer")

    conn = DropsAfterEos(server.port).connect(timeout=5)
    ends = record(conn, "disconnect")
    errors = record(conn, "error")
    conn.send(CHUNK)
    conn.finish(timeout=5)  # does not raise
    assert errors == [] and conn.error is None
    assert ends[0].reason in (DisconnectReason.SERVER, DisconnectReason.CLIENT)
