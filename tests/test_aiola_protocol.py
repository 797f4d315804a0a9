"""aiOla's sans-I/O protocol module: query, event decoding, refusals, speech heuristic."""

from __future__ import annotations

import json
import struct
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

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
