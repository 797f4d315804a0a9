"""aiOla's sans-I/O protocol module: query, event decoding, refusals, speech heuristic."""

from __future__ import annotations

import json
import struct
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from voxsync.aiola import AiolaAuthenticationError
from voxsync.aiola.protocol import (
    SpeechTracker,
    decode_event,
    is_speech,
    refusal_error,
    stream_query,
    stream_url,
)
from voxsync.aiola.types import Structured
from voxsync.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionError,
    RemoteProtocolError,
    ServerError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import Event, Transcript, Translation, UnknownEvent

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
event_names = st.sampled_from(["transcript", "translation", "structured", "error"]) | st.text(
    max_size=20
)


@settings(max_examples=300, deadline=None)
@given(name=event_names, data=json_values, index=st.integers(0, 10**6))
def test_decode_event_never_raises_and_never_drops(name: str, data: Any, index: int) -> None:
    result = decode_event(name, data, language="en", index=index)
    assert isinstance(result, (Event, VoxsyncError))
    if isinstance(result, UnknownEvent):
        assert result.type == name and name not in ("transcript", "translation", "error")
    if isinstance(result, Transcript):
        assert result.is_final and result.id == str(index) and result.language == "en"
    if isinstance(result, RemoteProtocolError):
        assert name in ("transcript", "translation")


@settings(max_examples=100, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
def test_decoded_errors_keep_no_token(extra: dict) -> None:
    data = {"message": f"bad token {TOKEN}", "details": f"jwt={TOKEN}", **extra}
    err = decode_event("error", data)
    assert isinstance(err, ServerError) and TOKEN not in str(err)
    bad = decode_event("transcript", {"transcript": 3, "token": TOKEN})
    assert isinstance(bad, RemoteProtocolError) and TOKEN not in str(bad)


def test_decode_known_events() -> None:
    t = decode_event("transcript", {"transcript": "hello"}, index=4)
    assert isinstance(t, Transcript) and t.text == "hello" and t.id == "4"
    tr = decode_event(
        "translation",
        {"translation": "hola"},
        language="en",
        translation={"src_lang_code": "en", "dst_lang_code": "es"},
    )
    assert isinstance(tr, Translation) and tr.target_language == "es"
    assert isinstance(decode_event("structured", {"results": {"a": 1}}), Structured)
    err = decode_event("error", {"message": "m", "details": "d", "code": "C"})
    assert isinstance(err, ServerError) and err.code == "C" and "m: d" in str(err)


@settings(max_examples=100, deadline=None)
@given(
    keywords=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=3),
    lang=st.none() | st.sampled_from(["en", "de"]),
)
def test_stream_url_round_trips(keywords: dict, lang: Any) -> None:
    url = stream_url(
        "https://h.example/",
        TOKEN,
        execution_id="e1",
        workflow_id="w1",
        time_zone="UTC",
        lang_code=lang,
        keywords=keywords,
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "h.example", "")
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    assert query["x-aiola-api-token"] == TOKEN and query["flow_id"] == "w1"
    assert query.get("lang_code") == lang
    assert json.loads(query["keywords"]) == keywords if keywords else "keywords" not in query
    assert stream_query(TOKEN, execution_id="e", workflow_id="w", time_zone="UTC") == {
        "execution_id": "e",
        "flow_id": "w",
        "time_zone": "UTC",
        "x-aiola-api-token": TOKEN,
    }


def test_refusals_are_classified() -> None:
    base = "https://apis.example"
    cases = [
        ({"message": "busy", "data": {"code": "MAX_CONCURRENCY_REACHED"}}, ConcurrencyLimitError),
        ({"message": "down", "data": {"code": "SERVICE_UNAVAILABLE"}}, ServerError),
        ({"message": f"bad {TOKEN}", "data": {"code": "TOKEN_EXPIRED"}}, AuthenticationError),
        ({"message": "no"}, AuthenticationError),
    ]
    for connect_error, kind in cases:
        err = refusal_error(connect_error, "refused", base_url=base, secrets=(TOKEN,))
        assert isinstance(err, kind), (connect_error, err)
        assert TOKEN not in str(err)
    assert isinstance(
        refusal_error(None, "Unexpected status code 401", base_url=base), AuthenticationError
    )
    assert isinstance(refusal_error(None, "Connection timed out", base_url=base), TimeoutError)
    err = refusal_error(
        None, f"refused ?x-aiola-api-token={TOKEN}", base_url=base, secrets=(TOKEN,)
    )
    assert isinstance(err, ConnectionError) and TOKEN not in str(err)


@settings(max_examples=200, deadline=None)
@given(chunk=st.binary(max_size=400))
def test_speech_detection_takes_any_bytes(chunk: bytes) -> None:
    assert is_speech(chunk) in (True, False)


def test_speech_tracker_counts_utterances_in_audio_time() -> None:
    loud = struct.pack("<2h", 3000, -3000) * 800  # 0.1 s of speech-level audio
    quiet = bytes(3200)  # 0.1 s of silence
    tracker = SpeechTracker(pause=0.3)
    tracker.audio(quiet)
    assert tracker.pending == 0
    tracker.audio(loud)
    assert tracker.pending == 1
    tracker.audio(quiet)
    tracker.audio(quiet)
    tracker.audio(loud)  # a 0.2 s pause: the same utterance
    assert tracker.pending == 1
    for _ in range(3):
        tracker.audio(quiet)
    tracker.audio(loud)  # a 0.3 s pause: a second utterance
    assert (tracker.utterances, tracker.pending) == (2, 2)
    tracker.transcript()  # the first utterance's transcript, late
    assert tracker.pending == 1
    tracker.transcript()
    assert tracker.pending == 0
    tracker.transcript()  # the service split one: accounts for nothing sent later
    for _ in range(3):
        tracker.audio(quiet)
    tracker.audio(loud)
    assert tracker.pending == 1
    tracker.forget()  # the stream was reset: that utterance's transcript will not come
    assert tracker.pending == 0
    tracker.audio(loud)  # right after a reset: a new utterance
    assert tracker.pending == 1


def test_stream_query_carries_every_structured_option_as_json() -> None:
    tasks = {"TRANSLATION": {"src_lang_code": "en", "dst_lang_code": "es"}}
    vad = {"threshold": 0.6, "min_silence_duration_ms": 400}
    query = stream_query(
        TOKEN,
        execution_id="e",
        workflow_id="w",
        time_zone="UTC",
        lang_code="en",
        keywords={"voxsync": "vox sync"},
        tasks_config=tasks,
        vad_config=vad,
    )
    assert json.loads(query["tasks_config"]) == tasks
    assert json.loads(query["vad_config"]) == vad
    assert json.loads(query["keywords"]) == {"voxsync": "vox sync"}
    assert query["lang_code"] == "en"


def test_stream_url_keeps_the_base_path() -> None:
    url = stream_url(
        "https://h.example/voice/X/", TOKEN, execution_id="e", workflow_id="w", time_zone="UTC"
    )
    assert url.startswith("https://h.example/voice/X?execution_id=e&")


def test_decoded_transcript_carries_language_id_and_payload() -> None:
    payload = {"transcript": "hello there", "confidence": 0.9}
    t = decode_event("transcript", payload, language="en", index=7)
    assert isinstance(t, Transcript)
    assert t.is_final is True and t.language == "en" and t.id == "7"
    assert t.raw == payload
    first = decode_event("transcript", {"transcript": "hi"})
    assert isinstance(first, Transcript) and first.id == "0"  # the first utterance


def test_decoded_translation_languages_id_and_payload() -> None:
    payload = {"translation": "hola"}
    tr = decode_event(
        "translation",
        payload,
        language="en",
        translation={"src_lang_code": "de", "dst_lang_code": "es"},
        index=3,
    )
    assert isinstance(tr, Translation)
    assert (tr.text, tr.source_language, tr.target_language, tr.id) == ("hola", "de", "es", "3")
    assert tr.raw == payload
    # no source language configured for the task: the stream's language
    tr = decode_event("translation", payload, language="en", translation={"dst_lang_code": "es"})
    assert isinstance(tr, Translation) and tr.source_language == "en"


def test_decoded_structured_results() -> None:
    payload = {"results": {"name": "Ada", "age": 36}, "flow": "form"}
    s = decode_event("structured", payload)
    assert isinstance(s, Structured)
    assert s.results == {"name": "Ada", "age": 36} and s.raw == payload
    odd = decode_event("structured", {"results": ["not", "a", "mapping"]})
    assert isinstance(odd, Structured) and odd.results == {}


def test_malformed_text_events_say_what_is_missing_and_show_the_payload() -> None:
    for name in ("transcript", "translation"):
        payload = {name: 12, "extra": "y" * 500}
        err = decode_event(name, payload)
        assert isinstance(err, RemoteProtocolError)
        message = str(err)
        prefix = f"aiOla sent a {name} event without a text '{name}' field: "
        assert message.startswith(prefix)
        shown = message[len(prefix) :]
        assert shown == repr(payload)[:200]  # the payload, cut to 200 characters


def test_decoded_errors_message_code_and_defaults() -> None:
    bare = decode_event("error", "quota exceeded")
    assert isinstance(bare, ServerError)
    assert str(bare) == "quota exceeded" and bare.code is None
    no_message = decode_event("error", {"code": "E42"})
    assert isinstance(no_message, ServerError)
    assert no_message.detail == "aiOla reported an error" and no_message.code == "E42"
    empty = decode_event("error", {})
    assert isinstance(empty, ServerError)
    assert str(empty) == "aiOla reported an error" and empty.code is None
    numeric = decode_event("error", {"message": "slow down", "code": 429})
    assert isinstance(numeric, ServerError) and numeric.code == "429"


def test_refusal_errors_say_what_to_do_and_keep_the_payload() -> None:
    base = "https://apis.example"
    busy = {"message": "too many streams", "data": {"code": "MAX_CONCURRENCY_REACHED"}}
    err = refusal_error(busy, "refused", base_url=base)
    assert isinstance(err, ConcurrencyLimitError)
    assert err.code == "MAX_CONCURRENCY_REACHED" and err.raw == busy
    assert "too many streams" in str(err) and "close a session first" in str(err)
    down = {"message": "maintenance", "data": {"code": "SERVICE_UNAVAILABLE"}}
    err = refusal_error(down, "refused", base_url=base)
    assert isinstance(err, ServerError) and not isinstance(err, ConcurrencyLimitError)
    assert (err.code, err.retryable, err.raw) == ("SERVICE_UNAVAILABLE", True, down)
    assert err.detail == "aiOla refused the stream: maintenance"
    expired = {"message": "expired", "data": {"code": "TOKEN_EXPIRED"}}
    auth = refusal_error(expired, "refused", base_url=base)
    assert isinstance(auth, AiolaAuthenticationError)
    assert auth.code == "TOKEN_EXPIRED" and auth.raw == expired
    assert "expired" in str(auth) and "check the access token / API key" in str(auth)
    no_code = refusal_error({}, "refused", base_url=base)
    assert isinstance(no_code, AiolaAuthenticationError) and no_code.code is None
    assert str(no_code) == (  # no message from the service
        "aiOla refused the stream: connection refused; check the access token / API key"
    )
    # an older server puts the code next to the message
    flat = refusal_error(
        {"message": "busy", "code": "MAX_CONCURRENCY_REACHED"}, "refused", base_url=base
    )
    assert isinstance(flat, ConcurrencyLimitError)


def test_refusal_errors_redact_plain_secrets() -> None:
    key = "plain-api-key-1234"  # not shaped like a JWT: only the secrets list can hide it
    err = refusal_error({"message": f"key {key} unknown"}, "x", base_url="h", secrets=(key,))
    assert key not in str(err) and "unknown" in str(err)
    err = refusal_error(None, f"reset by peer ({key})", base_url="h", secrets=(key,))
    assert isinstance(err, ConnectionError) and key not in str(err)


def test_transport_refusals_messages() -> None:
    base = "https://apis.example"
    auth = refusal_error(None, "Unexpected status code 403 in server response", base_url=base)
    assert isinstance(auth, AuthenticationError)
    assert str(auth).startswith("aiOla refused the credentials: ") and "403" in str(auth)
    for text in ("read Timeout", "Connection timed out"):
        late = refusal_error(None, text, base_url=base)
        assert isinstance(late, TimeoutError)
        assert str(late) == f"aiOla did not accept the stream in time: {text}"
    down = refusal_error(None, "Connection refused", base_url=base)
    assert isinstance(down, ConnectionError)
    assert str(down) == "cannot connect to aiOla at https://apis.example: Connection refused"


def test_speech_level_bounds() -> None:
    assert is_speech(struct.pack("<h", 3000))  # a single loud sample
    assert not is_speech(b"\xff")  # less than a sample
    at_level = struct.pack("<h", 300) * 160
    assert is_speech(at_level)  # exactly SPEECH_RMS counts
    assert not is_speech(struct.pack("<h", 299) * 160)
    assert not is_speech(struct.pack("<h", 20) * 160)  # quiet, however long
    # loud only in the last third: the whole chunk is measured
    assert is_speech(bytes(400) + struct.pack("<h", 1000) * 100)
    assert is_speech(struct.pack("<h", 500) * 160, rms=400)
    assert not is_speech(struct.pack("<h", 500) * 160, rms=600)


def test_speech_tracker_uses_its_level_and_an_exact_pause() -> None:
    tracker = SpeechTracker(rms=1000.0)
    tracker.audio(struct.pack("<h", 500) * 1600)  # speech for the default level, not this one
    assert tracker.pending == 0
    loud = struct.pack("<h", 3000) * 1600
    quarter = bytes(8000)  # 0.25 s of silence at 16 kHz
    tracker = SpeechTracker(pause=0.5)
    tracker.audio(loud)
    tracker.audio(quarter)
    tracker.audio(quarter)  # exactly the pause: a new utterance
    tracker.audio(loud)
    assert tracker.pending == 2
