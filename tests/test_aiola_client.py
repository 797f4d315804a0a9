"""voxsync.aiola against the aiOla emulator: auth, streaming, keywords, tasks, faults."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import wave
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import socketio

import voxsync
from voxsync.aiola import AiolaClient, AiolaConnection, LiveEvents, create_connection, decode_event
from voxsync.aiola import _cli as aiola_cli
from voxsync.aiola._rest import jwt_claims
from voxsync.emulators.aiola import AiolaEmulator, AiolaFaults
from voxsync.emulators.engine import make_engine
from voxsync.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
    ServerError,
    VoxsyncError,
)
from voxsync.events import Message, Transcript, Translation
from voxsync.pool import pool

AUDIO = Path(__file__).resolve().parent.parent / "samples" / "audio"
TRANSCRIPTS: Dict[str, str] = json.loads((AUDIO / "transcripts.json").read_text())
VOCABULARY = sorted({w for text in TRANSCRIPTS.values() for w in text.split()})
CHUNK = 3200  # 100 ms at 16 kHz s16le


def pcm(name: str) -> bytes:
    with wave.open(str(AUDIO / name)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        return wav.readframes(wav.getnframes())


def chunks(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level edit distance."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


class Recorder:
    """Collects a connection's events (on its dispatcher thread)."""

    def __init__(self, conn: AiolaConnection) -> None:
        self.events: List[Tuple[str, Any]] = []
        self.cond = threading.Condition()
        for name in sorted(conn.event_names):
            conn.on(name, self._handler(name))

    def _handler(self, name: str) -> Any:
        def record(ev: Any) -> None:
            with self.cond:
                self.events.append((name, ev))
                self.cond.notify_all()

        return record

    def of(self, name: str) -> List[Any]:
        with self.cond:
            return [ev for n, ev in self.events if n == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 20.0) -> List[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([1 for n, _ in self.events if n == name]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {count} {name!r}; got {self.events}"
                self.cond.wait(left)
        return self.of(name)


@pytest.fixture(scope="module")
def ps_engine() -> Any:
    return make_engine("pocketsphinx", vocabulary=VOCABULARY)


@pytest.fixture
def emu(ps_engine: Any) -> Iterator[AiolaEmulator]:
    with AiolaEmulator(engine=ps_engine, api_keys=["good-key"]) as emulator:
        yield emulator


@pytest.fixture
def scripted() -> Iterator[AiolaEmulator]:
    engine = make_engine(
        "scripted", every_bytes=16000, transcripts=["one", "two", "three"], partial_ms=0
    )
    with AiolaEmulator(engine=engine) as emulator:
        yield emulator


def client_for(emu: AiolaEmulator, **kwargs: Any) -> AiolaClient:
    kwargs.setdefault("api_key", "good-key")
    return AiolaClient(base_url=emu.base_url, **kwargs)


# ----------------------------------------------------------------- auth / REST
def test_grant_token_reads_like_the_vendor_result(emu: AiolaEmulator) -> None:
    result = AiolaClient.grant_token(api_key="good-key", auth_base_url=emu.base_url)
    assert result["accessToken"] == result.access_token
    assert result["sessionId"] == result.session_id and result.session_id
    claims = jwt_claims(result.access_token)
    assert claims["exp"] > claims["iat"]
    assert result.expires_at == claims["exp"]
    assert "***" in repr(result) and result.access_token not in repr(result)
    assert emu.active_sessions == 1
    answer = AiolaClient.close_session(result.access_token, auth_base_url=emu.base_url)
    assert answer["status"] == "deleted"
    assert emu.active_sessions == 0


def test_bad_api_key_raises_authentication_error(emu: AiolaEmulator) -> None:
    with pytest.raises(AuthenticationError) as info:
        AiolaClient.grant_token(api_key="wrong-key", auth_base_url=emu.base_url)
    assert info.value.status_code == 401
    assert getattr(info.value, "code", None) == "UNAUTHORIZED"
    assert "wrong-key" not in str(info.value)


def test_concurrency_limit_is_a_clear_error(emu: AiolaEmulator) -> None:
    emu.faults.max_sessions = 1
    first = AiolaClient.grant_token(api_key="good-key", auth_base_url=emu.base_url)
    with pytest.raises(ConcurrencyLimitError) as info:
        AiolaClient.grant_token(api_key="good-key", auth_base_url=emu.base_url)
    err = info.value
    assert err.code == "MAX_CONCURRENCY_REACHED" and err.status_code == 409
    assert "close" in str(err)
    assert err["error"]["code"] == "MAX_CONCURRENCY_REACHED"  # the raw body
    AiolaClient.close_session(first.access_token, auth_base_url=emu.base_url)
    AiolaClient.close_session(
        AiolaClient.grant_token(api_key="good-key", auth_base_url=emu.base_url).access_token,
        auth_base_url=emu.base_url,
    )


def test_client_renews_a_token_close_to_expiry(emu: AiolaEmulator) -> None:
    emu.token_ttl = 200  # below the 5-minute margin: every use needs a new one
    with client_for(emu) as client:
        first = client.get_access_token()
        second = client.get_access_token()
        assert first != second
        assert emu.active_sessions == 1  # the old session was closed on renewal
    assert emu.active_sessions == 0
    emu.token_ttl = 1800
    with client_for(emu) as client:
        assert client.get_access_token() == client.get_access_token()


def test_expired_access_token_without_api_key(emu: AiolaEmulator) -> None:
    token = emu.issue_access_token(ttl=60)
    client = AiolaClient(access_token=token, base_url=emu.base_url)
    with pytest.raises(AuthenticationError, match="expires"):
        client.stt.stream().connect(timeout=5)
    client.close()


def test_missing_credentials_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIOLA_API_KEY", raising=False)
    monkeypatch.delenv("AIOLA_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="api_key"):
        AiolaClient()


def test_5xx_is_retried_4xx_is_not(emu: AiolaEmulator) -> None:
    emu.faults.rest_failures = 2
    result = AiolaClient.grant_token(api_key="good-key", auth_base_url=emu.base_url)
    assert result.access_token
    assert emu.rest_requests == ["POST /voip-auth/apiKey2Token"] * 3 + ["POST /voip-auth/session"]
    emu.faults.rest_failures = 10
    with pytest.raises(ServerError) as info:
        AiolaClient.grant_token(api_key="good-key", auth_base_url=emu.base_url, max_retries=1)
    assert info.value.status_code == 503 and info.value.retryable
    assert info.value.code == "SERVICE_UNAVAILABLE"
    emu.faults.rest_failures = 0
    del emu.rest_requests[:]
    with pytest.raises(AuthenticationError):
        AiolaClient.grant_token(api_key="bad-key", auth_base_url=emu.base_url)
    assert emu.rest_requests == ["POST /voip-auth/apiKey2Token"]  # no retry


def test_network_errors_are_retried_then_raised() -> None:
    # nothing listens on this port: connection refused on every attempt
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(voxsync.errors.ConnectionError, match="cannot reach"):
        AiolaClient.grant_token(
            api_key="k", auth_base_url=f"http://127.0.0.1:{port}", max_retries=1
        )


def test_transcribe_file(emu: AiolaEmulator) -> None:
    with client_for(emu) as client:
        result = client.stt.transcribe_file(AUDIO / "meeting.wav", keywords={"nine thirty": "9:30"})
    assert result.transcript == "the meeting starts at 9:30"
    assert result["raw_transcript"] == TRANSCRIPTS["meeting.wav"]
    assert result.metadata["sample_rate"] == 16000
    assert len(result.segments) == 1


# ------------------------------------------------------------------ streaming
def stream_and_finish(conn: AiolaConnection, data: bytes) -> None:
    for chunk in chunks(data):
        conn.send(chunk)
    conn.finish(timeout=20)


def test_stream_transcribes_speech(emu: AiolaEmulator) -> None:
    sigint = signal.getsignal(signal.SIGINT)
    with client_for(emu) as client:
        conn = client.stt.stream(lang_code="en")
        rec = Recorder(conn)
        conn.connect(timeout=10)
        assert signal.getsignal(signal.SIGINT) is sigint  # no handler installed
        # the connection's own thread is engine.io's reader: packets are written
        # on the WebSocket by the threads that send them (no engine.io writer
        # thread), its handlers and its writing run on the shared pool (whose
        # workers take a lane's name while running it)
        workers = pool.threads()
        roles = {
            t.name.split("-", 3)[3]
            for t in threading.enumerate()
            if t.name.startswith(f"voxsync-{conn.name}-") and t not in workers
        }
        assert roles == {"reader"}
        assert workers and all(t.daemon for t in workers)
        assert conn.connected and conn.audio_format.sample_rate == 16000
        stream_and_finish(conn, pcm("two_utterances.wav"))
    texts = [ev.text for ev in rec.of("transcript")]
    assert len(texts) == 2
    # real recognition: allow one word of difference over the two utterances
    assert word_errors(TRANSCRIPTS["two_utterances.wav"], " ".join(texts)) <= 1, texts
    first = rec.of("transcript")[0]
    assert isinstance(first, Transcript) and first["transcript"] == first.text
    assert first.get("transcript", first) == first.text and first.language == "en"
    names = [n for n, _ in rec.events]
    assert names[0] == "connect" and names[-1] == "disconnect"
    params = emu.connections[-1]
    assert params["lang_code"] == "en" and params["flow_id"] and params["execution_id"]
    # as aiOla's SDKs do: long-polling first (then upgraded), the token both ways
    assert params["transport"] == "polling" and params["token_in"] == ["header", "query"]


@pytest.mark.parametrize("transports", [("websocket",), ("polling",)])
def test_the_transports_asked_for_carry_the_stream(
    scripted: AiolaEmulator, transports: Tuple[str, ...]
) -> None:
    with client_for(scripted) as client:
        conn = client.stt.stream(transports=transports, finish_silence=0)
        rec = Recorder(conn)
        with conn:
            for chunk in chunks(b"\x01\x00" * 16000):
                conn.send(chunk)
    assert [t.text for t in rec.of("transcript")] == ["one", "two"]
    (params,) = scripted.connections
    assert params["transport"] == transports[0] and params["token_in"] == ["header", "query"]


def test_keywords_change_the_transcript(emu: AiolaEmulator) -> None:
    with client_for(emu) as client:
        conn = client.stt.stream(keywords={"quick brown fox": "Firefox", "lazy dog": "Snoopy"})
        rec = Recorder(conn)
        with conn:
            for chunk in chunks(pcm("quick_brown_fox.wav")):
                conn.send(chunk)
    (text,) = [ev.text for ev in rec.of("transcript")]
    # recognition may slip on a word; the replacements are the point here
    assert text.startswith("the Firefox ") and text.endswith(" over the Snoopy")
    assert "fox" not in text.lower().replace("firefox", "")


def test_set_keywords_during_the_stream(scripted: AiolaEmulator) -> None:
    with client_for(scripted) as client:
        conn = client.stt.stream()
        rec = Recorder(conn)
        conn.connect()
        for chunk in chunks(bytes(16000)):
            conn.send(chunk)
        rec.wait_for("transcript", 1)
        conn.set_keywords({"two": "2", "three": "3"})
        for chunk in chunks(bytes(32000)):
            conn.send(chunk)
        rec.wait_for("transcript", 3)
        conn.close()
    assert [ev.text for ev in rec.of("transcript")][:3] == ["one", "2", "3"]
    assert scripted.keyword_updates == [{"two": "2", "three": "3"}]
    with pytest.raises(ConfigurationError, match="keywords"):
        conn.set_keywords(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_translation_task_yields_translation_events(scripted: AiolaEmulator) -> None:
    tasks = {"TRANSLATION": {"src_lang_code": "en", "dst_lang_code": "es"}}
    with client_for(scripted) as client:
        conn = client.stt.stream(lang_code="en", tasks_config=tasks)
        rec = Recorder(conn)
        conn.connect()
        for chunk in chunks(bytes(32000)):
            conn.send(chunk)
        rec.wait_for("translation", 2)
        conn.close()
    tr = rec.of("translation")[0]
    assert isinstance(tr, Translation)
    assert tr.text == "[es] one" and tr["translation"] == "[es] one"
    assert (tr.source_language, tr.target_language) == ("en", "es")
    names = [n for n, _ in rec.events if n in ("transcript", "translation")]
    assert names[:4] == ["transcript", "translation", "transcript", "translation"]
    # each translation carries the id of the transcript it translates
    pairs = [ev for n, ev in rec.events if n in ("transcript", "translation")][:4]
    assert [ev.id for ev in pairs] == ["0", "0", "1", "1"]


def test_bad_token_on_connect_raises_authentication_error(emu: AiolaEmulator) -> None:
    good = emu.issue_access_token()
    forged = good[: good.rindex(".") + 1] + "AAAA"
    conn = AiolaClient(access_token=forged, base_url=emu.base_url).stt.stream()
    with pytest.raises(AuthenticationError, match="refused"):
        conn.connect(timeout=10)
    assert conn.state == "idle"


def test_refused_auth_fault(emu: AiolaEmulator) -> None:
    token = emu.issue_access_token()
    emu.faults.refuse_auth = True
    with pytest.raises(AuthenticationError):
        AiolaClient(access_token=token, base_url=emu.base_url).stt.stream().connect(timeout=10)


@pytest.mark.parametrize("transports", [("polling", "websocket"), ("websocket",)])
def test_server_drop_mid_stream_reconnects_and_goes_on(transports: Tuple[str, ...]) -> None:
    engine = make_engine(
        "scripted", every_bytes=16000, transcripts=["a", "b", "c", "d", "e", "f"], partial_ms=0
    )
    faults = AiolaFaults(drop_after_chunks=8)
    with AiolaEmulator(engine=engine, faults=faults) as emu, client_for(emu, api_key="k") as client:
        conn = client.stt.stream(transports=transports, reconnection_delay=0.05)
        rec = Recorder(conn)
        conn.connect()
        conn.set_keywords({"f": "F"})
        for chunk in chunks(bytes(16000 * 6)):  # 3 s
            conn.send(chunk)
            time.sleep(0.01)
        rec.wait_for("reconnected", 1)
        rec.wait_for("transcript", 3)
        conn.finish(timeout=20)
        assert len(emu.connections) == 2
        assert emu.connections[1]["keywords"] == {"f": "F"}  # carried over
    assert [ev.attempt for ev in rec.of("reconnecting")] == [1]
    assert rec.of("reconnected")[0].attempts == 1
    # the audio sent after the drop reached the new connection and was transcribed
    assert len(rec.of("transcript")) >= 3
    assert conn.metrics.snapshot()["reconnects"] == 1
    assert not rec.of("error")


def test_audio_overflowing_the_queue_during_a_reconnection_is_reported(
    scripted: AiolaEmulator,
) -> None:
    scripted.faults.drop_after_chunks = 1
    with client_for(scripted) as client:
        conn = client.stt.stream(
            transports=("websocket",), reconnection_delay=0.5, queue_size=2, overflow="drop_oldest"
        )
        rec = Recorder(conn)
        conn.connect()
        conn.send(bytes(CHUNK))
        rec.wait_for("reconnecting")
        for _ in range(10):
            conn.send(bytes(CHUNK))
        rec.wait_for("reconnected")
        conn.close()
    warnings = rec.of("warning")
    assert warnings and all(w.code == "audio_dropped" for w in warnings)
    assert conn.metrics.snapshot()["chunks_dropped"] == warnings[-1].count >= 7


def test_keepalive_keeps_an_idle_stream_open(scripted: AiolaEmulator) -> None:
    scripted.faults.idle_timeout = 0.6
    with client_for(scripted) as client:
        conn = client.stt.stream(keepalive_interval=0.2)
        conn.connect()
        assert not conn.wait(timeout=1.5)  # still open after 2.5 idle timeouts
        assert conn.connected
        conn.close()


def test_reconnection_gives_up_with_disconnected_error() -> None:
    engine = make_engine("scripted", every_bytes=16000, partial_ms=0)
    emu = AiolaEmulator(engine=engine, faults=AiolaFaults(drop_after_chunks=2)).start()
    try:
        client = client_for(emu, api_key="k")
        conn = client.stt.stream(
            reconnection_attempts=2, reconnection_delay=0.05, transports=("websocket",)
        )
        rec = Recorder(conn)
        conn.connect()
        emu.faults.unavailable = True  # every reconnection attempt is refused
        for chunk in chunks(bytes(CHUNK * 3)):
            conn.send(chunk)
        with pytest.raises(DisconnectedError, match="2 reconnection") as info:
            conn.wait(timeout=30)
        assert isinstance(info.value.__cause__, ServerError)
        assert info.value.__cause__.code == "SERVICE_UNAVAILABLE"
        assert [ev.attempt for ev in rec.of("reconnecting")] == [1, 2]
        assert isinstance(rec.of("error")[-1], DisconnectedError)
        with pytest.raises(DisconnectedError):
            conn.send(bytes(CHUNK))
    finally:
        emu.stop()


def test_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = make_engine("scripted", every_bytes=16000, partial_ms=0)
    emu = AiolaEmulator(engine=engine, faults=AiolaFaults(drop_after_chunks=1)).start()
    try:
        client = client_for(emu, api_key="secret-api-key")
        token = client.get_access_token()
        conn = client.stt.stream(
            reconnection_attempts=1, reconnection_delay=0.05, transports=("polling",)
        )
        conn.connect()
        emu.faults.unavailable = True
        conn.send(bytes(CHUNK))
        with pytest.raises(DisconnectedError) as info:
            conn.wait(timeout=30)
        client.close()
    finally:
        emu.stop()
    ours = [r for r in caplog.records if r.name.startswith("voxsync")]
    assert ours
    # (urllib3's own DEBUG log shows request URLs as they are: not voxsync's)
    logged = "\n".join(r.getMessage() for r in ours)
    texts = [logged, str(info.value), repr(conn), repr(client)]
    for text in texts:
        assert token not in text and token.split(".")[1] not in text
        assert "secret-api-key" not in text


def test_no_reconnection_when_disabled(scripted: AiolaEmulator) -> None:
    scripted.faults.drop_after_chunks = 2
    with client_for(scripted) as client:
        conn = client.stt.stream(reconnection_attempts=0, transports=("websocket",))
        rec = Recorder(conn)
        conn.connect()
        for chunk in chunks(bytes(CHUNK * 3)):
            conn.send(chunk)
        with pytest.raises(DisconnectedError):
            conn.wait(timeout=20)
    assert not rec.of("reconnecting")


@pytest.mark.parametrize("transports", [("polling",), ("websocket",)])
def test_emulator_shutdown_ends_the_stream(transports: Tuple[str, ...]) -> None:
    emu = AiolaEmulator(engine=make_engine("scripted")).start()
    try:
        with client_for(emu, api_key="k") as client:
            conn = client.stt.stream(transports=transports)
            rec = Recorder(conn)
            conn.connect()
            conn.send(bytes(CHUNK))
            emu.stop()
            with pytest.raises(DisconnectedError, match="closed the stream"):
                conn.wait(timeout=20)
    finally:
        emu.stop()
    assert not rec.of("reconnecting")
    assert rec.of("disconnect")[0].reason == "server disconnect"


def test_idle_timeout_closes_the_stream(scripted: AiolaEmulator) -> None:
    scripted.faults.idle_timeout = 0.3
    with client_for(scripted) as client:
        conn = client.stt.stream()
        rec = Recorder(conn)
        conn.connect()
        with pytest.raises(DisconnectedError, match="closed the stream"):
            conn.wait(timeout=20)
    assert not rec.of("reconnecting")
    assert rec.of("disconnect")[0].reason == "server disconnect"


def test_server_error_events_and_malformed_events(scripted: AiolaEmulator) -> None:
    scripted.faults.malformed_event = True
    with client_for(scripted) as client:
        conn = client.stt.stream()
        rec = Recorder(conn)
        conn.connect()
        # bypass send()'s own validation to reach the server's
        conn._emit_audio(b"\x00\x01\x02")
        errors = rec.wait_for("error", 2)
        conn.close()
    malformed = [e for e in errors if isinstance(e, RemoteProtocolError)]
    server = [e for e in errors if type(e) is ServerError]
    assert malformed and "transcript" in str(malformed[0])
    assert (
        server and server[0]["message"] == "Invalid audio" and "3 bytes" in server[0].get("details")
    )
    assert conn.state == "closed"


def test_schema_values_are_acknowledged(scripted: AiolaEmulator) -> None:
    with client_for(scripted) as client:
        conn = client.stt.stream()
        rec = Recorder(conn)
        with conn:
            assert conn.set_schema_values({"patient.name": ["John"]}) == {"status": "ok"}
        assert rec.of("schema_values_updated")[0]["status"] == "ok"


def test_schema_values_are_checked_and_a_bare_acknowledgement_is_wrapped(
    scripted: AiolaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(scripted) as client:
        conn = client.stt.stream()
        with pytest.raises(LocalProtocolError, match="needs an open connection"):
            conn.set_schema_values({"patient.name": ["John"]})
        with conn:
            with pytest.raises(ConfigurationError) as info:
                conn.set_schema_values({"patient.name": "John"})  # type: ignore[dict-item]
            assert str(info.value) == (
                "schema values must map field paths (str) to lists of values"
            )
            # a service that acknowledges with a bare value (the transport seam)
            sio = conn._sio
            assert sio is not None
            monkeypatch.setattr(sio, "call", lambda *args, **kwargs: "applied")
            answer = conn.set_schema_values({"patient.name": ["John"]})
        assert answer == {"status": "ok", "data": "applied"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reconnection_attempts": -1}, "reconnection_attempts must be an int >= 0"),
        ({"reconnection_attempts": 1.5}, "reconnection_attempts must be an int >= 0"),
        (
            {"transports": ()},
            "transports must be a non-empty sequence of 'polling' and 'websocket'",
        ),
        (
            {"transports": ("websocket", "pigeon")},
            "transports must be a non-empty sequence of 'polling' and 'websocket'",
        ),
    ],
)
def test_bad_stream_options_say_what_is_expected(
    scripted: AiolaEmulator, options: Dict[str, Any], message: str
) -> None:
    with client_for(scripted) as client:
        with pytest.raises(ConfigurationError) as info:
            client.stt.stream(**options)
        assert str(info.value) == message
        conn = client.stt.stream()
        assert conn.reconnection_delay == 1.0  # the documented default
        conn.close()


def test_no_signal_handler_in_a_fresh_interpreter() -> None:
    # python-socketio installs its SIGINT handler once per process, for the
    # first client that asks for it: only a fresh interpreter shows whether
    # voxsync's clients ever ask
    code = textwrap.dedent(
        """
        import signal
        from voxsync.aiola import AiolaClient
        from voxsync.emulators.aiola import AiolaEmulator
        from voxsync.emulators.engine import make_engine

        before = signal.getsignal(signal.SIGINT)
        with AiolaEmulator(engine=make_engine("scripted", transcripts=["x"])) as emu:
            with AiolaClient(api_key="k", base_url=emu.base_url) as client:
                with client.stt.stream():
                    print(signal.getsignal(signal.SIGINT) is before)
        """
    )
    # the child imports the voxsync this process imported, wherever it is
    here = str(Path(voxsync.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *filter(None, sys.path)])}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True"]


def test_vad_config_reaches_the_service(scripted: AiolaEmulator) -> None:
    with client_for(scripted) as client, client.stt.stream(vad_config={"threshold": 0.6}):
        pass
    assert scripted.connections[-1]["vad_config"] == {"threshold": 0.6}


def test_event_delay_fault_keeps_order(scripted: AiolaEmulator) -> None:
    scripted.faults.event_delay = 0.2
    with client_for(scripted) as client:
        conn = client.stt.stream(finish_quiet=0.5)
        rec = Recorder(conn)
        with conn:
            for chunk in chunks(bytes(48000)):
                conn.send(chunk)
            rec.wait_for("transcript", 3)
    assert [ev.text for ev in rec.of("transcript")][:3] == ["one", "two", "three"]


def test_handler_may_take_no_argument_and_close_from_a_handler(scripted: AiolaEmulator) -> None:
    with client_for(scripted) as client:
        conn = client.stt.stream()
        seen: List[str] = []

        @conn.on(LiveEvents.Connect)
        def on_connect() -> None:
            seen.append("connect")

        @conn.on(LiveEvents.Transcript)
        def on_transcript(data: Any) -> None:
            seen.append(data.get("transcript", data))
            conn.disconnect()

        conn.connect()
        for chunk in chunks(bytes(16000)):
            conn.send(chunk)
        assert conn.wait(timeout=20)
    assert seen == ["connect", "one"]


def test_unknown_event_name_is_rejected(scripted: AiolaEmulator) -> None:
    conn = client_for(scripted).stt.stream()
    with pytest.raises(ConfigurationError, match="transcripts"):
        conn.on("transcripts", print)


def test_registry_create_connection(
    scripted: AiolaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOLA_API_KEY", "from-env")
    conn = voxsync.providers.connection("aiola", base_url=scripted.base_url, lang_code="de")
    assert isinstance(conn, AiolaConnection)
    rec = Recorder(conn)
    with conn:
        for chunk in chunks(bytes(16000)):
            conn.send(chunk)
    # one block of audio, then finish()'s trailing silence (two more blocks)
    assert [ev.text for ev in rec.of("transcript")] == ["one", "two", "three"]
    assert scripted.connections[-1]["lang_code"] == "de"
    assert scripted.active_sessions == 0  # the session it opened was closed with it


def test_cli_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIOLA_API_KEY", raising=False)
    monkeypatch.delenv("AIOLA_ACCESS_TOKEN", raising=False)
    parser = argparse.ArgumentParser()
    aiola_cli.add_cli_arguments(parser.add_argument_group("aiOla"))
    kw = tmp_path / "kw.json"
    kw.write_text('{"k eight s": "Kubernetes"}')
    args = parser.parse_args(
        ["--api-key", "K", "--base-url", "http://h:1", "--lang", "en", "--keywords", str(kw)]
    )
    options = aiola_cli.options_from_args(args)
    assert options == {
        "api_key": "K",
        "base_url": "http://h:1",
        "lang_code": "en",
        "keywords": {"k eight s": "Kubernetes"},
    }
    monkeypatch.setenv("AIOLA_API_KEY", "env-key")
    # an explicit token wins over the environment's API key
    args = parser.parse_args(["--access-token", "T"])
    assert aiola_cli.options_from_args(args) == {"access_token": "T"}
    # without options the client itself reads the environment
    args = parser.parse_args(["--keywords", '{"a": "b"}'])
    assert aiola_cli.options_from_args(args) == {"keywords": {"a": "b"}}
    create_connection(**aiola_cli.options_from_args(args))  # credentials from the environment
    monkeypatch.delenv("AIOLA_API_KEY")
    with pytest.raises(ConfigurationError, match="AIOLA_API_KEY"):
        create_connection(**aiola_cli.options_from_args(args))
    with pytest.raises(ConfigurationError, match="keywords"):
        aiola_cli.options_from_args(parser.parse_args(["--keywords", "[1, 2]"]))
    create_connection(**options)  # builds without connecting


# ------------------------------------------------------------------ codec
@pytest.mark.parametrize(
    ("name", "data", "kind", "text"),
    [
        ("transcript", {"transcript": "hi"}, Transcript, "hi"),
        ("transcript", {"transcript": "hi", "itn_transcript": "Hi"}, Transcript, "hi"),
        (
            "transcript",
            "not an object",
            RemoteProtocolError,
            "aiOla sent a transcript event without a text 'transcript' field: 'not an object'",
        ),
        (
            "transcript",
            {"text": "hi"},
            RemoteProtocolError,
            "aiOla sent a transcript event without a text 'transcript' field: {'text': 'hi'}",
        ),
        ("translation", {"translation": "hola"}, Translation, "hola"),
        (
            "translation",
            {},
            RemoteProtocolError,
            "aiOla sent a translation event without a text 'translation' field: {}",
        ),
        (
            "error",
            {"message": "Invalid audio", "details": "odd"},
            ServerError,
            "Invalid audio: odd",
        ),
        ("error", "boom", ServerError, "boom"),
        ("error", {}, ServerError, "aiOla reported an error"),
        ("structured", {"results": {"a": 1}}, voxsync.aiola.Structured, None),
        ("events", {"results": {}}, Message, None),
        ("something_new", [1, 2], Message, None),
    ],
)
def test_decode_event(name: str, data: Any, kind: type, text: Any) -> None:
    ev = decode_event(name, data, language="en", translation={"dst_lang_code": "es"}, index=4)
    assert type(ev) is kind
    raw = data if isinstance(data, dict) else {"data": data}
    if text is not None:
        assert str(ev) == text
    if isinstance(ev, Message):
        assert ev.type == name and ev.raw == raw
    if isinstance(ev, ServerError):
        assert ev.raw == raw
    if isinstance(ev, Transcript):
        assert (ev.id, ev.language, ev.is_final, ev.raw) == ("4", "en", True, raw)
    if isinstance(ev, Translation):
        assert (ev.id, ev.source_language, ev.target_language) == ("4", "en", "es")
    if isinstance(ev, voxsync.aiola.Structured):
        assert ev.results == {"a": 1}


def test_decode_event_redacts_tokens() -> None:
    ev = decode_event("transcript", "token eyJhbGciOiJI.eyJzdWIiOiIx.c2lnbmF0dXJl")
    assert "eyJhbGciOiJI" not in str(ev)


def test_auth_host_follows_the_api_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pointing only the API host somewhere never sends the key to the public auth host."""
    monkeypatch.delenv("AIOLA_AUTH_BASE_URL", raising=False)
    monkeypatch.setenv("AIOLA_BASE_URL", "http://127.0.0.1:9")
    assert AiolaClient(api_key="k").auth_base_url == "http://127.0.0.1:9"
    assert AiolaClient(api_key="k", base_url="http://h:2").auth_base_url == "http://h:2"
    monkeypatch.setenv("AIOLA_AUTH_BASE_URL", "http://auth:3")
    assert AiolaClient(api_key="k").auth_base_url == "http://auth:3"
    client = AiolaClient(api_key="k", auth_base_url="http://explicit:4")
    assert client.auth_base_url == "http://explicit:4"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def access_token_for_tests() -> str:
    """A syntactically valid JWT that expires in an hour (any signature)."""
    import base64
    import json as _json
    import time as _time

    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(_json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"exp": int(_time.time()) + 3600, "iat": int(_time.time()), "sessionId": "s-secret"}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLXNlY3JldA"


def test_a_failed_connect_keeps_the_token_out_of_the_traceback() -> None:
    """python-socketio's exceptions hold the request URL; voxsync must not chain them."""
    import traceback

    token = access_token_for_tests()
    base = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    client = AiolaClient(access_token=token, base_url=base, auth_base_url=base)
    conn = client.stt.stream(lang_code="en", execution_id="run-4031", reconnection_attempts=0)
    with pytest.raises(VoxsyncError) as info:
        conn.connect(timeout=3)
    # a refused TCP connection, not credentials: "4031" in the URL must not look like HTTP 403
    assert not isinstance(info.value, AuthenticationError), info.value
    text = "".join(traceback.format_exception(info.type, info.value, info.tb))
    assert token not in text
    assert token.split(".")[1] not in text


def test_unpaced_audio_over_polling_stays_within_the_send_queue(scripted: AiolaEmulator) -> None:
    """engine.io queues without a bound; voxsync keeps back-pressure in its own queue."""
    errors: List[Any] = []
    texts: List[str] = []
    with client_for(scripted) as client:
        conn = client.stt.stream(transports=("polling",), queue_size=4, send_timeout=30)
        conn.on("error", errors.append)
        conn.on("transcript", lambda ev: texts.append(ev.text))
        conn.connect(timeout=10)
        peak = 0
        for _ in range(48):  # 3 s of audio, as fast as send() returns
            conn.send(bytes(2000))
            peak = max(peak, conn._sio.eio.queue.qsize())
        conn.finish(timeout=30)
    assert errors == []
    assert texts[:3] == ["one", "two", "three"]
    # one binary emit is two engine.io packets: the event and its attachment
    from voxsync.aiola import stream

    assert peak <= stream._EIO_BACKLOG + 2


def test_a_huge_send_goes_out_in_chunks_of_the_service_size(scripted: AiolaEmulator) -> None:
    from voxsync.aiola.protocol import CHUNK_BYTES

    texts: List[str] = []
    with client_for(scripted) as client:
        conn = client.stt.stream(finish_silence=0)
        conn.on("transcript", lambda ev: texts.append(ev.text))
        conn.connect(timeout=10)
        conn.send(bytes(16000 * 2 * 3))  # 3 s in one call
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stats = scripted.stream_stats()
            if stats and stats[0]["audio_bytes"] >= 96000 and len(texts) >= 3:
                break
            time.sleep(0.05)
        stats = scripted.stream_stats()[0]
        conn.close()
    assert stats["audio_bytes"] == 96000
    assert stats["chunks"] == -(-96000 // CHUNK_BYTES)  # every piece at most CHUNK_BYTES
    assert texts[:3] == ["one", "two", "three"]


def test_reconnections_are_bounded_per_time_window() -> None:
    engine = make_engine("scripted", every_bytes=16000, partial_ms=0)
    # every connection is cut after 2 chunks: without a bound this reconnects forever
    faults = AiolaFaults(drop_after_chunks=2, drop_times=1000)
    with AiolaEmulator(engine=engine, faults=faults) as emu, client_for(emu, api_key="k") as client:
        conn = client.stt.stream(
            transports=("websocket",),
            reconnection_delay=0.05,
            max_reconnections=2,
            reconnection_window=60,
            overflow="drop_oldest",
        )
        rec = Recorder(conn)
        conn.connect()
        deadline = time.monotonic() + 30
        while conn.connected and time.monotonic() < deadline:
            with contextlib.suppress(DisconnectedError):
                conn.send(bytes(CHUNK))
            time.sleep(0.02)
        with pytest.raises(DisconnectedError, match="2 reconnection") as info:
            conn.wait(timeout=10)
    assert "within 60 s" in str(info.value)
    # the cause is the transport's loss, as the first reconnecting event said
    cause = info.value.__cause__
    assert isinstance(cause, ConnectionError) and "aiOla transport lost" in str(cause)
    assert "aiOla transport lost" in str(rec.of("reconnecting")[0].error)
    assert len(rec.of("reconnected")) == 2
    assert conn.metrics.snapshot()["reconnects"] == 2


def test_a_malformed_socketio_packet_is_a_remote_protocol_error(scripted: AiolaEmulator) -> None:
    scripted.faults.malformed_packet = True
    with client_for(scripted) as client:
        conn = client.stt.stream()
        rec = Recorder(conn)
        conn.connect(timeout=10)
        rec.wait_for("error")
        for chunk in chunks(bytes(16000)):  # the stream goes on
            conn.send(chunk)
        conn.finish(timeout=20)
    errors = rec.of("error")
    assert len(errors) == 1 and isinstance(errors[0], RemoteProtocolError)
    assert "cannot be decoded" in str(errors[0]) and "cut" in str(errors[0])
    assert [ev.text for ev in rec.of("transcript")][:1] == ["one"]


class FreezingProxy:
    """A TCP relay to the emulator that can stop forwarding (a server that stops answering)."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.stopped = threading.Event()
        self.sockets: List[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                thread.start()
                self.threads.append(thread)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        while not self.stopped.is_set():
            try:
                data = a.recv(65536)
            except OSError:
                return
            while self.frozen.is_set() and not self.stopped.is_set():
                time.sleep(0.05)  # hold everything: no answer, no close
            if not data:
                with contextlib.suppress(OSError):
                    b.shutdown(socket.SHUT_WR)
                return
            try:
                b.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self.threads:
            thread.join(5)


@pytest.mark.parametrize("transports", [("websocket",), ("polling",)], ids=["websocket", "polling"])
def test_close_and_finish_are_bounded_when_the_server_stops_answering(
    transports: Tuple[str, ...],
) -> None:
    engine = make_engine("scripted", every_bytes=16000, partial_ms=0)
    with AiolaEmulator(engine=engine) as emu:
        proxy = FreezingProxy(emu.port)
        try:
            client = AiolaClient(api_key="k", base_url=f"http://127.0.0.1:{proxy.port}")
            conn = client.stt.stream(transports=transports)
            conn.connect(timeout=10)
            for chunk in chunks(bytes(16000)):
                conn.send(chunk)
            time.sleep(0.3)
            proxy.frozen.set()
            conn.send(bytes(CHUNK))
            started = time.monotonic()
            conn.close()
            assert time.monotonic() - started < 2.5
            # finish() on a second stream: its own timeout, then the same bounded close
            proxy.frozen.clear()
            conn = client.stt.stream(transports=transports, finish_silence=0.2)
            conn.connect(timeout=10)
            conn.send(bytes(CHUNK))
            proxy.frozen.set()
            started = time.monotonic()
            with pytest.raises(voxsync.errors.TimeoutError):
                conn.finish(timeout=1.0)
            assert time.monotonic() - started < 1.0 + 2.5
        finally:
            proxy.close()


def _loud(seconds: float) -> bytes:
    import numpy as np

    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()


def test_finish_waits_for_the_transcript_of_speech_sent() -> None:
    engine = make_engine("scripted", every_bytes=32000, transcripts=["late"], partial_ms=0)
    # the server acknowledges the audio at once but its transcript comes 1.5 s later
    emu = AiolaEmulator(engine=engine, faults=AiolaFaults(event_delay=1.5))
    with emu, client_for(emu, api_key="k") as client:
        conn = client.stt.stream(finish_silence=0.1)
        rec = Recorder(conn)
        conn.connect(timeout=10)
        for chunk in chunks(_loud(1.0)):
            conn.send(chunk)
        conn.finish(timeout=10)
    assert [ev.text for ev in rec.of("transcript")] == ["late"]


def test_finish_gives_up_with_timeout_error_when_speech_is_never_transcribed() -> None:
    engine = make_engine("scripted", every_bytes=10**9, partial_ms=0)  # never transcribes
    with AiolaEmulator(engine=engine) as emu, client_for(emu, api_key="k") as client:
        conn = client.stt.stream(finish_silence=0.1)
        conn.connect(timeout=10)
        for chunk in chunks(_loud(0.5)):
            conn.send(chunk)
        started = time.monotonic()
        with pytest.raises(voxsync.errors.TimeoutError, match="finish"):
            conn.finish(timeout=1.5)
        assert 1.4 <= time.monotonic() - started < 1.5 + 2.5


def test_finish_keeps_every_utterance_when_results_come_late(ps_engine: Any) -> None:
    # a real recognizer's latency: each transcript comes 2 s after its utterance
    # ended, so the first one arrives while the second utterance is being sent
    faults = AiolaFaults(result_delay=2.0)
    with AiolaEmulator(engine=ps_engine, faults=faults) as emu, client_for(emu, api_key="k") as c:
        conn = c.stt.stream(lang_code="en")
        rec = Recorder(conn)
        conn.connect(timeout=10)
        for chunk in chunks(pcm("two_utterances.wav")):
            conn.send(chunk)
            time.sleep(0.05)  # twice real time
        conn.finish(timeout=20)
    texts = [ev.text for ev in rec.of("transcript")]
    assert len(texts) == 2, texts
    assert word_errors(TRANSCRIPTS["two_utterances.wav"], " ".join(texts)) <= 1, texts


def test_finish_returns_as_soon_as_nothing_is_pending(emu: AiolaEmulator) -> None:
    with client_for(emu) as client:
        conn = client.stt.stream(lang_code="en", finish_quiet=1.0)
        rec = Recorder(conn)
        conn.connect(timeout=10)
        for chunk in chunks(pcm("yes.wav") + bytes(16000)):
            conn.send(chunk)
        rec.wait_for("transcript")
        time.sleep(1.1)  # the last event is older than finish_quiet
        started = time.monotonic()
        conn.finish(timeout=10)
        # only the trailing silence's acknowledgement is waited for, no quiet period
        assert time.monotonic() - started < 0.9
    assert [ev.text for ev in rec.of("transcript")] == ["yes"]


def test_result_delay_option_of_the_emulator_cli() -> None:
    parser = argparse.ArgumentParser()
    from voxsync.emulators import aiola as aiola_emulator

    aiola_emulator.add_cli_arguments(parser)
    args = parser.parse_args(["--engine", "scripted", "--result-delay", "1.5"])
    assert aiola_emulator.emulator_from_args(args).faults.result_delay == 1.5


def test_disconnect_waits_a_bounded_while_and_close_does_not() -> None:
    engine = make_engine("scripted", every_bytes=10**9, partial_ms=0)  # never transcribes
    with AiolaEmulator(engine=engine) as emu, client_for(emu, api_key="k") as client:
        idle = client.stt.stream()
        assert idle.disconnect() is True and idle.state == "idle"  # nothing was open: close()
        with pytest.raises(ConfigurationError, match="disconnect_timeout"):
            client.stt.stream(disconnect_timeout=0)
        conn = client.stt.stream(finish_silence=0.1, disconnect_timeout=1.0)
        assert conn.disconnect_timeout == 1.0
        errors: List[Any] = []
        conn.on("error", errors.append)
        conn.connect(timeout=10)
        for chunk in chunks(_loud(0.5)):
            conn.send(chunk)
        started = time.monotonic()
        assert conn.disconnect() is False  # gave up on the transcript, without raising
        assert 0.9 <= time.monotonic() - started < 1.0 + 2.5
        assert conn.state == "closed" and conn.wait(timeout=1)
        assert conn.disconnect() is True  # idempotent
        second = client.stt.stream(finish_silence=0.1)
        second.connect(timeout=10)
        for chunk in chunks(_loud(0.5)):
            second.send(chunk)
        started = time.monotonic()
        second.close()  # immediate: no wait for the pending transcript
        assert time.monotonic() - started < 0.9
    assert errors == []


@pytest.mark.parametrize(
    ("transports", "pause"),
    [
        (("polling", "websocket"), 0.0),
        (("websocket",), 0.0),
        # paced: the writer takes each chunk as it comes
        (("websocket",), 0.005),
    ],
)
def test_audio_in_flight_at_a_transport_reset_is_reported_dropped(
    transports: Tuple[str, ...], pause: float
) -> None:
    engine = make_engine("scripted", every_bytes=10**9, partial_ms=0)
    faults = AiolaFaults(drop_after_chunks=12)
    with AiolaEmulator(engine=engine, faults=faults) as emu, client_for(emu, api_key="k") as c:
        conn = c.stt.stream(transports=transports, reconnection_delay=0.05, finish_silence=0)
        rec = Recorder(conn)
        conn.connect(timeout=10)
        given = 0
        for i in range(80):  # packets are in flight when the transport is cut
            chunk = bytes([i % 7, 0]) * (CHUNK // 2)  # quiet: no utterance to wait for
            conn.send(chunk)
            given += len(chunk)
            time.sleep(pause)
        rec.wait_for("reconnected")
        conn.finish(timeout=20)
        received = emu.audio_bytes_received
    stats = conn.metrics.snapshot()
    warnings = rec.of("warning")
    assert warnings and all(w.code == "audio_dropped" for w in warnings), rec.events
    reported = sum(w.raw["bytes"] for w in warnings)
    # nothing is both uncounted and lost: what the service got is what counts as
    # sent, and the rest was reported
    assert stats["bytes_sent"] == received
    assert reported == stats["bytes_dropped"] > 0
    assert stats["bytes_sent"] + stats["bytes_dropped"] == given
    assert "transport broke" in warnings[0].message and warnings[-1].count == len(warnings)
    assert len(emu.connections) == 2 and conn.metrics.reconnects == 1


@pytest.mark.parametrize(
    ("seam", "answer"),
    [
        # A transport change wakes a send waiting for room in engine.io's
        # queue (wait_for_room() returns False): the send looks again.
        ("wait_for_room", False),
        # The writer finds the transport it holds already reported lost (the
        # in-flight record refuses it: -1) before the reconnection replaced
        # it: it waits and sends the chunk on the next one.
        ("add", -1),
    ],
)
def test_a_send_a_transport_change_interrupts_still_goes_out(
    scripted: AiolaEmulator, monkeypatch: pytest.MonkeyPatch, seam: str, answer: Any
) -> None:
    # the transport seam: the disturbance is made to happen once
    with client_for(scripted) as c:
        conn = c.stt.stream(finish_silence=0)
        rec = Recorder(conn)
        conn.connect(timeout=10)
        assert conn._sio is not None
        target = conn._sio.eio.queue if seam == "wait_for_room" else conn._in_flight
        real = getattr(target, seam)
        disturbed: List[Any] = []

        def once(*args: Any, **kwargs: Any) -> Any:
            if not disturbed:
                disturbed.append(args)
                return answer
            return real(*args, **kwargs)

        monkeypatch.setattr(target, seam, once)
        for i in range(5):  # unpaced: the writer sends them
            conn.send(bytes([i]) * CHUNK)
        conn.finish(timeout=20)
        received = scripted.audio_bytes_received
    assert len(disturbed) == 1
    assert received == 5 * CHUNK == conn.metrics.snapshot()["bytes_sent"]
    assert [t.text for t in rec.of("transcript")] == ["one"]  # the 16000 bytes, all there
    assert rec.of("warning") == []


def test_a_send_the_vanished_transport_refused_is_sent_again_and_not_counted_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The transport goes away while a chunk is handed to it (python-socketio
    # raises BadNamespaceError): the chunk is sent again, once, and no longer
    # counted in flight on the connection that refused it. A later reset of
    # the transport then reports as lost only what was really in flight.
    engine = make_engine("scripted", every_bytes=10**9, partial_ms=0)
    faults = AiolaFaults(drop_after_chunks=12)
    with AiolaEmulator(engine=engine, faults=faults) as emu, client_for(emu, api_key="k") as c:
        conn = c.stt.stream(reconnection_delay=0.05, finish_silence=0)
        rec = Recorder(conn)
        conn.connect(timeout=10)
        sio = conn._sio
        assert sio is not None
        real = sio.emit
        refused: List[int] = []

        def emit(event: str, data: Any = None, *args: Any, **kwargs: Any) -> Any:
            if event == "binary_data" and not refused:
                refused.append(len(data))
                raise socketio.exceptions.BadNamespaceError("/events is not a connected namespace.")
            return real(event, data, *args, **kwargs)

        monkeypatch.setattr(sio, "emit", emit)
        given = 0
        for i in range(40):
            chunk = bytes([i % 7]) * CHUNK
            conn.send(chunk)
            given += len(chunk)
        rec.wait_for("reconnected")
        conn.finish(timeout=20)
        received = emu.audio_bytes_received
    stats = conn.metrics.snapshot()
    assert refused == [CHUNK]
    assert stats["bytes_sent"] == received
    assert stats["bytes_sent"] + stats["bytes_dropped"] == given
    reported = sum(w.raw["bytes"] for w in rec.of("warning"))
    assert reported == stats["bytes_dropped"]
