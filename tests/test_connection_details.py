"""The runtime's promises in detail: messages, bounds, return values, event content.

Over the loopback TCP provider (tests/loopback.py); a socket-less ``Connection``
subclass stands in for a transport only where a reader must fail in a way
the loopback server cannot make.
"""

from __future__ import annotations

import collections
import contextvars
import enum
import functools
import logging
import threading
import time
from typing import Any, ClassVar, List, Optional

import pytest
from loopback import LoopbackConnection, LoopbackServer

import voxsync
from voxsync.connection import Connection
from voxsync.errors import (
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    LocalProtocolError,
    QueueFullError,
    RemoteProtocolError,
    TimeoutError,
)
from voxsync.events import Disconnected, DisconnectReason, StreamWarning
from voxsync.format import AudioFormat
from voxsync.request import Request

CHUNK = b"\x01\x00" * 160  # 10 ms of 16 kHz mono s16le


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


class _FailingReader(Connection):
    """A provider whose reader fails with ``failure`` (the transport seam)."""

    provider: ClassVar[str] = "failing"
    _uses_reader_thread: ClassVar[bool] = True
    failure: ClassVar[Optional[BaseException]] = OSError("boom")

    def __init__(self, **options: Any) -> None:
        super().__init__(AudioFormat(), **options)
        self.go = threading.Event()

    def _read_loop(self) -> None:
        if not self.go.wait(5) or type(self).failure is None:
            return  # the service closed the socket
        raise type(self).failure

    def _write_chunk(self, chunk: bytes) -> None:
        pass

    def _close_transport(self) -> None:
        self.go.set()  # the reader returns (its failure, if any, is ignored while closing)


def _failing(error: BaseException) -> Connection:
    cls = type("Failing", (_FailingReader,), {"failure": error})
    return cls()  # type: ignore[no-any-return]


def _start_failing(conn: Any) -> List[Disconnected]:
    disconnects: List[Disconnected] = []
    conn.on("disconnect", disconnects.append)
    conn.on("error", lambda err: None)
    conn.connect(timeout=5)
    conn.go.set()
    return disconnects


def _wait_closed(conn: Connection, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while conn.state != "closed":
        assert time.monotonic() < deadline, "the connection did not close"
        time.sleep(0.01)


# ------------------------------------------------------------------ close_all
def test_close_all_closes_exactly_the_live_connections(server):
    idle = LoopbackConnection(server.port)
    done = LoopbackConnection(server.port).connect(timeout=5)
    done.close()
    live = [LoopbackConnection(server.port).connect(timeout=5) for _ in range(2)]
    try:
        assert voxsync.close_all() == 2
        assert [c.state for c in live] == ["closed", "closed"]
        assert idle.state == "idle" and done.state == "closed"
        assert voxsync.close_all() == 0
    finally:
        for conn in live:
            conn.close()


# ------------------------------------------------------------- handlers
def test_replace_keeps_handlers_of_another_name_or_module(server):
    conn = LoopbackConnection(server.port)

    def show(ev: Any) -> None:
        pass

    def other(ev: Any) -> None:
        pass

    namesake = functools.wraps(show)(lambda ev: None)  # same qualname ...
    namesake.__module__ = "elsewhere"  # ... defined in another module
    conn.on("transcript", show)
    conn.on("transcript", other)
    conn.on("transcript", namesake)

    def show(ev: Any) -> None:
        pass

    conn.on("transcript", show, replace=True)
    assert conn.listeners("transcript") == [other, namesake, show]


def test_replace_tells_unnamed_callables_apart(server):
    conn = LoopbackConnection(server.port)
    first = functools.partial(print, "first")
    second = functools.partial(print, "second")
    conn.on("transcript", first, replace=True)
    conn.on("transcript", second, replace=True)
    assert conn.listeners("transcript") == [first, second]


def test_off_without_a_handler_clears_only_that_event(server):
    conn = LoopbackConnection(server.port)
    conn.on("transcript", print)
    conn.on("error", print)
    conn.off("transcript")
    assert conn.listeners("transcript") == [] and conn.listeners("error") == [print]


# --------------------------------------------------------------- messages
def test_repr_names_the_formats_of_each_product_shape():
    out = AudioFormat(24000)
    audio_in = Connection(AudioFormat(), name="a")
    text_in = Connection(None, name="t")
    text_to_audio = Connection(None, output_format=out, name="tts")
    both = Connection(AudioFormat(8000, 1, "mulaw"), output_format=out, name="s2s")
    assert repr(audio_in) == "<Connection a state=idle 16000 Hz mono pcm_s16le>"
    assert repr(text_in) == "<Connection t state=idle text in>"
    assert repr(text_to_audio) == (
        "<Connection tts state=idle in=text out=24000 Hz mono pcm_s16le>"
    )
    assert repr(both) == (
        "<Connection s2s state=idle in=8000 Hz mono mulaw out=24000 Hz mono pcm_s16le>"
    )


def test_wrong_payload_errors_name_the_product():
    class Speech(Connection):
        pass

    with pytest.raises(LocalProtocolError) as info:
        Speech(None).send(b"\x00\x00")
    assert str(info.value) == "send(): Speech takes text, not audio; use send_text()"
    with pytest.raises(LocalProtocolError) as info:
        Speech(AudioFormat()).send_text("hi")
    assert str(info.value) == "Speech takes audio, not text; send audio with send()"


def test_registration_errors_say_what_was_expected(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(ConfigurationError) as info:
        conn.add_close_callback(3)  # type: ignore[arg-type]
    assert str(info.value) == "add_close_callback() needs a callable, got 3"
    with pytest.raises(ConfigurationError) as info:
        conn.report_warning("careful")  # type: ignore[arg-type]
    assert str(info.value) == "report_warning() needs a StreamWarning, got 'careful'"
    with pytest.raises(ConfigurationError) as info:
        conn.report_error("bad")  # type: ignore[arg-type]
    assert str(info.value) == "report_error() needs an exception, got 'bad'"


def test_send_in_the_wrong_state_says_what_to_do(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(LocalProtocolError) as info:
        conn.send(CHUNK)
    assert str(info.value) == "send() before the connection is open; call connect() first"
    conn.connect(timeout=5)
    conn.close()
    with pytest.raises(LocalProtocolError) as info:
        conn.send(CHUNK)
    assert str(info.value) == "send() on a closed connection; create a new connection"


def test_show_outside_a_notebook_says_what_to_do(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(ConfigurationError, match="in scripts use handlers or events"):
        conn.show()


# --------------------------------------------------------------- failures
def test_a_failed_stream_is_reported_with_its_cause(server, caplog):
    conn = LoopbackConnection(server.port)
    conn.on("error", lambda err: None)
    conn.connect(timeout=5)
    server.drop_after = 1
    conn.send(CHUNK)
    with pytest.raises(DisconnectedError) as info:
        conn.wait(5)
    assert str(info.value) == "the service closed the connection during the stream"
    with pytest.raises(DisconnectedError) as sent:
        conn.send(CHUNK)
    assert str(sent.value) == (
        "send() on a failed connection: the service closed the connection during the stream"
    )
    assert sent.value.__cause__ is info.value
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.name for r in failed] == ["voxsync.connection"]
    assert failed[0].getMessage() == (
        f"{conn.name}: stream failed: the service closed the connection during the stream"
    )


def test_leaving_a_with_block_raises_the_failure_that_closed_it(server):
    conn = LoopbackConnection(server.port)
    conn.on("error", lambda err: None)
    server.drop_after = 1
    with pytest.raises(DisconnectedError, match="during the stream"), conn:
        conn.send(CHUNK)
        _wait_closed(conn)
    with LoopbackConnection(server.port) as normal:
        normal.close()  # closed normally inside the block: leaving it raises nothing
    assert normal.state == "closed" and normal.error is None


@pytest.mark.parametrize(
    ("error", "raised", "message", "reason"),
    [
        (OSError("boom"), DisconnectedError, "receiving failed: OSError: boom", "transport"),
        (
            ConnectionError("link down"),
            DisconnectedError,
            "receiving failed: link down",
            "transport",
        ),
        (
            RemoteProtocolError("bad frame"),
            RemoteProtocolError,
            "bad frame",
            "transport",
        ),
        (DisconnectedError("bye"), DisconnectedError, "bye", "server"),
    ],
    ids=["os-error", "connection-error", "protocol-error", "disconnected"],
)
def test_a_reader_failure_reaches_wait_typed_with_its_reason(error, raised, message, reason):
    conn = _failing(error)
    disconnects = _start_failing(conn)
    with pytest.raises(raised) as info:
        conn.wait(5)
    assert str(info.value) == message
    if raised is RemoteProtocolError or message == "bye":
        assert info.value is error  # typed errors reach wait() as they are
    else:
        assert info.value.__cause__ is error
    expected = {"transport": DisconnectReason.TRANSPORT_ERROR, "server": DisconnectReason.SERVER}
    assert [d.reason for d in disconnects] == [expected[reason]]


def test_a_failed_connect_leaves_a_clean_reusable_connection():
    with LoopbackServer(token="right") as srv:
        conn = LoopbackConnection(srv.port, token="wrong")
        seen: List[Any] = []
        conn.on("connect", seen.append)
        conn.on("warning", seen.append)
        with pytest.raises(voxsync.AuthenticationError):
            conn.connect(timeout=5)
        assert conn.state == "idle" and conn.error is None
        # a warning while idle after the failure is not kept for the next stream
        conn.report_warning(StreamWarning("stale", "from before"))
        it = conn.events(timeout=5)
        conn._token = "right"
        conn.connect(timeout=5)
        conn.finish(timeout=5)
        names = [getattr(ev, "event_name", None) for ev in it]
    assert names == ["connect", "message", "disconnect"]
    assert [type(ev).__name__ for ev in seen] == ["Connected"]


# ------------------------------------------------------------- disconnect()
def test_disconnect_waits_for_the_last_results_and_returns_true(server):
    conn = LoopbackConnection(server.port)
    seen: List[Any] = []
    conn.on("transcript", seen.append)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    assert conn.disconnect() is True
    assert [ev.text for ev in seen] == ["chunk 1"] and conn.state == "closed"
    assert conn.disconnect() is True  # nothing pending any more


def test_disconnect_gives_up_after_its_own_bound():
    with LoopbackServer(reply_eos=False) as srv:
        conn = LoopbackConnection(srv.port, finish_timeout=30).connect(timeout=5)
        start = time.monotonic()
        assert conn.disconnect(timeout=0.3) is False
        assert time.monotonic() - start < 1.5
        assert conn.state == "closed"

        conn = LoopbackConnection(srv.port, finish_timeout=30).connect(timeout=5)
        conn.disconnect_timeout = 0.3
        start = time.monotonic()
        assert conn.disconnect() is False
        assert time.monotonic() - start < 1.5


def test_disconnect_from_a_handler_closes_without_waiting(server):
    conn = LoopbackConnection(server.port)
    results: List[bool] = []
    conn.on("transcript", lambda ev: results.append(conn.disconnect()))
    conn.connect(timeout=5)
    conn.send(CHUNK)
    assert conn.wait(5) is True
    assert results == [False]  # the stream was open: its results were given up


def test_disconnect_of_a_failed_stream_returns_false(server):
    conn = LoopbackConnection(server.port)
    conn.on("error", lambda err: None)
    conn.connect(timeout=5)
    server.drop_after = 1
    conn.send(CHUNK)
    _wait_closed(conn)
    assert conn.disconnect() is False
    assert isinstance(conn.error, DisconnectedError)


# ---------------------------------------------------------------- overflow
def test_overflow_messages_say_what_to_do(server):
    conn = LoopbackConnection(server.port, queue_size=1, overflow="raise").connect(timeout=5)
    try:
        conn.write_gate.clear()
        conn.send(CHUNK)  # taken by the writer, held at the gate
        time.sleep(0.1)
        conn.send(CHUNK)
        with pytest.raises(QueueFullError) as info:
            conn.send(CHUNK)
        assert str(info.value) == (
            "send queue full (1 chunks): the service is not keeping up; send slower, raise "
            "queue_size, or choose overflow='block' or 'drop_oldest'"
        )
    finally:
        conn.close()


def test_a_dropped_chunk_is_reported_with_its_size_and_count(server):
    conn = LoopbackConnection(server.port, queue_size=1, overflow="drop_oldest")
    warnings: List[StreamWarning] = []
    conn.on("warning", warnings.append)
    conn.connect(timeout=5)
    conn.write_gate.clear()
    conn.send(CHUNK)  # taken by the writer
    time.sleep(0.1)
    conn.send(CHUNK[:64])
    conn.send(CHUNK)  # drops the 64-byte chunk
    conn.write_gate.set()
    conn.finish(timeout=5)
    assert [(w.code, w.message, w.count) for w in warnings] == [
        (
            "audio_dropped",
            "send queue full: dropped 64 bytes of the oldest audio (1 chunks dropped so far)",
            1,
        )
    ]


def test_drop_oldest_behind_only_commands_drops_nothing(server):
    conn = LoopbackConnection(server.port, queue_size=1, overflow="drop_oldest")
    warnings: List[Any] = []
    conn.on("warning", warnings.append)
    conn.connect(timeout=5)
    try:
        conn.write_gate.clear()
        conn.send(CHUNK)  # taken by the writer, held at the gate
        time.sleep(0.1)
        replies: List[Any] = []
        commander = threading.Thread(target=lambda: replies.append(conn.command("c")))
        commander.start()
        time.sleep(0.1)  # the queue holds the command only, and is full
        conn.send(CHUNK)  # nothing to drop: queued after the command
        conn.write_gate.set()
        commander.join(5)
        conn.finish(timeout=5)
    finally:
        conn.close()
    assert replies == [{"type": "ack", "id": "c", "after": 1}]
    assert warnings == [] and conn.metrics.chunks_dropped == 0
    assert server.received_count() == 2


# ----------------------------------------------------------------- events()
def test_events_after_close_ends_at_once(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    conn.close()
    assert list(conn.events(timeout=2)) == []


def test_events_timeout_is_its_own_bound(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    try:
        it = conn.events(timeout=0.2)
        start = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            while True:
                next(it)
        assert str(info.value) == "no event within 0.2 s"
        assert time.monotonic() - start < 0.8
    finally:
        conn.close()


def test_events_from_a_handler_is_refused(server):
    conn = LoopbackConnection(server.port)
    errors: List[BaseException] = []

    ran = threading.Event()

    def subscribe(ev: Any) -> None:
        try:
            conn.events()
        except LocalProtocolError as exc:
            errors.append(exc)
        ran.set()

    conn.on("connect", subscribe)
    conn.connect(timeout=5)
    assert ran.wait(5)
    conn.close()
    assert [str(e) for e in errors] == ["events() from a handler would block the dispatcher"]


def test_an_overflowing_events_iterator_says_what_to_do(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    it = conn.events(timeout=5, maxsize=2)
    for _ in range(4):
        conn.send(CHUNK)
    conn.finish(timeout=5)
    with pytest.raises(QueueFullError) as info:
        list(it)
    assert str(info.value) == (
        "events() iterator fell 2 events behind and was stopped; "
        "consume events faster or use handlers"
    )


def test_events_buffers_ten_thousand_events_by_default(server):
    conn = LoopbackConnection(server.port)
    it = conn.events(timeout=5)
    conn.connect(timeout=5)
    for _ in range(9999):  # with "connect": exactly the default buffer
        conn.report_warning(StreamWarning("w", "x"))
    conn.finish(timeout=10)  # the end of stream's message is one more: it overflows
    with pytest.raises(QueueFullError, match="fell 10000 events behind"):
        list(it)


# ----------------------------------------------------------- blocking send
def test_a_blocked_send_gives_up_after_send_timeout_saying_what_to_do(server):
    conn = LoopbackConnection(server.port, queue_size=1, send_timeout=0.3).connect(timeout=5)
    try:
        conn.write_gate.clear()
        conn.send(CHUNK)  # taken by the writer, held at the gate
        time.sleep(0.1)
        conn.send(CHUNK)
        start = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            conn.send(CHUNK)
        assert 0.25 < time.monotonic() - start < 2
        assert str(info.value) == (
            "send queue stayed full for 0.3 s: the service is not keeping up; pace the audio "
            "to real time or raise queue_size"
        )
    finally:
        conn.close()


def test_a_blocked_send_ends_when_the_connection_closes(server):
    conn = LoopbackConnection(server.port, queue_size=1, send_timeout=30).connect(timeout=5)
    conn.write_gate.clear()
    conn.send(CHUNK)
    time.sleep(0.1)
    conn.send(CHUNK)
    closer = threading.Timer(0.2, conn.close)
    closer.start()
    start = time.monotonic()
    with pytest.raises(LocalProtocolError) as info:
        conn.send(CHUNK)
    closer.join(5)
    assert time.monotonic() - start < 3
    assert str(info.value) == "send() on a closed connection; create a new connection"


# ----------------------------------------------------------------- wait()
def test_wait_in_the_wrong_place_says_why(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(LocalProtocolError) as info:
        conn.wait(1)
    assert str(info.value) == "wait() before connect(); connect first"
    errors: List[str] = []

    ran = threading.Event()

    def waits(ev: Any) -> None:
        try:
            conn.wait(1)
        except LocalProtocolError as exc:
            errors.append(str(exc))
        ran.set()

    conn.on("connect", waits)
    conn.connect(timeout=5)
    assert ran.wait(5)
    conn.close()
    assert errors == ["wait() from a handler would block the dispatcher forever"]


# -------------------------------------------------------------- commands
class _Commands(LoopbackConnection):
    """The loopback provider with a command the server's ack can refuse."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.offered: List[bool] = []

    def refused(self, command_id: str) -> Any:
        request = Request(
            lambda msg: False,
            error=lambda msg: (
                RemoteProtocolError(f"{msg['id']} refused") if msg.get("id") == command_id else None
            ),
            what=command_id,
        )
        return self._request(command_id.encode(), request, 5)

    def _offer_reply(self, message: Any) -> bool:
        answered = super()._offer_reply(message)
        self.offered.append(answered)
        return answered


def test_a_command_in_the_wrong_state_is_refused_with_what_to_do(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(LocalProtocolError) as info:
        conn.command("early", timeout=1)
    assert str(info.value) == (
        "sending a command before the connection is open; call connect() first"
    )
    conn.connect(timeout=5)
    conn.close()
    with pytest.raises(DisconnectedError) as closed:
        conn.command("late", timeout=1)
    assert str(closed.value) == "the connection is closed"


def test_an_error_reply_raises_after_its_events_reached_the_handlers(server):
    conn = _Commands(server.port)
    acks: List[Any] = []

    def slow_ack(ev: Any) -> None:
        time.sleep(0.2)
        acks.append(ev.raw["id"])

    conn.on("message", slow_ack)
    conn.connect(timeout=5)
    try:
        with pytest.raises(RemoteProtocolError, match="bad refused"):
            conn.refused("bad")
        assert acks == ["bad"]
        assert conn.command("good") == {"type": "ack", "id": "good", "after": 0}
        # offer_reply tells the provider which messages answered a command
        assert conn.offered == [True, True]
        conn.finish(timeout=5)
    finally:
        conn.close()
    assert conn.offered == [True, True]  # the end of stream answered no command


# ----------------------------------------------------------------- finish()
class _FailsAtTheEnd(_FailingReader):
    """The service fails the stream when it receives the end of stream."""

    def _end_of_stream(self) -> None:
        self.go.set()  # the reader fails instead of answering


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (
            DisconnectedError("closed 1011 (overload)", code=1011, reason="overload"),
            1011,
            "overload",
        ),
        (RemoteProtocolError("garbled"), None, ""),
    ],
    ids=["close-code", "protocol-error"],
)
def test_finish_on_a_stream_failing_at_its_end_carries_the_close_details(error, code, reason):
    conn = type("FailsAtTheEnd", (_FailsAtTheEnd,), {"failure": error})()
    conn.on("error", lambda err: None)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    with pytest.raises(DisconnectedError) as info:
        conn.finish(timeout=5)
    assert str(info.value) == f"the stream failed before it finished: {error}"
    assert (info.value.code, info.value.reason) == (code, reason)
    assert info.value.__cause__ is error


def test_finish_in_the_wrong_state_says_what_to_do(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(LocalProtocolError) as info:
        conn.finish(timeout=1)
    assert str(info.value) == "finish() before the connection is open; call connect() first"
    conn.connect(timeout=5)
    conn.close()
    with pytest.raises(LocalProtocolError) as info:
        conn.finish(timeout=1)
    assert str(info.value) == "finish() on a closed connection; create a new connection"


def test_finish_without_an_answer_gives_up_saying_what_may_be_missing():
    with LoopbackServer(reply_eos=False) as srv:
        conn = LoopbackConnection(srv.port).connect(timeout=5)
        start = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            conn.finish(timeout=0.3)
        assert time.monotonic() - start < 1.5
        assert str(info.value) == (
            "finish() gave up after 0.3 s waiting for the last results; the connection is "
            "closed and the end of the transcript may be missing"
        )


def test_finish_behind_a_full_queue_keeps_its_bound(server):
    conn = LoopbackConnection(server.port, queue_size=1).connect(timeout=5)
    conn.write_gate.clear()  # the writer never takes the next chunk
    conn.send(CHUNK)
    time.sleep(0.1)
    conn.send(CHUNK)  # the queue is full: the end of stream finds no room
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.finish(timeout=0.3)
    assert time.monotonic() - start < 1.5
    assert conn.state == "closed"


def test_finish_returns_soon_after_close_from_another_thread():
    with LoopbackServer(reply_eos=False) as srv:
        conn = LoopbackConnection(srv.port).connect(timeout=5)
        closer = threading.Timer(0.2, conn.close)
        closer.start()
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.finish(timeout=10)
        closer.join(5)
        assert time.monotonic() - start < 3


# ------------------------------------------------------------ construction
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"overflow": "lose"},
            "overflow must be one of 'block', 'drop_oldest', 'raise', got 'lose'",
        ),
        ({"queue_size": 0}, "queue_size must be a positive int, got 0"),
        ({"queue_size": 2.0}, "queue_size must be a positive int, got 2.0"),
        ({"send_timeout": 0}, "send_timeout must be > 0 seconds, got 0"),
        ({"finish_timeout": -1}, "finish_timeout must be > 0 seconds, got -1"),
        ({"keepalive_interval": 0}, "keepalive_interval must be None or > 0 seconds"),
        ({"input_format": "pcm"}, "input_format must be a voxsync.AudioFormat or None"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options, message):
    options.setdefault("input_format", AudioFormat())
    with pytest.raises(ConfigurationError) as info:
        Connection(**options)
    assert str(info.value) == message


def test_the_smallest_valid_options_are_taken():
    conn = Connection(AudioFormat(), queue_size=1, send_timeout=0.001, keepalive_interval=0.001)
    assert conn.state == "idle"


def test_names_count_per_provider_and_can_be_chosen():
    class Numbered(Connection):
        provider = "numbered-test"

    first, second = Numbered(AudioFormat()), Numbered(AudioFormat())
    number = int(first.name.rsplit("-", 1)[1])
    assert first.name == f"numbered-test-{number}" and number >= 1
    assert second.name == f"numbered-test-{number + 1}"
    assert Numbered(AudioFormat(), name="mine").name == "mine"


def test_connect_twice_says_to_create_a_new_connection(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    try:
        with pytest.raises(LocalProtocolError) as info:
            conn.connect(timeout=5)
        assert str(info.value) == (
            "connect() needs an idle connection, this one is open; "
            "create a new connection to stream again"
        )
    finally:
        conn.close()


# ------------------------------------------------------------ registration
def test_unknown_event_names_list_the_known_ones(server):
    conn = LoopbackConnection(server.port)
    with pytest.raises(ConfigurationError) as info:
        conn.on("transcripts", print)
    assert str(info.value) == (
        "LoopbackConnection has no event 'transcripts'; known events: connect, disconnect, "
        "error, message, reconnected, reconnecting, transcript, warning"
    )
    with pytest.raises(ConfigurationError) as info:
        conn.once(3, print)  # type: ignore[call-overload]
    assert str(info.value) == "event name must be a string, got 3"


def test_handlers_are_called_with_or_without_the_event(server):
    conn = LoopbackConnection(server.port)
    calls: List[Any] = []

    def no_argument() -> None:
        calls.append("none")

    def keyword_only(*, ev: Any = None) -> None:
        calls.append(("keyword", ev))

    def star_args(*args: Any) -> None:
        calls.append(("args", len(args)))

    def positional(ev: Any, /) -> None:
        calls.append(("positional", ev.text))

    for handler in (no_argument, keyword_only, star_args, positional):
        conn.on("transcript", handler)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert calls == ["none", ("keyword", None), ("args", 1), ("positional", "chunk 1")]


def test_a_raising_handler_is_logged_with_its_event_and_reported(server, caplog):
    conn = LoopbackConnection(server.port)
    errors: List[BaseException] = []

    def broken(ev: Any) -> None:
        raise ValueError("bad handler")

    def broken_error_handler(err: BaseException) -> None:
        errors.append(err)
        raise RuntimeError("bad error handler")

    conn.on("transcript", broken)
    conn.on("error", broken_error_handler)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert len(errors) == 1 and isinstance(errors[0].__cause__, ValueError)
    records = [r for r in caplog.records if r.name == "voxsync.connection" and r.exc_info]
    assert [r.getMessage() for r in records] == [
        f"{conn.name}: handler {broken!r} for 'transcript' raised",
        f"{conn.name}: the 'error' handler {broken_error_handler!r} raised",
    ]


def test_an_error_without_a_handler_is_logged_as_a_warning(server, caplog):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    conn.report_error(ValueError("no one listens"))
    conn.finish(timeout=5)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == [
        f"{conn.name}: error with no 'error' handler: no one listens"
    ]


# ------------------------------------------------------------------ writer
class _Pieces(LoopbackConnection):
    """A service that takes at most ``max_chunk_seconds`` of audio per message."""

    max_chunk_seconds = 0.005  # 80 frames, 160 bytes


def test_the_writer_cuts_a_long_chunk_into_pieces_the_service_takes(server):
    conn = _Pieces(server.port).connect(timeout=5)
    conn.send(CHUNK + CHUNK[:100])  # 420 bytes: 160 + 160 + 100
    conn.send(CHUNK[:160])  # exactly one piece: sent as it is
    conn.finish(timeout=5)
    assert [len(p) for p in server.received] == [160, 160, 100, 160]
    assert b"".join(server.received) == CHUNK + CHUNK[:100] + CHUNK[:160]
    assert conn.metrics.bytes_sent == 580 and conn.metrics.chunks_sent == 2


def test_pieces_are_at_least_one_frame(server):
    conn = type("Tiny", (LoopbackConnection,), {"max_chunk_seconds": 1e-9})(server.port)
    conn.connect(timeout=5)
    conn.send(b"\x01\x00\x02\x00\x03\x00")
    conn.finish(timeout=5)
    assert server.received == [b"\x01\x00", b"\x02\x00", b"\x03\x00"]


class _Keepalive(LoopbackConnection):
    def __init__(self, port: int, **options: Any) -> None:
        super().__init__(port, **options)
        self.beats: List[str] = []

    def _keepalive(self) -> None:
        self.beats.append(threading.current_thread().name)


def test_keepalive_runs_on_the_writer_after_each_idle_interval(server):
    conn = _Keepalive(server.port, keepalive_interval=0.1).connect(timeout=5)
    time.sleep(0.55)
    conn.close()
    assert 2 <= len(conn.beats) <= 6
    assert set(conn.beats) == {f"voxsync-loopback-{conn.name.rsplit('-', 1)[1]}-writer"}
    idle = _Keepalive(server.port).connect(timeout=5)  # no interval: never
    time.sleep(0.3)
    idle.close()
    assert idle.beats == []


def test_a_builtin_without_a_signature_gets_the_event(server):
    conn = LoopbackConnection(server.port)
    seen: collections.deque = collections.deque()  # deque.append has no signature
    conn.on("transcript", seen.append)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert [ev.text for ev in seen] == ["chunk 1"]


def test_finish_waits_its_whole_bound_for_a_slow_answer():
    with LoopbackServer(reply_delay=0.6) as srv:  # the end of stream is answered in ~1.2 s
        conn = LoopbackConnection(srv.port).connect(timeout=5)
        messages: List[Any] = []
        conn.on("message", messages.append)
        conn.finish(timeout=2.0)
        assert [m.raw for m in messages] == [{"type": "custom", "note": "tail"}]


def test_a_socket_closed_before_the_end_marker_fails_finish():
    conn = type("ClosesAtTheEnd", (_FailsAtTheEnd,), {"failure": None})()
    disconnects: List[Disconnected] = []
    conn.on("disconnect", disconnects.append)
    conn.on("error", lambda err: None)
    conn.connect(timeout=5)
    with pytest.raises(DisconnectedError) as info:
        conn.finish(timeout=5)
    assert str(info.value) == (
        "the stream failed before it finished: "
        "the service closed the connection before the end of the stream"
    )
    assert [d.reason for d in disconnects] == [DisconnectReason.SERVER]


def test_a_socket_closed_after_the_end_marker_is_a_normal_end(server):
    conn = LoopbackConnection(server.port)
    disconnects: List[Disconnected] = []
    conn.on("disconnect", disconnects.append)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert [(d.reason, d.error) for d in disconnects] == [(DisconnectReason.CLIENT, None)]


# -------------------------------------------------------- connect and close
def test_the_connect_event_names_the_provider_and_comes_first(server):
    class Greeting(LoopbackConnection):
        def _open(self, timeout: float) -> None:
            super()._open(timeout)
            self._deliver(StreamWarning("early", "delivered while connecting"))

    conn = Greeting(server.port)
    it = conn.events(timeout=5)
    before = time.time()
    conn.connect(timeout=5)
    assert conn.metrics.connected_at is not None and conn.metrics.connected_at >= before
    conn.finish(timeout=5)
    events = list(it)
    assert [ev.event_name for ev in events] == ["connect", "warning", "message", "disconnect"]
    assert events[0].provider == "loopback" and events[1].code == "early"


class _SlowOpen(Connection):
    provider: ClassVar[str] = "slowopen"

    def __init__(self) -> None:
        super().__init__(AudioFormat())
        self.released = threading.Event()

    def _open(self, timeout: float) -> None:
        self.released.wait(timeout)

    def _close_transport(self) -> None:
        self.released.set()


def test_close_while_connecting_makes_connect_raise():
    conn = _SlowOpen()
    closer = threading.Timer(0.2, conn.close)
    closer.start()
    with pytest.raises(DisconnectedError) as info:
        conn.connect(timeout=5)
    closer.join(5)
    assert str(info.value) == "the connection was closed while connecting"
    assert conn.state == "closed"


def test_close_counts_what_it_discards_and_says_so_in_the_disconnect_event(server):
    conn = LoopbackConnection(server.port)
    disconnects: List[Disconnected] = []
    conn.on("disconnect", disconnects.append)
    conn.connect(timeout=5)
    conn.write_gate.clear()
    for _ in range(3):  # one held by the writer, two queued
        conn.send(CHUNK)
    time.sleep(0.1)
    conn.close()
    assert conn.metrics.chunks_discarded == 2
    assert [(d.reason, d.error) for d in disconnects] == [(DisconnectReason.CLIENT, None)]
    assert conn.metrics.snapshot()["chunks_discarded"] == 2


def test_a_pending_command_fails_with_the_failure_that_ended_the_stream():
    with LoopbackServer(ack=False, drop_after=1) as srv:
        conn = LoopbackConnection(srv.port)
        conn.on("error", lambda err: None)
        conn.connect(timeout=5)
        threading.Timer(0.2, conn.send, args=(CHUNK,)).start()  # the server then drops
        with pytest.raises(DisconnectedError) as info:
            conn.command("pending", timeout=10)
        assert str(info.value) == (
            "the connection failed: the service closed the connection during the stream"
        )
        conn.close()


def test_an_event_from_a_handler_into_a_full_queue_is_logged_as_lost(server, caplog):
    conn = LoopbackConnection(server.port, event_queue_size=1)
    warnings: List[Any] = []
    conn.on("warning", warnings.append)
    ran = threading.Event()

    def flood(ev: Any) -> None:
        for n in range(3):
            conn.report_warning(StreamWarning("flood", str(n)))
        ran.set()

    conn.on("connect", flood)
    conn.connect(timeout=5)
    assert ran.wait(5)
    conn.finish(timeout=5)
    assert [w.message for w in warnings] == ["0"]
    lost = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert lost == [f"{conn.name}: event queue full inside a handler; warning lost"] * 2


def test_every_raising_handler_is_reported_for_its_own_event(server, caplog):
    conn = LoopbackConnection(server.port)
    errors: List[Any] = []

    def first(ev: Any) -> None:
        raise ValueError("first")

    def second(ev: Any) -> None:
        raise KeyError("second")

    conn.on("transcript", first)
    conn.on("transcript", second)
    conn.on("error", errors.append)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert [(e.event, e.handler, type(e.__cause__)) for e in errors] == [
        ("transcript", first, ValueError),
        ("transcript", second, KeyError),
    ]
    logged = [r.getMessage() for r in caplog.records if r.exc_info]
    assert logged == [
        f"{conn.name}: handler {first!r} for 'transcript' raised",
        f"{conn.name}: handler {second!r} for 'transcript' raised",
    ]


def test_registration_forms_keep_or_replace_as_asked(server):
    conn = LoopbackConnection(server.port)
    conn.on("transcript", lambda ev: None)
    conn.on("transcript", lambda ev: None)  # same qualified name, no replace: both kept
    assert len(conn.listeners("transcript")) == 2

    @conn.on("error", replace=True)
    def report(err: Any) -> None:
        pass

    @conn.on("error", replace=True)  # type: ignore[no-redef]
    def report(err: Any) -> None:
        pass

    assert conn.listeners("error") == [report]


def test_an_enum_whose_value_is_the_event_name_works(server):
    class Name(enum.Enum):
        TRANSCRIPT = "transcript"

    conn = LoopbackConnection(server.port)
    seen: List[Any] = []
    conn.on(Name.TRANSCRIPT, seen.append)
    assert conn.listeners(Name.TRANSCRIPT) == [seen.append]
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert [ev.text for ev in seen] == ["chunk 1"]


def test_last_chunk_is_the_audio_last_sent(server):
    conn = LoopbackConnection(server.port).connect(timeout=5)
    assert conn.last_chunk == b""
    conn.send(CHUNK)
    conn.send(bytearray(CHUNK[:4]))
    assert conn.last_chunk == CHUNK[:4] and type(conn.last_chunk) is bytes
    conn.finish(timeout=5)


class _ServiceEnds(_FailingReader):
    """The service sends its end-of-stream marker on its own, then its socket ends."""

    def _read_loop(self) -> None:
        if self.go.wait(5):
            self._stream_ended()
            if type(self).failure is not None:
                raise type(self).failure


@pytest.mark.parametrize(
    "error", [None, OSError("reset after the end")], ids=["closed", "transport-error"]
)
def test_a_stream_the_service_ended_is_a_normal_server_disconnect(error):
    conn = type("Ends", (_ServiceEnds,), {"failure": error})()
    disconnects: List[Disconnected] = []
    conn.on("disconnect", disconnects.append)
    conn.connect(timeout=5)
    conn.go.set()
    assert conn.wait(5) is True
    assert conn.error is None
    assert [(d.reason, d.error) for d in disconnects] == [(DisconnectReason.SERVER, None)]


def test_a_closed_events_iterator_ends_while_events_go_on(server):
    conn = LoopbackConnection(server.port)
    with conn.events(timeout=5) as it:
        conn.connect(timeout=5)
        assert next(it).event_name == "connect"
    with pytest.raises(StopIteration):
        next(it)  # left the with block: no more events, no wait
    other = conn.events(timeout=5)
    other.close()
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert list(it) == [] and list(other) == []


def test_a_provider_without_control_frames_fails_the_stream_naming_itself():
    conn = type("Silent", (_FailingReader,), {"failure": None})()
    conn.on("error", lambda err: None)
    conn.connect(timeout=5)
    conn._send_control(b"command")  # a provider service; this provider has no commands
    with pytest.raises(DisconnectedError) as info:
        conn.wait(5)
    assert str(info.value) == (
        "sending failed: NotImplementedError: Silent does not send control frames"
    )


# ------------------------------------------------------------ the threads
_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_handlers_see_the_context_of_the_thread_that_connected(server):
    conn = LoopbackConnection(server.port)
    seen: List[str] = []
    conn.on("transcript", lambda ev: seen.append(_REQUEST_ID.get()))
    token = _REQUEST_ID.set("req-42")
    try:
        conn.connect(timeout=5)
    finally:
        _REQUEST_ID.reset(token)
    daemons = [t.daemon for t in threading.enumerate() if t.name.startswith("voxsync-loopback")]
    conn.send(CHUNK)
    conn.finish(timeout=5)
    assert seen == ["req-42"]
    assert daemons and all(daemons)


def test_close_waits_about_two_seconds_for_a_slow_handler_and_says_so(server, caplog):
    conn = LoopbackConnection(server.port)
    running = threading.Event()

    def slow(ev: Any) -> None:
        running.set()
        time.sleep(2.6)

    conn.on("transcript", slow)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    assert running.wait(5)
    start = time.monotonic()
    conn.close()
    took = time.monotonic() - start
    assert 1.5 < took < 2.5
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{conn.name}: voxsync-loopback-{conn.name.rsplit('-', 1)[1]}-dispatch "
        "did not end within 2.0 s"
    ]


def test_a_raising_handler_without_an_error_handler_is_logged_once(server, caplog):
    conn = LoopbackConnection(server.port)

    def broken(ev: Any) -> None:
        raise ValueError("broken")

    conn.on("transcript", broken)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    conn.finish(timeout=5)
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in logged] == [
        f"{conn.name}: handler {broken!r} for 'transcript' raised"
    ]


def test_close_with_a_blocked_receiver_is_prompt(server):
    conn = LoopbackConnection(server.port, event_queue_size=1)
    conn.on("transcript", lambda ev: time.sleep(0.3))
    conn.connect(timeout=5)
    for _ in range(6):
        conn.send(CHUNK)
    assert server.wait_received(6)
    time.sleep(0.2)  # the reader waits for room in the event queue
    start = time.monotonic()
    conn.close()
    assert time.monotonic() - start < 1.5


def test_events_after_close_reach_no_handler(server):
    conn = LoopbackConnection(server.port)
    warnings: List[Any] = []
    conn.on("warning", warnings.append)
    conn.connect(timeout=5)
    conn.close()
    conn.report_warning(StreamWarning("late", "after close"))
    time.sleep(0.1)
    assert warnings == []


def test_a_transport_that_fails_to_close_still_closes_the_connection(server):
    class Sticky(LoopbackConnection):
        def _close_transport(self) -> None:
            super()._close_transport()
            raise OSError("close failed")

    conn = Sticky(server.port)
    disconnects: List[Disconnected] = []
    conn.on("disconnect", disconnects.append)
    conn.connect(timeout=5)
    conn.close()
    assert conn.state == "closed"
    assert [d.reason for d in disconnects] == [DisconnectReason.CLIENT]


def test_a_failed_connection_reports_its_error_in_the_disconnect_event(server):
    conn = LoopbackConnection(server.port)
    disconnects: List[Disconnected] = []
    conn.on("disconnect", disconnects.append)
    conn.on("error", lambda err: None)
    conn.connect(timeout=5)
    server.drop_after = 1
    conn.send(CHUNK)
    with pytest.raises(DisconnectedError) as info:
        conn.wait(5)
    assert [(d.reason, d.error, d.events_discarded) for d in disconnects] == [
        (DisconnectReason.SERVER, info.value, 0)
    ]


def test_a_reconnected_connection_waits_again():
    with LoopbackServer(token="right") as srv:
        conn = LoopbackConnection(srv.port, token="wrong")
        with pytest.raises(voxsync.AuthenticationError):
            conn.connect(timeout=5)
        conn._token = "right"
        conn.connect(timeout=5)
        try:
            assert conn.wait(0.3) is False  # open: the failed attempt left nothing set
        finally:
            conn.close()


def test_the_default_queue_holds_256_chunks(server):
    conn = LoopbackConnection(server.port, overflow="raise").connect(timeout=5)
    try:
        conn.write_gate.clear()
        conn.send(CHUNK)  # taken by the writer
        time.sleep(0.1)
        for _ in range(256):
            conn.send(CHUNK)
        with pytest.raises(QueueFullError, match=r"send queue full \(256 chunks\)"):
            conn.send(CHUNK)
    finally:
        conn.close()
    assert conn.metrics.chunks_discarded == 256


def test_a_late_reply_answers_no_command():
    with LoopbackServer(reply_delay=0.3) as srv:
        conn = _Commands(srv.port)
        conn.connect(timeout=5)
        try:
            with pytest.raises(TimeoutError, match="late"):
                conn.command("late", timeout=0.1)
            time.sleep(0.5)  # its ack arrives while no command is pending
            with pytest.raises(TimeoutError, match="later"):
                conn.command("later", timeout=0.1)
            assert conn.command("next", timeout=5) == {"type": "ack", "id": "next", "after": 0}
            # the late acks answered nothing, the second one while "next" was pending
            assert conn.offered == [False, False, True]
        finally:
            conn.close()


def test_close_while_a_command_waits_for_its_handlers_still_ends_cleanly(server):
    conn = LoopbackConnection(server.port)
    disconnects: List[Disconnected] = []
    conn.on("transcript", lambda ev: time.sleep(0.5))  # the dispatcher is busy
    conn.on("disconnect", disconnects.append)
    conn.connect(timeout=5)
    conn.send(CHUNK)
    closer = threading.Timer(0.3, conn.close)
    closer.start()
    reply = conn.command("during-close", timeout=5)  # its ack's event is still queued
    closer.join(5)
    assert reply["id"] == "during-close"
    assert conn.wait(5) is True
    assert [(d.reason, d.events_discarded) for d in disconnects] == [(DisconnectReason.CLIENT, 1)]


def test_the_debug_log_tells_what_happened(server, caplog):
    caplog.set_level(logging.DEBUG, logger="voxsync.connection")

    class Sticky(LoopbackConnection):
        def _close_transport(self) -> None:
            super()._close_transport()
            raise OSError("close failed")

    refused = Sticky(server.port, token="wrong")
    with pytest.raises(voxsync.AuthenticationError):
        refused.connect(timeout=5)
    ended = type("Ends", (_ServiceEnds,), {"failure": OSError("reset")})()
    ended.connect(timeout=5)
    ended.go.set()
    ended.wait(5)
    slow = LoopbackConnection(server.port)
    slow.on("transcript", lambda ev: time.sleep(0.3))
    slow.connect(timeout=5)
    slow.write_gate.clear()
    for _ in range(3):
        slow.send(CHUNK)  # one held by the writer, two queued
    time.sleep(0.1)
    slow.write_gate.set()
    time.sleep(0.1)
    slow.close()
    slow.report_warning(StreamWarning("late", "after close"))
    sticky = Sticky(server.port, token="good").connect(timeout=5)
    sticky.write_gate.clear()
    for _ in range(3):
        sticky.send(CHUNK)  # one held by the writer, two queued
    time.sleep(0.1)
    sticky.close()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    for expected in (
        f"{refused.name}: closing the transport after a failed connect raised",
        f"{ended.name}: transport error after the end of stream: reset",
        f"{slow.name}: connected",
        f"{slow.name}: 2 events not dispatched (closed)",
        f"{slow.name}: closed (client disconnect)",
        f"{slow.name}: warning arrived after close; not dispatched",
        f"{sticky.name}: 2 queued chunks discarded by close()",
        f"{sticky.name}: closing the transport raised",
    ):
        assert expected in messages
    traced = [r for r in caplog.records if "closing the transport" in r.getMessage()]
    assert len(traced) == 2 and all(r.exc_info for r in traced)  # with the traceback


def test_slow_handlers_hold_up_receiving_but_lose_no_event(server):
    conn = LoopbackConnection(server.port, event_queue_size=1)
    texts: List[str] = []

    def slow(ev: Any) -> None:
        time.sleep(0.05)
        texts.append(ev.text)

    conn.on("transcript", slow)
    conn.connect(timeout=5)
    for _ in range(8):
        conn.send(CHUNK)
    conn.finish(timeout=10)
    assert texts == [f"chunk {n}" for n in range(1, 9)]


def test_keepalive_goes_on_while_finish_waits_for_the_last_results():
    with LoopbackServer(reply_delay=0.4) as srv:  # the end of stream is answered in ~0.8 s
        conn = _Keepalive(srv.port, keepalive_interval=0.1).connect(timeout=5)
        conn.beats.clear()
        conn.finish(timeout=5)
        assert len(conn.beats) >= 3


def test_a_raising_close_callback_is_logged_naming_it(server, caplog):
    conn = LoopbackConnection(server.port)

    def broken() -> None:
        raise RuntimeError("cleanup failed")

    conn.add_close_callback(broken)
    conn.connect(timeout=5)
    conn.close()
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in logged] == [f"{conn.name}: close callback {broken!r} raised"]
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is RuntimeError


def test_a_pending_command_fails_saying_the_connection_was_closed():
    with LoopbackServer(ack=False) as srv:
        conn = LoopbackConnection(srv.port).connect(timeout=5)
        closer = threading.Timer(0.2, conn.close)
        closer.start()
        with pytest.raises(DisconnectedError) as info:
            conn.command("unanswered", timeout=10)
        closer.join(5)
        assert str(info.value) == "the connection was closed"


# ------------------------------------------------------ failures and timing
class _KeepaliveFails(LoopbackConnection):
    def _keepalive(self) -> None:
        raise OSError("link down")


def test_a_failed_keepalive_fails_the_stream_as_a_transport_error(server):
    conn = _KeepaliveFails(server.port, keepalive_interval=0.05)
    errors: List[BaseException] = []
    disconnects: List[Disconnected] = []
    conn.on("error", errors.append)
    conn.on("disconnect", disconnects.append)
    conn.connect(timeout=5)
    with pytest.raises(DisconnectedError) as info:
        conn.wait(5)
    assert str(info.value) == "sending failed: OSError: link down"
    assert isinstance(info.value.__cause__, OSError)
    assert errors == [info.value]
    assert [(d.reason, d.error) for d in disconnects] == [
        (DisconnectReason.TRANSPORT_ERROR, info.value)
    ]


def test_latency_of_an_event_that_arrived_while_connecting_counts_from_its_arrival(server):
    class SlowGreeting(LoopbackConnection):
        def _open(self, timeout: float) -> None:
            super()._open(timeout)
            self._deliver(StreamWarning("early", "delivered while connecting"))
            time.sleep(0.3)  # the rest of the handshake

    conn = SlowGreeting(server.port).connect(timeout=5)
    conn.finish(timeout=5)  # every event dispatched
    assert conn.metrics.events["warning"] == 1
    assert conn.metrics.latency_max >= 0.3


class _SlowToUnwind(LoopbackConnection):
    """A transport whose reader takes ``unwind`` seconds to return once its socket closed."""

    unwind: ClassVar[float] = 0.3

    def _read_loop(self) -> None:
        try:
            super()._read_loop()
        finally:
            time.sleep(type(self).unwind)


def _own_threads(conn: Connection) -> List[str]:
    prefix = f"voxsync-loopback-{conn.name.rsplit('-', 1)[1]}-"
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def test_close_returns_once_the_reader_thread_ended(server):
    conn = _SlowToUnwind(server.port).connect(timeout=5)
    assert _own_threads(conn) != []
    started = time.monotonic()
    conn.close()
    assert 0.25 <= time.monotonic() - started < 2.0
    assert _own_threads(conn) == []


def test_close_gives_up_on_a_stuck_reader_after_its_bound_and_says_so(server, caplog):
    conn = type("Stuck", (_SlowToUnwind,), {"unwind": 5.0})(server.port).connect(timeout=5)
    reader = f"voxsync-loopback-{conn.name.rsplit('-', 1)[1]}-reader"
    with caplog.at_level(logging.WARNING, logger="voxsync"):
        started = time.monotonic()
        conn.close()
        assert 1.9 <= time.monotonic() - started < 4.0  # CLOSE_JOIN_TIMEOUT, 2 s
    assert f"{conn.name}: thread {reader} did not end within 2.0 s" in [
        r.getMessage() for r in caplog.records
    ]
    for thread in threading.enumerate():
        if thread.name == reader:
            thread.join(10)


class _CountsEnds(LoopbackConnection):
    def __init__(self, port: int, **options: Any) -> None:
        super().__init__(port, **options)
        self.ends = 0

    def _end_of_stream(self) -> None:
        self.ends += 1
        super()._end_of_stream()


def test_a_second_finish_while_finishing_waits_for_the_same_end_of_stream():
    with LoopbackServer(reply_delay=0.6) as srv:  # the end of stream is answered in ~1.2 s
        conn = _CountsEnds(srv.port).connect(timeout=5)
        conn.send(CHUNK)
        outcomes: List[Optional[BaseException]] = []

        def finish() -> None:
            try:
                conn.finish(timeout=5)
                outcomes.append(None)
            except BaseException as exc:  # reported below
                outcomes.append(exc)

        first = threading.Thread(target=finish)
        first.start()
        deadline = time.monotonic() + 5
        while conn.state != "finishing":
            assert time.monotonic() < deadline
            time.sleep(0.005)
        finish()  # the second call, while the first one waits
        first.join(10)
        assert not first.is_alive()
        assert outcomes == [None, None]
        assert conn.ends == 1
        assert srv.received == [CHUNK]
