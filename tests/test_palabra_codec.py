"""The sans-I/O Palabra codec: task building, frames, parsing (byte-level and fuzzed)."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxsync.audio import AudioFormat
from voxsync.errors import ConfigurationError, RemoteProtocolError
from voxsync.errors import ServerError as VoxServerError
from voxsync.palabra import (
    Audio,
    Raw,
    ServerError,
    ServerWarning,
    StreamEnd,
    TaskInfo,
    Transcript,
    build_task,
    codec,
    parse_message,
)


def test_build_task_default_shape() -> None:
    task = build_task("en", "es")
    assert task == {
        "input_stream": {
            "content_type": "audio",
            "source": {"type": "ws", "format": "pcm_s16le", "sample_rate": 24000, "channels": 1},
        },
        "output_stream": {"content_type": "audio", "target": {"type": "ws", "format": "pcm_s16le"}},
        "pipeline": {
            "transcription": {"source_language": "en"},
            "translations": [{"target_language": "es", "speech_generation": {}}],
            "allowed_message_types": [
                "translated_transcription",
                "partial_transcription",
                "validated_transcription",
            ],
        },
    }


def test_build_task_readme_option_sets() -> None:
    inline = build_task("auto", ["es", "fr"], translate_partials=True, silence_threshold=0.8)
    pipeline = inline["pipeline"]
    assert pipeline["transcription"] == {
        "source_language": "auto",
        "segment_confirmation_silence_threshold": 0.8,
    }
    assert [t["target_language"] for t in pipeline["translations"]] == ["es", "fr"]
    assert all(t["translate_partial_transcriptions"] for t in pipeline["translations"])

    task = build_task(
        "en",
        {"es": {"speech_generation": {"voice_id": "default_high"}}, "fr": {}},
        input_sample_rate=48000,
    )
    task["pipeline"]["transcription"]["silence_threshold"] = 0.75
    es, fr = task["pipeline"]["translations"]
    assert es["speech_generation"] == {"voice_id": "default_high"}
    assert fr == {"target_language": "fr", "speech_generation": {}}
    assert task["input_stream"]["source"]["sample_rate"] == 48000
    assert codec.task_input_format(task) == AudioFormat(48000, 1, "pcm_s16le")


def test_build_task_voice_options_and_overrides_merge() -> None:
    task = build_task(
        "en",
        {"es": {"speech_generation": {"voice_id": "custom"}}},
        voice_id="default_low",
        voice_cloning=True,
    )
    assert task["pipeline"]["translations"][0]["speech_generation"] == {
        "voice_id": "custom",
        "voice_cloning": True,
    }


@pytest.mark.parametrize("targets", [[], {}, "", [""], 5, {"es": 3}])
def test_build_task_rejects_unsendable_targets(targets: object) -> None:
    with pytest.raises(ConfigurationError):
        build_task("en", targets)  # type: ignore[arg-type]


def test_task_input_format_refuses_non_pcm() -> None:
    task = build_task("en", "es", input_format="opus")
    with pytest.raises(ConfigurationError, match="pcm_s16le"):
        codec.task_input_format(task)


def test_frames_byte_exact() -> None:
    assert codec.get_task_frame() == '{"message_type":"get_task","data":{}}'
    assert codec.pause_task_frame() == '{"message_type":"pause_task","data":{}}'
    assert codec.end_task_frame() == '{"message_type":"end_task","data":{}}'
    assert codec.end_task_frame(eos_timeout=4) == (
        '{"message_type":"end_task","data":{"eos_timeout":4}}'
    )
    assert codec.end_task_frame(force=True) == '{"message_type":"end_task","data":{"force":true}}'
    assert codec.flush_task_frame() == (
        '{"message_type":"flush_task","data":{"languages":["global"],"pause_task":false}}'
    )
    assert codec.tts_task_frame("Hola!", "es") == (
        '{"message_type":"tts_task","data":{"text":"Hola!","language":"es","translate_text":false}}'
    )
    assert codec.audio_frame(b"\x01\x00\xff\x7f") == (
        '{"message_type":"input_audio_data","data":{"data":"AQD/fw=="}}'
    )
    task = build_task("en", "es")
    assert json.loads(codec.set_task_frame(task)) == {"message_type": "set_task", "data": task}


def _frame(message_type: str, data: object, double: bool = False) -> str:
    return json.dumps({"message_type": message_type, "data": json.dumps(data) if double else data})


@pytest.mark.parametrize("double", [False, True])
def test_parse_transcripts(double: bool) -> None:
    body = {
        "transcription": {
            "transcription_id": "t1",
            "language": "en",
            "text": "hello",
            "segments": [{"text": "hello", "start": 0.5, "end": 1.0}],
        }
    }
    partial = parse_message(_frame("partial_transcription", body, double))
    assert isinstance(partial, Transcript)
    assert (partial.text, partial.is_final, partial.is_eos, partial.id) == (
        "hello",
        False,
        False,
        "t1",
    )
    assert (partial.start, partial.end) == (0.5, 1.0)
    assert partial.event_name == "transcript" and str(partial) == "~ [en] hello"
    final = parse_message(_frame("validated_transcription", body, double))
    assert isinstance(final, Transcript) and final.is_final and not final.is_translation
    assert str(final) == "[en] hello"
    assert isinstance(parse_message(_frame("transcription", body)), Transcript)
    assert not parse_message(_frame("transcription", body)).is_final  # type: ignore[union-attr]
    body["transcription"]["language"] = "es"
    tr = parse_message(_frame("translated_transcription", body, double))
    assert isinstance(tr, Transcript) and tr.is_translation and tr.is_final
    assert tr.event_name == "translation" and tr.target_language == "es"
    ptr = parse_message(_frame("partial_translated_transcription", body, double))
    assert isinstance(ptr, Transcript) and ptr.is_translation and not ptr.is_final


@pytest.mark.parametrize("compressed", [False, True])
def test_parse_output_audio(compressed: bool) -> None:
    pcm = bytes(range(256)) * 4
    payload = zlib.compress(pcm) if compressed else pcm
    data = {
        "transcription_id": "t1",
        "translation_part_id": "0",
        "language": "es",
        "last_chunk": True,
        "data": base64.b64encode(payload).decode(),
    }
    ev = parse_message(_frame("output_audio_data", data), compressed_audio=compressed)
    assert isinstance(ev, Audio)
    assert ev.pcm == pcm and ev.last_chunk and ev.language == "es" and ev.id == "t1"
    assert ev.audio_format == AudioFormat(24000, 1, "pcm_s16le")
    assert ev.event_name == "audio"


def test_parse_control_messages() -> None:
    info = parse_message(_frame("current_task", {"pipeline": {}, "task_status": "running"}))
    assert isinstance(info, TaskInfo) and info.status == "running" and info.task == {"pipeline": {}}
    ack = parse_message(
        _frame("task_status", {"command": "set_task", "event": "started", "task_status": "running"})
    )
    assert isinstance(ack, TaskInfo) and (ack.command, ack.change) == ("set_task", "started")
    for marker in ("eos", "end_of_stream"):
        end = parse_message(_frame(marker, {}))
        assert (
            isinstance(end, StreamEnd) and end.type == marker and end.event_name == "end_of_stream"
        )
    err = parse_message(_frame("error", {"code": "VALIDATION_ERROR", "desc": "bad"}))
    assert isinstance(err, ServerError) and isinstance(err, VoxServerError)
    assert (err.code, err.desc) == ("VALIDATION_ERROR", "bad")
    no_code = parse_message(_frame("error", {"desc": "oops"}))
    assert isinstance(no_code, ServerError) and no_code.code == "UNKNOWN_ERROR"
    warn = parse_message(_frame("warning", {"code": "AUDIO_STREAM_TOO_FAST", "desc": "fast"}))
    assert isinstance(warn, ServerWarning) and warn.code == "AUDIO_STREAM_TOO_FAST"
    assert warn.event_name == "warning"
    raw = parse_message(_frame("pipeline_timings", {"x": 1}))
    assert isinstance(raw, Raw) and raw.type == "pipeline_timings" and raw.data == {"x": 1}


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        b"\xff\xfe",
        _frame("output_audio_data", {"data": "###"}),
        _frame("output_audio_data", {"data": 5}),
        _frame("output_audio_data", {"data": "AA==", "last_chunk": False}),
        _frame("output_audio_data", {"data": "", "last_chunk": "yes"}),
        _frame("validated_transcription", {"transcription": {"text": 5}}),
        _frame("validated_transcription", {"transcription": []}),
    ],
)
def test_malformed_frames_raise_typed(frame: str) -> None:
    with pytest.raises(RemoteProtocolError, match="malformed"):
        parse_message(frame)


@pytest.mark.parametrize(
    "frame", ["[]", "5", '"x"', "null", '{"data": {}}', '{"message_type": "x", "data": [1]}']
)
def test_odd_but_valid_json_is_raw(frame: str) -> None:
    assert isinstance(parse_message(frame), Raw)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_types = st.sampled_from(
    [
        "partial_transcription",
        "validated_transcription",
        "translated_transcription",
        "partial_translated_transcription",
        "output_audio_data",
        "current_task",
        "task_status",
        "eos",
        "error",
        "warning",
        "other",
    ]
)


@settings(max_examples=300, deadline=None)
@given(message_type=_types, data=_json, double=st.booleans())
def test_fuzzed_messages_never_crash(message_type: str, data: object, double: bool) -> None:
    frame = _frame(message_type, data, double)
    try:
        ev = parse_message(frame)
    except RemoteProtocolError:
        return
    assert ev.event_name in {
        "transcript",
        "translation",
        "audio",
        "task",
        "end_of_stream",
        "error",
        "warning",
        "message",
    }


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_never_crash(data: bytes) -> None:
    try:
        parse_message(data)
    except RemoteProtocolError:
        pass
