"""Palabra events, under the names of Palabra's own SDK.

Each class is also one of voxsync's shared events, so the same object reaches
``@session.on(...)`` under the shared name and ``for event in session`` under
its Palabra class:

==================  ===================  =====================================
class               emitted as           is a
==================  ===================  =====================================
``Transcript``      ``transcript`` or    :class:`voxsync.events.Transcript`
                    ``translation``
``Audio``           ``audio``            :class:`voxsync.events.AudioChunk`
``TaskInfo``        ``task``             :class:`voxsync.events.Event`
``StreamEnd``       ``end_of_stream``    :class:`voxsync.events.Event`
``ServerError``     ``error``            :class:`voxsync.errors.ServerError`
``ServerWarning``   ``warning``          :class:`voxsync.events.StreamWarning`
``Raw``             ``message``          :class:`voxsync.events.Message`
==================  ===================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional, Union

from voxsync.audio.format import AudioFormat
from voxsync.errors import ServerError as _VoxsyncServerError
from voxsync.events import AudioChunk, Event, Message, StreamWarning
from voxsync.events import Transcript as _Transcript

__all__ = [
    "OUTPUT_FORMAT",
    "Audio",
    "PalabraEvent",
    "Raw",
    "ServerError",
    "ServerWarning",
    "StreamEnd",
    "TaskInfo",
    "Transcript",
]

#: What ``output_audio_data`` carries once decoded: PCM s16le, 24 kHz, mono.
OUTPUT_FORMAT = AudioFormat(24000, 1, "pcm_s16le")


@dataclass(frozen=True, repr=False)
class Transcript(_Transcript):
    """A source transcription or a translation, partial or final.

    Attributes
    ----------
    text, language, id
        As in :class:`voxsync.events.Transcript`; ``language`` is the target
        language for translations.
    is_final : bool
        True for ``validated_transcription`` / ``translated_transcription``.
    is_translation : bool
        True for translations; they are emitted as ``translation``.
    source_language : str or None
        For translations: the language of the source, when known.
    """

    is_translation: bool = False
    source_language: Optional[str] = None

    @property
    def is_eos(self) -> bool:
        """True for final (validated) text: the SDK's name for ``is_final``."""
        return self.is_final

    @property
    def target_language(self) -> Optional[str]:
        """The translation's language (None for source transcripts)."""
        return self.language if self.is_translation else None

    @property
    def event_name(self) -> str:
        return "translation" if self.is_translation else "transcript"

    def __str__(self) -> str:
        mark = "" if self.is_final else "~ "
        return f"{mark}[{self.language or '?'}] {self.text}"

    def __repr__(self) -> str:
        kind = ("final" if self.is_final else "partial") + (
            " translation" if self.is_translation else ""
        )
        return f"<Transcript {kind} [{self.language}] {self.text!r}>"


@dataclass(frozen=True, repr=False)
class Audio(AudioChunk):
    """A chunk of synthesized speech (PCM s16le, 24 kHz, mono; zlib already undone).

    ``last_chunk`` (the SDK's name for ``last``) is True on a sentence's last chunk.
    """

    @property
    def last_chunk(self) -> bool:
        """True on the last chunk of a sentence."""
        return self.last


@dataclass(frozen=True, repr=False)
class TaskInfo(Event):
    """The task as the server runs it (``current_task``) or a ``task_status`` ack.

    Attributes
    ----------
    status : str or None
        ``"running"`` or ``"paused"``.
    task : Mapping or None
        The task echo (``current_task``); None for a ``task_status`` ack.
    command, change : str or None
        For ``task_status`` acks: the command acknowledged and what happened
        (the message's ``event``: ``started``, ``updated``, ``paused``, ...).
    """

    name: ClassVar[str] = "task"

    status: Optional[str] = None
    task: Optional[Mapping[str, Any]] = None
    command: Optional[str] = None
    change: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        what = f" {self.command}/{self.change}" if self.command else ""
        return f"<TaskInfo {self.status}{what}>"


@dataclass(frozen=True, repr=False)
class StreamEnd(Event):
    """The server's end-of-stream marker (``eos`` or ``end_of_stream``)."""

    name: ClassVar[str] = "end_of_stream"

    type: str = "eos"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"<StreamEnd {self.type}>"


class ServerError(_VoxsyncServerError):
    """An ``error`` message of the server, delivered as an event (not raised).

    Attributes
    ----------
    code : str
        ``UNKNOWN_ERROR`` when the server gave none.
    desc : str
    """

    name: ClassVar[str] = "error"

    def __init__(self, code: Optional[str], desc: str, raw: Optional[Mapping[str, Any]] = None):
        super().__init__(desc, code=code or "UNKNOWN_ERROR", raw=raw)

    @property
    def desc(self) -> str:
        """The server's explanation."""
        return self.detail

    @property
    def event_name(self) -> str:
        return "error"

    def __repr__(self) -> str:
        return f"<ServerError {self.code} {self.detail!r}>"


@dataclass(frozen=True, repr=False)
class ServerWarning(StreamWarning):
    """A server warning: ``AUDIO_STREAM_TOO_FAST``, ``AUDIO_STREAM_TOO_SLOW``, ``..._STALLED``."""


@dataclass(frozen=True, repr=False)
class Raw(Message):
    """Any message the codec does not know; ``type`` is its ``message_type``."""

    @property
    def data(self) -> Any:
        """The message's ``data`` (decoded when it was double-encoded)."""
        return self.raw.get("data", self.raw)


PalabraEvent = Union[Transcript, Audio, TaskInfo, StreamEnd, ServerError, ServerWarning, Raw]
