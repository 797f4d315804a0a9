"""Event objects handed to handlers, one object per call.

Every event is a frozen dataclass with a shared vocabulary across providers
(``Transcript.text`` means the same thing for aiOla, Uh!ive and the local
recognizer). Fields may be added in later versions; handlers that take the
event object keep working.

Each event also reads like the provider's raw payload, so vendor snippets
that index dictionaries keep working unchanged::

    @conn.on("transcript")
    def on_transcript(ev):
        print(ev.text)                          # typed field
        print(ev["transcript"])                 # the raw payload, for aiOla
        print(ev.get("transcript", ev))         # the vendor docs' idiom

``str(event)`` gives a short human-readable line (for transcripts, the text).
"""

from __future__ import annotations

from collections.abc import KeysView, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Tuple

from voxsync.format import AudioFormat

__all__ = [
    "AudioChunk",
    "Connected",
    "DisconnectReason",
    "Disconnected",
    "Event",
    "Message",
    "Reconnected",
    "Reconnecting",
    "StreamWarning",
    "Transcript",
    "Translation",
    "UnknownEvent",
    "Word",
]

_EMPTY: Mapping[str, Any] = {}


class Event:
    """Base of all event classes: read-only mapping access to ``raw``.

    Attributes
    ----------
    name : str
        The event name it is emitted under (``"transcript"``, ...).
    """

    name: ClassVar[str] = "message"
    raw: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``raw[key]`` if present, else ``default`` (like ``dict.get``)."""
        return self.raw.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def keys(self) -> KeysView[str]:
        """Keys of the raw payload."""
        return self.raw.keys()

    @property
    def event_name(self) -> str:
        """Name this object is emitted under (equals :attr:`name` except for messages)."""
        return self.name


@dataclass(frozen=True)
class Word:
    """One recognised word.

    Attributes
    ----------
    text : str
    start, end : float or None
        Seconds from the start of the stream (or from the provider's origin).
    confidence : float or None
        0..1 when the provider gives one.
    """

    text: str
    start: Optional[float] = None
    end: Optional[float] = None
    confidence: Optional[float] = None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, repr=False)
class Transcript(Event):
    """Recognised speech: a partial hypothesis or a final segment.

    Attributes
    ----------
    text : str
        The transcript of the segment so far (partials) or in full (finals).
    is_final : bool
        False for partial (interim) results that may still change.
    language : str or None
    start, end : float or None
        Segment bounds in seconds from the start of the stream.
    words : tuple of Word
        Word timings, when the provider gives them.
    speaker : str or None
        Who spoke (Uh!ive conversations).
    id : str or None
        Segment / utterance id; partials and the final of one segment share it.
    confidence : float or None
    raw : Mapping
        The provider's payload as received.
    """

    name: ClassVar[str] = "transcript"

    text: str
    is_final: bool = True
    language: Optional[str] = None
    start: Optional[float] = None
    end: Optional[float] = None
    words: Tuple[Word, ...] = ()
    speaker: Optional[str] = None
    id: Optional[str] = None
    confidence: Optional[float] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        kind = "final" if self.is_final else "partial"
        who = f" speaker={self.speaker!r}" if self.speaker else ""
        return f"<Transcript {kind}{who} {self.text!r}>"


@dataclass(frozen=True, repr=False)
class Translation(Event):
    """Translated text (aiOla translation task, Palabra).

    Attributes
    ----------
    text : str
    source_language, target_language : str or None
    is_final : bool
    id : str or None
    raw : Mapping
    """

    name: ClassVar[str] = "translation"

    text: str
    source_language: Optional[str] = None
    target_language: Optional[str] = None
    is_final: bool = True
    id: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Translation {self.target_language or '?'} {self.text!r}>"


@dataclass(frozen=True, repr=False)
class AudioChunk(Event):
    """Synthesised audio received from the service.

    Attributes
    ----------
    pcm : bytes
        Audio in :attr:`audio_format`.
    audio_format : AudioFormat
    language : str or None
    last : bool
        True on the last chunk of a sentence / generation.
    id : str or None
    """

    name: ClassVar[str] = "audio"

    pcm: bytes
    audio_format: AudioFormat
    language: Optional[str] = None
    last: bool = False
    id: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"<AudioChunk {len(self.pcm)} bytes {self.audio_format} last={self.last}>"


class DisconnectReason:
    """Why a connection ended; the value of :attr:`Disconnected.reason`."""

    CLIENT = "client disconnect"
    """``close()`` / ``disconnect()`` was called, or ``finish()`` completed."""
    SERVER = "server disconnect"
    """The service closed the stream."""
    TRANSPORT_ERROR = "transport error"
    """The network or the socket failed."""


@dataclass(frozen=True, repr=False)
class Connected(Event):
    """The service accepted the stream. Emitted once, before any other event.

    Attributes
    ----------
    provider : str
    raw : Mapping
        What the service said on accepting (may be empty).
    """

    name: ClassVar[str] = "connect"

    provider: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"<Connected {self.provider}>"


@dataclass(frozen=True, repr=False)
class Disconnected(Event):
    """The connection is closed. Always the last event of a connection.

    Attributes
    ----------
    reason : str
        One of the :class:`DisconnectReason` constants.
    error : VoxsyncError or None
        The failure that ended the stream, if it did not end normally.
    events_discarded : int
        Events that had arrived but were not dispatched because ``close()``
        was called (``close()`` is immediate: it does not run the handlers
        of a backlog). ``str(event)`` names the count when it is not 0.
    """

    name: ClassVar[str] = "disconnect"

    reason: str = DisconnectReason.CLIENT
    error: Optional[BaseException] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    events_discarded: int = 0

    def __str__(self) -> str:
        if self.events_discarded:
            return f"{self.reason} ({self.events_discarded} events not dispatched)"
        return self.reason

    def __repr__(self) -> str:
        extra = f" events_discarded={self.events_discarded}" if self.events_discarded else ""
        return f"<Disconnected {self.reason!r}{extra}>"


@dataclass(frozen=True, repr=False)
class Reconnecting(Event):
    """The transport was lost; voxsync is trying again (attempt ``attempt``)."""

    name: ClassVar[str] = "reconnecting"

    attempt: int = 1
    error: Optional[BaseException] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"<Reconnecting attempt={self.attempt}>"


@dataclass(frozen=True, repr=False)
class Reconnected(Event):
    """The transport is back after ``attempts`` tries; queued audio flows again."""

    name: ClassVar[str] = "reconnected"

    attempts: int = 1
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"<Reconnected after {self.attempts}>"


@dataclass(frozen=True, repr=False)
class StreamWarning(Event):
    """Something went wrong but the stream goes on.

    Attributes
    ----------
    code : str
        Machine-readable: ``"audio_dropped"`` (send queue overflow),
        provider codes such as Palabra's ``AUDIO_STREAM_TOO_FAST``, ...
    message : str
    count : int
        For ``audio_dropped``: total chunks dropped so far on this connection.
    """

    name: ClassVar[str] = "warning"

    code: str
    message: str = ""
    count: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"<StreamWarning {self.code} {self.message!r}>"


@dataclass(frozen=True, repr=False)
class UnknownEvent(Event):
    """A payload the codec does not know. Never dropped: emitted as ``message``.

    Every provider uses this one class (``Message`` is its older name, kept
    as an alias).

    Attributes
    ----------
    type : str
        The provider's name for it (Socket.IO event, Phoenix event, ...).
    raw : Mapping
        The payload. Non-mapping payloads are wrapped as ``{"data": payload}``.
    """

    name: ClassVar[str] = "message"

    type: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"<UnknownEvent {self.type!r} {dict(self.raw)!r}>"


#: The older name of :class:`UnknownEvent` (same class).
Message = UnknownEvent
