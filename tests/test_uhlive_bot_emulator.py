"""The emulator's /bots endpoint: grammars, hotword mode, timers (scripted engine)."""

from __future__ import annotations

import math
import threading
from typing import Any, Iterator, List, Optional

import numpy as np
import pytest

from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.emulators.uhlive.bots import BUILTIN_GRAMMARS, DEFAULT_PARAMS
from voxsync.events import Message
from voxsync.uhlive.bot import BotConnection
from voxsync.uhlive.recognition import RecognitionComplete


def tone(seconds: float) -> bytes:
    t = np.arange(int(8000 * seconds))
    return (8000 * np.sin(2 * math.pi * 440 * t / 8000)).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(8000 * seconds)


@pytest.fixture
def emu() -> Iterator[UhliveEmulator]:
    with UhliveEmulator(engine="scripted", transcripts=["hello there", "yes"]) as emu:
        yield emu


def run(
    emu: UhliveEmulator,
    audio: bytes,
    *grammars: str,
    starts: Optional[List[Any]] = None,
    **kwargs: Any,
) -> RecognitionComplete:
    bot = BotConnection(token=emu.issue_token(), api_url=emu.ws_url)
    bot.connect(timeout=10)
    if starts is not None:
        bot.on("start_of_input", starts.append)
    sent = threading.Event()

    def on_message(msg: Message) -> None:
        if msg.type == "RECOGNITION-IN-PROGRESS" and not sent.is_set():
            sent.set()
            bot.send(audio)

    bot.on("message", on_message)
    try:
        result = bot.recognize(*grammars, timeout=15, **kwargs)
    finally:
        bot.close()
    assert result is not None
    return result


def test_hotword_mode_listens_until_the_grammar_matches(emu: UhliveEmulator) -> None:
    starts: List[Any] = []
    audio = tone(0.4) + silence(0.9) + tone(0.4)
    result = run(emu, audio, "builtin:speech/boolean", mode="hotword", starts=starts)
    assert result.completion_cause == "Success"
    assert result.transcript == "yes" and result.value is True
    assert not starts  # no START-OF-INPUT in hotword mode


def test_normal_mode_takes_the_first_utterance(emu: UhliveEmulator) -> None:
    starts: List[Any] = []
    audio = tone(0.4) + silence(0.9) + tone(0.4)
    result = run(emu, audio, "builtin:speech/boolean", starts=starts)
    assert len(starts) == 1 and starts[0].request_id == result.request_id
    assert result.completion_cause == "NoMatch"
    assert result.transcript == "hello there" and result.nlu is None


def test_hotword_max_duration(emu: UhliveEmulator) -> None:
    result = run(emu, b"", "builtin:speech/boolean", mode="hotword", hotword_max_duration=300)
    assert result.completion_cause == "HotwordMaxtime"


def test_recognition_timeout_cuts_long_speech() -> None:
    with UhliveEmulator(engine="scripted", transcripts=["four nine two one"]) as emu:
        result = run(emu, tone(2.0), "builtin:speech/spelling/digits", recognition_timeout=500)
    assert result.completion_cause == "SuccessMaxtime"
    assert result.value == "4921"


def test_several_grammars_first_match_wins() -> None:
    with UhliveEmulator(engine="scripted", transcripts=["twenty three"]) as emu:
        result = run(
            emu,
            tone(0.5),
            "builtin:speech/boolean",
            "builtin:speech/text2num",
            "builtin:speech/transcribe",
        )
    assert result.grammar_uri == "builtin:speech/text2num"
    assert result.nlu is not None and result.nlu.type == "builtin:speech/text2num"
    assert result.value == 23


@pytest.mark.parametrize(
    ("grammar", "text", "query", "expected"),
    [
        ("speech/boolean", "yes", {}, (True, True)),
        ("speech/boolean", "yeah sure", {}, (True, True)),
        ("speech/boolean", "no", {}, (True, False)),
        ("speech/boolean", "no no no", {}, (True, False)),
        ("speech/boolean", "yes no", {}, (False, None)),
        ("speech/boolean", "maybe", {}, (False, None)),
        ("speech/spelling/digits", "four oh two", {}, (True, "402")),
        ("speech/spelling/digits", "four oh two", {"length": "4"}, (False, None)),
        ("speech/spelling/digits", "four oh two", {"regex": "4[0-9]+"}, (True, "402")),
        ("speech/spelling/digits", "four oh two", {"regex": "5.*"}, (False, None)),
        ("speech/spelling/digits", "four oh two", {"min_length": "4"}, (False, None)),
        ("speech/spelling/digits", "four oh two", {"max_length": "2"}, (False, None)),
        ("speech/spelling/phone_number", "my number is five five five", {}, (True, "555")),
        ("speech/zipcode", "hello", {}, (False, None)),
        ("speech/text2num", "twenty three", {}, (True, 23)),
        ("speech/text2num", "one hundred and five", {}, (True, 105)),
        ("speech/text2num", "two thousand twenty", {}, (True, 2020)),
        ("speech/text2num", "hello", {}, (False, None)),
        ("speech/transcribe", "hello there", {}, (True, "hello there")),
        ("speech/transcribe", "", {}, (False, None)),
    ],
)
def test_grammar_interpretation(grammar: str, text: str, query: Any, expected: Any) -> None:
    words = text.split()
    assert BUILTIN_GRAMMARS[grammar].interpret(words, query) == expected


def test_default_params_are_protocol_names() -> None:
    assert DEFAULT_PARAMS["no_input_timeout"] == 5000
    assert set(DEFAULT_PARAMS) >= {
        "speech_language",
        "confidence_threshold",
        "recognition_timeout",
        "speech_complete_timeout",
        "hotword_max_duration",
    }
