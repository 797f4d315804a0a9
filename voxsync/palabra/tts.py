"""Palabra realtime text-to-speech: :class:`TextToSpeech`, made by ``palabra.tts(...)``.

The seed's two ways, synchronous::

    from voxsync.palabra import Palabra

    palabra = Palabra()
    with palabra.tts(language="en", voice_id="default_low") as tts:
        tts.send_text("The sun was setting over the mountains,")
        tts.send_text(" casting long golden shadows.", eos=True)
        for chunk in tts:                       # TtsChunk: audio, generation_id, last_chunk
            play(chunk.audio)
            if chunk.last_chunk:
                break

    with palabra.tts(language="en", voice_id="default_low") as tts:
        pcm = tts.synthesize("Curious minds think alike.")   # bytes, pcm s16le by default

and beyond them, an LLM's token stream straight in::

    with palabra.tts(language="en") as tts, SpeakerStream(24000) as speaker:
        tts.on("audio", speaker.play)
        tts.speak_stream(token for token in llm_reply())
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Dict, FrozenSet, List, Optional, Union

from voxsync.connection import Connection, EventIterator
from voxsync.errors import (
    ConfigurationError,
    RemoteProtocolError,
    TimeoutError,
)
from voxsync.format import AudioFormat
from voxsync.palabra._realtime_base import RealtimeSocket, check_options
from voxsync.palabra.events import ServerError
from voxsync.palabra.realtime import (
    TEXT_LIMIT,
    TtsChunk,
    TtsDecoder,
    TtsSettings,
    build_cancel,
    build_init,
    build_text,
    tts_url,
)
from voxsync.palabra.textstream import MESSAGE_RATE, RateLimiter, SentenceSplitter
from voxsync.request import Request

if TYPE_CHECKING:
    from voxsync.palabra.client import Palabra, Session

__all__ = ["DEFAULT_SYNTHESIZE_TIMEOUT", "TextToSpeech", "TtsChunk", "create_connection"]

log = logging.getLogger("voxsync.palabra")

#: Seconds :meth:`TextToSpeech.synthesize` waits for the last chunk.
DEFAULT_SYNTHESIZE_TIMEOUT = 30.0


class TextToSpeech(RealtimeSocket):
    """One realtime text-to-speech stream (the TTS socket): text in, audio out.

    Create it with :meth:`voxsync.palabra.Palabra.tts`. ``connect()`` (or
    entering ``with``) creates the REST session if needed, opens the socket
    at the session's ``ws_tts_url`` and sends ``init`` (the service does not
    answer it). Leaving ``with`` (or :meth:`finish`) waits, bounded, until
    every generation asked for has ended, then closes.

    Every message to the service goes out in order, at most
    :data:`~voxsync.palabra.textstream.MESSAGE_RATE` per second (the
    service's limit): a faster caller is slowed down, never refused.

    Events (handlers run on the dispatcher thread, one at a time, in order):
    ``audio`` (:class:`~voxsync.palabra.realtime.TtsChunk`), ``error``
    (:class:`~voxsync.palabra.ServerError`; the stream goes on), ``message``
    (:class:`~voxsync.palabra.Raw`), ``connect``, ``disconnect``.
    ``for chunk in tts`` yields the :class:`TtsChunk` objects (only those)
    received since connecting, blocking until the next one.

    Attributes
    ----------
    settings : TtsSettings
        What ``init`` asked for.
    text_limit : int
        Characters per ``text`` message (256 for 1.x servers).
    """

    provider: ClassVar[str] = "palabra-tts"
    service = "Palabra TTS"
    event_names: ClassVar[FrozenSet[str]] = Connection.event_names | frozenset({"audio"})

    def __init__(
        self,
        client: Palabra,
        language: str = "en",
        voice_id: str = "default_low",
        *,
        model: str = "auto",
        speed: Optional[float] = None,
        deaccent_strength: Optional[float] = None,
        output_format: str = "pcm",
        sample_rate: int = 24000,
        text_limit: int = TEXT_LIMIT,
        session: Optional[Session] = None,
        ws_url: Optional[str] = None,
        token: Optional[str] = None,
        **options: Any,
    ) -> None:
        check_options(options, "tts")
        self.settings = TtsSettings(
            language=language,
            voice_id=voice_id,
            model=model,
            speed=speed,
            deaccent_strength=deaccent_strength,
            output_format=output_format,
            sample_rate=sample_rate,
        )
        if isinstance(text_limit, bool) or not isinstance(text_limit, int) or text_limit < 16:
            raise ConfigurationError(f"text_limit must be an int >= 16, got {text_limit!r}")
        self.text_limit = text_limit
        options.setdefault("finish_timeout", 30.0)
        super().__init__(
            client,
            None,
            output_format=self.settings.audio_format,
            session=session,
            ws_url=ws_url,
            token=token,
            **options,
        )
        self._decoder = TtsDecoder(self.settings)
        # a 2 % margin keeps jitter on the way from looking like a burst to the service
        self._limiter = RateLimiter(MESSAGE_RATE, per=1.02)
        self._state_lock = threading.Condition()
        self._open_generations: Dict[str, int] = {}  # eos sent, last chunk not yet received
        self._current: Optional[str] = None  # generation of text not yet ended by eos
        self._collect: Dict[str, List[bytes]] = {}
        self._iterator: Optional[EventIterator] = None

    # ----------------------------------------------------------------- info
    @property
    def output_format(self) -> AudioFormat:
        """What ``audio`` events' ``pcm`` holds: mono 16-bit PCM at the output rate."""
        return self.settings.audio_format

    def _socket_url(self, session: Optional[Session], token: str) -> str:
        if session is None:
            assert self._ws_url is not None
            return tts_url(self._ws_url, token)
        return tts_url(session.ws_tts_url or self._client.api_url, token)

    def _handshake_frames(self) -> List[str]:
        self._decoder = TtsDecoder(self.settings)
        return [build_init(self.settings)]

    def connect(self, timeout: float = 10.0) -> TextToSpeech:
        """Open the socket and send ``init``.

        Raises
        ------
        AuthError
            No credentials, or the token was refused (HTTP 401).
        SessionError
            The service could not be reached.
        """
        if self._iterator is None:
            self._iterator = self.events(maxsize=100000)
        super().connect(timeout)
        return self

    # ----------------------------------------------------------------- text
    def send_text(self, text: str, eos: bool = False, **options: Any) -> None:
        """Queue one piece of text for synthesis.

        Parameters
        ----------
        text : str
            At most :attr:`text_limit` characters (256 for 1.x servers).
        eos : bool
            True on the last piece of a sentence: synthesis may start.
        generation_id : str, optional
            Id the audio chunks of this text will carry; default: one id
            per sentence, made by voxsync.
        reset_context : bool, optional
            Forget earlier text context (2.x servers).
        **voice_options
            Overrides (``voice_id``, ``speed``, ``deaccent_strength``) for
            this and later messages.

        Raises
        ------
        ValueError
            (:class:`~voxsync.errors.ConfigurationError`) ``text`` is longer
            than the limit (nothing is sent: split it, or use
            :meth:`speak_stream`), or an unknown voice option.
        LocalProtocolError, DisconnectedError
            The connection is not open.
        """
        generation_id = options.pop("generation_id", None)
        reset_context = options.pop("reset_context", None)
        voice_options = options
        with self._state_lock:
            gid = generation_id or self._current or uuid.uuid4().hex
            frame = build_text(
                text,
                eos=eos,
                generation_id=gid,
                voice_options=voice_options or None,
                reset_context=reset_context,
                limit=self.text_limit,
            )
            self._current = None if eos else gid
            if eos:
                self._open_generations[gid] = self._open_generations.get(gid, 0) + 1
        try:
            self._send_control(frame)
        except BaseException:
            if eos:
                self._generation_done(gid)
            raise

    def cancel(self) -> None:
        """Stop the current synthesis; the stream stays open for more text.

        The service ends the cancelled generation with a ``last_chunk``;
        :meth:`finish` no longer waits for generations asked for before.
        """
        self._send_control(build_cancel())
        with self._state_lock:
            self._current = None
            # nothing more is owed for what was asked before (a rejected text
            # would otherwise keep finish() waiting); synthesize() calls wait on
            for gid in [g for g in self._open_generations if g not in self._collect]:
                del self._open_generations[gid]
            self._state_lock.notify_all()

    def speak_stream(self, pieces: Iterable[str], *, eos: bool = True) -> int:
        """Speak a stream of text of any length (an LLM's tokens, lines, ...).

        The text is cut at sentence ends into messages within
        :attr:`text_limit` (a sentence longer than that at clause marks or
        spaces), each sentence's last message marked ``eos``, and sent as it
        becomes complete, at most 50 messages per second. Returns when
        everything is queued; the audio arrives as ``audio`` events.

        Parameters
        ----------
        pieces : iterable of str
            Consumed on the calling thread, as it yields.
        eos : bool
            Mark the end of the stream as a sentence end (default True), so
            the last words are spoken even without final punctuation.

        Returns
        -------
        int
            Messages sent.
        """
        splitter = SentenceSplitter(self.text_limit)
        count = 0
        for text in pieces:
            for piece in splitter.feed(text):
                self.send_text(piece.text, eos=piece.eos)
                count += 1
        for piece in splitter.flush():
            self.send_text(piece.text, eos=piece.eos and eos)
            count += 1
        return count

    def synthesize(
        self, text: str, *, timeout: float = DEFAULT_SYNTHESIZE_TIMEOUT, **voice_options: Any
    ) -> bytes:
        """Synthesize one sentence; return all its audio.

        Parameters
        ----------
        text : str
            At most :attr:`text_limit` characters.
        timeout : float
            Seconds to wait for the last chunk.
        **voice_options
            As for :meth:`send_text`.

        Returns
        -------
        bytes
            The audio in the output format (PCM s16le by default; for
            ``wav`` a complete WAV file; for ``mp3`` MP3 data).

        Raises
        ------
        ValueError
            ``text`` is too long.
        ServerError
            The service reported an error while synthesizing.
        TimeoutError
            No last chunk within ``timeout`` (the generation is cancelled).
        DisconnectedError
            The stream closed while waiting.
        """
        gid = "synth-" + uuid.uuid4().hex
        frame = build_text(
            text,
            eos=True,
            generation_id=gid,
            voice_options=voice_options or None,
            limit=self.text_limit,
        )
        request = Request(
            lambda m: isinstance(m, TtsChunk) and m.id == gid and m.last,
            error=lambda m: m if isinstance(m, ServerError) else None,
            what="synthesize()",
        )
        with self._state_lock:
            self._collect[gid] = []
            self._open_generations[gid] = 1
        try:
            self._request(frame, request, timeout)
        except TimeoutError:
            self.cancel()
            raise
        finally:
            with self._state_lock:
                parts = self._collect.pop(gid, [])
            self._generation_done(gid)
        return b"".join(parts)

    # -------------------------------------------------------------- receive
    def _receive(self, frame: Union[str, bytes]) -> None:
        try:
            event = self._decoder.receive(frame)
        except RemoteProtocolError as exc:
            self._deliver(exc)
            return
        if isinstance(event, TtsChunk):
            with self._state_lock:
                parts = self._collect.get(event.id or "")
                if parts is not None:
                    parts.append(event.audio)
            if event.last and event.id is not None:
                self._generation_done(event.id)
        self._offer_reply(event)
        if isinstance(event, ServerError):
            self._deliver(event, "error")
        else:
            self._deliver(event)

    def _generation_done(self, gid: str) -> None:
        with self._state_lock:
            left = self._open_generations.get(gid, 0) - 1
            if left > 0:
                self._open_generations[gid] = left
            else:
                self._open_generations.pop(gid, None)
            self._state_lock.notify_all()

    def _write_control(self, frame: Union[str, bytes]) -> None:
        # the service allows 50 messages a second: wait for a slot (writer thread)
        while not self._limiter.acquire(deadline=None):
            pass  # pragma: no cover - acquire() without a deadline always succeeds
        self._write_frame(frame)

    def _end_of_stream(self) -> None:
        """Writer thread: wait (bounded by finish()) until every generation ended."""
        with self._state_lock:
            while self._open_generations and not self._closing:
                self._state_lock.wait(0.1)
        self._stream_ended()

    # ------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[TtsChunk]:
        """Blocking iteration over the audio chunks received since connecting.

        Ends when the connection closes; raises the stream's fatal error, if
        it failed.
        """
        iterator = self._iterator
        if iterator is None:
            raise ConfigurationError("connect() (or enter with) before iterating")
        for event in iterator:
            if isinstance(event, TtsChunk):
                yield event
        if self._fatal is not None:
            raise self._fatal


def create_connection(
    language: str = "en",
    voice_id: str = "default_low",
    *,
    client_id: Optional[str] = None,
    client_secret: Optional[str] = None,
    api_url: Optional[str] = None,
    **options: Any,
) -> TextToSpeech:
    """The ``palabra-tts`` provider's factory: ``voxsync.connection("palabra-tts", ...)``.

    Credentials and base URL as for :class:`~voxsync.palabra.Palabra`
    (arguments or the ``PALABRA_*`` environment variables); other options
    as :class:`TextToSpeech`.
    """
    from voxsync.palabra.client import Palabra

    return Palabra(client_id, client_secret, api_url).tts(language, voice_id, **options)
