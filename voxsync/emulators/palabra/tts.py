"""The emulated Palabra realtime text-to-speech socket.

:class:`TtsService` plugs into the Palabra emulator's server, which routes
both the ``ws_tts_url`` it hands out and ``/tts-api/v1/text-to-speech/stream``
here: :meth:`TtsService.check` while answering the upgrade (HTTP 401 for a
bad token), :meth:`TtsService.serve` with the open socket on its handler
thread.

Behaviour, as the real service's clients see it:

* ``init`` first (``language``, ``voice_options.voice_id``, ``output``
  ``{format, sample_rate}``), never answered; a bad one gets a
  ``VALIDATION_ERROR`` frame and may be sent again;
* ``text`` messages accumulate per ``generation_id``; a message with
  ``is_eos: true`` starts the synthesis of what was accumulated; more than
  :data:`TEXT_LIMIT` characters gets ``VALIDATION_ERROR``; more than
  :data:`MESSAGE_RATE` messages in a second gets ``RATE_LIMIT_EXCEEDED``
  (the message is dropped);
* ``audio_chunk`` frames of about :data:`CHUNK_SECONDS` each, paced at about
  real time (a little ahead), echoing the client's ``generation_id`` (the
  server makes one up when the client gave none), and a ``last_chunk: true``
  chunk with empty audio ending every generation, a cancelled one included;
* ``pcm`` (16-bit mono), ``wav`` (the first chunk of a generation starts
  with the header; the chunks join into one file) and ``mp3`` when the
  audio library can encode it (otherwise a ``VALIDATION_ERROR`` frame that
  says so), at the requested rate;
* ``cancel`` stops the current generation, drops queued text and keeps the
  socket usable.

Synthesis runs on a worker thread per socket
(``voxsync-emulator-palabra-tts-<n>``), never on the socket's I/O thread.
"""

from __future__ import annotations

import base64
import collections
import io
import itertools
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np
from websockets.exceptions import ConnectionClosed

from voxsync.emulators.palabra.asr import SocketFaults, WebSocketLike, faults_from
from voxsync.errors import ConfigurationError

__all__ = [
    "CHUNK_SECONDS",
    "MESSAGE_RATE",
    "TEXT_LIMIT",
    "TTS_PATH",
    "Synthesizer",
    "TtsService",
    "mp3_available",
    "register",
]

log = logging.getLogger(__name__)

TTS_PATH = "/tts-api/v1/text-to-speech/stream"
#: The path of the TTS socket in the 1.x docs (``wss://api.palabra.ai/v1/text-to-speech/stream``).
DOCS_TTS_PATH = "/v1/text-to-speech/stream"
#: Characters per ``text`` message (1.x servers).
TEXT_LIMIT = 256
#: ``text`` messages per second.
MESSAGE_RATE = 50
#: Seconds of audio per chunk.
CHUNK_SECONDS = 0.2
#: How far ahead of real time chunks may be sent.
LEAD_SECONDS = 0.4

#: ``synthesizer(text, language) -> (mono 16-bit PCM, sample rate)``.
Synthesizer = Callable[[str, str], Tuple[bytes, int]]

_THREADS = itertools.count(1)


def mp3_available() -> bool:
    """True if the installed audio library (libsndfile) can write MP3."""
    try:
        import soundfile as sf

        return "MP3" in sf.available_formats()
    except (ImportError, OSError):
        return False


def _error(code: str, desc: str) -> str:
    return json.dumps({"message_type": "error", "data": {"code": code, "desc": desc}})


def _chunk(
    audio: bytes, gid: str, last: bool, delta_ms: Optional[int], seconds: Optional[float]
) -> str:
    return json.dumps(
        {
            "message_type": "audio_chunk",
            "data": {
                "audio": base64.b64encode(audio).decode("ascii"),
                "size": len(audio),
                "generation_id": gid,
                "last_chunk": last,
                "chunk_generation_delta": delta_ms,
                "audio_len": seconds,
            },
        }
    )


@dataclass(frozen=True)
class _Output:
    language: str
    voice_id: str
    format: str
    sample_rate: int


def _resample(pcm: bytes, rate: int, target: int) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype="<i2")
    if rate == target or samples.size == 0:
        return samples
    import soxr

    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate, target)
    clipped: np.ndarray = np.clip(np.round(out * 32767.0), -32768, 32767).astype("<i2")
    return clipped


def _encode(samples: np.ndarray, out: _Output) -> Tuple[bytes, int]:
    """(bytes to stream, bytes of header) for ``out.format``."""
    pcm = bytes(samples.astype("<i2").tobytes())
    if out.format == "pcm":
        return pcm, 0
    import soundfile as sf

    buf = io.BytesIO()
    if out.format == "wav":
        sf.write(buf, samples, out.sample_rate, format="WAV", subtype="PCM_16")
        data = buf.getvalue()
        return data, len(data) - len(pcm)
    sf.write(buf, samples, out.sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    return buf.getvalue(), 0


class TtsService:
    """Serves TTS sockets; one object for the whole emulator (thread-safe).

    Parameters
    ----------
    synthesizer : callable
        ``synthesizer(text, language) -> (pcm, rate)``: a real speech
        synthesizer (the one the translation socket uses).
    token_ok : callable, optional
        ``token_ok(token) -> bool``; False gives HTTP 401.
    realtime : bool
        Pace chunks at about real time (False: as fast as possible, for tests).
    faults : callable, optional
        Returns the current :class:`~voxsync.emulators.palabra.asr.SocketFaults`.
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        *,
        token_ok: Optional[Callable[[str], bool]] = None,
        realtime: bool = True,
        text_limit: int = TEXT_LIMIT,
        faults: Optional[Callable[[], SocketFaults]] = None,
    ) -> None:
        self.synthesizer = synthesizer
        self._token_ok = token_ok or (lambda token: bool(token))
        self.realtime = realtime
        self.text_limit = text_limit
        self._faults = faults or SocketFaults
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self.generations = 0
        """Generations synthesized so far (for tests)."""
        self.received: List[Tuple[float, Dict[str, Any]]] = []
        """Every JSON message received on any TTS socket, with its arrival time (for tests)."""

    def check(self, query: Mapping[str, List[str]]) -> Optional[Tuple[int, str]]:
        """``(status, reason)`` to refuse the upgrade with, or None to accept it."""
        token = (query.get("token") or [""])[0]
        if not token:
            return 401, "missing token: add ?token=<session publisher token or API key>"
        if not self._token_ok(token):
            return 401, "the token is not valid (create a session and use its publisher token)"
        return None

    def serve(self, ws: WebSocketLike, query: Optional[Mapping[str, List[str]]] = None) -> None:
        """Run one socket until the client closes it (call after :meth:`check` accepted)."""
        sock = _TtsSocket(self, ws, self._faults())
        worker = threading.Thread(
            target=sock.worker, name=f"voxsync-emulator-palabra-tts-{next(_THREADS)}", daemon=True
        )
        worker.start()
        try:
            sock.reader()
        finally:
            sock.stop()
            worker.join(timeout=5.0)

    def __call__(self, emulator: Any, ws: Any, query: Mapping[str, List[str]]) -> None:
        """The emulator's socket-route handler form of :meth:`serve`."""
        self.serve(ws, query)

    def _counted(self) -> None:
        with self._lock:
            self.generations += 1


def register(emulator: Any) -> TtsService:
    """Serve the TTS socket on a ``PalabraEmulator``, at its ``ws_tts_url`` and the fixed paths.

    Speech comes from the emulator's synthesizer (the one the translation
    socket speaks with).
    """

    def synthesize(text: str, language: str) -> Tuple[bytes, int]:
        synth = emulator.synthesizer()
        return synth.synthesize(text, language), int(synth.output.sample_rate)

    service = TtsService(
        synthesize,
        token_ok=emulator.token_ok,
        faults=lambda: faults_from(emulator.faults),
    )
    paths = {TTS_PATH, DOCS_TTS_PATH, urlsplit(emulator.ws_tts_url).path}
    emulator.add_socket_route("tts", lambda path: path in paths, service)
    return service


class _Cancelled(Exception):
    pass


class _TtsSocket:
    def __init__(self, service: TtsService, ws: WebSocketLike, faults: SocketFaults) -> None:
        self.service = service
        self.ws = ws
        self.faults = faults
        self.output: Optional[_Output] = None
        self.pending: Dict[str, List[str]] = {}
        self.jobs: queue.Queue[Optional[Tuple[int, str, str, _Output]]] = queue.Queue()
        self.epoch = 0  # cancel() moves it on; jobs of older epochs are dropped
        self.current = ""
        self.times: Deque[float] = collections.deque(maxlen=MESSAGE_RATE)
        self.frames = 0
        self.stalled = False
        self.closed = threading.Event()
        self._send_lock = threading.Lock()

    def send(self, message: str) -> None:
        if self.stalled:
            return
        with self._send_lock:
            self.ws.send(message)

    # -------------------------------------------------------------- reader
    def reader(self) -> None:
        if self.faults.close_after_frames == 0:
            self.ws.close(1008, "rate limit exceeded")
            return
        try:
            while True:
                frame = self.ws.recv()
                self.frames += 1
                if self._fault():
                    return
                self._handle(frame)
        except ConnectionClosed:
            return

    def _fault(self) -> bool:
        ended, stalled = self.faults.apply(self.frames, self.ws, self.send)
        self.stalled = self.stalled or stalled
        return ended

    def _handle(self, frame: Any) -> None:
        if not isinstance(frame, str):
            self.send(_error("BAD_REQUEST", "send JSON text frames (init, text, cancel)"))
            return
        try:
            message = json.loads(frame)
        except ValueError:
            self.send(_error("BAD_REQUEST", "a frame is not JSON"))
            return
        if not isinstance(message, dict):
            self.send(_error("BAD_REQUEST", "a frame is not a JSON object"))
            return
        with self.service._lock:
            self.service.received.append((time.monotonic(), message))
        kind = message.get("type")
        if kind == "init":
            self._init(message)
        elif kind == "text":
            self._text(message)
        elif kind == "cancel":
            self._cancel()
        else:
            self.send(_error("BAD_REQUEST", f"unknown type {kind!r}; use init, text or cancel"))

    def _init(self, message: Mapping[str, Any]) -> None:
        language = message.get("language")
        voice = message.get("voice_options")
        output = message.get("output") or {}
        problems = []
        if not isinstance(language, str) or not language:
            problems.append("language is required")
        if not isinstance(voice, Mapping) or not isinstance(voice.get("voice_id"), str):
            problems.append("voice_options.voice_id is required")
        if not isinstance(output, Mapping):
            problems.append("output must be an object")
            output = {}
        fmt = output.get("format", "mp3")
        rate = output.get("sample_rate", 24000)
        if fmt not in ("pcm", "wav", "mp3"):
            problems.append(f"output.format must be pcm, wav or mp3, got {fmt!r}")
        if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 48000:
            problems.append(
                f"output.sample_rate must be an integer from 8000 to 48000, got {rate!r}"
            )
        if problems:
            self.send(_error("VALIDATION_ERROR", "; ".join(problems)))
            return
        if fmt == "mp3" and not mp3_available():
            self.send(
                _error(
                    "VALIDATION_ERROR",
                    "this emulator cannot encode mp3 (the installed libsndfile lacks MP3 "
                    "support); ask for pcm or wav",
                )
            )
            return
        assert isinstance(voice, Mapping) and isinstance(language, str)
        self.output = _Output(language, str(voice["voice_id"]), str(fmt), int(rate))

    def _text(self, message: Mapping[str, Any]) -> None:
        now = time.monotonic()
        if len(self.times) == MESSAGE_RATE and now - self.times[0] < 1.0:
            self.send(
                _error(
                    "RATE_LIMIT_EXCEEDED",
                    f"more than {MESSAGE_RATE} text messages in a second; the message was dropped",
                )
            )
            return
        self.times.append(now)
        if self.output is None:
            self.send(_error("BAD_REQUEST", "send init before text"))
            return
        text = message.get("text")
        if not isinstance(text, str):
            self.send(_error("VALIDATION_ERROR", "text must be a string"))
            return
        if len(text) > self.service.text_limit:
            self.send(
                _error(
                    "VALIDATION_ERROR",
                    f"text is {len(text)} characters; at most {self.service.text_limit} "
                    "per message",
                )
            )
            return
        gid = message.get("generation_id")
        gid = str(gid) if gid not in (None, "") else (self.current or uuid.uuid4().hex)
        self.current = gid
        self.pending.setdefault(gid, []).append(text)
        if message.get("is_eos"):
            whole = "".join(self.pending.pop(gid)).strip()
            self.current = ""
            self.jobs.put((self.epoch, gid, whole, self.output))

    def _cancel(self) -> None:
        self.epoch += 1
        for gid in list(self.pending):
            self.send(_chunk(b"", gid, True, None, None))
        self.pending.clear()
        self.current = ""

    def stop(self) -> None:
        self.closed.set()
        self.jobs.put(None)

    # -------------------------------------------------------------- worker
    def worker(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                epoch, gid, text, output = job
                try:
                    if epoch == self.epoch:
                        self._generate(epoch, gid, text, output)
                except _Cancelled:
                    pass
                except ConfigurationError as exc:  # e.g. no voice for the language
                    self.send(_error("VALIDATION_ERROR", str(exc)))
                if not self.closed.is_set():
                    self.send(_chunk(b"", gid, True, None, None))
        except ConnectionClosed:
            return
        except Exception:
            log.exception("the TTS emulator's synthesis failed")
            try:
                self.send(_error("SERVER_ERROR", "synthesis failed in the emulator"))
            except ConnectionClosed:
                pass

    def _generate(self, epoch: int, gid: str, text: str, output: _Output) -> None:
        if not text:
            return
        started = time.monotonic()
        pcm, rate = self.service.synthesizer(text, output.language)
        samples = _resample(pcm, rate, output.sample_rate)
        data, header = _encode(samples, output)
        self.service._counted()
        total = len(samples) / output.sample_rate
        bytes_per_second = len(data) / total if total else 1.0
        step = max(1, int(bytes_per_second * CHUNK_SECONDS))
        if output.format == "pcm":
            step -= step % 2
        t0 = time.monotonic()
        sent = 0.0
        pos = 0
        first = True
        while pos < len(data):
            if epoch != self.epoch or self.closed.is_set():
                raise _Cancelled
            end = min(len(data), pos + step + (header if first else 0))
            piece = data[pos:end]
            seconds = (len(piece) - (header if first else 0)) / bytes_per_second
            delta = int((time.monotonic() - started) * 1000)
            self.send(_chunk(piece, gid, False, delta, round(seconds, 4)))
            pos, first = end, False
            sent += seconds
            if self.service.realtime:
                ahead = sent - (time.monotonic() - t0)
                if ahead > LEAD_SECONDS:
                    self.closed.wait(ahead - LEAD_SECONDS)
