"""Palabra realtime speech-to-text: :class:`SpeechToText`, made by ``palabra.stt(...)``.

Audio goes up as binary frames in the format the connection declares
(``conn.input_format``; voxsync's audio sources convert to it); transcripts
come back, partial and final, followed by one translation per target
language after each final::

    from voxsync.palabra import Palabra

    palabra = Palabra()
    with palabra.stt(language="en", translate=["es"]) as stt:
        @stt.on("transcript")
        def show(ev):
            print(ev)                    # "~ [en] hello wor" / "[en] hello world"

        @stt.on("translation")
        def show_translation(ev):
            print(ev)                    # "[es] hola mundo"

        stt.send_file("speech.wav")     # or MicrophoneStream().stream_to(stt)
    # leaving the block: silence tail, wait for the last final, close

Partials carry the whole segment so far (``text``): render it in place of
the previous partial of the same ``id``; its tail may be rewritten.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, FrozenSet, Optional, Set, Union

from voxsync.audio.format import AudioFormat
from voxsync.connection import Connection
from voxsync.errors import ConfigurationError, RemoteProtocolError
from voxsync.palabra._realtime_base import RealtimeSocket, check_options
from voxsync.palabra.events import ServerError, Transcript
from voxsync.palabra.realtime import AsrSettings, asr_url, parse_asr_message

if TYPE_CHECKING:
    from voxsync.palabra.client import Palabra, Session

__all__ = ["DEFAULT_SILENCE_TAIL", "FORMATS", "SpeechToText", "create_connection"]

log = logging.getLogger("voxsync.palabra")

#: ``format`` values the connection can convert audio to (raw formats).
FORMATS = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")
#: Seconds of silence :meth:`SpeechToText.finish` streams so the last words are finalized.
DEFAULT_SILENCE_TAIL = 1.0
#: Seconds finish() waits, after the tail, for a final once no result is pending.
_QUIET = 0.6
#: Bytes per binary frame: 320 ms of 16 kHz mono 16-bit audio.
_CHUNK_SECONDS = 0.32


class SpeechToText(RealtimeSocket):
    """One realtime speech-to-text stream (the ASR socket).

    Create it with :meth:`voxsync.palabra.Palabra.stt`. ``connect()`` (or
    entering ``with``) creates the REST session if needed and opens the
    socket; the settings travel in its URL. Leaving ``with`` (or
    :meth:`finish`) streams a short silence tail, waits (bounded) for the
    final of the last words, then closes and deletes the session voxsync
    created. The service's own client closes at once and loses that last
    segment.

    Parameters
    ----------
    client : Palabra
    language : str
        Source language, or ``"auto"`` (the service's default) to detect it.
    translate : str or list of str, optional
        Target languages: one ``translation`` event per target after each final.
    sample_rate : int
        Rate of the audio :meth:`send` takes (default 16000, the service's
        default; others are declared in the URL).
    format : {"pcm_s16le", "pcm_f32le", "mulaw", "alaw"}
        Encoding of the audio :meth:`send` takes.
    enable_filler_filter : bool or None
        Drop filler words; None keeps the service's default.
    silence_tail : float
        Seconds of silence :meth:`finish` streams (paced at real time) so
        the service finalizes the last words, before it waits for their
        final. 0 closes at once, as the service's own client does (the last
        segment is then usually lost).
    session, ws_url, token
        The connection modes (see :class:`voxsync.palabra.Palabra`).
    **options
        Connection options (``queue_size``, ``overflow``, ``finish_timeout``
        (default 15 s), ``name``, ...).

    Notes
    -----
    After audio sent faster than real time (``send_file(...,
    realtime=False)``), :meth:`finish` also gives the service the time a
    real-time recognizer needs to catch up; raise ``finish_timeout`` for
    long uploads.

    Events (handlers run on the dispatcher thread, one at a time, in order):
    ``transcript`` (:class:`~voxsync.palabra.Transcript`, partial and
    final), ``translation`` (:class:`~voxsync.palabra.Transcript` with
    ``is_translation``), ``error`` (:class:`~voxsync.palabra.ServerError`
    from the service; the stream goes on), ``message``
    (:class:`~voxsync.palabra.Raw`), ``connect``, ``disconnect``.

    Raises (on connect)
    -------------------
    AuthError
        HTTP 401: the token (session) is not valid; or no credentials.
    ConcurrencyLimitError
        HTTP 409: a session is already active for this identity.
    ConfigurationError
        HTTP 400: the service refused the settings (its reason is quoted).
    SessionError
        Any other failure to reach the service.
    """

    provider: ClassVar[str] = "palabra-stt"
    max_chunk_seconds = _CHUNK_SECONDS
    service = "Palabra STT"
    event_names: ClassVar[FrozenSet[str]] = Connection.event_names | frozenset(
        {"transcript", "translation"}
    )

    def __init__(
        self,
        client: Palabra,
        language: str = "auto",
        translate: Union[str, Iterable[str], None] = None,
        *,
        sample_rate: int = 16000,
        format: str = "pcm_s16le",
        enable_filler_filter: Optional[bool] = None,
        silence_tail: float = DEFAULT_SILENCE_TAIL,
        session: Optional[Session] = None,
        ws_url: Optional[str] = None,
        token: Optional[str] = None,
        **options: Any,
    ) -> None:
        check_options(options, "stt")
        if format not in FORMATS:
            raise ConfigurationError(
                f"format must be one of {', '.join(FORMATS)} (voxsync converts any audio "
                f"to it), got {format!r}"
            )
        targets = (translate,) if isinstance(translate, str) else tuple(translate or ())
        self.settings = AsrSettings(
            language=language,
            translate_languages=targets,
            format=format,
            sample_rate=None if format == "pcm_s16le" and sample_rate == 16000 else sample_rate,
            enable_filler_filter=enable_filler_filter,
        )
        if isinstance(silence_tail, bool) or not silence_tail >= 0:
            raise ConfigurationError(f"silence_tail must be >= 0 seconds, got {silence_tail!r}")
        options.setdefault("finish_timeout", 15.0)
        super().__init__(
            client,
            AudioFormat(sample_rate, 1, format),
            session=session,
            ws_url=ws_url,
            token=token,
            **options,
        )
        self.silence_tail = float(silence_tail)
        self._results = threading.Condition()
        self._open_ids: Set[str] = set()  # segments with a partial and no final yet
        self._last_result = 0.0
        self._detected_language: Optional[str] = None
        self._first_audio: Optional[float] = None  # writer thread only
        self._audio_seconds = 0.0

    # ----------------------------------------------------------------- info
    @property
    def input_format(self) -> AudioFormat:
        """What :meth:`send` takes: mono audio in the declared format and rate."""
        fmt = self._input_format
        assert fmt is not None
        return fmt

    @property
    def language(self) -> str:
        """The source language asked for (``"auto"`` to detect it)."""
        return self.settings.language

    @property
    def translate_languages(self) -> tuple[str, ...]:
        """The target languages."""
        return self.settings.translate_languages

    def _socket_url(self, session: Optional[Session], token: str) -> str:
        base = self._ws_url if session is None else self._client.api_url
        assert base is not None
        return asr_url(base, self.settings, token)

    # ----------------------------------------------------------------- audio
    def send_audio(self, chunk: Any) -> None:
        """Same as :meth:`send` (the name of Palabra's SDK)."""
        self.send(chunk)

    def send_file(self, path: Any, *, realtime: bool = True) -> None:
        """Send an audio file (any format and rate voxsync reads), converted and paced.

        Parameters
        ----------
        path : str or path-like
        realtime : bool
            Pace the audio at real time, as the service expects (False:
            as fast as the queue takes it, for emulators).
        """
        from voxsync.audio.files import stream_file

        stream_file(self, path, realtime=realtime, chunk_ms=_CHUNK_SECONDS * 1000)

    def _write_chunk(self, chunk: bytes) -> None:
        if self._first_audio is None:
            self._first_audio = time.monotonic()
        self._audio_seconds += self.input_format.duration(len(chunk))
        self._write_frame(bytes(chunk))

    # --------------------------------------------------------------- receive
    def _receive(self, frame: Union[str, bytes]) -> None:
        try:
            event = parse_asr_message(frame, source_language=self._source_language())
        except RemoteProtocolError as exc:
            self._deliver(exc)
            return
        with self._results:
            self._last_result = time.monotonic()
            if isinstance(event, Transcript) and not event.is_translation and event.id:
                if event.is_final:
                    self._open_ids.discard(event.id)
                    if event.language:
                        self._detected_language = event.language
                else:
                    self._open_ids.add(event.id)
            self._results.notify_all()
        if isinstance(event, ServerError):
            self._deliver(event, "error")
        else:
            self._deliver(event)

    def _source_language(self) -> Optional[str]:
        if self.settings.language != "auto":
            return self.settings.language
        return self._detected_language

    # ----------------------------------------------------------------- finish
    def _end_of_stream(self) -> None:
        """Writer thread: silence tail, then wait (bounded by finish()) for the last final."""
        if self.silence_tail == 0:  # the vendor client's way: close at once
            self._stream_ended()
            return
        fmt = self.input_format
        filler = {"mulaw": b"\xff", "alaw": b"\xd5"}.get(fmt.encoding, b"\0")
        silence = filler * fmt.nbytes(_CHUNK_SECONDS)
        started = time.monotonic()
        sent = 0.0
        while sent < self.silence_tail and not self._closing:  # paced at real time
            self._write_frame(silence)
            sent += _CHUNK_SECONDS
            ahead = started + sent - time.monotonic()
            if ahead > 0 and sent < self.silence_tail:
                time.sleep(ahead)
        # audio sent faster than real time is recognized later: allow the service
        # (which works at real time) to catch up before calling the stream quiet
        first = self._first_audio if self._first_audio is not None else time.monotonic()
        ready_at = max(time.monotonic(), first + self._audio_seconds + sent) + _QUIET
        with self._results:
            while not self._closing:
                now = time.monotonic()
                if not self._open_ids and now >= ready_at and now - self._last_result >= _QUIET:
                    break
                self._results.wait(0.1)
        self._stream_ended()


def create_connection(
    language: str = "auto",
    translate: Union[str, Iterable[str], None] = None,
    *,
    client_id: Optional[str] = None,
    client_secret: Optional[str] = None,
    api_url: Optional[str] = None,
    **options: Any,
) -> SpeechToText:
    """The ``palabra-stt`` provider's factory: ``voxsync.connection("palabra-stt", ...)``.

    Credentials and base URL as for :class:`~voxsync.palabra.Palabra`
    (arguments or ``PALABRA_CLIENT_ID`` / ``PALABRA_CLIENT_SECRET`` /
    ``PALABRA_API_URL``); other options as :class:`SpeechToText`.
    """
    from voxsync.palabra.client import Palabra

    return Palabra(client_id, client_secret, api_url).stt(language, translate, **options)
