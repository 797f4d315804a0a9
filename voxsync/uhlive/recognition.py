"""Sans-I/O codec of the Uh!ive Recognition (H2B, voicebot) API.

No sockets and no threads live here: a :class:`Recognizer` builds the text
frames to send and turns the frames received into typed events, keeping the
protocol state in between. The caller owns the WebSocket (see
:mod:`voxsync.uhlive.bot` for the threaded connection built on it)::

    rec = Recognizer()
    ws.send(rec.open(custom_id="acme"))
    event = rec.receive(ws.recv())            # Opened
    ws.send(rec.recognize("builtin:speech/boolean"))
    ...

Wire format
-----------
Commands (client to server) are compact JSON text frames::

    {"command":"RECOGNIZE","request_id":3,"channel_id":"bot-1a2b",
     "headers":{"recognition_mode":"normal","content_type":"text/uri-list",
                "start_input_timers":true},"body":"builtin:speech/boolean"}

``request_id`` starts at 1 and grows by one per command; ``channel_id`` is
``""`` until the server assigned one in ``OPENED``. Events (server to client)
are JSON text frames with the keys ``event``, ``request_id``, ``channel_id``,
``headers``, ``completion_cause``, ``completion_reason`` and ``body``. Audio
is sent as raw binary frames with no header.

Session states::

    NoSession --OPENED--> IdleSession --RECOGNITION-IN-PROGRESS--> Recognition
    Recognition --RECOGNITION-COMPLETE / STOPPED--> IdleSession
    IdleSession --CLOSED--> NoSession

Sending a command the current state does not allow raises
:class:`~voxsync.errors.LocalProtocolError`; a frame that is not a valid
event raises :class:`~voxsync.errors.RemoteProtocolError`; an event name this
module does not know gives an :class:`UnknownEvent`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from voxsync.errors import (
    ConfigurationError,
    LocalProtocolError,
    RemoteProtocolError,
    ServerError,
)
from voxsync.events import Event

__all__ = [
    "AUDIO_CODECS",
    "ERROR_EVENTS",
    "RECOGNITION_MODES",
    "AsrResult",
    "Closed",
    "CompletionCause",
    "DefaultParams",
    "GrammarDefined",
    "InputTimersStarted",
    "InvalidParamValue",
    "InvalidParamValueError",
    "MethodFailed",
    "MethodFailedError",
    "MethodNotAllowed",
    "MethodNotAllowedError",
    "MethodNotValid",
    "MethodNotValidError",
    "MissingParam",
    "MissingParamError",
    "NluResult",
    "Opened",
    "ParamsSet",
    "RecognitionComplete",
    "RecognitionError",
    "RecognitionEvent",
    "RecognitionInProgress",
    "RecognitionResult",
    "Recognizer",
    "RecognizerState",
    "StartOfInput",
    "Stopped",
    "UnknownEvent",
    "error_from_event",
    "parse_event",
]

#: Audio codecs accepted by ``OPEN``: 16-bit little-endian PCM or G.711, all 8 kHz mono.
AUDIO_CODECS: tuple[str, ...] = ("linear", "g711a", "g711u")

#: Recognition modes accepted by ``RECOGNIZE``.
RECOGNITION_MODES: frozenset[str] = frozenset({"normal", "hotword"})

_JSON_SEPARATORS = (",", ":")


class RecognizerState(enum.Enum):
    """Protocol state of a :class:`Recognizer` (named as in the protocol)."""

    NO_SESSION = "NoSession"
    """No session: only ``OPEN`` may be sent."""
    IDLE_SESSION = "IdleSession"
    """Session open, no recognition running."""
    RECOGNITION = "Recognition"
    """A ``RECOGNIZE`` is running until ``RECOGNITION-COMPLETE`` or ``STOPPED``."""


class CompletionCause:
    """Values of ``completion_cause`` defined by the protocol.

    The server may add others; :attr:`RecognitionEvent.completion_cause` keeps
    whatever string it received.
    """

    GRAM_DEFINITION_FAILURE = "GramDefinitionFailure"
    GRAM_LOAD_FAILURE = "GramLoadFailure"
    ERROR = "Error"
    LANGUAGE_UNSUPPORTED = "LanguageUnsupported"
    NO_INPUT_TIMEOUT = "NoInputTimeout"
    HOTWORD_MAXTIME = "HotwordMaxtime"
    NO_MATCH = "NoMatch"
    NO_MATCH_MAXTIME = "NoMatchMaxtime"
    SUCCESS_MAXTIME = "SuccessMaxtime"
    PARTIAL_MATCH_MAXTIME = "PartialMatchMaxtime"
    SUCCESS = "Success"
    PARTIAL_MATCH = "PartialMatch"

    ALL: ClassVar[frozenset[str]] = frozenset(
        {
            "GramDefinitionFailure",
            "GramLoadFailure",
            "Error",
            "LanguageUnsupported",
            "NoInputTimeout",
            "HotwordMaxtime",
            "NoMatch",
            "NoMatchMaxtime",
            "SuccessMaxtime",
            "PartialMatchMaxtime",
            "Success",
            "PartialMatch",
        }
    )
    """Every cause listed by the protocol."""

    SUCCESSES: ClassVar[frozenset[str]] = frozenset(
        {"Success", "SuccessMaxtime", "PartialMatch", "PartialMatchMaxtime"}
    )
    """Causes that come with a (possibly partial) interpretation."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class AsrResult:
    """What the speech recogniser heard.

    Attributes
    ----------
    transcript : str
        The words, as text.
    confidence : float
        0..1.
    start, end : float or None
        Start and end of the speech, in Unix milliseconds.
    phones : str or None
        Phonetic transcription, when the server sends one.
    """

    transcript: str
    confidence: float
    start: float | None = None
    end: float | None = None
    phones: str | None = None

    def __str__(self) -> str:
        return self.transcript


@dataclass(frozen=True)
class NluResult:
    """The interpretation of the speech by the grammar.

    Attributes
    ----------
    type : str
        The grammar that produced it, e.g. ``"builtin:speech/boolean"``.
    value : object
        The interpreted value: ``True``/``False`` for ``speech/boolean``, a
        string of digits for the spelling grammars, ...
    confidence : float
        0..1.
    """

    type: str
    value: Any
    confidence: float


@dataclass(frozen=True)
class RecognitionResult:
    """One hypothesis of a recognition: the best one or an alternative.

    Attributes
    ----------
    asr : AsrResult or None
    nlu : NluResult or None
        ``None`` when the speech did not match the grammar.
    grammar_uri : str or None
        The grammar that matched, e.g. ``"session:parcel"``.
    asr_model, version : str or None
        Server details, when sent.
    """

    asr: AsrResult | None = None
    nlu: NluResult | None = None
    grammar_uri: str | None = None
    asr_model: str | None = None
    version: str | None = None


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, repr=False)
class RecognitionEvent(Event):
    """Base of every Recognition API event.

    The object also reads like the frame it was parsed from
    (``ev["completion_cause"]``, ``ev.get("body")``).

    Attributes
    ----------
    type : str
        The event name on the wire, e.g. ``"RECOGNITION-COMPLETE"``.
    request_id : int or None
        The ``request_id`` of the command this event answers.
    channel_id : str
        The session's channel id.
    headers : Mapping
        Event headers (``DEFAULT-PARAMS`` carries the parameters here).
    completion_cause : str or None
        One of :class:`CompletionCause` (or a newer value).
    completion_reason : str or None
        Human-readable explanation.
    body : object
        ``""``, ``None`` or a JSON object.
    raw : Mapping
        The whole frame, as received.
    """

    name: ClassVar[str] = "recognition_event"
    wire_name: ClassVar[str] = ""

    type: str
    request_id: int | None
    channel_id: str
    headers: Mapping[str, Any]
    completion_cause: str | None
    completion_reason: str | None
    body: Any
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        cause = f" {self.completion_cause}" if self.completion_cause else ""
        return f"<{type(self).__name__} request_id={self.request_id}{cause}>"


@dataclass(frozen=True, repr=False)
class Opened(RecognitionEvent):
    """``OPENED``: the session is open; :attr:`channel_id` is its id."""

    name: ClassVar[str] = "opened"
    wire_name: ClassVar[str] = "OPENED"


@dataclass(frozen=True, repr=False)
class ParamsSet(RecognitionEvent):
    """``PARAMS-SET``: ``SET-PARAMS`` was accepted."""

    name: ClassVar[str] = "params_set"
    wire_name: ClassVar[str] = "PARAMS-SET"


@dataclass(frozen=True, repr=False)
class DefaultParams(RecognitionEvent):
    """``DEFAULT-PARAMS``: the answer to ``GET-PARAMS``; see :attr:`params`."""

    name: ClassVar[str] = "default_params"
    wire_name: ClassVar[str] = "DEFAULT-PARAMS"

    @property
    def params(self) -> dict[str, Any]:
        """The session's parameters and their values (a copy of :attr:`headers`)."""
        return dict(self.headers)


@dataclass(frozen=True, repr=False)
class GrammarDefined(RecognitionEvent):
    """``GRAMMAR-DEFINED``: ``DEFINE-GRAMMAR`` was accepted."""

    name: ClassVar[str] = "grammar_defined"
    wire_name: ClassVar[str] = "GRAMMAR-DEFINED"


@dataclass(frozen=True, repr=False)
class RecognitionInProgress(RecognitionEvent):
    """``RECOGNITION-IN-PROGRESS``: ``RECOGNIZE`` was accepted and runs."""

    name: ClassVar[str] = "recognition_in_progress"
    wire_name: ClassVar[str] = "RECOGNITION-IN-PROGRESS"


@dataclass(frozen=True, repr=False)
class InputTimersStarted(RecognitionEvent):
    """``INPUT-TIMERS-STARTED``: the no-input timer now runs."""

    name: ClassVar[str] = "input_timers_started"
    wire_name: ClassVar[str] = "INPUT-TIMERS-STARTED"


@dataclass(frozen=True, repr=False)
class StartOfInput(RecognitionEvent):
    """``START-OF-INPUT``: speech was detected (normal mode): the barge-in point."""

    name: ClassVar[str] = "start_of_input"
    wire_name: ClassVar[str] = "START-OF-INPUT"


@dataclass(frozen=True, repr=False)
class RecognitionComplete(RecognitionEvent):
    """``RECOGNITION-COMPLETE``: the result of a recognition.

    Attributes
    ----------
    asr : AsrResult or None
        What was heard (``None`` e.g. on ``NoInputTimeout``).
    nlu : NluResult or None
        Its interpretation (``None`` when nothing matched).
    grammar_uri : str or None
    asr_model, version : str or None
    alternatives : tuple of RecognitionResult
        The other hypotheses (n-best list), best first.
    """

    name: ClassVar[str] = "recognition_complete"
    wire_name: ClassVar[str] = "RECOGNITION-COMPLETE"

    asr: AsrResult | None = None
    nlu: NluResult | None = None
    grammar_uri: str | None = None
    asr_model: str | None = None
    version: str | None = None
    alternatives: tuple[RecognitionResult, ...] = ()

    @property
    def transcript(self) -> str:
        """The words heard, or ``""``."""
        return self.asr.transcript if self.asr is not None else ""

    @property
    def value(self) -> Any:
        """The interpreted value (``nlu.value``), or ``None`` when nothing matched."""
        return self.nlu.value if self.nlu is not None else None

    @property
    def success(self) -> bool:
        """True when the completion cause comes with an interpretation."""
        return self.completion_cause in CompletionCause.SUCCESSES

    def __str__(self) -> str:
        return self.transcript

    def __repr__(self) -> str:
        cause = self.completion_cause
        return f"<RecognitionComplete {cause} {self.transcript!r} value={self.value!r}>"


@dataclass(frozen=True, repr=False)
class Stopped(RecognitionEvent):
    """``STOPPED``: ``STOP`` ended the recognition."""

    name: ClassVar[str] = "stopped"
    wire_name: ClassVar[str] = "STOPPED"


@dataclass(frozen=True, repr=False)
class Closed(RecognitionEvent):
    """``CLOSED``: the session is closed."""

    name: ClassVar[str] = "closed"
    wire_name: ClassVar[str] = "CLOSED"


@dataclass(frozen=True, repr=False)
class MethodNotValid(RecognitionEvent):
    """``METHOD-NOT-VALID``: the server does not know the command."""

    name: ClassVar[str] = "method_not_valid"
    wire_name: ClassVar[str] = "METHOD-NOT-VALID"


@dataclass(frozen=True, repr=False)
class MethodFailed(RecognitionEvent):
    """``METHOD-FAILED``: the command failed, e.g. ``GramLoadFailure``."""

    name: ClassVar[str] = "method_failed"
    wire_name: ClassVar[str] = "METHOD-FAILED"


@dataclass(frozen=True, repr=False)
class InvalidParamValue(RecognitionEvent):
    """``INVALID-PARAM-VALUE``: a parameter had a bad value."""

    name: ClassVar[str] = "invalid_param_value"
    wire_name: ClassVar[str] = "INVALID-PARAM-VALUE"


@dataclass(frozen=True, repr=False)
class MissingParam(RecognitionEvent):
    """``MISSING-PARAM``: a mandatory parameter was missing."""

    name: ClassVar[str] = "missing_param"
    wire_name: ClassVar[str] = "MISSING-PARAM"


@dataclass(frozen=True, repr=False)
class MethodNotAllowed(RecognitionEvent):
    """``METHOD-NOT-ALLOWED``: the command is not allowed in the session's state."""

    name: ClassVar[str] = "method_not_allowed"
    wire_name: ClassVar[str] = "METHOD-NOT-ALLOWED"


@dataclass(frozen=True, repr=False)
class UnknownEvent(RecognitionEvent):
    """An event name this module does not know; :attr:`type` holds it."""

    name: ClassVar[str] = "message"
    wire_name: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"<UnknownEvent {self.type!r} request_id={self.request_id}>"


_EVENT_CLASSES: dict[str, type[RecognitionEvent]] = {
    cls.wire_name: cls
    for cls in (
        Opened,
        ParamsSet,
        DefaultParams,
        GrammarDefined,
        RecognitionInProgress,
        InputTimersStarted,
        StartOfInput,
        RecognitionComplete,
        Stopped,
        Closed,
        MethodNotValid,
        MethodFailed,
        InvalidParamValue,
        MissingParam,
        MethodNotAllowed,
    )
}

#: Events by which the server refuses a command.
ERROR_EVENTS: tuple[type[RecognitionEvent], ...] = (
    MethodNotValid,
    MethodFailed,
    InvalidParamValue,
    MissingParam,
    MethodNotAllowed,
)


# --------------------------------------------------------------------------- errors


class RecognitionError(ServerError):
    """The server refused a command of the Recognition API.

    Attributes
    ----------
    event : RecognitionEvent
        The refusal as received.
    code : str
        The ``completion_cause`` (e.g. ``"GramLoadFailure"``) or, without
        one, the event name (``"METHOD-NOT-ALLOWED"``).
    detail : str
        The server's ``completion_reason``.
    """

    def __init__(self, event: RecognitionEvent) -> None:
        code = event.completion_cause or event.type
        detail = event.completion_reason or event.type.lower().replace("-", " ")
        super().__init__(detail, code=code, raw=event.raw)
        self.event = event


class MethodNotValidError(RecognitionError):
    """``METHOD-NOT-VALID``: the server does not know or accept this command."""


class MethodFailedError(RecognitionError):
    """``METHOD-FAILED``: e.g. an unknown grammar (``code == "GramLoadFailure"``)."""


class InvalidParamValueError(RecognitionError, ValueError):
    """``INVALID-PARAM-VALUE``: fix the parameter named in :attr:`detail`."""


class MissingParamError(RecognitionError, ValueError):
    """``MISSING-PARAM``: add the parameter named in :attr:`detail`."""


class MethodNotAllowedError(RecognitionError):
    """``METHOD-NOT-ALLOWED``: the command is not allowed in the session's state."""


_ERROR_CLASSES: dict[type[RecognitionEvent], type[RecognitionError]] = {
    MethodNotValid: MethodNotValidError,
    MethodFailed: MethodFailedError,
    InvalidParamValue: InvalidParamValueError,
    MissingParam: MissingParamError,
    MethodNotAllowed: MethodNotAllowedError,
}


def error_from_event(event: RecognitionEvent) -> RecognitionError | None:
    """Return the typed exception for a refusal event, or ``None`` for other events.

    Examples
    --------
    >>> err = error_from_event(event)
    >>> if err is not None:
    ...     raise err
    """
    cls = _ERROR_CLASSES.get(type(event))
    return cls(event) if cls is not None else None


# --------------------------------------------------------------------------- parsing


def _fail(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"malformed Recognition API event: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{where}.{key} must be a string or null, got {type(value).__name__}")
    return value


def _opt_number(obj: Mapping[str, Any], key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is not None and not _is_number(value):
        raise _fail(f"{where}.{key} must be a number or null, got {type(value).__name__}")
    return value


def _confidence(obj: Mapping[str, Any], where: str) -> float:
    value = obj.get("confidence", 0.0)
    if value is None:
        return 0.0
    if not _is_number(value):
        raise _fail(f"{where}.confidence must be a number, got {type(value).__name__}")
    return float(value)


def _parse_asr(value: Any, where: str) -> AsrResult | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(f"{where} must be an object or null, got {type(value).__name__}")
    transcript = value.get("transcript", "")
    if not isinstance(transcript, str):
        raise _fail(f"{where}.transcript must be a string, got {type(transcript).__name__}")
    return AsrResult(
        transcript=transcript,
        confidence=_confidence(value, where),
        start=_opt_number(value, "start", where),
        end=_opt_number(value, "end", where),
        phones=_opt_str(value, "phones", where),
    )


def _parse_nlu(value: Any, where: str) -> NluResult | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(f"{where} must be an object or null, got {type(value).__name__}")
    kind = value.get("type", "")
    if not isinstance(kind, str):
        raise _fail(f"{where}.type must be a string, got {type(kind).__name__}")
    return NluResult(type=kind, value=value.get("value"), confidence=_confidence(value, where))


def _parse_result(body: Mapping[str, Any], where: str) -> RecognitionResult:
    return RecognitionResult(
        asr=_parse_asr(body.get("asr"), f"{where}.asr"),
        nlu=_parse_nlu(body.get("nlu"), f"{where}.nlu"),
        grammar_uri=_opt_str(body, "grammar_uri", where),
        asr_model=_opt_str(body, "asr_model", where),
        version=_opt_str(body, "version", where),
    )


def _loads(data: str | bytes | bytearray | memoryview) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail("binary frame that is not UTF-8 text") from exc
    if not isinstance(data, str):
        raise ConfigurationError(f"receive() takes str or bytes, got {type(data).__name__}")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _fail(f"not JSON ({exc.__class__.__name__})") from exc


def parse_event(data: str | bytes | bytearray | memoryview) -> RecognitionEvent:
    """Parse one event frame without touching any :class:`Recognizer` state.

    Parameters
    ----------
    data : str or bytes
        The frame as received (bytes are decoded as UTF-8).

    Returns
    -------
    RecognitionEvent
        An instance of the class named after the event, or
        :class:`UnknownEvent` for an event name this module does not know.

    Raises
    ------
    RemoteProtocolError
        The frame is not a JSON object with a string ``event``, an integer
        ``request_id``, a string ``channel_id`` and well-typed other keys.
    """
    frame = _loads(data)
    if not isinstance(frame, dict):
        raise _fail(f"expected a JSON object, got {type(frame).__name__}")
    name = frame.get("event")
    if not isinstance(name, str):
        raise _fail("missing or non-string 'event'")
    request_id = frame.get("request_id")
    if request_id is not None and (not isinstance(request_id, int) or isinstance(request_id, bool)):
        raise _fail(f"'request_id' must be an integer, got {type(request_id).__name__}")
    channel_id = frame.get("channel_id", "")
    if channel_id is None:
        channel_id = ""
    if not isinstance(channel_id, str):
        raise _fail(f"'channel_id' must be a string, got {type(channel_id).__name__}")
    headers = frame.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise _fail(f"'headers' must be an object, got {type(headers).__name__}")
    cause = _opt_str(frame, "completion_cause", "event")
    reason = _opt_str(frame, "completion_reason", "event")
    body = frame.get("body")
    if body is not None and not isinstance(body, (str, dict)):
        raise _fail(f"'body' must be a string, an object or null, got {type(body).__name__}")
    cls = _EVENT_CLASSES.get(name, UnknownEvent)
    common: dict[str, Any] = {
        "type": name,
        "request_id": request_id,
        "channel_id": channel_id,
        "headers": headers,
        "completion_cause": cause,
        "completion_reason": reason,
        "body": body,
        "raw": frame,
    }
    if cls is RecognitionComplete and isinstance(body, dict):
        best = _parse_result(body, "body")
        alternatives = body.get("alternatives")
        if alternatives is None:
            alternatives = []
        if not isinstance(alternatives, list):
            raise _fail("body.alternatives must be a list")
        alts = []
        for i, alt in enumerate(alternatives):
            if not isinstance(alt, dict):
                raise _fail(f"body.alternatives[{i}] must be an object")
            alts.append(_parse_result(alt, f"body.alternatives[{i}]"))
        return RecognitionComplete(
            **common,
            asr=best.asr,
            nlu=best.nlu,
            grammar_uri=best.grammar_uri,
            asr_model=best.asr_model,
            version=best.version,
            alternatives=tuple(alts),
        )
    return cls(**common)


# --------------------------------------------------------------------------- codec


def _dumps(obj: Mapping[str, Any]) -> str:
    try:
        return json.dumps(obj, separators=_JSON_SEPARATORS, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"command parameters must be JSON values (str, int, float, bool, None, lists "
            f"and dicts of them): {exc}"
        ) from exc


class Recognizer:
    """Protocol state of one Recognition API session (sans-I/O).

    Command methods return the text frame to send and raise
    :class:`~voxsync.errors.LocalProtocolError` when the session's state does
    not allow the command; :meth:`receive` parses an event frame and updates
    the state. Not thread-safe: serialise calls when several threads share one.

    Parameters
    ----------
    first_request_id : int
        ``request_id`` of the first command (default 1); every command takes
        the next integer.

    Examples
    --------
    >>> rec = Recognizer()
    >>> rec.open(custom_id="acme")
    '{"command":"OPEN","request_id":1,"channel_id":"","headers":{"custom_id":"acme","audio_codec":"linear","session_id":""},"body":""}'
    """

    def __init__(self, *, first_request_id: int = 1) -> None:
        if not isinstance(first_request_id, int) or isinstance(first_request_id, bool):
            raise ConfigurationError(f"first_request_id must be an int, got {first_request_id!r}")
        self._next_id = first_request_id
        self._last_id: int | None = None
        self._state = RecognizerState.NO_SESSION
        self._channel_id = ""
        self._opening = False
        self._close_id: int | None = None

    # -- read-only views (reading never changes anything)

    @property
    def state(self) -> RecognizerState:
        """Current :class:`RecognizerState`."""
        return self._state

    @property
    def channel_id(self) -> str:
        """The channel id assigned by the server (``""`` before ``OPENED``)."""
        return self._channel_id

    @property
    def last_request_id(self) -> int | None:
        """``request_id`` of the last command built, or ``None`` before the first."""
        return self._last_id

    @property
    def opening(self) -> bool:
        """True between :meth:`open` and the server's answer."""
        return self._opening

    @property
    def closing(self) -> bool:
        """True between :meth:`close` and the server's answer."""
        return self._close_id is not None

    def __repr__(self) -> str:
        return f"<Recognizer {self._state.value} channel_id={self._channel_id!r}>"

    # -- commands

    def _command(
        self,
        command: str,
        headers: Mapping[str, Any],
        body: str = "",
        channel_id: str | None = None,
    ) -> str:
        frame = {
            "command": command,
            "request_id": self._next_id,
            "channel_id": self._channel_id if channel_id is None else channel_id,
            "headers": dict(headers),
            "body": body,
        }
        text = _dumps(frame)  # may raise before the counter moves
        self._last_id = self._next_id
        self._next_id += 1
        return text

    def _require(self, command: str, *states: RecognizerState) -> None:
        if self._close_id is not None:
            raise LocalProtocolError(
                f"cannot send {command}: CLOSE was sent; wait for CLOSED and open a new session"
            )
        if self._state not in states:
            allowed = " or ".join(s.value for s in states)
            hint = {
                RecognizerState.NO_SESSION: "send OPEN and wait for OPENED first",
                RecognizerState.IDLE_SESSION: "start a recognition with RECOGNIZE first",
                RecognizerState.RECOGNITION: ("wait for RECOGNITION-COMPLETE or send STOP first"),
            }[self._state]
            if command == "OPEN":
                hint = "one session at a time: send CLOSE and wait for CLOSED first"
            raise LocalProtocolError(
                f"cannot send {command} in state {self._state.value} (allowed in {allowed}); {hint}"
            )

    def open(
        self,
        custom_id: str = "",
        channel_id: str = "",
        audio_codec: str = "linear",
        session_id: str = "",
    ) -> str:
        """Build ``OPEN``: start a session.

        Parameters
        ----------
        custom_id : str
            Your own identifier for the session (shows up in the server's logs).
        channel_id : str
            Optional prefix of the channel id the server generates.
        audio_codec : str
            ``"linear"`` (8 kHz 16-bit little-endian PCM), ``"g711a"`` or ``"g711u"``.
        session_id : str
            Optional session identifier.
        """
        if self._opening:
            raise LocalProtocolError("cannot send OPEN: OPEN was already sent; wait for OPENED")
        self._require("OPEN", RecognizerState.NO_SESSION)
        if audio_codec not in AUDIO_CODECS:
            raise ConfigurationError(
                f"audio_codec must be one of {', '.join(AUDIO_CODECS)}, got {audio_codec!r}"
            )
        for label, value in (
            ("custom_id", custom_id),
            ("channel_id", channel_id),
            ("session_id", session_id),
        ):
            if not isinstance(value, str):
                raise ConfigurationError(f"{label} must be a str, got {type(value).__name__}")
        headers = {"custom_id": custom_id, "audio_codec": audio_codec, "session_id": session_id}
        text = self._command("OPEN", headers, channel_id=channel_id)
        self._opening = True
        return text

    def set_params(self, **params: Any) -> str:
        """Build ``SET-PARAMS``: ``set_params(speech_language="en", no_input_timeout=5000)``."""
        self._require("SET-PARAMS", RecognizerState.IDLE_SESSION)
        return self._command("SET-PARAMS", params)

    def get_params(self) -> str:
        """Build ``GET-PARAMS`` (answered by ``DEFAULT-PARAMS``)."""
        self._require("GET-PARAMS", RecognizerState.IDLE_SESSION)
        return self._command("GET-PARAMS", {})

    def define_grammar(self, alias: str, uri: str) -> str:
        """Build ``DEFINE-GRAMMAR``: name a builtin grammar for use as ``session:<alias>``.

        Parameters
        ----------
        alias : str
            The name to use in :meth:`recognize` as ``"session:<alias>"``.
        uri : str
            A builtin grammar with its query, e.g.
            ``"builtin:speech/spelling/mixed?regex=[a-z]{2}[0-9]{9}[a-z]{2}"``
            (the ``builtin:`` prefix may be left out).
        """
        self._require("DEFINE-GRAMMAR", RecognizerState.IDLE_SESSION)
        if not isinstance(alias, str) or not alias or any(c.isspace() for c in alias):
            raise ConfigurationError(f"alias must be a non-empty str without spaces, got {alias!r}")
        if not isinstance(uri, str) or not uri or "\n" in uri:
            raise ConfigurationError(f"uri must be a non-empty one-line str, got {uri!r}")
        if not uri.startswith("builtin:"):
            uri = "builtin:" + uri
        headers = {"content_id": alias, "content_type": "text/uri-list"}
        return self._command("DEFINE-GRAMMAR", headers, uri)

    def recognize(
        self,
        *grammars: str,
        start_input_timers: bool = True,
        recognition_mode: str = "normal",
        **params: Any,
    ) -> str:
        """Build ``RECOGNIZE``: listen for speech matching one of ``grammars``.

        Parameters
        ----------
        *grammars : str
            ``"builtin:speech/boolean"``, ``"session:<alias>"``, ...
        start_input_timers : bool
            Start the no-input timer now (True) or later with
            :meth:`start_input_timers`, e.g. once a prompt has been played.
        recognition_mode : str
            ``"normal"`` (a single utterance, with ``START-OF-INPUT``) or
            ``"hotword"`` (wait until the grammar matches).
        **params
            Parameters for this recognition only, e.g. ``no_input_timeout=5000``.
        """
        self._require("RECOGNIZE", RecognizerState.IDLE_SESSION)
        if not grammars:
            raise ConfigurationError(
                "recognize() needs at least one grammar, e.g. 'builtin:speech/boolean'"
            )
        for g in grammars:
            if not isinstance(g, str) or "\n" in g or not g.startswith(("builtin:", "session:")):
                raise ConfigurationError(
                    f"grammar must be a one-line 'builtin:...' or 'session:<alias>' str, got {g!r}"
                )
        if recognition_mode not in RECOGNITION_MODES:
            raise ConfigurationError(
                f"recognition_mode must be 'normal' or 'hotword', got {recognition_mode!r}"
            )
        if not isinstance(start_input_timers, bool):
            raise ConfigurationError("start_input_timers must be a bool")
        headers: dict[str, Any] = {
            "recognition_mode": recognition_mode,
            "content_type": "text/uri-list",
            "start_input_timers": start_input_timers,
        }
        headers.update(params)
        return self._command("RECOGNIZE", headers, "\n".join(grammars))

    def start_input_timers(self) -> str:
        """Build ``START-INPUT-TIMERS`` (during a recognition)."""
        self._require("START-INPUT-TIMERS", RecognizerState.RECOGNITION)
        return self._command("START-INPUT-TIMERS", {})

    def stop(self) -> str:
        """Build ``STOP``: end the running recognition."""
        self._require("STOP", RecognizerState.RECOGNITION)
        return self._command("STOP", {})

    def close(self) -> str:
        """Build ``CLOSE``: end the session (the socket may be closed after ``CLOSED``)."""
        self._require("CLOSE", RecognizerState.IDLE_SESSION)
        text = self._command("CLOSE", {})
        self._close_id = self._last_id
        return text

    def send_audio_chunk(self, chunk: bytes | bytearray | memoryview) -> bytes:
        """Return the binary frame for ``chunk`` (the audio itself: no header).

        Raises
        ------
        LocalProtocolError
            When no session is open or being opened.
        """
        if self._state is RecognizerState.NO_SESSION and not self._opening:
            raise LocalProtocolError("cannot send audio without a session; send OPEN first")
        return bytes(chunk)

    # -- events

    def receive(self, data: str | bytes | bytearray | memoryview) -> RecognitionEvent:
        """Parse one event frame and apply its effect on the state.

        Returns
        -------
        RecognitionEvent
            See :func:`parse_event`.

        Raises
        ------
        RemoteProtocolError
            For a malformed frame (the state is left unchanged).
        """
        event = parse_event(data)
        self._apply(event)
        return event

    def _apply(self, event: RecognitionEvent) -> None:
        if isinstance(event, Opened):
            self._state = RecognizerState.IDLE_SESSION
            self._channel_id = event.channel_id
            self._opening = False
        elif isinstance(event, RecognitionInProgress):
            if self._state is RecognizerState.IDLE_SESSION:
                self._state = RecognizerState.RECOGNITION
        elif isinstance(event, (RecognitionComplete, Stopped)):
            if self._state is RecognizerState.RECOGNITION:
                self._state = RecognizerState.IDLE_SESSION
        elif isinstance(event, Closed):
            self._state = RecognizerState.NO_SESSION
            self._opening = False
            self._close_id = None
        elif isinstance(event, ERROR_EVENTS):
            if self._state is RecognizerState.NO_SESSION:
                self._opening = False  # OPEN refused
            elif self._close_id is not None and event.request_id == self._close_id:
                self._close_id = None  # CLOSE refused
