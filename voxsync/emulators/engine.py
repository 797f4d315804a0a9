"""Recognition engines shared by the provider emulators.

An engine turns a stream of PCM audio into partial and final
:class:`Segment` objects with timings. Emulators create one
:class:`EngineSession` per audio stream and translate its segments into their
provider's wire messages.

Two kinds exist (see :func:`make_engine`):

``"pocketsphinx"``
    Real offline recognition with the same streaming recognizer as the
    ``local`` provider (:class:`voxsync.local.recognizer.Recognizer`).
    Loaded decoders are pooled and reused by later sessions.
``"scripted"``
    Pre-set transcripts, deterministic and cheap: one transcript per
    utterance (utterances found by a signal-energy endpointer) or one per
    ``every_bytes`` bytes of audio. For tests and benchmarks.

Example
-------
>>> engine = make_engine("scripted", transcripts=["hello world"])
>>> session = engine.new_session(16000)
>>> segments = session.feed(b"\\x00\\x00" * 1600) + session.flush()
>>> session.close()
"""

from __future__ import annotations

import abc
import math
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from voxsync.errors import AudioFormatError, ConfigurationError, LocalProtocolError
from voxsync.events import Word
from voxsync.local.recognizer import (
    DEFAULT_PARTIAL_MS,
    DEFAULT_SILENCE_MS,
    DecoderOptions,
    Recognizer,
    Segment,
    build_decoder,
    check_sample_rate,
)

__all__ = [
    "ENGINE_KINDS",
    "Engine",
    "EngineSession",
    "PocketsphinxEngine",
    "ScriptedEngine",
    "Segment",
    "make_engine",
]

#: The kinds :func:`make_engine` accepts.
ENGINE_KINDS = ("pocketsphinx", "scripted")


class EngineSession(abc.ABC):
    """Recognition of one audio stream. Not thread-safe: use from one thread.

    Attributes
    ----------
    sample_rate : int
        Rate of the mono 16-bit little-endian PCM that :meth:`feed` takes.
    """

    sample_rate: int

    @abc.abstractmethod
    def feed(self, pcm: bytes) -> List[Segment]:
        """Recognise mono s16le PCM at :attr:`sample_rate`; return new segments in order.

        Raises
        ------
        AudioFormatError
            ``pcm`` is not bytes or not whole 16-bit samples.
        LocalProtocolError
            The session was closed.
        """

    @abc.abstractmethod
    def flush(self) -> List[Segment]:
        """End of audio: return the final segment of the pending utterance, if any."""

    @abc.abstractmethod
    def close(self) -> None:
        """Free the session's resources. Idempotent."""

    def __enter__(self) -> EngineSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Engine(abc.ABC):
    """Factory of :class:`EngineSession` objects; :meth:`new_session` is thread-safe."""

    kind: str = ""

    @abc.abstractmethod
    def new_session(self, sample_rate: int = 16000) -> EngineSession:
        """Start recognising a new stream of mono s16le PCM at ``sample_rate``.

        Safe to call from any thread; each session belongs to the thread that uses it.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free shared resources (pooled decoders). Sessions already open keep working."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


# -- pocketsphinx ---------------------------------------------------------------


class _PocketsphinxSession(EngineSession):
    def __init__(self, engine: PocketsphinxEngine, decoder: Any, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._engine = engine
        self._decoder: Any = decoder
        self._recognizer = Recognizer(
            sample_rate,
            decoder=decoder,
            silence_ms=engine.silence_ms,
            partial_ms=engine.partial_ms,
        )

    def feed(self, pcm: bytes) -> List[Segment]:
        return self._recognizer.feed(pcm)

    def flush(self) -> List[Segment]:
        return self._recognizer.flush()

    def close(self) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is None:
            return
        self._recognizer.close()
        self._engine._release(decoder)

    def __repr__(self) -> str:
        return f"<PocketsphinxSession {self.sample_rate} Hz>"


class PocketsphinxEngine(Engine):
    """Real recognition with pocketsphinx (bundled en-us model unless told otherwise).

    Parameters
    ----------
    hmm, lm, dict, keyphrase, kws_threshold, grammar, vocabulary
        See :class:`voxsync.local.recognizer.DecoderOptions`.
    silence_ms : int
        Silence that ends an utterance (default 500).
    partial_ms : int
        Minimum new audio between partial segments (default 200; 0: no partials).
    pool_size : int
        How many idle decoders to keep for later sessions (default 4).

    Raises
    ------
    ConfigurationError
        Bad option, or the model cannot be loaded (one decoder is loaded at
        construction, so errors show up here and not in an emulator thread).
    """

    kind = "pocketsphinx"

    def __init__(
        self,
        *,
        hmm: Optional[str] = None,
        lm: Optional[str] = None,
        dict: Optional[str] = None,
        keyphrase: Optional[str] = None,
        kws_threshold: Optional[float] = None,
        grammar: Optional[str] = None,
        vocabulary: Optional[Sequence[str]] = None,
        silence_ms: int = DEFAULT_SILENCE_MS,
        partial_ms: int = DEFAULT_PARTIAL_MS,
        pool_size: int = 4,
    ) -> None:
        self.options = DecoderOptions.from_options(
            hmm=hmm,
            lm=lm,
            dict=dict,
            keyphrase=keyphrase,
            kws_threshold=kws_threshold,
            grammar=grammar,
            vocabulary=vocabulary,
        )
        Recognizer._check_timing(silence_ms, partial_ms)
        if not isinstance(pool_size, int) or pool_size < 0:
            raise ConfigurationError(f"pool_size must be an int >= 0, got {pool_size!r}")
        self.silence_ms = silence_ms
        self.partial_ms = partial_ms
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._idle: List[Any] = [build_decoder(self.options)]

    def new_session(self, sample_rate: int = 16000) -> EngineSession:
        check_sample_rate(sample_rate)  # before a pooled decoder is taken
        with self._lock:
            decoder = self._idle.pop() if self._idle else None
        if decoder is None:
            decoder = build_decoder(self.options)  # slow part outside the lock
        return _PocketsphinxSession(self, decoder, sample_rate)

    def _release(self, decoder: Any) -> None:
        with self._lock:
            if len(self._idle) < self._pool_size:
                self._idle.append(decoder)

    def close(self) -> None:
        with self._lock:
            self._idle.clear()

    def __repr__(self) -> str:
        return f"<PocketsphinxEngine silence_ms={self.silence_ms}>"


# -- scripted -------------------------------------------------------------------


class _ScriptedSession(EngineSession):
    """Deterministic segments from pre-set transcripts."""

    def __init__(self, engine: ScriptedEngine, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._e = engine
        self._closed = False
        self._frame_samples = max(1, sample_rate * engine.frame_ms // 1000)
        self._carry = b""
        self._samples = 0  # samples consumed since the stream start
        self._index = 0
        # utterance state (transcripts mode)
        self._in_speech = False
        self._utt_start = 0  # sample where the utterance started
        self._last_voiced = 0  # sample after the last voiced frame
        self._run = 0  # consecutive voiced frames before the start
        self._silent = 0  # consecutive silent frames in the utterance
        self._shown = 0  # words shown in partials of this utterance
        self._next_partial = 0  # sample from which the next partial may come
        self._block_start = 0  # every_bytes mode: first sample of the block
        self._block_bytes = 0  # every_bytes mode: bytes fed into the block

    # helpers
    def _seconds(self, samples: int) -> float:
        return round(samples / self.sample_rate, 3)

    def _text(self) -> str:
        texts = self._e.transcripts
        return texts[self._index % len(texts)]

    def _final(self, start: int, end: int) -> Segment:
        text = self._text()
        words = text.split()
        t0, t1 = self._seconds(start), self._seconds(end)
        step = (t1 - t0) / len(words) if words else 0.0
        timed = tuple(
            Word(w, round(t0 + i * step, 3), round(t0 + (i + 1) * step, 3), 1.0)
            for i, w in enumerate(words)
        )
        seg = Segment(text, True, t0, t1, timed, 1.0, self._index)
        self._index += 1
        self._shown = 0
        return seg

    def _partial(self, start: int, end: int) -> Optional[Segment]:
        words = self._text().split()
        if self._shown + 1 >= len(words):
            return None  # the full text is left for the final
        self._shown += 1
        text = " ".join(words[: self._shown])
        return Segment(text, False, self._seconds(start), self._seconds(end), (), None, self._index)

    # API
    def feed(self, pcm: bytes) -> List[Segment]:
        if self._closed:
            raise LocalProtocolError("the engine session is closed; start a new one")
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise AudioFormatError(f"audio must be bytes of 16-bit PCM, got {type(pcm).__name__}")
        if len(pcm) % 2:
            raise AudioFormatError(f"16-bit PCM needs an even number of bytes, got {len(pcm)}")
        if self._e.every_bytes:
            return self._feed_blocks(len(pcm))
        data = self._carry + bytes(pcm)
        out: List[Segment] = []
        fbytes = self._frame_samples * 2
        n = len(data) // fbytes
        import numpy as np

        for i in range(n):
            frame = np.frombuffer(data, dtype="<i2", count=self._frame_samples, offset=i * fbytes)
            rms = math.sqrt(float(np.mean(frame.astype(np.float64) ** 2)))
            self._frame(rms >= self._e.threshold, out)
        self._carry = data[n * fbytes :]
        return out

    def _frame(self, voiced: bool, out: List[Segment]) -> None:
        e = self._e
        frame_start = self._samples
        self._samples += self._frame_samples
        if not self._in_speech:
            self._run = self._run + 1 if voiced else 0
            if self._run >= e.start_frames:
                self._in_speech = True
                self._utt_start = self._samples - self._run * self._frame_samples
                self._last_voiced = self._samples
                self._silent = 0
                self._next_partial = self._utt_start + e.partial_samples(self.sample_rate)
            return
        if voiced:
            self._last_voiced = self._samples
            self._silent = 0
        else:
            self._silent += 1
            if self._silent * e.frame_ms >= e.silence_ms:
                self._in_speech = False
                self._run = 0
                out.append(self._final(self._utt_start, self._last_voiced))
                return
        if e.partial_ms and frame_start >= self._next_partial:
            self._next_partial += e.partial_samples(self.sample_rate)
            seg = self._partial(self._utt_start, self._samples)
            if seg is not None:
                out.append(seg)

    def _feed_blocks(self, nbytes: int) -> List[Segment]:
        out: List[Segment] = []
        every = self._e.every_bytes
        assert every is not None
        half = every // 2
        remaining = nbytes
        while remaining > 0:
            take = min(every - self._block_bytes, remaining)
            before = self._block_bytes
            self._block_bytes += take
            remaining -= take
            if self._e.partial_ms and before < half <= self._block_bytes < every:
                seg = self._partial(self._block_start, self._block_start + self._block_bytes // 2)
                if seg is not None:
                    out.append(seg)
            if self._block_bytes == every:
                end = self._block_start + every // 2
                out.append(self._final(self._block_start, end))
                self._block_start = end
                self._block_bytes = 0
        self._samples += nbytes // 2
        return out

    def flush(self) -> List[Segment]:
        if self._closed:
            raise LocalProtocolError("the engine session is closed; start a new one")
        self._carry = b""
        out: List[Segment] = []
        if self._e.every_bytes:
            if self._shown:  # a partial was shown for this block: close it
                out.append(self._final(self._block_start, self._samples))
            self._block_start = self._samples
            self._block_bytes = 0
        elif self._in_speech:
            self._in_speech = False
            self._run = 0
            out.append(self._final(self._utt_start, self._last_voiced))
        return out

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<ScriptedSession {self.sample_rate} Hz>"


class ScriptedEngine(Engine):
    """Deterministic engine: pre-set transcripts, cycled in order.

    Parameters
    ----------
    transcripts : sequence of str
        Text of utterance 0, 1, 2, ... (cycled). Default ``["hello world"]``.
    every_bytes : int, optional
        If given, one final segment per ``every_bytes`` bytes of audio fed
        (whatever the audio contains), with one partial at the half of each
        block. Otherwise utterances are found by signal energy.
    threshold : int
        RMS level (16-bit scale) from which a frame counts as voiced (default 500).
    silence_ms : int
        Silence that ends an utterance (default 500).
    partial_ms : int
        Speech between two partial segments (default 200; 0: no partials).
        Partials show one more word each time and never the whole text.
    frame_ms : int
        Analysis frame length (default 20).

    Notes
    -----
    The same audio always gives the same segments, timings included.
    Final segments have confidence 1.0 and evenly spread word timings.
    """

    kind = "scripted"

    def __init__(
        self,
        *,
        transcripts: Sequence[str] = ("hello world",),
        every_bytes: Optional[int] = None,
        threshold: int = 500,
        silence_ms: int = DEFAULT_SILENCE_MS,
        partial_ms: int = DEFAULT_PARTIAL_MS,
        frame_ms: int = 20,
    ) -> None:
        if isinstance(transcripts, str):
            transcripts = [transcripts]
        texts: Tuple[str, ...] = tuple(str(t) for t in transcripts)
        if not texts:
            raise ConfigurationError("transcripts must contain at least one text")
        if every_bytes is not None and (
            not isinstance(every_bytes, int) or every_bytes < 4 or every_bytes % 2
        ):
            raise ConfigurationError(
                f"every_bytes must be an even int >= 4 (whole 16-bit samples), got {every_bytes!r}"
            )
        for name, value, low in (
            ("threshold", threshold, 0),
            ("silence_ms", silence_ms, 1),
            ("partial_ms", partial_ms, 0),
            ("frame_ms", frame_ms, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ConfigurationError(f"{name} must be an int >= {low}, got {value!r}")
        self.transcripts = texts
        self.every_bytes = every_bytes
        self.threshold = threshold
        self.silence_ms = silence_ms
        self.partial_ms = partial_ms
        self.frame_ms = frame_ms
        self.start_frames = max(1, 60 // frame_ms)  # 60 ms of voiced frames start speech

    def partial_samples(self, sample_rate: int) -> int:
        return max(1, sample_rate * self.partial_ms // 1000)

    def new_session(self, sample_rate: int = 16000) -> EngineSession:
        return _ScriptedSession(self, check_sample_rate(sample_rate))

    def __repr__(self) -> str:
        mode = f"every_bytes={self.every_bytes}" if self.every_bytes else "utterances"
        return f"<ScriptedEngine {len(self.transcripts)} transcripts, {mode}>"


_KINDS: Dict[str, Any] = {"pocketsphinx": PocketsphinxEngine, "scripted": ScriptedEngine}


def make_engine(kind: str = "pocketsphinx", **options: Any) -> Engine:
    """Create an engine of ``kind`` (``"pocketsphinx"`` or ``"scripted"``).

    Parameters
    ----------
    kind : str
        ``"pocketsphinx"`` for real recognition, ``"scripted"`` for pre-set
        transcripts.
    **options
        Keyword options of :class:`PocketsphinxEngine` or :class:`ScriptedEngine`.

    Raises
    ------
    ConfigurationError
        Unknown kind or option, bad option value, model that cannot be loaded.
    """
    try:
        cls = _KINDS[kind]
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"unknown engine kind {kind!r}; use one of {', '.join(ENGINE_KINDS)}"
        ) from None
    try:
        engine: Engine = cls(**options)
    except TypeError as exc:
        raise ConfigurationError(f"bad option for the {kind} engine: {exc}") from exc
    return engine
