"""The sans-I/O Uh!ive Conversation codec: byte-exact frames, states, events, fuzzing."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxsync.errors import (
    ConfigurationError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    ServerError,
)
from voxsync.uhlive import (
    AudioSegmentDecoded,
    AudioSegmentNormalized,
    AudioWordsDecoded,
    Conversation,
    ConversationState,
    EntityFound,
    EntityRecognized,
    Event,
    Ok,
    RelationRecognized,
    SpeakerJoined,
    SpeakerLeft,
    TagsSet,
    UhliveError,
    UnknownEvent,
)
from voxsync.uhlive.conversation import Word

TOPIC = "conversation:customerid@myconv"
JOIN_OK = json.dumps(["1", "1", TOPIC, "phx_reply", {"status": "ok", "response": {}}])


def joined() -> Conversation:
    client = Conversation("customerid", "myconv", "john_test")
    client.join(model="en", country="us")
    client.receive(JOIN_OK)
    return client


def push(event: str, payload: dict, topic: str = TOPIC) -> str:
    return json.dumps(["1", None, topic, event, payload])


# ------------------------------------------------------------ frames
def test_join_frame_is_byte_exact() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    frame = client.join(model="en", country="us")
    assert frame == (
        '["1","1","conversation:customerid@myconv","phx_join",{"readonly":false,'
        '"speaker":"john_test","model":"en","country":"us","interim_results":true,'
        '"rescoring":true,"origin":0,"audio_codec":"linear"}]'
    )
    assert client.state is ConversationState.JOINING
    assert not client.left and not client.joined


def test_join_frame_keeps_non_ascii_text() -> None:
    client = Conversation("société", "réunion", "Zoé")
    frame = client.join(model="fr", readonly=True, origin=1700000000000, audio_codec="g711a")
    assert frame == (
        '["1","1","conversation:société@réunion","phx_join",{"readonly":true,'
        '"speaker":"Zoé","model":"fr","country":"fr","interim_results":true,'
        '"rescoring":true,"origin":1700000000000,"audio_codec":"g711a"}]'
    )


def test_leave_frame_is_byte_exact() -> None:
    client = joined()
    assert client.leave() == '["1","2","conversation:customerid@myconv","phx_leave",{}]'
    assert client.state is ConversationState.LEAVING


def test_audio_frame_is_byte_exact_and_shares_the_ref_counter() -> None:
    client = joined()
    pcm = bytes(range(10))
    frame = client.send_audio_chunk(pcm)
    assert frame == b"\x00\x01\x01\x1e\x0b" + b"1" + b"2" + TOPIC.encode() + b"audio_chunk" + pcm
    frame = client.send_audio_chunk(b"\xff\xfe")
    assert frame[:5] == bytes([0, 1, 1, len(TOPIC), 11])
    assert frame[5:7] == b"13"
    # commands take the next ref after the audio chunks
    assert client.leave() == f'["1","4","{TOPIC}","phx_leave",{{}}]'


def test_audio_frame_refs_grow_past_one_digit() -> None:
    client = joined()
    for _ in range(9):
        client.send_audio_chunk(b"\x00\x00")
    frame = client.send_audio_chunk(b"\x01\x00")
    join_len, ref_len, topic_len, event_len = struct.unpack("4B", frame[1:5])
    assert (join_len, ref_len, topic_len, event_len) == (1, 2, len(TOPIC), 11)
    assert frame[6:8] == b"11"
    assert frame.endswith(b"audio_chunk\x01\x00")


def test_heartbeat_frame() -> None:
    client = Conversation("a", "b", "c")
    assert client.heartbeat() == '[null,"1","phoenix","heartbeat",{}]'
    ok = client.receive('[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]')
    assert isinstance(ok, Ok)
    assert client.state is ConversationState.IDLE


# ------------------------------------------------------------ states
def test_misuse_raises_local_protocol_errors() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    with pytest.raises(LocalProtocolError, match="join"):
        client.send_audio_chunk(b"\x00\x00")
    with pytest.raises(LocalProtocolError):
        client.leave()
    client.join()
    with pytest.raises(LocalProtocolError, match="joining"):
        client.join()
    with pytest.raises(LocalProtocolError):
        client.send_audio_chunk(b"\x00\x00")  # reply not received yet
    client.receive(JOIN_OK)
    with pytest.raises(LocalProtocolError, match="joined"):
        client.join()
    client.leave()
    with pytest.raises(LocalProtocolError):
        client.leave()
    with pytest.raises(LocalProtocolError):
        client.send_audio_chunk(b"\x00\x00")
    # the vendor's ProtocolError catches them too
    assert issubclass(LocalProtocolError, ProtocolError)


def test_bad_arguments_raise_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="identifier must be a non-empty string"):
        Conversation("", "conv", "me")
    with pytest.raises(ConfigurationError, match="255"):
        Conversation("x" * 200, "y" * 100, "me")
    client = Conversation("a", "b", "c")
    with pytest.raises(ConfigurationError, match="model"):
        client.join(model="")
    with pytest.raises(ConfigurationError, match="audio_codec"):
        client.join(audio_codec="opus")
    with pytest.raises(ConfigurationError, match="origin"):
        client.join(origin=1.5)  # type: ignore[arg-type]
    assert client.state is ConversationState.IDLE  # failed calls change nothing
    client = joined()
    with pytest.raises(ConfigurationError, match="audio must be bytes, got str"):
        client.send_audio_chunk("text")  # type: ignore[arg-type]


def test_readonly_observer_cannot_stream_and_leaves_on_the_reply() -> None:
    client = Conversation("customerid", "myconv", "watcher")
    client.join(readonly=True, model="")
    client.receive(JOIN_OK)
    with pytest.raises(LocalProtocolError, match="readonly"):
        client.send_audio_chunk(b"\x00\x00")
    client.leave()
    assert not client.left
    client.receive(json.dumps(["1", "2", TOPIC, "phx_reply", {"status": "ok", "response": {}}]))
    assert client.left


def test_speaker_leaves_on_its_own_speaker_left_only() -> None:
    client = joined()
    client.leave()
    client.receive(json.dumps(["1", "2", TOPIC, "phx_reply", {"status": "ok", "response": {}}]))
    assert not client.left
    other = client.receive(push("speaker_left", {"speaker": "bob", "timestamp": 1}))
    assert isinstance(other, SpeakerLeft) and not client.left
    final = client.receive(push("audio_segment_decoded", {"speaker": "john_test", "value": "bye"}))
    assert isinstance(final, AudioSegmentDecoded) and not client.left
    mine = client.receive(push("speaker_left", {"speaker": "john_test", "timestamp": 2}))
    assert isinstance(mine, SpeakerLeft)
    assert client.left and client.state is ConversationState.LEFT
    # stock Phoenix's phx_close has ref == join_ref: it must not flip us back to joined
    close = client.receive(json.dumps(["1", "1", TOPIC, "phx_close", {}]))
    assert isinstance(close, Ok)
    assert client.left
    # and we may join again
    assert '"phx_join"' in client.join(model="en")


def test_reading_properties_does_not_change_state() -> None:
    client = joined()
    before = client.last_ref
    for _ in range(3):
        _ = (client.state, client.joined, client.left, client.join_ref, client.last_ref)
    assert client.last_ref == before == "1"
    assert client.send_audio_chunk(b"\x00\x00")[5:7] == b"12"


def test_error_reply_to_join_raises_with_the_reason_and_allows_a_new_join() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    refusal = [
        "1",
        "1",
        TOPIC,
        "phx_reply",
        {"status": "error", "response": {"reason": "unknown model"}},
    ]
    with pytest.raises(UhliveError, match="unknown model") as info:
        client.receive(json.dumps(refusal))
    assert info.value.reason == "unknown model"
    assert isinstance(info.value, ServerError)
    assert info.value.ref == "1"
    assert client.left
    client.join()  # allowed again


def test_phx_error_raises_a_server_error() -> None:
    client = joined()
    with pytest.raises(UhliveError, match="crashed") as info:
        client.receive(json.dumps(["1", "1", TOPIC, "phx_error", {}]))
    assert info.value.event == "phx_error"
    assert info.value.retryable
    assert client.left


def test_topic_mismatch_is_a_remote_protocol_error() -> None:
    client = joined()
    with pytest.raises(RemoteProtocolError, match="topic"):
        client.receive(push("audio_segment_decoded", {"speaker": "x"}, topic="conversation:a@b"))
    assert client.joined  # nothing changed


# ------------------------------------------------------------ events
WORDS = [
    {"value": "bonjour", "start": 5120, "end": 5480, "length": 360, "confidence": 0.93},
    {"value": "trois", "start": 5500, "end": 5800, "length": 300, "confidence": 0.8},
]
DECODED = {
    "id": "3",
    "speaker": "Alice",
    "lang": "fr",
    "country": "fr",
    "value": "bonjour trois",
    "start": 5120,
    "end": 5800,
    "length": 680,
    "confidence": 0.9,
    "components": WORDS,
    "meta": {"model": "fr", "previous_utterance_id": None},
}


@pytest.mark.parametrize(
    ("event", "cls", "final"),
    [
        ("audio_words_decoded", AudioWordsDecoded, False),
        ("audio_segment_decoded", AudioSegmentDecoded, True),
        ("audio_segment_normalized", AudioSegmentNormalized, True),
    ],
)
def test_transcript_events(event: str, cls: type, final: bool) -> None:
    ev = joined().receive(push(event, DECODED))
    assert type(ev) is cls
    assert ev.transcript == "bonjour trois"
    assert ev.is_final is final
    assert ev.speaker == "Alice"
    assert (ev.start, ev.end, ev.length, ev.lang, ev.country) == (5120, 5800, 680, "fr", "fr")
    assert ev.utterance_id == "3"
    assert ev.confidence == 0.9
    words = ev.words
    assert [w.word for w in words] == ["bonjour", "trois"]
    assert isinstance(words[0], Word) and words[0]["value"] == "bonjour"
    assert (words[0].start, words[0].end, words[0].length) == (5120, 5480, 360)
    assert ev["value"] == "bonjour trois" and ev.get("missing", 1) == 1  # reads like its payload
    assert ev.event == event


def test_speaker_events() -> None:
    client = joined()
    ev = client.receive(
        push(
            "speaker_joined",
            {
                "speaker": "bob",
                "timestamp": 1613129063523,
                "interim_results": True,
                "rescoring": False,
                "lang": "en",
                "country": "us",
            },
        )
    )
    assert isinstance(ev, SpeakerJoined)
    assert (ev.speaker, ev.timestamp, ev.interim_results, ev.rescoring) == (
        "bob",
        1613129063523,
        True,
        False,
    )
    assert ev.event_name == "speaker_joined"
    ev = client.receive(push("speaker_left", {"speaker": "bob", "timestamp": 5, "reason": "gone"}))
    assert isinstance(ev, SpeakerLeft) and ev.reason == "gone" and ev.event_name == "speaker_left"


def test_entity_event_reads_like_the_vendor_guide() -> None:
    payload = {
        "id": "e-9260",
        "speaker": "Alice",
        "lang": "fr",
        "country": "fr",
        "source": "trois",
        "display": "3",
        "value": 3,
        "start": 9260,
        "end": 9460,
        "length": 200,
        "confidence": 0.9,
    }
    event = joined().receive(push("entity_cardinal_number_recognized", payload))
    assert isinstance(event, EntityRecognized) and isinstance(event, EntityFound)
    # the getting-started snippet
    assert f"[{event.speaker}] {event.canonical}" == "[Alice] 3"
    canonical, original, start, end = event.canonical, event.original, event.start, event.end
    assert (
        f"[{start}->{end}]: '{canonical}' replaces '{original}'"
        == "[9260->9460]: '3' replaces 'trois'"
    )
    assert event.entity_name == "cardinal_number" and event.value == 3 and event.id == "e-9260"
    assert event.event_name == "entity"


def test_legacy_entity_found_payload() -> None:
    payload = {
        "annotation": {"canonical": "22", "original": "vingt-deux", "value": 22.0},
        "end": 3690,
        "lang": "fr",
        "length": 960,
        "confidence": 0.9,
        "speaker": "Alice",
        "start": 2730,
    }
    event = joined().receive(push("entity_number_found", payload))
    assert type(event) is EntityFound
    assert (event.canonical, event.original, event.value) == ("22", "vingt-deux", 22.0)
    assert event.entity_name == "number"


def test_relation_and_tags_events() -> None:
    client = joined()
    rel = client.receive(
        push(
            "relation_price_recognized",
            {
                "speaker": "A",
                "start": 1,
                "end": 2,
                "length": 1,
                "lang": "fr",
                "confidence": 0.7,
                "components": [{"class": "entity_cardinal_number_recognized", "id": "e-1"}],
            },
        )
    )
    assert isinstance(rel, RelationRecognized)
    assert rel.relation_name == "price" and rel.components[0]["id"] == "e-1"
    tags = client.receive(
        push(
            "tags_set",
            {
                "speaker": "A",
                "start": 1,
                "end": 2,
                "length": 1,
                "lang": "fr",
                "country": "fr",
                "confidence": 0.5,
                "components": [{"value": "angry", "display": "Angry", "confidence": 0.5}],
            },
        )
    )
    assert isinstance(tags, TagsSet) and tags.tags[0]["value"] == "angry"


def test_unknown_event_is_kept() -> None:
    ev = joined().receive(push("brand_new_event", {"speaker": "A", "x": 1}))
    assert isinstance(ev, UnknownEvent)
    assert ev.type == "brand_new_event" and ev["x"] == 1 and ev.event_name == "message"


def test_missing_fields_read_as_none() -> None:
    ev = joined().receive(push("audio_segment_decoded", {"speaker": 5, "start": "soon"}))
    assert ev.speaker is None and ev.start is None and ev.words == [] and ev.transcript == ""


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "{}",
        "[]",
        '["1","1"]',
        '["1",null,"conversation:customerid@myconv","x",[]]',
        '["1",null,42,"x",{}]',
        '["1",null,"conversation:customerid@myconv",7,{}]',
        '[{},null,"conversation:customerid@myconv","x",{}]',
        '["1",true,"conversation:customerid@myconv","x",{}]',
        "[" * 100000 + "]" * 100000,
        b"\x00\x01\x01\x01\x01abcd",
        b"\xff\xfe",
    ],
)
def test_malformed_frames_raise_remote_protocol_errors(frame: object) -> None:
    client = joined()
    with pytest.raises(RemoteProtocolError):
        client.receive(frame)  # type: ignore[arg-type]
    assert client.joined


def test_text_as_bytes_is_accepted() -> None:
    ev = joined().receive(push("audio_words_decoded", DECODED).encode())
    assert isinstance(ev, AudioWordsDecoded)


# ------------------------------------------------------------ fuzzing
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
event_names = st.sampled_from(
    [
        "phx_reply",
        "phx_error",
        "phx_close",
        "audio_words_decoded",
        "audio_segment_decoded",
        "audio_segment_normalized",
        "speaker_joined",
        "speaker_left",
        "entity_x_recognized",
        "entity__found",
        "relation_y_recognized",
        "tags_set",
        "heartbeat",
    ]
) | st.text(max_size=12)
frames = st.tuples(
    st.none() | st.sampled_from(["1", "2"]) | st.integers(0, 3) | json_values,
    st.none() | st.sampled_from(["1", "2"]) | st.integers(0, 3) | json_values,
    st.sampled_from([TOPIC, "phoenix", "conversation:x@y"]) | st.text(max_size=10),
    event_names,
    json_values
    | st.fixed_dictionaries(
        {"status": st.sampled_from(["ok", "error", "weird"]) | json_values, "response": json_values}
    )
    | st.dictionaries(
        st.sampled_from(["speaker", "value", "components", "start", "end", "reason", "annotation"]),
        json_values,
    ),
)


def _phoenix_event(data: object) -> object:
    """The event name of a well-formed Phoenix v2 frame, else None."""
    try:
        message = json.loads(data)  # type: ignore[arg-type]
    except (TypeError, ValueError, RecursionError):
        return None
    if isinstance(message, list) and len(message) == 5:
        return message[3]
    return None


def _exercise(client: Conversation, data: object) -> None:
    """Feed one frame: a typed event, ``UhliveError`` or ``RemoteProtocolError``, nothing else."""
    state = client.state
    try:
        event = client.receive(data)  # type: ignore[arg-type]
    except UhliveError as exc:
        # only an error reply or a channel crash may raise the server's error
        assert _phoenix_event(data) in ("phx_reply", "phx_error"), (data, exc)
        assert str(exc)
        return
    except RemoteProtocolError as exc:
        assert client.state is state, "a rejected frame must not change the state"
        assert str(exc)
        return
    assert isinstance(event, Event), type(event)
    assert event.event == _phoenix_event(data)
    if isinstance(event, UnknownEvent):
        assert event.type == event.event  # never dropped: the name is kept
    # every property of whatever came back must be readable
    for name in dir(event):
        if not name.startswith("_"):
            getattr(event, name)
    for name in ("words", "tags", "components"):
        value = getattr(event, name, None)
        if value:
            for item in value:
                for attr in ("word", "start", "end", "length", "confidence"):
                    getattr(item, attr, None)
    assert isinstance(repr(event), str)
    str(event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames)
def test_fuzz_structured_frames_never_crash(frame: tuple) -> None:
    client = joined()
    _exercise(client, json.dumps(list(frame)))
    # the codec stays usable: leaving works while joined, and is refused with
    # a LocalProtocolError (naming the state) once the channel is gone
    if client.state is ConversationState.JOINED:
        assert "phx_leave" in client.leave()
    else:
        with pytest.raises(LocalProtocolError):
            client.leave()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64) | st.text(max_size=64))
def test_fuzz_arbitrary_frames_never_crash(data: object) -> None:
    _exercise(joined(), data)


@settings(max_examples=100, deadline=None)
@given(chunk=st.binary(max_size=300))
def test_fuzz_audio_frames_round_trip(chunk: bytes) -> None:
    client = joined()
    frame = client.send_audio_chunk(chunk)
    jl, rl, tl, el = frame[1], frame[2], frame[3], frame[4]
    offset = 5 + jl + rl + tl + el
    assert frame[0] == 0
    assert frame[5 + jl + rl : 5 + jl + rl + tl].decode() == TOPIC
    assert frame[offset:] == chunk
