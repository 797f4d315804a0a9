"""Audio format descriptions shared by connections, events and audio sources.

This module sits at the bottom of the import graph (it imports only
:mod:`voxsync.errors`), so events, metrics and connections can name audio
formats without importing the audio layer. ``voxsync.audio.format`` and
``voxsync.audio`` re-export the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Union

from voxsync.errors import AudioFormatError, ConfigurationError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ENCODINGS", "AudioData", "AudioFormat"]

#: What ``send()`` takes: bytes-like audio or a numpy array (see :meth:`AudioFormat.to_bytes`).
AudioData = Union[bytes, bytearray, memoryview, "np.ndarray[Any, Any]"]

#: Supported encodings and their bytes per sample.
ENCODINGS: Dict[str, int] = {
    "pcm_s16le": 2,
    "pcm_f32le": 4,
    "mulaw": 1,
    "alaw": 1,
}


#: The numpy sample types each encoding takes as it is (see :meth:`AudioFormat.to_bytes`).
_ARRAY_TYPES: Dict[str, str] = {
    "pcm_s16le": "int16 (or float in -1..1)",
    "pcm_f32le": "float32 (or int16)",
    "mulaw": "uint8",
    "alaw": "uint8",
}


@dataclass(frozen=True)
class AudioFormat:
    """What a stream of raw audio bytes contains.

    Parameters
    ----------
    sample_rate : int
        Frames per second (8000, 16000, 24000, 44100, 48000, ...).
    channels : int
        Interleaved channels per frame.
    encoding : str
        One of ``"pcm_s16le"`` (16-bit signed little-endian), ``"pcm_f32le"``
        (32-bit float little-endian), ``"mulaw"`` or ``"alaw"`` (G.711,
        one byte per sample).

    Examples
    --------
    >>> fmt = AudioFormat(16000, 1, "pcm_s16le")
    >>> fmt.bytes_per_second
    32000
    >>> fmt.nbytes(0.1)
    3200
    """

    sample_rate: int = 16000
    channels: int = 1
    encoding: str = "pcm_s16le"

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ConfigurationError(
                f"unknown audio encoding {self.encoding!r}; use one of {', '.join(ENCODINGS)}"
            )
        if not isinstance(self.sample_rate, int) or not 1000 <= self.sample_rate <= 384000:
            raise ConfigurationError(
                f"sample_rate must be an int between 1000 and 384000 Hz, got {self.sample_rate!r}"
            )
        if not isinstance(self.channels, int) or not 1 <= self.channels <= 32:
            raise ConfigurationError(f"channels must be an int from 1 to 32, got {self.channels!r}")

    @property
    def sample_width(self) -> int:
        """Bytes per sample of one channel."""
        return ENCODINGS[self.encoding]

    @property
    def frame_size(self) -> int:
        """Bytes per frame (one sample of every channel)."""
        return self.sample_width * self.channels

    @property
    def bytes_per_second(self) -> int:
        """Bytes of one second of audio."""
        return self.frame_size * self.sample_rate

    def duration(self, nbytes: int) -> float:
        """Seconds of audio in ``nbytes`` bytes."""
        return nbytes / self.bytes_per_second

    def nbytes(self, seconds: float) -> int:
        """Bytes in ``seconds`` of audio, rounded down to whole frames."""
        return int(seconds * self.sample_rate) * self.frame_size

    def check(self, data: object) -> memoryview:
        """Validate that ``data`` is bytes-like and a whole number of frames.

        Returns
        -------
        memoryview
            A flat byte view of ``data`` (no copy).

        Raises
        ------
        AudioFormatError
            For non-bytes input, a view that is released or not
            C-contiguous, or a length that is not a multiple of
            :attr:`frame_size`; the message names this format.
        """
        if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
            raise AudioFormatError(
                f"audio must be bytes-like ({self.describe()}), got {type(data).__name__}; "
                "convert arrays with .tobytes() or use voxsync.audio.Converter"
            )
        view = self._byte_view(data)
        if len(view) % self.frame_size:
            raise AudioFormatError(
                f"got {len(view)} bytes, not a whole number of {self.frame_size}-byte frames "
                f"of {self.describe()}"
            )
        return view

    def _byte_view(self, data: Union[bytes, bytearray, memoryview]) -> memoryview:
        try:
            view = memoryview(data)
            contiguous = view.c_contiguous
        except ValueError:  # a released memoryview
            raise AudioFormatError(
                f"the memoryview was released; pass live audio bytes ({self.describe()})"
            ) from None
        if not contiguous:
            raise AudioFormatError(
                f"audio must be one C-contiguous block of bytes ({self.describe()}); got a "
                "strided or Fortran-order view: pass bytes(view) or a C-contiguous array"
            )
        return view.cast("B") if view.format != "B" or view.ndim != 1 else view

    def to_bytes(self, data: object) -> bytes:
        """``data`` as bytes of this format, validated; numpy arrays are converted.

        Parameters
        ----------
        data : bytes-like or numpy array
            Bytes-like audio in this format; or a numpy array shaped
            ``(frames,)`` / ``(frames, channels)`` (any memory order): of the
            format's own sample type (int16 for ``pcm_s16le``, float32 for
            ``pcm_f32le``, uint8 for G.711), or float (values in -1..1) for
            ``pcm_s16le``, or int16 for ``pcm_f32le``.

        Raises
        ------
        AudioFormatError
            The message says what this format expects.
        """
        if type(data) is bytes:
            if len(data) % self.frame_size:
                self.check(data)
            return data
        if hasattr(data, "__array_interface__") and hasattr(data, "dtype"):
            return self._array_bytes(data)
        return bytes(self.check(data))

    def _array_bytes(self, array: Any) -> bytes:
        import numpy as np

        arr = np.asarray(array)
        expected = (
            f"a numpy array shaped (frames,) or (frames, {self.channels}) of "
            f"{_ARRAY_TYPES[self.encoding]} for {self.describe()}"
        )
        if (arr.ndim == 2 and arr.shape[1] != self.channels) or arr.ndim not in (1, 2):
            raise AudioFormatError(f"got an array of shape {arr.shape}; expected {expected}")
        if arr.ndim == 1 and arr.size % self.channels:
            raise AudioFormatError(
                f"got {arr.size} samples, not a whole number of {self.channels}-channel "
                f"frames; expected {expected}"
            )
        kind, enc = arr.dtype.kind, self.encoding
        if enc == "pcm_s16le" and kind == "f":
            scaled = np.clip(np.nan_to_num(arr.astype(np.float32)), -1.0, 1.0) * 32767.0
            out = np.rint(scaled).astype("<i2")
        elif enc == "pcm_s16le" and arr.dtype == np.int16:
            out = arr.astype("<i2", copy=False)
        elif enc == "pcm_f32le" and arr.dtype == np.float32:
            out = arr.astype("<f4", copy=False)
        elif enc == "pcm_f32le" and arr.dtype == np.int16:
            out = (arr.astype(np.float32) / 32768.0).astype("<f4")
        elif enc in ("mulaw", "alaw") and arr.dtype == np.uint8:
            out = arr
        else:
            raise AudioFormatError(
                f"got a {arr.dtype} array; expected {expected} "
                "(voxsync.audio.Converter converts other formats)"
            )
        return bytes(np.ascontiguousarray(out).tobytes())

    def describe(self) -> str:
        """Human-readable form, e.g. ``"16000 Hz mono pcm_s16le"``."""
        chans = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.sample_rate} Hz {chans} {self.encoding}"

    def __str__(self) -> str:
        return self.describe()
