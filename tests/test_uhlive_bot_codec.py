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
    # the handler name is the wire name in snake case; unknown events are "message"
    expected = "message" if cls is UnknownEvent else name.lower().replace("-", "_")
    assert ev.name == expected


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


# ------------------------------------------------------------------ exact messages and defaults

_ASR_FRAME = {**_BASE_FRAME, "event": "RECOGNITION-COMPLETE"}


@pytest.mark.parametrize(
    ("setup", "command", "message"),
    [
        (
            "none",
            lambda r: r.get_params(),
            "cannot send GET-PARAMS in state NoSession (allowed in IdleSession); "
            "send OPEN and wait for OPENED first",
        ),
        (
            "none",
            lambda r: r.start_input_timers(),
            "cannot send START-INPUT-TIMERS in state NoSession (allowed in Recognition); "
            "send OPEN and wait for OPENED first",
        ),
        (
            "idle",
            lambda r: r.stop(),
            "cannot send STOP in state IdleSession (allowed in Recognition); "
            "start a recognition with RECOGNIZE first",
        ),
        (
            "recognition",
            lambda r: r.define_grammar("a", "builtin:speech/boolean"),
            "cannot send DEFINE-GRAMMAR in state Recognition (allowed in IdleSession); "
            "wait for RECOGNITION-COMPLETE or send STOP first",
        ),
        (
            "recognition",
            lambda r: r.set_params(a=1),
            "cannot send SET-PARAMS in state Recognition (allowed in IdleSession); "
            "wait for RECOGNITION-COMPLETE or send STOP first",
        ),
        (
            "recognition",
            lambda r: r.recognize("builtin:speech/boolean"),
            "cannot send RECOGNIZE in state Recognition (allowed in IdleSession); "
            "wait for RECOGNITION-COMPLETE or send STOP first",
        ),
        (
            "recognition",
            lambda r: r.close(),
            "cannot send CLOSE in state Recognition (allowed in IdleSession); "
            "wait for RECOGNITION-COMPLETE or send STOP first",
        ),
        (
            "opening",
            lambda r: r.open(),
            "cannot send OPEN: OPEN was already sent; wait for OPENED",
        ),
        (
            "idle",
            lambda r: r.open(),
            "cannot send OPEN in state IdleSession (allowed in NoSession); "
            "one session at a time: send CLOSE and wait for CLOSED first",
        ),
        (
            "recognition",
            lambda r: r.open(),
            "cannot send OPEN in state Recognition (allowed in NoSession); "
            "one session at a time: send CLOSE and wait for CLOSED first",
        ),
        (
            "closing",
            lambda r: r.recognize("builtin:speech/boolean"),
            "cannot send RECOGNIZE: CLOSE was sent; wait for CLOSED and open a new session",
        ),
        (
            "closing",
            lambda r: r.close(),
            "cannot send CLOSE: CLOSE was sent; wait for CLOSED and open a new session",
        ),
    ],
)
def test_wrong_state_errors_say_what_to_do(setup: str, command: Any, message: str) -> None:
    rec = Recognizer()
    if setup == "opening":
        rec.open()
    elif setup != "none":
        rec = opened_recognizer()
        if setup == "recognition":
            recognizing(rec)
        elif setup == "closing":
            rec.close()
    with pytest.raises(LocalProtocolError) as info:
        command(rec)
    assert str(info.value) == message


def test_audio_without_a_session_says_what_to_do() -> None:
    with pytest.raises(LocalProtocolError) as info:
        Recognizer().send_audio_chunk(b"\x00\x00")
    assert str(info.value) == "cannot send audio without a session; send OPEN first"
    rec = opened_recognizer()
    assert rec.send_audio_chunk(memoryview(b"\x03\x04")) == b"\x03\x04"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"asr": 1}, "body.asr must be an object or null, got int"),
        ({"asr": {"transcript": 1}}, "body.asr.transcript must be a string, got int"),
        (
            {"asr": {"transcript": "a", "confidence": "high"}},
            "body.asr.confidence must be a number, got str",
        ),
        (
            {"asr": {"transcript": "a", "confidence": True}},
            "body.asr.confidence must be a number, got bool",
        ),
        (
            {"asr": {"transcript": "a", "start": "now"}},
            "body.asr.start must be a number or null, got str",
        ),
        (
            {"asr": {"transcript": "a", "end": False}},
            "body.asr.end must be a number or null, got bool",
        ),
        (
            {"asr": {"transcript": "a", "phones": 3}},
            "body.asr.phones must be a string or null, got int",
        ),
        ({"nlu": [1]}, "body.nlu must be an object or null, got list"),
        ({"nlu": {"type": 3}}, "body.nlu.type must be a string, got int"),
        (
            {"nlu": {"type": "builtin:x", "confidence": "0.5"}},
            "body.nlu.confidence must be a number, got str",
        ),
        ({"grammar_uri": 1}, "body.grammar_uri must be a string or null, got int"),
        ({"asr_model": 1.5}, "body.asr_model must be a string or null, got float"),
        ({"version": 2}, "body.version must be a string or null, got int"),
        ({"alternatives": [{}, 1]}, "body.alternatives[1] must be an object"),
        (
            {"alternatives": [{"asr": {"transcript": None}}]},
            "body.alternatives[0].asr.transcript must be a string, got NoneType",
        ),
        (
            {"alternatives": [{}, {"nlu": {"type": "t", "confidence": []}}]},
            "body.alternatives[1].nlu.confidence must be a number, got list",
        ),
        (
            {"alternatives": [{"grammar_uri": 5}]},
            "body.alternatives[0].grammar_uri must be a string or null, got int",
        ),
    ],
)
def test_malformed_results_name_the_field(body: Dict[str, Any], message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(json.dumps({**_ASR_FRAME, "body": body}))
    assert str(info.value) == f"malformed Recognition API event: {message}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"request_id": 1}, "missing or non-string 'event'"),
        ({**_BASE_FRAME, "request_id": True}, "'request_id' must be an integer, got bool"),
        ({**_BASE_FRAME, "request_id": 1.0}, "'request_id' must be an integer, got float"),
        (
            {**_BASE_FRAME, "completion_cause": 1},
            "event.completion_cause must be a string or null, got int",
        ),
        (
            {**_BASE_FRAME, "completion_reason": ["x"]},
            "event.completion_reason must be a string or null, got list",
        ),
        ({**_BASE_FRAME, "body": [1]}, "'body' must be a string, an object or null, got list"),
        ({**_BASE_FRAME, "body": True}, "'body' must be a string, an object or null, got bool"),
    ],
)
def test_malformed_envelopes_name_the_field(data: Dict[str, Any], message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(json.dumps(data))
    assert str(info.value) == f"malformed Recognition API event: {message}"


def test_frames_that_are_not_json_text_say_so() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_event("not json")
    assert str(info.value) == "malformed Recognition API event: not JSON (JSONDecodeError)"
    with pytest.raises(RemoteProtocolError) as info:
        parse_event("[" * 100000)
    assert str(info.value) == "malformed Recognition API event: not JSON (RecursionError)"
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(b"\xff\xfe")
    assert str(info.value) == "malformed Recognition API event: binary frame that is not UTF-8 text"
    with pytest.raises(ConfigurationError) as cfg:
        Recognizer().receive(42)  # type: ignore[arg-type]
    assert str(cfg.value) == "receive() takes str or bytes, got int"


def test_text_and_binary_frames_parse_alike() -> None:
    text = event("PARAMS-SET", 4, completion_reason="é")
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        ev = parse_event(data)
        assert isinstance(ev, ParamsSet)
        assert ev.request_id == 4 and ev.completion_reason == "é"


def test_optional_result_fields_default_as_the_protocol_defines() -> None:
    body = {
        "asr": {},
        "nlu": {},
        "alternatives": [{"asr": {"transcript": "x", "confidence": None}}],
    }
    ev = parse_event(json.dumps({**_ASR_FRAME, "body": body}))
    assert isinstance(ev, RecognitionComplete)
    assert ev.asr is not None
    assert (ev.asr.transcript, ev.asr.confidence) == ("", 0.0)
    assert (ev.asr.start, ev.asr.end, ev.asr.phones) == (None, None, None)
    assert ev.nlu is not None
    assert (ev.nlu.type, ev.nlu.value, ev.nlu.confidence) == ("", None, 0.0)
    assert (ev.grammar_uri, ev.asr_model, ev.version) == (None, None, None)
    (alt,) = ev.alternatives
    assert alt.asr is not None and alt.asr.confidence == 0.0 and str(alt.asr) == "x"
    assert alt.nlu is None
    assert (alt.grammar_uri, alt.asr_model, alt.version) == (None, None, None)


def test_integer_confidences_become_floats() -> None:
    body = {
        "asr": {"transcript": "oui", "confidence": 1},
        "nlu": {"type": "builtin:speech/boolean", "value": True, "confidence": 0},
    }
    ev = parse_event(json.dumps({**_ASR_FRAME, "body": body}))
    assert isinstance(ev, RecognitionComplete)
    assert ev.asr is not None and ev.nlu is not None
    assert type(ev.asr.confidence) is float and ev.asr.confidence == 1.0
    assert type(ev.nlu.confidence) is float and ev.nlu.confidence == 0.0


def test_null_alternatives_mean_none() -> None:
    ev = parse_event(json.dumps({**_ASR_FRAME, "body": {"alternatives": None}}))
    assert isinstance(ev, RecognitionComplete)
    assert ev.alternatives == () and ev.asr is None and ev.nlu is None


def test_missing_envelope_fields_default_as_the_protocol_defines() -> None:
    ev = parse_event('{"event":"STOPPED"}')
    assert isinstance(ev, Stopped)
    assert ev.request_id is None and ev.channel_id == "" and ev.headers == {}
    assert ev.completion_cause is None and ev.completion_reason is None and ev.body is None
    assert ev.raw == {"event": "STOPPED"}
    nulls = parse_event('{"event":"OPENED","request_id":0,"channel_id":null,"headers":null}')
    assert nulls.channel_id == "" and nulls.headers == {}


def test_recognition_complete_keeps_its_envelope_and_raw_frame() -> None:
    frame = {
        **_ASR_FRAME,
        "request_id": 8,
        "headers": {"h": 1},
        "completion_cause": "Success",
        "completion_reason": "ok",
        "body": {"asr": {"transcript": "oui", "confidence": 0.9}},
    }
    ev = parse_event(json.dumps(frame))
    assert isinstance(ev, RecognitionComplete)
    assert (ev.type, ev.request_id, ev.channel_id) == ("RECOGNITION-COMPLETE", 8, "c")
    assert ev.headers == {"h": 1} and ev.completion_reason == "ok"
    assert ev.body == frame["body"] and ev.raw == frame


def test_default_params_are_a_copy_of_the_headers() -> None:
    ev = parse_event(event("DEFAULT-PARAMS", headers={"speech_language": "fr"}))
    assert isinstance(ev, DefaultParams)
    params = ev.params
    params["speech_language"] = "en"
    assert ev.params == {"speech_language": "fr"}


def test_event_reprs_show_type_request_and_cause() -> None:
    assert repr(parse_event(event("OPENED", 1))) == "<Opened request_id=1>"
    failed = parse_event(event("METHOD-FAILED", 2, completion_cause="GramLoadFailure"))
    assert repr(failed) == "<MethodFailed request_id=2 GramLoadFailure>"
    assert repr(parse_event(event("NEW-THING", 3))) == "<UnknownEvent 'NEW-THING' request_id=3>"
    body = {
        "asr": {"transcript": "oui", "confidence": 0.9},
        "nlu": {"type": "builtin:speech/boolean", "value": True, "confidence": 0.9},
    }
    done = parse_event(event("RECOGNITION-COMPLETE", 4, completion_cause="Success", body=body))
    assert repr(done) == "<RecognitionComplete Success 'oui' value=True>"
    nothing = parse_event(event("RECOGNITION-COMPLETE", 5, completion_cause="NoInputTimeout"))
    assert repr(nothing) == "<RecognitionComplete NoInputTimeout '' value=None>"


def test_recognizer_repr_shows_state_and_channel() -> None:
    rec = Recognizer()
    assert repr(rec) == "<Recognizer NoSession channel_id=''>"
    rec = recognizing(opened_recognizer())
    assert repr(rec) == f"<Recognizer Recognition channel_id='{CHANNEL}'>"


def test_refusal_without_reason_uses_the_event_name_as_detail() -> None:
    err = error_from_event(parse_event(event("MISSING-PARAM", 6)))
    assert isinstance(err, MissingParamError) and isinstance(err, ValueError)
    assert err.code == "MISSING-PARAM" and err.detail == "missing param"
    assert str(err) == "MISSING-PARAM: missing param"
    assert err.raw == json.loads(event("MISSING-PARAM", 6))
    assert isinstance(error_from_event(parse_event(event("INVALID-PARAM-VALUE"))), ValueError)


def test_completion_cause_constants_are_the_protocol_values() -> None:
    constants = {
        value
        for key, value in vars(CompletionCause).items()
        if key.isupper() and isinstance(value, str)
    }
    assert constants == CompletionCause.ALL and len(constants) == 12
    assert CompletionCause.SUCCESSES < CompletionCause.ALL


def test_open_defaults_and_codecs() -> None:
    assert Recognizer().open() == (
        '{"command":"OPEN","request_id":1,"channel_id":"","headers":'
        '{"custom_id":"","audio_codec":"linear","session_id":""},"body":""}'
    )
    for codec in ("g711a", "g711u"):
        assert json.loads(Recognizer().open(audio_codec=codec))["headers"]["audio_codec"] == codec
    with pytest.raises(ConfigurationError) as info:
        Recognizer().open(audio_codec="opus")
    assert str(info.value) == "audio_codec must be one of linear, g711a, g711u, got 'opus'"


@pytest.mark.parametrize("label", ["custom_id", "channel_id", "session_id"])
def test_open_refuses_non_string_identifiers(label: str) -> None:
    rec = Recognizer()
    with pytest.raises(ConfigurationError) as info:
        rec.open(**{label: 5})
    assert str(info.value) == f"{label} must be a str, got int"
    assert not rec.opening and rec.last_request_id is None


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_first_request_id_must_be_an_int(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        Recognizer(first_request_id=bad)
    assert str(info.value) == f"first_request_id must be an int, got {bad!r}"


def test_recognize_argument_errors_say_what_to_do() -> None:
    rec = opened_recognizer()
    with pytest.raises(ConfigurationError) as info:
        rec.recognize()
    assert (
        str(info.value) == "recognize() needs at least one grammar, e.g. 'builtin:speech/boolean'"
    )
    with pytest.raises(ConfigurationError) as info:
        rec.recognize("speech/boolean")
    assert str(info.value) == (
        "grammar must be a one-line 'builtin:...' or 'session:<alias>' str, got 'speech/boolean'"
    )
    with pytest.raises(ConfigurationError) as info:
        rec.recognize("builtin:speech/boolean", recognition_mode="fast")
    assert str(info.value) == "recognition_mode must be 'normal' or 'hotword', got 'fast'"
    with pytest.raises(ConfigurationError) as info:
        rec.recognize("builtin:speech/boolean", start_input_timers=1)  # type: ignore[arg-type]
    assert str(info.value) == "start_input_timers must be a bool"
    with pytest.raises(ConfigurationError) as info:
        rec.define_grammar("a\tb", "builtin:speech/boolean")
    assert str(info.value) == "alias must be a non-empty str without spaces, got 'a\\tb'"
    with pytest.raises(ConfigurationError) as info:
        rec.define_grammar("ok", "builtin:a\nb")
    assert str(info.value) == "uri must be a non-empty one-line str, got 'builtin:a\\nb'"
    assert rec.last_request_id == 1  # nothing was built


def test_events_outside_their_state_change_nothing() -> None:
    rec = Recognizer()
    rec.receive(event("RECOGNITION-IN-PROGRESS", 1))  # no session: ignored
    assert rec.state is RecognizerState.NO_SESSION
    rec.receive(event("STOPPED", 1))
    assert rec.state is RecognizerState.NO_SESSION


def test_a_refusal_of_another_command_keeps_close_pending() -> None:
    rec = opened_recognizer()
    rec.close()
    rec.receive(event("METHOD-FAILED", 1))  # answers an earlier command, not CLOSE
    assert rec.closing
    rec.receive(event("METHOD-NOT-VALID", rec.last_request_id or 0))
    assert not rec.closing and rec.state is RecognizerState.IDLE_SESSION


def test_a_refusal_during_a_session_keeps_it_open() -> None:
    rec = opened_recognizer()
    rec.receive(event("INVALID-PARAM-VALUE", 1))
    assert rec.state is RecognizerState.IDLE_SESSION and not rec.opening


def test_closed_during_open_ends_the_opening() -> None:
    rec = Recognizer()
    rec.open()
    rec.receive(event("CLOSED", 1))
    assert not rec.opening and rec.state is RecognizerState.NO_SESSION
    rec.open()


def test_opening_and_closing_are_booleans_throughout() -> None:
    def flags(rec: Recognizer) -> Any:
        return (rec.opening, rec.closing)

    rec = Recognizer()
    seen = [flags(rec)]
    rec.open()
    seen.append(flags(rec))
    rec.receive(event("METHOD-FAILED", 1, ""))  # OPEN refused
    seen.append(flags(rec))
    rec.open()
    rec.receive(event("OPENED", 2))
    seen.append(flags(rec))
    rec.close()
    seen.append(flags(rec))
    rec.receive(event("CLOSED", 3))
    seen.append(flags(rec))
    rec.open()
    rec.receive(event("CLOSED", 4))  # closed while opening
    seen.append(flags(rec))
    # None is not False: the properties are documented as booleans
    assert [tuple(type(f) for f in pair) for pair in seen] == [(bool, bool)] * len(seen)
    assert seen == [
        (False, False),
        (True, False),
        (False, False),
        (False, False),
        (False, True),
        (False, False),
        (False, False),
    ]
