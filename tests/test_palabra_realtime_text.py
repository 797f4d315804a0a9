"""speak_stream's building blocks: sentence splitting and the message rate limiter."""

from __future__ import annotations

import random
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxsync.errors import ConfigurationError
from voxsync.palabra.textstream import Piece, RateLimiter, SentenceSplitter

TERMINATORS = ".!?\u2026\u3002\uff01\uff1f"
CLOSERS = "\"')]}\u201d\u2019\u00bb"


def _split(chunks: List[str], limit: int = 256) -> List[Piece]:
    splitter = SentenceSplitter(limit)
    out: List[Piece] = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    return out + splitter.flush()


def test_sentences_go_out_as_soon_as_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("The sun was setting") == []
    assert splitter.feed(" over the hills. It") == [
        Piece("The sun was setting over the hills.", True)
    ]
    assert splitter.feed(" was late!  Really") == [Piece("It was late!", True)]
    assert splitter.flush() == [Piece("Really", True)]
    assert splitter.flush() == []


def test_a_period_at_the_end_waits_for_what_follows() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Pi is 3.") == []
    assert splitter.feed("14 exactly.") == []
    assert splitter.feed(" Yes") == [Piece("Pi is 3.14 exactly.", True)]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert _split(['He said "stop!" and left. ', "(Quietly.) Then"]) == [
        Piece('He said "stop!" and left.', True),
        Piece("(Quietly.)", True),
        Piece("Then", True),
    ]


def test_long_sentence_is_cut_at_clauses_then_spaces() -> None:
    sentence = "alpha beta gamma, " * 4 + "delta epsilon zeta eta theta iota kappa lambda mu."
    pieces = _split([sentence], limit=40)
    assert all(len(p.text) <= 40 for p in pieces)
    assert [p.eos for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert "".join(p.text for p in pieces) == sentence
    assert pieces[0].text.endswith(",")


def test_text_without_sentence_end_is_sent_early_once_over_the_limit() -> None:
    splitter = SentenceSplitter(32)
    out = splitter.feed("word " * 20)
    assert out and all(len(p.text) <= 32 and not p.eos for p in out)
    rest = splitter.flush()
    assert rest[-1].eos
    assert "".join(p.text for p in out + rest).split() == ["word"] * 20


def test_one_huge_word_is_hard_cut() -> None:
    pieces = _split(["x" * 100 + "."], limit=30)
    assert [len(p.text) for p in pieces] == [30, 30, 30, 11]
    assert pieces[-1].eos and not any(p.eos for p in pieces[:-1])


def test_bad_arguments() -> None:
    with pytest.raises(ConfigurationError):
        SentenceSplitter(8)
    with pytest.raises(ConfigurationError):
        SentenceSplitter().feed(b"bytes")  # type: ignore[arg-type]


_words = st.lists(
    st.one_of(
        st.text(alphabet="abcdefghij", min_size=1, max_size=70),
        st.sampled_from([".", "!", "?", ",", ";", "...", '."', " ", "  ", "\n", "3.14", "é", "。"]),
    ),
    max_size=120,
)


@settings(max_examples=300)
@given(words=_words, limit=st.integers(16, 300), seed=st.integers(0, 2**16))
def test_any_stream_keeps_every_word_within_the_limit(
    words: List[str], limit: int, seed: int
) -> None:
    text = " ".join(words)
    rng = random.Random(seed)
    chunks, i = [], 0
    while i < len(text):  # LLM-like tokens of random length
        n = rng.randint(1, 12)
        chunks.append(text[i : i + n])
        i += n
    pieces = _split(chunks, limit)
    assert all(0 < len(p.text) <= limit and p.text.strip() for p in pieces)
    # nothing lost, nothing invented: only whitespace between sentences may go
    joined = "".join(p.text for p in pieces)
    assert "".join(joined.split()) == "".join(text.split())
    if text.strip():
        assert pieces[-1].eos
    # a piece marked eos ends in sentence punctuation, unless it is the stream's end
    for p in pieces[:-1]:
        if p.eos:
            assert p.text.rstrip(CLOSERS)[-1] in TERMINATORS


# ---------------------------------------------------------------- rate limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


@given(gaps=st.lists(st.floats(0, 0.2), min_size=1, max_size=300), rate=st.integers(1, 60))
def test_no_window_of_one_second_holds_more_than_rate(gaps: List[float], rate: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, 1.0, clock=clock, sleep=clock.sleep)
    times = []
    for gap in gaps:
        clock.now += gap
        assert limiter.acquire()
        times.append(clock.now)
    for i, t in enumerate(times):
        in_window = [u for u in times[i:] if u < t + 1.0]
        assert len(in_window) <= rate
    # it only waits when it must: the first `rate` events never wait
    assert times[: min(rate, len(times))] == pytest.approx(
        [100.0 + sum(gaps[: k + 1]) for k in range(min(rate, len(times)))]
    )


def test_burst_is_spread_and_deadline_is_kept() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        assert limiter.acquire()
    assert clock.slept == []
    assert limiter.delay(clock.now) == pytest.approx(1.0)
    assert limiter.acquire(deadline=clock.now + 0.5) is False
    assert clock.slept == []
    assert limiter.acquire()
    assert clock.slept == [pytest.approx(1.0)]


def test_rate_limiter_arguments() -> None:
    with pytest.raises(ConfigurationError):
        RateLimiter(0)
    with pytest.raises(ConfigurationError):
        RateLimiter(5, per=0)
