"""Conversion between audio formats: encoding, channels and sample rate.

Every conversion goes through one intermediate form, a float32 array of
shape ``(frames, channels)`` with samples in [-1.0, 1.0]:

1. decode the source bytes (``pcm_s16le`` divides by 32768, G.711 is decoded
   to 16-bit first, ``pcm_f32le`` is read as is);
2. change the channel count: down-mix to mono is the mean of the channels,
   up-mix from mono duplicates it, any other change down-mixes to mono and
   then duplicates;
3. resample with soxr (a streaming resampler that keeps its filter state
   between chunks, so chunk boundaries leave no clicks);
4. clip to [-1.0, 1.0] and encode to the target.

Integer formats survive a round trip through the float form exactly, so
converting ``pcm_s16le`` to G.711 and back loses only the G.711
quantisation.

Examples
--------
Streaming, chunk by chunk::

    conv = Converter(AudioFormat(48000, 2, "pcm_s16le"), conn.input_format)
    for block in blocks:
        conn.send(conv.process(block))
    conn.send(conv.flush())

One shot::

    ulaw = convert(pcm, AudioFormat(16000, 1), AudioFormat(8000, 1, "mulaw"))
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from voxsync.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxsync.errors import AudioFormatError, ConfigurationError
from voxsync.format import AudioFormat

__all__ = ["Converter", "convert", "from_float32", "level", "to_float32"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

_S16_SCALE = 32768.0


def _byte_view(data: object, fmt: AudioFormat) -> memoryview:
    """A flat byte view of bytes-like ``data``, or AudioFormatError naming ``fmt``."""
    if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview, np.ndarray)):
        raise AudioFormatError(
            f"audio must be bytes-like ({fmt.describe()}), got {type(data).__name__}; "
            "convert arrays with .tobytes()"
        )
    try:
        view = memoryview(data)  # type: ignore[arg-type]
        if view.c_contiguous:
            return view.cast("B") if view.format != "B" or view.ndim != 1 else view
    except (TypeError, ValueError) as exc:  # e.g. a released view, a dtype with no buffer format
        raise AudioFormatError(f"audio must be bytes-like ({fmt.describe()}): {exc}") from exc
    raise AudioFormatError(f"audio buffer must be contiguous ({fmt.describe()}); pass bytes(data)")


def _check_frames(nbytes: int, fmt: AudioFormat) -> None:
    if nbytes % fmt.frame_size:
        raise AudioFormatError(
            f"got {nbytes} bytes, not a whole number of {fmt.frame_size}-byte frames "
            f"of {fmt.describe()}"
        )


def level(data: Any, fmt: Optional[AudioFormat]) -> float:
    """RMS level of a chunk of audio: 0.0 is silence (or no audio), 1.0 full scale.

    ``level(conn.last_chunk, conn.input_format)`` is the input level of a
    connection, as the notebook view and ``voxsync listen`` show it.
    """
    if fmt is None or not len(data):
        return 0.0
    samples = to_float32(data, fmt)
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def to_float32(data: Any, fmt: AudioFormat) -> FloatArray:
    """Decode raw audio bytes to float32 samples.

    Parameters
    ----------
    data : bytes-like
        Whole frames of audio in ``fmt``.
    fmt : AudioFormat
        What ``data`` contains.

    Returns
    -------
    ndarray of float32, shape (frames, channels)
        Samples scaled to [-1.0, 1.0] (``pcm_f32le`` input is returned as
        is, NaN replaced by 0).

    Raises
    ------
    AudioFormatError
        If ``data`` is not bytes-like or not a whole number of frames.
    """
    view = _byte_view(data, fmt)
    _check_frames(len(view), fmt)
    enc = fmt.encoding
    if enc == "pcm_s16le":
        out = np.frombuffer(view, dtype="<i2").astype(np.float32) / np.float32(_S16_SCALE)
    elif enc == "pcm_f32le":
        out = np.nan_to_num(np.frombuffer(view, dtype="<f4").astype(np.float32))
    elif enc == "mulaw":
        out = ulaw_decode(np.frombuffer(view, dtype=np.uint8)).astype(np.float32)
        out /= np.float32(_S16_SCALE)
    else:  # alaw
        out = alaw_decode(np.frombuffer(view, dtype=np.uint8)).astype(np.float32)
        out /= np.float32(_S16_SCALE)
    result: FloatArray = out.reshape(-1, fmt.channels)
    return result


def from_float32(samples: npt.ArrayLike, fmt: AudioFormat) -> bytes:
    """Encode float samples in [-1.0, 1.0] to raw bytes of ``fmt``.

    Values outside the range are clipped (no wrap-around), NaN becomes 0.

    Parameters
    ----------
    samples : array of float
        Shape ``(frames, channels)``, or ``(frames,)`` for mono.
    fmt : AudioFormat
        Target format; its channel count must match the array's.

    Returns
    -------
    bytes

    Raises
    ------
    AudioFormatError
        If the array's shape does not match ``fmt.channels``.
    """
    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != fmt.channels:
        raise AudioFormatError(
            f"samples of shape {arr.shape} do not fit {fmt.describe()}; expected (frames, channels)"
        )
    arr = np.clip(np.nan_to_num(arr), -1.0, 1.0)
    if fmt.encoding == "pcm_f32le":
        return bytes(arr.astype("<f4").tobytes())
    pcm = np.clip(np.rint(arr * np.float32(_S16_SCALE)), -32768, 32767).astype(np.int16)
    if fmt.encoding == "pcm_s16le":
        return bytes(pcm.astype("<i2").tobytes())
    if fmt.encoding == "mulaw":
        return bytes(ulaw_encode(pcm).tobytes())
    return bytes(alaw_encode(pcm).tobytes())


def _mix(samples: FloatArray, channels: int) -> FloatArray:
    """Change the channel count of ``(frames, n)`` samples to ``channels``."""
    have = samples.shape[1]
    if have == channels:
        return samples
    mono = samples if have == 1 else samples.mean(axis=1, keepdims=True, dtype=np.float32)
    if channels == 1:
        return mono
    return np.repeat(mono, channels, axis=1)


class Converter:
    """Streaming converter from one :class:`AudioFormat` to another.

    Feed chunks of any size to :meth:`process` and send what it returns; at
    the end call :meth:`flush` once for the resampler's tail. State (the
    resampler's filter and an incomplete frame at the end of a chunk) is kept
    between calls, so the output is the same however the input was split.

    A converter between identical formats is a pass-through that only checks
    and copies the bytes.

    Parameters
    ----------
    src : AudioFormat
        What :meth:`process` receives.
    dst : AudioFormat
        What it returns.
    quality : str, optional
        soxr quality, one of ``"QQ"``, ``"LQ"``, ``"MQ"``, ``"HQ"`` (default)
        or ``"VHQ"``.

    Raises
    ------
    ConfigurationError
        If ``src`` or ``dst`` is not an AudioFormat, or ``quality`` is unknown.

    Notes
    -----
    Not thread-safe: use one converter per stream, from one thread at a time.
    The resampler delays its output by a few milliseconds; :meth:`flush`
    returns that tail, so nothing is lost.

    Examples
    --------
    >>> conv = Converter(AudioFormat(8000, 1, "mulaw"), AudioFormat(8000, 1, "pcm_s16le"))
    >>> conv.process(b"\\xff\\xff")
    b'\\x00\\x00\\x00\\x00'
    """

    def __init__(self, src: AudioFormat, dst: AudioFormat, *, quality: str = "HQ") -> None:
        for label, value in (("src", src), ("dst", dst)):
            if not isinstance(value, AudioFormat):
                raise ConfigurationError(
                    f"Converter {label} must be an AudioFormat, got {type(value).__name__}"
                )
        if quality not in ("QQ", "LQ", "MQ", "HQ", "VHQ"):
            raise ConfigurationError(
                f"unknown resampling quality {quality!r}; use QQ, LQ, MQ, HQ or VHQ"
            )
        self.src = src
        self.dst = dst
        self._passthrough = src == dst
        self._pending = b""
        self._resample_channels = src.channels if src.channels == dst.channels else 1
        self._resampler: Optional[Any] = None
        if src.sample_rate != dst.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(
                src.sample_rate,
                dst.sample_rate,
                self._resample_channels,
                dtype="float32",
                quality=quality,
            )
        self._flushed = False

    def __repr__(self) -> str:
        return f"<Converter {self.src} -> {self.dst}>"

    @property
    def passthrough(self) -> bool:
        """True when source and target formats are the same."""
        return self._passthrough

    def process(self, data: Any) -> bytes:
        """Convert one chunk.

        Parameters
        ----------
        data : bytes-like
            Audio in :attr:`src`. A trailing incomplete frame is kept for the
            next call.

        Returns
        -------
        bytes
            Audio in :attr:`dst`; may be empty (the resampler fills its
            filter first) and its duration may differ slightly from the
            input's for the same reason.

        Raises
        ------
        AudioFormatError
            If ``data`` is not bytes-like.
        """
        view = _byte_view(data, self.src)
        if self._flushed:
            self._reset()
        if not len(view):
            return b""
        frame = self.src.frame_size
        if self._pending:
            buf = self._pending + view.tobytes()
        elif len(view) % frame == 0 and self._passthrough:
            return view.tobytes()
        else:
            buf = view.tobytes()
        whole = len(buf) - len(buf) % frame
        self._pending = buf[whole:]
        if not whole:
            return b""
        if self._passthrough:
            return buf[:whole]
        return self._convert(buf[:whole], last=False)

    def flush(self) -> bytes:
        """End of the stream: return the resampler's remaining output.

        The converter can be used again afterwards for a new stream.

        Raises
        ------
        AudioFormatError
            If an incomplete frame was left over (the stream ended in the
            middle of a frame; the bytes are named in the message).
        """
        pending, self._pending = self._pending, b""
        if pending:
            self._reset()
            raise AudioFormatError(
                f"stream ended with {len(pending)} stray bytes, not a whole "
                f"{self.src.frame_size}-byte frame of {self.src.describe()}"
            )
        if self._resampler is None or self._flushed:
            self._flushed = True
            return b""
        out = self._convert(b"", last=True)
        self._flushed = True
        return out

    def _reset(self) -> None:
        self._pending = b""
        self._flushed = False
        if self._resampler is not None:
            self._resampler.clear()

    def _convert(self, data: bytes, *, last: bool) -> bytes:
        samples = to_float32(data, self.src)
        samples = _mix(samples, self._resample_channels)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(
                np.ascontiguousarray(samples, dtype=np.float32), last=last
            )
            if samples.ndim == 1:
                samples = samples.reshape(-1, self._resample_channels)
        if not len(samples):
            return b""
        samples = _mix(samples, self.dst.channels)
        return from_float32(samples, self.dst)


def convert(data: Any, src: AudioFormat, dst: AudioFormat) -> bytes:
    """Convert a complete piece of audio from ``src`` to ``dst``.

    Parameters
    ----------
    data : bytes-like
        Whole frames of audio in ``src``.
    src, dst : AudioFormat

    Returns
    -------
    bytes
        Audio in ``dst``.

    Raises
    ------
    AudioFormatError
        If ``data`` is not bytes-like or not a whole number of frames of
        ``src``.
    """
    conv = Converter(src, dst)
    view = _byte_view(data, src)
    _check_frames(len(view), src)
    return conv.process(view) + conv.flush()
