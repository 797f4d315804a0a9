"""G.711 codecs and format conversion (voxsync.audio.g711, voxsync.audio.convert)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from voxsync.audio import AudioFormat, Converter, convert, from_float32, to_float32
from voxsync.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxsync.errors import AudioFormatError, ConfigurationError

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


# ----------------------------------------------------------------- G.711


@pytest.mark.parametrize(
    ("pcm", "code"),
    [(0, 0xFF), (32767, 0x80), (-32768, 0x00), (32124, 0x80), (-32124, 0x00), (1000, 0xCE)],
)
def test_ulaw_encode_known_vectors(pcm: int, code: int) -> None:
    assert ulaw_encode(np.array([pcm], dtype=np.int16)).tolist() == [code]


@pytest.mark.parametrize(
    ("code", "pcm"), [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xCE, 988)]
)
def test_ulaw_decode_known_vectors(code: int, pcm: int) -> None:
    assert ulaw_decode(bytes([code])).tolist() == [pcm]


@pytest.mark.parametrize(
    ("pcm", "code"), [(0, 0xD5), (-1, 0x55), (32767, 0xAA), (-32768, 0x2A), (1000, 0xFA)]
)
def test_alaw_encode_known_vectors(pcm: int, code: int) -> None:
    assert alaw_encode(np.array([pcm], dtype=np.int16)).tolist() == [code]


@pytest.mark.parametrize(
    ("code", "pcm"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xFA, 1008)]
)
def test_alaw_decode_known_vectors(code: int, pcm: int) -> None:
    assert alaw_decode(bytes([code])).tolist() == [pcm]


def test_every_ulaw_code_round_trips() -> None:
    again = ulaw_encode(ulaw_decode(ALL_CODES))
    # 0x7F is "negative zero": it decodes to 0, which encodes as 0xFF.
    expected = ALL_CODES.copy()
    expected[0x7F] = 0xFF
    assert again.tolist() == expected.tolist()


def test_every_alaw_code_round_trips() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)).tolist() == ALL_CODES.tolist()


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_round_trip_error_is_within_quantisation(encode, decode) -> None:  # type: ignore[no-untyped-def]
    back = decode(encode(ALL_PCM)).astype(np.int64)
    error = np.abs(back - ALL_PCM.astype(np.int64))
    # G.711 keeps 4 mantissa bits: the step is at most 1/16 of the magnitude
    # (plus the fixed step near zero and the clipping at full scale).
    assert np.all(error <= np.abs(ALL_PCM.astype(np.int64)) / 16 + 16)
    # monotonic: a louder input never decodes quieter
    assert np.all(np.diff(back) >= 0)


def test_encoding_is_odd_symmetric() -> None:
    pcm = np.arange(4, 32000, 4, dtype=np.int16)
    assert np.array_equal(ulaw_encode(-pcm), ulaw_encode(pcm) ^ 0x80)
    assert np.array_equal(ulaw_decode(ulaw_encode(-pcm)), -ulaw_decode(ulaw_encode(pcm)))


def test_g711_matches_the_former_audioop_module() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop", reason="audioop was removed in Python 3.13")
    raw = ALL_PCM.tobytes()
    assert ulaw_encode(ALL_PCM).tobytes() == audioop.lin2ulaw(raw, 2)
    assert alaw_encode(ALL_PCM).tobytes() == audioop.lin2alaw(raw, 2)
    assert ulaw_decode(ALL_CODES.tobytes()).tobytes() == audioop.ulaw2lin(bytes(range(256)), 2)
    assert alaw_decode(ALL_CODES.tobytes()).tobytes() == audioop.alaw2lin(bytes(range(256)), 2)


def test_g711_matches_the_shipped_reference_vectors() -> None:
    """Bit-exact against ``audioop``'s answers, kept in tests/data (runs on every Python).

    tests/data/make_g711_reference.py wrote the file with a Python that still
    had ``audioop``; the test above compares with the module itself where it
    exists, so the file and the module are checked against each other too.
    """
    ref = np.load(Path(__file__).resolve().parent / "data" / "g711_reference.npz")
    assert ref["ulaw_encoded"].shape == ref["alaw_encoded"].shape == (65536,)
    assert ref["ulaw_decoded"].shape == ref["alaw_decoded"].shape == (256,)
    assert np.array_equal(ulaw_encode(ALL_PCM), ref["ulaw_encoded"])
    assert np.array_equal(alaw_encode(ALL_PCM), ref["alaw_encoded"])
    assert np.array_equal(ulaw_decode(ALL_CODES.tobytes()), ref["ulaw_decoded"])
    assert np.array_equal(alaw_decode(ALL_CODES.tobytes()), ref["alaw_decoded"])


def test_g711_tables_are_built_bit_exact() -> None:
    """The table builders themselves (they run once, at import) against the reference."""
    from voxsync.audio import g711

    ref = np.load(Path(__file__).resolve().parent / "data" / "g711_reference.npz")
    index = ALL_PCM.view(np.uint16)
    assert np.array_equal(g711._build_ulaw_encode()[index], ref["ulaw_encoded"])
    assert np.array_equal(g711._build_alaw_encode()[index], ref["alaw_encoded"])
    assert np.array_equal(g711._build_ulaw_decode(), ref["ulaw_decoded"])
    assert np.array_equal(g711._build_alaw_decode(), ref["alaw_decoded"])
    dtypes = [
        g711._build_ulaw_encode().dtype,
        g711._build_alaw_encode().dtype,
        g711._build_ulaw_decode().dtype,
        g711._build_alaw_decode().dtype,
    ]
    assert dtypes == [np.uint8, np.uint8, np.int16, np.int16]


def test_g711_rejects_wrong_dtypes() -> None:
    with pytest.raises(TypeError, match="int16"):
        ulaw_encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match="uint8"):
        alaw_decode(np.zeros(4, dtype=np.int16))


# ------------------------------------------------------- float helpers


def test_to_float32_shapes_and_scales() -> None:
    fmt = AudioFormat(8000, 2, "pcm_s16le")
    data = np.array([[16384, -32768], [0, 32767]], dtype="<i2").tobytes()
    out = to_float32(data, fmt)
    assert out.dtype == np.float32
    assert out.shape == (2, 2)
    assert out.tolist() == [[0.5, -1.0], [0.0, 32767 / 32768]]


def test_from_float32_clips_and_cleans() -> None:
    fmt = AudioFormat(8000, 1, "pcm_s16le")
    out = np.frombuffer(from_float32(np.array([1.5, -1.5, np.nan, 0.5]), fmt), "<i2")
    assert out.tolist() == [32767, -32768, 0, 16384]
    f32 = np.frombuffer(from_float32(np.array([2.0, -3.0]), AudioFormat(8000, 1, "pcm_f32le")))
    assert f32.view("<f4").tolist() == [1.0, -1.0]


def test_from_float32_checks_channels() -> None:
    with pytest.raises(AudioFormatError, match="8000 Hz stereo pcm_s16le"):
        from_float32(np.zeros((10, 3)), AudioFormat(8000, 2))


@pytest.mark.parametrize("encoding", ["pcm_s16le", "mulaw", "alaw"])
def test_integer_formats_survive_the_float_path_exactly(encoding: str) -> None:
    fmt = AudioFormat(8000, 1, encoding)
    if encoding == "pcm_s16le":
        data = ALL_PCM.tobytes()
    else:
        data = ALL_CODES.tobytes()
        if encoding == "mulaw":
            data = data.replace(b"\x7f", b"\xff")
    assert from_float32(to_float32(data, fmt), fmt) == data


# ------------------------------------------------------------- Converter


def test_identical_formats_pass_through() -> None:
    fmt = AudioFormat(16000, 1)
    conv = Converter(fmt, fmt)
    assert conv.passthrough
    data = b"\x01\x02" * 100
    assert conv.process(data) == data
    assert conv.process(bytearray(data)) == data
    assert conv.flush() == b""


@pytest.mark.parametrize("encoding", ["pcm_f32le", "mulaw", "alaw"])
def test_s16_round_trip_through_each_encoding(encoding: str) -> None:
    pcm = AudioFormat(16000, 1)
    other = AudioFormat(16000, 1, encoding)
    src = s16(sine(440, 16000, 0.5, 0.8))
    back = convert(convert(src, pcm, other), other, pcm)
    a = np.frombuffer(src, "<i2").astype(np.int64)
    b = np.frombuffer(back, "<i2").astype(np.int64)
    assert len(a) == len(b)
    if encoding == "pcm_f32le":
        assert np.array_equal(a, b)
    else:
        assert np.max(np.abs(a - b)) <= np.max(np.abs(a)) / 16 + 16


def test_sine_keeps_its_frequency_through_44k_16k_8k_mulaw() -> None:
    rate = 44100
    src = AudioFormat(rate, 1, "pcm_s16le")
    mid = AudioFormat(16000, 1, "pcm_s16le")
    dst = AudioFormat(8000, 1, "mulaw")
    data = s16(sine(1000, rate, 2.0))
    first, second = Converter(src, mid), Converter(mid, dst)
    out = bytearray()
    step = 4410 * 2 + 6  # odd-sized chunks that split frames
    for i in range(0, len(data), step):
        out += second.process(first.process(data[i : i + step]))
    out += second.process(first.flush()) + second.flush()
    samples = to_float32(bytes(out), dst)[:, 0]
    assert abs(len(samples) - 16000) <= 2
    assert peak_frequency(samples, 8000) == pytest.approx(1000, abs=1)
    # the level survives (0.5 amplitude sine: RMS 0.354)
    assert np.sqrt(np.mean(samples[400:-400] ** 2)) == pytest.approx(0.354, rel=0.05)


def test_chunk_boundaries_leave_no_trace() -> None:
    src, dst = AudioFormat(44100, 1), AudioFormat(16000, 1)
    data = s16(sine(1000, 44100, 1.0))
    whole = convert(data, src, dst)
    conv = Converter(src, dst)
    pieces = [conv.process(data[i : i + 882]) for i in range(0, len(data), 882)]
    pieces.append(conv.flush())
    chunked = np.frombuffer(b"".join(pieces), "<i2").astype(np.int64)
    reference = np.frombuffer(whole, "<i2").astype(np.int64)
    assert len(chunked) == len(reference)
    assert np.max(np.abs(chunked - reference)) <= 1


def test_downmix_is_the_mean_of_channels() -> None:
    stereo = np.array([[1000, 3000], [-2000, 0], [32767, 32767]], dtype="<i2").tobytes()
    mono = convert(stereo, AudioFormat(8000, 2), AudioFormat(8000, 1))
    assert np.frombuffer(mono, "<i2").tolist() == [2000, -1000, 32767]


def test_upmix_duplicates_mono() -> None:
    mono = np.array([5, -7, 32767], dtype="<i2").tobytes()
    stereo = convert(mono, AudioFormat(8000, 1), AudioFormat(8000, 2))
    assert np.frombuffer(stereo, "<i2").reshape(-1, 2).tolist() == [
        [5, 5],
        [-7, -7],
        [32767, 32767],
    ]


def test_three_channels_to_stereo_mixes_then_duplicates() -> None:
    data = np.array([[300, 600, 900]], dtype="<i2").tobytes()
    out = convert(data, AudioFormat(8000, 3), AudioFormat(8000, 2))
    assert np.frombuffer(out, "<i2").tolist() == [600, 600]


def test_48k_stereo_float_to_16k_mono_s16() -> None:
    left = sine(1000, 48000, 1.0, 0.4)
    right = sine(1000, 48000, 1.0, 0.2)
    data = np.stack([left, right], axis=1).astype("<f4").tobytes()
    out = convert(data, AudioFormat(48000, 2, "pcm_f32le"), AudioFormat(16000, 1))
    samples = np.frombuffer(out, "<i2") / 32768
    assert abs(len(samples) - 16000) <= 1
    assert peak_frequency(samples, 16000) == pytest.approx(1000, abs=1)
    assert np.max(np.abs(samples[100:-100])) == pytest.approx(0.3, rel=0.03)


def test_float_overs_are_clipped_not_wrapped() -> None:
    data = np.array([1.7, -2.5, 0.25], dtype="<f4").tobytes()
    out = convert(data, AudioFormat(8000, 1, "pcm_f32le"), AudioFormat(8000, 1))
    assert np.frombuffer(out, "<i2").tolist() == [32767, -32768, 8192]
    ulaw = convert(data, AudioFormat(8000, 1, "pcm_f32le"), AudioFormat(8000, 1, "mulaw"))
    assert list(ulaw[:2]) == [0x80, 0x00]


def test_incomplete_frames_are_carried_to_the_next_chunk() -> None:
    src, dst = AudioFormat(8000, 2), AudioFormat(8000, 1)
    conv = Converter(src, dst)
    data = np.array([[100, 300], [500, 700]], dtype="<i2").tobytes()
    out = conv.process(data[:3]) + conv.process(data[3:7]) + conv.process(data[7:])
    assert np.frombuffer(out, "<i2").tolist() == [200, 600]
    assert conv.flush() == b""


def test_flush_reports_a_stray_partial_frame() -> None:
    conv = Converter(AudioFormat(8000, 1), AudioFormat(16000, 1))
    conv.process(b"\x00\x00\x01")
    with pytest.raises(AudioFormatError, match=r"1 stray bytes.*8000 Hz mono pcm_s16le"):
        conv.flush()


def test_converter_can_be_reused_after_flush() -> None:
    src, dst = AudioFormat(16000, 1), AudioFormat(8000, 1)
    conv = Converter(src, dst)
    data = s16(sine(500, 16000, 0.2))
    first = conv.process(data) + conv.flush()
    second = conv.process(data) + conv.flush()
    assert first == second


@pytest.mark.parametrize("bad", ["text", 123, None, [1, 2]])
def test_non_bytes_input_names_the_format(bad: object) -> None:
    conv = Converter(AudioFormat(8000, 1, "mulaw"), AudioFormat(16000, 1))
    with pytest.raises(AudioFormatError, match="8000 Hz mono mulaw"):
        conv.process(bad)
    with pytest.raises(AudioFormatError, match="16000 Hz stereo pcm_f32le"):
        convert(bad, AudioFormat(16000, 2, "pcm_f32le"), AudioFormat(8000, 1))


def test_one_shot_convert_rejects_partial_frames() -> None:
    with pytest.raises(AudioFormatError, match="4-byte frames of 8000 Hz stereo pcm_s16le"):
        convert(b"\x00" * 6, AudioFormat(8000, 2), AudioFormat(8000, 1))


def test_numpy_arrays_are_accepted_as_buffers() -> None:
    arr = np.array([[100, 300]], dtype="<i2")
    assert (
        convert(arr, AudioFormat(8000, 2), AudioFormat(8000, 1))
        == np.array([200], dtype="<i2").tobytes()
    )


def test_converter_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="AudioFormat"):
        Converter("pcm_s16le", AudioFormat())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="quality"):
        Converter(AudioFormat(), AudioFormat(8000), quality="best")
