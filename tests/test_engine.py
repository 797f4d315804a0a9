"""The emulators' recognition engines: scripted (deterministic) and pocketsphinx."""

from __future__ import annotations

import threading
from typing import Dict, List

import numpy as np
import pytest
import soxr
from speech import MAX_WER, TRANSCRIPTS, chunks, pcm16, wer

from voxsync.emulators.engine import (
    Engine,
    EngineSession,
    Segment,
    make_engine,
)
from voxsync.errors import AudioFormatError, ConfigurationError, LocalProtocolError


def run(session: EngineSession, pcm: bytes, size: int = 3200) -> List[Segment]:
    out: List[Segment] = []
    for chunk in chunks(pcm, size):
        out += session.feed(chunk)
    out += session.flush()
    return out


def check_order(segments: List[Segment]) -> None:
    """Indexes go up by one; each utterance's partials come before its final."""
    finals = [s for s in segments if s.is_final]
    assert [s.index for s in finals] == list(range(len(finals)))
    for final in finals:
        pos = segments.index(final)
        assert all(
            segments.index(s) < pos for s in segments if s.index == final.index and not s.is_final
        )
        assert final.start <= final.end


def to_rate(pcm: bytes, rate: int) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2")
    return bytes(soxr.resample(samples, 16000, rate).astype("<i2").tobytes())


# -- scripted ---------------------------------------------------------------------


def test_scripted_transcripts_per_utterance() -> None:
    engine = make_engine("scripted", transcripts=["first one here", "second"])
    assert isinstance(engine, Engine)
    segments = run(engine.new_session(16000), pcm16("two_utterances.wav"))
    check_order(segments)
    finals = [s for s in segments if s.is_final]
    assert [f.text for f in finals] == ["first one here", "second"]
    assert [w.text for w in finals[0].words] == ["first", "one", "here"]
    assert finals[0].confidence == 1.0
    # partials show a growing prefix, never the whole text
    partials = [s.text for s in segments if not s.is_final and s.index == 0]
    assert partials == ["first", "first one"]
    # utterances are where the speech is: ~0.45-2.1 s and ~3.4-5.2 s
    assert 0.3 < finals[0].start < 0.6 and 1.8 < finals[0].end < 2.3
    assert 3.2 < finals[1].start < 3.6 and 4.8 < finals[1].end < 5.4


def test_scripted_is_deterministic_whatever_the_chunking() -> None:
    engine = make_engine("scripted", transcripts=["a b c", "d e"])
    pcm = pcm16("two_utterances.wav")
    reference = run(engine.new_session(), pcm, 3200)
    assert reference == run(engine.new_session(), pcm, 3200)
    assert reference == run(engine.new_session(), pcm, 322)
    assert reference == run(engine.new_session(), pcm, len(pcm))


def test_scripted_cycles_through_the_transcripts() -> None:
    engine = make_engine("scripted", transcripts=["a", "b", "c"])
    pcm = pcm16("two_utterances.wav")
    segments = run(engine.new_session(), pcm + pcm)
    assert [s.text for s in segments if s.is_final] == ["a", "b", "c", "a"]


def test_scripted_flush_ends_the_utterance_in_progress() -> None:
    engine = make_engine("scripted", transcripts=["cut short"])
    session = engine.new_session()
    pcm = pcm16("yes.wav")[: 16000 * 2 * 3 // 4]  # stops in the middle of the word
    assert not [s for s in session.feed(pcm) if s.is_final]
    last = session.flush()
    assert [s.text for s in last if s.is_final] == ["cut short"]
    assert session.flush() == []  # nothing pending any more
    session.close()


def test_scripted_every_bytes() -> None:
    engine = make_engine("scripted", transcripts=["x y", "z"], every_bytes=8000)
    session = engine.new_session(8000)
    segments = run(session, b"\x00\x00" * 20000, 3000)  # 40000 bytes: 5 blocks of 0.5 s
    finals = [s for s in segments if s.is_final]
    assert [f.text for f in finals] == ["x y", "z", "x y", "z", "x y"]
    assert [(f.start, f.end) for f in finals[:2]] == [(0.0, 0.5), (0.5, 1.0)]
    # one partial in the middle of each block whose text has more than one word
    assert [s.text for s in segments if not s.is_final] == ["x", "x", "x"]
    check_order(segments)


def test_scripted_every_bytes_flush_closes_a_shown_partial() -> None:
    engine = make_engine("scripted", transcripts=["x y"], every_bytes=1000)
    session = engine.new_session()
    shown = session.feed(b"\x00" * 600)
    assert [(s.text, s.is_final) for s in shown] == [("x", False)]
    assert [(s.text, s.is_final) for s in session.flush()] == [("x y", True)]
    assert session.feed(b"\x00" * 200) == [] and session.flush() == []


def test_scripted_8k_session() -> None:
    engine = make_engine("scripted", transcripts=["hello"])
    segments = run(engine.new_session(8000), to_rate(pcm16("no.wav"), 8000), 1600)
    finals = [s for s in segments if s.is_final]
    assert [f.text for f in finals] == ["hello"]
    assert 0.3 < finals[0].start < finals[0].end < 1.2


@pytest.mark.parametrize(
    "kind, options, message",
    [
        ("nope", {}, "unknown engine kind"),
        ("scripted", {"transcripts": []}, "at least one"),
        ("scripted", {"every_bytes": 3}, "every_bytes"),
        ("scripted", {"silence_ms": -5}, "silence_ms"),
        ("scripted", {"colour": "red"}, "colour"),
        ("pocketsphinx", {"silence_ms": 5}, "silence_ms"),
        ("pocketsphinx", {"vocabulary": ["yes", "qqzzxv"]}, "qqzzxv"),
        ("pocketsphinx", {"grammar": "no-such-file.gram"}, "grammar"),
    ],
)
def test_bad_engine_options(kind: str, options: Dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_engine(kind, **options)


def test_session_misuse() -> None:
    engine = make_engine("scripted")
    session = engine.new_session()
    with pytest.raises(AudioFormatError, match="even number of bytes, got 3"):
        session.feed(b"\x00\x00\x00")
    with pytest.raises(AudioFormatError, match="bytes of 16-bit PCM, got str"):
        session.feed("text")  # type: ignore[arg-type]
    session.close()
    session.close()  # idempotent
    with pytest.raises(LocalProtocolError):
        session.feed(b"\x00\x00")
    with pytest.raises(ConfigurationError, match=r"4000\.\.192000 Hz, got 100"):
        engine.new_session(100)


# -- pocketsphinx ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sphinx() -> Engine:
    return make_engine("pocketsphinx")


def test_pocketsphinx_session_recognises_two_utterances(sphinx: Engine) -> None:
    with sphinx.new_session(16000) as session:
        segments = run(session, pcm16("two_utterances.wav"))
    check_order(segments)
    finals = [s for s in segments if s.is_final]
    assert len(finals) == 2
    text = " ".join(f.text for f in finals)
    assert wer(TRANSCRIPTS["two_utterances.wav"], text) <= MAX_WER, text
    assert all(f.words and f.confidence is not None for f in finals)
    assert any(not s.is_final for s in segments)


def test_pocketsphinx_8k_session_is_resampled() -> None:
    # Narrowband audio loses what the wideband model listens to above 4 kHz,
    # so the words are restricted to the sentence's vocabulary here.
    words = TRANSCRIPTS["call_at_three.wav"].split()
    engine = make_engine("pocketsphinx", vocabulary=sorted(set(words)))
    with engine.new_session(8000) as session:
        segments = run(session, to_rate(pcm16("call_at_three.wav"), 8000), 1600)
    finals = [s for s in segments if s.is_final]
    text = " ".join(f.text for f in finals)
    assert wer(TRANSCRIPTS["call_at_three.wav"], text) <= MAX_WER, text
    assert finals[-1].end < 3.4  # timings are in seconds of the 8 kHz stream


def test_pocketsphinx_sessions_from_several_threads(sphinx: Engine) -> None:
    results: Dict[str, str] = {}
    errors: List[BaseException] = []

    def work(name: str) -> None:
        try:
            with sphinx.new_session() as session:
                segments = run(session, pcm16(name))
            results[name] = " ".join(s.text for s in segments if s.is_final)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(name,), name=f"engine-test-{name}")
        for name in ("yes.wav", "no.wav")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results == {"yes.wav": "yes", "no.wav": "no"}
