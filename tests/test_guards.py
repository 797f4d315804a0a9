"""Promises that a plausible one-line bug would break, each pinned by one test.

Every test here fails on a specific, realistic mistake (named in its
docstring) that the rest of the suite did not notice.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest
from loopback import LoopbackConnection, LoopbackServer

from voxsync.audio.convert import Converter
from voxsync.audio.format import AudioFormat
from voxsync.audio.microphone import MicrophoneStream
from voxsync.emulators.aiola import AiolaEmulator, AiolaFaults
from voxsync.emulators.engine import make_engine
from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.errors import AuthenticationError, DisconnectedError, QueueFullError
from voxsync.events import Transcript
from voxsync.redact import REDACTED, redact
from voxsync.uhlive import ConversationConnection

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "samples" / "audio"
CHUNK = b"\x01\x00" * 160  # 10 ms of 16 kHz mono s16le


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


# ------------------------------------------------------------ events()
def test_events_iterator_that_falls_behind_raises_queue_full(server: LoopbackServer) -> None:
    """Bug: an overflowing ``events()`` iterator ends quietly instead of raising."""
    conn = LoopbackConnection(server.port).connect(timeout=5)
    it = conn.events(timeout=5, maxsize=3)
    for _ in range(10):
        conn.send(CHUNK)
    conn.finish(timeout=5)
    seen: List[Any] = []
    with pytest.raises(QueueFullError, match="fell 3 events behind"):
        for ev in it:
            seen.append(ev)
    assert len(seen) <= 3  # what was buffered before the overflow, nothing invented
    with pytest.raises(StopIteration):
        next(it)  # the iterator is finished, not stuck


# ------------------------------------------------------------ microphone
def test_microphone_buffer_holds_exactly_queue_size_blocks() -> None:
    """Bug: the buffer bound off by one (``>`` for ``>=``), holding one block more."""
    mic = MicrophoneStream(queue_size=3, blocksize=160)
    block = np.zeros((160, 1), dtype="<i2")
    for _ in range(5):
        mic._callback(block, 160, None, None)  # what PortAudio's thread calls
    assert mic.dropped_blocks == 2
    assert len(mic._buffer) == 3 == mic.queue_size


class _Sink:
    """The consumer side of ``stream_to``: a connection's ``audio_format`` and ``send()``."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.audio_format = fmt
        self.state = "open"
        self.data = bytearray()

    def send(self, data: bytes) -> None:
        self.data.extend(data)


def test_microphone_stop_delivers_the_resamplers_tail() -> None:
    """Bug: ``stop()`` skips ``converter.flush()``: the last ~20 ms of audio vanish."""
    mic = MicrophoneStream(samplerate=44100, blocksize=4410, queue_size=64)
    sink = _Sink(AudioFormat(16000, 1, "pcm_s16le"))
    rng = np.random.default_rng(7)
    blocks = [rng.integers(-3000, 3000, size=(4410, 1), dtype="<i2") for _ in range(10)]
    for block in blocks:
        mic._callback(block, 4410, None, None)
    mic._buffer.close()  # what stop() does once the device is closed
    # the sender's loop, run on this thread: every block, then the flushed tail
    mic._send_loop(sink, Converter(mic.audio_format, sink.audio_format))
    sent_frames = len(sink.data) // 2
    expected = round(10 * 4410 * 16000 / 44100)  # one second in, one second out
    assert abs(sent_frames - expected) <= 2, (sent_frames, expected)
    # and it is the same audio one whole-signal conversion gives
    whole = Converter(mic.audio_format, sink.audio_format)
    ref = whole.process(b"".join(b.tobytes() for b in blocks)) + whole.flush()
    assert len(ref) == len(sink.data)


# ------------------------------------------------------------ Uh!ive
def _uhlive(emu: UhliveEmulator, **options: Any) -> ConversationConnection:
    return ConversationConnection(
        speaker="Alice",
        client_id="acme",
        client_secret="acme-secret",
        auth_server=emu.base_url,
        api_url=emu.ws_url,
        conversation_id="call-7",
        model="en",
        **options,
    )


def test_uhlive_word_confidence_comes_from_the_words_own_field() -> None:
    """Bug: ``Word.confidence`` read from another key (or the segment's)."""
    from voxsync.uhlive import Conversation

    topic = "conversation:acme@c"
    client = Conversation("acme", "c", "Alice")
    client.join(model="en")
    client.receive(json.dumps(["1", "1", topic, "phx_reply", {"status": "ok", "response": {}}]))
    words = [
        {"value": "one", "start": 10, "end": 20, "length": 10, "confidence": 0.25},
        {"value": "two", "start": 30, "end": 45, "length": 15, "confidence": 0.75},
    ]
    payload = {"speaker": "Alice", "value": "one two", "confidence": 0.5, "components": words}
    ev = client.receive(json.dumps(["1", None, topic, "audio_segment_decoded", payload]))
    assert [w.confidence for w in ev.words] == [0.25, 0.75]
    assert [w.length for w in ev.words] == [10, 15]
    assert ev.confidence == 0.5


def test_uhlive_transcript_words_carry_their_confidence_to_the_event() -> None:
    """Bug: the connection builds ``voxsync.Word`` without (or with the wrong) confidence."""
    from voxsync.uhlive.connection import _transcript
    from voxsync.uhlive.conversation import AudioSegmentDecoded

    raw = {
        "speaker": "Alice",
        "value": "one two",
        "start": 1000,
        "end": 1500,
        "confidence": 0.5,
        "components": [
            {"value": "one", "start": 1000, "end": 1200, "confidence": 0.25},
            {"value": "two", "start": 1250, "end": 1500, "confidence": 0.75},
        ],
    }
    ev = AudioSegmentDecoded("1", None, "conversation:acme@c", "audio_segment_decoded", raw)
    tr = _transcript(ev, origin=1000)
    assert [(w.text, w.start, w.end, w.confidence) for w in tr.words] == [
        ("one", 0.0, 0.2, 0.25),
        ("two", 0.25, 0.5, 0.75),
    ]


@pytest.mark.parametrize("mode", ["ping", "heartbeat"])
def test_uhlive_keepalive_sends_the_chosen_frame_type(mode: str) -> None:
    """Bug: the keepalive modes swapped (``heartbeat`` sending pings and the reverse).

    The emulator counts Phoenix frames (a heartbeat is one, a WebSocket ping
    is not) and drops the socket at the third: heartbeats every 0.1 s get the
    observer dropped quickly, pings never do.
    """
    with UhliveEmulator(engine="scripted", idle_timeout=30) as emu:
        emu.faults.drop_after_frames = 3  # the join, then two more Phoenix frames
        conn = _uhlive(emu, readonly=True, keepalive=mode, keepalive_interval=0.1)
        conn.connect(timeout=10)
        try:
            if mode == "heartbeat":
                with pytest.raises(DisconnectedError):
                    conn.wait(5)
            else:
                # ten keepalive intervals later: still open, no Phoenix frame was sent
                assert conn.wait(1.0) is False
                assert conn.connected and conn.error is None
        finally:
            conn.close()


# ------------------------------------------------------------ aiOla
def test_aiola_transcript_ids_count_from_zero() -> None:
    """Bug: the utterance counter starting at 1."""
    engine = make_engine("scripted", every_bytes=16000, transcripts=["a", "b", "c"], partial_ms=0)
    with AiolaEmulator(engine=engine) as emu:
        from voxsync.aiola import AiolaClient

        with AiolaClient(api_key="k", base_url=emu.base_url) as client:
            conn = client.stt.stream(transports=("websocket",))
            finals: List[Transcript] = []
            done = threading.Event()

            @conn.on("transcript")
            def on_transcript(ev: Transcript) -> None:
                finals.append(ev)
                if len(finals) == 3:
                    done.set()

            conn.connect(timeout=10)
            for _ in range(30):  # 3 s of silence: three scripted transcripts
                conn.send(bytes(3200))
            assert done.wait(20), finals
            conn.close()
    assert [ev.id for ev in finals[:3]] == ["0", "1", "2"]
    assert [ev.text for ev in finals[:3]] == ["a", "b", "c"]


def test_aiola_refused_token_while_reconnecting_ends_the_stream_at_once() -> None:
    """Bug: a refused token during reconnection retried like a network error."""
    engine = make_engine("scripted", every_bytes=16000, partial_ms=0)
    faults = AiolaFaults(drop_after_chunks=2)
    with AiolaEmulator(engine=engine, faults=faults) as emu:
        from voxsync.aiola import AiolaClient

        client = AiolaClient(api_key="k", base_url=emu.base_url)
        conn = client.stt.stream(
            reconnection_attempts=4, reconnection_delay=0.05, transports=("websocket",)
        )
        attempts: List[int] = []
        errors: List[BaseException] = []
        conn.on("reconnecting", lambda ev: attempts.append(ev.attempt))
        conn.on("error", errors.append)
        conn.connect(timeout=10)
        emu.faults.refuse_auth = True  # the token is refused from now on
        for _ in range(3):
            conn.send(bytes(3200))
        started = time.monotonic()
        with pytest.raises(AuthenticationError):
            conn.wait(timeout=30)
        assert time.monotonic() - started < 10
        conn.close()
        client.close()
    assert attempts == [1]  # one attempt, refused: no second try
    assert errors and isinstance(errors[-1], AuthenticationError)


# ------------------------------------------------------------ command line
def test_listen_exits_1_when_the_connection_fails(
    virtual_mic: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug: ``voxsync listen`` returning 0 after its connection failed mid-stream.

    The microphone's own sender usually meets the failure too (its next
    ``send()`` raises, and ``stop()`` raises that again), which hides a
    command that forgets the connection's error. Here the microphone keeps
    its errors to itself (``on_error``), so only the connection can tell.
    """
    import voxsync.audio
    from voxsync.cli import main

    mic_errors: List[BaseException] = []
    monkeypatch.setattr(
        voxsync.audio,
        "MicrophoneStream",
        functools.partial(MicrophoneStream, on_error=mic_errors.append),
    )

    with UhliveEmulator(engine="scripted", clients={"acme": "acme-secret"}) as emu:
        emu.faults.drop_after_frames = 4  # the join and three audio frames
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        code = main(
            [
                "listen",
                "--provider",
                "uhlive",
                "--device",
                str(virtual_mic.device),
                "--duration",
                "10",
                "--format",
                "json",
            ]
        )
    err = capsys.readouterr().err
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("voxsync: error:") and "Uh!ive" in last, err


# ------------------------------------------------------------ redaction
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer sk-live-1234567", f"Authorization: Bearer {REDACTED}"),
        ("authorization: basic dXNlcjpwYXNz==", f"authorization: basic {REDACTED}"),
        ("Bearer a.b_c~d+e/f=g-h tail", f"Bearer {REDACTED} tail"),
        (
            "GET /?token=tok-1.2_3~4&x=1",
            f"GET /?token={REDACTED}&x=1",
        ),
        ('{"access_token": "abc-def.ghi"}', f'{{"access_token": "{REDACTED}"}}'),
        ("jwt eyJhbGciOi.eyJzdWIiOiIx.c2ln-X_y", f"jwt {REDACTED}"),
    ],
)
def test_redaction_replaces_the_whole_credential(text: str, expected: str) -> None:
    """Bug: a narrowed pattern (e.g. ``-`` lost) leaving ``Bearer ***-live-1234567``."""
    out = redact(text)
    assert out == expected
    # no fragment of the credential survives next to the mask
    assert not re.search(re.escape(REDACTED) + r"[\w.~+/=-]", out)


def test_redaction_of_literal_secrets_needs_four_characters() -> None:
    assert redact("pin abcd in text", secrets=["abcd"]) == f"pin {REDACTED} in text"
    assert redact("a b c", secrets=["b", "", "abc"]) == "a b c"  # too short: left alone
    assert redact("key=", secrets=[""]) == "key="


def test_redaction_keeps_the_name_and_separator() -> None:
    assert redact("client_secret=s3cr3t&x=1") == f"client_secret={REDACTED}&x=1"
    assert redact("X-Aiola-Api-Key: abc123") == f"X-Aiola-Api-Key: {REDACTED}"
    assert redact('"password" : "hunter22"') == f'"password" : "{REDACTED}"'


def test_redacting_filter_rewrites_the_record_and_keeps_it() -> None:
    """Bug: the filter dropping records, or leaving the arguments to be formatted again."""
    import logging

    from voxsync.redact import RedactingFilter

    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "GET %s -> %d", ("/ws?jwt=abc.def.ghi&v=2", 200), None
    )
    assert RedactingFilter().filter(record) is True  # kept, not dropped
    assert record.msg == f"GET /ws?jwt={REDACTED}&v=2 -> 200"
    assert record.args is None
    assert record.getMessage() == f"GET /ws?jwt={REDACTED}&v=2 -> 200"
