"""Format conversion details: input levels, float32 results, channels kept apart, flushing."""

from __future__ import annotations

import numpy as np
import pytest

from voxsync.audio import AudioFormat, Converter, convert, level, to_float32
from voxsync.errors import AudioFormatError


def tone(rate: int, seconds: float, freq: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_level_is_the_rms_of_the_chunk() -> None:
    s16 = AudioFormat(16000, 1, "pcm_s16le")
    assert level(np.full(160, 16384, dtype="<i2").tobytes(), s16) == 0.5
    square = np.tile(np.array([8192, -8192], dtype="<i2"), 80).tobytes()
    assert level(square, s16) == 0.25
    sine = (tone(16000, 1.0, 440, 0.5) * 32768).astype("<i2").tobytes()
    assert level(sine, s16) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    ulaw = AudioFormat(8000, 1, "mulaw")
    assert level(b"\xff" * 80, ulaw) == 0.0  # mu-law silence
    assert level(b"\x80" * 80, ulaw) == pytest.approx(32124 / 32768)  # mu-law full scale


def test_level_of_no_audio_is_zero() -> None:
    s16 = AudioFormat(16000, 1, "pcm_s16le")
    assert level(b"", s16) == 0.0
    loud = np.full(160, 16384, dtype="<i2").tobytes()
    assert level(loud, None) == 0.0  # a text-in connection has no input format
    with pytest.raises(AudioFormatError, match="2-byte frames"):
        level(loud[:3], s16)  # a broken chunk is an error, not a level


@pytest.mark.parametrize("encoding", ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"])
def test_to_float32_gives_float32_for_every_encoding(encoding: str) -> None:
    fmt = AudioFormat(8000, 2, encoding)
    out = to_float32(b"\x00" * fmt.frame_size * 3, fmt)
    assert out.dtype == np.float32 and out.shape == (3, 2)


def test_to_float32_names_the_format_for_bad_input() -> None:
    fmt = AudioFormat(8000, 1, "alaw")
    with pytest.raises(AudioFormatError, match=r"audio must be bytes-like \(8000 Hz mono alaw\)"):
        to_float32("text", fmt)


def test_resampling_stereo_keeps_the_channels_apart() -> None:
    left = tone(48000, 0.5, 1000, 0.5)
    data = (np.stack([left, np.zeros_like(left)], axis=1) * 32767).astype("<i2").tobytes()
    conv = Converter(AudioFormat(48000, 2), AudioFormat(16000, 2))
    out = np.frombuffer(conv.process(data) + conv.flush(), "<i2").reshape(-1, 2)
    assert abs(len(out) - 8000) <= 1
    assert np.abs(out[:, 1]).max() == 0  # the silent channel stays silent
    assert np.abs(out[100:-100, 0]).max() == pytest.approx(0.5 * 32767, rel=0.03)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (AudioFormat(16000, 1), AudioFormat(8000, 1)),  # resampling
        (AudioFormat(8000, 1, "mulaw"), AudioFormat(8000, 2)),  # no resampler
    ],
)
def test_flush_twice_is_harmless_and_the_converter_starts_over(
    src: AudioFormat, dst: AudioFormat
) -> None:
    data = (tone(src.sample_rate, 0.2, 500, 0.5) * 32767).astype("<i2")
    raw = data.tobytes() if src.encoding == "pcm_s16le" else bytes(len(data))
    conv = Converter(src, dst)
    first = conv.process(raw) + conv.flush()
    assert conv.flush() == b""  # nothing left: no error, no audio
    assert conv.flush() == b""
    second = conv.process(raw) + conv.flush()
    assert second == first  # a new stream, from a clean state


def test_unreadable_buffers_are_audio_format_errors() -> None:
    released = memoryview(b"\x00\x01\x02\x03")
    released.release()
    src, dst = AudioFormat(8000, 1), AudioFormat(8000, 1, "mulaw")
    with pytest.raises(
        AudioFormatError, match=r"^audio must be bytes-like \(8000 Hz mono pcm_s16le\): .*released"
    ):
        convert(released, src, dst)
    with pytest.raises(
        AudioFormatError, match=r"^audio must be bytes-like \(8000 Hz mono pcm_s16le\)"
    ):
        Converter(src, dst).process(np.zeros(4, dtype="datetime64[s]"))
