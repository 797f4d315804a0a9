"""Playback of received speech: :class:`SpeakerStream`.

A bounded jitter buffer sits between the events that bring audio
(:class:`~voxsync.events.AudioChunk`, Palabra's ``Audio``) and PortAudio.
:meth:`SpeakerStream.play` converts each chunk to the device's format and
appends it; PortAudio's callback only copies from the buffer (or silence).
Underruns (the buffer ran dry in the middle of a sentence) and overflows
(audio dropped because the buffer was full) are counted and reported.

Example
-------
::

    with palabra.translation(source="en", targets=["es"]) as session, \\
            SpeakerStream(samplerate=24000) as speaker:
        speaker.play_from(session)          # or session.on("audio", speaker.play)
        ...
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from types import TracebackType
from typing import Any, Dict, Optional, Type, Union

from voxsync.audio.convert import Converter
from voxsync.audio.format import AudioFormat
from voxsync.audio.microphone import _sounddevice
from voxsync.errors import ConfigurationError, DeviceError

__all__ = ["SpeakerStream"]

logger = logging.getLogger(__name__)

_counter = itertools.count(1)
_POLL = 0.02


class SpeakerStream:
    """Play audio chunks on an output device, through a bounded jitter buffer.

    Parameters
    ----------
    samplerate : int
        The device's rate (default 24000, what Palabra sends).
    channels : int
        The device's channels (default 1).
    device : int or str or None
        Output device index or a unique part of its name; default: the
        system's default output.
    buffer_seconds : float
        Capacity of the jitter buffer. When a chunk does not fit, the oldest
        audio is dropped and counted in :attr:`overflows`.
    prebuffer : float
        Seconds of audio to collect before playback starts (and restarts
        after the buffer ran dry), absorbing network jitter.
    latency : {"low", "high"} or float
        PortAudio's output latency.
    mute_hangover : float
        With :meth:`mute_while_playing`: seconds the microphone stays muted
        after the last sample played (room echo).

    Attributes
    ----------
    audio_format : AudioFormat
        What the device plays (PCM s16le).
    underruns : int
        Times the buffer ran dry before a sentence's last chunk arrived.
    overflows : int
        Chunks (or parts) dropped because the buffer was full.
    played_bytes : int
        Bytes handed to the device (silence not counted).

    Notes
    -----
    :meth:`play` may be called from any thread (typically a connection's
    dispatcher thread); the PortAudio callback runs on PortAudio's own thread
    and only copies bytes.
    """

    def __init__(
        self,
        samplerate: int = 24000,
        channels: int = 1,
        device: Optional[Any] = None,
        *,
        buffer_seconds: float = 5.0,
        prebuffer: float = 0.1,
        latency: Any = "low",
        mute_hangover: float = 0.3,
    ) -> None:
        self.audio_format = AudioFormat(samplerate, channels, "pcm_s16le")
        if not buffer_seconds > 0:
            raise ConfigurationError(f"buffer_seconds must be > 0, got {buffer_seconds!r}")
        if not 0 <= prebuffer < buffer_seconds:
            raise ConfigurationError("prebuffer must be >= 0 and smaller than buffer_seconds")
        self.device = device
        self.latency = latency
        self.number = next(_counter)
        self._capacity = self.audio_format.nbytes(buffer_seconds)
        self._prebuffer = self.audio_format.nbytes(prebuffer)
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._priming = True  # collecting the prebuffer
        self._expecting = False  # a sentence is in progress (its last chunk not yet queued)
        self._converters: Dict[AudioFormat, Converter] = {}
        self._stream: Optional[Any] = None
        self._mic: Optional[Any] = None
        self._mute_hangover = mute_hangover
        self._unmute_at: Optional[float] = None
        self.underruns = 0
        self.overflows = 0
        self.played_bytes = 0
        self.output_underflows = 0

    def __repr__(self) -> str:
        state = "running" if self._stream is not None else "stopped"
        return f"<SpeakerStream {self.number} {self.audio_format} {state}>"

    # ------------------------------------------------------------ lifecycle
    @property
    def active(self) -> bool:
        """True while the device is open."""
        return self._stream is not None

    @property
    def buffered(self) -> float:
        """Seconds of audio waiting in the jitter buffer."""
        with self._lock:
            return self.audio_format.duration(len(self._buf))

    def start(self) -> SpeakerStream:
        """Open the device and start the callback (idempotent).

        Raises
        ------
        DeviceError
            PortAudio is missing, or the device cannot be opened.
        """
        if self._stream is not None:
            return self
        sd = _sounddevice()
        stream = None
        try:
            stream = sd.RawOutputStream(
                samplerate=self.audio_format.sample_rate,
                channels=self.audio_format.channels,
                dtype="int16",
                device=self.device,
                latency=self.latency,
                callback=self._callback,
            )
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            if stream is not None:  # opened but not started: do not leave it open
                stream.close(ignore_errors=True)
            raise DeviceError(
                f"cannot open output device {self.device!r} for {self.audio_format}: {exc}"
            ) from exc
        self._stream = stream
        logger.debug("speaker %d started: %s", self.number, self.audio_format)
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Play what is queued (bounded by ``timeout``), then close the device.

        Returns
        -------
        bool
            True if everything queued was played, False if ``timeout`` cut it.
        """
        deadline = time.monotonic() + timeout
        done = True
        with self._lock:
            self._priming = False  # play a short tail below the prebuffer too
            while self._buf and self._stream is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    done = False
                    break
                self._drained.wait(min(_POLL * 5, left))
        stream = self._stream
        if done and stream is not None:
            # PortAudio's stop() returns once the device played what it holds
            finisher = threading.Thread(
                target=self._stop_stream, args=(stream,), name="voxsync-speaker-stop", daemon=True
            )
            finisher.start()
            finisher.join(max(0.0, deadline - time.monotonic()) + 0.5)
            done = not finisher.is_alive()
        self.close()
        return done

    def _stop_stream(self, stream: Any) -> None:
        try:
            stream.stop()
        except Exception:
            logger.debug("speaker %d: stopping the device failed", self.number, exc_info=True)

    def close(self) -> None:
        """Close the device at once; queued audio is discarded. Idempotent."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
            except Exception:
                logger.debug("speaker %d: aborting failed", self.number, exc_info=True)
            finally:
                stream.close(ignore_errors=True)
        with self._lock:
            discarded = len(self._buf)
            self._buf.clear()
            self._drained.notify_all()
        mic, self._mic = self._mic, None
        if mic is not None:
            mic.resume()
        if self.underruns or self.overflows:
            logger.warning(
                "speaker %d: %d underruns, %d overflows",
                self.number,
                self.underruns,
                self.overflows,
            )
        if discarded:
            logger.debug("speaker %d: %d queued bytes discarded", self.number, discarded)

    def __enter__(self) -> SpeakerStream:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.close()

    # ---------------------------------------------------------------- input
    def play(self, chunk: Union[bytes, bytearray, memoryview, Any]) -> None:
        """Queue audio for playback; returns at once.

        Parameters
        ----------
        chunk : bytes-like or audio event
            Raw PCM s16le in :attr:`audio_format`, or an event with ``pcm``
            and ``audio_format`` (``AudioChunk``, Palabra's ``Audio``), which
            is converted to the device's format. An event's ``last`` flag
            marks the end of a sentence (a pause after it is not an underrun).
        """
        pcm = getattr(chunk, "pcm", None)
        last = True
        if pcm is not None:
            src = getattr(chunk, "audio_format", self.audio_format)
            last = bool(getattr(chunk, "last", False))
            data = self._convert(bytes(pcm), src, last)
        else:
            data = bytes(self.audio_format.check(chunk))
        mic = self._mic
        if mic is not None and data:
            mic.pause()
        with self._lock:
            room = self._capacity - len(self._buf)
            if len(data) > room:
                drop = len(data) - room
                drop -= drop % self.audio_format.frame_size
                if drop >= len(self._buf):
                    self._buf.clear()
                    data = data[len(data) - self._capacity :]
                else:
                    del self._buf[:drop]
                self.overflows += 1
            self._buf += data
            self._expecting = not last
            self._unmute_at = None

    def _convert(self, pcm: bytes, src: AudioFormat, last: bool) -> bytes:
        if src == self.audio_format:
            return pcm
        conv = self._converters.get(src)
        if conv is None:
            conv = self._converters[src] = Converter(src, self.audio_format)
        out = conv.process(pcm)
        if last:
            out += conv.flush()
        return out

    def play_from(self, conn: Any) -> None:
        """Play every ``audio`` event of ``conn`` (``conn.on("audio", self.play)``)."""
        conn.on("audio", self.play)

    def mute_while_playing(self, mic: Any) -> None:
        """Pause ``mic`` (a :class:`~voxsync.audio.MicrophoneStream`) while speech plays.

        It is paused when audio is queued and resumed ``mute_hangover``
        seconds after the buffer ran dry, so a microphone-to-speaker
        translator does not translate its own output. ``None`` stops muting.
        """
        previous, self._mic = self._mic, mic
        if previous is not None and previous is not mic:
            previous.resume()

    # ------------------------------------------------------------- callback
    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy and return (flag flips only).
        if status:
            self.output_underflows += 1
        want = len(outdata)
        with self._lock:
            have = len(self._buf)
            was_priming = self._priming
            if was_priming and have < self._prebuffer and (self._expecting or have == 0):
                n = 0
            else:
                self._priming = False
                n = min(want, have)
            if n:
                outdata[:n] = self._buf[:n]
                del self._buf[:n]
                self.played_bytes += n
            if n < want:
                outdata[n:] = b"\x00" * (want - n)
                if not was_priming or n:  # it was playing and ran dry
                    if self._expecting:
                        self.underruns += 1
                    self._priming = True
            if not self._buf:
                self._drained.notify_all()
                if self._mic is not None:
                    now = time.monotonic()
                    if self._unmute_at is None:
                        self._unmute_at = now + self._mute_hangover
                    elif now >= self._unmute_at:
                        self._mic.resume()
