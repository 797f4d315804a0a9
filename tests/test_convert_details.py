"""Format conversion details: input levels, float32 results, channels kept apart, flushing."""

from __future__ import annotations

import numpy as np
import pytest

from voxsync.audio import AudioFormat, Converter, convert, level, to_float32
from voxsync.errors import AudioFormatError, ConfigurationError


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


@pytest.mark.parametrize(("bad", "name"), [([1, 2], "list"), (123, "int"), ("text", "str")])
def test_non_bytes_input_gets_the_hint_to_convert(bad: object, name: str) -> None:
    conv = Converter(AudioFormat(8000, 1, "mulaw"), AudioFormat(16000, 1))
    with pytest.raises(AudioFormatError) as info:
        conv.process(bad)
    assert str(info.value) == (
        f"audio must be bytes-like (8000 Hz mono mulaw), got {name}; convert arrays with .tobytes()"
    )


def test_strided_buffers_are_refused_with_the_fix() -> None:
    strided = np.arange(20, dtype="<i2")[::2]
    with pytest.raises(AudioFormatError) as info:
        Converter(AudioFormat(8000, 1), AudioFormat(8000, 1, "alaw")).process(strided)
    assert str(info.value) == (
        "audio buffer must be contiguous (8000 Hz mono pcm_s16le); pass bytes(data)"
    )


def test_a_flat_int16_array_is_counted_in_bytes_not_samples() -> None:
    pcm = np.array([1000, -1000, 0], dtype="<i2")  # 3 samples, 6 bytes: three whole frames
    ulaw = convert(pcm, AudioFormat(8000, 1), AudioFormat(8000, 1, "mulaw"))
    assert ulaw == convert(pcm.tobytes(), AudioFormat(8000, 1), AudioFormat(8000, 1, "mulaw"))
    assert len(ulaw) == 3
    conv = Converter(AudioFormat(8000, 1), AudioFormat(8000, 1, "alaw"))
    assert len(conv.process(pcm)) == 3


def test_converter_type_errors_name_the_argument() -> None:
    with pytest.raises(ConfigurationError) as info:
        Converter("pcm_s16le", AudioFormat())  # type: ignore[arg-type]
    assert str(info.value) == "Converter src must be an AudioFormat, got str"
    with pytest.raises(ConfigurationError) as info:
        Converter(AudioFormat(), None)  # type: ignore[arg-type]
    assert str(info.value) == "Converter dst must be an AudioFormat, got NoneType"


def test_every_documented_quality_is_accepted_and_used() -> None:
    src, dst = AudioFormat(44100, 1), AudioFormat(16000, 1)
    data = (tone(44100, 0.2, 3000, 0.5) * 32767).astype("<i2").tobytes()
    outputs = {}
    for quality in ("QQ", "LQ", "MQ", "HQ", "VHQ"):
        conv = Converter(src, dst, quality=quality)
        outputs[quality] = conv.process(data) + conv.flush()
        assert abs(len(outputs[quality]) - 2 * 3200) <= 4
    assert outputs["QQ"] != outputs["HQ"]  # the choice reaches the resampler
    assert outputs["VHQ"] != outputs["HQ"]


def test_empty_input_gives_empty_output() -> None:
    for dst in (AudioFormat(8000, 1), AudioFormat(16000, 1, "mulaw")):
        conv = Converter(AudioFormat(8000, 1), dst)
        assert conv.process(b"") == b""
        assert conv.process(bytearray()) == b""


def test_pass_through_also_carries_incomplete_frames() -> None:
    fmt = AudioFormat(8000, 2)  # 4-byte frames
    conv = Converter(fmt, fmt)
    data = bytes(range(12))
    assert conv.process(data[:5]) == data[:4]
    assert conv.process(data[5:7]) == b""
    assert conv.process(data[7:]) == data[4:]
    assert conv.flush() == b""
