"""The emulator's speech-to-speech translation socket (one handler per socket).

Threads per socket: the connection thread reads frames and answers commands
at once; a ``pipeline`` thread runs recognition, translation and synthesis
(never the socket's own loop, which keeps answering pings); a ``speaker``
thread streams synthesized speech in 200 ms ``output_audio_data`` chunks at
about real time.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import queue
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from voxsync.audio.convert import Converter
from voxsync.audio.format import AudioFormat

if TYPE_CHECKING:
    from websockets.sync.server import ServerConnection

    from voxsync.emulators.palabra.server import PalabraEmulator

__all__ = ["serve_translation", "validate_task"]

log = logging.getLogger(__name__)

_ENGINE_FORMAT = AudioFormat(16000, 1, "pcm_s16le")
_OUTPUT_FORMAT = AudioFormat(24000, 1, "pcm_s16le")
_OUT_CHUNK = _OUTPUT_FORMAT.nbytes(0.2)
_LEAD = 0.3  # seconds of synthesized audio sent ahead of real time
_DEFAULT_ALLOWED = ("translated_transcription", "partial_transcription", "validated_transcription")
_STOP = object()
#: Seconds without audio on a running task before an AUDIO_STREAM_STALLED warning.
_STALL_SECONDS = 5.0
#: Audio handed to the recognizer per call (100 ms at 16 kHz).
_FEED_BYTES = 3200


def validate_task(task: Any) -> Optional[str]:
    """None if ``task`` is acceptable, else the reason (a VALIDATION_ERROR's desc)."""
    if not isinstance(task, Mapping):
        return "data: the task must be an object"
    source = (
        (task.get("input_stream") or {}).get("source")
        if isinstance(task.get("input_stream"), Mapping)
        else None
    )
    if not isinstance(source, Mapping):
        return "input_stream.source: field required"
    if source.get("type") != "ws":
        return "input_stream.source.type: this emulator serves the 'ws' transport only"
    if source.get("format") != "pcm_s16le":
        return "input_stream.source.format: this emulator decodes 'pcm_s16le' only"
    rate, channels = source.get("sample_rate"), source.get("channels")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 16000 <= rate <= 48000:
        return "input_stream.source.sample_rate: must be an integer from 16000 to 48000"
    if channels not in (1, 2) or isinstance(channels, bool):
        return "input_stream.source.channels: must be 1 or 2"
    output = task.get("output_stream")
    if output is not None:
        target = output.get("target") if isinstance(output, Mapping) else None
        if not isinstance(target, Mapping) or target.get("format") not in (
            "pcm_s16le",
            "zlib_pcm_s16le",
        ):
            return "output_stream.target.format: must be 'pcm_s16le' or 'zlib_pcm_s16le'"
    pipeline = task.get("pipeline")
    if not isinstance(pipeline, Mapping):
        return "pipeline: field required"
    transcription = pipeline.get("transcription")
    if not isinstance(transcription, Mapping) or not isinstance(
        transcription.get("source_language"), str
    ):
        return "pipeline.transcription.source_language: field required"
    threshold = transcription.get("segment_confirmation_silence_threshold")
    if threshold is not None and (not isinstance(threshold, (int, float)) or threshold < 0.3):
        return (
            "pipeline.transcription.segment_confirmation_silence_threshold: "
            "ensure this value is greater than or equal to 0.3"
        )
    translations = pipeline.get("translations")
    if not isinstance(translations, list):
        return "pipeline.translations: must be a list"
    for i, entry in enumerate(translations):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("target_language"), str):
            return f"pipeline.translations.{i}.target_language: field required"
    allowed = pipeline.get("allowed_message_types", task.get("allowed_message_types"))
    if allowed is not None and not (
        isinstance(allowed, list) and all(isinstance(x, str) for x in allowed)
    ):
        return "pipeline.allowed_message_types: must be a list of strings"
    return None


class _Session:
    def __init__(self, emu: PalabraEmulator, conn: ServerConnection) -> None:
        self.emu = emu
        self.conn = conn
        self.faults = emu.faults
        self.send_lock = threading.Lock()
        self.task: Optional[Dict[str, Any]] = None
        self.running = False
        self.paused = False
        self.ending = False
        self.stalled = False
        self.closed = threading.Event()
        self.chunks = 0
        self.prefix = f"{int(time.time() * 1000) % 10**8:08d}"
        self.work: queue.Queue[Any] = queue.Queue()
        self.audio_out: queue.Queue[Any] = queue.Queue()
        self.audio_generation = 0
        self.converter: Optional[Converter] = None
        self.engine_session: Any = None
        self.started_at: Optional[float] = None
        self.audio_seconds = 0.0
        self.first_audio: Optional[float] = None
        self.last_audio = time.monotonic()
        self.last_warning = 0.0
        self.ready_at: Optional[float] = None
        self.tts_counter = 0

    # ------------------------------------------------------------ sending
    def send(self, message_type: str, data: Any, *, always: bool = False) -> None:
        if self.closed.is_set() or (self.stalled and not always):
            return
        if self.faults.double_encode:
            data = json.dumps(data)
        frame = json.dumps({"message_type": message_type, "data": data})
        try:
            with self.send_lock:
                self.conn.send(frame)
        except Exception:
            self.closed.set()

    def allowed(self, message_type: str) -> bool:
        task = self.task or {}
        pipeline = task.get("pipeline") or {}
        allowed = pipeline.get("allowed_message_types", task.get("allowed_message_types"))
        if allowed is None:
            allowed = _DEFAULT_ALLOWED
        return message_type in allowed

    def error(self, code: str, desc: str) -> None:
        self.send("error", {"code": code, "desc": desc, "param": None}, always=True)

    @property
    def source(self) -> str:
        return str(
            ((self.task or {}).get("pipeline") or {})
            .get("transcription", {})
            .get("source_language", "en")
        )

    @property
    def targets(self) -> List[Dict[str, Any]]:
        return list(((self.task or {}).get("pipeline") or {}).get("translations", []))

    def current_task(self) -> Dict[str, Any]:
        return {**(self.task or {}), "task_status": "paused" if self.paused else "running"}

    # ------------------------------------------------------------ commands
    def on_set_task(self, data: Any) -> None:
        reason = validate_task(data)
        if reason is not None:
            self.error("VALIDATION_ERROR", reason)
            return
        first = self.task is None
        if not first and data["input_stream"] != self.task["input_stream"]:  # type: ignore[index]
            self.error("VALIDATION_ERROR", "input_stream cannot change on a running task")
            return
        changed = data != self.task
        self.task = dict(data)
        if first:
            src = data["input_stream"]["source"]
            self.converter = Converter(
                AudioFormat(src["sample_rate"], src["channels"], "pcm_s16le"), _ENGINE_FORMAT
            )
            self.work.put(("reset", None))
            if self.faults.never_ready:
                return
            delay = self.emu.ready_delay
            if delay > 0:
                timer = threading.Timer(delay, self._start)
                timer.daemon = True
                self.emu.threads.adopt(timer, "ready")
                timer.start()
            else:
                self._start()
            return
        if self.paused:
            self.paused = False
            event = "resumed"
        else:
            event = "updated" if changed else "unchanged"
        self.send("task_status", {"command": "set_task", "event": event, "task_status": "running"})

    def _start(self) -> None:
        if self.closed.is_set():
            return
        self.running = True
        self.ready_at = time.monotonic()
        self.last_audio = time.monotonic()
        self.send(
            "task_status", {"command": "set_task", "event": "started", "task_status": "running"}
        )

    def on_get_task(self) -> None:
        if self.running:
            self.send("current_task", self.current_task())
        else:
            self.error("NOT_FOUND", "No active task found")

    def on_audio(self, data: Any) -> None:
        payload = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(payload, str):
            self.error("VALIDATION_ERROR", "input_audio_data.data: base64 audio required")
            return
        try:
            pcm = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            self.error("VALIDATION_ERROR", "input_audio_data.data: invalid base64")
            return
        if not self.running or self.ending:
            return
        self.chunks += 1
        now = time.monotonic()
        self.last_audio = now
        if self.first_audio is None:
            self.first_audio = now
        src = (self.task or {})["input_stream"]["source"]
        fmt = AudioFormat(src["sample_rate"], src["channels"], "pcm_s16le")
        if len(pcm) % fmt.frame_size:
            self.error("VALIDATION_ERROR", "input_audio_data: not a whole number of frames")
            return
        self.audio_seconds += fmt.duration(len(pcm))
        self._check_pacing(now)
        if not self.paused:
            self.work.put(("audio", pcm))

    def _check_pacing(self, now: float) -> None:
        assert self.first_audio is not None
        elapsed = now - self.first_audio
        ahead = self.audio_seconds - elapsed
        tol = self.emu.pacing_tolerance
        if now - self.last_warning < 1.0:
            return
        if ahead > tol:
            self.last_warning = now
            self.send(
                "warning",
                {
                    "code": "AUDIO_STREAM_TOO_FAST",
                    "desc": f"input is {ahead:.1f} s ahead of real time",
                },
            )
        elif ahead < -tol:
            self.last_warning = now
            self.send(
                "warning",
                {
                    "code": "AUDIO_STREAM_TOO_SLOW",
                    "desc": f"input is {-ahead:.1f} s behind real time",
                },
            )

    def on_pause(self) -> None:
        self.paused = True
        self.send(
            "task_status", {"command": "pause_task", "event": "paused", "task_status": "paused"}
        )

    def on_flush(self, message_type: str, data: Any) -> None:
        languages = data.get("languages", ["global"]) if isinstance(data, Mapping) else ["global"]
        self.work.put(("flush", languages))
        self.audio_generation += 1
        if isinstance(data, Mapping) and data.get("pause_task"):
            self.paused = True
        if message_type == "interrupt_task":
            self.send(
                "task_status",
                {
                    "command": "interrupt_task",
                    "event": "interrupted",
                    "task_status": "paused" if self.paused else "running",
                },
            )

    def on_tts(self, data: Any) -> None:
        if not isinstance(data, Mapping) or not isinstance(data.get("text"), str):
            self.error("VALIDATION_ERROR", "tts_task.text: field required")
            return
        language = data.get("language")
        translate = bool(data.get("translate_text", False))
        targets = [t["target_language"] for t in self.targets]
        if not translate and language not in targets:
            self.error(
                "VALIDATION_ERROR", f"tts_task.language: {language!r} is not a target language"
            )
            return
        self.tts_counter += 1
        tid = f"tts-{self.prefix}-{self.tts_counter}"
        self.send(
            "task_status",
            {
                "command": "tts_task",
                "event": "queued",
                "task_status": "running",
                "transcription_id": tid,
            },
        )
        chosen = targets if translate else [str(language)]
        self.work.put(("tts", (tid, data["text"], str(language), translate, chosen)))


def serve_translation(
    emu: PalabraEmulator, conn: ServerConnection, query: Dict[str, List[str]]
) -> None:
    """Serve one translation socket until it ends (see the module docstring)."""
    if emu.faults.rate_limit_close:
        conn.close(1008, "connection rate limit exceeded")
        return
    s = _Session(emu, conn)
    pipeline = emu.threads.start("pipeline", _pipeline, s)
    speaker = emu.threads.start("speaker", _speaker, s)
    try:
        _read_loop(s)
    finally:
        s.closed.set()
        s.work.put(_STOP)
        s.audio_out.put(_STOP)
        pipeline.join(10)
        speaker.join(5)


def _read_loop(s: _Session) -> None:
    emu, conn, faults = s.emu, s.conn, s.faults
    while not emu.stopping.is_set() and not s.closed.is_set():
        try:
            frame = conn.recv(timeout=0.5)
        except TimeoutError:
            _idle_checks(s)
            continue
        except Exception:
            return
        if s.stalled:
            continue
        if isinstance(frame, bytes):
            s.error("VALIDATION_ERROR", "binary frames are not accepted; send input_audio_data")
            continue
        try:
            message = json.loads(frame)
            message_type = message["message_type"]
            data = message.get("data", {})
            if isinstance(data, str):
                data = json.loads(data)
        except (ValueError, KeyError, TypeError):
            s.error("VALIDATION_ERROR", 'a frame must be {"message_type": ..., "data": ...}')
            continue
        with emu._lock:
            emu.received.append(
                (message_type, data if message_type != "input_audio_data" else None)
            )
        if message_type == "set_task":
            s.on_set_task(data)
        elif message_type == "get_task":
            s.on_get_task()
        elif message_type == "input_audio_data":
            s.on_audio(data)
            if (
                faults.malformed_after_chunks is not None
                and s.chunks == faults.malformed_after_chunks
            ):
                with s.send_lock:
                    conn.send("{this is not json")
            if faults.drop_after_chunks is not None and s.chunks >= faults.drop_after_chunks:
                conn.close_socket()
                return
            if faults.stall_after_chunks is not None and s.chunks >= faults.stall_after_chunks:
                s.stalled = True
        elif message_type == "pause_task":
            s.on_pause()
        elif message_type in ("flush_task", "interrupt_task"):
            s.on_flush(message_type, data)
        elif message_type == "tts_task":
            s.on_tts(data)
        elif message_type == "end_task":
            force = isinstance(data, Mapping) and data.get("force") is True
            if force:
                return
            s.ending = True
            done = threading.Event()
            s.work.put(("end", done))
            deadline = time.monotonic() + 60
            while not done.wait(0.2):
                if emu.stopping.is_set() or s.closed.is_set() or time.monotonic() > deadline:
                    return
            s.send("eos", {})
            s.send("end_of_stream", {})
            return
        else:
            s.error("VALIDATION_ERROR", f"unknown message_type {message_type!r}")
        _idle_checks(s)


def _idle_checks(s: _Session) -> None:
    now = time.monotonic()
    faults = s.faults
    if (
        faults.drop_after_seconds is not None
        and s.ready_at is not None
        and now - s.ready_at >= faults.drop_after_seconds
    ):
        s.conn.close_socket()
        s.closed.set()
        return
    if not s.running or s.ending or s.stalled:
        return
    silent = now - s.last_audio
    if silent >= s.emu.idle_timeout:
        s.error("SERVICE_TIMEOUT", f"no audio for {s.emu.idle_timeout:.0f} s")
        try:
            s.conn.close(1008, "SERVICE_TIMEOUT")
        except Exception:
            pass
        s.closed.set()
    elif (
        silent >= _STALL_SECONDS
        and not s.paused
        and s.first_audio is not None
        and now - s.last_warning >= _STALL_SECONDS
    ):
        s.last_warning = now
        s.send("warning", {"code": "AUDIO_STREAM_STALLED", "desc": f"no audio for {silent:.1f} s"})


def _transcription(
    s: _Session, tid: str, language: str, text: str, start: float, end: float
) -> Dict[str, Any]:
    base = time.time() - (time.monotonic() - (s.first_audio or time.monotonic()))
    return {
        "transcription": {
            "transcription_id": tid,
            "language": language,
            "text": text,
            "segments": [
                {
                    "text": text,
                    "start": start,
                    "end": end,
                    "start_timestamp": base + start,
                    "end_timestamp": base + end,
                }
            ],
        }
    }


def _pipeline(s: _Session) -> None:
    """Recognition, translation and synthesis, off the socket's thread."""
    emu = s.emu
    part_ids: Dict[Tuple[str, str], int] = {}
    while True:
        item = s.work.get()
        if item is _STOP:
            break
        kind, arg = item
        try:
            if kind == "reset":
                if s.engine_session is not None:
                    s.engine_session.close()
                s.engine_session = emu.engine.new_session(_ENGINE_FORMAT.sample_rate)
            elif kind == "audio" and s.engine_session is not None and s.converter is not None:
                pcm = s.converter.process(arg)
                # small pieces: the recognizer holds the interpreter lock while it decodes
                for i in range(0, len(pcm), _FEED_BYTES):
                    _segments(s, s.engine_session.feed(pcm[i : i + _FEED_BYTES]), part_ids)
            elif kind == "flush" and s.engine_session is not None:
                s.engine_session.close()
                s.engine_session = emu.engine.new_session(_ENGINE_FORMAT.sample_rate)
            elif kind == "tts":
                tid, text, language, translate, targets = arg  # targets when it was asked
                for target in targets:
                    said = emu.translator(text, language, target) if translate else text
                    if translate:
                        s.send(
                            "translated_transcription",
                            _transcription(s, tid, target, said, 0.0, 0.0),
                        )
                    _speak(s, tid, target, said)
            elif kind == "end":
                if s.engine_session is not None and s.converter is not None:
                    tail = s.converter.flush()
                    segments = s.engine_session.feed(tail) if tail else []
                    _segments(s, segments + s.engine_session.flush(), part_ids)
                s.audio_out.put(("done", arg))
        except Exception:
            log.exception("palabra emulator: pipeline failed")
            s.error("SERVER_ERROR", "the emulator's pipeline failed")
    if s.engine_session is not None:
        s.engine_session.close()


def _segments(s: _Session, segments: List[Any], part_ids: Dict[Tuple[str, str], int]) -> None:
    emu = s.emu
    source = s.source
    for seg in segments:
        tid = f"{s.prefix}-{seg.index}"
        text = seg.text
        if not text:
            continue
        if not seg.is_final:
            if s.allowed("partial_transcription"):
                s.send(
                    "partial_transcription",
                    _transcription(s, tid, source, text, seg.start, seg.end),
                )
            for entry in s.targets:
                if entry.get("translate_partial_transcriptions") and s.allowed(
                    "partial_translated_transcription"
                ):
                    target = entry["target_language"]
                    msg = _transcription(
                        s, tid, target, emu.translator(text, source, target), seg.start, seg.end
                    )
                    msg["transcription"]["translation_part_id"] = 0
                    s.send("partial_translated_transcription", msg)
            continue
        if s.allowed("validated_transcription"):
            s.send(
                "validated_transcription", _transcription(s, tid, source, text, seg.start, seg.end)
            )
        for entry in s.targets:
            target = entry["target_language"]
            translated = emu.translator(text, source, target)
            if s.allowed("translated_transcription"):
                msg = _transcription(s, tid, target, translated, seg.start, seg.end)
                msg["transcription"]["translation_part_id"] = 0
                s.send("translated_transcription", msg)
            _speak(s, tid, target, translated)


def _speak(s: _Session, tid: str, language: str, text: str) -> None:
    task = s.task or {}
    if task.get("output_stream") is None:
        return
    try:
        pcm = s.emu.synthesizer().synthesize(text, language)
    except Exception as exc:
        s.error("SERVER_ERROR", f"speech synthesis failed: {exc}")
        return
    s.audio_out.put(("speech", (s.audio_generation, tid, language, pcm)))


def _speaker(s: _Session) -> None:
    """Stream synthesized speech at about real time, 200 ms per chunk."""
    clock_start: Optional[float] = None
    sent = 0.0
    while True:
        item = s.audio_out.get()
        if item is _STOP:
            return
        kind, arg = item
        if kind == "done":
            arg.set()
            continue
        generation, tid, language, pcm = arg
        compressed = ((s.task or {}).get("output_stream") or {}).get("target", {}).get(
            "format"
        ) == "zlib_pcm_s16le"
        now = time.monotonic()
        if clock_start is None or clock_start + sent < now:
            clock_start, sent = now, 0.0
        chunks = [pcm[i : i + _OUT_CHUNK] for i in range(0, len(pcm), _OUT_CHUNK)] or [b""]
        for i, chunk in enumerate(chunks):
            if s.closed.is_set():
                return
            if generation != s.audio_generation:  # flushed
                break
            delay = clock_start + sent - _LEAD - time.monotonic()
            if delay > 0 and s.closed.wait(delay):
                return
            body = zlib.compress(chunk) if compressed and chunk else chunk
            s.send(
                "output_audio_data",
                {
                    "transcription_id": tid,
                    "translation_part_id": "0",
                    "language": language,
                    "last_chunk": i == len(chunks) - 1,
                    "data": base64.b64encode(body).decode("ascii"),
                },
            )
            sent += _OUTPUT_FORMAT.duration(len(chunk))
