"""Sans-I/O Recognition (H2B) codec: byte-exact frames, state machine, fuzzing."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxsync.errors import (
    ConfigurationError,
    LocalProtocolError,
    RemoteProtocolError,
    ServerError,
)
from voxsync.uhlive.recognition import (
    Closed,
    CompletionCause,
    DefaultParams,
    GrammarDefined,
    InputTimersStarted,
    InvalidParamValue,
    InvalidParamValueError,
    MethodFailed,
    MethodFailedError,
    MethodNotAllowed,
    MethodNotAllowedError,
    MethodNotValid,
    MethodNotValidError,
    MissingParam,
    MissingParamError,
    Opened,
    ParamsSet,
    RecognitionComplete,
    RecognitionEvent,
    RecognitionInProgress,
    Recognizer,
    RecognizerState,
    StartOfInput,
    Stopped,
    UnknownEvent,
    error_from_event,
    parse_event,
)

CHANNEL = "testuie46e4ui6"


def event(name: str, request_id: int = 1, channel_id: str = CHANNEL, **extra: Any) -> str:
    frame: Dict[str, Any] = {
        "event": name,
        "request_id": request_id,
        "channel_id": channel_id,
        "headers": {},
        "completion_cause": None,
        "completion_reason": None,
        "body": "",
    }
    frame.update(extra)
    return json.dumps(frame)


def opened_recognizer(**kwargs: Any) -> Recognizer:
    rec = Recognizer(**kwargs)
    rec.open()
    rec.receive(event("OPENED", 0))
    return rec


def recognizing(rec: Recognizer) -> Recognizer:
    rec.recognize("builtin:speech/boolean")
    rec.receive(event("RECOGNITION-IN-PROGRESS", rec.last_request_id or 0))
    return rec


# ------------------------------------------------------------------ byte-exact frames


def test_open_frame_is_byte_exact() -> None:
    rec = Recognizer()
    frame = rec.open(custom_id="mycustomer", channel_id="mychan")
    assert frame == (
        '{"command":"OPEN","request_id":1,"channel_id":"mychan","headers":'
        '{"custom_id":"mycustomer","audio_codec":"linear","session_id":""},"body":""}'
    )


def test_define_grammar_and_recognize_frames_are_byte_exact() -> None:
    rec = Recognizer(first_request_id=0)
    rec.open()
    rec.receive(event("OPENED", 0))
    assert rec.channel_id == CHANNEL
    grammar = rec.define_grammar(
        "parcel_num", "builtin:speech/spelling/mixed?regex=[a-z]{2}[0-9]{9}[a-z]{2}"
    )
    assert grammar == (
        '{"command":"DEFINE-GRAMMAR","request_id":1,"channel_id":"testuie46e4ui6",'
        '"headers":{"content_id":"parcel_num","content_type":"text/uri-list"},'
        '"body":"builtin:speech/spelling/mixed?regex=[a-z]{2}[0-9]{9}[a-z]{2}"}'
    )
    recognize = rec.recognize("session:parcel_num", no_input_timeout=5000)
    assert recognize == (
        '{"command":"RECOGNIZE","request_id":2,"channel_id":"testuie46e4ui6",'
        '"headers":{"recognition_mode":"normal","content_type":"text/uri-list",'
        '"start_input_timers":true,"no_input_timeout":5000},"body":"session:parcel_num"}'
    )


def test_other_commands_are_compact_and_keep_non_ascii() -> None:
    rec = opened_recognizer()
    assert rec.set_params(speech_language="fr", logging_tag="café") == (
        '{"command":"SET-PARAMS","request_id":2,"channel_id":"testuie46e4ui6",'
        '"headers":{"speech_language":"fr","logging_tag":"café"},"body":""}'
    )
    assert rec.get_params() == (
        '{"command":"GET-PARAMS","request_id":3,"channel_id":"testuie46e4ui6",'
        '"headers":{},"body":""}'
    )
    hotword = rec.recognize(
        "builtin:speech/boolean",
        "session:x",
        recognition_mode="hotword",
        start_input_timers=False,
    )
    assert hotword == (
        '{"command":"RECOGNIZE","request_id":4,"channel_id":"testuie46e4ui6",'
        '"headers":{"recognition_mode":"hotword","content_type":"text/uri-list",'
        '"start_input_timers":false},"body":"builtin:speech/boolean\\nsession:x"}'
    )
    rec.receive(event("RECOGNITION-IN-PROGRESS", 4))
    assert rec.start_input_timers() == (
        '{"command":"START-INPUT-TIMERS","request_id":5,"channel_id":"testuie46e4ui6",'
        '"headers":{},"body":""}'
    )
    assert json.loads(rec.stop())["command"] == "STOP"
    rec.receive(event("STOPPED", 6))
    assert rec.close() == (
        '{"command":"CLOSE","request_id":7,"channel_id":"testuie46e4ui6","headers":{},"body":""}'
    )


def test_define_grammar_adds_the_builtin_prefix() -> None:
    rec = opened_recognizer()
    assert (
        json.loads(rec.define_grammar("yn", "speech/boolean"))["body"] == "builtin:speech/boolean"
    )


def test_audio_chunk_is_the_raw_bytes() -> None:
    rec = Recognizer()
    with pytest.raises(LocalProtocolError):
        rec.send_audio_chunk(b"\x00\x00")
    rec.open()
    assert rec.send_audio_chunk(bytearray(b"\x01\x02")) == b"\x01\x02"


# ------------------------------------------------------------------ request ids


def test_request_id_counts_commands_and_reading_it_changes_nothing() -> None:
    rec = Recognizer()
    assert rec.last_request_id is None
    rec.open()
    assert rec.last_request_id == 1
    assert rec.last_request_id == 1  # reading twice does not advance
    rec.receive(event("OPENED", 0))
    ids = [json.loads(rec.get_params())["request_id"] for _ in range(3)]
    assert ids == [2, 3, 4]
    assert rec.last_request_id == 4


def test_refused_arguments_do_not_consume_a_request_id() -> None:
    rec = opened_recognizer()
    with pytest.raises(ConfigurationError, match="must be JSON values"):
        rec.set_params(bad=object())
    with pytest.raises(ConfigurationError, match="must be JSON values"):
        rec.set_params(nan=float("nan"))
    assert json.loads(rec.get_params())["request_id"] == 2


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: r.recognize(), "at least one grammar"),
        (lambda r: r.recognize("speech/boolean"), "grammar must be a one-line"),
        (lambda r: r.recognize("builtin:a\nbuiltin:b"), "grammar must be a one-line"),
        (
            lambda r: r.recognize("builtin:speech/boolean", recognition_mode="fast"),
            "recognition_mode must be 'normal' or 'hotword'",
        ),
        (lambda r: r.define_grammar("", "builtin:speech/boolean"), "alias must be a non-empty"),
        (lambda r: r.define_grammar("a b", "builtin:speech/boolean"), "alias must be a non-empty"),
        (lambda r: r.define_grammar("ok", ""), "uri must be a non-empty"),
    ],
)
def test_bad_arguments_raise_configuration_error(call: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        call(opened_recognizer())


def test_bad_audio_codec() -> None:
    with pytest.raises(ConfigurationError, match="audio_codec"):
        Recognizer().open(audio_codec="opus")


# ------------------------------------------------------------------ state machine


def test_full_session_state_transitions() -> None:
    rec = Recognizer()
    assert rec.state is RecognizerState.NO_SESSION
    rec.open(channel_id="bot-")
    assert rec.opening and rec.state is RecognizerState.NO_SESSION
    ev = rec.receive(event("OPENED", 1, "bot-1a2b"))
    assert isinstance(ev, Opened)
    assert rec.state is RecognizerState.IDLE_SESSION and rec.channel_id == "bot-1a2b"
    assert not rec.opening
    rec.recognize("builtin:speech/boolean")
    assert rec.state is RecognizerState.IDLE_SESSION  # until the server accepts
    assert isinstance(rec.receive(event("RECOGNITION-IN-PROGRESS", 2)), RecognitionInProgress)
    assert rec.state is RecognizerState.RECOGNITION
    assert isinstance(rec.receive(event("START-OF-INPUT", 2)), StartOfInput)
    assert rec.state is RecognizerState.RECOGNITION
    done = rec.receive(event("RECOGNITION-COMPLETE", 2, completion_cause="NoInputTimeout"))
    assert isinstance(done, RecognitionComplete)
    assert rec.state is RecognizerState.IDLE_SESSION
    rec.close()
    assert rec.closing
    assert isinstance(rec.receive(event("CLOSED", 3)), Closed)
    assert rec.state is RecognizerState.NO_SESSION and not rec.closing


@pytest.mark.parametrize(
    ("setup", "command"),
    [
        ("none", lambda r: r.get_params()),
        ("none", lambda r: r.set_params(a=1)),
        ("none", lambda r: r.define_grammar("a", "builtin:speech/boolean")),
        ("none", lambda r: r.recognize("builtin:speech/boolean")),
        ("none", lambda r: r.stop()),
        ("none", lambda r: r.close()),
        ("opening", lambda r: r.open()),
        ("idle", lambda r: r.open()),
        ("idle", lambda r: r.stop()),
        ("idle", lambda r: r.start_input_timers()),
        ("recognition", lambda r: r.recognize("builtin:speech/boolean")),
        ("recognition", lambda r: r.set_params(a=1)),
        ("recognition", lambda r: r.get_params()),
        ("recognition", lambda r: r.define_grammar("a", "builtin:speech/boolean")),
        ("recognition", lambda r: r.close()),
        ("closing", lambda r: r.get_params()),
        ("closing", lambda r: r.close()),
    ],
)
def test_commands_in_the_wrong_state_raise_local_protocol_error(setup: str, command: Any) -> None:
    rec = Recognizer()
    if setup == "opening":
        rec.open()
    elif setup in ("idle", "recognition", "closing"):
        rec = opened_recognizer()
        if setup == "recognition":
            recognizing(rec)
        elif setup == "closing":
            rec.close()
    before = (rec.state, rec.last_request_id)
    with pytest.raises(LocalProtocolError) as info:
        command(rec)
    assert "cannot send" in str(info.value)
    assert (rec.state, rec.last_request_id) == before


def test_stop_returns_to_idle() -> None:
    rec = recognizing(opened_recognizer())
    rec.stop()
    assert isinstance(rec.receive(event("STOPPED", 3)), Stopped)
    assert rec.state is RecognizerState.IDLE_SESSION


def test_refused_open_allows_a_new_open() -> None:
    rec = Recognizer()
    rec.open(audio_codec="g711a")
    ev = rec.receive(event("METHOD-FAILED", 1, "", completion_cause="Error"))
    assert isinstance(ev, MethodFailed)
    assert not rec.opening
    rec.open()  # no LocalProtocolError


def test_refused_close_allows_commands_again() -> None:
    rec = opened_recognizer()
    rec.close()
    rec.receive(event("METHOD-NOT-ALLOWED", 2))
    assert not rec.closing
    rec.get_params()


def test_late_events_do_not_break_the_state() -> None:
    rec = opened_recognizer()
    rec.receive(event("RECOGNITION-COMPLETE", 9))  # e.g. raced with a STOP
    rec.receive(event("STOPPED", 9))
    assert rec.state is RecognizerState.IDLE_SESSION


# ------------------------------------------------------------------ events


def test_recognition_complete_example_from_the_protocol() -> None:
    frame = (
        '{"event":"RECOGNITION-COMPLETE","request_id":5,"channel_id":"bot-1a2b","headers":{},'
        '"completion_cause":"Success","completion_reason":"success","body":{"asr":'
        '{"transcript":"oui","confidence":0.97,"start":1732207126566,"end":1732207127100},'
        '"nlu":{"type":"builtin:speech/boolean","value":true,"confidence":0.95},'
        '"grammar_uri":"builtin:speech/boolean"}}'
    )
    ev = parse_event(frame)
    assert isinstance(ev, RecognitionComplete)
    assert ev.completion_cause == CompletionCause.SUCCESS and ev.success
    assert ev.asr is not None and ev.asr.transcript == "oui" and ev.asr.confidence == 0.97
    assert ev.asr.start == 1732207126566 and ev.asr.end == 1732207127100
    assert ev.nlu is not None and ev.nlu.value is True and ev.nlu.type == "builtin:speech/boolean"
    assert ev.value is True and ev.transcript == "oui" and str(ev) == "oui"
    assert ev.grammar_uri == "builtin:speech/boolean"
    assert ev.alternatives == ()
    assert ev["completion_reason"] == "success" and ev.get("nope", 1) == 1
    assert ev.name == "recognition_complete" and ev.type == "RECOGNITION-COMPLETE"


def test_recognition_complete_with_alternatives_and_no_match() -> None:
    body = {
        "asr": {"transcript": "a b", "confidence": 0.4, "phones": "ey b"},
        "nlu": None,
        "grammar_uri": "session:parcel",
        "asr_model": "m1",
        "version": "2",
        "alternatives": [
            {"asr": {"transcript": "a p", "confidence": 0.3}, "nlu": None},
            {"asr": None, "nlu": {"type": "builtin:x", "value": [1], "confidence": 0.1}},
        ],
    }
    ev = parse_event(event("RECOGNITION-COMPLETE", completion_cause="NoMatch", body=body))
    assert isinstance(ev, RecognitionComplete)
    assert not ev.success and ev.value is None and ev.nlu is None
    assert ev.asr is not None and ev.asr.phones == "ey b"
    assert ev.asr_model == "m1" and ev.version == "2"
    assert [a.asr.transcript if a.asr else None for a in ev.alternatives] == ["a p", None]
    assert ev.alternatives[1].nlu is not None and ev.alternatives[1].nlu.value == [1]


def test_no_input_timeout_without_body() -> None:
    for body in ("", None):
        ev = parse_event(
            event("RECOGNITION-COMPLETE", completion_cause="NoInputTimeout", body=body)
        )
        assert isinstance(ev, RecognitionComplete)
        assert ev.asr is None and ev.nlu is None and ev.transcript == "" and ev.value is None


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("OPENED", Opened),
        ("PARAMS-SET", ParamsSet),
        ("DEFAULT-PARAMS", DefaultParams),
        ("GRAMMAR-DEFINED", GrammarDefined),
        ("RECOGNITION-IN-PROGRESS", RecognitionInProgress),
        ("INPUT-TIMERS-STARTED", InputTimersStarted),
        ("START-OF-INPUT", StartOfInput),
        ("RECOGNITION-COMPLETE", RecognitionComplete),
        ("STOPPED", Stopped),
        ("CLOSED", Closed),
        ("METHOD-NOT-VALID", MethodNotValid),
        ("METHOD-FAILED", MethodFailed),
        ("INVALID-PARAM-VALUE", InvalidParamValue),
        ("MISSING-PARAM", MissingParam),
        ("METHOD-NOT-ALLOWED", MethodNotAllowed),
        ("SOMETHING-NEW", UnknownEvent),
    ],
)
def test_every_event_name_has_its_class(name: str, cls: type) -> None:
    ev = parse_event(event(name, 7).encode())
    assert type(ev) is cls
    assert ev.type == name and ev.request_id == 7 and ev.channel_id == CHANNEL


def test_default_params_exposes_headers() -> None:
    ev = parse_event(event("DEFAULT-PARAMS", headers={"no_input_timeout": 5000}))
    assert isinstance(ev, DefaultParams)
    assert ev.params == {"no_input_timeout": 5000}


@pytest.mark.parametrize("cause", sorted(CompletionCause.ALL))
def test_every_completion_cause_is_kept(cause: str) -> None:
    ev = parse_event(event("RECOGNITION-COMPLETE", completion_cause=cause))
    assert ev.completion_cause == cause
    assert isinstance(ev, RecognitionComplete)
    assert ev.success == (
        cause in ("Success", "SuccessMaxtime", "PartialMatch", "PartialMatchMaxtime")
    )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("METHOD-NOT-VALID", MethodNotValidError),
        ("METHOD-FAILED", MethodFailedError),
        ("INVALID-PARAM-VALUE", InvalidParamValueError),
        ("MISSING-PARAM", MissingParamError),
        ("METHOD-NOT-ALLOWED", MethodNotAllowedError),
    ],
)
def test_refusals_map_to_typed_errors(name: str, error: type) -> None:
    ev = parse_event(
        event(
            name, 3, completion_cause="GramLoadFailure", completion_reason="unknown grammar 'toto'"
        )
    )
    err = error_from_event(ev)
    assert isinstance(err, error) and isinstance(err, ServerError)
    assert err.code == "GramLoadFailure" and err.detail == "unknown grammar 'toto'"
    assert err.event is ev and err["request_id"] == 3


def test_refusal_without_cause_uses_the_event_name() -> None:
    err = error_from_event(parse_event(event("METHOD-NOT-ALLOWED")))
    assert err is not None and err.code == "METHOD-NOT-ALLOWED"
    assert error_from_event(parse_event(event("PARAMS-SET"))) is None


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "not json",
        "[1,2]",
        "42",
        '{"request_id":1}',
        '{"event":3}',
        '{"event":"OPENED","request_id":"1","channel_id":""}',
        '{"event":"OPENED","request_id":true,"channel_id":""}',
        '{"event":"OPENED","request_id":1,"channel_id":5}',
        '{"event":"OPENED","request_id":1,"channel_id":"","headers":[]}',
        '{"event":"OPENED","request_id":1,"channel_id":"","completion_cause":1}',
        '{"event":"OPENED","request_id":1,"channel_id":"","body":[1]}',
        '{"event":"RECOGNITION-COMPLETE","request_id":1,"channel_id":"","body":{"asr":1}}',
        '{"event":"RECOGNITION-COMPLETE","request_id":1,"channel_id":"",'
        '"body":{"asr":{"transcript":1}}}',
        '{"event":"RECOGNITION-COMPLETE","request_id":1,"channel_id":"",'
        '"body":{"asr":{"transcript":"a","confidence":"high"}}}',
        '{"event":"RECOGNITION-COMPLETE","request_id":1,"channel_id":"","body":{"nlu":{"type":3}}}',
        '{"event":"RECOGNITION-COMPLETE","request_id":1,"channel_id":"",'
        '"body":{"alternatives":{}}}',
        '{"event":"RECOGNITION-COMPLETE","request_id":1,"channel_id":"",'
        '"body":{"alternatives":[1]}}',
        "[" * 100000,
        b"\xff\xfe",
    ],
)
def test_malformed_frames_raise_remote_protocol_error(frame: Any) -> None:
    rec = opened_recognizer()
    with pytest.raises(RemoteProtocolError):
        rec.receive(frame)
    assert rec.state is RecognizerState.IDLE_SESSION


# ------------------------------------------------------------------ property tests

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

event_names = st.sampled_from(
    [
        "OPENED",
        "RECOGNITION-IN-PROGRESS",
        "RECOGNITION-COMPLETE",
        "STOPPED",
        "CLOSED",
        "METHOD-FAILED",
        "START-OF-INPUT",
        "DEFAULT-PARAMS",
    ]
) | st.text(max_size=20)

frame_dicts = st.fixed_dictionaries(
    {},
    optional={
        "event": event_names | json_values,
        "request_id": st.integers() | json_values,
        "channel_id": st.text(max_size=10) | json_values,
        "headers": st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values,
        "completion_cause": st.sampled_from(sorted(CompletionCause.ALL)) | json_values,
        "completion_reason": st.text(max_size=10) | json_values,
        "body": st.fixed_dictionaries(
            {},
            optional={
                "asr": json_values
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "transcript": json_values,
                        "confidence": json_values,
                        "start": json_values,
                        "end": json_values,
                        "phones": json_values,
                    },
                ),
                "nlu": json_values
                | st.fixed_dictionaries(
                    {},
                    optional={"type": json_values, "value": json_values, "confidence": json_values},
                ),
                "grammar_uri": json_values,
                "alternatives": json_values,
            },
        )
        | json_values,
    },
)


def _receive_or_typed_error(rec: Recognizer, data: Any) -> None:
    before = (rec.state, rec.channel_id)
    try:
        ev = rec.receive(data)
    except RemoteProtocolError:
        assert (rec.state, rec.channel_id) == before
        return
    assert isinstance(ev, RecognitionEvent)
    repr(ev)
    str(ev)
    if isinstance(ev, UnknownEvent):
        assert ev.name == "message"


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary())
def test_arbitrary_frames_never_crash(data: Any) -> None:
    _receive_or_typed_error(opened_recognizer(), data)


@settings(max_examples=500, deadline=None)
@given(frame_dicts, st.sampled_from(["none", "idle", "recognition"]))
def test_event_shaped_frames_give_events_or_typed_errors(frame: Dict[str, Any], setup: str) -> None:
    rec = Recognizer()
    if setup != "none":
        rec = opened_recognizer()
        if setup == "recognition":
            recognizing(rec)
    _receive_or_typed_error(rec, json.dumps(frame))


param_names = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="_"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in ("recognition_mode", "start_input_timers", "timeout"))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(param_names, json_values, max_size=5), st.integers(1, 5))
def test_commands_are_compact_json_with_consecutive_ids(params: Dict[str, Any], n: int) -> None:
    rec = opened_recognizer()
    for i in range(n):
        frame = rec.set_params(**params)
        decoded = json.loads(frame)
        assert list(decoded) == ["command", "request_id", "channel_id", "headers", "body"]
        assert decoded["request_id"] == 2 + i
        assert decoded["headers"] == params
        assert frame == json.dumps(decoded, separators=(",", ":"), ensure_ascii=False)


_BASE_FRAME: Dict[str, Any] = {
    "event": "OPENED",
    "request_id": 1,
    "channel_id": "c",
    "headers": {},
    "completion_cause": None,
    "completion_reason": None,
    "body": "",
}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ([1], "expected a JSON object, got list"),
        ({**_BASE_FRAME, "event": 3}, "missing or non-string 'event'"),
        ({**_BASE_FRAME, "request_id": "1"}, "'request_id' must be an integer, got str"),
        ({**_BASE_FRAME, "channel_id": 5}, "'channel_id' must be a string, got int"),
        ({**_BASE_FRAME, "headers": []}, "'headers' must be an object, got list"),
        ({**_BASE_FRAME, "body": 5}, "'body' must be a string, an object or null, got int"),
        (
            {**_BASE_FRAME, "event": "RECOGNITION-COMPLETE", "body": {"alternatives": 5}},
            "body.alternatives must be a list",
        ),
    ],
)
def test_malformed_events_say_what_is_wrong(frame: Any, message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(json.dumps(frame))
    assert str(info.value) == f"malformed Recognition API event: {message}"


def test_optional_envelope_fields_default_to_empty() -> None:
    frame = {"event": "OPENED", "request_id": 1, "body": ""}
    ev = parse_event(json.dumps(frame))
    assert isinstance(ev, Opened)
    assert ev.channel_id == "" and ev.headers == {}
    assert ev.completion_cause is None and ev.completion_reason is None
