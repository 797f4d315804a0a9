"""Direct tests of the streaming recognizer (:class:`voxsync.local.Recognizer`).

Real pocketsphinx on the sample recordings; no connection, no threads except
where a test interrupts a decoding from another thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any, List

import pytest
from speech import TRANSCRIPTS, chunks, pcm16, wer

from voxsync.audio import AudioFormat, convert
from voxsync.errors import AudioFormatError, ConfigurationError, LocalProtocolError
from voxsync.local import Recognizer, Segment
from voxsync.local.recognizer import build_decoder

RATE = 16000
CHUNK = 3200  # 100 ms


@pytest.fixture(scope="module")
def decoder() -> Any:
    """One loaded decoder, reused (as the emulators' pool does) to save model loads."""
    return build_decoder()


def run(recognizer: Recognizer, pcm: bytes, size: int = CHUNK) -> List[Segment]:
    out: List[Segment] = []
    for chunk in chunks(pcm, size):
        out += recognizer.feed(chunk)
    return out + recognizer.flush()


def finals(segments: List[Segment]) -> List[Segment]:
    return [s for s in segments if s.is_final]


def text(segments: List[Segment]) -> str:
    return " ".join(s.text for s in finals(segments))


def test_finals_do_not_depend_on_the_chunk_size(decoder: Any) -> None:
    pcm = pcm16("two_utterances.wav")
    results = []
    for size in (320, CHUNK, 48000, len(pcm)):
        with Recognizer(decoder=decoder) as rec:
            results.append([(s.text, s.words) for s in finals(run(rec, pcm, size))])
    assert results[0], "no final segment"
    assert all(r == results[0] for r in results[1:]), results


def test_final_words_do_not_depend_on_partial_settings(decoder: Any) -> None:
    pcm = pcm16("two_utterances.wav")
    results = []
    for partial_ms in (0, 30, 200, 1000):
        with Recognizer(decoder=decoder, partial_ms=partial_ms) as rec:
            segments = run(rec, pcm)
        assert partial_ms or all(s.is_final for s in segments)
        # same words; without partials the first utterance is not decoded
        # provisionally, which can move a word boundary by a frame
        results.append([s.text for s in finals(segments)])
    assert len(results[0]) == 2
    assert all(r == results[0] for r in results[1:]), results


def test_one_whole_chunk_without_partials_gives_the_words(decoder: Any) -> None:
    # partial_ms=0: a whole utterance reaches the decoder at once (in slices)
    pcm = pcm16("quick_brown_fox.wav")
    with Recognizer(decoder=decoder, partial_ms=0) as rec:
        segments = rec.feed(pcm) + rec.flush()
    assert all(s.is_final for s in segments)
    assert text(segments) == TRANSCRIPTS["quick_brown_fox.wav"]


def test_segments_indices_and_timings(decoder: Any) -> None:
    pcm = pcm16("two_utterances.wav")
    duration = len(pcm) / (2 * RATE)
    with Recognizer(decoder=decoder) as rec:
        segments = run(rec, pcm)
    final = finals(segments)
    assert [s.index for s in final] == [0, 1]
    assert wer(TRANSCRIPTS["two_utterances.wav"], text(segments)) == 0.0
    for seg in final:
        partials = [s for s in segments if not s.is_final and s.index == seg.index]
        assert partials, f"utterance {seg.index} had no partial"
        assert segments.index(partials[-1]) < segments.index(seg)
        assert all(p.confidence is None and p.words == () for p in partials)
        assert seg.confidence is not None and 0.0 <= seg.confidence <= 1.0
        assert " ".join(w.text for w in seg.words) == seg.text
        assert seg.start == seg.words[0].start and seg.end == seg.words[-1].end
        for word in seg.words:
            assert word.start is not None and word.end is not None
            assert 0.0 <= word.start < word.end <= duration
    assert final[0].end <= final[1].start


def test_silence_and_empty_input_give_nothing(decoder: Any) -> None:
    with Recognizer(decoder=decoder) as rec:
        assert rec.feed(b"") == []
        assert rec.feed(bytes(RATE * 2 * 3)) == []
        assert rec.flush() == []
        assert not rec.in_speech


def test_flush_ends_an_utterance_cut_mid_speech(decoder: Any) -> None:
    pcm = pcm16("quick_brown_fox.wav")
    cut = pcm[: len(pcm) * 2 // 3 // 2 * 2]
    with Recognizer(decoder=decoder) as rec:
        fed: List[Segment] = []
        for chunk in chunks(cut, CHUNK):
            fed += rec.feed(chunk)
        assert not finals(fed), "the audio stops mid-sentence: no final before flush"
        assert rec.in_speech
        last = rec.flush()
    assert len(finals(last)) == 1
    assert finals(last)[0].text.startswith("the quick brown")


def test_the_stream_goes_on_after_flush_and_restarts_after_reset(decoder: Any) -> None:
    yes, no = pcm16("yes.wav"), pcm16("no.wav")
    with Recognizer(decoder=decoder) as rec:
        first = finals(run(rec, yes))
        second = finals(run(rec, no))
        assert [s.text for s in first + second] == ["yes", "no"]
        assert [s.index for s in first + second] == [0, 1]
        assert second[0].start >= len(yes) / (2 * RATE)  # stream time goes on
        rec.reset()
        again = finals(run(rec, no))
    assert [(s.text, s.index) for s in again] == [("no", 0)]
    assert again[0].start == pytest.approx(second[0].start - len(yes) / (2 * RATE), abs=0.05)


def test_pooled_decoder_gives_the_same_result_to_each_stream(decoder: Any) -> None:
    pcm = pcm16("call_at_three.wav")
    results = []
    for _ in range(2):
        with Recognizer(decoder=decoder) as rec:
            results.append(text(run(rec, pcm)))
    assert results[0] == results[1] == TRANSCRIPTS["call_at_three.wav"]


@pytest.mark.parametrize("rate, name", [(44100, "meeting.wav"), (22050, "phone_number.wav")])
def test_other_sample_rates_are_resampled(rate: int, name: str) -> None:
    # Upsampled audio keeps the band the model expects: the same words as at
    # 16 kHz. (8 kHz telephone audio loses half of it; its accuracy is
    # measured in tests/test_local_accuracy.py.)
    pcm = convert(pcm16(name), AudioFormat(sample_rate=RATE), AudioFormat(sample_rate=rate))
    with Recognizer(rate) as rec:  # a new decoder: no history from other tests
        assert rec.sample_rate == rate
        segments = run(rec, pcm, rate // 5)
    assert text(segments) == TRANSCRIPTS[name]
    duration = len(pcm) / (2 * rate)
    words = [w for s in finals(segments) for w in s.words]
    assert words and all(w.end is not None and w.end <= duration for w in words)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 3000},
        {"sample_rate": 16000.0},
        {"silence_ms": 50},
        {"silence_ms": True},
        {"partial_ms": -1},
        {"vad_mode": 4},
    ],
)
def test_bad_settings_raise_configuration_error(decoder: Any, kwargs: Any) -> None:
    with pytest.raises(ConfigurationError):
        Recognizer(decoder=decoder, **kwargs)


def test_bad_audio_raises_audio_format_error(decoder: Any) -> None:
    with Recognizer(decoder=decoder) as rec:
        with pytest.raises(AudioFormatError, match="bytes"):
            rec.feed("not audio")  # type: ignore[arg-type]
        with pytest.raises(AudioFormatError, match="even number"):
            rec.feed(b"\x00\x00\x00")
        assert rec.feed(bytearray(640)) == []  # still usable


def test_closed_recognizer_refuses_audio(decoder: Any) -> None:
    rec = Recognizer(decoder=decoder)
    rec.feed(pcm16("yes.wav")[:RATE])  # mid-utterance
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(LocalProtocolError, match="closed"):
        rec.feed(b"\x00\x00")
    with pytest.raises(LocalProtocolError, match="closed"):
        rec.flush()
    # the decoder was left clean for the next stream
    with Recognizer(decoder=decoder) as rec2:
        assert text(run(rec2, pcm16("yes.wav"))) == "yes"


def long_speech(seconds: float) -> bytes:
    """Samples one after the other, 0.5 s apart, repeated up to ``seconds``."""
    gap = bytes(RATE)
    one = b"".join(pcm16(name) + gap for name in sorted(TRANSCRIPTS))
    repeats = int(seconds * RATE * 2 // len(one)) + 1
    return (one * repeats)[: int(seconds * RATE) * 2]


def test_interrupt_stops_a_large_chunk_from_another_thread(decoder: Any) -> None:
    pcm = long_speech(120)
    rec = Recognizer(decoder=decoder)
    result: List[List[Segment]] = []
    errors: List[BaseException] = []

    def decode() -> None:
        try:
            result.append(rec.feed(pcm))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=decode, name="test-decode", daemon=True)
    thread.start()
    time.sleep(0.5)  # well into the 2 minutes of audio
    assert thread.is_alive(), "the 2-minute chunk was decoded too fast to test interruption"
    interrupted_at = time.monotonic()
    rec.interrupt()
    thread.join(10)
    assert not thread.is_alive(), "feed() did not return after interrupt()"
    took = time.monotonic() - interrupted_at
    assert took < 1.0, f"feed() went on for {took:.2f} s after interrupt()"
    assert not errors, errors
    assert all(isinstance(s, Segment) for s in result[0])
    with pytest.raises(LocalProtocolError, match="closed"):
        rec.feed(b"\x00\x00")
    rec.close()
    # the decoder is usable again
    with Recognizer(decoder=decoder) as rec2:
        assert text(run(rec2, pcm16("no.wav"))) == "no"


def test_interrupt_before_feeding_closes_at_the_next_call(decoder: Any) -> None:
    rec = Recognizer(decoder=decoder)
    rec.interrupt()
    rec.interrupt()
    assert rec.feed(pcm16("yes.wav")) == []
    with pytest.raises(LocalProtocolError):
        rec.flush()


def test_first_utterance_mean_is_estimated_from_all_of_it(decoder: Any) -> None:
    # The same utterance decoded first (with the estimate from itself) and
    # second (with the running mean) gives the same words: the first one of
    # a stream is no longer the weak one.
    pcm = pcm16("phone_number.wav")
    gap = bytes(RATE * 2)
    with Recognizer(decoder=decoder) as rec:
        segments = finals(run(rec, pcm + gap + pcm))
    assert [s.text for s in segments] == [TRANSCRIPTS["phone_number.wav"]] * 2
