"""Sans-I/O codec of the Uh!ive Conversation API (H2H, Phoenix channels v2).

No sockets, no threads: :class:`Conversation` builds the frames to send and
turns received frames into typed events. The caller owns the WebSocket::

    client = Conversation(client_id, "my-conversation", "Alice")
    socket.send(client.join(model="en", country="us"))
    client.receive(socket.recv())                  # join reply; raises if refused
    socket.send_binary(client.send_audio_chunk(pcm))
    ...
    socket.send(client.leave())
    while not client.left:
        event = client.receive(socket.recv())

Wire format (Phoenix serializer v2)
-----------------------------------
Text frames are JSON arrays ``[join_ref, ref, topic, event, payload]``.
Client requests carry a string ``ref``; the server answers each with
``[join_ref, ref, topic, "phx_reply", {"status": "ok"|"error", "response": {...}}]``
and pushes events as ``[join_ref, null, topic, event, payload]``.

Audio goes in binary push frames::

    0x00 | len(join_ref) | len(ref) | len(topic) | len(event)
         | join_ref | ref | topic | event ("audio_chunk") | raw audio

One counter numbers every request, commands and audio chunks alike: the join
is ``"1"``, the next frame ``"2"``, and so on. The topic is
``conversation:<identifier>@<conversation_id>``.

A :class:`Conversation` is not thread-safe: guard it with a lock when
several threads send and receive.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, Union

from voxsync.errors import (
    ConfigurationError,
    LocalProtocolError,
    RemoteProtocolError,
    ServerError,
)
from voxsync.events import Event as _VoxsyncEvent

__all__ = [
    "AUDIO_CODECS",
    "AudioSegmentDecoded",
    "AudioSegmentNormalized",
    "AudioWordsDecoded",
    "Conversation",
    "ConversationState",
    "EntityFound",
    "EntityRecognized",
    "Event",
    "Ok",
    "RelationFound",
    "RelationRecognized",
    "SegmentDecoded",
    "SegmentNormalized",
    "SpeakerJoined",
    "SpeakerLeft",
    "SpeechDecoded",
    "TagsSet",
    "TimeScopedEvent",
    "UhliveError",
    "Unknown",
    "UnknownEvent",
    "Word",
    "WordsDecoded",
]

#: ``audio_codec`` values accepted by :meth:`Conversation.join`.
AUDIO_CODECS: Tuple[str, ...] = ("linear", "g711a", "g711u")

_AUDIO_EVENT = b"audio_chunk"
_PHOENIX_TOPIC = "phoenix"
_ENTITY_NAME = re.compile(r"^entity_(.+)_(?:recognized|found)$", re.DOTALL)
_RELATION_NAME = re.compile(r"^relation_(.+)_(?:recognized|found)$", re.DOTALL)


class UhliveError(ServerError):
    """The Uh!ive server refused a request or the channel crashed.

    Raised by :meth:`Conversation.receive` for an error reply (``reason``
    holds the server's text, e.g. why a join was refused) and for
    ``phx_error`` (the server-side channel crashed; join again on a new
    socket).

    Attributes
    ----------
    reason : str
        The server's reason.
    ref : str or None
        The ``ref`` of the request that failed.
    event : str
        ``"phx_reply"`` or ``"phx_error"``.
    """

    def __init__(
        self,
        reason: str,
        *,
        ref: Optional[str] = None,
        event: str = "phx_reply",
        raw: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(reason, code=event, raw=raw, retryable=event == "phx_error")
        self.reason = reason
        self.ref = ref
        self.event = event

    def __str__(self) -> str:
        return self.reason


class ConversationState(enum.Enum):
    """Where a :class:`Conversation` is in its life."""

    IDLE = "idle"
    """Not joined yet: :meth:`Conversation.join` is allowed."""
    JOINING = "joining"
    """Join sent, waiting for the reply."""
    JOINED = "joined"
    """Audio and :meth:`Conversation.leave` are allowed."""
    LEAVING = "leaving"
    """Leave sent; events still arrive until our own ``speaker_left``."""
    LEFT = "left"
    """Out of the conversation (left, closed by the server, or crashed)."""


def _opt_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _opt_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _opt_float(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class Word(Dict[str, Any]):
    """One timestamped word of a transcript (a ``dict`` with properties).

    Times are integer milliseconds on the conversation's time line (``origin``
    plus the offset in the audio).
    """

    @property
    def word(self) -> Optional[str]:
        """The word's text."""
        return _opt_str(self.get("value", self.get("word")))

    value = word

    @property
    def start(self) -> Optional[int]:
        """Start time, ms."""
        return _opt_int(self.get("start"))

    @property
    def end(self) -> Optional[int]:
        """End time, ms."""
        return _opt_int(self.get("end"))

    @property
    def length(self) -> Optional[int]:
        """Duration, ms (``end - start``)."""
        return _opt_int(self.get("length"))

    @property
    def confidence(self) -> Optional[float]:
        """ASR confidence, 0..1."""
        return _opt_float(self.get("confidence"))


class Event(_VoxsyncEvent):
    """Base of every event :meth:`Conversation.receive` returns.

    Reads like its payload (``ev["value"]``, ``ev.get("speaker")``); the
    Phoenix envelope is in :attr:`join_ref`, :attr:`ref`, :attr:`topic` and
    :attr:`event`. Events are read-only.
    """

    name: ClassVar[str] = "message"

    def __init__(
        self,
        join_ref: Optional[str],
        ref: Optional[str],
        topic: str,
        event: str,
        payload: Mapping[str, Any],
    ) -> None:
        self._join_ref = join_ref
        self._ref = ref
        self._topic = topic
        self._event = event
        self.raw = payload

    @property
    def join_ref(self) -> Optional[str]:
        """The ``join_ref`` of the frame."""
        return self._join_ref

    @property
    def ref(self) -> Optional[str]:
        """The ``ref`` of the frame (``None`` for server pushes)."""
        return self._ref

    @property
    def topic(self) -> str:
        """The conversation topic (``"phoenix"`` for heartbeat replies)."""
        return self._topic

    @property
    def event(self) -> str:
        """The Phoenix event name (``"audio_segment_decoded"``, ``"phx_reply"``, ...)."""
        return self._event

    @property
    def payload(self) -> Mapping[str, Any]:
        """The payload object, as received."""
        return self.raw

    @property
    def speaker(self) -> Optional[str]:
        """The speaker this event is about (every application event has one)."""
        return _opt_str(self.raw.get("speaker"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(payload={dict(self.raw)!r})"


class Ok(Event):
    """A successful reply (``phx_reply`` with status ``ok``) or a ``phx_close``."""

    name: ClassVar[str] = "reply"

    @property
    def status(self) -> Optional[str]:
        """``"ok"`` for replies, ``None`` for ``phx_close``."""
        return _opt_str(self.raw.get("status"))

    @property
    def response(self) -> Mapping[str, Any]:
        """The reply's ``response`` object (empty for ``phx_close``)."""
        resp = self.raw.get("response")
        return resp if isinstance(resp, Mapping) else {}


class UnknownEvent(Event):
    """An event this codec does not know; nothing is dropped.

    (``Unknown`` is its older name, kept as an alias.)

    :attr:`type` (same as :attr:`event`) is its Phoenix name.
    """

    name: ClassVar[str] = "message"

    @property
    def type(self) -> str:
        """The Phoenix event name."""
        return self._event

    def __repr__(self) -> str:
        return f"UnknownEvent [{self._event}](payload={dict(self.raw)!r})"


class TimeScopedEvent(Event):
    """An event anchored on the audio time line (integer milliseconds)."""

    @property
    def start(self) -> Optional[int]:
        """Start time, ms (``origin`` + offset in the speaker's audio)."""
        return _opt_int(self.raw.get("start"))

    @property
    def end(self) -> Optional[int]:
        """End time, ms."""
        return _opt_int(self.raw.get("end"))

    @property
    def length(self) -> Optional[int]:
        """Duration, ms."""
        return _opt_int(self.raw.get("length"))

    @property
    def lang(self) -> Optional[str]:
        """Language (ISO 639-1)."""
        return _opt_str(self.raw.get("lang"))

    @property
    def country(self) -> Optional[str]:
        """Country of the speaker (ISO 3166-1 alpha-2)."""
        return _opt_str(self.raw.get("country"))

    @property
    def confidence(self) -> Optional[float]:
        """Confidence, 0..1."""
        return _opt_float(self.raw.get("confidence"))


class SpeechDecoded(TimeScopedEvent):
    """Base of the transcript events."""

    name: ClassVar[str] = "transcript"
    is_final: ClassVar[bool] = True

    @property
    def transcript(self) -> str:
        """The text of the whole segment."""
        text = self.raw.get("value", self.raw.get("transcript"))
        return text if isinstance(text, str) else ""

    text = transcript

    @property
    def utterance_id(self) -> Optional[str]:
        """Identifies the utterance; interims and finals of one utterance share it."""
        value = self.raw.get("id", self.raw.get("utterance_id"))
        return None if value is None else str(value)

    @property
    def words(self) -> List[Word]:
        """The segment's words with their timings."""
        items = self.raw.get("components", self.raw.get("words"))
        if not isinstance(items, list):
            return []
        return [Word(w) for w in items if isinstance(w, Mapping)]

    def __str__(self) -> str:
        return f"[{self.speaker}] {self.transcript}"


class AudioWordsDecoded(SpeechDecoded):
    """Interim transcript (``audio_words_decoded``); may still change."""

    is_final: ClassVar[bool] = False


class AudioSegmentDecoded(SpeechDecoded):
    """Final transcript of a segment (``audio_segment_decoded``)."""


class AudioSegmentNormalized(SpeechDecoded):
    """Final segment, normalized (numbers as digits, punctuation, ...)."""

    name: ClassVar[str] = "normalized"

    def __str__(self) -> str:
        return f"[{self.speaker} - formatted] {self.transcript}"


#: Older names of the transcript events.
WordsDecoded = AudioWordsDecoded
SegmentDecoded = AudioSegmentDecoded
SegmentNormalized = AudioSegmentNormalized


class SpeakerJoined(Event):
    """Another speaker joined the conversation (not sent for observers)."""

    name: ClassVar[str] = "speaker_joined"

    @property
    def timestamp(self) -> Optional[int]:
        """UNIX time of the join, ms."""
        return _opt_int(self.raw.get("timestamp"))

    @property
    def interim_results(self) -> Optional[bool]:
        """Whether the speaker gets interim results."""
        value = self.raw.get("interim_results")
        return value if isinstance(value, bool) else None

    @property
    def rescoring(self) -> Optional[bool]:
        """Whether rescoring is on for the speaker."""
        value = self.raw.get("rescoring")
        return value if isinstance(value, bool) else None

    @property
    def lang(self) -> Optional[str]:
        """Language of the speaker's model."""
        return _opt_str(self.raw.get("lang"))

    @property
    def country(self) -> Optional[str]:
        """Country of the speaker."""
        return _opt_str(self.raw.get("country"))


class SpeakerLeft(Event):
    """A speaker left (after all their transcripts), or their stream was lost."""

    name: ClassVar[str] = "speaker_left"

    @property
    def timestamp(self) -> Optional[int]:
        """UNIX time of the departure, ms."""
        return _opt_int(self.raw.get("timestamp"))

    @property
    def reason(self) -> Optional[str]:
        """Why, when the server says (e.g. an audio gap)."""
        return _opt_str(self.raw.get("reason"))


class EntityFound(TimeScopedEvent):
    """A named entity found in a speaker's transcript.

    ``entity_<name>_recognized`` events are :class:`EntityRecognized`, a
    subclass; this class also reads the older ``annotation`` payloads.
    """

    name: ClassVar[str] = "entity"

    def _annotation(self) -> Mapping[str, Any]:
        ann = self.raw.get("annotation")
        return ann if isinstance(ann, Mapping) else {}

    @property
    def entity_name(self) -> str:
        """The entity type, e.g. ``"cardinal_number"``."""
        match = _ENTITY_NAME.match(self._event)
        return match.group(1) if match else self._event

    @property
    def canonical(self) -> Optional[str]:
        """The well-formatted form (``display``), e.g. ``"22"``."""
        value = self.raw.get("display", self._annotation().get("canonical"))
        if value is None:
            raw_value = self.value
            return None if raw_value is None else str(raw_value)
        return str(value)

    display = canonical

    @property
    def original(self) -> Optional[str]:
        """The transcript excerpt it was found in (``source``)."""
        value = self.raw.get("source", self._annotation().get("original"))
        return None if value is None else str(value)

    source = original

    @property
    def value(self) -> Any:
        """The machine value; its type depends on the entity."""
        if "value" in self.raw:
            return self.raw["value"]
        return self._annotation().get("value")

    @property
    def id(self) -> Optional[str]:
        """The entity's id (relations refer to it)."""
        value = self.raw.get("id")
        return None if value is None else str(value)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__} in {self.speaker}: <{self.entity_name}> "
            f"{self.canonical or self.original}"
        )


class EntityRecognized(EntityFound):
    """An ``entity_<name>_recognized`` event."""


class RelationRecognized(TimeScopedEvent):
    """A relation between entities (``relation_<name>_recognized``)."""

    name: ClassVar[str] = "relation"

    @property
    def relation_name(self) -> str:
        """The relation type."""
        match = _RELATION_NAME.match(self._event)
        return match.group(1) if match else self._event

    @property
    def components(self) -> List[Mapping[str, Any]]:
        """``[{"class": "entity_<x>_recognized", "id": ...}, ...]``."""
        items = self.raw.get("components", self.raw.get("members"))
        return [c for c in items if isinstance(c, Mapping)] if isinstance(items, list) else []

    members = components


RelationFound = RelationRecognized


class TagsSet(TimeScopedEvent):
    """Tags set on a time range (``tags_set``)."""

    name: ClassVar[str] = "tags"

    @property
    def components(self) -> List[Mapping[str, Any]]:
        """``[{"value", "display", "confidence"}, ...]``."""
        items = self.raw.get("components")
        return [c for c in items if isinstance(c, Mapping)] if isinstance(items, list) else []

    tags = components


_EVENTS: Dict[str, Type[Event]] = {
    "audio_words_decoded": AudioWordsDecoded,
    "audio_segment_decoded": AudioSegmentDecoded,
    "audio_segment_normalized": AudioSegmentNormalized,
    "words_decoded": AudioWordsDecoded,
    "segment_decoded": AudioSegmentDecoded,
    "segment_normalized": AudioSegmentNormalized,
    "speaker_joined": SpeakerJoined,
    "speaker_left": SpeakerLeft,
    "tags_set": TagsSet,
}


def _ref(value: Any, what: str) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RemoteProtocolError(f"{what} must be a string, an integer or null, got {value!r:.40}")


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
    return value


class Conversation:
    """One membership in an Uh!ive conversation, without I/O.

    Parameters
    ----------
    identifier : str
        Your customer identifier (given with your credentials; the vendor's
        examples pass the client id).
    conversation_id : str
        The conversation to join; it is created if it does not exist.
    speaker : str
        Your alias in the conversation; events name it.

    Raises
    ------
    ConfigurationError
        For an empty value or a topic longer than 255 UTF-8 bytes.

    Notes
    -----
    Methods that build frames check the state and raise
    :class:`~voxsync.errors.LocalProtocolError` when called at the wrong
    time (audio before the join was accepted, leaving twice, ...).
    :meth:`receive` raises :class:`UhliveError` for refusals and crashes and
    :class:`~voxsync.errors.RemoteProtocolError` for frames that break the
    protocol. Reading properties never changes anything.
    """

    def __init__(self, identifier: str, conversation_id: str, speaker: str) -> None:
        self.identifier = _check_text("identifier", identifier)
        self.conversation_id = _check_text("conversation_id", conversation_id)
        self.speaker = _check_text("speaker", speaker)
        self.topic = f"conversation:{identifier}@{conversation_id}"
        self._topic_bin = self.topic.encode("utf-8")
        if len(self._topic_bin) > 255:
            raise ConfigurationError(
                "identifier and conversation_id are too long: the topic "
                f"'conversation:<identifier>@<conversation_id>' takes {len(self._topic_bin)} "
                "UTF-8 bytes, the protocol allows 255"
            )
        self._state = ConversationState.IDLE
        self._last_ref = 0
        self._join_ref: Optional[str] = None
        self._leave_ref: Optional[str] = None
        self._readonly = False
        self._audio_codec = "linear"

    # -- read-only state --------------------------------------------------

    @property
    def state(self) -> ConversationState:
        """The current :class:`ConversationState`."""
        return self._state

    @property
    def joined(self) -> bool:
        """True once the join was accepted and until :meth:`leave`."""
        return self._state is ConversationState.JOINED

    @property
    def left(self) -> bool:
        """True when not in the conversation.

        After :meth:`leave` it turns True on our own ``speaker_left`` (for a
        speaker: every transcript of our audio came before it), on the leave
        reply (for a readonly observer, which has no ``speaker_left``), or
        when the server closes the channel. It is also True before joining.
        """
        return self._state in (ConversationState.IDLE, ConversationState.LEFT)

    @property
    def readonly(self) -> bool:
        """Whether the last join was as a readonly observer."""
        return self._readonly

    @property
    def audio_codec(self) -> str:
        """The ``audio_codec`` of the last join."""
        return self._audio_codec

    @property
    def join_ref(self) -> Optional[str]:
        """The ``ref`` of the current join (``None`` before joining)."""
        return self._join_ref

    @property
    def last_ref(self) -> str:
        """The ``ref`` of the last frame built (``"0"`` before any)."""
        return str(self._last_ref)

    # -- frames to send ---------------------------------------------------

    def _next_ref(self) -> str:
        self._last_ref += 1
        return str(self._last_ref)

    def _text(
        self, join_ref: Optional[str], ref: str, topic: str, event: str, payload: Mapping[str, Any]
    ) -> str:
        return json.dumps(
            [join_ref, ref, topic, event, payload], ensure_ascii=False, separators=(",", ":")
        )

    def join(
        self,
        model: str = "fr",
        country: str = "fr",
        readonly: bool = False,
        interim_results: bool = True,
        rescoring: bool = True,
        origin: int = 0,
        audio_codec: str = "linear",
    ) -> str:
        """Frame that joins the conversation (``phx_join``).

        Parameters
        ----------
        model : str
            ASR model / language (``"fr"``, ``"en"``, ``"es"``); required
            unless ``readonly``.
        country : str
            ISO 3166-1 alpha-2 country of the speaker.
        readonly : bool
            Join as an observer that streams no audio and receives everyone's
            events.
        interim_results : bool
            Ask for interim (``audio_words_decoded``) events.
        rescoring : bool
            Let the ASR refine final segments with a bigger language model.
        origin : int
            UNIX time in ms that becomes time 0 of the event timestamps.
        audio_codec : str
            ``"linear"`` (16-bit LE PCM, 8 kHz mono), ``"g711a"`` or ``"g711u"``.

        Raises
        ------
        LocalProtocolError
            Already joined or joining.
        ConfigurationError
            No model for a speaker, or an unknown ``audio_codec``.
        """
        if self._state not in (ConversationState.IDLE, ConversationState.LEFT):
            raise LocalProtocolError(
                f"cannot join: the conversation is {self._state.value}; "
                "leave and wait for .left first (one conversation per socket)"
            )
        if not readonly and not model:
            raise ConfigurationError("a speaker needs a model (e.g. model='fr'); or join readonly")
        if audio_codec not in AUDIO_CODECS:
            raise ConfigurationError(
                f"unknown audio_codec {audio_codec!r}; use one of {', '.join(AUDIO_CODECS)}"
            )
        if isinstance(origin, bool) or not isinstance(origin, int):
            raise ConfigurationError(f"origin must be an int (UNIX ms), got {origin!r}")
        ref = self._next_ref()
        frame = self._text(
            ref,
            ref,
            self.topic,
            "phx_join",
            {
                "readonly": bool(readonly),
                "speaker": self.speaker,
                "model": model,
                "country": country,
                "interim_results": bool(interim_results),
                "rescoring": bool(rescoring),
                "origin": origin,
                "audio_codec": audio_codec,
            },
        )
        self._join_ref = ref
        self._leave_ref = None
        self._readonly = bool(readonly)
        self._audio_codec = audio_codec
        self._state = ConversationState.JOINING
        return frame

    def send_audio_chunk(self, chunk: bytes) -> bytes:
        """Binary frame carrying ``chunk`` (raw audio in the join's codec).

        Raises
        ------
        LocalProtocolError
            Not joined (join reply not received yet, or leaving), or joined
            readonly.
        ConfigurationError
            ``chunk`` is not bytes-like.
        """
        if self._state is not ConversationState.JOINED:
            raise LocalProtocolError(
                f"cannot send audio: the conversation is {self._state.value}; "
                "send join() and receive() its reply first"
            )
        if self._readonly:
            raise LocalProtocolError("a readonly observer cannot send audio")
        if isinstance(chunk, str) or not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise ConfigurationError(f"audio must be bytes, got {type(chunk).__name__}")
        join_ref = (self._join_ref or "").encode("ascii")
        ref = self._next_ref().encode("ascii")
        header = bytes((0, len(join_ref), len(ref), len(self._topic_bin), len(_AUDIO_EVENT)))
        return b"".join((header, join_ref, ref, self._topic_bin, _AUDIO_EVENT, bytes(chunk)))

    def leave(self) -> str:
        """Frame that leaves the conversation (``phx_leave``).

        Keep receiving until :attr:`left` is True: transcripts of the audio
        already sent arrive until then.

        Raises
        ------
        LocalProtocolError
            Not joined.
        """
        if self._state is not ConversationState.JOINED:
            raise LocalProtocolError(
                f"cannot leave: the conversation is {self._state.value}, not joined"
            )
        ref = self._next_ref()
        self._leave_ref = ref
        self._state = ConversationState.LEAVING
        return self._text(self._join_ref, ref, self.topic, "phx_leave", {})

    def heartbeat(self) -> str:
        """Phoenix heartbeat frame (keeps an idle socket open; any state)."""
        return self._text(None, self._next_ref(), _PHOENIX_TOPIC, "heartbeat", {})

    # -- frames received --------------------------------------------------

    def receive(self, data: Union[str, bytes]) -> Event:
        """Decode one received frame into an event and update the state.

        Parameters
        ----------
        data : str or bytes
            A text frame. Bytes are decoded as UTF-8 JSON text (some
            WebSocket libraries hand text over as bytes).

        Returns
        -------
        Event
            :class:`Ok` for replies and ``phx_close``; a transcript, speaker,
            entity, relation or tags event; :class:`UnknownEvent` otherwise.

        Raises
        ------
        UhliveError
            Error reply (``reason`` from the server) or ``phx_error``.
        RemoteProtocolError
            Not a Phoenix v2 frame, or a frame for another topic.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw_bytes = bytes(data)
            if raw_bytes[:1] in (b"\x00", b"\x01", b"\x02"):
                raise RemoteProtocolError(
                    "received a Phoenix binary frame; the Uh!ive server sends only text frames"
                )
            try:
                text = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError("received a frame that is not UTF-8 text") from exc
        elif isinstance(data, str):
            text = data
        else:
            raise ConfigurationError(f"receive() takes str or bytes, got {type(data).__name__}")
        try:
            message = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(f"received a frame that is not JSON: {text[:80]!r}") from exc
        if not isinstance(message, list) or len(message) != 5:
            raise RemoteProtocolError(
                f"a Phoenix v2 frame is a 5-item JSON array, got {text[:80]!r}"
            )
        join_ref = _ref(message[0], "join_ref")
        ref = _ref(message[1], "ref")
        topic, event, payload = message[2], message[3], message[4]
        if not isinstance(topic, str) or not isinstance(event, str):
            raise RemoteProtocolError(f"topic and event must be strings in {text[:80]!r}")
        if not isinstance(payload, dict):
            raise RemoteProtocolError(f"payload of {event!r:.40} must be a JSON object")

        if topic == _PHOENIX_TOPIC:
            if event == "phx_reply":
                return self._reply(join_ref, ref, topic, event, payload, channel=False)
            return UnknownEvent(join_ref, ref, topic, event, payload)
        if topic != self.topic:
            raise RemoteProtocolError(
                f"frame for topic {topic!r:.80} on the socket of {self.topic!r}: "
                "one conversation per socket"
            )
        if event == "phx_reply":
            return self._reply(join_ref, ref, topic, event, payload, channel=True)
        if event == "phx_error":
            if self._state is not ConversationState.IDLE:
                self._state = ConversationState.LEFT
            raise UhliveError(
                "Server error, channel crashed!", ref=ref, event="phx_error", raw=payload
            )
        if event == "phx_close":
            if self._state in (
                ConversationState.JOINING,
                ConversationState.JOINED,
                ConversationState.LEAVING,
            ):
                self._state = ConversationState.LEFT
            return Ok(join_ref, ref, topic, event, payload)

        cls = _EVENTS.get(event)
        if cls is None:
            if _ENTITY_NAME.match(event):
                cls = EntityRecognized if event.endswith("_recognized") else EntityFound
            elif _RELATION_NAME.match(event):
                cls = RelationRecognized
            else:
                cls = UnknownEvent
        result = cls(join_ref, ref, topic, event, payload)
        if (
            cls is SpeakerLeft
            and result.speaker == self.speaker
            and not self._readonly
            and self._state in (ConversationState.JOINED, ConversationState.LEAVING)
        ):
            self._state = ConversationState.LEFT
        return result

    def _reply(
        self,
        join_ref: Optional[str],
        ref: Optional[str],
        topic: str,
        event: str,
        payload: Dict[str, Any],
        *,
        channel: bool,
    ) -> Event:
        status = payload.get("status")
        response = payload.get("response")
        if status == "error":
            reason: Any = response.get("reason") if isinstance(response, dict) else None
            if not isinstance(reason, str) or not reason:
                reason = json.dumps(response)[:200] if response is not None else "error"
            if (
                channel
                and ref is not None
                and ref == self._join_ref
                and self._state is ConversationState.JOINING
            ):
                self._state = ConversationState.LEFT
            raise UhliveError(str(reason), ref=ref, event=event, raw=payload)
        if status != "ok":
            return UnknownEvent(join_ref, ref, topic, event, payload)
        if channel and ref is not None:
            if ref == self._join_ref and self._state is ConversationState.JOINING:
                self._state = ConversationState.JOINED
            elif (
                ref == self._leave_ref
                and self._readonly
                and self._state is ConversationState.LEAVING
            ):
                self._state = ConversationState.LEFT
        return Ok(join_ref, ref, topic, event, payload)

    def __repr__(self) -> str:
        return f"<Conversation {self.topic!r} speaker={self.speaker!r} {self._state.value}>"


#: The older name of :class:`UnknownEvent` (same class).
Unknown = UnknownEvent
