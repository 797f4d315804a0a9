"""The emulated realtime STT and TTS sockets, spoken to with a plain WebSocket client."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
import soundfile as sf
import websocket
from speech import MAX_WER, TRANSCRIPTS, chunks, pcm16, wer

from voxsync.emulators.engine import make_engine
from voxsync.emulators.palabra import PalabraEmulator, PalabraFaults
from voxsync.emulators.palabra.synth import synthesizer_available
from voxsync.emulators.palabra.tts import mp3_available

needs_synth = pytest.mark.skipif(
    not synthesizer_available(), reason="pip install 'voxsync[emulators]' (eSpeak NG)"
)

SILENCE = b"\0\0" * 16000  # 1 s at 16 kHz


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    with make_engine("pocketsphinx") as eng:
        yield eng


@pytest.fixture
def server(engine: Any) -> Iterator[PalabraEmulator]:
    with PalabraEmulator(engine=engine, idle_timeout=5.0, api_key="key") as emu:
        emu.tts.realtime = False
        yield emu


def asr_socket(srv: PalabraEmulator, query: str) -> websocket.WebSocket:
    """Open the ASR socket; ``token=T`` in ``query`` becomes a fresh session token."""
    if "token=T" in query:
        query = query.replace("token=T", "token=" + srv.issue_session()["publisher"], 1)
    return websocket.create_connection(
        f"{srv.ws_base}/asr/v1/speech-to-text/stream?{query}", timeout=20
    )


def read_until(ws: websocket.WebSocket, done: Any, limit: int = 400) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    for _ in range(limit):
        frame = ws.recv()
        assert isinstance(frame, str)
        msg = json.loads(frame)
        assert isinstance(msg, dict)
        out.append(msg)
        if done(msg):
            return out
    raise AssertionError(f"no end after {limit} frames: {out[-3:]}")


# ------------------------------------------------------------------------ ASR


def test_asr_transcribes_real_speech_with_translations(server: PalabraEmulator) -> None:
    ws = asr_socket(server, "token=T&format=pcm_s16le&language=en&translate_languages=es,de")
    try:
        for piece in chunks(pcm16("quick_brown_fox.wav") + SILENCE, 10240):
            ws.send_binary(piece)
        msgs = read_until(
            ws,
            lambda m: m.get("message_type") == "translated_transcription" and m["language"] == "de",
        )
    finally:
        ws.close()
    partials = [m for m in msgs if m["message_type"] == "transcription" and not m["is_eos"]]
    finals = [m for m in msgs if m["message_type"] == "transcription" and m["is_eos"]]
    translations = [m for m in msgs if m["message_type"] == "translated_transcription"]
    assert partials, "partials while speech goes on"
    assert len(finals) == 1
    final = finals[0]
    assert wer(TRANSCRIPTS["quick_brown_fox.wav"], final["segment"]["text"]) <= MAX_WER
    assert {p["transcription_id"] for p in partials} == {final["transcription_id"]}
    assert final["language"] == "en"
    assert 0 <= final["segment"]["start_time"] < final["segment"]["end_time"] < 4.0
    assert [t["language"] for t in translations] == ["es", "de"]
    for t in translations:
        assert t["transcription_id"] == final["transcription_id"] and t["is_eos"] is True
        assert t["segment"]["text"] == f"[{t['language']}] " + final["segment"]["text"]
    assert all("data" not in m for m in msgs)  # flat, never enveloped or double-encoded


@pytest.mark.parametrize(
    ("fmt", "rate", "convert"),
    [
        ("pcm_f32le", 16000, lambda x: (x.astype("<f4") / 32768).tobytes()),
        ("pcm_s32be", 16000, lambda x: (x.astype("<i4") << 16).astype(">i4").tobytes()),
        ("pcm_s16le", 24000, None),
        ("wav", None, None),
    ],
)
def test_asr_decodes_other_formats(
    server: PalabraEmulator, fmt: str, rate: Any, convert: Any
) -> None:
    pcm = np.frombuffer(pcm16("meeting.wav") + SILENCE, dtype="<i2")
    if fmt == "wav":
        buf = io.BytesIO()
        sf.write(buf, pcm, 16000, format="WAV", subtype="PCM_16")
        data = buf.getvalue()
    elif rate == 24000:
        import soxr

        data = (
            (soxr.resample(pcm.astype("f4") / 32768, 16000, 24000) * 32767).astype("<i2").tobytes()
        )
    else:
        data = convert(pcm)
    query = f"token=T&format={fmt}&language=en" + (
        f"&sample_rate={rate}" if rate and fmt != "wav" else ""
    )
    ws = asr_socket(server, query)
    try:
        for piece in chunks(data, 7001):  # odd sizes: samples split across frames
            ws.send_binary(piece)
        msgs = read_until(ws, lambda m: m.get("is_eos") is True)
    finally:
        ws.close()
    assert wer(TRANSCRIPTS["meeting.wav"], msgs[-1]["segment"]["text"]) <= MAX_WER


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("format=pcm_s16le", 401, "missing token"),
        ("token=bad&format=pcm_s16le", 401, "token"),
        ("token=T", 400, "missing format"),
        ("token=T&format=opus", 400, "unknown"),
        ("token=T&format=mp3", 400, "does not decode"),
        ("token=T&format=pcm_f32le", 400, "sample_rate is required"),
        ("token=T&format=pcm_s16le&sample_rate=100", 400, "8000 to 48000"),
        ("token=T&format=pcm_s16le&language=english", 400, "language code"),
        ("token=T&format=pcm_s16le&translate_languages=es,,12", 400, "language code"),
        ("token=T&format=pcm_s16le&enable_filler_filter=maybe", 400, "true or false"),
    ],
)
def test_asr_upgrade_refusals(server: PalabraEmulator, query: str, status: int, words: str) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        asr_socket(server, query)
    assert info.value.status_code == status
    assert words in info.value.resp_body.decode()


def test_asr_second_socket_of_one_token_gets_409(server: PalabraEmulator) -> None:
    first = asr_socket(server, "token=key&format=pcm_s16le")
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            asr_socket(server, "token=key&format=pcm_s16le")
        assert info.value.status_code == 409
        assert "already active" in info.value.resp_body.decode()
    finally:
        first.close()
    deadline = time.monotonic() + 5
    while server.asr.active("key") and time.monotonic() < deadline:
        time.sleep(0.02)
    asr_socket(server, "token=key&format=pcm_s16le").close()


def test_asr_text_frame_gets_an_enveloped_error_and_the_socket_stays(
    server: PalabraEmulator,
) -> None:
    ws = asr_socket(server, "token=T&format=pcm_s16le&language=en")
    try:
        ws.send('{"message_type":"end"}')
        err = json.loads(ws.recv())
        assert err["message_type"] == "error" and err["data"]["code"] == "BAD_REQUEST"
        assert isinstance(err["data"], dict) and "binary" in err["data"]["desc"]
        for piece in chunks(pcm16("yes.wav") + SILENCE, 10240):
            ws.send_binary(piece)
        msgs = read_until(ws, lambda m: m.get("is_eos") is True)
        assert msgs[-1]["segment"]["text"] == "yes"
    finally:
        ws.close()


def test_asr_idle_socket_gets_service_timeout_and_1008(engine: Any) -> None:
    with PalabraEmulator(engine=engine, idle_timeout=0.5) as srv:
        ws = asr_socket(srv, "token=T&format=pcm_s16le")
        err = json.loads(ws.recv())
        assert err["data"]["code"] == "SERVICE_TIMEOUT"
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1008
        ws.close()


@pytest.mark.parametrize("fault", ["drop", "close", "malformed"])
def test_asr_faults(engine: Any, fault: str) -> None:
    faults = {
        "drop": PalabraFaults(drop_after_chunks=2),
        "close": PalabraFaults(rate_limit_close=True),
        "malformed": PalabraFaults(malformed_after_chunks=2),
    }[fault]
    with PalabraEmulator(engine=engine, faults=faults) as srv:
        ws = asr_socket(srv, "token=T&format=pcm_s16le")
        for _ in range(3):
            try:
                ws.send_binary(b"\0\0" * 1600)
            except (websocket.WebSocketConnectionClosedException, OSError):
                break
        if fault == "malformed":
            assert ws.recv() == "{this is not json"
        elif fault == "close":
            opcode, data = ws.recv_data(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1008
        else:
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
                ws.recv()
        ws.close()


# ------------------------------------------------------------------------ TTS


def tts_socket(
    srv: PalabraEmulator, path: str = "/tts-api/v1/text-to-speech/stream"
) -> websocket.WebSocket:
    token = srv.issue_session()["publisher"]
    return websocket.create_connection(f"{srv.ws_base}{path}?token={token}", timeout=20)


def init(
    ws: websocket.WebSocket, fmt: str = "pcm", rate: int = 24000, language: str = "en"
) -> None:
    ws.send(
        json.dumps(
            {
                "type": "init",
                "language": language,
                "model": "auto",
                "voice_options": {"voice_id": "default_low"},
                "output": {"format": fmt, "sample_rate": rate},
            }
        )
    )


def generation(ws: websocket.WebSocket) -> List[Dict[str, Any]]:
    return [
        m["data"]
        for m in read_until(
            ws, lambda m: m["message_type"] != "audio_chunk" or m["data"]["last_chunk"]
        )
    ]


@needs_synth
@pytest.mark.parametrize("path", ["/tts-api/v1/text-to-speech/stream", "/v1/text-to-speech/stream"])
def test_tts_streams_real_speech_echoing_the_generation_id(
    server: PalabraEmulator, path: str
) -> None:
    ws = tts_socket(server, path)
    try:
        init(ws)
        ws.send(
            json.dumps(
                {
                    "type": "text",
                    "text": "The sun was setting over the mountains,",
                    "is_eos": False,
                    "generation_id": "g-1",
                }
            )
        )
        ws.send(
            json.dumps(
                {
                    "type": "text",
                    "text": " casting long golden shadows.",
                    "is_eos": True,
                    "generation_id": "g-1",
                }
            )
        )
        got = generation(ws)
    finally:
        ws.close()
    assert {c["generation_id"] for c in got} == {"g-1"}
    assert got[-1] == {
        "audio": "",
        "size": 0,
        "generation_id": "g-1",
        "last_chunk": True,
        "chunk_generation_delta": None,
        "audio_len": None,
    }
    pcm = b"".join(base64.b64decode(c["audio"]) for c in got)
    assert all(c["size"] == len(base64.b64decode(c["audio"])) for c in got)
    seconds = len(pcm) / 48000
    assert 1.5 < seconds < 6
    assert sum(c["audio_len"] for c in got[:-1]) == pytest.approx(seconds, rel=0.01)
    assert all(c["audio_len"] <= 0.21 for c in got[:-1])
    samples = np.frombuffer(pcm, dtype="<i2")
    assert np.abs(samples).max() > 3000  # speech, not silence


@needs_synth
def test_tts_wav_and_rate(server: PalabraEmulator) -> None:
    ws = tts_socket(server)
    try:
        init(ws, "wav", 16000)
        ws.send(json.dumps({"type": "text", "text": "Curious minds think alike.", "is_eos": True}))
        got = generation(ws)
    finally:
        ws.close()
    gid = got[0]["generation_id"]
    assert gid and all(c["generation_id"] == gid for c in got)  # made up by the server
    data, rate = sf.read(
        io.BytesIO(b"".join(base64.b64decode(c["audio"]) for c in got)), dtype="int16"
    )
    assert rate == 16000 and 1.0 < len(data) / rate < 4


@needs_synth
@pytest.mark.skipif(not mp3_available(), reason="libsndfile without MP3")
def test_tts_mp3(server: PalabraEmulator) -> None:
    ws = tts_socket(server)
    try:
        init(ws, "mp3", 24000)
        ws.send(json.dumps({"type": "text", "text": "Hello there.", "is_eos": True}))
        got = generation(ws)
    finally:
        ws.close()
    data, rate = sf.read(io.BytesIO(b"".join(base64.b64decode(c["audio"]) for c in got)))
    assert rate == 24000 and len(data) > 0.5 * rate


@needs_synth
def test_tts_validation_errors_and_socket_stays_usable(server: PalabraEmulator) -> None:
    ws = tts_socket(server)
    try:
        ws.send(json.dumps({"type": "text", "text": "too early", "is_eos": True}))
        assert json.loads(ws.recv())["data"]["code"] == "BAD_REQUEST"
        init(ws, "ogg", 96000)
        err = json.loads(ws.recv())["data"]
        assert (
            err["code"] == "VALIDATION_ERROR"
            and "output.format" in err["desc"]
            and "sample_rate" in err["desc"]
        )
        init(ws)
        ws.send(json.dumps({"type": "text", "text": "x" * 257, "is_eos": True}))
        err = json.loads(ws.recv())["data"]
        assert err["code"] == "VALIDATION_ERROR" and "at most 256" in err["desc"]
        ws.send(json.dumps({"type": "dance"}))
        assert json.loads(ws.recv())["data"]["code"] == "BAD_REQUEST"
        ws.send(
            json.dumps(
                {"type": "text", "text": "Still here.", "is_eos": True, "generation_id": "ok"}
            )
        )
        assert generation(ws)[-1]["generation_id"] == "ok"
    finally:
        ws.close()


def test_tts_rate_limit(server: PalabraEmulator) -> None:
    ws = tts_socket(server)
    try:
        init(ws)
        for i in range(55):
            ws.send(
                json.dumps(
                    {"type": "text", "text": f"w{i} ", "is_eos": False, "generation_id": "r"}
                )
            )
        errors = [json.loads(ws.recv()) for _ in range(5)]
        assert all(e["data"]["code"] == "RATE_LIMIT_EXCEEDED" for e in errors)
    finally:
        ws.close()


@needs_synth
def test_tts_cancel_stops_and_socket_stays_usable(engine: Any) -> None:
    with PalabraEmulator(engine=engine) as srv:
        ws = tts_socket(srv)
        try:
            init(ws)
            long = (
                "This is a rather long sentence that takes several seconds to speak aloud, surely."
            )
            ws.send(
                json.dumps({"type": "text", "text": long, "is_eos": True, "generation_id": "long"})
            )
            first = json.loads(ws.recv())["data"]
            assert first["generation_id"] == "long" and not first["last_chunk"]
            ws.send(json.dumps({"type": "cancel"}))
            started = time.monotonic()
            rest = generation(ws)
            assert rest[-1]["last_chunk"] and rest[-1]["generation_id"] == "long"
            assert time.monotonic() - started < 1.5
            audio = sum(len(base64.b64decode(c["audio"])) for c in [first, *rest]) / 48000
            assert audio < 3.0  # stopped early: the sentence is longer than that
            ws.send(
                json.dumps(
                    {"type": "text", "text": "Next one.", "is_eos": True, "generation_id": "n"}
                )
            )
            after = generation(ws)
            assert after[-1]["generation_id"] == "n" and len(after) > 1
        finally:
            ws.close()


@needs_synth
def test_tts_paces_at_about_real_time(engine: Any) -> None:
    with PalabraEmulator(engine=engine) as srv:
        ws = tts_socket(srv)
        try:
            init(ws)
            started = time.monotonic()
            ws.send(
                json.dumps(
                    {
                        "type": "text",
                        "text": "One two three four five six seven eight.",
                        "is_eos": True,
                    }
                )
            )
            got = generation(ws)
            took = time.monotonic() - started
        finally:
            ws.close()
        audio = sum(c["audio_len"] or 0 for c in got)
        assert audio > 1.5
        assert audio - 0.6 < took < audio + 2.0


def test_tts_bad_token_gets_401(server: PalabraEmulator) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(
            f"{server.ws_base}/tts-api/v1/text-to-speech/stream?token=nope", timeout=10
        )
    assert info.value.status_code == 401
