"""Microphone capture with PortAudio (through sounddevice).

:class:`MicrophoneStream` opens an input device and hands its audio to one
consumer: a connection (:meth:`~MicrophoneStream.stream_to`), a function of
yours (:meth:`~MicrophoneStream.stream_with_callback`) or your own loop
(:meth:`~MicrophoneStream.read`).

Threads: PortAudio runs the capture callback on its own real-time thread;
that callback only copies each block into a bounded buffer. A sender thread
owned by the stream (``voxsync-mic-<n>-sender``) converts the blocks and
calls ``conn.send()`` or your function, so nothing slow ever runs on the
audio thread. ``stop()`` delivers what is still buffered, then joins the
sender.

sounddevice is imported on first use, so ``import voxsync`` works on machines
without PortAudio; using a microphone there raises
:class:`~voxsync.errors.DeviceError` naming the package to install.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Deque, List, Optional, Type

from voxsync.audio.convert import Converter
from voxsync.audio.sink import AudioSink, sink_format
from voxsync.errors import (
    ConfigurationError,
    DeviceError,
    DisconnectedError,
    LocalProtocolError,
    QueueFullError,
    TimeoutError,
)
from voxsync.events import StreamWarning
from voxsync.format import AudioFormat

__all__ = ["InputDevice", "MicrophoneStream", "list_devices"]

logger = logging.getLogger(__name__)

_DTYPES = {"int16": "pcm_s16le", "float32": "pcm_f32le"}

#: Seconds of audio the buffer holds by default (between PortAudio and the sender).
_DEFAULT_BUFFER_SECONDS = 10.0

_PORTAUDIO_FIX = (
    "install PortAudio: `apt-get install libportaudio2` (Debian/Ubuntu), "
    "`dnf install portaudio` (Fedora) or `brew install portaudio` (macOS)"
)

_counter = itertools.count(1)


#: Ends the message of a device that cannot be opened (the command line
#: replaces it with its own hint).
LIST_DEVICES_HINT = "; voxsync.audio.list_devices() lists the input devices"


def _open_failure(device: Any, audio_format: AudioFormat, exc: BaseException) -> str:
    """One sentence for an input device PortAudio refused to open."""
    text = str(exc)
    if device is None:
        what = "the default input device"
        if "device -1" in text:  # PortAudio has no default input device
            text = "there is none; connect a microphone or choose a device"
    else:
        what = f"input device {device!r}"
        if "Error querying device" in text or "No input device matching" in text:
            text = "there is no such input device"
    return f"cannot open {what} for {audio_format}: {text}{LIST_DEVICES_HINT}"


def _sounddevice() -> Any:
    """Import sounddevice, or raise DeviceError saying what to install."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise DeviceError(f"PortAudio library not found ({exc}); {_PORTAUDIO_FIX}") from exc
    except ImportError as exc:
        raise DeviceError(
            f"the sounddevice package is not installed ({exc}); `pip install sounddevice`"
        ) from exc
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """An audio input device as listed by :func:`list_devices`.

    Attributes
    ----------
    index : int
        PortAudio device index; pass it as ``MicrophoneStream(device=...)``.
    name : str
        Device name (a unique part of it also works as ``device=``).
    channels : int
        Maximum input channels.
    default_samplerate : float
        The device's preferred rate in Hz.
    hostapi : str
        Host audio API (ALSA, Core Audio, MME, ...).
    is_default : bool
        True for the default input device.
    """

    index: int
    name: str
    channels: int
    default_samplerate: float
    hostapi: str = ""
    is_default: bool = False

    def __str__(self) -> str:
        mark = "*" if self.is_default else " "
        return (
            f"{mark} {self.index}: {self.name} ({self.hostapi}, {self.channels} in, "
            f"{self.default_samplerate:g} Hz)"
        )


def list_devices() -> List[InputDevice]:
    """List the audio input devices PortAudio can see.

    Returns
    -------
    list of InputDevice
        Devices with at least one input channel, by index.

    Raises
    ------
    DeviceError
        PortAudio is not installed (the message names the package) or fails.

    Examples
    --------
    >>> for dev in list_devices():  # doctest: +SKIP
    ...     print(dev)
    * 1: default (ALSA, 32 in, 44100 Hz)
    """
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from exc
    if not isinstance(default_in, int) or default_in < 0:
        try:
            default_in = int(sd.query_devices(kind="input")["index"])
        except (sd.PortAudioError, ValueError, KeyError, TypeError):
            default_in = -1
    found = []
    for index, dev in enumerate(devices):
        if int(dev["max_input_channels"]) <= 0:
            continue
        api = hostapis[dev["hostapi"]]["name"] if 0 <= dev["hostapi"] < len(hostapis) else ""
        found.append(
            InputDevice(
                index=index,
                name=str(dev["name"]),
                channels=int(dev["max_input_channels"]),
                default_samplerate=float(dev["default_samplerate"]),
                hostapi=str(api),
                is_default=index == default_in,
            )
        )
    return found


class _BlockBuffer:
    """Bounded FIFO of captured blocks; ``put`` never blocks (the audio thread calls it)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._blocks: Deque[bytes] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self.dropped = 0

    def put(self, block: bytes) -> bool:
        with self._cond:
            if len(self._blocks) >= self.maxsize:
                self.dropped += 1
                return False
            self._blocks.append(block)
            self._cond.notify()
            return True

    def get(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """Next block; None once closed and empty. Raises TimeoutError on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._blocks:
                if self._closed:
                    return None
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no microphone audio within {timeout} s")
                self._cond.wait(remaining)
            return self._blocks.popleft()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    def __len__(self) -> int:
        return len(self._blocks)


class MicrophoneStream:
    """Live audio from a microphone, for a connection or your own code.

    Parameters
    ----------
    channels : int, optional
        Channels to capture (default 1).
    samplerate : int, optional
        Capture rate in Hz (default 16000). The device (or the sound server)
        resamples if it runs at another rate.
    blocksize : int, optional
        Frames per captured block (default 4096: 256 ms at 16 kHz). Smaller
        blocks lower the latency; 0 lets PortAudio choose.
    dtype : {"int16", "float32"}, optional
        Sample type; the stream's :attr:`audio_format` is ``pcm_s16le`` or
        ``pcm_f32le`` accordingly.
    device : int or str, optional
        Input device index or a unique part of its name (see
        :func:`list_devices`); default: the system's default input.
    queue_size : int, optional
        Blocks buffered between the audio thread and the consumer; default
        about 10 seconds of audio. When it is full, newly captured blocks are
        dropped, counted in :attr:`dropped_blocks` and reported (a log warning
        and, with :meth:`stream_to`, a ``warning`` event with code
        ``"audio_dropped"`` on the connection).
    on_error : callable, optional
        ``on_error(exc)`` receives every exception raised while sending
        (``conn.send()``, conversion, your ``stream_with_callback``
        function). It runs on the sender thread; if it raises, that is
        logged and ignored. Without it the first error is kept and raised
        again by :meth:`stop` (or ``__exit__``), and with :meth:`stream_to`
        it is also emitted as an ``error`` event on the connection.
    latency : {"high", "low"} or float, optional
        PortAudio's input latency. The default ``"high"`` gives the device
        larger buffers, so a busy machine does not lose audio; the added
        delay is a fraction of a second. Use ``"low"`` or seconds for
        interactive uses.

    Attributes
    ----------
    audio_format : AudioFormat
        Format of the captured audio (and of what :meth:`read` returns).
    dropped_blocks : int
        Blocks lost because the buffer was full.

    Raises
    ------
    ConfigurationError
        For an invalid argument.

    Notes
    -----
    One consumer at a time: :meth:`stream_to`, :meth:`stream_with_callback`
    or :meth:`read`.

    Examples
    --------
    ::

        with conn, MicrophoneStream(channels=1, samplerate=16000, blocksize=4096) as mic:
            mic.stream_to(conn)        # converted to conn.input_format
            conn.wait(30)
    """

    def __init__(
        self,
        channels: int = 1,
        samplerate: int = 16000,
        blocksize: int = 4096,
        dtype: str = "int16",
        device: Optional[Any] = None,
        *,
        queue_size: Optional[int] = None,
        on_error: Optional[Callable[[BaseException], Any]] = None,
        latency: Any = "high",
    ) -> None:
        if dtype not in _DTYPES:
            raise ConfigurationError(f"dtype must be 'int16' or 'float32', got {dtype!r}")
        if isinstance(samplerate, float) and float(samplerate).is_integer():
            samplerate = int(samplerate)
        self.audio_format = AudioFormat(samplerate, channels, _DTYPES[dtype])
        if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize < 0:
            raise ConfigurationError(f"blocksize must be an int >= 0 frames, got {blocksize!r}")
        if queue_size is None:
            per_block = blocksize or 1024
            queue_size = max(8, int(_DEFAULT_BUFFER_SECONDS * samplerate / per_block) + 1)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigurationError(f"queue_size must be a positive int, got {queue_size!r}")
        if on_error is not None and not callable(on_error):
            raise ConfigurationError("on_error must be a callable taking the exception")
        self.channels = channels
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.dtype = dtype
        self.device = device
        self.on_error = on_error
        self.latency = latency
        self.number = next(_counter)
        self._buffer = _BlockBuffer(queue_size)
        self._lock = threading.RLock()
        self._stream: Optional[Any] = None
        self._started = False
        self._paused = False
        self._accepting = True
        self._sender: Optional[threading.Thread] = None
        self._target: Optional[AudioSink] = None
        self._error: Optional[BaseException] = None
        self._reported_drops = 0
        #: PortAudio input overflows (the device delivered faster than the callback ran).
        self.input_overflows = 0

    def __repr__(self) -> str:
        state = "running" if self._stream is not None else "stopped"
        return (
            f"<MicrophoneStream {self.number} {self.audio_format} device={self.device!r} {state}>"
        )

    # ----------------------------------------------------------- properties
    @property
    def active(self) -> bool:
        """True while the device is open and capturing."""
        return self._stream is not None

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused

    @property
    def dropped_blocks(self) -> int:
        """Captured blocks dropped because the buffer was full."""
        return self._buffer.dropped

    @property
    def queue_size(self) -> int:
        """Capacity of the block buffer."""
        return self._buffer.maxsize

    # ------------------------------------------------------------ lifecycle
    def start(self) -> MicrophoneStream:
        """Open the device and start capturing (idempotent).

        Returns
        -------
        MicrophoneStream
            ``self``.

        Raises
        ------
        DeviceError
            PortAudio is missing (the message says what to install), or the
            device cannot be opened with these settings.
        """
        with self._lock:
            if self._stream is not None:
                return self
            sd = _sounddevice()
            self._buffer.reopen()
            self._accepting = True
            try:
                stream = sd.RawInputStream(
                    samplerate=self.samplerate,
                    blocksize=self.blocksize,
                    device=self.device,
                    channels=self.channels,
                    dtype=self.dtype,
                    latency=self.latency,
                    callback=self._callback,
                )
            except (sd.PortAudioError, ValueError) as exc:
                raise DeviceError(_open_failure(self.device, self.audio_format, exc)) from exc
            try:
                stream.start()
            except sd.PortAudioError as exc:
                stream.close(ignore_errors=True)
                raise DeviceError(f"cannot start input device {self.device!r}: {exc}") from exc
            self._stream = stream
            self._started = True
            logger.debug("microphone %d started: %s", self.number, self.audio_format)
        return self

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy and return, nothing else.
        if status:
            self.input_overflows += 1
        if self._paused or not self._accepting:
            return
        self._buffer.put(bytes(indata))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop capturing, deliver the buffered tail, end the sender thread.

        The device is closed first; blocks still buffered are then sent (or
        passed to your function) and the converter flushed, so the end of
        what was said is not lost. Idempotent.

        Parameters
        ----------
        timeout : float, optional
            Longest wait, in seconds, for the sender to deliver the tail.

        Raises
        ------
        Exception
            Without ``on_error``: the first error the sender met (e.g.
            :class:`~voxsync.errors.DisconnectedError` from ``conn.send()``,
            or what your ``stream_with_callback`` function raised). It is
            raised once.
        """
        self._stop(timeout)
        error, self._error = self._error, None
        if error is not None:
            raise error

    close = stop

    def _stop(self, timeout: float) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            sender, self._sender = self._sender, None
            self._target = None
        if stream is not None:
            try:
                stream.stop()  # returns after the last callback ran
            except Exception:
                logger.debug(
                    "microphone %d: stopping the device failed", self.number, exc_info=True
                )
            finally:
                stream.close(ignore_errors=True)
            logger.debug("microphone %d stopped", self.number)
        self._buffer.close()
        if sender is not None and sender is not threading.current_thread():
            sender.join(timeout)
            if sender.is_alive():
                logger.warning(
                    "microphone %d: sender did not finish the tail within %.1f s; "
                    "it ends when its current send() returns",
                    self.number,
                    timeout,
                )
        if self.input_overflows:
            logger.debug(
                "microphone %d: %d input overflows reported by PortAudio",
                self.number,
                self.input_overflows,
            )

    def __enter__(self) -> MicrophoneStream:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is None:
            self.stop()
            return
        try:
            self.stop()
        except Exception:  # do not mask the exception already in flight
            logger.error("microphone %d: error while stopping", self.number, exc_info=True)

    def pause(self) -> None:
        """Mute: keep the device open but stop delivering audio.

        Audio captured while paused is not buffered or sent (the consumer
        simply receives nothing, and nothing is counted as dropped); audio
        captured before the call is still delivered. Services that close
        idle streams may time out during a long pause.
        """
        self._paused = True

    def resume(self) -> None:
        """Undo :meth:`pause`: deliver captured audio again."""
        self._paused = False

    # ------------------------------------------------------------ consumers
    def read(self, timeout: Optional[float] = None) -> bytes:
        """Return the next captured block (raw, in :attr:`audio_format`).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; None waits until a block arrives.

        Returns
        -------
        bytes
            One block; ``b""`` once the stream was stopped and every
            buffered block was read.

        Raises
        ------
        LocalProtocolError
            Before :meth:`start`, or while :meth:`stream_to` /
            :meth:`stream_with_callback` is consuming the audio.
        TimeoutError
            No block within ``timeout``.
        """
        if self._sender is not None:
            raise LocalProtocolError(
                "read() while stream_to()/stream_with_callback() consumes this microphone"
            )
        if not self._started:
            raise LocalProtocolError("read() before start(); use `with MicrophoneStream() as mic:`")
        block = self._buffer.get(timeout)
        return b"" if block is None else block

    def stream_to(self, conn: AudioSink) -> threading.Thread:
        """Send the microphone's audio to a connection, converted to ``conn.input_format``.

        Starts the device if needed and connects ``conn`` if it is still
        idle. A sender thread (``voxsync-mic-<n>-sender``) converts each
        block and calls ``conn.send()`` until :meth:`stop`, which delivers
        the buffered tail.

        Parameters
        ----------
        conn : AudioSink
            Any voxsync connection (or another :class:`~voxsync.audio.AudioSink`).

        Returns
        -------
        threading.Thread
            The sender thread (joined by :meth:`stop`).

        Raises
        ------
        ConfigurationError
            ``conn`` is not an audio sink, or takes text, not audio.
        LocalProtocolError
            If the stream already has a consumer (``stream_to`` twice).
        DeviceError
            The device cannot be opened.

        Notes
        -----
        Errors of ``conn.send()`` go to ``on_error`` on the sender thread;
        without ``on_error`` they are emitted as ``error`` events on ``conn``
        and the first is raised again by :meth:`stop`. A failed connection
        (``DisconnectedError``) ends the sending; its ``error`` event comes
        from the connection itself. If ``conn`` was closed or finished by its
        owner, sending ends quietly (the unsent rest is logged).

        Examples
        --------
        ::

            with MicrophoneStream(channels=1, samplerate=16000, blocksize=4096) as mic:
                mic.stream_to(connection)
                connection.wait(60)
        """
        fmt = sink_format(conn, "stream_to()")
        converter = Converter(self.audio_format, fmt)
        with self._lock:
            self._claim("stream_to()")
            self._target = conn
        try:
            # connecting can take seconds: not under the lock, which stop() needs
            if conn.state == "idle":
                conn.connect()
            with self._lock:
                if self._target is not conn:  # stop() ran while we were connecting
                    raise LocalProtocolError("stream_to(): the microphone was stopped meanwhile")
                self.start()
                return self._start_sender(lambda: self._send_loop(conn, converter))
        except BaseException:
            with self._lock:
                self._target = None
            raise

    def stream_with_callback(self, fn: Callable[[bytes], Any]) -> threading.Thread:
        """Pass every captured block to ``fn(block)`` on the stream's sender thread.

        Parameters
        ----------
        fn : callable
            Receives raw blocks in :attr:`audio_format`. It runs on the
            sender thread (``voxsync-mic-<n>-sender``), one call at a time,
            never on PortAudio's thread, so it may block (the buffer absorbs
            up to ``queue_size`` blocks). If it raises, delivery ends and the
            exception goes to ``on_error``, or is raised by :meth:`stop`.

        Returns
        -------
        threading.Thread
            The sender thread.

        Raises
        ------
        LocalProtocolError
            If the stream already has a consumer.

        Examples
        --------
        ::

            with MicrophoneStream() as mic:
                mic.stream_with_callback(wav_file.writeframes)
                time.sleep(5)
        """
        if not callable(fn):
            raise ConfigurationError("stream_with_callback() needs a callable taking bytes")
        with self._lock:
            self._claim("stream_with_callback()")
            self.start()
            return self._start_sender(lambda: self._callback_loop(fn))

    def _claim(self, what: str) -> None:
        if self._sender is not None or self._target is not None:
            raise LocalProtocolError(
                f"{what}: this microphone already streams to a consumer; stop() it first "
                "or open another MicrophoneStream"
            )

    def _start_sender(self, target: Callable[[], None]) -> threading.Thread:
        self._reported_drops = self._buffer.dropped
        thread = threading.Thread(
            target=target, name=f"voxsync-mic-{self.number}-sender", daemon=True
        )
        self._sender = thread
        thread.start()
        return thread

    # ---------------------------------------------------------- sender side
    def _send_loop(self, conn: AudioSink, converter: Converter) -> None:
        try:
            while True:
                block = self._buffer.get()
                self._report_drops(conn)
                if block is None:
                    break
                data = converter.process(block)
                if data:
                    self._send(conn, data)
            tail = converter.flush()
            if tail:
                self._send(conn, tail)
        except LocalProtocolError as exc:  # closed or finished by its owner
            unsent = sum(len(b) for b in self._drain())
            logger.warning(
                "microphone %d: %s; stopped sending (%d more bytes of captured audio not sent)",
                self.number,
                exc,
                unsent,
            )
        except DisconnectedError as exc:  # the connection failed and reported it itself
            self._drain()
            self._error_occurred(exc, None)
        except Exception as exc:
            self._drain()
            self._error_occurred(exc, conn)
        finally:
            self._accepting = False

    def _send(self, conn: AudioSink, data: bytes) -> None:
        try:
            conn.send(data)
        except (QueueFullError, TimeoutError) as exc:
            # The connection could not take this chunk; the stream goes on.
            self._error_occurred(exc, conn)

    def _callback_loop(self, fn: Callable[[bytes], Any]) -> None:
        try:
            while True:
                block = self._buffer.get()
                self._report_drops(None)
                if block is None:
                    return
                fn(block)
        except Exception as exc:
            self._drain()
            self._error_occurred(exc, None)
        finally:
            self._accepting = False

    def _drain(self) -> List[bytes]:
        self._accepting = False
        blocks = []
        while len(self._buffer):
            try:
                block = self._buffer.get(0)
            except TimeoutError:
                break
            if block is None:
                break
            blocks.append(block)
        return blocks

    def _report_drops(self, conn: Optional[AudioSink]) -> None:
        dropped = self._buffer.dropped
        if dropped == self._reported_drops:
            return
        new = dropped - self._reported_drops
        self._reported_drops = dropped
        message = (
            f"microphone buffer full: dropped {new} captured blocks ({dropped} so far); "
            "the consumer is slower than real time"
        )
        logger.warning("microphone %d: %s", self.number, message)
        if conn is not None:
            conn.report_warning(StreamWarning("audio_dropped", message, dropped))

    def _error_occurred(self, exc: BaseException, conn: Optional[AudioSink]) -> None:
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:
                logger.exception("microphone %d: on_error raised", self.number)
            return
        logger.error("microphone %d: %s: %s", self.number, type(exc).__name__, exc)
        if self._error is None:
            self._error = exc
        if conn is not None:
            conn.report_error(exc)
