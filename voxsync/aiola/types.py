"""aiOla names and value types: :class:`LiveEvents`, token and file results, events.

``from aiola.types import LiveEvents`` in aiOla's examples becomes
``from voxsync.aiola.types import LiveEvents``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterator, List, Mapping, Optional

from voxsync.events import Event

__all__ = [
    "DEFAULT_API_BASE_URL",
    "DEFAULT_AUTH_BASE_URL",
    "DEFAULT_WORKFLOW_ID",
    "FileTranscript",
    "GrantTokenResponse",
    "LiveEvents",
    "Structured",
]

#: aiOla's API host (streaming and REST).
DEFAULT_API_BASE_URL = "https://apis.aiola.ai"
#: aiOla's auth host.
DEFAULT_AUTH_BASE_URL = "https://auth.aiola.ai"
#: The default workflow (flow) id of aiOla's SDKs.
DEFAULT_WORKFLOW_ID = "2c78fcf1-9265-408f-b8c3-d9d7e7ebc1bc"


class LiveEvents(str, enum.Enum):
    """Event names of an aiOla stream, under aiOla's SDK names.

    Members compare equal to their string values, so
    ``conn.on(LiveEvents.Transcript)`` and ``conn.on("transcript")`` are the
    same registration.
    """

    Transcript = "transcript"
    """A recognised utterance: :class:`voxsync.events.Transcript` (``data["transcript"]``)."""
    Translation = "translation"
    """Translation task output: :class:`voxsync.events.Translation` (``data["translation"]``)."""
    Structured = "structured"
    """Structured-extraction output: :class:`Structured` (``data["results"]``)."""
    SchemaValuesUpdated = "schema_values_updated"
    """The service applied ``set_schema_values``: :class:`voxsync.events.UnknownEvent`."""
    Error = "error"
    """A :class:`voxsync.errors.VoxsyncError`; server ``error`` events are
    :class:`voxsync.errors.ServerError` (``err["message"]``, ``err.get("details")``)."""
    Connect = "connect"
    """The stream was accepted (handlers may take no argument)."""
    Disconnect = "disconnect"
    """The stream ended; always the last event (handlers may take no argument)."""
    Reconnecting = "reconnecting"
    """The transport was lost; a reconnection attempt is about to start."""
    Reconnected = "reconnected"
    """The transport is back; queued audio flows again."""
    Warning = "warning"
    """Something went wrong but the stream goes on (e.g. audio dropped)."""
    Message = "message"
    """An event this version does not know, as :class:`voxsync.events.UnknownEvent`."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, repr=False)
class Structured(Event):
    """Output of aiOla's structured tasks (form filling, entity detection).

    Attributes
    ----------
    results : Mapping
        The service's ``results`` object; its shape depends on the workflow.
    raw : Mapping
        The whole payload.
    """

    name: ClassVar[str] = "structured"

    results: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"<Structured {dict(self.results)!r}>"


class _Record(Mapping[str, Any]):
    """A result readable by attribute and by the service's JSON keys."""

    _keys: ClassVar[Dict[str, str]] = {}  # JSON key -> attribute
    raw: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        attr = self._keys.get(key)
        if attr is not None:
            return getattr(self, attr)
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._keys, *self.raw]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._keys, *self.raw]))


@dataclass(frozen=True, repr=False, eq=False)
class GrantTokenResponse(_Record):
    """Result of :meth:`voxsync.aiola.AiolaClient.grant_token`.

    Reads as in aiOla's docs (``result["accessToken"]``, ``result["sessionId"]``)
    and as attributes (``result.access_token``, ``result.session_id``).

    Attributes
    ----------
    access_token : str
        The session's JWT; pass it to ``AiolaClient(access_token=...)``.
    session_id : str or None
        The session id, for :meth:`~voxsync.aiola.AiolaClient.close_session`.
    expires_at : float or None
        ``exp`` of the JWT (seconds since the epoch), read without verifying it.
    """

    _keys: ClassVar[Dict[str, str]] = {
        "accessToken": "access_token",
        "sessionId": "session_id",
    }

    access_token: str
    session_id: Optional[str] = None
    expires_at: Optional[float] = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<GrantTokenResponse session_id={self.session_id!r} access_token='***'>"


@dataclass(frozen=True, repr=False, eq=False)
class FileTranscript(_Record):
    """Result of :meth:`voxsync.aiola.SttClient.transcribe_file`.

    Attributes
    ----------
    transcript : str
        The text, keywords applied.
    raw_transcript : str or None
    segments : list of dict
        ``{"start": s, "end": s}`` speech segments.
    metadata : dict
        ``file_duration``, ``language``, ``sample_rate``, ... as the service sent them.
    raw : Mapping
        The whole response body. ``result["transcript"]`` reads the
        :attr:`transcript` attribute, so it also works for services that
        answer with ``itn_transcript`` only.
    """

    _keys: ClassVar[Dict[str, str]] = {"transcript": "transcript"}

    transcript: str
    raw_transcript: Optional[str] = None
    segments: List[Dict[str, Any]] = field(default_factory=list)
    metadata: Dict[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.transcript

    def __repr__(self) -> str:
        return f"<FileTranscript {self.transcript!r}>"
