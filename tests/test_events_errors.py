"""Event objects, the error hierarchy and redaction of secrets."""

from __future__ import annotations

import builtins
import dataclasses
import logging
import re

import pytest

import voxsync
from voxsync import errors
from voxsync.audio.format import AudioFormat
from voxsync.events import (
    AudioChunk,
    Disconnected,
    Message,
    StreamWarning,
    Transcript,
    Translation,
    Word,
)
from voxsync.redact import REDACTED, redact, redact_headers, secret_repr


def test_events_are_frozen_and_read_like_the_raw_payload():
    ev = Transcript("turn the valve", raw={"transcript": "turn the valve", "extra": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.text = "other"  # type: ignore[misc]
    assert ev["transcript"] == "turn the valve"
    assert ev.get("transcript", ev) == "turn the valve"  # the vendor snippets' idiom
    assert ev.get("missing", "dflt") == "dflt"
    assert "extra" in ev and "nope" not in ev
    assert set(ev.keys()) == {"transcript", "extra"}
    assert str(ev) == "turn the valve"
    assert ev.event_name == "transcript"
    with pytest.raises(KeyError):
        ev["missing"]


def test_event_reprs_and_names():
    words = (Word("hello", 0.1, 0.4, 0.9), Word("world", 0.5, 0.9))
    t = Transcript("hello wor", is_final=False, words=words, speaker="Alice")
    assert repr(t) == "<Transcript partial speaker='Alice' 'hello wor'>"
    assert str(words[0]) == "hello"
    assert Translation("hola", target_language="es").event_name == "translation"
    chunk = AudioChunk(b"\0\0", AudioFormat(24000))
    assert "2 bytes" in repr(chunk) and chunk.event_name == "audio"
    assert str(StreamWarning("audio_dropped", "3 chunks")) == "audio_dropped: 3 chunks"
    assert Message("custom", raw={"a": 1})["a"] == 1
    assert Disconnected().event_name == "disconnect"


def test_error_hierarchy_matches_builtins():
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.AudioFormatError, errors.ConfigurationError)
    assert issubclass(errors.ConnectionError, builtins.ConnectionError)
    assert issubclass(errors.DisconnectedError, errors.ConnectionError)
    assert issubclass(errors.TimeoutError, builtins.TimeoutError)
    assert issubclass(errors.LocalProtocolError, errors.ProtocolError)
    assert issubclass(errors.ConcurrencyLimitError, errors.ServerError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.VoxsyncError)


def test_server_error_keeps_code_detail_and_reads_like_the_payload():
    err = errors.ServerError(
        "expected 16 kHz", code="INVALID_AUDIO_FORMAT", raw={"message": "Invalid audio"}
    )
    assert str(err) == "INVALID_AUDIO_FORMAT: expected 16 kHz"
    assert err["message"] == "Invalid audio" and err.get("details") is None
    assert not err.retryable


def test_handler_error_chains_the_original():
    def on_transcript(ev):
        raise RuntimeError("bad")

    cause = RuntimeError("bad")
    err = errors.HandlerError("transcript", on_transcript, cause)
    assert err.__cause__ is cause and err.event == "transcript"
    assert "on_transcript" in str(err) and "RuntimeError: bad" in str(err)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("wss://api.uh.live/socket/websocket?jwt=abc.def.ghi&vsn=2.0.0", "abc.def.ghi"),
        ("GET /x?execution_id=1&x-aiola-api-token=tok123456&flow_id=f", "tok123456"),
        ("Authorization: Bearer sk-live-1234567", "sk-live-1234567"),
        ("authorization: bearer sk-live-1234567", "sk-live-1234567"),
        ('{"access_token": "opaque-token-value", "expires_in": 300}', "opaque-token-value"),
        ("client_id=acme&client_secret=s3cr3t-value&grant_type=x", "s3cr3t-value"),
        ("user_pwd=hunter2-long", "hunter2-long"),
        ("token refused: eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDB9.c2ln", "eyJhbGciOiJIUzI1NiJ9"),
    ],
)
def test_redact_removes_secrets(text, secret):
    out = redact(text)
    assert secret not in out
    assert REDACTED in out
    # the whole credential goes: no piece of it is left on either side of the mask
    # (a narrowed pattern would leave e.g. "Bearer ***-live-1234567")
    assert not re.search(r"[\w.~+/-]" + re.escape(REDACTED), out), out
    assert not re.search(re.escape(REDACTED) + r"[\w.~+/=-]", out), out
    assert out == text.replace(secret, REDACTED) or secret.startswith("eyJ")


def test_redact_keeps_ordinary_text_and_removes_literal_secrets():
    assert redact("transcript: turn the valve to forty") == "transcript: turn the valve to forty"
    assert redact("flow_id=2c78fcf1&lang_code=en") == "flow_id=2c78fcf1&lang_code=en"
    assert redact("key is MYKEY-123 here", secrets=["MYKEY-123"]) == f"key is {REDACTED} here"
    headers = redact_headers({"Authorization": "Bearer abc", "Accept": "json"})
    assert headers == {"Authorization": REDACTED, "Accept": "json"}
    assert secret_repr("x") == repr(REDACTED) and secret_repr(None) == "None"


def test_library_is_polite():
    # no handlers installed, nothing configured, on any voxsync logger (pytest's
    # own capture handlers aside), even after the command line ran in-process
    from voxsync.cli import main

    assert main(["transcribe", "no-such-file.wav"]) == 1
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("voxsync") and isinstance(logger, logging.Logger):
            added = [
                h
                for h in logger.handlers
                if not isinstance(h, logging.NullHandler)
                and not type(h).__module__.startswith("_pytest")
            ]
            assert not added, (name, added)
            assert logger.propagate, name
    assert voxsync.__version__
    assert "Transcript" in voxsync.__all__ and "connect" in voxsync.__all__
    for name in voxsync.__all__:
        assert hasattr(voxsync, name), name
