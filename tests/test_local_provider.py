"""The ``local`` provider end to end: real audio, real pocketsphinx, real threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List

import pytest
from speech import MAX_WER, TRANSCRIPTS, pcm16, sample, wer

import voxsync
from voxsync.audio import stream_file
from voxsync.errors import ConfigurationError, LocalProtocolError
from voxsync.events import Transcript
from voxsync.local import LocalConnection, Recognizer


def transcribe(path: Path, *, realtime: bool = False, **options: object) -> List[Transcript]:
    conn = voxsync.connection("local", **options)
    events: List[Transcript] = []
    conn.on("transcript", events.append)
    with conn:
        stream_file(conn, path, realtime=realtime)
    assert conn.state == "closed"
    return events


def finals_text(events: List[Transcript]) -> str:
    return " ".join(e.text for e in events if e.is_final)


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_each_sample_gives_its_words(name: str) -> None:
    events = transcribe(sample(name))
    finals = [e for e in events if e.is_final]
    assert finals, f"no final transcript for {name}"
    error = wer(TRANSCRIPTS[name], finals_text(events))
    assert error <= MAX_WER, f"{name}: WER {error:.0%}: {finals_text(events)!r}"
    previous_end = 0.0
    for ev in finals:
        assert ev.language == "en"
        assert ev.confidence is not None and 0.0 <= ev.confidence <= 1.0
        assert ev.words and " ".join(w.text for w in ev.words) == ev.text
        assert ev["transcript"] == ev.text  # raw payload, as with the cloud providers
        for word in ev.words:
            assert word.start is not None and word.end is not None
            assert previous_end <= word.start < word.end <= 6.0
            previous_end = word.end
        assert ev.start == ev.words[0].start and ev.end == ev.words[-1].end


def test_partials_precede_the_final_of_their_utterance() -> None:
    events = transcribe(sample("two_utterances.wav"))
    finals = [e for e in events if e.is_final]
    assert [e.id for e in finals] == ["0", "1"]
    for final in finals:
        position = events.index(final)
        partials = [e for e in events if not e.is_final and e.id == final.id]
        assert partials, f"utterance {final.id} had no partial"
        assert all(events.index(p) < position for p in partials)
        # a partial is only sent when the hypothesis changed
        texts = [p.text for p in partials]
        assert all(a != b for a, b in zip(texts, texts[1:]))
        assert all(p.text for p in partials)
    # the second utterance starts after the first one's final
    first_final = events.index(finals[0])
    assert all(events.index(e) > first_final for e in events if e.id == "1")
    assert finals[0].end is not None and finals[1].start is not None
    assert finals[0].end + 0.5 < finals[1].start  # about 1 s of silence between them


def test_finish_delivers_the_last_words_without_trailing_silence() -> None:
    pcm = pcm16("quick_brown_fox.wav")
    cut = pcm[: len(pcm) - int(0.5 * 32000)]  # ends right after "dog"
    conn = voxsync.connect("local")
    events: List[Transcript] = []
    conn.on("transcript", events.append)
    for i in range(0, len(cut), 3200):
        conn.send(cut[i : i + 3200])
    conn.finish(timeout=30)
    text = finals_text(events)
    assert wer(TRANSCRIPTS["quick_brown_fox.wav"], text) <= MAX_WER, text
    assert text.endswith("lazy dog")


def test_realtime_pacing_gives_the_same_words() -> None:
    events = transcribe(sample("yes.wav"), realtime=True)
    assert finals_text(events) == "yes"


def test_decoding_runs_on_the_writer_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    feeding_threads = set()
    original = Recognizer.feed

    def spy(self: Recognizer, pcm: bytes) -> object:
        feeding_threads.add(threading.current_thread().name)
        return original(self, pcm)

    monkeypatch.setattr(Recognizer, "feed", spy)
    handler_threads = set()
    conn = voxsync.connection("local")
    conn.on("transcript", lambda ev: handler_threads.add(threading.current_thread().name))
    with conn:
        stream_file(conn, sample("no.wav"), realtime=False)
    assert len(feeding_threads) == 1
    (feeder,) = feeding_threads
    assert feeder.startswith("voxsync-local-") and feeder.endswith("-writer")
    assert handler_threads and all(n.endswith("-dispatch") for n in handler_threads)


def test_events_iterator_and_metrics() -> None:
    conn = voxsync.connect("local")
    assert conn.connected and conn.audio_format.sample_rate == 16000
    assert conn.audio_format.channels == 1 and conn.audio_format.encoding == "pcm_s16le"
    it = conn.events(timeout=30)
    stream_file(conn, sample("no.wav"), realtime=False, finish=True)
    names = [getattr(ev, "name", type(ev).__name__) for ev in it]
    assert "transcript" in names and names[-1] == "disconnect"
    assert conn.metrics.seconds_sent == pytest.approx(1.39, abs=0.02)


def test_vocabulary_restricts_the_words() -> None:
    events = transcribe(sample("yes.wav"), vocabulary=["yes", "no"])
    assert finals_text(events) == "yes"
    assert all(e.text in ("yes", "no", "yes no", "no yes") for e in events)


def test_keyphrase_spots_the_phrase() -> None:
    events = transcribe(sample("two_utterances.wav"), keyphrase="turn off the radio")
    assert "turn off the radio" in finals_text(events)
    assert "weather" not in finals_text(events)


def test_grammar_from_text() -> None:
    grammar = "#JSGF V1.0;\ngrammar answers;\npublic <answer> = yes | no | maybe later ;\n"
    events = transcribe(sample("no.wav"), grammar=grammar)
    assert finals_text(events) == "no"


def test_silence_ms_joins_utterances() -> None:
    events = transcribe(sample("two_utterances.wav"), silence_ms=2000)
    finals = [e for e in events if e.is_final]
    assert len(finals) == 1
    assert wer(TRANSCRIPTS["two_utterances.wav"], finals[0].text) <= MAX_WER


@pytest.mark.parametrize(
    "options, message",
    [
        ({"silence_ms": 10}, "silence_ms"),
        ({"partial_ms": -1}, "partial_ms"),
        ({"hmm": "/nonexistent/model"}, "does not exist"),
        ({"keyphrase": "hello", "vocabulary": ["hello"]}, "choose one of"),
        ({"vocabulary": "yes no"}, "list of words"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        voxsync.connection("local", **options)


def test_unknown_vocabulary_word_fails_connect_and_leaves_it_idle() -> None:
    conn = voxsync.connection("local", vocabulary=["yes", "qqzzxv"])
    with pytest.raises(ConfigurationError, match="qqzzxv"):
        conn.connect()
    assert conn.state == "idle"
    conn.close()


def test_send_after_finish_is_a_protocol_error() -> None:
    conn = LocalConnection()
    conn.connect()
    conn.finish()
    with pytest.raises(LocalProtocolError):
        conn.send(b"\x00\x00" * 160)


def test_close_interrupts_a_large_chunk_being_decoded() -> None:
    # 2 minutes of speech in one send(): close() must not wait for its decoding
    gap = bytes(16000)
    one = b"".join(pcm16(name) + gap for name in sorted(TRANSCRIPTS))
    pcm = (one * (120 * 32000 // len(one) + 1))[: 120 * 32000]
    conn = voxsync.connect("local")
    started = threading.Event()
    original = conn._write_chunk  # the seam where the writer thread starts decoding

    def write_chunk(chunk: bytes) -> None:
        started.set()
        original(chunk)

    conn._write_chunk = write_chunk  # type: ignore[method-assign]
    conn.send(pcm)
    assert started.wait(10), "the writer thread did not start decoding"
    time.sleep(0.5)  # well into the 2 minutes of audio
    t0 = time.monotonic()
    conn.close()
    took = time.monotonic() - t0
    assert conn.state == "closed"
    assert took < 1.5, f"close() took {took:.2f} s while a large chunk was being decoded"
