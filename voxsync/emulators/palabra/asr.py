"""The emulated Palabra speech-to-text (ASR) socket, ``/asr/v1/speech-to-text/stream``.

:class:`AsrService` plugs into the Palabra emulator's server: the server
calls :meth:`AsrService.check` while it answers the upgrade request (to
refuse it with an HTTP status) and :meth:`AsrService.serve` with the open
socket, on the socket's own handler thread. The WebSocket library answers
pings on its I/O thread, so recognition running in ``serve`` never delays
keepalives.

Behaviour, as the real service's clients see it:

* settings in the query string, checked before the upgrade: ``format``
  (required), ``sample_rate`` (required for raw formats except
  ``pcm_s16le``, which defaults to 16000 Hz), ``language`` (default
  ``auto``), ``translate_languages`` (comma-separated),
  ``enable_filler_filter``; a bad value gets HTTP 400 with a plain-text
  reason;
* HTTP 401 for a missing or unknown token, HTTP 409 while another socket of
  the same token is open ("a session is already active");
* audio as raw binary frames; ``transcription`` partials while speech goes
  on, a final (``is_eos: true``) once the speaker pauses, then one
  ``translated_transcription`` per target (from the pluggable translator);
* errors enveloped, ``{"message_type": "error", "data": {"code", "desc"}}``,
  never double-encoded; a text frame gets ``BAD_REQUEST`` and the socket
  stays open; no audio for ``idle_timeout`` seconds gets
  ``SERVICE_TIMEOUT`` and a close with code 1008.

The recognizer is the shared emulator engine
(:mod:`voxsync.emulators.engine`): real pocketsphinx recognition by default.
Its en-US model gives English text whatever ``language`` says; ``auto`` is
reported as ``en``.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple, Union

import numpy as np
from websockets.exceptions import ConnectionClosed

from voxsync.audio.g711 import alaw_decode, ulaw_decode
from voxsync.emulators.engine import Engine, Segment

__all__ = [
    "ASR_PATH",
    "AsrParams",
    "AsrService",
    "SocketFaults",
    "Translator",
    "WebSocketLike",
    "faults_from",
    "pseudo_translate",
    "register",
]

log = logging.getLogger(__name__)

ASR_PATH = "/asr/v1/speech-to-text/stream"

#: Formats the service names; the emulator decodes the raw ones and ``wav``.
_FORMATS = (
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
_DTYPES = {
    "pcm_s16le": "<i2",
    "pcm_f32le": "<f4",
    "pcm_f32be": ">f4",
    "pcm_s32le": "<i4",
    "pcm_s32be": ">i4",
    "mulaw": "u1",
    "alaw": "u1",
}
_DECODED = (*_DTYPES, "wav")

#: Seconds without audio after which the socket is closed (``SERVICE_TIMEOUT``).
DEFAULT_IDLE_TIMEOUT = 10.0

#: ``translator(text, source_language, target_language) -> translated text``.
Translator = Callable[[str, str, str], str]


def pseudo_translate(text: str, source: str, target: str) -> str:
    """The default translator: the source text marked with the target language.

    The emulator does not translate; it says so in every translation
    (``"[es] hello world"``) rather than pass off a fake as real.
    """
    return f"[{target}] {text}"


class WebSocketLike(Protocol):
    """What :meth:`AsrService.serve` needs of a server-side socket (``websockets.sync``)."""

    def recv(self, timeout: Optional[float] = None) -> Union[str, bytes]: ...

    def send(self, message: Union[str, bytes]) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass
class SocketFaults:
    """Faults a realtime socket injects (counts are frames received from the client).

    ``None`` disables a fault. Tests may replace the object while the
    emulator runs; each socket reads it when it opens.

    Attributes
    ----------
    drop_after_frames : int or None
        Cut the connection without a close frame.
    stall_after_frames : int or None
        Stop answering (results, chunks) but keep the socket open.
    malformed_after_frames : int or None
        Send one text frame that is not JSON.
    close_after_frames : int or None
        Close with code 1008 (policy violation), as past a rate limit.
    """

    drop_after_frames: Optional[int] = None
    stall_after_frames: Optional[int] = None
    malformed_after_frames: Optional[int] = None
    close_after_frames: Optional[int] = None

    def apply(self, frames: int, ws: Any, send: Callable[[str], None]) -> Tuple[bool, bool]:
        """Inject what is due after ``frames`` client frames on socket ``ws``.

        Returns ``(ended, stalled)``: the socket was cut or closed (stop
        serving it), or it must stop answering from now on.
        """
        if self.drop_after_frames is not None and frames > self.drop_after_frames:
            transport = getattr(ws, "socket", None)
            if transport is not None:
                transport.close()
            return True, False
        if self.close_after_frames is not None and frames > self.close_after_frames:
            ws.close(1008, "rate limit exceeded")
            return True, False
        if self.malformed_after_frames is not None and frames == self.malformed_after_frames + 1:
            send("{this is not json")
        return False, self.stall_after_frames is not None and frames > self.stall_after_frames


def faults_from(faults: Any) -> SocketFaults:
    """The realtime sockets' share of the emulator's ``PalabraFaults``.

    ``drop_after_chunks``, ``stall_after_chunks`` and
    ``malformed_after_chunks`` count the client's frames on these sockets
    too; ``rate_limit_close`` closes every new socket at once with 1008.
    """
    return SocketFaults(
        drop_after_frames=getattr(faults, "drop_after_chunks", None),
        stall_after_frames=getattr(faults, "stall_after_chunks", None),
        malformed_after_frames=getattr(faults, "malformed_after_chunks", None),
        close_after_frames=0 if getattr(faults, "rate_limit_close", False) else None,
    )


def register(emulator: Any) -> AsrService:
    """Serve the ASR socket on a ``PalabraEmulator`` (its engine, translator, tokens, faults)."""
    service = AsrService(
        lambda: emulator.engine,
        translator=lambda text, source, target: emulator.translator(text, source, target),
        token_ok=emulator.token_ok,
        idle_timeout=emulator.idle_timeout,
        faults=lambda: faults_from(emulator.faults),
    )
    emulator.add_socket_route("asr", lambda path: path == ASR_PATH, service)
    return service


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class AsrParams:
    """The validated query of one ASR socket."""

    token: str
    format: str
    sample_rate: int
    language: str
    translate_languages: Tuple[str, ...]
    enable_filler_filter: bool


def _one(query: Mapping[str, List[str]], name: str) -> Optional[str]:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise _Refusal(400, f"query parameter {name!r} is given more than once")
    return values[0]


def _language(value: str, name: str) -> str:
    parts = value.split("-")
    ok = (
        1 <= len(parts) <= 2
        and parts[0].isalpha()
        and parts[0].isascii()
        and 2 <= len(parts[0]) <= 3
        and all(p.isalnum() and p.isascii() and 2 <= len(p) <= 8 for p in parts[1:])
    )
    if not ok:
        raise _Refusal(400, f"{name}: {value!r} is not a language code (like 'en' or 'en-us')")
    return value.lower()


def parse_query(query: Mapping[str, List[str]]) -> AsrParams:
    """Validate the socket's query (``urllib.parse.parse_qs`` form).

    Raises
    ------
    _Refusal
        With the HTTP status (401, 400) and the reason to answer.
    """
    token = _one(query, "token")
    if not token:
        raise _Refusal(401, "missing token: add ?token=<session publisher token or API key>")
    fmt = _one(query, "format")
    if fmt is None:
        raise _Refusal(400, f"missing format: one of {', '.join(_FORMATS)}")
    if fmt not in _FORMATS:
        raise _Refusal(400, f"format {fmt!r} is unknown; use one of {', '.join(_FORMATS)}")
    if fmt not in _DECODED:
        raise _Refusal(
            400,
            f"format {fmt!r} is valid but this emulator does not decode it; "
            f"use one of {', '.join(_DECODED)}",
        )
    rate_text = _one(query, "sample_rate")
    if rate_text is None:
        if fmt not in ("pcm_s16le", "wav"):
            raise _Refusal(400, f"sample_rate is required for format {fmt!r}")
        rate = 16000
    else:
        if not rate_text.isdigit() or not 8000 <= int(rate_text) <= 48000:
            raise _Refusal(
                400, f"sample_rate must be an integer from 8000 to 48000, got {rate_text!r}"
            )
        rate = int(rate_text)
    language = _one(query, "language") or "auto"
    if language != "auto":
        language = _language(language, "language")
    targets_text = _one(query, "translate_languages") or ""
    targets = tuple(
        _language(t.strip(), "translate_languages") for t in targets_text.split(",") if t.strip()
    )
    filler_text = (_one(query, "enable_filler_filter") or "").lower()
    if filler_text not in ("", "true", "false"):
        raise _Refusal(400, f"enable_filler_filter must be true or false, got {filler_text!r}")
    filler = filler_text != "false" if filler_text else not language.startswith("ja")
    return AsrParams(token, fmt, rate, language, targets, filler)


def _error(code: str, desc: str) -> str:
    return json.dumps({"message_type": "error", "data": {"code": code, "desc": desc}})


class _Decoder:
    """Turns the client's audio bytes into mono int16 PCM (any chunking)."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self.format = fmt
        self.sample_rate = sample_rate
        self.channels = 1
        self._dtype = _DTYPES.get(fmt, "<i2")
        self._pending = b""
        self._header_done = fmt != "wav"

    def _wav_header(self) -> bool:
        buf = self._pending
        if len(buf) < 12:
            return False
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise ValueError("wav audio must start with a RIFF/WAVE header")
        pos = 12
        while len(buf) >= pos + 8:
            name, size = struct.unpack_from("<4sI", buf, pos)
            pos += 8
            if name == b"data":
                self._pending = buf[pos:]
                self._header_done = True
                return True
            if len(buf) < pos + size:
                return False
            if name == b"fmt ":
                tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", buf, pos)
                if tag not in (1, 0xFFFE) or bits != 16:
                    raise ValueError("wav audio must be 16-bit PCM")
                self.channels, self.sample_rate = channels, rate
            pos += size + (size & 1)
        return False

    def decode(self, data: bytes) -> bytes:
        self._pending += data
        if not self._header_done and not self._wav_header():
            return b""
        width = np.dtype(self._dtype).itemsize * self.channels
        usable = len(self._pending) - len(self._pending) % width
        raw, self._pending = self._pending[:usable], self._pending[usable:]
        samples = np.frombuffer(raw, dtype=self._dtype)
        if self.format == "mulaw":
            pcm = ulaw_decode(raw)
        elif self.format == "alaw":
            pcm = alaw_decode(raw)
        elif self._dtype.endswith("f4"):
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
        elif self._dtype.endswith("i4"):
            pcm = (samples >> 16).astype("<i2")
        else:
            pcm = samples.astype("<i2")
        if self.channels > 1:
            pcm = pcm.reshape(-1, self.channels).mean(axis=1).astype("<i2")
        return bytes(pcm.tobytes())


class AsrService:
    """Serves ASR sockets; one object for the whole emulator (thread-safe).

    Parameters
    ----------
    engine : Engine or callable
        The shared recognizer (:func:`voxsync.emulators.engine.make_engine`),
        or a function returning it when a socket opens (the emulator creates
        its engine when it starts).
    translator : callable
        ``translator(text, source, target) -> str``; default
        :func:`pseudo_translate`.
    token_ok : callable
        ``token_ok(token) -> bool``; False gives HTTP 401. Default: any
        non-empty token.
    idle_timeout : float
        Seconds without audio before ``SERVICE_TIMEOUT`` and close 1008.
    faults : callable, optional
        Returns the current :class:`SocketFaults` (read when a socket opens).
    """

    def __init__(
        self,
        engine: Union[Engine, Callable[[], Engine]],
        *,
        translator: Translator = pseudo_translate,
        token_ok: Optional[Callable[[str], bool]] = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        faults: Optional[Callable[[], SocketFaults]] = None,
    ) -> None:
        self._engine = engine
        self.translator = translator
        self._token_ok = token_ok or (lambda token: bool(token))
        self.idle_timeout = idle_timeout
        self._faults = faults or SocketFaults
        self._lock = threading.Lock()
        self._active: Dict[str, int] = {}
        self.sessions = 0
        """Sockets served so far (for tests)."""

    def check(self, query: Mapping[str, List[str]]) -> Optional[Tuple[int, str]]:
        """``(status, reason)`` to refuse the upgrade with, or None to accept it."""
        try:
            params = parse_query(query)
        except _Refusal as refusal:
            return refusal.status, refusal.reason
        if not self._token_ok(params.token):
            return 401, "the token is not valid (create a session and use its publisher token)"
        with self._lock:
            if params.token in self._active:
                return 409, "a session is already active for this identity"
        return None

    @property
    def engine(self) -> Engine:
        """The recognizer sockets use."""
        return self._engine if isinstance(self._engine, Engine) else self._engine()

    def __call__(self, emulator: Any, ws: Any, query: Mapping[str, List[str]]) -> None:
        """The emulator's socket-route handler form of :meth:`serve`."""
        self.serve(ws, query)

    def active(self, token: str) -> bool:
        """True while a socket of ``token`` is open."""
        with self._lock:
            return token in self._active

    def serve(self, ws: WebSocketLike, query: Mapping[str, List[str]]) -> None:
        """Run one socket until the client closes it (call after :meth:`check` accepted)."""
        params = parse_query(query)
        with self._lock:
            if params.token in self._active:
                busy = True
            else:
                busy = False
                self._active[params.token] = 1
                self.sessions += 1
        if busy:
            ws.send(_error("CONFLICT", "a session is already active for this identity"))
            ws.close(1008, "session already active")
            return
        try:
            _AsrSocket(self, ws, params, self._faults()).run()
        finally:
            with self._lock:
                self._active.pop(params.token, None)


class _AsrSocket:
    def __init__(
        self, service: AsrService, ws: WebSocketLike, params: AsrParams, faults: SocketFaults
    ) -> None:
        self.service = service
        self.ws = ws
        self.params = params
        self.faults = faults
        self.language = "en" if params.language == "auto" else params.language
        self.decoder = _Decoder(params.format, params.sample_rate)
        self.prefix = uuid.uuid4().hex[:12]
        self.previous: Dict[int, str] = {}
        self.frames = 0
        self.stalled = False

    def run(self) -> None:
        session = None
        if self.faults.close_after_frames == 0:
            self.ws.close(1008, "rate limit exceeded")
            return
        try:
            while True:
                try:
                    frame = self.ws.recv(timeout=self.service.idle_timeout)
                except TimeoutError:
                    self.ws.send(
                        _error(
                            "SERVICE_TIMEOUT",
                            f"no audio for {self.service.idle_timeout:g} s; closing",
                        )
                    )
                    self.ws.close(1008, "no audio")
                    return
                self.frames += 1
                if self._fault():
                    return
                if isinstance(frame, str):
                    self.ws.send(
                        _error(
                            "BAD_REQUEST",
                            "this socket takes audio as binary frames only; "
                            "settings go in the URL's query",
                        )
                    )
                    continue
                try:
                    pcm = self.decoder.decode(frame)
                except ValueError as exc:
                    self.ws.send(_error("VALIDATION_ERROR", str(exc)))
                    self.ws.close(1003, "unreadable audio")
                    return
                if not pcm:
                    continue
                if session is None:
                    session = self.service.engine.new_session(self.decoder.sample_rate)
                for segment in session.feed(pcm):
                    self._send_segment(segment)
        except ConnectionClosed:
            return  # the client closed: the normal end of an ASR stream
        finally:
            if session is not None:
                session.close()

    def _fault(self) -> bool:
        ended, stalled = self.faults.apply(self.frames, self.ws, self.ws.send)
        self.stalled = self.stalled or stalled
        return ended

    def _send(self, message: Mapping[str, Any]) -> None:
        if not self.stalled:
            self.ws.send(json.dumps(message))

    def _send_segment(self, segment: Segment) -> None:
        text = segment.text.strip()
        if not text:
            return
        tid = f"{self.prefix}-{segment.index}"
        times = {"start_time": round(segment.start, 3), "end_time": round(segment.end, 3)}
        before = self.previous.get(segment.index, "")
        added = text[len(before) :].lstrip() if text.startswith(before) else text
        message: Dict[str, Any] = {
            "message_type": "transcription",
            "transcription_id": tid,
            "language": self.language,
            "is_eos": segment.is_final,
            "segment": {"text": text, **times},
            "delta": {"text": added, **times},
        }
        self._send(message)
        if not segment.is_final:
            self.previous[segment.index] = text
            return
        self.previous.pop(segment.index, None)
        for target in self.params.translate_languages:
            started = time.monotonic()
            translated = self.service.translator(text, self.language, target)
            log.debug("translated to %s in %.3f s", target, time.monotonic() - started)
            self._send(
                {
                    "message_type": "translated_transcription",
                    "transcription_id": tid,
                    "language": target,
                    "is_eos": True,
                    "segment": {"text": translated, **times},
                }
            )
