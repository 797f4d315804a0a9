"""The ``local`` provider: offline recognition behind the connection contract."""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Dict, FrozenSet, Optional, Sequence

from voxsync.connection import Connection
from voxsync.events import Transcript
from voxsync.format import AudioFormat
from voxsync.local.recognizer import (
    DEFAULT_PARTIAL_MS,
    DEFAULT_SILENCE_MS,
    SAMPLE_RATE,
    DecoderOptions,
    Recognizer,
    Segment,
)

__all__ = ["LocalConnection", "segment_to_transcript"]

log = logging.getLogger(__name__)

#: What :class:`LocalConnection` accepts: 16 kHz mono 16-bit PCM.
AUDIO_FORMAT = AudioFormat(SAMPLE_RATE, 1, "pcm_s16le")


def segment_to_transcript(segment: Segment, language: Optional[str] = "en") -> Transcript:
    """Turn a recognizer :class:`~voxsync.local.recognizer.Segment` into a ``Transcript`` event.

    ``raw`` carries the same data as a plain dict (``transcript``,
    ``is_final``, ``start``, ``end``, ``confidence``, ``utterance``,
    ``words``), so ``ev["transcript"]`` and ``ev.get("transcript")`` work as
    with the cloud providers.
    """
    raw: Dict[str, Any] = {
        "transcript": segment.text,
        "is_final": segment.is_final,
        "start": segment.start,
        "end": segment.end,
        "confidence": segment.confidence,
        "utterance": segment.index,
        "words": [
            {"word": w.text, "start": w.start, "end": w.end, "confidence": w.confidence}
            for w in segment.words
        ],
    }
    return Transcript(
        text=segment.text,
        is_final=segment.is_final,
        language=language,
        start=segment.start,
        end=segment.end,
        words=segment.words,
        id=str(segment.index),
        confidence=segment.confidence,
        raw=raw,
    )


class LocalConnection(Connection):
    """Offline speech-to-text with pocketsphinx; no account, no network.

    Send 16 kHz mono 16-bit PCM (:attr:`audio_format`; the audio sources in
    :mod:`voxsync.audio` convert to it) and receive ``transcript`` events:
    partials (``is_final=False``) while an utterance goes on, when the
    hypothesis changes and at most every ``partial_ms`` of new audio, and a
    final one (``is_final=True``) when ``silence_ms`` of silence ends the
    utterance, with word timings (seconds from the start of the stream) and
    a confidence. ``finish()`` ends the utterance in progress, so the last
    words are never lost. Partials and the final of one utterance share
    ``id`` (the utterance number, ``"0"``, ``"1"``, ...).

    Parameters
    ----------
    hmm : str, optional
        Acoustic model directory (default: the en-us model shipped with pocketsphinx).
    lm : str, optional
        N-gram language model file (default: the bundled en-us model).
    dict : str, optional
        Pronunciation dictionary (default: the bundled CMU dictionary).
    keyphrase : str, optional
        Listen only for this phrase (keyword spotting).
    kws_threshold : float, optional
        Detection threshold of ``keyphrase`` (default 1e-20; lower means
        fewer false alarms).
    grammar : str, optional
        JSGF grammar text (starting with ``#JSGF``) or the path of a ``.gram`` file.
    vocabulary : sequence of str, optional
        Recognise only these words.
    silence_ms : int
        Silence that ends an utterance (default 500 ms).
    partial_ms : int
        Minimum new audio between partials (default 200 ms; 0: finals only).
    language : str
        Reported in ``Transcript.language`` (default ``"en"``).
    **options
        Connection options: ``queue_size``, ``overflow``, ``send_timeout``,
        ``finish_timeout``, ``name`` (see :class:`~voxsync.connection.Connection`).

    Raises
    ------
    ConfigurationError
        A bad option (checked here) or a model that cannot be loaded (at
        :meth:`connect`).

    Notes
    -----
    The model is loaded by :meth:`connect` on the calling thread (about half
    a second). Decoding runs on the connection's writer (a worker thread of
    voxsync's shared pool, named ``voxsync-local-<n>-writer`` meanwhile),
    never on yours or in the dispatcher; handlers run on the dispatcher as
    for every provider. Audio may
    be sent faster than real time (files) or paced (microphones): the result
    is the same.

    Examples
    --------
    >>> conn = LocalConnection()                         # doctest: +SKIP
    >>> @conn.on("transcript")                           # doctest: +SKIP
    ... def show(ev):
    ...     if ev.is_final:
    ...         print(ev.text)
    >>> with conn:                                       # doctest: +SKIP
    ...     voxsync.audio.stream_file(conn, "speech.wav", realtime=False)
    """

    provider: ClassVar[str] = "local"
    event_names: ClassVar[FrozenSet[str]] = Connection.event_names | {"transcript"}
    _uses_reader_thread: ClassVar[bool] = False

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
        language: Optional[str] = "en",
        **options: Any,
    ) -> None:
        self._decoder_options = DecoderOptions.from_options(
            hmm=hmm,
            lm=lm,
            dict=dict,
            keyphrase=keyphrase,
            kws_threshold=kws_threshold,
            grammar=grammar,
            vocabulary=vocabulary,
        )
        self._silence_ms = silence_ms
        self._partial_ms = partial_ms
        self._language = language
        self._recognizer: Optional[Recognizer] = None
        super().__init__(AUDIO_FORMAT, **options)
        # checks silence_ms / partial_ms now rather than at connect()
        Recognizer._check_timing(silence_ms, partial_ms)

    # -- provider hooks ---------------------------------------------------

    def _open(self, timeout: float) -> None:
        # caller's thread: load the model (no decoding happens here)
        self._recognizer = Recognizer(
            SAMPLE_RATE,
            options=self._decoder_options,
            silence_ms=self._silence_ms,
            partial_ms=self._partial_ms,
        )
        opts = self._decoder_options
        modes = [m for m in ("keyphrase", "grammar", "vocabulary") if getattr(opts, m)]
        mode = modes[0] if modes else "language model"
        self._connect_info = {
            "provider": self.provider,
            "engine": "pocketsphinx",
            "model": opts.hmm or "en-us (bundled)",
            "search": mode,
            "sample_rate": SAMPLE_RATE,
        }
        log.debug("%s: pocketsphinx model loaded (%s)", self.name, mode)

    def _write_chunk(self, chunk: bytes) -> None:
        # writer thread: decoding happens here
        recognizer = self._recognizer
        if recognizer is None:  # closed meanwhile
            return
        for segment in recognizer.feed(chunk):
            self._deliver(segment_to_transcript(segment, self._language))

    def _end_of_stream(self) -> None:
        # writer thread, after all queued audio was decoded
        recognizer = self._recognizer
        if recognizer is not None:
            for segment in recognizer.flush():
                self._deliver(segment_to_transcript(segment, self._language))
        self._stream_ended()

    def _close_transport(self) -> None:
        # Any thread. The decoder is not thread-safe, so it is not touched
        # here: interrupt() only sets a flag, and a chunk being decoded on the
        # writer thread stops at its next slice; the decoder is freed afterwards.
        recognizer = self._recognizer
        self._recognizer = None
        if recognizer is not None:
            recognizer.interrupt()
