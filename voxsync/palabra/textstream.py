"""Text streams for the realtime TTS socket: sentence splitting and rate limiting.

Pure code, no I/O: :class:`SentenceSplitter` turns a stream of text of any
length (an LLM's tokens, lines of a file) into :class:`Piece` objects that
each fit in one ``text`` message, cut at sentence ends (then clause ends,
then spaces) and marked ``eos`` where a sentence ends. :class:`RateLimiter`
keeps a sender within the service's message rate. ``PalabraTTS.speak_stream``
uses both.

Example
-------
>>> splitter = SentenceSplitter(limit=40)
>>> [p.text for p in splitter.feed("Hello there. How are")]
['Hello there.']
>>> [(p.text, p.eos) for p in splitter.feed(" you today?") + splitter.flush()]
[('How are you today?', True)]
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional

from voxsync.errors import ConfigurationError

__all__ = ["MESSAGE_RATE", "Piece", "RateLimiter", "SentenceSplitter"]

#: ``text`` messages per second the TTS service accepts.
MESSAGE_RATE = 50

_TERMINATORS = frozenset(".!?\u2026\u3002\uff01\uff1f")
_CLOSERS = frozenset("\"'\u201d\u2019)]}\u00bb")
_CLAUSE = frozenset(",;:\u2014\u2013\u3001\uff0c\uff1b\uff1a")


@dataclass(frozen=True)
class Piece:
    """One ``text`` message: ``text`` (at most the limit) and whether it ends a sentence."""

    text: str
    eos: bool


def _sentence_end(buffer: str, final: bool) -> int:
    """Index just after the first complete sentence in ``buffer``, or -1.

    A sentence ends at terminal punctuation (plus closing quotes or
    brackets) followed by whitespace and a character that is not a
    lower-case letter; at the very end of the buffer only when ``final``
    (more text could still turn "3." into "3.5", or "stop!" into
    "stop!" and left).
    """
    n = len(buffer)
    i = 0
    while i < n:
        if buffer[i] in _TERMINATORS:
            j = i + 1
            while j < n and (buffer[j] in _TERMINATORS or buffer[j] in _CLOSERS):
                j += 1
            if j < n and buffer[j].isspace():
                k = j
                while k < n and buffer[k].isspace():
                    k += 1
                if k == n:
                    return j if final else -1
                if not buffer[k].islower():  # "stop!" and left: not an end
                    return j
            elif j == n and final:
                return j
            i = j
        else:
            i += 1
    return -1


def _cut(text: str, limit: int) -> int:
    """Where to cut ``text`` (longer than ``limit``) so the head fits: clause, space, or hard."""
    window = text[: limit + 1]
    for marks in (_TERMINATORS, _CLAUSE):
        best = -1
        for i in range(min(limit, len(window) - 1), 0, -1):
            if window[i - 1] in marks and window[i].isspace():
                best = i
                break
        if best > limit // 4:
            return best
    space = max((i for i in range(1, limit + 1) if window[i].isspace()), default=-1)
    if space > 0:
        return space
    return limit


class SentenceSplitter:
    """Cuts a stream of text into messages for the TTS socket.

    Feed text in pieces of any size with :meth:`feed`; each call returns the
    messages that are complete so far. :meth:`flush` returns the rest. Each
    sentence goes out as soon as it is complete, marked ``eos=True``; a
    sentence longer than ``limit`` is cut at clause marks or spaces into
    several messages, only the last one marked ``eos``. Text still waiting
    for its sentence end is sent early (``eos=False``) once it no longer
    fits in one message. Whitespace between sentences is dropped; inside a
    sentence it is kept (a continued piece may start with a space, as the
    service expects).

    Parameters
    ----------
    limit : int
        Characters per message (256 on 1.x servers).

    Raises
    ------
    ConfigurationError
        ``limit`` below 16.
    """

    def __init__(self, limit: int = 256) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 16:
            raise ConfigurationError(f"limit must be an int of at least 16, got {limit!r}")
        self.limit = limit
        self._buffer = ""
        self._in_sentence = False

    def feed(self, text: str) -> List[Piece]:
        """Add text; return the messages now complete (possibly none)."""
        if not isinstance(text, str):
            raise ConfigurationError(f"text must be str, got {type(text).__name__}")
        self._buffer += text
        return self._drain(final=False)

    def flush(self) -> List[Piece]:
        """End of the stream: return what is left, the last message marked ``eos``."""
        return self._drain(final=True)

    def _emit(self, text: str, eos: bool, out: List[Piece]) -> None:
        if not self._in_sentence:
            text = text.lstrip()
        if not text.strip():
            if eos and self._in_sentence and out:
                last = out[-1]
                out[-1] = Piece(last.text, True)
                self._in_sentence = False
            return
        out.append(Piece(text, eos))
        self._in_sentence = not eos

    def _drain(self, final: bool) -> List[Piece]:
        out: List[Piece] = []
        while True:
            if not self._in_sentence:
                self._buffer = self._buffer.lstrip()
            end = _sentence_end(self._buffer, final)
            if end < 0 and final and self._buffer.strip():
                end = len(self._buffer)
            if end > 0:
                sentence, self._buffer = self._buffer[:end], self._buffer[end:]
                while len(sentence) > self.limit:
                    cut = _cut(sentence, self.limit)
                    self._emit(sentence[:cut], False, out)
                    sentence = sentence[cut:]
                self._emit(sentence, True, out)
                continue
            if len(self._buffer.rstrip()) > self.limit:
                cut = _cut(self._buffer, self.limit)
                head, self._buffer = self._buffer[:cut], self._buffer[cut:]
                self._emit(head, False, out)
                continue
            if final:
                if self._in_sentence and out:
                    out[-1] = Piece(out[-1].text, True)
                    self._in_sentence = False
                self._buffer = ""
            return out


class RateLimiter:
    """At most ``rate`` events in any window of ``per`` seconds (sliding window).

    :meth:`delay` is pure (give it the time); :meth:`acquire` sleeps as
    needed and records the event. Use one limiter per socket, from the
    thread that sends.

    Parameters
    ----------
    rate : int
        Events per window (the TTS service allows 50 messages per second).
    per : float
        Window length in seconds.
    clock, sleep : callable
        Time source and sleep function (for tests).
    """

    def __init__(
        self,
        rate: int = MESSAGE_RATE,
        per: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            raise ConfigurationError(f"rate must be a positive int, got {rate!r}")
        if not per > 0:
            raise ConfigurationError(f"per must be a positive number of seconds, got {per!r}")
        self.rate = rate
        self.per = float(per)
        self._clock = clock
        self._sleep = sleep
        self._times: Deque[float] = collections.deque(maxlen=rate)

    def delay(self, now: float) -> float:
        """Seconds to wait at time ``now`` before the next event is allowed."""
        if len(self._times) < self.rate:
            return 0.0
        return max(0.0, self._times[0] + self.per - now)

    def record(self, now: float) -> None:
        """Record an event at ``now``."""
        self._times.append(now)

    def acquire(self, deadline: Optional[float] = None) -> bool:
        """Wait until an event is allowed, then record it.

        Parameters
        ----------
        deadline : float, optional
            A ``clock()`` time not to wait past.

        Returns
        -------
        bool
            False (nothing recorded) if the deadline came first.
        """
        while True:
            now = self._clock()
            wait = self.delay(now)
            if wait <= 0:
                self.record(now)
                return True
            if deadline is not None and now + wait > deadline:
                return False
            self._sleep(wait)
