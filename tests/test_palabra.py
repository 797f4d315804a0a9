"""Palabra translation against the local emulator: the seed's code made synchronous,
the three connection modes, commands on the wire, REST retries and faults."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import soundfile as sf
from speech import TRANSCRIPTS, sample, wer

import voxsync
from voxsync.audio import AudioFormat, iter_chunks
from voxsync.emulators.palabra import PalabraEmulator
from voxsync.errors import RemoteProtocolError, TimeoutError
from voxsync.palabra import (
    Audio,
    AuthError,
    NotReadyError,
    Palabra,
    ServerError,
    ServerWarning,
    SessionError,
    StreamEnd,
    TaskError,
    TaskInfo,
    Transcript,
    build_task,
    raise_on_error,
)

SPEECH = "two_utterances.wav"


@pytest.fixture
def emu() -> Iterator[PalabraEmulator]:
    with PalabraEmulator(engine="scripted", transcripts=["hello world", "good night"]) as server:
        yield server


@pytest.fixture
def palabra(emu: PalabraEmulator, monkeypatch: pytest.MonkeyPatch) -> Palabra:
    for key, value in emu.env().items():
        monkeypatch.setenv(key, value)
    return Palabra()


def _types(emu: PalabraEmulator) -> List[str]:
    return [m for m, _ in emu.received]


def test_seed_streaming_example_real_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's streaming example, synchronous: a feeder thread, events iterated."""
    with PalabraEmulator(engine="pocketsphinx") as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        palabra = Palabra()
        events: List[Any] = []
        with palabra.translation(source="en", targets=["es"]) as session:

            def feed() -> None:
                fmt = session.input_format
                for chunk in iter_chunks(sample(SPEECH), fmt, chunk_ms=320, realtime=True):
                    session.send_audio(chunk)
                session.end(eos_timeout=4)

            feeder = threading.Thread(target=feed)
            feeder.start()
            for event in session:
                events.append(event)
            feeder.join(30)
            assert not feeder.is_alive()
        assert emu.sessions == {}  # default mode deletes its session
    finals = [
        e for e in events if isinstance(e, Transcript) and e.is_final and not e.is_translation
    ]
    partials = [e for e in events if isinstance(e, Transcript) and not e.is_final]
    translations = [e for e in events if isinstance(e, Transcript) and e.is_translation]
    audio = [e for e in events if isinstance(e, Audio)]
    assert partials and finals
    assert wer(TRANSCRIPTS[SPEECH], " ".join(e.text for e in finals)) <= 0.35
    assert [t.text for t in translations] == [f"[es] {f.text}" for f in finals]
    assert all(t.language == "es" and t.source_language == "en" for t in translations)
    assert {f.id for f in finals} == {t.id for t in translations}
    assert all(p.id in {f.id for f in finals} for p in partials)  # stable ids
    assert sum(a.last_chunk for a in audio) == len(translations)
    seconds = sum(len(a.pcm) for a in audio) / 48000
    assert seconds > 1.0 and all(
        a.audio_format == AudioFormat(24000, 1, "pcm_s16le") for a in audio
    )
    assert isinstance(events[-1], StreamEnd) or any(isinstance(e, StreamEnd) for e in events)
    warnings = [e for e in events if isinstance(e, ServerWarning)]
    assert not warnings, warnings  # paced at real time


def test_handlers_get_shared_event_names(palabra: Palabra, emu: PalabraEmulator) -> None:
    got: dict[str, List[Any]] = {
        k: [] for k in ("transcript", "translation", "audio", "task", "end_of_stream")
    }
    session = palabra.translation(source="en", targets=["es", "fr"])
    for name, bucket in got.items():
        session.on(name, bucket.append)
    with session:
        session.send_file(sample("yes.wav"), realtime=False)
        session.end(eos_timeout=1)
    assert [t.text for t in got["translation"]] == ["[es] hello world", "[fr] hello world"]
    assert all(isinstance(t, Transcript) and t.is_translation for t in got["translation"])
    assert got["transcript"] and not any(t.is_translation for t in got["transcript"])
    assert {a.language for a in got["audio"]} == {"es", "fr"}
    assert isinstance(got["task"][0], TaskInfo) and got["end_of_stream"]


def test_session_mode_is_never_deleted(palabra: Palabra, emu: PalabraEmulator) -> None:
    created = palabra.create_session()
    assert created.ws_url == emu.ws_url and created.ws_tts_url == emu.ws_tts_url
    assert created.publisher not in repr(created)
    with palabra.translation(source="en", targets="es", session=created) as session:
        session.end()
    assert created.id in emu.sessions
    palabra.delete_session(created)
    assert emu.sessions == {}


def test_direct_mode_needs_no_credentials(
    emu: PalabraEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("PALABRA_CLIENT_ID", "PALABRA_CLIENT_SECRET", "PALABRA_API_URL"):
        monkeypatch.delenv(key, raising=False)
    token = emu.issue_session()["publisher"]
    palabra = Palabra()
    with palabra.translation(source="en", targets=["es"], ws_url=emu.ws_url, token=token) as s:
        s.send_file(sample("yes.wav"), realtime=False)
        s.end(eos_timeout=1)
    texts = [e.text for e in s if isinstance(e, Transcript) and e.is_final]
    assert texts == ["hello world", "[es] hello world"]


def test_no_credentials_fail_locally(emu: PalabraEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("PALABRA_CLIENT_ID", "PALABRA_CLIENT_SECRET"):
        monkeypatch.delenv(key, raising=False)
    emu.faults.rest_5xx = 1  # a request would use it up
    palabra = Palabra(api_url=emu.base_url)
    with pytest.raises(AuthError, match="PALABRA_CLIENT_ID"):
        palabra.create_session()
    with pytest.raises(AuthError), palabra.translation(source="en", targets=["es"]):
        pass
    assert emu.faults.rest_5xx == 1


def test_rest_retries_5xx_then_fails(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.rest_5xx = 2
    assert palabra.create_session().id  # third attempt succeeds
    emu.faults.rest_5xx = 3
    with pytest.raises(SessionError, match="503"):
        palabra.create_session()
    assert emu.faults.rest_5xx == 0


def test_rest_refusals_are_auth_errors(emu: PalabraEmulator) -> None:
    bad = Palabra("emulator-client-id", "wrong", api_url=emu.base_url)
    with pytest.raises(AuthError, match="401") as info:
        bad.create_session()
    assert "wrong" not in str(info.value)
    with pytest.raises(AuthError, match="404"):
        Palabra(emu.client_id, emu.client_secret, api_url=emu.base_url).delete_session("nope")


def test_rejected_task_raises_at_once(palabra: Palabra, emu: PalabraEmulator) -> None:
    start = time.monotonic()
    with (
        pytest.raises(TaskError) as info,
        palabra.translation(source="en", targets=["es"], silence_threshold=0.1),
    ):
        pass
    assert info.value.code == "VALIDATION_ERROR" and "0.3" in info.value.desc
    assert time.monotonic() - start < 2
    assert emu.sessions == {}


def test_not_ready_is_bounded_and_polls_politely(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.never_ready = True
    start = time.monotonic()
    with (
        pytest.raises(NotReadyError),
        palabra.translation(source="en", targets=["es"], ready_timeout=4.5),
    ):
        pass
    assert 4.4 < time.monotonic() - start < 7
    assert _types(emu).count("get_task") == 3  # at 0, 2.1 and 4.2 s
    assert emu.sessions == {}


def test_delayed_pipeline_ready_through_task_status(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.ready_delay = 0.5
    start = time.monotonic()
    with palabra.translation(source="en", targets=["es"]) as session:
        assert time.monotonic() - start < 2.0  # the ack, not the 2.1 s poll
        session.end()


def test_commands_on_the_wire_in_order(palabra: Palabra, emu: PalabraEmulator) -> None:
    chunk = b"\x00\x00" * 7680
    new_task = build_task("en", ["es", "fr"])
    with palabra.translation(source="en", targets=["es"]) as session:
        session.send_audio(chunk)
        session.speak("Hola!", "es")
        session.send_audio(chunk)
        session.speak("Hi all!", "en", translate=True)
        session.flush()
        session.pause()
        session.send_audio(chunk)
        session.resume()
        session.set_task(new_task)
        session.get_task()
        session.speak("Bonjour", "fr")  # a target of the new task
        session.end(eos_timeout=2)
    sent = [(m, d) for m, d in emu.received if m not in ("get_task",)][
        1:
    ]  # after the first set_task
    assert [m for m, _ in sent] == [
        "input_audio_data",
        "tts_task",
        "input_audio_data",
        "tts_task",
        "flush_task",
        "pause_task",
        "input_audio_data",
        "set_task",
        "set_task",
        "tts_task",
        "end_task",
    ]
    assert sent[1][1] == {"text": "Hola!", "language": "es", "translate_text": False}
    assert sent[3][1] == {"text": "Hi all!", "language": "en", "translate_text": True}
    assert sent[4][1] == {"languages": ["global"], "pause_task": False}
    assert sent[8][1] == new_task
    assert sent[10][1] == {"eos_timeout": 2}
    assert _types(emu)[-3] == "get_task"
    events = list(session)
    acks = [(e.command, e.change) for e in events if isinstance(e, TaskInfo) and e.command]
    assert ("pause_task", "paused") in acks and ("set_task", "resumed") in acks
    assert ("set_task", "updated") in acks
    spoken = {a.language for a in events if isinstance(a, Audio)}
    assert spoken == {"es", "fr"}


def test_server_error_event_and_raise_on_error(palabra: Palabra, emu: PalabraEmulator) -> None:
    errors: List[Any] = []
    with palabra.translation(source="en", targets=["es"]) as session:
        session.on("error", errors.append)
        session.speak("Bonjour", "de")  # not a target, not translated
        session.end()
    assert len(errors) == 1 and isinstance(errors[0], ServerError)
    assert errors[0].code == "VALIDATION_ERROR"
    with pytest.raises(TaskError, match="VALIDATION_ERROR"):
        raise_on_error(errors[0])
    raise_on_error(next(e for e in session if isinstance(e, TaskInfo)))  # no error: no raise


def test_double_encoded_and_zlib_output(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.double_encode = True
    with palabra.translation(source="en", targets=["es"], output_format="zlib_pcm_s16le") as s:
        s.send_file(sample("yes.wav"), realtime=False)
        s.end(eos_timeout=1)
    events = list(s)
    assert [e.text for e in events if isinstance(e, Transcript) and e.is_final] == [
        "hello world",
        "[es] hello world",
    ]
    pcm = b"".join(e.pcm for e in events if isinstance(e, Audio))
    assert len(pcm) > 24000  # more than half a second of decoded speech


def test_translate_file_writes_speech(
    palabra: Palabra, emu: PalabraEmulator, tmp_path: Path
) -> None:
    seen: List[Transcript] = []
    out = tmp_path / "es.wav"
    finals = palabra.translate_file(
        sample("yes.wav"), source="en", targets="es", output=out, on_transcript=seen.append
    )
    assert [t.text for t in finals] == ["hello world", "[es] hello world"]
    assert len(seen) >= 2
    data, rate = sf.read(str(out), dtype="int16")
    assert rate == 24000 and len(data) > 12000 and abs(data).max() > 1000


def test_send_pcm_converts_any_format(palabra: Palabra, emu: PalabraEmulator) -> None:
    data, rate = sf.read(str(sample("yes.wav")), dtype="int16")
    with palabra.translation(source="en", targets="es", input_sample_rate=16000) as s:
        assert s.input_format == AudioFormat(16000, 1, "pcm_s16le")
        s.send_pcm(data.tobytes(), AudioFormat(rate, 1, "pcm_s16le"), realtime=False)
        s.end(eos_timeout=1)
    assert any(isinstance(e, Transcript) and e.text == "hello world" for e in s)


def test_retry_loop_sync_form(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.rate_limit_close = True
    attempts = 0
    while True:
        attempts += 1
        try:
            with palabra.translation(source="en", targets=["es"]) as session:
                session.end()
            break
        except (SessionError, NotReadyError):
            emu.faults.rate_limit_close = False
            time.sleep(0.1)
    assert attempts == 2 and emu.sessions == {}


def test_drop_mid_stream_ends_with_session_error(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.drop_after_chunks = 3
    start = time.monotonic()
    with pytest.raises(SessionError), palabra.translation(source="en", targets=["es"]) as session:
        for chunk in iter_chunks(sample(SPEECH), session.input_format, chunk_ms=320):
            session.send_audio(chunk)
            time.sleep(0.01)
        session.end(eos_timeout=1, timeout=5)
    assert time.monotonic() - start < 10
    assert isinstance(session.error, SessionError)
    list(session)  # iteration ends


def test_malformed_frame_is_an_error_event(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.malformed_after_chunks = 1
    with palabra.translation(source="en", targets=["es"]) as session:
        session.send_file(sample("yes.wav"), realtime=False)
        session.end(eos_timeout=1)
    events = list(session)
    assert any(isinstance(e, RemoteProtocolError) for e in events)
    assert any(isinstance(e, Transcript) and e.text == "[es] hello world" for e in events)


def test_stall_end_is_bounded(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.stall_after_chunks = 1
    start = time.monotonic()
    with palabra.translation(source="en", targets=["es"]) as session:
        session.send_file(sample("yes.wav"), realtime=False)
        with pytest.raises(TimeoutError):
            session.end(eos_timeout=1, timeout=2)
    assert time.monotonic() - start < 6
    assert not session.connected


def test_idle_timeout_closes_1008(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.idle_timeout = 1.0
    with pytest.raises(SessionError), palabra.translation(source="en", targets=["es"]) as session:
        session.wait(timeout=5)
    codes = [e.code for e in session if isinstance(e, ServerError)]
    assert codes == ["SERVICE_TIMEOUT"]
    assert isinstance(session.error, SessionError) and session.error.code == 1008


def test_pacing_warning_when_too_fast(palabra: Palabra, emu: PalabraEmulator) -> None:
    with palabra.translation(source="en", targets=["es"]) as session:
        session.send_file(sample(SPEECH), realtime=False)
        session.end(eos_timeout=1)
    warnings = [e for e in session if isinstance(e, ServerWarning)]
    assert warnings and warnings[0].code == "AUDIO_STREAM_TOO_FAST"


def test_secrets_never_in_reprs_or_errors(palabra: Palabra, emu: PalabraEmulator) -> None:
    assert "emulator-client-secret" not in repr(palabra)
    token = emu.issue_session()["publisher"]
    emu.faults.rate_limit_close = True
    session = palabra.translation(source="en", targets=["es"], ws_url=emu.ws_url, token=token)
    with pytest.raises(SessionError) as info:
        session.connect()
    assert token not in repr(session) and token not in str(info.value)


def test_registry_provider(emu: PalabraEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emu.env().items():
        monkeypatch.setenv(key, value)
    conn = voxsync.connection("palabra", source="en", targets=["es"])
    texts: List[str] = []
    conn.on("translation", lambda ev: texts.append(ev.text))
    with conn:
        voxsync.audio.stream_file(conn, sample("yes.wav"), realtime=False)
    assert texts == ["[es] hello world"]


def test_emulator_stop_joins_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    with PalabraEmulator(engine="scripted", transcripts=["hello world"]) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        session = Palabra().translation(source="en", targets=["es"])
        session.connect()
        session.send_file(sample("yes.wav"), realtime=False)
        # stop the server under an open stream: the client ends, nothing hangs
    session.close()
    left = [t.name for t in threading.enumerate() if t.name.startswith("voxsync-emulator-palabra")]
    assert left == []


def test_get_task_waits_for_the_answer(palabra: Palabra, emu: PalabraEmulator) -> None:
    with palabra.translation(source="en", targets=["es"]) as session:
        info = session.get_task(timeout=5)
        assert isinstance(info, TaskInfo) and info.status == "running"
        assert info.task is not None and info.task["pipeline"]["translations"][0] == {
            "target_language": "es",
            "speech_generation": {},
        }
        session.pause()
        assert session.get_task(timeout=5).status == "paused"  # type: ignore[union-attr]
        session.end()


def test_rate_limit_close_code_is_surfaced(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.faults.rate_limit_close = True
    with pytest.raises(SessionError) as info:
        palabra.translation(source="en", targets=["es"]).connect()
    assert getattr(info.value, "code", None) == 1008 and "1008" in str(info.value)
    assert emu.sessions == {}


def test_emulator_accepts_megabyte_frames(emu: PalabraEmulator) -> None:
    import base64
    import json

    import websocket

    token = emu.issue_session()["publisher"]
    ws = websocket.create_connection(f"{emu.ws_url}?token={token}", timeout=10)
    try:
        ws.send(json.dumps({"message_type": "set_task", "data": build_task("en", "es")}))
        big = base64.b64encode(b"\x00\x00" * 400_000).decode()  # > 1 MiB of JSON
        assert len(big) > 1024 * 1024
        ws.send(json.dumps({"message_type": "input_audio_data", "data": {"data": big}}))
        ws.send(json.dumps({"message_type": "get_task", "data": {}}))
        types = []
        while "current_task" not in types:
            types.append(json.loads(ws.recv())["message_type"])
        assert "error" not in types
    finally:
        ws.close()


def test_stalled_input_warns(palabra: Palabra, emu: PalabraEmulator) -> None:
    emu.idle_timeout = 30
    warnings: List[Any] = []
    with palabra.translation(source="en", targets=["es"]) as session:
        session.on("warning", warnings.append)
        session.send_audio(b"\x00\x00" * 7680)
        deadline = time.monotonic() + 10
        while not warnings and time.monotonic() < deadline:
            time.sleep(0.1)
        session.end()
    assert [w.code for w in warnings] == ["AUDIO_STREAM_STALLED"]
