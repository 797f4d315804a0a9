"""Property tests for every codec's parser: hostile input gives a typed outcome.

For any byte string, and for valid frames mutated at the byte level or in
their JSON structure, each parser returns one of its typed events (an
unknown-message event included) or raises ``RemoteProtocolError`` - or, for
the frames that carry a server's error, that server's typed error. Never
another exception, and a rejected frame leaves the codec's state as it was.
"""

from __future__ import annotations

import json
from typing import Any, Callable, List, Tuple

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from voxsync.aiola import decode_event
from voxsync.aiola.types import Structured
from voxsync.errors import RemoteProtocolError, ServerError
from voxsync.events import Event, Message, Transcript, Translation
from voxsync.uhlive import Conversation, UhliveError
from voxsync.uhlive import Event as ConversationEvent
from voxsync.uhlive import Unknown as ConversationUnknown
from voxsync.uhlive.recognition import (
    RecognitionEvent,
    Recognizer,
    RecognizerState,
    UnknownEvent,
    parse_event,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------ mutations
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def byte_mutation(draw: Callable[..., Any], frame: str) -> bytes:
    """``frame`` with a few bytes flipped, deleted, inserted, or cut short."""
    data = bytearray(frame.encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[i]
        elif op == "insert":
            data.insert(i, draw(st.integers(0, 255)))
        else:
            del data[i:]
    return bytes(data)


def _paths(value: Any, prefix: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    out: List[Tuple[Any, ...]] = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: Tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        copy[head] = _replace(value[head], rest, new)
        return copy
    copy_list = list(value)
    copy_list[head] = _replace(value[head], rest, new)
    return copy_list


@st.composite
def structure_mutation(draw: Callable[..., Any], frame: str) -> str:
    """``frame`` with one JSON value (anywhere, the whole frame included) replaced."""
    value = json.loads(frame)
    paths = _paths(value)
    path = draw(st.sampled_from(paths))
    return json.dumps(_replace(value, path, draw(json_values)))


def hostile(valid: List[str]) -> st.SearchStrategy[Any]:
    """Any bytes or text, or a valid frame mutated in bytes or in structure."""
    seeds = st.sampled_from(valid)
    return (
        st.binary(max_size=96)
        | st.text(max_size=96)
        | seeds.flatmap(byte_mutation)
        | seeds.flatmap(structure_mutation)
        | seeds.flatmap(lambda f: byte_mutation(f).map(lambda b: b.decode("utf-8", "replace")))
    )


# ------------------------------------------------------------ Uh!ive Conversation
TOPIC = "conversation:acme@call"
WORDS = [{"value": "one", "start": 10, "end": 20, "length": 10, "confidence": 0.5}]
SEGMENT = {
    "id": "3",
    "speaker": "Alice",
    "lang": "en",
    "country": "us",
    "value": "one",
    "start": 10,
    "end": 20,
    "length": 10,
    "confidence": 0.9,
    "components": WORDS,
}


def _push(event: str, payload: Any, ref: Any = None, topic: str = TOPIC) -> str:
    return json.dumps(["1", ref, topic, event, payload])


CONVERSATION_FRAMES = [
    json.dumps(["1", "1", TOPIC, "phx_reply", {"status": "ok", "response": {}}]),
    json.dumps([None, "3", "phoenix", "phx_reply", {"status": "ok", "response": {}}]),
    _push("audio_words_decoded", SEGMENT),
    _push("audio_segment_decoded", SEGMENT),
    _push("audio_segment_normalized", SEGMENT),
    _push("speaker_joined", {"speaker": "Bob", "timestamp": 5, "lang": "en", "country": "us"}),
    _push("speaker_left", {"speaker": "Bob", "timestamp": 9}),
    _push(
        "entity_number_found",
        {"speaker": "Alice", "start": 1, "end": 2, "lang": "en", "annotation": {"x": 1}},
    ),
    _push("relation_phone_recognized", {"speaker": "Alice", "start": 1, "end": 2, "members": []}),
    _push("tags_set", {"speaker": "Alice", "start": 1, "end": 2, "tags": [{"label": "a"}]}),
    _push("phx_close", {}),
    _push("something_new", {"a": [1, 2]}),
]


def _joined_conversation() -> Conversation:
    client = Conversation("acme", "call", "Alice")
    client.join(model="en")
    client.receive(CONVERSATION_FRAMES[0])
    return client


def _phoenix_event(data: Any) -> Any:
    try:
        message = json.loads(data)
    except (TypeError, ValueError, RecursionError):
        return None
    return message[3] if isinstance(message, list) and len(message) == 5 else None


@SETTINGS
@given(data=hostile(CONVERSATION_FRAMES))
def test_conversation_parser_gives_only_typed_outcomes(data: Any) -> None:
    client = _joined_conversation()
    state = client.state
    try:
        event = client.receive(data)
    except UhliveError:
        # the server's own error: an error reply or a channel crash, nothing else
        assert _phoenix_event(data) in ("phx_reply", "phx_error")
        return
    except RemoteProtocolError as exc:
        assert client.state is state
        assert str(exc)
        return
    assert isinstance(event, ConversationEvent)
    assert event.event == _phoenix_event(data)
    if isinstance(event, ConversationUnknown):
        assert event.type == event.event
    repr(event)
    str(event)


# ------------------------------------------------------------ Uh!ive bot (Recognition)
CHANNEL = "bot-1a2b"


def _bot(name: str, request_id: int = 1, **extra: Any) -> str:
    frame = {
        "event": name,
        "request_id": request_id,
        "channel_id": CHANNEL,
        "headers": {},
        "completion_cause": None,
        "completion_reason": None,
        "body": "",
    }
    frame.update(extra)
    return json.dumps(frame)


BOT_FRAMES = [
    _bot("OPENED"),
    _bot("PARAMS-SET", 2),
    _bot("DEFAULT-PARAMS", 2, headers={"speech_language": "fr"}),
    _bot("GRAMMAR-DEFINED", 3),
    _bot("RECOGNITION-IN-PROGRESS", 4),
    _bot("INPUT-TIMERS-STARTED", 4),
    _bot("START-OF-INPUT", 4),
    _bot(
        "RECOGNITION-COMPLETE",
        4,
        completion_cause="Success",
        completion_reason="success",
        body={
            "asr": {"transcript": "oui", "confidence": 0.9, "start": 1, "end": 2},
            "nlu": {"type": "builtin:speech/boolean", "value": True, "confidence": 0.9},
            "grammar_uri": "builtin:speech/boolean",
        },
    ),
    _bot("STOPPED", 5),
    _bot("CLOSED", 6),
    _bot("METHOD-NOT-VALID", 7, completion_reason="no"),
    _bot("METHOD-FAILED", 7, completion_reason="no"),
    _bot("INVALID-PARAM-VALUE", 7, completion_reason="no"),
    _bot("MISSING-PARAM", 7, completion_reason="no"),
    _bot("METHOD-NOT-ALLOWED", 7, completion_reason="no"),
    _bot("SOMETHING-NEW", 8),
]


@SETTINGS
@given(data=hostile(BOT_FRAMES))
def test_recognition_parser_gives_only_typed_outcomes(data: Any) -> None:
    try:
        event = parse_event(data)
    except RemoteProtocolError as exc:
        assert str(exc)
        return
    assert isinstance(event, RecognitionEvent)
    if isinstance(event, UnknownEvent):
        assert event.name == "message"
    repr(event)
    str(event)


@SETTINGS
@given(data=hostile(BOT_FRAMES), setup=st.sampled_from(["none", "opening", "idle"]))
def test_recognizer_state_survives_rejected_frames(data: Any, setup: str) -> None:
    rec = Recognizer()
    if setup != "none":
        rec.open("acme")
        if setup == "idle":
            rec.receive(BOT_FRAMES[0])
            assert rec.state is RecognizerState.IDLE_SESSION
    before = (rec.state, rec.channel_id)
    try:
        event = rec.receive(data)
    except RemoteProtocolError:
        assert (rec.state, rec.channel_id) == before
        return
    assert isinstance(event, RecognitionEvent)
    assert isinstance(rec.state, RecognizerState)


# ------------------------------------------------------------ aiOla events
AIOLA_NAMES = ["transcript", "translation", "structured", "error", "events", "keyword"]


@SETTINGS
@given(
    name=st.sampled_from(AIOLA_NAMES) | st.text(max_size=16),
    data=json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "transcript": json_values,
            "itn_transcript": json_values,
            "translation": json_values,
            "results": json_values,
            "message": json_values,
            "details": json_values,
        },
    ),
    index=st.integers(0, 10**6),
)
def test_aiola_decoder_gives_only_typed_outcomes(name: str, data: Any, index: int) -> None:
    ev = decode_event(name, data, language="en", translation={"dst_lang_code": "es"}, index=index)
    raw = data if isinstance(data, dict) else {"data": data}
    if name == "error":
        assert isinstance(ev, ServerError) and ev.raw == raw
    elif name in ("transcript", "translation"):
        field = name
        if isinstance(raw.get(field), str):
            assert type(ev) is (Transcript if name == "transcript" else Translation)
            assert ev.text == raw[field] and ev.id == str(index)
        else:
            assert isinstance(ev, RemoteProtocolError) and str(ev)
    elif name == "structured":
        assert type(ev) is Structured
    else:
        # anything else is passed on, never dropped
        assert isinstance(ev, Message) and ev.type == name and ev.raw == raw
    assert isinstance(ev, (Event, RemoteProtocolError, ServerError))
    repr(ev)
    str(ev)


@SETTINGS
@given(
    frame=st.sampled_from(
        [
            ("transcript", {"transcript": "turn the valve"}),
            ("translation", {"translation": "gira la valvula"}),
            ("structured", {"results": {"valve": "open"}}),
            ("error", {"message": "Invalid audio", "details": "16 kHz"}),
        ]
    ).flatmap(
        lambda nf: structure_mutation(json.dumps(nf[1])).map(lambda s: (nf[0], json.loads(s)))
    )
)
def test_aiola_decoder_on_mutated_valid_payloads(frame: Tuple[str, Any]) -> None:
    name, data = frame
    assume(not (isinstance(data, float) and data != data))
    ev = decode_event(name, data, language="en")
    assert isinstance(ev, (Event, RemoteProtocolError, ServerError))
    if name == "error":
        assert isinstance(ev, ServerError)
    repr(ev)
    str(ev)
