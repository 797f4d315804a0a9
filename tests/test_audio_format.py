"""AudioFormat: validation bounds, sizes, byte views and its description."""

from __future__ import annotations

import array

import pytest

from voxsync.audio.format import ENCODINGS, AudioFormat
from voxsync.errors import AudioFormatError, ConfigurationError


def test_unknown_encoding_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        AudioFormat(16000, 1, "opus")
    assert str(info.value) == (
        "unknown audio encoding 'opus'; use one of pcm_s16le, pcm_f32le, mulaw, alaw"
    )
    assert list(ENCODINGS) == ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"]


@pytest.mark.parametrize("rate", [1000, 8000, 384000])
def test_sample_rate_bounds_are_inclusive(rate: int) -> None:
    assert AudioFormat(rate).sample_rate == rate


@pytest.mark.parametrize("rate", [999, 384001, 0, 16000.0, "16000"])
def test_sample_rate_outside_the_bounds_or_not_an_int(rate: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        AudioFormat(rate)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"sample_rate must be an int between 1000 and 384000 Hz, got {rate!r}"
    )


@pytest.mark.parametrize("channels", [1, 2, 32])
def test_channel_bounds_are_inclusive(channels: int) -> None:
    assert AudioFormat(16000, channels).channels == channels


@pytest.mark.parametrize("channels", [0, 33, 2.0])
def test_channels_outside_the_bounds_or_not_an_int(channels: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        AudioFormat(16000, channels)  # type: ignore[arg-type]
    assert str(info.value) == f"channels must be an int from 1 to 32, got {channels!r}"


@pytest.mark.parametrize(
    ("fmt", "seconds", "nbytes"),
    [
        (AudioFormat(16000, 1, "pcm_s16le"), 0.1, 3200),
        (AudioFormat(16000, 2, "pcm_s16le"), 0.1, 6400),
        (AudioFormat(8000, 1, "mulaw"), 1.5, 12000),
        (AudioFormat(48000, 2, "pcm_f32le"), 0.5, 192000),
        (AudioFormat(16000, 1, "pcm_s16le"), 0.00001, 0),  # rounded down to whole frames
        (AudioFormat(44100, 2, "pcm_s16le"), 0.01, 1764),
    ],
)
def test_sizes(fmt: AudioFormat, seconds: float, nbytes: int) -> None:
    assert fmt.nbytes(seconds) == nbytes
    assert fmt.duration(nbytes) == pytest.approx(int(seconds * fmt.sample_rate) / fmt.sample_rate)
    assert fmt.bytes_per_second == fmt.sample_rate * fmt.frame_size


def test_check_returns_a_byte_view_of_typed_memoryviews() -> None:
    fmt = AudioFormat(16000, 1, "pcm_s16le")
    samples = array.array("h", [1, -1, 300])
    view = fmt.check(memoryview(samples))
    assert (len(view), view.format, view.itemsize) == (6, "B", 1)
    assert view.tobytes() == samples.tobytes()
    assert view[3] == 0xFF  # unsigned bytes: -1 is ff ff
    with pytest.raises(AudioFormatError, match="not a whole number of 4-byte frames"):
        AudioFormat(16000, 2).check(memoryview(samples))


def test_check_names_the_type_it_got() -> None:
    fmt = AudioFormat(16000, 1, "pcm_s16le")
    for bad, name in (("text", "str"), ([1, 2], "list"), (None, "NoneType"), (3, "int")):
        with pytest.raises(AudioFormatError) as info:
            fmt.check(bad)
        assert str(info.value).startswith(
            f"audio must be bytes-like (16000 Hz mono pcm_s16le), got {name}"
        )


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        (AudioFormat(16000, 1, "pcm_s16le"), "16000 Hz mono pcm_s16le"),
        (AudioFormat(8000, 2, "alaw"), "8000 Hz stereo alaw"),
        (AudioFormat(48000, 6, "pcm_f32le"), "48000 Hz 6 channels pcm_f32le"),
    ],
)
def test_description(fmt: AudioFormat, text: str) -> None:
    assert fmt.describe() == str(fmt) == text
