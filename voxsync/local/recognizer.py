"""Streaming speech recognition with pocketsphinx.

:class:`Recognizer` turns a stream of 16-bit PCM chunks into partial and
final :class:`Segment` objects. It is the one recognizer behind both the
``local`` provider and the emulators' ``pocketsphinx`` engine.

How a stream is cut into utterances
-----------------------------------
Audio is split into 30 ms frames and classified by pocketsphinx's voice
activity detector (:class:`pocketsphinx.Vad`). An utterance starts when most
frames of the last 0.3 s are speech; it ends when at least 90 % of the last
``silence_ms`` milliseconds are non-speech. The decoder gets the 0.3 s of
audio the start was detected in, so the first phoneme is not clipped, and
only 0.1 s of the silence that ended the utterance. :meth:`Recognizer.flush`
ends the pending utterance at the end of the audio, so the last words are
never lost.

pocketsphinx normalises features with a running cepstral mean that starts
from a generic value, which makes the first utterance of a stream less
accurate. The recognizer therefore estimates the mean from the first
utterance of a stream itself (a pass with a trivial grammar: feature
extraction only, no real search): from its first second, to decode it
provisionally and give partials, then from all of it (its first 10 s if
longer), to decode it again from the start for good. Later utterances use
the running estimate. On real read speech a shorter estimate (the first
2 s) cost accuracy; with the whole utterance the first one is decoded as
well as pocketsphinx decodes a whole file (see ``docs/guide/local.rst``).

The decoder gets audio in slices of at most a quarter second, however large
the chunks given to :meth:`Recognizer.feed`: the result does not depend on
the chunking, and :meth:`Recognizer.interrupt` can stop a large chunk from
another thread between two slices.

Everything here runs on the calling thread; a :class:`Recognizer` is not
thread-safe (use one per stream and per thread), except for
:meth:`Recognizer.interrupt`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Deque, List, Optional, Sequence, Tuple

from voxsync.errors import AudioFormatError, ConfigurationError, LocalProtocolError
from voxsync.events import Word

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_SILENCE_MS",
    "SAMPLE_RATE",
    "DecoderOptions",
    "Recognizer",
    "Segment",
    "build_decoder",
]

log = logging.getLogger(__name__)

#: The rate the bundled acoustic model expects; other rates are resampled.
SAMPLE_RATE = 16000
#: Default length of the silence that ends an utterance, in milliseconds.
DEFAULT_SILENCE_MS = 500
#: Default minimum amount of new audio between two partial results, in ms.
DEFAULT_PARTIAL_MS = 200

_START_WINDOW_S = 0.3  # look-back window for the speech-start decision
_START_RATIO = 0.6  # fraction of the start window that must be speech
_END_RATIO = 0.9  # fraction of the silence window that must be non-speech
_PREROLL_S = 0.0  # extra audio before the start window given to the decoder
_TAIL_S = 0.1  # non-speech after the last speech given to the decoder at an utterance end
_FLUSH_MIN_SPEECH_S = 0.09  # speech needed at end of audio to decode a short tail
_PRIME_S = 10.0  # most audio of the first utterance used to estimate the cepstral mean
_EARLY_S = 1.0  # ... and for a first, provisional estimate (partials start after it)
_SLICE_S = 0.25  # most audio given to the decoder in one call
_PRIME_SEARCH = "voxsync_cmn"  # the cheap search used to estimate the cepstral mean
_PRIME_JSGF = "#JSGF V1.0;\ngrammar voxsync_cmn;\npublic <any> = a ;\n"

_ALTERNATE = re.compile(r"\(\d+\)$")


class _Interrupted(Exception):
    """Raised between two decoder slices after :meth:`Recognizer.interrupt`."""


@dataclass(frozen=True)
class Segment:
    """A partial or final recognition result for one utterance.

    Attributes
    ----------
    text : str
        The words recognised so far (partial) or in total (final), lower case.
    is_final : bool
        False for partial hypotheses, which may still change.
    start, end : float
        Seconds from the start of the stream. For finals, the span of the
        recognised words; for partials, from the utterance start to the audio
        decoded so far.
    words : tuple of voxsync.events.Word
        Word timings (seconds from the start of the stream) with per-word
        confidence. Empty for partials.
    confidence : float or None
        Posterior probability of the final hypothesis (0..1); None for partials.
    index : int
        Utterance number from 0; the partials and the final of one utterance
        share it.
    """

    text: str
    is_final: bool
    start: float
    end: float
    words: Tuple[Word, ...] = ()
    confidence: Optional[float] = None
    index: int = 0


@dataclass(frozen=True)
class DecoderOptions:
    """What to load into a pocketsphinx decoder. Hashable, so decoders can be pooled.

    Parameters
    ----------
    hmm : str, optional
        Acoustic model directory. Default: the en-us model in pocketsphinx's wheel.
    lm : str, optional
        N-gram language model file (ARPA or binary). Default: the bundled en-us LM.
    dict : str, optional
        Pronunciation dictionary. Default: the bundled CMU dictionary.
    keyphrase : str, optional
        Spot only this phrase (keyword spotting mode).
    kws_threshold : float, optional
        Detection threshold for ``keyphrase`` (pocketsphinx default 1e-20;
        smaller values give fewer false alarms and more misses).
    grammar : str, optional
        A JSGF grammar: its text (starting with ``#JSGF``) or the path of a
        ``.gram`` file. Only sentences of the grammar are recognised.
    vocabulary : tuple of str, optional
        Recognise only these words (any sequence of them). Each must be in
        the dictionary.
    """

    hmm: Optional[str] = None
    lm: Optional[str] = None
    dict: Optional[str] = None
    keyphrase: Optional[str] = None
    kws_threshold: Optional[float] = None
    grammar: Optional[str] = None
    vocabulary: Optional[Tuple[str, ...]] = field(default=None)

    def __post_init__(self) -> None:
        modes = [n for n in ("keyphrase", "grammar", "vocabulary") if getattr(self, n)]
        if len(modes) > 1:
            raise ConfigurationError(
                f"choose one of keyphrase, grammar or vocabulary, not {' and '.join(modes)}"
            )
        for name in ("hmm", "lm", "dict"):
            path = getattr(self, name)
            if path is not None and not Path(path).exists():
                raise ConfigurationError(f"{name} path does not exist: {path!r}")
        if self.kws_threshold is not None and not self.keyphrase:
            raise ConfigurationError("kws_threshold needs a keyphrase")
        if self.vocabulary is not None:
            if isinstance(self.vocabulary, str):
                raise ConfigurationError("vocabulary must be a list of words, not a string")
            words = tuple(str(w).strip().lower() for w in self.vocabulary)
            if not words or not all(words):
                raise ConfigurationError("vocabulary must be a non-empty list of words")
            object.__setattr__(self, "vocabulary", words)

    @classmethod
    def from_options(
        cls,
        *,
        hmm: Optional[str] = None,
        lm: Optional[str] = None,
        dict: Optional[str] = None,
        keyphrase: Optional[str] = None,
        kws_threshold: Optional[float] = None,
        grammar: Optional[str] = None,
        vocabulary: Optional[Sequence[str]] = None,
    ) -> DecoderOptions:
        """Build from keyword options (``vocabulary`` may be any sequence)."""
        return cls(
            hmm=hmm,
            lm=lm,
            dict=dict,
            keyphrase=keyphrase,
            kws_threshold=kws_threshold,
            grammar=grammar,
            vocabulary=None if vocabulary is None else tuple(vocabulary),
        )


def _grammar_text(grammar: str) -> str:
    if grammar.lstrip().startswith("#JSGF"):
        return grammar
    path = Path(grammar)
    if not path.is_file():
        raise ConfigurationError(
            f"grammar must be JSGF text starting with '#JSGF' or an existing file, got {grammar!r}"
        )
    return path.read_text(encoding="utf-8")


#: One decoder is built at a time: building sets pocketsphinx's process-wide
#: state (its log level, its configuration parser), and building several at
#: once from different threads (``transcribe_many`` on a thread pool) has
#: crashed the process inside pocketsphinx. Decoding stays concurrent: each
#: connection has its own decoder.
_BUILD_LOCK = threading.Lock()


def build_decoder(options: Optional[DecoderOptions] = None) -> Any:
    """Create a pocketsphinx ``Decoder`` for ``options`` (slow: loads the model).

    Raises
    ------
    ConfigurationError
        A model file cannot be loaded, the grammar does not parse, or a
        vocabulary word is not in the dictionary.
    """
    from pocketsphinx import Decoder

    opts = options or DecoderOptions()
    config: dict[str, Any] = {"loglevel": "FATAL"}
    for name in ("hmm", "lm", "dict"):
        value = getattr(opts, name)
        if value is not None:
            config[name] = value
    if opts.keyphrase:
        config["keyphrase"] = opts.keyphrase.lower()
        config["lm"] = None
        if opts.kws_threshold is not None:
            config["kws_threshold"] = opts.kws_threshold
    try:
        with _BUILD_LOCK:
            decoder = Decoder(**config)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ConfigurationError(f"could not load the pocketsphinx model: {exc}") from exc
    if opts.vocabulary:
        unknown = [w for w in opts.vocabulary if decoder.lookup_word(w) is None]
        if unknown:
            raise ConfigurationError(
                f"vocabulary words not in the pronunciation dictionary: {', '.join(unknown)}"
            )
        alternatives = " | ".join(dict.fromkeys(opts.vocabulary))
        jsgf = f"#JSGF V1.0;\ngrammar vocabulary;\npublic <words> = ( {alternatives} )+ ;\n"
        _activate_grammar(decoder, jsgf)
    elif opts.grammar:
        _activate_grammar(decoder, _grammar_text(opts.grammar))
    _add_prime_search(decoder)
    return decoder


def check_sample_rate(sample_rate: int) -> int:
    """Return ``sample_rate`` if it is an int from 4000 to 192000 Hz, else raise.

    Raises
    ------
    ConfigurationError
    """
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool):
        raise ConfigurationError(f"sample_rate must be an int, got {sample_rate!r}")
    if not 4000 <= sample_rate <= 192000:
        raise ConfigurationError(f"sample_rate must be 4000..192000 Hz, got {sample_rate}")
    return sample_rate


def _add_prime_search(decoder: Any) -> None:
    """Add the cheap search :class:`Recognizer` uses to estimate the cepstral mean.

    Adding it again (a pooled decoder) replaces it, which is harmless.
    """
    decoder.add_jsgf_string(_PRIME_SEARCH, _PRIME_JSGF)


def _activate_grammar(decoder: Any, jsgf: str) -> None:
    try:
        decoder.add_jsgf_string("voxsync_grammar", jsgf)
        decoder.activate_search("voxsync_grammar")
    except (RuntimeError, ValueError) as exc:
        raise ConfigurationError(f"invalid JSGF grammar: {exc}") from exc


def _probability(logmath: Any, logprob: int) -> float:
    value = float(logmath.exp(logprob))
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


class Recognizer:
    """Incremental recognizer: feed PCM, get partial and final segments.

    Parameters
    ----------
    sample_rate : int
        Rate of the mono 16-bit little-endian PCM given to :meth:`feed`.
        Rates other than 16000 Hz are resampled (soxr) before decoding.
    options : DecoderOptions, optional
        Model, dictionary, grammar... Ignored when ``decoder`` is given.
    decoder : pocketsphinx.Decoder, optional
        An already loaded decoder to use (for pooling). It must not be used
        by anything else while this recognizer lives.
    silence_ms : int
        Silence that ends an utterance (default 500 ms).
    partial_ms : int
        Minimum new audio between two partial results (default 200 ms).
        0 disables partials.
    vad_mode : int
        Aggressiveness of the voice activity detector, 0 (loose, default)
        to 3 (strict).

    Notes
    -----
    Not thread-safe: all methods must be called from one thread at a time,
    except :meth:`interrupt`, which any thread may call. Everything (decoding
    included) runs on the calling thread.

    The first utterance of a stream costs more than the others: it is
    decoded twice (provisionally for partials, then for good with a
    feature normalisation estimated from all of it, up to 10 s), so its
    final comes later by the time it takes to decode it again.

    Examples
    --------
    >>> rec = Recognizer()                               # doctest: +SKIP
    >>> for chunk in chunks:                             # doctest: +SKIP
    ...     for seg in rec.feed(chunk):
    ...         print(seg.is_final, seg.text)
    >>> finals = [s for s in rec.flush() if s.is_final]  # doctest: +SKIP
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        *,
        options: Optional[DecoderOptions] = None,
        decoder: Any = None,
        silence_ms: int = DEFAULT_SILENCE_MS,
        partial_ms: int = DEFAULT_PARTIAL_MS,
        vad_mode: int = 0,
    ) -> None:
        from pocketsphinx import Vad

        check_sample_rate(sample_rate)
        self._check_timing(silence_ms, partial_ms)
        if vad_mode not in (0, 1, 2, 3):
            raise ConfigurationError(f"vad_mode must be 0, 1, 2 or 3, got {vad_mode!r}")
        self._sample_rate = sample_rate
        if decoder is None:
            decoder = build_decoder(options)
        elif decoder.current_search() != _PRIME_SEARCH:
            # a decoder used before (pooled) or made elsewhere; re-adding the
            # search while it is the active one would crash pocketsphinx
            _add_prime_search(decoder)
        self._decoder = decoder
        self._frate = int(self._decoder.config["frate"])
        # the rate of the acoustic model (16 kHz for the bundled one)
        self._model_rate = int(self._decoder.config["samprate"])
        try:
            self._vad = Vad(mode=vad_mode, sample_rate=self._model_rate)
        except ValueError as exc:
            raise ConfigurationError(
                f"unsupported acoustic model sample rate {self._model_rate} Hz"
            ) from exc
        self._frame_bytes: int = self._vad.frame_bytes
        self._frame_s: float = self._vad.frame_length
        self._start_frames = max(1, round(_START_WINDOW_S / self._frame_s))
        self._end_frames = max(2, math.ceil(silence_ms / 1000 / self._frame_s))
        self._preroll_frames = self._start_frames + round(_PREROLL_S / self._frame_s)
        self._partial_bytes = (
            0
            if partial_ms == 0
            else max(self._frame_bytes, self._model_rate * 2 * partial_ms // 1000)
        )
        self._prime_bytes = int(self._model_rate * 2 * _PRIME_S)
        self._tail_bytes = round(_TAIL_S / self._frame_s) * self._frame_bytes
        self._early_bytes = int(self._model_rate * 2 * _EARLY_S)
        self._slice_bytes = round(_SLICE_S / self._frame_s) * self._frame_bytes
        self._resampler: Any = None
        self._closed = False
        self._interrupted = False
        self.reset()

    @staticmethod
    def _check_timing(silence_ms: int, partial_ms: int) -> None:
        """Raise ConfigurationError for a bad ``silence_ms`` or ``partial_ms``."""
        if (
            isinstance(silence_ms, bool)
            or not isinstance(silence_ms, int)
            or not (60 <= silence_ms <= 10000)
        ):
            raise ConfigurationError(
                f"silence_ms must be an int from 60 to 10000 (milliseconds), got {silence_ms!r}"
            )
        if isinstance(partial_ms, bool) or not isinstance(partial_ms, int) or partial_ms < 0:
            raise ConfigurationError(
                f"partial_ms must be an int >= 0 (milliseconds; 0: no partials), got {partial_ms!r}"
            )

    # -- public API -------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM :meth:`feed` expects."""
        return self._sample_rate

    @property
    def in_speech(self) -> bool:
        """True while an utterance is open."""
        return self._in_speech

    @property
    def decoder(self) -> Any:
        """The pocketsphinx decoder in use (do not use it from another thread)."""
        return self._decoder

    def reset(self) -> None:
        """Drop any pending utterance and start a new stream at time 0."""
        if getattr(self, "_in_speech", False) and getattr(self, "_stage", 0):
            self._decoder.end_utt()
        self._buffer = bytearray()
        self._frames: float = 0  # 30 ms frames consumed since the stream start
        self._history: Deque[bool] = deque(maxlen=self._start_frames)
        self._preroll: Deque[bytes] = deque(maxlen=self._preroll_frames)
        self._tail: Deque[bool] = deque(maxlen=self._end_frames)
        self._in_speech = False
        self._utt_start_frame: float = 0
        self._pending = bytearray()  # speech audio not yet given to the decoder
        self._held = bytearray()  # trailing non-speech audio held back from the decoder
        self._last_partial = ""
        self._index = 0
        # first utterance: 0 = audio held back, 1 = provisional decoding, 2 = done
        self._stage = 0
        self._first = bytearray()  # audio of the first utterance (stages 0 and 1)
        self._first_done = 0  # bytes of it given to the provisional decoding
        self._resampler = None
        if self._sample_rate != self._model_rate:
            self._reset_resampler()

    def feed(self, pcm: bytes) -> List[Segment]:
        """Recognise a chunk of mono 16-bit little-endian PCM at :attr:`sample_rate`.

        Returns the partial and final segments that became available, in
        order (often none).

        Raises
        ------
        AudioFormatError
            ``pcm`` is not bytes-like or has an odd number of bytes.
        LocalProtocolError
            The recognizer was closed.
        """
        self._check_open()
        data = self._to_16k(pcm, last=False)
        out: List[Segment] = []
        try:
            self._consume(data, out)
        except _Interrupted:
            self.close()
        return out

    def flush(self) -> List[Segment]:
        """End of audio: decode what is pending and return the last segments.

        The utterance in progress (if any) gets its final segment, even if
        the audio stopped in the middle of a word. The stream may go on with
        more :meth:`feed` calls afterwards.
        """
        self._check_open()
        out: List[Segment] = []
        try:
            self._flush(out)
        except _Interrupted:
            self.close()
        return out

    def interrupt(self) -> None:
        """Stop a :meth:`feed` or :meth:`flush` running on another thread, and close.

        The only method that may be called from any thread. The call in
        progress returns the segments it completed, within one decoder slice
        (a quarter second of audio); it closes the recognizer on its own
        thread, so later calls raise :class:`~voxsync.errors.LocalProtocolError`.
        If nothing is running, the next :meth:`feed` or :meth:`flush` returns
        at once and closes. Idempotent.
        """
        self._interrupted = True

    def _flush(self, out: List[Segment]) -> None:
        self._consume(self._to_16k(b"", last=True), out)
        tail = bytes(self._buffer)
        self._buffer.clear()
        if not self._in_speech:
            speech = sum(self._history) * self._frame_s
            if speech >= _FLUSH_MIN_SPEECH_S:
                self._start_utterance()
        if self._in_speech:
            if tail:  # a last incomplete frame
                self._held += tail
                self._frames += len(tail) / self._frame_bytes
            final = self._end_utterance()
            if final is not None:
                out.append(final)
        self._history.clear()
        self._preroll.clear()
        if self._resampler is not None:
            self._reset_resampler()

    def _reset_resampler(self) -> None:
        """Restart the input resampler (after :meth:`flush`)."""
        import soxr

        self._resampler = soxr.ResampleStream(
            self._sample_rate, self._model_rate, 1, dtype="int16", quality="HQ"
        )

    def close(self) -> None:
        """Release the stream state. Idempotent. Does not free a decoder passed in."""
        if self._closed:
            return
        if self._in_speech and self._stage:
            self._decoder.end_utt()
        self._in_speech = False
        self._closed = True

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LocalProtocolError("the recognizer is closed; create a new one")

    def _to_16k(self, pcm: bytes, *, last: bool) -> bytes:
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise AudioFormatError(f"audio must be bytes of 16-bit PCM, got {type(pcm).__name__}")
        data = bytes(pcm)
        if len(data) % 2:
            raise AudioFormatError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
        if self._resampler is None:
            return data
        import numpy as np

        samples: np.ndarray = np.frombuffer(data, dtype="<i2")
        out = self._resampler.resample_chunk(samples, last=last)
        return bytes(np.asarray(out, dtype="<i2").tobytes())

    def _consume(self, data: bytes, out: List[Segment]) -> None:
        """Run ``data`` through the VAD frame by frame; append segments to ``out``."""
        if self._interrupted:
            raise _Interrupted
        self._buffer += data
        fb = self._frame_bytes
        n = len(self._buffer) // fb
        done = 0
        try:
            for done in range(n):
                if self._interrupted:
                    raise _Interrupted
                self._frame(bytes(self._buffer[done * fb : (done + 1) * fb]), out)
            done = n
        finally:
            del self._buffer[: done * fb]

    def _frame(self, frame: bytes, out: List[Segment]) -> None:
        speech = bool(self._vad.is_speech(frame))
        self._frames += 1
        if not self._in_speech:
            self._history.append(speech)
            self._preroll.append(frame)
            if (
                len(self._history) == self._start_frames
                and sum(self._history) >= _START_RATIO * self._start_frames
            ):
                self._start_utterance()
            return
        # Non-speech frames are held back until speech resumes (then the
        # decoder gets them) or the utterance ends (then only _TAIL_S of them),
        # so the silence that ends an utterance is not decoded in full.
        if speech:
            if self._held:
                self._pending += self._held
                self._held.clear()
            self._pending += frame
        else:
            self._held += frame
        self._tail.append(speech)
        if (
            len(self._tail) == self._end_frames
            and self._tail.count(False) >= _END_RATIO * self._end_frames
        ):
            final = self._end_utterance()
            if final is not None:
                out.append(final)
            return
        if self._partial_bytes and len(self._pending) >= self._partial_bytes:
            partial = self._decode_pending(partial=True)
            if partial is not None:
                out.append(partial)

    def _start_utterance(self) -> None:
        self._in_speech = True
        self._utt_start_frame = self._frames - len(self._preroll)
        self._pending = bytearray(b"".join(self._preroll))
        self._held.clear()
        self._preroll.clear()
        self._history.clear()
        self._tail.clear()
        self._last_partial = ""
        if self._stage == 2:
            self._decoder.start_utt()

    def _prime(self, audio: bytes) -> None:
        """Estimate the cepstral mean from ``audio``, then start a decoder utterance.

        The estimate runs a trivial one-word grammar over the audio, so it
        costs feature extraction only, not a second full search.
        """
        decoder = self._decoder
        search = decoder.current_search()
        decoder.activate_search(_PRIME_SEARCH)
        try:
            decoder.start_utt()
            decoder.process_raw(audio, full_utt=True)
            decoder.end_utt()
        finally:
            decoder.activate_search(search)
        decoder.set_cmn(decoder.get_cmn())
        decoder.start_utt()

    def _first_utterance(self, partial: bool) -> bool:
        """Decode the first utterance of the stream; False while audio is held back.

        After ``_EARLY_S`` of audio, a mean estimated from it starts a
        provisional decoding (for partials). After ``_PRIME_S`` (or at the end
        of a shorter utterance) the mean is estimated again from all of it
        and the utterance is decoded again from its start with it.
        """
        first = self._first
        first += self._pending
        self._pending.clear()
        decoder = self._decoder
        if not partial or len(first) >= self._prime_bytes:
            if self._stage == 1:
                decoder.end_utt()  # drop the provisional decoding
            audio = bytes(first)
            self._first = bytearray()
            self._stage = 2
            self._prime(audio)
            self._process(audio)
            return True
        if self._stage == 0:
            if len(first) < self._early_bytes:
                return False
            self._prime(bytes(first))
            self._stage = 1
            self._first_done = 0
        done = self._first_done
        self._first_done = len(first)
        self._process(bytes(first[done:]))
        return True

    def _process(self, audio: bytes) -> None:
        """Give ``audio`` to the decoder in slices of at most ``_SLICE_S``.

        Bounded slices keep a large chunk interruptible (see :meth:`interrupt`)
        and make the result independent of how the audio was chunked:
        pocketsphinx updates its running cepstral mean differently inside one
        very large call.
        """
        view = memoryview(audio)
        step = self._slice_bytes
        for start in range(0, len(view), step):
            if self._interrupted:
                raise _Interrupted
            self._decoder.process_raw(view[start : start + step].tobytes(), full_utt=False)

    def _decode_pending(self, *, partial: bool) -> Optional[Segment]:
        if self._stage < 2:
            if not self._first_utterance(partial):
                return None
        elif self._pending:
            pending = bytes(self._pending)
            self._pending.clear()
            self._process(pending)
        if not partial:
            return None
        hyp = self._decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        if not text or text == self._last_partial:
            return None
        self._last_partial = text
        return Segment(
            text=text,
            is_final=False,
            start=round(self._utt_start_frame * self._frame_s, 3),
            end=round(self._frames * self._frame_s, 3),
            index=self._index,
        )

    def _end_utterance(self) -> Optional[Segment]:
        self._pending += self._held[: self._tail_bytes]
        self._held.clear()
        self._decode_pending(partial=False)
        self._decoder.end_utt()
        self._in_speech = False
        self._tail.clear()
        hyp = self._decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        if not text and not self._last_partial:
            return None  # noise: nothing was said, nothing was shown
        logmath = self._decoder.logmath
        offset = self._utt_start_frame * self._frame_s
        words: List[Word] = []
        if text:
            for seg in self._decoder.seg():
                word = seg.word
                if word.startswith(("<", "[")) or word in ("<sil>",):
                    continue
                words.append(
                    Word(
                        text=_ALTERNATE.sub("", word),
                        start=round(offset + seg.start_frame / self._frate, 3),
                        end=round(offset + (seg.end_frame + 1) / self._frate, 3),
                        confidence=round(_probability(logmath, seg.prob), 4),
                    )
                )
        end_time = self._frames * self._frame_s
        segment = Segment(
            text=text,
            is_final=True,
            start=words[0].start if words and words[0].start is not None else round(offset, 3),
            end=words[-1].end if words and words[-1].end is not None else round(end_time, 3),
            words=tuple(words),
            confidence=round(_probability(logmath, hyp.prob), 4) if hyp is not None else None,
            index=self._index,
        )
        self._index += 1
        self._last_partial = ""
        return segment
