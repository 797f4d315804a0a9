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


# ------------------------------------------------ task building: details
def test_build_task_overrides_add_nested_objects_and_are_copied() -> None:
    extra = {"speech_generation": {"voice_id": "v"}, "tts_options": {"pitch": [1, 2]}}
    task = build_task("en", {"es": extra})
    entry = task["pipeline"]["translations"][0]
    assert entry["tts_options"] == {"pitch": [1, 2]}
    entry["tts_options"]["pitch"].append(3)  # the task is the caller's to edit ...
    assert extra["tts_options"] == {"pitch": [1, 2]}  # ... without touching the overrides


def test_build_task_voice_for_every_target_and_message_types() -> None:
    task = build_task(
        "en", ["es", "fr"], voice_id="default_high", allowed_message_types=["eos", "error"]
    )
    voices = [t["speech_generation"] for t in task["pipeline"]["translations"]]
    assert voices == [{"voice_id": "default_high"}, {"voice_id": "default_high"}]
    assert task["pipeline"]["allowed_message_types"] == ["eos", "error"]


@pytest.mark.parametrize(
    ("source", "targets", "words"),
    [
        ("", "es", "source must be a language code such as 'en' (or 'auto')"),
        (None, "es", "source must be a language code such as 'en' (or 'auto')"),
        ("en", {"es": 3}, "targets['es'] must be a dict of overrides (or {}), got 3"),
        ("en", 5, "targets must be a language code, a list of codes or a dict of overrides"),
        ("en", [], "targets must name at least one language code such as 'es'"),
    ],
)
def test_build_task_errors_say_what_to_give(source: object, targets: object, words: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_task(source, targets)  # type: ignore[arg-type]
    assert str(info.value) == words


def test_task_input_format_defaults_and_channels() -> None:
    bare = {"input_stream": {"source": {"type": "ws"}}}
    assert codec.task_input_format(bare) == AudioFormat(24000, 1, "pcm_s16le")
    stereo = build_task("en", "es", input_sample_rate=16000, channels=2)
    assert codec.task_input_format(stereo) == AudioFormat(16000, 2, "pcm_s16le")


def test_task_input_format_errors_say_what_to_do() -> None:
    for task in ({}, {"input_stream": {"source": {"sample_rate": "fast"}}}):
        with pytest.raises(ConfigurationError) as info:
            codec.task_input_format(task)
        assert str(info.value) == (
            "the task has no usable input_stream.source; build it with build_task()"
        )
    with pytest.raises(ConfigurationError) as info:
        codec.task_input_format(build_task("en", "es", input_format="opus"))
    assert str(info.value) == (
        "input format 'opus': voxsync streams raw pcm_s16le; "
        "set input_stream.source.format to 'pcm_s16le'"
    )


def test_interrupt_frame_bytes() -> None:
    assert codec.interrupt_task_frame() == (
        '{"message_type":"interrupt_task","data":{"languages":["global"],"pause_task":false}}'
    )
    assert codec.interrupt_task_frame(["es"], pause_task=True) == (
        '{"message_type":"interrupt_task","data":{"languages":["es"],"pause_task":true}}'
    )


# ------------------------------------------------ parsing: details
def _malformed(frame: str | bytes, **kwargs: bool) -> str:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(frame, **kwargs)
    message = str(info.value)
    assert message.startswith("Palabra sent a malformed message: ")
    return message.split(": ", 1)[1]


def test_transcript_fields_and_defaults() -> None:
    flat = {"text": "hi", "language": "en", "transcription_id": 42}  # not wrapped
    t = parse_message(_frame("validated_transcription", flat))
    assert isinstance(t, Transcript)
    assert (t.text, t.language, t.id) == ("hi", "en", "42")
    assert t.raw == {"message_type": "validated_transcription", "data": flat}
    empty = parse_message(_frame("partial_transcription", {"transcription": {}}))
    assert isinstance(empty, Transcript) and empty.text == "" and empty.start is None
    for segments in ({"start": 1}, [5, "x"], [{"start": "0"}]):
        odd = parse_message(_frame("partial_transcription", {"text": "a", "segments": segments}))
        assert isinstance(odd, Transcript) and (odd.start, odd.end) == (None, None)


def test_malformed_transcripts_name_the_field() -> None:
    assert _malformed(_frame("validated_transcription", {"transcription": 3})) == (
        "validated_transcription.transcription should be an object"
    )
    assert _malformed(_frame("partial_transcription", {"text": ["a"]})) == (
        "partial_transcription.transcription.text should be a string"
    )
    assert _malformed(_frame("validated_transcription", {"text": "a", "language": ["en"]})) == (
        "validated_transcription.language should be a string, got list"
    )
    assert _malformed(_frame("partial_transcription", {"text": "", "transcription_id": True})) == (
        "partial_transcription.transcription_id should be a string, got bool"
    )


def test_audio_fields_defaults_and_raw_without_samples() -> None:
    pcm = b"\x01\x00\x02\x00"
    data = {"data": base64.b64encode(pcm).decode(), "language": "es", "transcription_id": 9}
    ev = parse_message(_frame("output_audio_data", data))  # uncompressed unless told
    assert isinstance(ev, Audio) and ev.pcm == pcm and ev.last is False and ev.id == "9"
    assert ev.raw == {
        "message_type": "output_audio_data",
        "data": {"data": "<audio>", "language": "es", "transcription_id": 9},
    }
    silent = parse_message(_frame("output_audio_data", {"last_chunk": True}))
    assert isinstance(silent, Audio) and silent.pcm == b"" and silent.last


@pytest.mark.parametrize(
    ("data", "compressed", "words"),
    [
        ({"data": 5}, False, "output_audio_data.data should be base64 text"),
        ({"data": "###"}, False, "output_audio_data.data is not valid base64"),
        ({"data": "AAAA"}, True, "output_audio_data.data is not zlib-compressed audio"),
        ({"data": "AAAA"}, False, "output_audio_data has 3 bytes, not whole 16-bit samples"),
        ({"last_chunk": 1}, False, "output_audio_data.last_chunk should be true or false"),
        ({"language": {}}, False, "output_audio_data.language should be a string, got dict"),
        ({"transcription_id": []}, False, "output_audio_data.transcription_id should be a string"),
    ],
)
def test_malformed_audio_names_the_problem(data: dict, compressed: bool, words: str) -> None:
    frame = _frame("output_audio_data", data)
    assert _malformed(frame, compressed_audio=compressed).startswith(words)


def test_undecodable_frames_say_why() -> None:
    assert _malformed(b"\xff\xfe{}") == "a frame that is not UTF-8"
    assert _malformed("{not json") == "not JSON (9 characters)"


def test_frames_without_a_type_keep_everything() -> None:
    bare = parse_message("[1, 2]")
    assert isinstance(bare, Raw) and bare.type == "" and bare.raw == {"data": [1, 2]}
    assert bare.data == [1, 2]
    untyped = parse_message(json.dumps({"data": json.dumps({"a": 1}), "seq": 4}))
    assert isinstance(untyped, Raw) and untyped.type == ""
    assert untyped.raw == {"data": {"a": 1}, "seq": 4}
    listed = parse_message(_frame("pipeline_timings", [1, 2]))
    assert isinstance(listed, Raw) and listed.type == "pipeline_timings"
    assert listed.raw == {"message_type": "pipeline_timings", "data": [1, 2]}


def test_end_markers_without_data() -> None:
    for frame in ('{"message_type": "eos"}', '{"message_type": "end_of_stream", "data": null}'):
        end = parse_message(frame)
        assert isinstance(end, StreamEnd), frame
        assert end.raw == {"message_type": end.type, "data": {}}


def test_task_messages_fields_raw_and_errors() -> None:
    data = {"task_status": "running", "pipeline": {}}
    info = parse_message(_frame("current_task", data))
    assert isinstance(info, TaskInfo)
    assert info.raw == {"message_type": "current_task", "data": data}
    ack_data = {"command": "end_task", "event": "stopped", "task_status": "ended"}
    ack = parse_message(_frame("task_status", ack_data))
    assert isinstance(ack, TaskInfo)
    assert (ack.status, ack.command, ack.change) == ("ended", "end_task", "stopped")
    assert ack.raw == {"message_type": "task_status", "data": ack_data}
    assert _malformed(_frame("current_task", {"task_status": [1]})) == (
        "current_task.task_status should be a string, got list"
    )
    for key in ("task_status", "command", "event"):
        assert _malformed(_frame("task_status", {key: {}})) == (
            f"task_status.{key} should be a string, got dict"
        )


def test_errors_and_warnings_text_codes_and_raw() -> None:
    for key in ("desc", "description", "message"):
        data = {"code": "VALIDATION_ERROR", key: "bad language"}
        err = parse_message(_frame("error", data))
        assert isinstance(err, ServerError) and err.desc == "bad language", key
        assert err.raw == {"message_type": "error", "data": data}
    silent = parse_message(_frame("error", {"code": "X"}))
    assert isinstance(silent, ServerError) and silent.desc == ""
    structured = parse_message(_frame("error", {"code": "X", "desc": {"field": "lang"}}))
    assert isinstance(structured, ServerError) and structured.desc == '{"field": "lang"}'
    assert _malformed(_frame("error", {"code": ["X"]})) == "error.code should be a string, got list"
    data = {"code": "AUDIO_STREAM_STALLED", "desc": "no audio"}
    stalled = parse_message(_frame("error", data))  # a warning code, whatever the type
    assert isinstance(stalled, ServerWarning) and stalled.message == "no audio"
    assert stalled.raw == {"message_type": "error", "data": data}
    plain = parse_message(_frame("warning", {"desc": "slow down"}))
    assert isinstance(plain, ServerWarning)
    assert (plain.code, plain.message) == ("UNKNOWN_WARNING", "slow down")
