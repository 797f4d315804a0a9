"""The threaded Uh!ive ConversationConnection against the emulator."""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest
from pulse import virtual_mic  # noqa: F401

import voxsync.providers
from voxsync.audio.files import read_audio, stream_file
from voxsync.audio.format import AudioFormat
from voxsync.audio.microphone import MicrophoneStream
from voxsync.emulators.engine import make_engine
from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.errors import (
    AuthenticationError,
    ConfigurationError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
    VoxsyncError,
)
from voxsync.events import Transcript
from voxsync.uhlive import (
    ConversationConnection,
    EntityFound,
    NormalizedTranscript,
    SpeakerJoined,
    SpeakerLeft,
    UhliveError,
)
from voxsync.uhlive import _cli as uhlive_cli

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "samples" / "audio"
TRANSCRIPTS = json.loads((AUDIO / "transcripts.json").read_text())
FOX = TRANSCRIPTS["quick_brown_fox.wav"]
PHONE = TRANSCRIPTS["phone_number.wav"]


@pytest.fixture
def emu() -> Iterator[UhliveEmulator]:
    with UhliveEmulator(engine="scripted", transcripts=[FOX]) as emulator:
        yield emulator


def connection(
    emu: UhliveEmulator, speaker: str = "Alice", **options: Any
) -> ConversationConnection:
    options.setdefault("conversation_id", "call-42")
    options.setdefault("model", "en")
    return ConversationConnection(
        speaker=speaker,
        client_id="acme",
        client_secret="acme-secret",
        auth_server=emu.base_url,
        api_url=emu.ws_url,
        **options,
    )


class Recorder:
    """Collects events from the dispatcher thread."""

    def __init__(self, conn: ConversationConnection, *names: str) -> None:
        self.events: List[Any] = []
        self.lock = threading.Lock()
        for name in names:
            conn.on(name, self.add)

    def add(self, event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def finals(self) -> List[Transcript]:
        with self.lock:
            return [e for e in self.events if type(e) is Transcript and e.is_final]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(list(self.events)):
                    return True
            time.sleep(0.02)
        return False


def test_stream_a_file_and_finish(emu: UhliveEmulator) -> None:
    conn = connection(emu)
    rec = Recorder(conn, "transcript", "normalized", "speaker_left", "connect", "error")
    assert conn.audio_format == AudioFormat(8000, 1, "pcm_s16le")
    with conn:
        stream_file(conn, AUDIO / "quick_brown_fox.wav", realtime=False)
    assert conn.state == "closed"
    finals = rec.finals()
    assert [f.text for f in finals] == [FOX]
    final = finals[0]
    assert final.speaker == "Alice" and final.language == "en" and final.id
    # times in seconds from origin; the raw payload keeps integer ms
    assert 0 <= final.start < final.end < 10
    assert final.raw["start"] == round(final.start * 1000)
    assert [w.text for w in final.words] == FOX.split()
    assert all(final.start <= w.start < w.end <= final.end for w in final.words)
    partials = [e for e in rec.events if type(e) is Transcript and not e.is_final]
    assert partials and all(p.id == final.id for p in partials)
    normalized = [e for e in rec.events if isinstance(e, NormalizedTranscript)]
    assert normalized[0].text == "The quick brown fox jumps over the lazy dog."
    left = [e for e in rec.events if isinstance(e, SpeakerLeft)]
    assert [e.speaker for e in left] == ["Alice"]
    assert not [e for e in rec.events if isinstance(e, Exception)]
    assert conn.metrics.snapshot()["chunks_sent"] > 0


def test_origin_timestamps_are_relative_in_events_and_absolute_in_raw(emu: UhliveEmulator) -> None:
    origin = 1_700_000_000_000
    conn = connection(emu, origin=origin)
    rec = Recorder(conn, "transcript")
    with conn:
        stream_file(conn, AUDIO / "quick_brown_fox.wav", realtime=False)
    final = rec.finals()[0]
    assert final.raw["start"] >= origin
    assert 0 <= final.start < 10


def test_entities_and_the_provider_registry() -> None:
    with UhliveEmulator(engine="scripted", transcripts=[PHONE]) as emu:
        conn = voxsync.providers.connection(
            "uhlive",
            conversation_id="c",
            speaker="Alice",
            model="en",
            client_id="acme",
            client_secret="x-secret",
            auth_server=emu.base_url,
            api_url=emu.ws_url,
        )
        assert isinstance(conn, ConversationConnection)
        rec = Recorder(conn, "entity")
        with conn:
            stream_file(conn, AUDIO / "phone_number.wav", realtime=False)
    entities = [e for e in rec.events if isinstance(e, EntityFound)]
    assert [(e.canonical, e.value, e.speaker) for e in entities] == [("5551234", 5551234, "Alice")]


def test_leave_waits_for_the_last_words(emu: UhliveEmulator) -> None:
    emu.faults.event_delay = 0.15  # every event lags: the final comes well after the leave
    conn = connection(emu, finish_timeout=30)
    rec = Recorder(conn, "transcript", "speaker_left")
    pcm, _ = read_audio(AUDIO / "quick_brown_fox.wav", conn.audio_format)
    with conn:
        # cut in the middle of the speech: the final is only made when we leave
        conn.send(pcm[: len(pcm) * 2 // 3 // 2 * 2])
        conn.finish(timeout=30)
        assert [f.text for f in rec.finals()] == [FOX]
        assert isinstance(rec.events[-1], SpeakerLeft)


def test_two_speakers_and_a_readonly_observer() -> None:
    with UhliveEmulator(engine="scripted", transcripts=["speech of somebody"]) as emu:
        observer = connection(emu, "watcher", readonly=True, model="")
        alice = connection(emu, "Alice")
        bob = connection(emu, "Bob")
        recs = {
            "watcher": Recorder(observer, "transcript", "speaker_joined", "speaker_left"),
            "Alice": Recorder(alice, "transcript", "speaker_joined", "speaker_left"),
            "Bob": Recorder(bob, "transcript", "speaker_joined", "speaker_left"),
        }
        observer.connect()
        alice.connect()
        bob.connect()
        with pytest.raises(LocalProtocolError, match="readonly"):
            observer.send(bytes(160))
        threads = [
            threading.Thread(
                target=stream_file, args=(alice, AUDIO / "yes.wav"), kwargs={"realtime": False}
            ),
            threading.Thread(
                target=stream_file, args=(bob, AUDIO / "no.wav"), kwargs={"realtime": False}
            ),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        silence = bytes(16000)  # 1 s of 8 kHz silence ends both utterances
        alice.send(silence)
        bob.send(silence)

        def both(events: List[Any]) -> bool:
            return {e.speaker for e in events if type(e) is Transcript and e.is_final} == {
                "Alice",
                "Bob",
            }

        for name, rec in recs.items():
            assert rec.wait_for(both), f"{name} did not see both speakers' finals"
        alice.finish()
        bob.finish()
        assert recs["watcher"].wait_for(
            lambda ev: {e.speaker for e in ev if isinstance(e, SpeakerLeft)} == {"Alice", "Bob"}
        )
        observer.finish()
        for c in (alice, bob, observer):
            c.close()
    joined = [e.speaker for e in recs["watcher"].events if isinstance(e, SpeakerJoined)]
    assert joined == ["Alice", "Bob"]
    assert [e.speaker for e in recs["Alice"].events if isinstance(e, SpeakerJoined)] == ["Bob"]


class _RecordingSession:
    def __init__(self, inner: Any, sink: bytearray) -> None:
        self.inner = inner
        self.sink = sink
        self.sample_rate = inner.sample_rate

    def feed(self, pcm: bytes) -> Any:
        self.sink.extend(pcm)
        return self.inner.feed(pcm)

    def flush(self) -> Any:
        return self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class RecordingEngine:
    """The scripted engine, keeping the PCM the emulator decoded for it."""

    kind = "recording"

    def __init__(self) -> None:
        self.inner = make_engine("scripted", transcripts=[FOX])
        self.pcm = bytearray()

    def new_session(self, sample_rate: int = 16000) -> Any:
        assert sample_rate == 8000
        return _RecordingSession(self.inner.new_session(sample_rate), self.pcm)


@pytest.mark.parametrize(
    ("codec", "encoding"), [("linear", "pcm_s16le"), ("g711a", "alaw"), ("g711u", "mulaw")]
)
def test_audio_codecs(codec: str, encoding: str) -> None:
    engine = RecordingEngine()
    with UhliveEmulator(engine=engine) as emu:
        conn = connection(emu, audio_codec=codec)
        assert conn.audio_format == AudioFormat(8000, 1, encoding)
        rec = Recorder(conn, "transcript")
        with conn:
            stream_file(conn, AUDIO / "quick_brown_fox.wav", realtime=False)
    assert [f.text for f in rec.finals()] == [FOX]
    # the emulator decoded the law the client encoded: the waveform survived
    reference, _ = read_audio(AUDIO / "quick_brown_fox.wav", AudioFormat(8000, 1, "pcm_s16le"))
    got = np.frombuffer(bytes(engine.pcm), dtype="<i2").astype(np.float64)
    ref = np.frombuffer(reference, dtype="<i2").astype(np.float64)
    n = min(len(got), len(ref))
    assert n > 8000
    corr = max(np.corrcoef(got[lag:n], ref[: n - lag])[0, 1] for lag in range(0, 40))
    assert corr > 0.95, f"decoded audio does not match the sent audio (r={corr:.3f})"


def test_bad_token_is_an_authentication_error(emu: UhliveEmulator) -> None:
    conn = ConversationConnection(
        "c", "Alice", identifier="acme", token="not-a-valid-token", api_url=emu.ws_url, model="en"
    )
    with pytest.raises(AuthenticationError) as info:
        conn.connect(timeout=10)
    assert info.value.status_code == 403
    assert "not-a-valid-token" not in str(info.value)
    assert conn.state == "idle"


def test_refused_credentials_are_an_authentication_error() -> None:
    with UhliveEmulator(engine="scripted", clients={"acme": "right-secret"}) as emu:
        conn = ConversationConnection(
            "c",
            "Alice",
            client_id="acme",
            client_secret="wrong-secret",
            auth_server=emu.base_url,
            api_url=emu.ws_url,
            model="en",
        )
        with pytest.raises(AuthenticationError, match="Invalid client") as info:
            conn.connect(timeout=10)
        assert "wrong-secret" not in str(info.value)


def test_refused_join_gives_the_reason(emu: UhliveEmulator) -> None:
    emu.faults.refuse_join = "too many speakers in this conversation"
    conn = connection(emu)
    with pytest.raises(UhliveError, match="too many speakers") as info:
        conn.connect(timeout=10)
    assert info.value.reason == "too many speakers in this conversation"
    assert conn.state == "idle"
    emu.faults.refuse_join = None
    conn.connect(timeout=10)  # a refused connection may connect again
    conn.close()


@pytest.mark.parametrize("mode", ["ping", "heartbeat"])
def test_keepalive_keeps_an_idle_observer(mode: str) -> None:
    with UhliveEmulator(engine="scripted", idle_timeout=1.0) as emu:
        kept = connection(emu, "kept", readonly=True, keepalive=mode, keepalive_interval=0.2)
        dropped = connection(emu, "dropped", readonly=True, keepalive_interval=None)
        kept.connect()
        dropped.connect()
        with pytest.raises(DisconnectedError):
            dropped.wait(10)
        assert kept.connected and kept.error is None
        kept.finish()
        kept.close()
        assert kept.error is None


def test_audio_gap_ends_the_session() -> None:
    with UhliveEmulator(engine="scripted", audio_gap_timeout=0.5) as emu:
        conn = connection(emu)
        rec = Recorder(conn, "speaker_left", "error")
        conn.connect()
        with pytest.raises(DisconnectedError, match="audio_gap"):
            conn.wait(10)
        assert any(isinstance(e, SpeakerLeft) and e.reason == "audio_gap" for e in rec.events)


def test_channel_crash_is_a_server_error(emu: UhliveEmulator) -> None:
    emu.faults.phx_error_after_frames = 3
    conn = connection(emu)
    conn.connect()
    with pytest.raises(UhliveError, match="crashed"):
        for _ in range(20):
            conn.send(bytes(1600))
        conn.wait(10)
    conn.close()


def test_malformed_frame_is_reported_and_the_stream_goes_on(emu: UhliveEmulator) -> None:
    emu.faults.malformed_after_frames = 2
    conn = connection(emu)
    rec = Recorder(conn, "transcript", "error")
    with conn:
        stream_file(conn, AUDIO / "quick_brown_fox.wav", realtime=False)
    errors = [e for e in rec.events if isinstance(e, RemoteProtocolError)]
    assert len(errors) == 1
    assert [f.text for f in rec.finals()] == [FOX]


def test_dropped_socket_is_a_disconnected_error(emu: UhliveEmulator) -> None:
    emu.faults.drop_after_frames = 5
    conn = connection(emu)
    conn.connect()
    with pytest.raises(DisconnectedError):
        for _ in range(200):
            conn.send(bytes(1600))
            time.sleep(0.005)
        conn.wait(10)
    conn.close()


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="audio_codec"):
        ConversationConnection("c", token="t", identifier="i", audio_codec="opus")
    with pytest.raises(ConfigurationError, match="model"):
        ConversationConnection("c", token="t", identifier="i", model="")
    with pytest.raises(ConfigurationError, match="credentials"):
        ConversationConnection("c", model="en")
    conn = ConversationConnection(token="tok-secret-value", identifier="acme", model="en")
    assert conn.conversation_id.startswith("voxsync-")
    assert conn.topic == f"conversation:acme@{conn.conversation_id}"
    assert "tok-secret-value" not in repr(conn)


def test_cli_options() -> None:
    parser = argparse.ArgumentParser()
    uhlive_cli.add_cli_arguments(parser.add_argument_group("uhlive"))
    args = parser.parse_args(
        [
            "--uhlive-client-id",
            "acme",
            "--uhlive-client-secret",
            "s",
            "--uhlive-conversation",
            "c1",
            "--uhlive-speaker",
            "Bob",
            "--uhlive-model",
            "en",
            "--uhlive-codec",
            "g711a",
            "--uhlive-readonly",
            "--uhlive-api-url",
            "ws://h:1",
        ]
    )
    options = uhlive_cli.options_from_args(args)
    assert options == {
        "speaker": "Bob",
        "model": "en",
        "country": "fr",
        "audio_codec": "g711a",
        "readonly": True,
        "interim_results": True,
        "client_id": "acme",
        "client_secret": "s",
        "conversation_id": "c1",
        "api_url": "ws://h:1",
    }
    conn = ConversationConnection(**options)
    assert conn.readonly and conn.audio_format.encoding == "alaw"


def test_virtual_microphone(virtual_mic: Any) -> None:
    with UhliveEmulator(engine="scripted", transcripts=[FOX]) as emu:
        conn = connection(emu)
        rec = Recorder(conn, "transcript")
        with conn, MicrophoneStream(device=virtual_mic.device, blocksize=1024) as mic:
            mic.stream_to(conn)
            virtual_mic.play(AUDIO / "quick_brown_fox.wav").wait(30)
            assert rec.wait_for(
                lambda ev: any(type(e) is Transcript and e.is_final for e in ev), 15
            )
            mic.stop()
    finals = rec.finals()
    assert finals[0].text == FOX and finals[0].speaker == "Alice"


def test_tokens_stay_out_of_every_log(
    emu: UhliveEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Client and emulator log at debug level (websockets logs request lines and headers)."""
    token = emu.issue_token("acme")
    with caplog.at_level(logging.DEBUG):
        conn = connection(emu, token=token)
        conn.connect()
        conn.send(bytes(1600))
        conn.finish(timeout=10)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /socket/websocket" in text  # the emulator's request line was logged...
    assert token not in text  # ...without the token
    assert "acme-secret" not in text


def test_connect_can_be_retried_after_a_failed_join(emu: UhliveEmulator) -> None:
    emu.faults.drop_after_frames = 1  # the socket drops right after our join
    conn = connection(emu)
    with pytest.raises(VoxsyncError):
        conn.connect(timeout=5)
    assert conn.state == "idle"
    emu.faults.drop_after_frames = None
    conn.connect(timeout=5)  # a fresh join, not "the conversation is joining"
    assert conn.connected
    conn.finish(timeout=10)


def test_one_alias_one_speaker_even_when_joins_race() -> None:
    # real recognition: each join builds a decoder, which made the race window wide
    with UhliveEmulator() as emu:
        _race_joins(emu)


def _race_joins(emu: UhliveEmulator) -> None:
    conns = [connection(emu, speaker="Alice") for _ in range(5)]
    barrier = threading.Barrier(len(conns))
    outcomes: List[Any] = []

    def join(conn: ConversationConnection) -> None:
        barrier.wait(5)
        try:
            conn.connect(timeout=10)
            outcomes.append("joined")
        except VoxsyncError as exc:
            outcomes.append(exc)

    threads = [
        threading.Thread(target=join, args=(c,), name=f"join-{i}") for i, c in enumerate(conns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert outcomes.count("joined") == 1, outcomes
    assert all("already in the conversation" in str(o) for o in outcomes if o != "joined")
    for conn in conns:
        conn.close()
