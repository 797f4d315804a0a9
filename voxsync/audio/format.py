"""Audio format descriptions shared by connections and audio sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from voxsync.errors import AudioFormatError, ConfigurationError

__all__ = ["ENCODINGS", "AudioFormat"]

#: Supported encodings and their bytes per sample.
ENCODINGS: Dict[str, int] = {
    "pcm_s16le": 2,
    "pcm_f32le": 4,
    "mulaw": 1,
    "alaw": 1,
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
            A byte view of ``data`` (no copy).

        Raises
        ------
        AudioFormatError
            For non-bytes input or a length that is not a multiple of
            :attr:`frame_size`; the message names this format.
        """
        if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
            raise AudioFormatError(
                f"audio must be bytes-like ({self.describe()}), got {type(data).__name__}; "
                "convert arrays with .tobytes() or use voxsync.audio.Converter"
            )
        view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
        if len(view) % self.frame_size:
            raise AudioFormatError(
                f"got {len(view)} bytes, not a whole number of {self.frame_size}-byte frames "
                f"of {self.describe()}"
            )
        return view

    def describe(self) -> str:
        """Human-readable form, e.g. ``"16000 Hz mono pcm_s16le"``."""
        chans = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.sample_rate} Hz {chans} {self.encoding}"

    def __str__(self) -> str:
        return self.describe()
