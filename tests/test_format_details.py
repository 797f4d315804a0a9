"""AudioFormat.check() and to_bytes(): every input send() accepts or refuses, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from voxsync.errors import AudioFormatError
from voxsync.format import AudioFormat

S16 = AudioFormat(16000, 1, "pcm_s16le")
S16_STEREO = AudioFormat(16000, 2, "pcm_s16le")
F32 = AudioFormat(16000, 1, "pcm_f32le")
MULAW = AudioFormat(8000, 1, "mulaw")
ALAW = AudioFormat(8000, 1, "alaw")


def test_a_non_bytes_input_is_refused_with_the_way_to_convert_it() -> None:
    with pytest.raises(AudioFormatError) as info:
        S16.check([0, 1])
    assert str(info.value) == (
        "audio must be bytes-like (16000 Hz mono pcm_s16le), got list; "
        "convert arrays with .tobytes() or use voxsync.audio.Converter"
    )


def test_a_released_view_is_refused_with_what_to_pass_instead() -> None:
    view = memoryview(b"\x00\x00")
    view.release()
    for call in (S16.check, S16.to_bytes):
        with pytest.raises(AudioFormatError) as info:
            call(view)
        assert str(info.value) == (
            "the memoryview was released; pass live audio bytes (16000 Hz mono pcm_s16le)"
        )


def test_a_strided_view_is_refused_with_what_to_pass_instead() -> None:
    for call in (S16.check, S16.to_bytes):
        with pytest.raises(AudioFormatError) as info:
            call(memoryview(bytearray(8))[::2])
        assert str(info.value) == (
            "audio must be one C-contiguous block of bytes (16000 Hz mono pcm_s16le); got a "
            "strided or Fortran-order view: pass bytes(view) or a C-contiguous array"
        )


def test_check_of_a_two_dimensional_byte_view_counts_every_byte() -> None:
    block = np.arange(8, dtype=np.uint8).reshape(4, 2)  # a 2-D view of format "B"
    view = S16.check(memoryview(block))
    assert (len(view), view.ndim, view.format) == (8, 1, "B")
    assert view.tobytes() == bytes(range(8))
    with pytest.raises(AudioFormatError, match="got 8 bytes, not a whole number of 16-byte"):
        AudioFormat(16000, 8).check(memoryview(block))


def test_check_of_a_flat_byte_view_returns_its_bytes() -> None:
    data = bytearray(b"\x01\x02\x03\x04")
    view = S16.check(data)
    assert (len(view), view.format, bytes(view)) == (4, "B", b"\x01\x02\x03\x04")


def test_to_bytes_returns_whole_frames_of_bytes_as_they_are() -> None:
    data = b"\x01\x02\x03\x04"
    assert S16.to_bytes(data) == data
    assert S16.to_bytes(bytearray(data)) == data
    assert S16.to_bytes(memoryview(data)) == data
    assert S16.to_bytes(b"") == b""
    assert type(S16.to_bytes(bytearray(data))) is bytes


def test_to_bytes_refuses_a_partial_frame_saying_how_many_bytes_it_got() -> None:
    for data in (b"\x00\x00\x00", bytearray(3), memoryview(b"\x00" * 3)):
        with pytest.raises(AudioFormatError) as info:
            S16.to_bytes(data)
        assert str(info.value) == (
            "got 3 bytes, not a whole number of 2-byte frames of 16000 Hz mono pcm_s16le"
        )


def test_to_bytes_refuses_text_and_other_objects() -> None:
    with pytest.raises(AudioFormatError, match="got str; convert arrays"):
        S16.to_bytes("\x00\x00")
    with pytest.raises(AudioFormatError, match="got int; convert arrays"):
        S16.to_bytes(2)


def test_int16_arrays_are_sent_as_little_endian_samples() -> None:
    samples = np.array([1, -2, 32767, -32768], dtype=np.int16)
    assert S16.to_bytes(samples) == b"\x01\x00\xfe\xff\xff\x7f\x00\x80"
    column = samples.reshape(4, 1)
    assert S16.to_bytes(column) == S16.to_bytes(samples)
    stereo = np.array([[1, 2], [3, 4]], dtype=np.int16)
    assert S16_STEREO.to_bytes(stereo) == b"\x01\x00\x02\x00\x03\x00\x04\x00"
    # any memory order: a Fortran-order array is sent frame by frame, interleaved
    assert S16_STEREO.to_bytes(np.asfortranarray(stereo)) == b"\x01\x00\x02\x00\x03\x00\x04\x00"
    assert S16_STEREO.to_bytes(np.array([1, 2, 3, 4], dtype=np.int16)) == (
        b"\x01\x00\x02\x00\x03\x00\x04\x00"
    )


def test_float_arrays_for_int16_are_scaled_rounded_and_clipped() -> None:
    values = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, np.nan], dtype=np.float32)
    out = np.frombuffer(S16.to_bytes(values), dtype="<i2")
    assert out.tolist() == [0, 16384, -16384, 32767, -32767, 32767, -32767, 0]
    # float64 too: any float kind is taken as -1..1
    assert np.frombuffer(S16.to_bytes(values.astype(np.float64)), "<i2").tolist() == out.tolist()


def test_float32_arrays_for_float32_are_sent_as_they_are() -> None:
    values = np.array([0.25, -1.5, 3.0], dtype=np.float32)
    data = F32.to_bytes(values)
    assert len(data) == 12
    assert data == values.astype("<f4").tobytes()
    assert data == F32.to_bytes(values.reshape(3, 1))


def test_int16_arrays_for_float32_are_scaled_to_minus_one_one() -> None:
    samples = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    data = F32.to_bytes(samples)
    assert len(data) == 16
    assert np.frombuffer(data, dtype="<f4").tolist() == [0.0, 0.5, -1.0, 32767 / 32768]


@pytest.mark.parametrize("fmt", [MULAW, ALAW], ids=["mulaw", "alaw"])
def test_uint8_arrays_for_g711_are_sent_as_they_are(fmt: AudioFormat) -> None:
    assert fmt.to_bytes(np.array([0, 127, 255], dtype=np.uint8)) == b"\x00\x7f\xff"


@pytest.mark.parametrize(
    ("fmt", "array", "got"),
    [
        (S16, np.zeros(4, dtype=np.int32), "int32"),
        (S16, np.zeros(4, dtype=np.uint8), "uint8"),
        (F32, np.zeros(4, dtype=np.float64), "float64"),
        (F32, np.zeros(4, dtype=np.int32), "int32"),
        (MULAW, np.zeros(4, dtype=np.int16), "int16"),
        (MULAW, np.zeros(4, dtype=np.float32), "float32"),
    ],
)
def test_an_array_of_another_sample_type_names_the_one_expected(
    fmt: AudioFormat, array: np.ndarray, got: str
) -> None:
    with pytest.raises(AudioFormatError) as info:
        fmt.to_bytes(array)
    assert str(info.value).startswith(f"got a {got} array; expected a numpy array shaped ")
    assert str(info.value).endswith("(voxsync.audio.Converter converts other formats)")


def test_the_expected_array_is_described_per_format() -> None:
    cases = [
        (S16, "int16 (or float in -1..1) for 16000 Hz mono pcm_s16le"),
        (F32, "float32 (or int16) for 16000 Hz mono pcm_f32le"),
        (MULAW, "uint8 for 8000 Hz mono mulaw"),
    ]
    for fmt, expected in cases:
        with pytest.raises(AudioFormatError) as info:
            fmt.to_bytes(np.zeros(2, dtype=np.complex64))
        assert str(info.value) == (
            f"got a complex64 array; expected a numpy array shaped (frames,) or "
            f"(frames, 1) of {expected} (voxsync.audio.Converter converts other formats)"
        )


@pytest.mark.parametrize(
    "shape", [(4, 3), (4, 1), (2, 2, 2), (), (1, 4)], ids=["3ch", "1ch", "3d", "scalar", "row"]
)
def test_an_array_of_the_wrong_shape_says_the_shape_expected(shape: tuple) -> None:
    with pytest.raises(AudioFormatError) as info:
        S16_STEREO.to_bytes(np.zeros(shape, dtype=np.int16))
    assert str(info.value) == (
        f"got an array of shape {shape}; expected a numpy array shaped (frames,) or "
        "(frames, 2) of int16 (or float in -1..1) for 16000 Hz stereo pcm_s16le"
    )


def test_a_flat_array_of_partial_frames_is_refused() -> None:
    with pytest.raises(AudioFormatError) as info:
        S16_STEREO.to_bytes(np.zeros(3, dtype=np.int16))
    assert str(info.value) == (
        "got 3 samples, not a whole number of 2-channel frames; expected a numpy array "
        "shaped (frames,) or (frames, 2) of int16 (or float in -1..1) for 16000 Hz stereo "
        "pcm_s16le"
    )


def test_a_two_dimensional_array_needs_no_whole_frame_check_on_its_size() -> None:
    # (frames, channels) is whole frames by its shape, whatever the frame count
    assert len(S16_STEREO.to_bytes(np.zeros((3, 2), dtype=np.int16))) == 12
