"""Recognition (H2B) bot connection against the local Uh!ive emulator."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
import time
import wave
from pathlib import Path
from typing import Any, Callable, Iterator, List

import numpy as np
import pytest

from voxsync.audio.convert import convert
from voxsync.audio.format import AudioFormat
from voxsync.audio.g711 import alaw_encode, ulaw_encode
from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.errors import (
    AuthenticationError,
    ConfigurationError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
    TimeoutError,
)
from voxsync.events import Message, Transcript
from voxsync.uhlive.bot import BotConnection, create_bot
from voxsync.uhlive.recognition import (
    InvalidParamValueError,
    MethodFailedError,
    RecognitionComplete,
    RecognizerState,
    StartOfInput,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "audio"
LINEAR_8K = AudioFormat(8000, 1, "pcm_s16le")


def wav_8k(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    return convert(pcm, AudioFormat(rate, 1, "pcm_s16le"), LINEAR_8K)


def tone(seconds: float = 0.6, amplitude: int = 8000) -> bytes:
    t = np.arange(int(8000 * seconds))
    return (amplitude * np.sin(2 * math.pi * 440 * t / 8000)).astype("<i2").tobytes()


def speak_when_listening(bot: BotConnection, audio: bytes) -> None:
    """Send ``audio`` once the server has accepted the next RECOGNIZE."""
    sent = threading.Event()

    def on_message(msg: Message) -> None:
        if msg.type == "RECOGNITION-IN-PROGRESS" and not sent.is_set():
            sent.set()
            bot.send(audio)

    bot.on("message", on_message)


@pytest.fixture(scope="module")
def sphinx_emu() -> Iterator[UhliveEmulator]:
    with UhliveEmulator() as emu:
        yield emu


@pytest.fixture
def scripted_emu() -> Iterator[UhliveEmulator]:
    with UhliveEmulator(engine="scripted", transcripts=["four nine two one"]) as emu:
        yield emu


def connect(emu: UhliveEmulator, **options: Any) -> BotConnection:
    bot = BotConnection(token=emu.issue_token(), api_url=emu.ws_url, **options)
    bot.connect(timeout=10)
    return bot


# ------------------------------------------------------------------ real recognition


@pytest.mark.parametrize(("sample", "expected"), [("yes.wav", True), ("no.wav", False)])
def test_yes_no_on_8khz_speech(sphinx_emu: UhliveEmulator, sample: str, expected: bool) -> None:
    bot = connect(sphinx_emu)
    seen: List[Any] = []
    bot.on("start_of_input", seen.append)
    bot.on("transcript", seen.append)
    bot.on("recognition_complete", seen.append)
    try:
        speak_when_listening(bot, wav_8k(SAMPLES / sample))
        result = bot.recognize("builtin:speech/boolean", timeout=20, no_input_timeout=8000)
    finally:
        bot.close()
    assert isinstance(result, RecognitionComplete)
    assert result.completion_cause == "Success", result
    assert result.value is expected
    assert result.nlu is not None and result.nlu.type == "builtin:speech/boolean"
    assert result.asr is not None and sample[:-4] in result.asr.transcript.split()
    assert result.grammar_uri == "builtin:speech/boolean"
    kinds = [type(e) for e in seen]
    assert kinds == [StartOfInput, Transcript, RecognitionComplete]
    assert seen[1].text == result.asr.transcript and seen[1].is_final


def test_digits_on_8khz_speech(sphinx_emu: UhliveEmulator, tmp_path: Path) -> None:
    flite = shutil.which("flite")
    if flite is None:
        pytest.skip("flite is not installed (apt-get install flite)")
    wav = tmp_path / "digits.wav"
    subprocess.run([flite, "-voice", "slt", "-t", "four nine two one", "-o", str(wav)], check=True)
    bot = connect(sphinx_emu)
    try:
        bot.define_grammar("pin", "builtin:speech/spelling/digits?length=4")
        speak_when_listening(bot, wav_8k(wav))
        result = bot.recognize("session:pin", timeout=20, no_input_timeout=8000)
    finally:
        bot.close()
    assert result is not None and result.completion_cause == "Success", result
    assert result.value == "4921"
    assert result.grammar_uri == "session:pin"


# ------------------------------------------------------------------ protocol paths


def test_digits_grammar_and_query_constraints(scripted_emu: UhliveEmulator) -> None:
    bot = connect(scripted_emu)
    try:
        speak_when_listening(bot, tone())
        result = bot.recognize("builtin:speech/spelling/phone_number", timeout=10)
        assert result is not None and result.value == "4921" and result.success
        bot.define_grammar("three", "speech/spelling/digits?length=3")
        bot.off("message")
        speak_when_listening(bot, tone())
        result = bot.recognize("session:three", timeout=10)
        assert result is not None and result.completion_cause == "NoMatch"
        assert result.nlu is None and result.asr is not None
        assert result.asr.transcript == "four nine two one"
    finally:
        bot.close()


def test_no_input_timeout(scripted_emu: UhliveEmulator) -> None:
    bot = connect(scripted_emu)
    try:
        bot.set_params(no_input_timeout=300)
        assert bot.get_params()["no_input_timeout"] == 300
        result = bot.recognize("builtin:speech/boolean", timeout=10)
    finally:
        bot.close()
    assert result is not None and result.completion_cause == "NoInputTimeout"
    assert result.asr is None and result.value is None and not result.success


def test_input_timers_started_later(scripted_emu: UhliveEmulator) -> None:
    bot = connect(scripted_emu)
    started = threading.Event()

    def on_message(msg: Message) -> None:
        if msg.type == "RECOGNITION-IN-PROGRESS":
            assert bot.recognizer_state is RecognizerState.RECOGNITION
            bot.start_input_timers()
            started.set()

    bot.on("message", on_message)
    try:
        result = bot.recognize(
            "builtin:speech/boolean", timeout=10, start_input_timers=False, no_input_timeout=200
        )
    finally:
        bot.close()
    assert started.is_set()
    assert result is not None and result.completion_cause == "NoInputTimeout"


def test_unknown_grammars_raise_typed_errors(scripted_emu: UhliveEmulator) -> None:
    bot = connect(scripted_emu)
    try:
        with pytest.raises(MethodFailedError) as info:
            bot.recognize("builtin:speech/toto", timeout=5)
        assert info.value.code == "GramLoadFailure"
        assert "speech/toto" in info.value.detail
        with pytest.raises(MethodFailedError) as info:
            bot.recognize("session:never_defined", timeout=5)
        assert info.value.code == "GramLoadFailure"
        with pytest.raises(MethodFailedError) as info:
            bot.define_grammar("x", "builtin:speech/toto")
        assert info.value.code == "GramDefinitionFailure"
        with pytest.raises(InvalidParamValueError):
            bot.set_params(no_input_timeout=-5)
        assert bot.recognizer_state is RecognizerState.IDLE_SESSION
        assert bot.get_params()["no_input_timeout"] == 5000  # the session still works
    finally:
        bot.close()


def test_wrong_state_commands_raise_local_protocol_error(scripted_emu: UhliveEmulator) -> None:
    bot = BotConnection(token=scripted_emu.issue_token(), api_url=scripted_emu.ws_url)
    with pytest.raises(LocalProtocolError):
        bot.set_params(no_input_timeout=100)  # not connected
    bot.connect(timeout=10)
    try:
        with pytest.raises(LocalProtocolError, match="START-INPUT-TIMERS"):
            bot.start_input_timers()  # no recognition running
        assert bot.stop() is None  # nothing to stop
        results: List[Any] = []
        worker = threading.Thread(
            target=lambda: results.append(
                bot.recognize("builtin:speech/boolean", timeout=10, mode="hotword")
            )
        )
        worker.start()
        deadline = time.monotonic() + 5
        while bot.recognizer_state is not RecognizerState.RECOGNITION:
            assert time.monotonic() < deadline, "the recognition did not start"
            time.sleep(0.01)
        with pytest.raises(LocalProtocolError, match="RECOGNIZE"):
            bot.recognize("builtin:speech/boolean", timeout=5)
        with pytest.raises(LocalProtocolError):
            bot.set_params(no_input_timeout=100)
        stopped = bot.stop(timeout=5)
        worker.join(10)
        assert not worker.is_alive()
        assert stopped is not None and stopped.type == "STOPPED"
        assert results == [None]  # the blocked recognize() saw the STOP
        assert bot.recognizer_state is RecognizerState.IDLE_SESSION
    finally:
        bot.close()


def test_recognize_timeout_stops_the_recognition(scripted_emu: UhliveEmulator) -> None:
    bot = connect(scripted_emu)
    try:
        with pytest.raises(TimeoutError):
            bot.recognize("builtin:speech/boolean", timeout=0.3, no_input_timeout=10000)
        assert bot.recognizer_state is RecognizerState.IDLE_SESSION
        bot.set_params(no_input_timeout=100)  # usable again
    finally:
        bot.close()


@pytest.mark.parametrize(("codec", "encode"), [("g711a", alaw_encode), ("g711u", ulaw_encode)])
def test_g711_audio_and_silence(
    scripted_emu: UhliveEmulator, codec: str, encode: Callable[[Any], Any]
) -> None:
    bot = connect(scripted_emu, audio_codec=codec)
    assert bot.audio_format.encoding == {"g711a": "alaw", "g711u": "mulaw"}[codec]
    try:
        # the streamed silence must decode as silence: no speech, no-input timeout
        result = bot.recognize("builtin:speech/boolean", timeout=10, no_input_timeout=400)
        assert result is not None and result.completion_cause == "NoInputTimeout"
        pcm = np.frombuffer(tone(), dtype="<i2")
        speak_when_listening(bot, encode(pcm).tobytes())
        result = bot.recognize("builtin:speech/spelling/digits", timeout=10)
        assert result is not None and result.value == "4921"
    finally:
        bot.close()


def test_context_manager_closes_the_session(scripted_emu: UhliveEmulator) -> None:
    messages: List[str] = []
    with create_bot(token=scripted_emu.issue_token(), api_url=scripted_emu.ws_url) as bot:
        bot.on("message", lambda m: messages.append(m.type))
        bot.set_params(speech_language="en")
        channel = bot.channel_id
        assert channel
    assert bot.state == "closed"
    assert bot.recognizer_state is RecognizerState.NO_SESSION
    assert messages == ["PARAMS-SET", "CLOSED"]
    assert bot.wait(timeout=1) is True


def test_credentials_from_the_environment(
    scripted_emu: UhliveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in scripted_emu.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("UHLIVE_API_CLIENT", "acme")
    monkeypatch.setenv("UHLIVE_API_SECRET", "s3cr3t")
    with create_bot(custom_id="test") as bot:
        assert bot.connected
        connected = bot.channel_id
    assert connected


def test_bad_token_is_an_authentication_error(scripted_emu: UhliveEmulator) -> None:
    bot = BotConnection(token="not.a.token", api_url=scripted_emu.ws_url)
    with pytest.raises(AuthenticationError) as info:
        bot.connect(timeout=5)
    assert info.value.status_code == 403
    assert "not.a.token" not in str(info.value)
    assert bot.state == "idle"


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="audio_codec must be one of"):
        BotConnection(token="t", audio_codec="opus")
    with pytest.raises(ConfigurationError, match="instead of keepalive_interval"):
        BotConnection(token="t", keepalive_interval=1.0)
    with pytest.raises(ConfigurationError, match="from 10 to 1000, got 5"):
        BotConnection(token="t", silence_chunk_ms=5)


def test_server_drop_fails_the_connection(scripted_emu: UhliveEmulator) -> None:
    scripted_emu.faults.drop_after_frames = 8  # OPEN + a few chunks of silence
    bot = connect(scripted_emu)
    errors: List[Any] = []
    bot.on("error", errors.append)
    with pytest.raises(DisconnectedError):
        bot.recognize("builtin:speech/boolean", timeout=10, no_input_timeout=10000)
    with pytest.raises(DisconnectedError):
        bot.wait(timeout=5)
    assert bot.state == "closed"
    with pytest.raises(DisconnectedError):
        bot.send(b"\x00\x00")


def test_malformed_event_is_reported_and_the_stream_goes_on(
    scripted_emu: UhliveEmulator,
) -> None:
    scripted_emu.faults.malformed_after_frames = 2
    bot = connect(scripted_emu)
    errors: List[Any] = []
    bot.on("error", errors.append)
    try:
        bot.set_params(no_input_timeout=100)  # frame 2 triggers the bad event
        result = bot.recognize("builtin:speech/boolean", timeout=10)
        assert result is not None and result.completion_cause == "NoInputTimeout"
    finally:
        bot.close()
    assert any(isinstance(e, RemoteProtocolError) for e in errors)


def test_emulator_protocol_refusals_on_the_wire() -> None:
    """Raw frames: state checks, bad commands and echoed request ids on the server side."""
    import websocket

    with UhliveEmulator(engine="scripted") as emu:
        ws = websocket.create_connection(
            emu.ws_url + "/bots", header=[f"Authorization: bearer {emu.issue_token()}"], timeout=5
        )
        try:

            def call(frame: Any) -> Any:
                ws.send(frame if isinstance(frame, str) else json.dumps(frame))
                reply = json.loads(ws.recv())
                assert list(reply) == [
                    "event",
                    "request_id",
                    "channel_id",
                    "headers",
                    "completion_cause",
                    "completion_reason",
                    "body",
                ]
                return reply

            cmd = {"request_id": 7, "channel_id": "", "headers": {}, "body": ""}
            assert call({**cmd, "command": "GET-PARAMS"})["event"] == "METHOD-NOT-ALLOWED"
            assert call({**cmd, "command": "DANCE"})["event"] == "METHOD-NOT-VALID"
            assert call("not json")["event"] == "METHOD-NOT-VALID"
            opened = call({**cmd, "command": "OPEN", "channel_id": "t-", "headers": {}})
            assert opened["event"] == "OPENED" and opened["request_id"] == 7
            assert opened["channel_id"].startswith("t-")
            bad = call({**cmd, "command": "DEFINE-GRAMMAR", "body": "builtin:speech/boolean"})
            assert bad["event"] == "MISSING-PARAM"
            closed = call({**cmd, "command": "CLOSE", "request_id": 9})
            assert (closed["event"], closed["request_id"]) == ("CLOSED", 9)
        finally:
            ws.close()
    threads = emu.state.threads()
    assert threads and all(t.name.startswith("voxsync-emulator-uhlive-") for t in threads)
    assert not [t.name for t in threads if t.is_alive()]


def test_finish_waits_for_the_running_recognition(scripted_emu: UhliveEmulator) -> None:
    bot = connect(scripted_emu)
    messages: List[str] = []
    bot.on("message", lambda m: messages.append(m.type))
    results: List[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            bot.recognize("builtin:speech/boolean", timeout=10, no_input_timeout=600)
        )
    )
    worker.start()
    deadline = time.monotonic() + 5
    while bot.recognizer_state is not RecognizerState.RECOGNITION:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    bot.finish(timeout=10)  # the result comes first, then CLOSE / CLOSED
    worker.join(10)
    assert len(results) == 1 and isinstance(results[0], RecognitionComplete)
    assert results[0].completion_cause == "NoInputTimeout"
    assert messages[-1] == "CLOSED"
    assert bot.state == "closed"


def test_sample_runs_against_the_emulator(
    sphinx_emu: UhliveEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    path = SAMPLES.parent / "uhlive_bot.py"
    spec = importlib.util.spec_from_file_location("uhlive_bot_sample", path)
    assert spec is not None and spec.loader is not None
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    for key, value in sphinx_emu.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("UHLIVE_API_CLIENT", "demo")
    monkeypatch.setenv("UHLIVE_API_SECRET", "demo")
    assert sample.main([str(SAMPLES / "no.wav")]) == 0
    out = capsys.readouterr().out
    assert "heard 'no' -> False" in out
    assert "GramLoadFailure" in out


def test_token_from_an_explicit_auth_server(
    scripted_emu: UhliveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "UHLIVE_AUTH_SERVER",
        "UHLIVE_AUTH_REALM",
        "UHLIVE_API_CLIENT",
        "UHLIVE_API_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    bot = BotConnection(
        client_id="acme",
        client_secret="acme-secret",
        auth_server=scripted_emu.base_url,
        api_url=scripted_emu.ws_url,
    )
    bot.connect(timeout=10)
    assert bot.channel_id
    bot.close()
