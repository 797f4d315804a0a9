"""Sans-I/O codec of Palabra's realtime speech-to-text and text-to-speech sockets.

No sockets and no threads live here: functions build the URLs and text
frames to send and turn the frames received into typed events. The threaded
connections (:mod:`voxsync.palabra.stt`, :mod:`voxsync.palabra.tts`) and the
emulator put them on a WebSocket.

Speech-to-text (ASR) socket
---------------------------
Every setting travels in the query string of the upgrade request, nothing
is sent as a message::

    wss://<host>/asr/v1/speech-to-text/stream?token=<t>&format=pcm_s16le
        &language=en&translate_languages=es,de

``sample_rate`` is required for raw PCM formats, except ``pcm_s16le`` at the
server's default of 16000 Hz. Audio goes up as raw binary frames. Results
come down as flat JSON text frames::

    {"message_type": "transcription", "transcription_id": "7f3a",
     "language": "en", "is_eos": false,
     "segment": {"text": "hello wor", "start_time": 0.4, "end_time": 1.1}}

``transcription`` with ``is_eos: false`` is a partial (render
``segment.text`` whole: its tail may be rewritten), with ``is_eos: true`` a
final; ``translated_transcription`` carries one target language's text of a
final. Errors are enveloped: ``{"message_type": "error", "data": {"code",
"desc"}}``.

Text-to-speech (TTS) socket
---------------------------
Flat JSON text frames with a ``type``, in both directions of the client's
side::

    {"type": "init", "language": "en", "model": "auto",
     "voice_options": {"voice_id": "default_low"},
     "output": {"format": "pcm", "sample_rate": 24000}}
    {"type": "text", "text": "Hello there.", "is_eos": true, "generation_id": "g1"}
    {"type": "cancel"}

and enveloped frames from the server::

    {"message_type": "audio_chunk", "data": {"audio": "<base64>", "size": 9600,
     "generation_id": "g1", "last_chunk": false, "chunk_generation_delta": 12,
     "audio_len": 0.2}}
    {"message_type": "error", "data": {"code": "RATE_LIMIT_EXCEEDED", "desc": "..."}}

Every generation ends with a ``last_chunk: true`` chunk (whose audio may be
empty). A ``text`` message holds at most :data:`TEXT_LIMIT` characters.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union
from urllib.parse import quote, urlsplit, urlunsplit

from voxsync.audio.format import AudioFormat
from voxsync.errors import ConfigurationError, RemoteProtocolError
from voxsync.events import AudioChunk
from voxsync.palabra.events import Raw, ServerError, Transcript

__all__ = [
    "ASR_DEFAULT_SAMPLE_RATE",
    "ASR_FORMATS",
    "ASR_PATH",
    "RETRYABLE_CODES",
    "TEXT_LIMIT",
    "TTS_FORMATS",
    "TTS_PATH",
    "TTS_SAMPLE_RATES",
    "AsrSettings",
    "TtsChunk",
    "TtsDecoder",
    "TtsSettings",
    "asr_url",
    "build_cancel",
    "build_init",
    "build_text",
    "check_language",
    "parse_asr_message",
    "parse_error",
    "tts_url",
]

#: Path of the speech-to-text socket, on the REST API's host.
ASR_PATH = "/asr/v1/speech-to-text/stream"
#: Path of the text-to-speech socket (2.x and SDK 1.0.2; 1.0.0 uses the session's ``ws_tts_url``).
TTS_PATH = "/tts-api/v1/text-to-speech/stream"

#: Audio formats the speech-to-text socket accepts (``format`` query parameter).
ASR_FORMATS: Tuple[str, ...] = (
    "pcm_s16le",
    "pcm_f32le",
    "pcm_f32be",
    "pcm_s32le",
    "pcm_s32be",
    "mulaw",
    "alaw",
    "webm",
    "mp3",
    "aac",
    "ogg",
    "flac",
    "wav",
)
#: Formats without a container: the server needs their ``sample_rate``.
_RAW_FORMATS = frozenset(ASR_FORMATS[:7])
#: The rate the ASR server assumes for ``pcm_s16le`` without ``sample_rate``.
ASR_DEFAULT_SAMPLE_RATE = 16000

#: Output formats of the text-to-speech socket (``output.format``).
TTS_FORMATS: Tuple[str, ...] = ("pcm", "wav", "mp3")
#: Lowest and highest ``output.sample_rate`` of the text-to-speech socket.
TTS_SAMPLE_RATES: Tuple[int, int] = (8000, 48000)
#: Characters per ``text`` message (1.x servers; 2.x servers allow 1024).
TEXT_LIMIT = 256

#: Error codes after which the same request may succeed later.
RETRYABLE_CODES = frozenset({"SERVICE_UNAVAILABLE", "RATE_LIMIT_EXCEEDED"})

_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$", re.IGNORECASE)


def check_language(value: object, what: str = "language", *, allow_auto: bool = False) -> str:
    """Return ``value`` if it looks like a language code (``en``, ``en-us``).

    Raises
    ------
    ConfigurationError
        ``value`` is not a string of that shape (``"auto"`` is accepted when
        ``allow_auto``).
    """
    if isinstance(value, str) and (_LANGUAGE.match(value) or (allow_auto and value == "auto")):
        return value
    auto = ' or "auto"' if allow_auto else ""
    raise ConfigurationError(
        f"{what} must be a language code such as 'en' or 'en-us'{auto}, got {value!r}"
    )


def _ws_base(api_url: str) -> Tuple[str, str]:
    """(scheme, netloc) of the WebSocket host behind ``api_url`` (http -> ws)."""
    parts = urlsplit(api_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ConfigurationError(
            f"api_url must be an http(s):// or ws(s):// URL with a host, got {api_url!r}"
        )
    return scheme, parts.netloc


# --------------------------------------------------------------------------- ASR
@dataclass(frozen=True)
class AsrSettings:
    """Settings of one speech-to-text stream (the socket's query parameters).

    Parameters
    ----------
    language : str
        Source language code, or ``"auto"`` (the server's default) to detect it.
    translate_languages : tuple of str
        Target language codes; each final transcript is followed by one
        translation per target.
    format : str
        Audio format of the binary frames, one of :data:`ASR_FORMATS`.
    sample_rate : int or None
        Rate of raw formats. ``None`` for ``pcm_s16le`` means 16000 Hz (the
        parameter is then left out, as the server assumes it); container
        formats (``wav``, ``mp3``, ...) carry their own rate.
    enable_filler_filter : bool or None
        Drop filler words ("um", "uh"); ``None`` keeps the server's default
        (on for every language except Japanese).

    Raises
    ------
    ConfigurationError
        For an unknown format, a missing or out-of-range sample rate, or a
        malformed language code.
    """

    language: str = "auto"
    translate_languages: Tuple[str, ...] = ()
    format: str = "pcm_s16le"
    sample_rate: Optional[int] = None
    enable_filler_filter: Optional[bool] = None

    def __post_init__(self) -> None:
        check_language(self.language, "language", allow_auto=True)
        if isinstance(self.translate_languages, str):
            object.__setattr__(self, "translate_languages", (self.translate_languages,))
        else:
            object.__setattr__(self, "translate_languages", tuple(self.translate_languages))
        for target in self.translate_languages:
            check_language(target, "each of translate_languages")
        if self.format not in ASR_FORMATS:
            raise ConfigurationError(
                f"format must be one of {', '.join(ASR_FORMATS)}, got {self.format!r}"
            )
        rate = self.sample_rate
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 48000
        ):
            raise ConfigurationError(
                f"sample_rate must be an int from 8000 to 48000 Hz, got {rate!r}"
            )
        if rate is None and self.format in _RAW_FORMATS and self.format != "pcm_s16le":
            raise ConfigurationError(
                f"format {self.format!r} is raw audio: give its sample_rate "
                "(only pcm_s16le defaults to 16000 Hz)"
            )
        if rate is not None and self.format not in _RAW_FORMATS:
            raise ConfigurationError(
                f"format {self.format!r} carries its own sample rate: leave sample_rate out"
            )
        if self.enable_filler_filter is not None and not isinstance(
            self.enable_filler_filter, bool
        ):
            raise ConfigurationError(
                f"enable_filler_filter must be True, False or None, "
                f"got {self.enable_filler_filter!r}"
            )

    @property
    def effective_sample_rate(self) -> Optional[int]:
        """The rate the server will assume (16000 for ``pcm_s16le`` without one)."""
        if self.sample_rate is None and self.format == "pcm_s16le":
            return ASR_DEFAULT_SAMPLE_RATE
        return self.sample_rate

    def query(self, token: str) -> str:
        """The URL-encoded query string, token first.

        The token and values are percent-encoded; the commas between
        ``translate_languages`` stay literal, as the service expects.
        """
        params: List[Tuple[str, str]] = [("token", token), ("format", self.format)]
        rate = self.sample_rate
        if rate is not None and not (self.format == "pcm_s16le" and rate == 16000):
            params.append(("sample_rate", str(rate)))
        params.append(("language", self.language))
        if self.translate_languages:
            params.append(("translate_languages", ",".join(self.translate_languages)))
        if self.enable_filler_filter is not None:
            params.append(
                ("enable_filler_filter", "true" if self.enable_filler_filter else "false")
            )
        return "&".join(f"{k}={quote(v, safe=',')}" for k, v in params)


def asr_url(api_url: str, settings: AsrSettings, token: str) -> str:
    """The speech-to-text socket URL on ``api_url``'s host, with the query.

    ``https://api.palabra.ai`` gives
    ``wss://api.palabra.ai/asr/v1/speech-to-text/stream?token=...``; a
    ``ws(s)://`` URL with a path other than ``/`` is used as the socket
    URL itself.

    Examples
    --------
    >>> asr_url("http://127.0.0.1:8080", AsrSettings(language="en"), "t")
    'ws://127.0.0.1:8080/asr/v1/speech-to-text/stream?token=t&format=pcm_s16le&language=en'
    """
    scheme, netloc = _ws_base(api_url)
    path = urlsplit(api_url).path
    if not (api_url.lower().startswith("ws") and path not in ("", "/")):
        path = ASR_PATH
    return urlunsplit((scheme, netloc, path, settings.query(token), ""))


def _loads(frame: Union[str, bytes], service: str) -> Dict[str, Any]:
    if isinstance(frame, (bytes, bytearray)):
        try:
            frame = bytes(frame).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"{service} sent a binary frame that is not JSON") from exc
    try:
        message = json.loads(frame)
    except ValueError as exc:
        raise RemoteProtocolError(
            f"{service} sent a frame that is not JSON: {frame[:80]!r}"
        ) from exc
    if not isinstance(message, dict):
        raise RemoteProtocolError(
            f"{service} sent JSON that is not an object: {type(message).__name__}"
        )
    return message


def _envelope_data(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``data`` of an enveloped frame (a JSON string is decoded), else the frame."""
    data = message.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return message
    return data if isinstance(data, Mapping) else message


def parse_error(data: Mapping[str, Any]) -> ServerError:
    """A :class:`~voxsync.palabra.ServerError` from an ``error`` frame's data.

    The text may be under ``desc``, ``description``, ``message`` or
    ``msg``; a missing code reads as ``UNKNOWN_ERROR``.
    """
    code = data.get("code")
    code = str(code) if code not in (None, "") else "UNKNOWN_ERROR"
    detail = next(
        (
            str(data[k])
            for k in ("desc", "description", "message", "msg")
            if data.get(k) not in (None, "")
        ),
        "the service reported an error without a description",
    )
    error = ServerError(code, detail, raw=dict(data))
    error.retryable = code in RETRYABLE_CODES
    return error


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


AsrEvent = Union[Transcript, ServerError, Raw]


def parse_asr_message(
    frame: Union[str, bytes], *, source_language: Optional[str] = None
) -> AsrEvent:
    """Turn one frame of the speech-to-text socket into an event.

    Parameters
    ----------
    frame : str or bytes
        A text frame as received.
    source_language : str, optional
        The stream's language, recorded as ``Translation.source_language``
        (when it is ``"auto"`` the detected language of the last final
        should be passed instead).

    Returns
    -------
    Transcript
        :class:`~voxsync.palabra.Transcript`: ``transcription`` frames
        (``is_final``/``is_eos`` from ``is_eos``), emitted as
        ``transcript``; ``translated_transcription`` frames with
        ``is_translation`` True (``language`` is the target), emitted as
        ``translation``. ``text`` is the whole segment so far.
    ServerError
        ``error`` frames, enveloped (``data.code`` / ``data.desc``) or flat.
    Raw
        Anything else, never dropped (``Raw.type`` is its ``message_type``).

    Raises
    ------
    RemoteProtocolError
        The frame is not a JSON object, or a transcription frame has no
        ``segment.text``.
    """
    message = _loads(frame, "the Palabra STT server")
    kind = message.get("message_type")
    if kind in ("transcription", "translated_transcription"):
        segment = message.get("segment")
        if not isinstance(segment, Mapping) or not isinstance(segment.get("text"), str):
            raise RemoteProtocolError(
                f"the Palabra STT server sent a {kind} frame without segment.text"
            )
        ident = message.get("transcription_id")
        ident = None if ident is None else str(ident)
        language = message.get("language")
        language = language if isinstance(language, str) else None
        start, end = _number(segment.get("start_time")), _number(segment.get("end_time"))
        if kind == "transcription":
            return Transcript(
                text=segment["text"],
                is_final=bool(message.get("is_eos", False)),
                language=language,
                start=start,
                end=end,
                id=ident,
                raw=message,
            )
        return Transcript(
            text=segment["text"],
            is_final=bool(message.get("is_eos", True)),
            language=language,
            start=start,
            end=end,
            id=ident,
            raw=message,
            is_translation=True,
            source_language=source_language,
        )
    if kind == "error":
        return parse_error(_envelope_data(message))
    return Raw(type=str(kind) if kind is not None else "unknown", raw=message)


# --------------------------------------------------------------------------- TTS
@dataclass(frozen=True)
class TtsSettings:
    """What the ``init`` message of a text-to-speech stream asks for.

    Parameters
    ----------
    language : str
        ``en``, ``en-us``, ``en-gb``, ``de``, ``es``, ``fr``, ...
    voice_id : str
        ``default_low``, ``default_high`` or a custom voice's id.
    model : str
        Synthesis model; ``auto`` lets the service choose.
    speed, deaccent_strength : float or None
        Voice options; ``None`` leaves them to the service.
    output_format : {"pcm", "wav", "mp3"}
        ``pcm`` is 16-bit little-endian mono samples. Note that the
        service's own default is mp3; voxsync asks for ``pcm`` unless told
        otherwise.
    sample_rate : int
        8000 to 48000 Hz.

    Raises
    ------
    ConfigurationError
        For a malformed language, an empty voice, an unknown format or an
        out-of-range rate.
    """

    language: str = "en"
    voice_id: str = "default_low"
    model: str = "auto"
    speed: Optional[float] = None
    deaccent_strength: Optional[float] = None
    output_format: str = "pcm"
    sample_rate: int = 24000

    def __post_init__(self) -> None:
        check_language(self.language)
        if not isinstance(self.voice_id, str) or not self.voice_id:
            raise ConfigurationError(f"voice_id must be a non-empty string, got {self.voice_id!r}")
        if not isinstance(self.model, str) or not self.model:
            raise ConfigurationError(f"model must be a non-empty string, got {self.model!r}")
        if self.output_format not in TTS_FORMATS:
            raise ConfigurationError(
                f"output_format must be one of {', '.join(TTS_FORMATS)}, got {self.output_format!r}"
            )
        low, high = TTS_SAMPLE_RATES
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or not low <= rate <= high:
            raise ConfigurationError(
                f"sample_rate must be an int from {low} to {high} Hz, got {rate!r}"
            )
        for name in ("speed", "deaccent_strength"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise ConfigurationError(f"{name} must be a number or None, got {value!r}")

    @property
    def audio_format(self) -> AudioFormat:
        """The samples' format: mono 16-bit PCM at :attr:`sample_rate`."""
        return AudioFormat(self.sample_rate, 1, "pcm_s16le")

    def voice_options(self) -> Dict[str, Any]:
        """The ``voice_options`` object of ``init``."""
        options: Dict[str, Any] = {"voice_id": self.voice_id}
        if self.speed is not None:
            options["speed"] = self.speed
        if self.deaccent_strength is not None:
            options["deaccent_strength"] = self.deaccent_strength
        return options


def tts_url(api_url: str, token: str) -> str:
    """The text-to-speech socket URL: ``api_url``'s host with :data:`TTS_PATH`.

    A ``ws(s)://`` URL with a path (such as a session's ``ws_tts_url``) is
    kept as is. The token is appended verbatim, as the service's own
    clients do.
    """
    scheme, netloc = _ws_base(api_url)
    parts = urlsplit(api_url)
    if api_url.lower().startswith("ws") and parts.path not in ("", "/"):
        url = api_url
    else:
        url = urlunsplit((scheme, netloc, TTS_PATH, "", ""))
    return f"{url}?token={token}"


def _dumps(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def build_init(settings: TtsSettings) -> str:
    """The ``init`` frame (sent once, right after connecting; the server does not reply)."""
    return _dumps(
        {
            "type": "init",
            "language": settings.language,
            "model": settings.model,
            "voice_options": settings.voice_options(),
            "output": {"format": settings.output_format, "sample_rate": settings.sample_rate},
        }
    )


_VOICE_OVERRIDES = frozenset({"voice_id", "speed", "deaccent_strength"})


def build_text(
    text: str,
    *,
    eos: bool = False,
    generation_id: Optional[str] = None,
    voice_options: Optional[Mapping[str, Any]] = None,
    reset_context: Optional[bool] = None,
    limit: int = TEXT_LIMIT,
) -> str:
    """A ``text`` frame.

    Parameters
    ----------
    text : str
        At most ``limit`` characters.
    eos : bool
        True on the last piece of a sentence: synthesis of the sentence
        may start.
    generation_id : str, optional
        Echoed by the server in the audio chunks of this text.
    voice_options : mapping, optional
        Per-message overrides (``voice_id``, ``speed``,
        ``deaccent_strength``); they apply to this and later messages.
    reset_context : bool, optional
        Forget the text context of earlier messages (2.x servers).
    limit : int
        The server's limit per message (256 on 1.x servers, 1024 on 2.x).

    Raises
    ------
    ValueError
        (:class:`~voxsync.errors.ConfigurationError`) ``text`` is not a
        string, is longer than ``limit`` or a voice option is unknown.
    """
    if not isinstance(text, str):
        raise ConfigurationError(f"text must be a str, got {type(text).__name__}")
    if len(text) > limit:
        raise ConfigurationError(
            f"text is {len(text)} characters; one message holds at most {limit}: "
            "split it, or use speak_stream() which splits at sentence boundaries"
        )
    message: Dict[str, Any] = {"type": "text", "text": text, "is_eos": bool(eos)}
    if generation_id is not None:
        message["generation_id"] = str(generation_id)
    if voice_options:
        unknown = set(voice_options) - _VOICE_OVERRIDES
        if unknown:
            raise ConfigurationError(
                f"unknown voice option(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join(sorted(_VOICE_OVERRIDES))}"
            )
        message["voice_options"] = dict(voice_options)
    if reset_context is not None:
        message["reset_context"] = bool(reset_context)
    return _dumps(message)


def build_cancel() -> str:
    """The ``cancel`` frame: stop the current synthesis; the socket stays usable."""
    return _dumps({"type": "cancel"})


@dataclass(frozen=True, repr=False)
class TtsChunk(AudioChunk):
    """A piece of synthesized speech (``audio`` event, and ``for chunk in tts``).

    The shared :class:`~voxsync.events.AudioChunk` with the vendor's names.

    Attributes
    ----------
    pcm : bytes
        Playable samples in :attr:`audio_format` (16-bit mono PCM). For
        ``wav`` output the file header is removed; for ``mp3`` output this
        is empty (read :attr:`audio`).
    audio : bytes
        The bytes as the service sent them, in the requested output format
        (for ``wav``, the first chunk of a generation starts with the file
        header: the chunks of one generation join into one WAV file).
    audio_len : float or None
        Seconds of audio in this chunk, as the service reports it.
    size : int or None
        Bytes in this chunk, as the service reports it.
    """

    audio: bytes = b""
    audio_len: Optional[float] = None
    size: Optional[int] = None

    @property
    def generation_id(self) -> Optional[str]:
        """The generation this chunk belongs to (``id``)."""
        return self.id

    @property
    def last_chunk(self) -> bool:
        """True on the chunk that ends a generation (``last``)."""
        return self.last

    def __repr__(self) -> str:
        return f"<TtsChunk {len(self.audio)} bytes generation={self.id!r} last_chunk={self.last}>"


_RIFF_HEADER = struct.Struct("<4sI4s")
_CHUNK_HEADER = struct.Struct("<4sI")


class _WavStripper:
    """Removes the RIFF header from the start of one generation's WAV bytes."""

    __slots__ = ("buffer", "done", "sample_rate")

    def __init__(self) -> None:
        self.buffer = b""
        self.done = False
        self.sample_rate: Optional[int] = None

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return data
        self.buffer += data
        buf = self.buffer
        if len(buf) < _RIFF_HEADER.size:
            return b""
        riff, _, wave = _RIFF_HEADER.unpack_from(buf)
        if riff != b"RIFF" or wave != b"WAVE":
            raise RemoteProtocolError("wav output does not start with a RIFF/WAVE header")
        pos = _RIFF_HEADER.size
        while len(buf) >= pos + _CHUNK_HEADER.size:
            name, size = _CHUNK_HEADER.unpack_from(buf, pos)
            pos += _CHUNK_HEADER.size
            if name == b"data":
                self.done = True
                self.buffer = b""
                return buf[pos:]
            if len(buf) < pos + size + (size & 1):
                return b""
            if name == b"fmt " and size >= 16:
                fmt_tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", buf, pos)
                if fmt_tag not in (1, 0xFFFE) or channels != 1 or bits != 16:
                    raise RemoteProtocolError(
                        "wav output is not 16-bit mono PCM "
                        f"(format {fmt_tag}, {channels} channels, {bits} bits)"
                    )
                self.sample_rate = rate
            pos += size + (size & 1)
        return b""


class TtsDecoder:
    """Turns frames of the text-to-speech socket into events, for one stream.

    It keeps the little state the output format needs (the WAV header of
    each generation is removed from :attr:`TtsChunk.pcm`). Use it from one
    thread.

    Parameters
    ----------
    settings : TtsSettings
        What ``init`` asked for (the output format and rate).
    """

    def __init__(self, settings: TtsSettings) -> None:
        self.settings = settings
        self._wav: Dict[Optional[str], _WavStripper] = {}

    def receive(self, frame: Union[str, bytes]) -> Union[TtsChunk, ServerError, Raw]:
        """Parse one frame.

        Returns
        -------
        TtsChunk
            ``audio_chunk`` frames.
        ServerError
            ``error`` frames (``retryable`` for ``RATE_LIMIT_EXCEEDED`` and
            ``SERVICE_UNAVAILABLE``).
        Raw
            Anything else, never dropped.

        Raises
        ------
        RemoteProtocolError
            Not a JSON object, audio that is not base64, or ``wav`` output
            without a valid header.
        """
        message = _loads(frame, "the Palabra TTS server")
        kind = message.get("message_type")
        data = _envelope_data(message)
        if kind == "error":
            return parse_error(data)
        if kind != "audio_chunk":
            return Raw(type=str(kind) if kind is not None else "unknown", raw=message)
        encoded = data.get("audio") or ""
        if not isinstance(encoded, str):
            raise RemoteProtocolError("the Palabra TTS server sent audio that is not a string")
        try:
            audio = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RemoteProtocolError(
                "the Palabra TTS server sent audio that is not base64"
            ) from exc
        ident = data.get("generation_id")
        ident = None if ident is None else str(ident)
        last = bool(data.get("last_chunk", False))
        fmt = self.settings.audio_format
        if self.settings.output_format == "pcm":
            pcm = audio
        elif self.settings.output_format == "wav":
            stripper = self._wav.setdefault(ident, _WavStripper())
            pcm = stripper.feed(audio)
            if stripper.sample_rate is not None and stripper.sample_rate != fmt.sample_rate:
                fmt = AudioFormat(stripper.sample_rate, 1, "pcm_s16le")
            if last:
                self._wav.pop(ident, None)
        else:
            pcm = b""
        size = data.get("size")
        return TtsChunk(
            pcm=pcm,
            audio_format=fmt,
            last=last,
            id=ident,
            raw=message,
            audio=audio,
            audio_len=_number(data.get("audio_len")),
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        )

    def forget(self, generation_id: Optional[str]) -> None:
        """Drop the state of a generation that was cancelled."""
        self._wav.pop(generation_id, None)
