"""Uh!ive Conversation codec details: error messages, envelopes, field readers, reprs.

The frames and states are in ``test_uhlive_codec.py``; these tests pin down
what a user reads when something is wrong (each message names the field or
the step to take), the Phoenix envelope kept on every event, and how
optional payload fields of the wrong type read.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import pytest
from test_uhlive_codec import JOIN_OK, TOPIC, joined

from voxsync.errors import ConfigurationError, LocalProtocolError, RemoteProtocolError
from voxsync.uhlive import (
    AudioSegmentDecoded,
    Conversation,
    EntityRecognized,
    Ok,
    UhliveError,
    UnknownEvent,
)


def push(event: str, payload: Dict[str, Any], topic: str = TOPIC) -> str:
    return json.dumps(["1", None, topic, event, payload])


# ------------------------------------------------------------ server errors
def test_an_error_reply_carries_the_reason_the_event_and_the_payload() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    payload = {"status": "error", "response": {"reason": "unknown model"}}
    with pytest.raises(UhliveError) as info:
        client.receive(json.dumps(["1", "1", TOPIC, "phx_reply", payload]))
    err = info.value
    assert str(err) == "unknown model"
    assert err.detail == "unknown model"
    assert err.code == "phx_reply" and err.event == "phx_reply"
    assert err.raw == payload and err["response"] == {"reason": "unknown model"}
    assert not err.retryable  # a refusal: the same join fails again


def test_a_channel_crash_carries_its_event_and_payload() -> None:
    client = joined()
    with pytest.raises(UhliveError) as info:
        client.receive(json.dumps(["1", "1", TOPIC, "phx_error", {"why": "boom"}]))
    err = info.value
    assert err.code == "phx_error" and err.raw == {"why": "boom"} and err.ref == "1"
    assert err.detail == "Server error, channel crashed!"


def test_a_uhlive_error_made_by_hand_is_a_refused_reply() -> None:
    err = UhliveError("nope")
    assert (err.event, err.code, err.ref, err.raw) == ("phx_reply", "phx_reply", None, None)
    assert str(err) == "nope" and err.detail == "nope" and not err.retryable


# ------------------------------------------------------------ local misuse
def test_misuse_messages_say_what_to_do() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    with pytest.raises(LocalProtocolError) as info:
        client.send_audio_chunk(b"\x00\x00")
    assert str(info.value) == (
        "cannot send audio: the conversation is idle; send join() and receive() its reply first"
    )
    with pytest.raises(LocalProtocolError) as info:
        client.leave()
    assert str(info.value) == "cannot leave: the conversation is idle, not joined"
    observer = Conversation("customerid", "myconv", "watcher")
    observer.join(readonly=True, model="")
    observer.receive(JOIN_OK)
    with pytest.raises(LocalProtocolError) as info:
        observer.send_audio_chunk(b"\x00\x00")
    assert str(info.value) == "a readonly observer cannot send audio"


@pytest.mark.parametrize("chunk", [5, [1, 2], None, 3.0])
def test_audio_that_is_not_bytes_is_refused_and_takes_no_ref(chunk: Any) -> None:
    client = joined()
    with pytest.raises(ConfigurationError, match="audio must be bytes, got "):
        client.send_audio_chunk(chunk)
    assert client.last_ref == "1"


@pytest.mark.parametrize("chunk", [bytearray(b"\x01\x02"), memoryview(b"\x01\x02")])
def test_bytes_like_audio_is_framed_like_bytes(chunk: Any) -> None:
    assert joined().send_audio_chunk(chunk) == joined().send_audio_chunk(b"\x01\x02")


# ------------------------------------------------------------ malformed frames
@pytest.mark.parametrize("first", [b"\x00", b"\x01", b"\x02"])
def test_a_binary_phoenix_frame_is_named_as_such(first: bytes) -> None:
    client = joined()
    with pytest.raises(RemoteProtocolError) as info:
        client.receive(first + b"\x01\x01\x05\x03" + b"11topicabc")
    assert str(info.value) == (
        "received a Phoenix binary frame; the Uh!ive server sends only text frames"
    )
    assert client.joined


def test_bytes_that_are_not_utf8_are_named_as_such() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        joined().receive(b"[\xff]")
    assert str(info.value) == "received a frame that is not UTF-8 text"


def test_receive_refuses_what_is_not_a_frame() -> None:
    with pytest.raises(ConfigurationError) as info:
        joined().receive(42)  # type: ignore[arg-type]
    assert str(info.value) == "receive() takes str or bytes, got int"


def test_messages_about_bad_frames_quote_at_most_80_characters() -> None:
    client = joined()
    text = "x" * 79 + "ABCDEFGH"
    with pytest.raises(RemoteProtocolError) as info:
        client.receive(text)
    assert str(info.value) == f"received a frame that is not JSON: {'x' * 79 + 'A'!r}"
    array = json.dumps(["1", None, TOPIC, "x", {}, "extra" * 20])
    with pytest.raises(RemoteProtocolError) as info:
        client.receive(array)
    assert str(info.value) == f"a Phoenix v2 frame is a 5-item JSON array, got {array[:80]!r}"
    bad_topic = json.dumps(["1", None, 7, "e" * 100, {}])
    with pytest.raises(RemoteProtocolError) as info:
        client.receive(bad_topic)
    assert str(info.value) == f"topic and event must be strings in {bad_topic[:80]!r}"
    with pytest.raises(RemoteProtocolError) as info:
        client.receive(json.dumps(["1", None, TOPIC, "tags_set", []]))
    assert str(info.value) == "payload of 'tags_set' must be a JSON object"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ([{}, None, TOPIC, "x", {}], "join_ref must be a string, an integer or null, got {}"),
        (["1", 1.5, TOPIC, "x", {}], "ref must be a string, an integer or null, got 1.5"),
        (["1", True, TOPIC, "x", {}], "ref must be a string, an integer or null, got True"),
    ],
)
def test_a_bad_ref_names_the_field(frame: Any, message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        joined().receive(json.dumps(frame))
    assert str(info.value) == message


# ------------------------------------------------------------ envelopes
def test_integer_refs_read_as_strings_and_match_the_join() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    ok = client.receive(json.dumps([1, 1, TOPIC, "phx_reply", {"status": "ok", "response": {}}]))
    assert (ok.join_ref, ok.ref) == ("1", "1")
    assert client.joined  # the integer ref 1 answers the join "1"


def test_every_event_keeps_its_envelope() -> None:
    client = joined()
    ev = client.receive(push("audio_segment_decoded", {"speaker": "A", "value": "hi"}))
    assert (ev.join_ref, ev.ref, ev.topic, ev.event) == ("1", None, TOPIC, "audio_segment_decoded")
    # a ref on a push is not the protocol's, but it is kept as received
    tagged = client.receive(json.dumps(["1", "8", TOPIC, "tags_set", {"speaker": "A"}]))
    assert (tagged.join_ref, tagged.ref, tagged.topic) == ("1", "8", TOPIC)
    client.heartbeat()  # ref "2"
    beat = client.receive(
        json.dumps(["9", "2", "phoenix", "phx_reply", {"status": "ok", "response": {"a": 1}}])
    )
    assert isinstance(beat, Ok)
    assert (beat.join_ref, beat.ref, beat.topic, beat.event) == ("9", "2", "phoenix", "phx_reply")
    assert beat.status == "ok" and beat.response == {"a": 1}


def test_a_frame_for_another_topic_says_one_conversation_per_socket() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        joined().receive(push("audio_segment_decoded", {}, topic="conversation:a@b"))
    assert str(info.value) == (
        "frame for topic 'conversation:a@b' on the socket of "
        f"'{TOPIC}': one conversation per socket"
    )


def test_other_phoenix_topic_events_are_kept_with_their_envelope() -> None:
    client = joined()
    ev = client.receive(json.dumps(["4", "5", "phoenix", "presence_diff", {"x": 1}]))
    assert isinstance(ev, UnknownEvent)
    assert (ev.join_ref, ev.ref, ev.topic, ev.type, dict(ev.payload)) == (
        "4",
        "5",
        "phoenix",
        "presence_diff",
        {"x": 1},
    )
    assert client.joined


def test_a_phoenix_topic_reply_never_answers_the_join() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    # the join's ref, but on the socket's own topic: not the channel's answer
    client.receive(json.dumps(["1", "1", "phoenix", "phx_reply", {"status": "ok"}]))
    assert not client.joined
    client.receive(JOIN_OK)
    assert client.joined


@pytest.mark.parametrize("readonly", [False, True])
def test_phx_close_while_joined_leaves_the_conversation(readonly: bool) -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join(readonly=readonly)
    client.receive(JOIN_OK)
    close = client.receive(json.dumps(["1", "1", TOPIC, "phx_close", {"a": 2}]))
    assert isinstance(close, Ok)
    assert (close.join_ref, close.ref, close.topic, close.event) == ("1", "1", TOPIC, "phx_close")
    assert close.status is None and close.response == {} and dict(close.payload) == {"a": 2}
    assert client.left and client.state.value == "left"
    with pytest.raises(LocalProtocolError):
        client.send_audio_chunk(b"\x00\x00")
    assert '"phx_join"' in client.join(model="en")  # a new join is allowed


def test_phx_close_while_joining_or_leaving_ends_the_wait() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    client.receive(json.dumps(["1", "1", TOPIC, "phx_close", {}]))
    assert client.left
    client = joined()
    client.leave()
    client.receive(json.dumps(["1", "1", TOPIC, "phx_close", {}]))
    assert client.left  # no speaker_left will come: the channel is closed


# ------------------------------------------------------------ replies
def refuse(
    client: Conversation, response: Any, ref: Optional[str] = None, topic: str = TOPIC
) -> UhliveError:
    ref = client.join_ref if ref is None else ref
    frame = json.dumps([ref, ref, topic, "phx_reply", {"status": "error", "response": response}])
    with pytest.raises(UhliveError) as info:
        client.receive(frame)
    return info.value


def test_an_error_reply_without_a_reason_shows_the_response() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    assert str(refuse(client, "quota exceeded")) == '"quota exceeded"'
    client.join()
    assert str(refuse(client, {"reason": ""})) == '{"reason": ""}'
    client.join()
    assert str(refuse(client, {"reason": 42})) == '{"reason": 42}'
    client.join()
    assert str(refuse(client, None)) == "error"
    client.join()
    long = {"details": "y" * 500}
    assert str(refuse(client, long)) == json.dumps(long)[:200]
    assert client.left


def test_only_the_refused_join_ends_the_join() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    refuse(client, {"reason": "not that one"}, ref="7")  # another request's refusal
    assert client.state.value == "joining"
    # the join's ref, on the socket's own topic: not the channel's answer
    refuse(client, {"reason": "heartbeat refused"}, ref="1", topic="phoenix")
    assert client.state.value == "joining"
    client.receive(JOIN_OK)
    assert client.joined


def test_a_late_reply_to_an_earlier_request_does_not_accept_a_new_join() -> None:
    client = joined()
    client.leave()  # ref "2"
    client.receive(json.dumps(["1", "1", TOPIC, "phx_close", {}]))  # closed before the reply
    client.join()  # ref "3"
    late = client.receive(json.dumps(["1", "2", TOPIC, "phx_reply", {"status": "ok"}]))
    assert isinstance(late, Ok) and late.ref == "2"
    assert client.state.value == "joining"
    client.receive(json.dumps(["3", "3", TOPIC, "phx_reply", {"status": "ok", "response": {}}]))
    assert client.joined


def test_a_reply_with_another_status_is_kept_as_an_unknown_event() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    client.join()
    ev = client.receive(json.dumps(["1", "1", TOPIC, "phx_reply", {"status": "pending"}]))
    assert isinstance(ev, UnknownEvent)
    assert (ev.join_ref, ev.ref, ev.topic, ev.type) == ("1", "1", TOPIC, "phx_reply")
    assert client.state.value == "joining"  # neither accepted nor refused


# ------------------------------------------------------------ construction and join
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "conv", "me"), "identifier must be a non-empty string, got ''"),
        (("id", "", "me"), "conversation_id must be a non-empty string, got ''"),
        (("id", "conv", None), "speaker must be a non-empty string, got None"),
    ],
)
def test_an_empty_name_is_refused_by_its_name(args: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Conversation(*args)
    assert str(info.value) == message


def test_the_topic_may_take_255_utf8_bytes_and_no_more() -> None:
    # "conversation:" + identifier + "@" + conversation_id
    client = Conversation("i" * 120, "c" * 121, "me")
    assert len(client.topic.encode()) == 255
    assert (client.identifier, client.conversation_id, client.speaker) == (
        "i" * 120,
        "c" * 121,
        "me",
    )
    client.join()
    client.receive(json.dumps(["1", "1", client.topic, "phx_reply", {"status": "ok"}]))
    assert client.send_audio_chunk(b"")[3] == 255  # the topic length fits its byte
    with pytest.raises(ConfigurationError) as info:
        Conversation("i" * 120, "c" * 122, "me")
    assert str(info.value) == (
        "identifier and conversation_id are too long: the topic "
        "'conversation:<identifier>@<conversation_id>' takes 256 UTF-8 bytes, "
        "the protocol allows 255"
    )
    with pytest.raises(ConfigurationError, match="takes 256 UTF-8 bytes"):
        Conversation("é" * 60, "c" * 122, "me")  # 196 characters, 256 bytes


def test_state_before_the_first_join() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    assert client.join_ref is None
    assert client.readonly is False
    assert client.audio_codec == "linear"
    assert client.last_ref == "0"
    assert repr(client) == f"<Conversation {TOPIC!r} speaker='john_test' idle>"


def test_join_defaults_and_what_the_join_remembers() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    frame = json.loads(client.join())
    assert frame[4] == {
        "readonly": False,
        "speaker": "john_test",
        "model": "fr",
        "country": "fr",
        "interim_results": True,
        "rescoring": True,
        "origin": 0,
        "audio_codec": "linear",
    }
    assert client.join_ref == "1"
    assert repr(client) == f"<Conversation {TOPIC!r} speaker='john_test' joining>"
    client = Conversation("customerid", "myconv", "john_test")
    client.join(audio_codec="g711u", readonly=True)
    assert client.audio_codec == "g711u" and client.readonly is True


def test_join_messages_say_what_to_do() -> None:
    client = Conversation("customerid", "myconv", "john_test")
    with pytest.raises(ConfigurationError) as info:
        client.join(model="")
    assert str(info.value) == "a speaker needs a model (e.g. model='fr'); or join readonly"
    with pytest.raises(ConfigurationError) as info:
        client.join(audio_codec="opus")
    assert str(info.value) == "unknown audio_codec 'opus'; use one of linear, g711a, g711u"
    client.join()
    with pytest.raises(LocalProtocolError) as info:
        client.join()
    assert str(info.value) == (
        "cannot join: the conversation is joining; "
        "leave and wait for .left first (one conversation per socket)"
    )


# ------------------------------------------------------------ reading events
def test_numbers_of_the_wrong_type_read_as_none() -> None:
    ev = joined().receive(
        push(
            "audio_segment_decoded",
            {"speaker": "A", "start": 5120.0, "end": 5120.5, "length": True, "confidence": True},
        )
    )
    assert isinstance(ev, AudioSegmentDecoded)
    assert ev.start == 5120 and isinstance(ev.start, int)  # a whole float is a time
    assert ev.end is None and ev.length is None
    assert ev.confidence is None  # a boolean is no confidence
    ev = joined().receive(push("audio_segment_decoded", {"confidence": "0.9"}))
    assert ev.confidence is None
    ev = joined().receive(push("audio_segment_decoded", {"confidence": 1}))
    assert ev.confidence == 1.0 and isinstance(ev.confidence, float)


def test_reprs_name_the_event_and_its_content() -> None:
    client = joined()
    ev = client.receive(push("audio_segment_decoded", {"speaker": "A", "value": "hi"}))
    assert repr(ev) == "AudioSegmentDecoded(payload={'speaker': 'A', 'value': 'hi'})"
    entity = client.receive(
        push(
            "entity_cardinal_number_recognized",
            {"speaker": "Alice", "display": "3", "source": "trois"},
        )
    )
    assert isinstance(entity, EntityRecognized)
    assert repr(entity) == "EntityRecognized in Alice: <cardinal_number> 3"
    bare = client.receive(push("entity_city_found", {"speaker": "B", "source": "paris"}))
    assert repr(bare) == "EntityFound in B: <city> paris"
