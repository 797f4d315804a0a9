"""Sans-I/O codec of Palabra's speech-to-speech translation socket.

No sockets, no threads: functions that build the task object and the text
frames a client sends, and :func:`parse_message` that turns one received
frame into a typed event. Every frame is ``{"message_type": ..., "data": ...}``;
the server may encode ``data`` a second time as a JSON string, which
:func:`parse_message` undoes.

Malformed input never crashes the parser: a frame that is not JSON, or
whose known fields have the wrong types, raises
:class:`~voxsync.errors.RemoteProtocolError`; a well-formed frame of an
unknown type becomes :class:`~voxsync.palabra.events.Raw`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import zlib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from voxsync.errors import ConfigurationError, RemoteProtocolError
from voxsync.palabra.events import (
    OUTPUT_FORMAT,
    Audio,
    PalabraEvent,
    Raw,
    ServerError,
    ServerWarning,
    StreamEnd,
    TaskInfo,
    Transcript,
)

__all__ = [
    "DEFAULT_ALLOWED_MESSAGE_TYPES",
    "DEFAULT_INPUT_SAMPLE_RATE",
    "END_MARKERS",
    "READY_EVENTS",
    "Targets",
    "audio_frame",
    "build_task",
    "encode",
    "end_task_frame",
    "flush_task_frame",
    "get_task_frame",
    "interrupt_task_frame",
    "parse_message",
    "pause_task_frame",
    "set_task_frame",
    "task_input_format",
    "tts_task_frame",
]

#: Sample rate of the task's input unless told otherwise.
DEFAULT_INPUT_SAMPLE_RATE = 24000
#: What the server sends by default (``error`` is always delivered).
DEFAULT_ALLOWED_MESSAGE_TYPES = (
    "translated_transcription",
    "partial_transcription",
    "validated_transcription",
)
#: The end-of-stream marker of each server generation.
END_MARKERS = ("eos", "end_of_stream")
#: ``task_status`` events of a ``set_task`` ack that mean "running".
READY_EVENTS = ("started", "updated", "unchanged", "resumed")

#: Targets of :func:`build_task`: one code, a list of codes, or per-target overrides.
Targets = Union[str, Sequence[str], Mapping[str, Mapping[str, Any]]]

_PARTIALS = ("partial_transcription", "transcription")
_WARNING_CODES = ("AUDIO_STREAM_TOO_FAST", "AUDIO_STREAM_TOO_SLOW", "AUDIO_STREAM_STALLED")


def _deep_merge(base: Dict[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def build_task(
    source: str,
    targets: Targets,
    *,
    input_sample_rate: int = DEFAULT_INPUT_SAMPLE_RATE,
    input_format: str = "pcm_s16le",
    channels: int = 1,
    output_format: str = "pcm_s16le",
    translate_partials: bool = False,
    silence_threshold: Optional[float] = None,
    voice_id: Optional[str] = None,
    voice_cloning: Optional[bool] = None,
    allowed_message_types: Optional[Iterable[str]] = None,
) -> Dict[str, Any]:
    """Build the task object sent with ``set_task``.

    The client does not validate what the server validates (ranges,
    language codes): a bad value is rejected by the server with a
    :class:`~voxsync.palabra.errors.TaskError` that says why. Only shapes
    that cannot be sent at all raise here.

    Parameters
    ----------
    source : str
        Source language code, or ``"auto"``.
    targets : str, sequence of str, or mapping
        One target code, several, or ``{code: overrides}`` where each
        override dict is merged into that target's entry (e.g.
        ``{"es": {"speech_generation": {"voice_id": "default_high"}}}``).
    input_sample_rate, input_format, channels
        What the audio you send is (default PCM s16le, 24 kHz, mono).
    output_format : {"pcm_s16le", "zlib_pcm_s16le"}
        How the server sends synthesized speech (both decode to the same PCM).
    translate_partials : bool
        Also translate partial transcriptions.
    silence_threshold : float or None
        ``segment_confirmation_silence_threshold`` (seconds of silence that end a segment).
    voice_id, voice_cloning
        Speech options of every target (per-target overrides win).
    allowed_message_types : iterable of str or None
        Message types the server should send (the server default when None).

    Returns
    -------
    dict
        A fresh dict you may edit before passing it as ``task=``.

    Examples
    --------
    >>> task = build_task("en", "es")
    >>> task["pipeline"]["translations"][0]["target_language"]
    'es'
    """
    if not isinstance(source, str) or not source:
        raise ConfigurationError("source must be a language code such as 'en' (or 'auto')")
    overrides: Dict[str, Mapping[str, Any]]
    if isinstance(targets, str):
        overrides = {targets: {}}
    elif isinstance(targets, Mapping):
        overrides = {}
        for code, extra in targets.items():
            if extra is not None and not isinstance(extra, Mapping):
                raise ConfigurationError(
                    f"targets[{code!r}] must be a dict of overrides (or {{}}), got {extra!r}"
                )
            overrides[code] = extra or {}
    else:
        try:
            overrides = {code: {} for code in targets}
        except TypeError:
            raise ConfigurationError(
                "targets must be a language code, a list of codes or a dict of overrides"
            ) from None
    if not overrides or not all(isinstance(code, str) and code for code in overrides):
        raise ConfigurationError("targets must name at least one language code such as 'es'")
    transcription: Dict[str, Any] = {"source_language": source}
    if silence_threshold is not None:
        transcription["segment_confirmation_silence_threshold"] = silence_threshold
    translations: List[Dict[str, Any]] = []
    for code, extra in overrides.items():
        speech: Dict[str, Any] = {}
        if voice_id is not None:
            speech["voice_id"] = voice_id
        if voice_cloning is not None:
            speech["voice_cloning"] = voice_cloning
        entry: Dict[str, Any] = {"target_language": code, "speech_generation": speech}
        if translate_partials:
            entry["translate_partial_transcriptions"] = True
        translations.append(_deep_merge(entry, extra))
    pipeline: Dict[str, Any] = {"transcription": transcription, "translations": translations}
    pipeline["allowed_message_types"] = list(
        DEFAULT_ALLOWED_MESSAGE_TYPES if allowed_message_types is None else allowed_message_types
    )
    return {
        "input_stream": {
            "content_type": "audio",
            "source": {
                "type": "ws",
                "format": input_format,
                "sample_rate": input_sample_rate,
                "channels": channels,
            },
        },
        "output_stream": {
            "content_type": "audio",
            "target": {"type": "ws", "format": output_format},
        },
        "pipeline": pipeline,
    }


def task_input_format(task: Mapping[str, Any]) -> Any:
    """The :class:`~voxsync.audio.AudioFormat` a task's ``input_stream`` declares.

    Raises
    ------
    ConfigurationError
        The task declares a format voxsync cannot produce (only raw
        ``pcm_s16le`` is streamed by voxsync).
    """
    from voxsync.audio.format import AudioFormat

    try:
        src = task["input_stream"]["source"]
        fmt = src.get("format", "pcm_s16le")
        rate = int(src.get("sample_rate", DEFAULT_INPUT_SAMPLE_RATE))
        channels = int(src.get("channels", 1))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            "the task has no usable input_stream.source; build it with build_task()"
        ) from exc
    if fmt != "pcm_s16le":
        raise ConfigurationError(
            f"input format {fmt!r}: voxsync streams raw pcm_s16le; "
            "set input_stream.source.format to 'pcm_s16le'"
        )
    return AudioFormat(rate, channels, "pcm_s16le")


def encode(message_type: str, data: Mapping[str, Any]) -> str:
    """One text frame: ``{"message_type": ..., "data": ...}`` as compact JSON."""
    return json.dumps({"message_type": message_type, "data": data}, separators=(",", ":"))


def set_task_frame(task: Mapping[str, Any]) -> str:
    """``set_task``: create or update the task; also resumes after a pause."""
    return encode("set_task", task)


def get_task_frame() -> str:
    """``get_task``: ask for the running task (``current_task`` or NOT_FOUND)."""
    return encode("get_task", {})


def audio_frame(pcm: bytes) -> str:
    """``input_audio_data`` carrying ``pcm`` as base64."""
    return encode("input_audio_data", {"data": base64.b64encode(pcm).decode("ascii")})


def end_task_frame(eos_timeout: Optional[float] = None, force: Optional[bool] = None) -> str:
    """``end_task``: graceful finish (``eos_timeout``: trailing seconds to wait), or ``force``."""
    data: Dict[str, Any] = {}
    if eos_timeout is not None:
        data["eos_timeout"] = eos_timeout
    if force is not None:
        data["force"] = force
    return encode("end_task", data)


def pause_task_frame() -> str:
    """``pause_task``: stop processing audio, keep the task."""
    return encode("pause_task", {})


def flush_task_frame(languages: Sequence[str] = ("global",), pause_task: bool = False) -> str:
    """``flush_task``: drop the phrase in flight (all languages by default)."""
    return encode("flush_task", {"languages": list(languages), "pause_task": pause_task})


def interrupt_task_frame(languages: Sequence[str] = ("global",), pause_task: bool = False) -> str:
    """``interrupt_task`` (newer servers' name for ``flush_task``)."""
    return encode("interrupt_task", {"languages": list(languages), "pause_task": pause_task})


def tts_task_frame(text: str, language: str, translate: bool = False) -> str:
    """``tts_task``: speak ``text`` through the pipeline (translated first if asked)."""
    return encode("tts_task", {"text": text, "language": language, "translate_text": translate})


# ------------------------------------------------------------------ parsing
def _fail(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"Palabra sent a malformed message: {message}")


def _str(obj: Mapping[str, Any], key: str, where: str, default: Optional[str] = None) -> Any:
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _fail(f"{where}.{key} should be a string, got {type(value).__name__}")
    return value


def _transcript(message_type: str, data: Mapping[str, Any]) -> Transcript:
    body = data.get("transcription", data)
    if not isinstance(body, Mapping):
        raise _fail(f"{message_type}.transcription should be an object")
    text = body.get("text", "")
    if not isinstance(text, str):
        raise _fail(f"{message_type}.transcription.text should be a string")
    segments = body.get("segments")
    start = end = None
    if isinstance(segments, list) and segments:
        first, last = segments[0], segments[-1]
        if isinstance(first, Mapping) and isinstance(first.get("start"), (int, float)):
            start = float(first["start"])
        if isinstance(last, Mapping) and isinstance(last.get("end"), (int, float)):
            end = float(last["end"])
    is_translation = "translated" in message_type
    return Transcript(
        text=text,
        is_final=message_type not in _PARTIALS and not message_type.startswith("partial"),
        language=_str(body, "language", message_type),
        start=start,
        end=end,
        id=_str(body, "transcription_id", message_type),
        is_translation=is_translation,
        raw={"message_type": message_type, "data": data},
    )


def _audio(data: Mapping[str, Any], compressed: bool) -> Audio:
    payload = data.get("data", "")
    if not isinstance(payload, str):
        raise _fail("output_audio_data.data should be base64 text")
    try:
        pcm = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail("output_audio_data.data is not valid base64") from exc
    if compressed and pcm:
        try:
            pcm = zlib.decompress(pcm)
        except zlib.error as exc:
            raise _fail("output_audio_data.data is not zlib-compressed audio") from exc
    if len(pcm) % OUTPUT_FORMAT.frame_size:
        raise _fail(f"output_audio_data has {len(pcm)} bytes, not whole 16-bit samples")
    last = data.get("last_chunk", False)
    if not isinstance(last, bool):
        raise _fail("output_audio_data.last_chunk should be true or false")
    return Audio(
        pcm=pcm,
        audio_format=OUTPUT_FORMAT,
        language=_str(data, "language", "output_audio_data"),
        last=last,
        id=_str(data, "transcription_id", "output_audio_data"),
        raw={"message_type": "output_audio_data", "data": {**data, "data": "<audio>"}},
    )


def parse_message(frame: Union[str, bytes], *, compressed_audio: bool = False) -> PalabraEvent:
    """Turn one received text frame into a typed event.

    Parameters
    ----------
    frame : str or bytes
        The frame as received (bytes are decoded as UTF-8).
    compressed_audio : bool
        The task asked for ``zlib_pcm_s16le``: inflate ``output_audio_data``.

    Returns
    -------
    Transcript, Audio, TaskInfo, StreamEnd, ServerError, ServerWarning or Raw

    Raises
    ------
    RemoteProtocolError
        The frame is not JSON, or a known message has fields of the wrong type.
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        try:
            frame = bytes(frame).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail("a frame that is not UTF-8") from exc
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise _fail(f"not JSON ({len(frame)} characters)") from exc
    if not isinstance(message, dict):
        return Raw(type="", raw={"data": message})
    message_type = message.get("message_type")
    data = message.get("data", {})
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            pass  # a plain string payload: leave it as it is
    if not isinstance(message_type, str):
        return Raw(type="", raw={**message, "data": data})
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        return Raw(type=message_type, raw={"message_type": message_type, "data": data})
    raw = {"message_type": message_type, "data": data}
    if message_type.endswith("transcription"):
        return _transcript(message_type, data)
    if message_type == "output_audio_data":
        return _audio(data, compressed_audio)
    if message_type == "current_task":
        status = _str(data, "task_status", message_type)
        task = {k: v for k, v in data.items() if k != "task_status"}
        return TaskInfo(status=status, task=task, raw=raw)
    if message_type == "task_status":
        return TaskInfo(
            status=_str(data, "task_status", message_type),
            command=_str(data, "command", message_type),
            change=_str(data, "event", message_type),
            raw=raw,
        )
    if message_type in END_MARKERS:
        return StreamEnd(type=message_type, raw=raw)
    if message_type in ("error", "warning"):
        code = _str(data, "code", message_type)
        text = data.get("desc", data.get("description", data.get("message", "")))
        text = text if isinstance(text, str) else json.dumps(text)
        if message_type == "warning" or (code in _WARNING_CODES):
            return ServerWarning(code=code or "UNKNOWN_WARNING", message=text, raw=raw)
        return ServerError(code, text, raw=raw)
    return Raw(type=message_type, raw=raw)
