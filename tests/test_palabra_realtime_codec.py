"""Sans-I/O codec of Palabra's realtime STT and TTS sockets: byte-level and property tests."""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxsync.audio import AudioFormat
from voxsync.errors import ConfigurationError, RemoteProtocolError, ServerError
from voxsync.events import Message
from voxsync.palabra import Transcript
from voxsync.palabra.realtime import (
    ASR_FORMATS,
    TEXT_LIMIT,
    AsrSettings,
    TtsChunk,
    TtsDecoder,
    TtsSettings,
    asr_url,
    build_cancel,
    build_init,
    build_text,
    parse_asr_message,
    tts_url,
)

# ------------------------------------------------------------------ ASR query


def test_asr_url_default_rate_leaves_sample_rate_out() -> None:
    url = asr_url(
        "https://api.palabra.ai",
        AsrSettings(language="en", translate_languages=("es", "de")),
        "tok/en+=",
    )
    assert url == (
        "wss://api.palabra.ai/asr/v1/speech-to-text/stream?token=tok%2Fen%2B%3D"
        "&format=pcm_s16le&language=en&translate_languages=es,de"
    )


def test_asr_url_other_rate_and_filler_filter() -> None:
    settings = AsrSettings(sample_rate=24000, enable_filler_filter=False)
    url = asr_url("http://127.0.0.1:9000/", settings, "t")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "ws",
        "127.0.0.1:9000",
        "/asr/v1/speech-to-text/stream",
    )
    assert parse_qsl(parts.query) == [
        ("token", "t"),
        ("format", "pcm_s16le"),
        ("sample_rate", "24000"),
        ("language", "auto"),
        ("enable_filler_filter", "false"),
    ]
    assert settings.effective_sample_rate == 24000
    assert AsrSettings().effective_sample_rate == 16000


def test_asr_url_keeps_an_explicit_socket_path() -> None:
    url = asr_url("ws://h:1/custom/asr", AsrSettings(language="fr"), "x")
    assert url.startswith("ws://h:1/custom/asr?token=x&")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"format": "opus"}, "format must be one of"),
        ({"format": "pcm_f32le"}, "give its sample_rate"),
        ({"format": "wav", "sample_rate": 16000}, "carries its own sample rate"),
        ({"sample_rate": 4000}, "8000 to 48000"),
        ({"sample_rate": True}, "8000 to 48000"),
        ({"language": "english"}, "language code"),
        ({"language": ""}, "language code"),
        ({"translate_languages": ("es", "auto")}, "translate_languages"),
        ({"enable_filler_filter": "yes"}, "enable_filler_filter"),
    ],
)
def test_asr_settings_are_validated(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        AsrSettings(**kwargs)


def test_asr_single_target_string_becomes_a_tuple() -> None:
    assert AsrSettings(translate_languages="es").translate_languages == ("es",)  # type: ignore[arg-type]


def test_asr_url_needs_a_host() -> None:
    with pytest.raises(ConfigurationError, match="api_url"):
        asr_url("api.palabra.ai", AsrSettings(), "t")


_codes = st.sampled_from(["en", "es", "de", "fr", "en-us", "pt-br", "ja"])


@given(
    token=st.text(min_size=1, max_size=40),
    fmt=st.sampled_from(ASR_FORMATS),
    rate=st.sampled_from([None, 8000, 16000, 22050, 44100, 48000]),
    language=st.one_of(st.just("auto"), _codes),
    targets=st.lists(_codes, max_size=4),
    filler=st.sampled_from([None, True, False]),
)
def test_asr_query_round_trips(token, fmt, rate, language, targets, filler) -> None:  # type: ignore[no-untyped-def]
    try:
        settings = AsrSettings(language, tuple(targets), fmt, rate, filler)
    except ConfigurationError:
        raw = fmt in ASR_FORMATS[:7]
        assert (raw and rate is None and fmt != "pcm_s16le") or (not raw and rate is not None)
        return
    query = settings.query(token)
    pairs = dict(parse_qsl(query, keep_blank_values=True))
    assert pairs["token"] == token
    assert pairs["format"] == fmt
    assert pairs["language"] == language
    assert pairs.get("translate_languages", "") == ",".join(targets)
    if targets:
        assert "translate_languages=" + ",".join(targets) in query  # commas stay literal
    expect_rate = None if rate is None or (fmt == "pcm_s16le" and rate == 16000) else str(rate)
    assert pairs.get("sample_rate") == expect_rate
    assert pairs.get("enable_filler_filter") == (None if filler is None else str(filler).lower())
    assert query.startswith("token=")


# ---------------------------------------------------------------- ASR frames


def _asr(kind: str, text: str, *, eos: bool, lang: str = "en", tid: str = "s1") -> str:
    return json.dumps(
        {
            "message_type": kind,
            "transcription_id": tid,
            "language": lang,
            "is_eos": eos,
            "segment": {"text": text, "start_time": 0.5, "end_time": 1.25},
            "delta": {"text": text[-3:], "start_time": 1.0, "end_time": 1.25},
        }
    )


def test_partial_and_final_transcripts() -> None:
    partial = parse_asr_message(_asr("transcription", "hello wor", eos=False))
    assert isinstance(partial, Transcript) and partial.event_name == "transcript"
    assert (partial.text, partial.is_final, partial.is_eos) == ("hello wor", False, False)
    assert (partial.language, partial.id, partial.start, partial.end) == ("en", "s1", 0.5, 1.25)
    assert partial.is_translation is False
    assert partial.name == "transcript"
    assert partial["delta"]["text"] == "wor"
    final = parse_asr_message(_asr("transcription", "hello world", eos=True).encode())
    assert isinstance(final, Transcript) and final.is_final and final.text == "hello world"


def test_translation_frame() -> None:
    event = parse_asr_message(
        _asr("translated_transcription", "hola mundo", eos=True, lang="es"), source_language="en"
    )
    assert isinstance(event, Transcript)
    assert event.event_name == "translation"
    assert (event.text, event.source_language, event.target_language) == ("hola mundo", "en", "es")
    assert event.language == "es" and event.is_translation and event.is_eos
    assert (event.start, event.end, event.id) == (0.5, 1.25, "s1")


@pytest.mark.parametrize(
    ("frame", "code", "detail", "retryable"),
    [
        (
            '{"message_type":"error","data":{"code":"BAD_REQUEST","desc":"bad"}}',
            "BAD_REQUEST",
            "bad",
            False,
        ),
        (
            '{"message_type":"error","data":"{\\"code\\":\\"SERVICE_UNAVAILABLE\\",\\"desc\\":\\"later\\"}"}',
            "SERVICE_UNAVAILABLE",
            "later",
            True,
        ),
        (
            '{"message_type":"error","code":"CONFLICT","description":"busy"}',
            "CONFLICT",
            "busy",
            False,
        ),
        ('{"message_type":"error","data":{"desc":"no code"}}', "UNKNOWN_ERROR", "no code", False),
    ],
)
def test_error_frames(frame: str, code: str, detail: str, retryable: bool) -> None:
    error = parse_asr_message(frame)
    assert isinstance(error, ServerError)
    assert (error.code, error.detail, error.retryable) == (code, detail, retryable)


def test_unknown_frames_are_messages() -> None:
    event = parse_asr_message('{"message_type":"pipeline_timings","timings":{}}')
    assert isinstance(event, Message) and event.type == "pipeline_timings"
    assert event["timings"] == {}


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        '{"message_type":"transcription","segment":{"start_time":0}}',
        '{"message_type":"transcription","segment":"text"}',
    ],
)
def test_malformed_asr_frames_raise_remote_protocol_error(frame) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RemoteProtocolError):
        parse_asr_message(frame)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.one_of(
        st.text(),
        st.binary(),
        _json.map(json.dumps),
        st.fixed_dictionaries(
            {
                "message_type": st.sampled_from(
                    ["transcription", "translated_transcription", "error", "x"]
                )
            },
            optional={"segment": _json, "data": _json, "is_eos": _json, "language": _json},
        ).map(json.dumps),
    )
)
def test_any_asr_frame_gives_an_event_or_a_typed_error(frame) -> None:  # type: ignore[no-untyped-def]
    try:
        event = parse_asr_message(frame)
    except RemoteProtocolError:
        return
    assert isinstance(event, (Transcript, ServerError, Message))


# ------------------------------------------------------------------ TTS frames


def test_init_frame_bytes() -> None:
    assert build_init(TtsSettings()) == (
        '{"type":"init","language":"en","model":"auto","voice_options":{"voice_id":"default_low"},'
        '"output":{"format":"pcm","sample_rate":24000}}'
    )
    frame = json.loads(
        build_init(
            TtsSettings(
                "es",
                "default_high",
                speed=0.8,
                deaccent_strength=1.0,
                output_format="wav",
                sample_rate=16000,
            )
        )
    )
    assert frame["voice_options"] == {
        "voice_id": "default_high",
        "speed": 0.8,
        "deaccent_strength": 1.0,
    }
    assert frame["output"] == {"format": "wav", "sample_rate": 16000}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"language": "spanish"}, "language code"),
        ({"voice_id": ""}, "voice_id"),
        ({"output_format": "ogg"}, "output_format"),
        ({"sample_rate": 96000}, "8000 to 48000"),
        ({"speed": "fast"}, "speed"),
    ],
)
def test_tts_settings_are_validated(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        TtsSettings(**kwargs)


def test_text_frame_bytes_and_limit() -> None:
    assert build_text("Hi.", eos=True, generation_id="g1") == (
        '{"type":"text","text":"Hi.","is_eos":true,"generation_id":"g1"}'
    )
    assert json.loads(build_text("é", voice_options={"speed": 1.2}, reset_context=True)) == {
        "type": "text",
        "text": "é",
        "is_eos": False,
        "voice_options": {"speed": 1.2},
        "reset_context": True,
    }
    assert len(json.loads(build_text("x" * TEXT_LIMIT))["text"]) == TEXT_LIMIT
    with pytest.raises(ValueError, match="at most 256"):
        build_text("x" * (TEXT_LIMIT + 1))
    assert json.loads(build_text("y" * 1000, limit=1024))["text"] == "y" * 1000
    with pytest.raises(ValueError, match="voice option"):
        build_text("a", voice_options={"pitch": 2})
    assert build_cancel() == '{"type":"cancel"}'


def test_tts_url() -> None:
    assert tts_url("https://api.palabra.ai", "a.b.c") == (
        "wss://api.palabra.ai/tts-api/v1/text-to-speech/stream?token=a.b.c"
    )
    assert tts_url("ws://127.0.0.1:5/v1/text-to-speech/stream", "t") == (
        "ws://127.0.0.1:5/v1/text-to-speech/stream?token=t"
    )


def _chunk(audio: bytes, gid: str = "g1", last: bool = False) -> str:
    return json.dumps(
        {
            "message_type": "audio_chunk",
            "data": {
                "audio": base64.b64encode(audio).decode(),
                "size": len(audio),
                "generation_id": gid,
                "last_chunk": last,
                "chunk_generation_delta": None if last else 3,
                "audio_len": None if last else len(audio) / 48000,
            },
        }
    )


def test_pcm_chunks() -> None:
    decoder = TtsDecoder(TtsSettings())
    chunk = decoder.receive(_chunk(b"\x01\x00" * 240))
    assert isinstance(chunk, TtsChunk)
    assert chunk.name == "audio"
    assert chunk.audio == chunk.pcm == b"\x01\x00" * 240
    assert (chunk.generation_id, chunk.last_chunk, chunk.size) == ("g1", False, 480)
    assert chunk.audio_len == pytest.approx(0.01)
    assert chunk.audio_format.sample_rate == 24000
    end = decoder.receive(_chunk(b"", last=True))
    assert (
        isinstance(end, TtsChunk) and end.last_chunk and end.audio == b"" and end.audio_len is None
    )


def _wav_bytes(pcm: bytes, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


@given(
    pcm=st.binary(min_size=0, max_size=600).map(lambda b: b[: len(b) // 2 * 2]),
    cuts=st.lists(st.integers(0, 700), max_size=6),
)
def test_wav_header_is_removed_wherever_the_chunks_are_cut(pcm: bytes, cuts: list) -> None:
    data = _wav_bytes(pcm, 16000)
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    decoder = TtsDecoder(TtsSettings(output_format="wav", sample_rate=16000))
    got = b""
    audio = b""
    for a, b in zip(bounds, bounds[1:]):
        chunk = decoder.receive(_chunk(data[a:b]))
        assert isinstance(chunk, TtsChunk)
        got += chunk.pcm
        audio += chunk.audio
    decoder.receive(_chunk(b"", last=True))
    assert got == pcm
    assert audio == data


def test_wav_rate_from_the_header_wins() -> None:
    decoder = TtsDecoder(TtsSettings(output_format="wav"))
    chunk = decoder.receive(_chunk(_wav_bytes(b"\0\0" * 10, 22050)))
    assert isinstance(chunk, TtsChunk) and chunk.audio_format.sample_rate == 22050


def test_wav_that_is_not_mono_16_bit_is_a_protocol_error() -> None:
    header = (
        b"RIFF"
        + struct.pack("<I", 36)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 2, 8000, 32000, 4, 16)
    )
    decoder = TtsDecoder(TtsSettings(output_format="wav"))
    with pytest.raises(RemoteProtocolError, match="mono"):
        decoder.receive(_chunk(header + b"data" + struct.pack("<I", 0)))
    with pytest.raises(RemoteProtocolError, match="RIFF"):
        TtsDecoder(TtsSettings(output_format="wav")).receive(_chunk(b"ID3\x03" + b"\0" * 20))


def test_mp3_chunks_keep_the_bytes_in_audio() -> None:
    chunk = TtsDecoder(TtsSettings(output_format="mp3")).receive(_chunk(b"\xff\xfb\x90\x00"))
    assert isinstance(chunk, TtsChunk) and chunk.audio == b"\xff\xfb\x90\x00" and chunk.pcm == b""


def test_tts_errors_and_others() -> None:
    decoder = TtsDecoder(TtsSettings())
    error = decoder.receive(
        '{"message_type":"error","data":{"code":"RATE_LIMIT_EXCEEDED","desc":"slow down"}}'
    )
    assert (
        isinstance(error, ServerError) and error.retryable and error.code == "RATE_LIMIT_EXCEEDED"
    )
    other = decoder.receive('{"message_type":"tts_stats","data":{"n":1}}')
    assert isinstance(other, Message) and other.type == "tts_stats"
    for bad in (
        "{",
        '{"message_type":"audio_chunk","data":{"audio":"**"}}',
        '{"message_type":"audio_chunk","data":{"audio":5}}',
    ):
        with pytest.raises(RemoteProtocolError):
            decoder.receive(bad)


@given(
    st.one_of(
        st.text(),
        _json.map(json.dumps),
        st.fixed_dictionaries(
            {"message_type": st.sampled_from(["audio_chunk", "error"]), "data": _json}
        ).map(json.dumps),
    )
)
def test_any_tts_frame_gives_an_event_or_a_typed_error(frame: str) -> None:
    for fmt in ("pcm", "wav"):
        try:
            event = TtsDecoder(TtsSettings(output_format=fmt)).receive(frame)
        except RemoteProtocolError:
            continue
        assert isinstance(event, (TtsChunk, ServerError, Message))


# ------------------------------------------------------------------ details


def _config_error(make: object, **kwargs: object) -> str:
    with pytest.raises(ConfigurationError) as info:
        make(**kwargs)  # type: ignore[operator]
    return str(info.value)


def test_language_errors_name_the_setting_and_what_is_accepted() -> None:
    assert _config_error(AsrSettings, language="english") == (
        "language must be a language code such as 'en' or 'en-us' or \"auto\", got 'english'"
    )
    assert _config_error(AsrSettings, translate_languages=["es", "auto"]) == (
        "each of translate_languages must be a language code such as 'en' or 'en-us', got 'auto'"
    )
    assert _config_error(TtsSettings, language="auto") == (
        "language must be a language code such as 'en' or 'en-us', got 'auto'"
    )


def test_asr_settings_details() -> None:
    settings = AsrSettings(translate_languages=["es", "de"])  # type: ignore[arg-type]
    assert settings.translate_languages == ("es", "de")
    assert _config_error(AsrSettings, format="opus") == (
        f"format must be one of {', '.join(ASR_FORMATS)}, got 'opus'"
    )
    for rate in (16000.0, 48001, 7999):
        assert _config_error(AsrSettings, sample_rate=rate).startswith(
            "sample_rate must be an int from 8000 to 48000 Hz"
        )
    assert AsrSettings(sample_rate=48000).sample_rate == 48000
    assert _config_error(AsrSettings, format="mulaw") == (
        "format 'mulaw' is raw audio: give its sample_rate (only pcm_s16le defaults to 16000 Hz)"
    )


def test_socket_urls_follow_the_api_url() -> None:
    en = AsrSettings(language="en")
    assert asr_url("http://127.0.0.1:8080", en, "t").startswith("ws://127.0.0.1:8080/asr/")
    assert asr_url("wss://api.example", en, "t").startswith("wss://api.example/asr/")
    assert asr_url("WSS://api.example/", en, "t").startswith("wss://api.example/asr/")
    # an http(s) URL names the API's host: its path is not the socket's
    assert asr_url("https://api.example/v2", en, "t").startswith("wss://api.example/asr/")
    assert tts_url("wss://api.example", "t") == (
        "wss://api.example/tts-api/v1/text-to-speech/stream?token=t"
    )
    for bad in ("ftp://api.example", "https://"):
        assert _config_error(asr_url, api_url=bad, settings=en, token="t") == (
            f"api_url must be an http(s):// or ws(s):// URL with a host, got {bad!r}"
        )


def test_undecodable_frames_say_which_server_and_why() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_asr_message(b"\xff\xfe")
    assert str(info.value) == "the Palabra STT server sent a binary frame that is not JSON"
    long = "x" * 200
    with pytest.raises(RemoteProtocolError) as info:
        parse_asr_message(long)
    assert str(info.value) == f"the Palabra STT server sent a frame that is not JSON: {long[:80]!r}"
    with pytest.raises(RemoteProtocolError) as info:
        parse_asr_message("[1]")
    assert str(info.value) == "the Palabra STT server sent JSON that is not an object: list"
    with pytest.raises(RemoteProtocolError) as info:
        parse_asr_message('{"message_type": "translated_transcription", "segment": {}}')
    assert str(info.value) == (
        "the Palabra STT server sent a translated_transcription frame without segment.text"
    )
    with pytest.raises(RemoteProtocolError) as info:
        TtsDecoder(TtsSettings()).receive("{}}")
    assert str(info.value).startswith("the Palabra TTS server sent a frame that is not JSON")


def test_error_text_fallbacks_code_and_raw() -> None:
    for key in ("message", "msg"):
        data = {"code": "", key: "quota", "desc": ""}
        error = parse_asr_message(json.dumps({"message_type": "error", "data": data}))
        assert isinstance(error, ServerError)
        assert (error.code, error.detail) == ("UNKNOWN_ERROR", "quota")
        assert error.raw == data
    bare = parse_asr_message('{"message_type": "error", "data": {"code": "RATE_LIMIT_EXCEEDED"}}')
    assert isinstance(bare, ServerError) and bare.retryable
    assert bare.detail == "the service reported an error without a description"


def test_transcript_defaults_and_raw() -> None:
    frame = {"message_type": "transcription", "segment": {"text": "hi"}, "language": 5}
    partial = parse_asr_message(json.dumps(frame))  # no is_eos: a partial
    assert isinstance(partial, Transcript)
    assert partial.is_final is False and partial.id is None and partial.language is None
    assert partial.raw == frame
    frame = {"message_type": "translated_transcription", "segment": {"text": "hola"}}
    frame["transcription_id"] = 17
    translation = parse_asr_message(json.dumps(frame))  # translations are of finals
    assert isinstance(translation, Transcript)
    assert translation.is_final is True and translation.id == "17" and translation.raw == frame
    frame["is_eos"] = False
    assert parse_asr_message(json.dumps(frame)).is_final is False  # type: ignore[union-attr]
    untyped = parse_asr_message('{"seq": 1}')
    assert isinstance(untyped, Message) and untyped.type == "unknown"


def test_tts_settings_details() -> None:
    assert _config_error(TtsSettings, model="") == "model must be a non-empty string, got ''"
    assert _config_error(TtsSettings, output_format="ogg") == (
        "output_format must be one of pcm, wav, mp3, got 'ogg'"
    )
    assert _config_error(TtsSettings, sample_rate=24000.0) == (
        "sample_rate must be an int from 8000 to 48000 Hz, got 24000.0"
    )
    assert TtsSettings(sample_rate=8000).audio_format.sample_rate == 8000
    assert TtsSettings(sample_rate=48000).audio_format.sample_rate == 48000


def test_tts_socket_path_rules() -> None:
    path = "/tts-api/v1/text-to-speech/stream?token=t"
    assert tts_url("https://api.example/v2", "t") == "wss://api.example" + path
    assert tts_url("ws://127.0.0.1:5", "t") == "ws://127.0.0.1:5" + path
    assert tts_url("ws://127.0.0.1:5/", "t") == "ws://127.0.0.1:5" + path
    assert asr_url("ws://127.0.0.1:5", AsrSettings(), "t").startswith(
        "ws://127.0.0.1:5/asr/v1/speech-to-text/stream?"
    )
    assert asr_url("ws://127.0.0.1:5/", AsrSettings(), "t").startswith(
        "ws://127.0.0.1:5/asr/v1/speech-to-text/stream?"
    )


def test_text_frames_are_utf8_and_errors_say_what_to_do() -> None:
    assert build_text("Grüße, 世界") == '{"type":"text","text":"Grüße, 世界","is_eos":false}'
    assert build_init(TtsSettings(voice_id="stimme-ä")).count("stimme-ä") == 1
    assert _config_error(build_text, text=5) == "text must be a str, got int"
    assert _config_error(build_text, text="x" * 300).endswith(
        "one message holds at most 256: "
        "split it, or use speak_stream() which splits at sentence boundaries"
    )
    assert _config_error(build_text, text="a", voice_options={"tone": 1, "pitch": 2}) == (
        "unknown voice option(s) pitch, tone; use deaccent_strength, speed, voice_id"
    )


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(rate: int = 16000, tag: int = 1, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return b"fmt " + struct.pack("<IHHIIHH", 16, tag, channels, rate, rate * block, block, bits)


def _data(pcm: bytes) -> bytes:
    return b"data" + struct.pack("<I", len(pcm)) + pcm


def _wav_pcm(decoder: TtsDecoder, *pieces: bytes, gid: str = "g1") -> bytes:
    got = b""
    for piece in pieces:
        chunk = decoder.receive(_chunk(piece, gid=gid))
        assert isinstance(chunk, TtsChunk)
        got += chunk.pcm
    return got


def test_wav_headers_with_odd_and_extra_chunks() -> None:
    pcm = b"\x01\x02\x03\x04"
    odd = b"note" + struct.pack("<I", 3) + b"abc\0"  # odd size: one pad byte
    listing = b"LIST" + struct.pack("<I", 20) + b"INFOISFT" + b"voxsync-test"
    data = _riff(_fmt(), odd, listing, _data(pcm))
    decoder = TtsDecoder(TtsSettings(output_format="wav", sample_rate=16000))
    assert _wav_pcm(decoder, data) == pcm
    extensible = _riff(_fmt(tag=0xFFFE), _data(pcm))  # WAVE_FORMAT_EXTENSIBLE
    assert _wav_pcm(TtsDecoder(TtsSettings(output_format="wav")), extensible) == pcm


def test_wav_header_errors_say_what_is_wrong() -> None:
    for head in (b"RIFX" + bytes(4) + b"WAVE", b"RIFF" + bytes(4) + b"AVI "):  # exactly 12 bytes
        with pytest.raises(RemoteProtocolError) as info:
            TtsDecoder(TtsSettings(output_format="wav")).receive(_chunk(head))
        assert str(info.value) == "wav output does not start with a RIFF/WAVE header"
    with pytest.raises(RemoteProtocolError) as info:
        TtsDecoder(TtsSettings(output_format="wav")).receive(
            _chunk(_riff(_fmt(tag=3, bits=32), _data(b"")))
        )
    assert str(info.value) == "wav output is not 16-bit mono PCM (format 3, 1 channels, 32 bits)"


def test_wav_rate_is_known_once_the_fmt_chunk_is_in() -> None:
    data = _riff(_fmt(rate=16000), _data(b"\0\0"))
    decoder = TtsDecoder(TtsSettings(output_format="wav", sample_rate=24000))
    first = decoder.receive(_chunk(data[:36]))  # RIFF header and fmt chunk, nothing more
    assert isinstance(first, TtsChunk) and first.pcm == b""
    assert first.audio_format == AudioFormat(16000, 1, "pcm_s16le")


def test_wav_generations_are_stripped_separately_and_anew() -> None:
    one, two = b"\x01\x00" * 3, b"\x02\x00" * 5
    wav_one, wav_two = _riff(_fmt(), _data(one)), _riff(_fmt(), _data(two))
    decoder = TtsDecoder(TtsSettings(output_format="wav", sample_rate=16000))
    got_one = _wav_pcm(decoder, wav_one[:20], gid="g1")
    got_two = _wav_pcm(decoder, wav_two, gid="g2")  # interleaved with g1's
    got_one += _wav_pcm(decoder, wav_one[20:], gid="g1")
    assert (got_one, got_two) == (one, two)
    end = decoder.receive(_chunk(b"", gid="g1", last=True))
    assert isinstance(end, TtsChunk) and end.last_chunk
    # the same generation id again: a new WAV file with its own header
    assert _wav_pcm(decoder, wav_one, gid="g1") == one
    decoder.forget("g1")  # cancelled after its header: the next g1 starts over
    assert _wav_pcm(decoder, wav_two, gid="g1") == two
    decoder.forget("never-started")  # nothing to drop: no error
    decoder.forget(None)


def test_tts_chunk_defaults_raw_and_messages() -> None:
    decoder = TtsDecoder(TtsSettings())
    frame = {"message_type": "audio_chunk", "data": {"audio": "AAA=", "size": "2"}}
    chunk = decoder.receive(json.dumps(frame))
    assert isinstance(chunk, TtsChunk)
    assert (chunk.id, chunk.last, chunk.size) == (None, False, None)
    assert chunk.raw == frame
    flagged = decoder.receive(json.dumps({"message_type": "audio_chunk", "data": {"size": True}}))
    assert isinstance(flagged, TtsChunk) and flagged.size is None
    untyped = decoder.receive('{"data": {}}')
    assert isinstance(untyped, Message) and untyped.type == "unknown"
    assert untyped.raw == {"data": {}}
    for data, words in (
        ({"audio": 5}, "the Palabra TTS server sent audio that is not a string"),
        ({"audio": "**"}, "the Palabra TTS server sent audio that is not base64"),
    ):
        with pytest.raises(RemoteProtocolError) as info:
            decoder.receive(json.dumps({"message_type": "audio_chunk", "data": data}))
        assert str(info.value) == words


def test_wav_samples_after_the_header_pass_through_chunk_by_chunk() -> None:
    pcm = bytes(range(40))
    data = _riff(_fmt(), _data(pcm))
    header = len(data) - len(pcm)
    decoder = TtsDecoder(TtsSettings(output_format="wav", sample_rate=16000))
    pieces = [data[: header + 2], data[header + 2 : header + 6], data[header + 6 :]]
    got = [_wav_pcm(decoder, piece) for piece in pieces]
    assert got == [pcm[:2], pcm[2:6], pcm[6:]]
