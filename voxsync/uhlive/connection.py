"""Threaded connection to the Uh!ive Conversation API (H2H).

:class:`ConversationConnection` puts the sans-I/O
:class:`~voxsync.uhlive.conversation.Conversation` codec on the shared
WebSocket runtime (:class:`~voxsync.wsconnection.WebSocketConnection`): a
reader thread decodes frames, the writer thread sends audio, the leave and
keepalives, and the dispatcher thread runs your handlers in order.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, FrozenSet, Optional, Sequence

from voxsync.errors import (
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
)
from voxsync.events import Message, Transcript, Word
from voxsync.format import AudioData, AudioFormat
from voxsync.transport.websocket import WebSocketTransport
from voxsync.uhlive.auth import build_conversation_url, get_token
from voxsync.uhlive.conversation import (
    AUDIO_CODECS,
    AudioSegmentNormalized,
    Conversation,
    EntityFound,
    Event,
    Ok,
    RelationRecognized,
    SpeakerJoined,
    SpeakerLeft,
    SpeechDecoded,
    TagsSet,
    UhliveError,
    Unknown,
)
from voxsync.wsconnection import Frame, WebSocketConnection

__all__ = ["AUDIO_FORMATS", "ConversationConnection", "NormalizedTranscript", "create_connection"]

log = logging.getLogger(__name__)

#: ``audio_codec`` -> the format :meth:`ConversationConnection.send` takes.
AUDIO_FORMATS: Dict[str, AudioFormat] = {
    "linear": AudioFormat(8000, 1, "pcm_s16le"),
    "g711a": AudioFormat(8000, 1, "alaw"),
    "g711u": AudioFormat(8000, 1, "mulaw"),
}

KEEPALIVE_MODES = ("ping", "heartbeat")


@dataclass(frozen=True, repr=False)
class NormalizedTranscript(Transcript):
    """A final segment as normalized by the service (digits, punctuation).

    Emitted as ``normalized`` after the ``transcript`` final of the same
    ``id``.
    """

    name: ClassVar[str] = "normalized"


def _seconds(ms: Optional[int], origin: int) -> Optional[float]:
    return None if ms is None else (ms - origin) / 1000.0


def _transcript(ev: SpeechDecoded, origin: int) -> Transcript:
    words = tuple(
        Word(
            w.word or "",
            _seconds(w.start, origin),
            _seconds(w.end, origin),
            w.confidence,
        )
        for w in ev.words
    )
    cls = NormalizedTranscript if isinstance(ev, AudioSegmentNormalized) else Transcript
    return cls(
        text=ev.transcript,
        is_final=ev.is_final,
        language=ev.lang,
        start=_seconds(ev.start, origin),
        end=_seconds(ev.end, origin),
        words=words,
        speaker=ev.speaker,
        id=ev.utterance_id,
        confidence=ev.confidence,
        raw=ev.raw,
    )


class ConversationConnection(WebSocketConnection):
    """A speaker (or a readonly observer) in an Uh!ive conversation.

    Parameters
    ----------
    conversation_id : str, optional
        The conversation to join (created if needed). Default: a new random
        id, shown in ``conn.conversation_id``.
    speaker : str
        Your alias; every event names its speaker.
    identifier : str, optional
        Your customer identifier; default: the client id.
    client_id, client_secret : str, optional
        Credentials; default ``UHLIVE_API_CLIENT`` / ``UHLIVE_API_SECRET``.
        Not needed when ``token`` is given.
    user_id, user_pwd : str
        For the password grant.
    token : str, optional
        An access token already obtained (skips the token request).
    api_url : str, optional
        API base URL; default ``UHLIVE_API_URL`` or ``wss://api.uh.live``.
    auth_server, realm : str, optional
        Auth server (host or URL) and realm; default ``UHLIVE_AUTH_SERVER``,
        ``UHLIVE_AUTH_REALM``.
    model, country : str
        ASR model / language and the speaker's country (ISO 3166-1).
    readonly : bool
        Join as an observer: no audio, everyone's events.
    interim_results : bool
        Also emit interim transcripts (``is_final=False``).
    rescoring : bool
        Let the service refine finals with a bigger language model.
    origin : int
        UNIX time (ms) that is time 0 of the service's timestamps. Event
        times (``Transcript.start``, word times) are always converted to
        seconds from ``origin``; the raw payload keeps the milliseconds.
    audio_codec : {"linear", "g711a", "g711u"}
        What :meth:`send` takes: 16-bit PCM, A-law or mu-law, 8 kHz mono
        (``conn.audio_format``). voxsync's audio sources convert to it.
    keepalive : {"ping", "heartbeat"}
        How an idle socket is kept open: WebSocket pings or Phoenix
        heartbeats, every ``keepalive_interval`` seconds without audio. The
        service closes sockets silent for 60 s.
    keepalive_interval : float
        Default 15 s.
    **options
        Runtime options of :class:`~voxsync.connection.Connection`
        (``queue_size``, ``overflow``, ``send_timeout``, ``finish_timeout``,
        ``name``, ``event_queue_size``).

    Events
    ------
    ``transcript`` (:class:`~voxsync.events.Transcript`; interims and finals,
    with ``speaker``, ``words`` and times in seconds), ``normalized``
    (:class:`NormalizedTranscript`), ``entity``
    (:class:`~voxsync.uhlive.conversation.EntityFound`), ``relation``,
    ``tags``, ``speaker_joined``, ``speaker_left``, ``message`` (events this
    library does not know), plus ``connect``, ``disconnect``, ``error``,
    ``warning``. Handlers run on the connection's dispatcher thread, one at
    a time, in arrival order; a handler that raises is logged and reported
    as an ``error`` event (:class:`~voxsync.errors.HandlerError`), and the
    stream goes on.

    Notes
    -----
    ``finish()`` sends the queued audio, leaves, and waits (bounded by its
    timeout) for our own ``speaker_left``, which the service sends after the
    last transcript of our audio; an observer waits for the leave reply.

    Examples
    --------
    ::

        conn = ConversationConnection("call-42", "Alice", model="en")

        @conn.on("transcript")
        def show(ev):
            if ev.is_final:
                print(f"{ev.speaker}: {ev.text}")

        with conn:
            voxsync.audio.stream_file(conn, "hello.wav")
    """

    provider: ClassVar[str] = "uhlive"
    max_chunk_seconds = 0.5  # a frame per half second, as the vendor's examples send
    service: ClassVar[str] = "Uh!ive"
    event_names: ClassVar[FrozenSet[str]] = WebSocketConnection.event_names | {
        "transcript",
        "normalized",
        "entity",
        "relation",
        "tags",
        "speaker_joined",
        "speaker_left",
    }

    def __init__(
        self,
        conversation_id: Optional[str] = None,
        speaker: str = "voxsync",
        *,
        identifier: Optional[str] = None,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        user_id: str = "",
        user_pwd: str = "",
        token: Optional[str] = None,
        api_url: Optional[str] = None,
        auth_server: Optional[str] = None,
        realm: Optional[str] = None,
        model: str = "fr",
        country: str = "fr",
        readonly: bool = False,
        interim_results: bool = True,
        rescoring: bool = True,
        origin: int = 0,
        audio_codec: str = "linear",
        keepalive: str = "ping",
        keepalive_interval: Optional[float] = 15.0,
        **options: Any,
    ) -> None:
        if audio_codec not in AUDIO_CODECS:
            raise ConfigurationError(
                f"unknown audio_codec {audio_codec!r}; use one of {', '.join(AUDIO_CODECS)}"
            )
        if keepalive not in KEEPALIVE_MODES:
            raise ConfigurationError(f"keepalive must be 'ping' or 'heartbeat', got {keepalive!r}")
        if not readonly and not model:
            raise ConfigurationError(
                "a speaker needs a model (e.g. model='en'); or use readonly=True"
            )
        if isinstance(origin, bool) or not isinstance(origin, int):
            raise ConfigurationError(f"origin must be an int (UNIX ms), got {origin!r}")
        super().__init__(
            AUDIO_FORMATS[audio_codec], keepalive_interval=keepalive_interval, **options
        )
        self._client_id = client_id or os.environ.get("UHLIVE_API_CLIENT") or None
        self._token = token
        self._fetch_token = functools.partial(
            get_token,
            self._client_id,
            client_secret,
            user_id,
            user_pwd,
            auth_server=auth_server,
            realm=realm,
        )
        if token is None and self._client_id is None:
            raise ConfigurationError(
                "no Uh!ive credentials: pass client_id/client_secret (or set UHLIVE_API_CLIENT "
                "and UHLIVE_API_SECRET), or pass token="
            )
        ident = identifier or self._client_id
        if not ident:
            raise ConfigurationError("identifier is required when only a token is given")
        self.conversation_id = conversation_id or f"voxsync-{uuid.uuid4().hex[:12]}"
        self._codec = Conversation(ident, self.conversation_id, speaker)
        self._api_url = api_url
        self._join_args: Dict[str, Any] = {
            "model": model,
            "country": country,
            "readonly": bool(readonly),
            "interim_results": bool(interim_results),
            "rescoring": bool(rescoring),
            "origin": origin,
            "audio_codec": audio_codec,
        }
        self._origin = origin
        self._keepalive_mode = keepalive
        self._leaving = False

    # ------------------------------------------------------------ info
    @property
    def speaker(self) -> str:
        """Our alias in the conversation."""
        return self._codec.speaker

    @property
    def identifier(self) -> str:
        """The customer identifier of the topic."""
        return self._codec.identifier

    @property
    def topic(self) -> str:
        """``conversation:<identifier>@<conversation_id>``."""
        return self._codec.topic

    @property
    def readonly(self) -> bool:
        """True for an observer that sends no audio."""
        return bool(self._join_args["readonly"])

    def __repr__(self) -> str:
        role = "observer" if self.readonly else f"speaker={self.speaker!r}"
        return (
            f"<ConversationConnection {self.name} {self.topic!r} {role} "
            f"state={self.state.value} {self.audio_format}>"
        )

    def send(self, chunk: AudioData) -> None:
        """Queue audio (see :meth:`voxsync.connection.Connection.send`).

        Raises
        ------
        LocalProtocolError
            On a readonly observer, which cannot send audio.
        """
        if self.readonly:
            raise LocalProtocolError("a readonly observer cannot send audio")
        super().send(chunk)

    # ----------------------------------------------------------- hooks
    def _reset_codec(self) -> None:
        # a failed earlier attempt may have left a join pending
        self._codec = Conversation(self.identifier, self.conversation_id, self.speaker)

    def _create_transport(self, timeout: float) -> WebSocketTransport:
        token = self._token or self._fetch_token(timeout=timeout)
        return WebSocketTransport(
            build_conversation_url(token, self._api_url), secrets=[token], service=self.service
        )

    def _handshake_frames(self) -> Sequence[Frame]:
        return [self._codec.join(**self._join_args)]

    def _handshake_reply(self, frame: Frame) -> bool:
        with self._codec_lock:
            event = self._codec.receive(frame)
            joined, left = self._codec.joined, self._codec.left
        if joined:
            self._connect_info = {
                "topic": self.topic,
                "speaker": self.speaker,
                "readonly": self.readonly,
                "conversation_id": self.conversation_id,
            }
            return True
        if left:
            raise ConnectionError("Uh!ive closed the channel before accepting the join")
        if not isinstance(event, Ok):
            self._handle(event)
        return False

    def _receive(self, frame: Frame) -> None:
        try:
            with self._codec_lock:
                event = self._codec.receive(frame)
                left = self._codec.left
        except UhliveError as exc:
            self._fail(exc)
            return
        except RemoteProtocolError as exc:
            log.warning("%s: %s", self.name, exc)
            self._deliver(exc)
            return
        self._handle(event)
        self._offer_reply(event)
        if left:
            if not self._leaving:
                self._server_ended(event)
                return
            self._stream_ended()  # our own speaker_left: the end-of-stream marker

    def _server_ended(self, event: Event) -> None:
        if isinstance(event, SpeakerLeft) and event.reason:
            why = f"the service ended our session ({event.reason})"
        else:
            why = "the service closed the conversation channel"
        self._fail(DisconnectedError(why))

    def _handle(self, event: Event) -> None:
        if isinstance(event, SpeechDecoded):
            self._deliver(_transcript(event, self._origin))
        elif isinstance(
            event, (EntityFound, RelationRecognized, TagsSet, SpeakerJoined, SpeakerLeft)
        ):
            self._deliver(event)
        elif isinstance(event, Unknown):
            self._deliver(Message(type=event.type, raw=event.raw))
        # Ok (replies, phx_close): state only

    def _audio_frame(self, chunk: bytes) -> Optional[Frame]:
        with self._codec_lock:
            if self._codec.left:  # the service ended our session: the reader reports why
                log.debug("%s: %d bytes after our session ended, not sent", self.name, len(chunk))
                return None
            return self._codec.send_audio_chunk(chunk)

    def _end_of_stream(self) -> None:
        with self._codec_lock:
            frame = self._codec.leave() if self._codec.joined else None
        self._leaving = True
        if frame is None:
            self._stream_ended()
            return
        self._write_frame(frame)

    def _keepalive(self) -> None:
        if self._keepalive_mode == "heartbeat":
            with self._codec_lock:
                frame = self._codec.heartbeat()
            self._write_frame(frame)
        else:
            super()._keepalive()


def create_connection(**options: Any) -> ConversationConnection:
    """The ``uhlive`` provider's factory: a not yet connected :class:`ConversationConnection`.

    Takes the keyword arguments of :class:`ConversationConnection`.
    """
    return ConversationConnection(**options)
