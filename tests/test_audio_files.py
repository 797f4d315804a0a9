"""Audio files, chunking, pacing and stream_file (voxsync.audio.files, voxsync.audio.pacing)."""

from __future__ import annotations

import errno
import io
import threading
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
import soundfile

from voxsync.audio import (
    AudioFile,
    AudioFormat,
    Pacer,
    UnsupportedAudioError,
    convert,
    iter_chunks,
    read_audio,
    stream_file,
)
from voxsync.connection import Connection
from voxsync.errors import ConfigurationError, LocalProtocolError

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "audio"


class RecordingConnection(Connection):
    """A connection whose transport is a list: ``_write_chunk`` keeps every chunk."""

    provider = "rec"

    def __init__(self, audio_format: AudioFormat, **options: object) -> None:
        super().__init__(audio_format, **options)  # type: ignore[arg-type]
        self.chunks: List[bytes] = []

    def _write_chunk(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    @property
    def received(self) -> bytes:
        return b"".join(self.chunks)


def tone(rate: int, seconds: float, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16", **kw: str) -> Path:
    soundfile.write(str(path), samples, rate, subtype=subtype, **kw)
    return path


@pytest.fixture
def wav16k(tmp_path: Path) -> Path:
    """1.05 s of a 440 Hz tone, 16 kHz mono 16-bit."""
    return write(tmp_path / "tone.wav", tone(16000, 1.05), 16000)


# ------------------------------------------------------------ read_audio


def test_read_wav_in_its_own_format(wav16k: Path) -> None:
    data, fmt = read_audio(wav16k)
    assert fmt == AudioFormat(16000, 1, "pcm_s16le")
    expected = soundfile.read(str(wav16k), dtype="int16")[0].tobytes()
    assert data == expected


def test_read_and_convert(wav16k: Path) -> None:
    target = AudioFormat(8000, 2, "mulaw")
    data, fmt = read_audio(str(wav16k), target)
    assert fmt == target
    assert abs(len(data) - 8400 * 2) <= 4
    native, native_fmt = read_audio(wav16k)
    assert data == convert(native, native_fmt, target)


@pytest.mark.parametrize(
    ("name", "fmt_kw", "subtype", "expected_encoding"),
    [
        ("a.flac", {}, "PCM_16", "pcm_s16le"),
        ("a.ogg", {"format": "OGG"}, "VORBIS", "pcm_f32le"),
        ("a.wav", {}, "FLOAT", "pcm_f32le"),
        ("a.wav", {}, "PCM_24", "pcm_f32le"),
        ("a.wav", {}, "ULAW", "pcm_s16le"),
    ],
)
def test_other_formats(
    tmp_path: Path, name: str, fmt_kw: dict, subtype: str, expected_encoding: str
) -> None:
    path = write(tmp_path / name, tone(22050, 0.5, channels=2), 22050, subtype, **fmt_kw)
    data, fmt = read_audio(path)
    assert fmt == AudioFormat(22050, 2, expected_encoding)
    assert abs(fmt.duration(len(data)) - 0.5) < 0.01
    mono, _ = read_audio(path, AudioFormat(16000, 1))
    samples = np.frombuffer(mono, "<i2") / 32768
    assert np.sqrt(np.mean(samples[800:-800] ** 2)) == pytest.approx(0.354, rel=0.05)


def test_mp3_where_libsndfile_supports_it(tmp_path: Path) -> None:
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    path = tmp_path / "a.mp3"
    try:
        soundfile.write(str(path), tone(16000, 1.0), 16000, format="MP3")
    except soundfile.LibsndfileError as exc:
        pytest.skip(f"this libsndfile cannot write MP3: {exc}")
    data, fmt = read_audio(path, AudioFormat(16000, 1))
    assert 0.9 < fmt.duration(len(data)) < 1.2


def test_read_from_a_file_object(wav16k: Path) -> None:
    buf = io.BytesIO(wav16k.read_bytes())
    data, fmt = read_audio(buf)
    assert fmt == AudioFormat(16000, 1)
    assert data == read_audio(wav16k)[0]


def test_missing_file_is_a_clear_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError, match=r"audio file not found: .*nope\.wav"):
        read_audio(missing)


def test_not_audio_is_unsupported(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("these are not samples\n" * 20)
    with pytest.raises(UnsupportedAudioError, match=r"notes\.wav.*WAV") as info:
        read_audio(text)
    assert isinstance(info.value, ConfigurationError)
    assert info.value.__cause__ is not None


def test_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="directory"):
        read_audio(tmp_path)


def test_audio_file_reports_its_format(wav16k: Path) -> None:
    with AudioFile(wav16k, AudioFormat(8000, 1, "alaw")) as f:
        assert f.format == AudioFormat(16000, 1)
        assert f.target == AudioFormat(8000, 1, "alaw")
        assert f.frames == 16800
        assert f.duration == pytest.approx(1.05)
        assert "tone.wav" in repr(f)


# ---------------------------------------------------------------- chunks


def test_chunks_have_exact_sizes(wav16k: Path) -> None:
    chunks = list(iter_chunks(wav16k, chunk_ms=100))
    assert [len(c) for c in chunks] == [3200] * 10 + [1600]
    assert b"".join(chunks) == read_audio(wav16k)[0]


def test_chunks_are_converted(wav16k: Path) -> None:
    target = AudioFormat(8000, 1, "mulaw")
    chunks = list(iter_chunks(wav16k, target, chunk_ms=20))
    assert all(len(c) == 160 for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 160
    assert b"".join(chunks) == read_audio(wav16k, target)[0]


def test_chunk_of_less_than_a_frame_is_refused(wav16k: Path) -> None:
    with pytest.raises(ConfigurationError, match="chunk_ms"):
        list(iter_chunks(wav16k, AudioFormat(8000), chunk_ms=0.01))
    with pytest.raises(ConfigurationError, match="chunk_ms"):
        list(iter_chunks(wav16k, chunk_ms=-5))


def test_realtime_chunks_are_paced(wav16k: Path) -> None:
    start = time.monotonic()
    stamps = []
    for _ in iter_chunks(wav16k, chunk_ms=100, realtime=True, speed=4.0):
        stamps.append(time.monotonic() - start)
    assert len(stamps) == 11
    assert stamps[0] < 0.2  # the first chunk at once
    # chunk k is due after k * 100 ms of audio at 4x speed; never earlier
    for k, stamp in enumerate(stamps):
        assert stamp >= k * 0.025 - 0.002
    assert stamps[-1] < 10  # generous: paced, not stuck


def test_unpaced_chunks_do_not_wait(wav16k: Path) -> None:
    start = time.monotonic()
    assert len(list(iter_chunks(wav16k, chunk_ms=10))) == 105
    assert time.monotonic() - start < 5  # 1.05 s of audio would take >= 1 s paced


# ---------------------------------------------------------------- Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_schedule_does_not_drift() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    assert pacer.wait()  # first chunk: at once, starts the schedule
    pacer.advance(0.1)
    assert pacer.due() == pytest.approx(0.1)
    clock.now += 0.13  # woke up 30 ms late
    assert pacer.due() == 0.0
    pacer.advance(0.1)
    # due at start + 0.2, not at (late wake-up) + 0.1
    assert pacer.due() == pytest.approx(0.07)
    clock.now += 1.0  # fell far behind: catch up without waiting
    for _ in range(5):
        pacer.advance(0.1)
    assert pacer.due() == 0.0
    assert pacer.sent == pytest.approx(0.7)


def test_pacer_speed_and_reset() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, clock=clock)
    pacer.pace(1.0)
    assert pacer.due() == pytest.approx(0.5)
    pacer.reset()
    assert pacer.due() == 0.0 and pacer.sent == 0.0
    with pytest.raises(ConfigurationError, match="speed"):
        Pacer(0)


def test_pacer_schedule_starts_at_the_first_wait() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    assert pacer.wait()  # the schedule starts now, at 100.0
    clock.now += 0.5  # reading and sending the first chunk took half a second
    pacer.advance(0.1)
    assert pacer.due() == 0.0  # its 100 ms have long played: the next chunk goes at once
    pacer.advance(0.5)
    assert pacer.due() == pytest.approx(0.1)  # due at start + 0.6


def test_pacer_advance_without_wait_starts_the_schedule() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    pacer.advance(1.0)  # a chunk sent without waiting first
    assert pacer.due() == pytest.approx(1.0)
    clock.now += 0.25
    assert pacer.due() == pytest.approx(0.75)


def test_pacer_interrupt_wakes_a_waiting_thread() -> None:
    pacer = Pacer()
    pacer.pace(60.0)  # next chunk due in a minute
    result: List[bool] = []
    waiter = threading.Thread(target=lambda: result.append(pacer.wait()))
    waiter.start()
    time.sleep(0.05)
    pacer.interrupt()
    waiter.join(5)
    assert not waiter.is_alive()
    assert result == [False]


# ----------------------------------------------------------- stream_file


def test_stream_file_converts_sends_and_finishes(tmp_path: Path) -> None:
    path = write(tmp_path / "stereo44.wav", tone(44100, 0.8, channels=2), 44100)
    conn = RecordingConnection(AudioFormat(16000, 1, "pcm_s16le"))
    seconds = stream_file(conn, path, realtime=False, chunk_ms=50, finish=True)
    assert conn.state == "closed"  # connected automatically, finished
    assert seconds == pytest.approx(0.8, abs=0.002)
    assert conn.received == read_audio(path, conn.audio_format)[0]
    assert all(len(c) == 1600 for c in conn.chunks[:-1])
    assert conn.metrics.snapshot()["bytes_sent"] == len(conn.received)


def test_stream_file_to_an_open_connection_without_finishing(wav16k: Path) -> None:
    conn = RecordingConnection(AudioFormat(8000, 1, "mulaw"))
    conn.connect()
    try:
        seconds = stream_file(conn, wav16k, realtime=True, chunk_ms=350)
        assert seconds == pytest.approx(1.05, abs=0.001)
        assert conn.state == "open"
        conn.finish(timeout=5)
        assert conn.received == read_audio(wav16k, conn.audio_format)[0]
    finally:
        conn.close()


def test_stream_file_missing_file_sends_nothing(tmp_path: Path) -> None:
    conn = RecordingConnection(AudioFormat(16000, 1))
    with pytest.raises(FileNotFoundError):
        stream_file(conn, tmp_path / "missing.wav")
    assert conn.state == "idle"


def test_stream_file_to_a_closed_connection_raises(wav16k: Path) -> None:
    conn = RecordingConnection(AudioFormat(16000, 1))
    conn.connect()
    conn.close()
    with pytest.raises(LocalProtocolError, match="closed"):
        stream_file(conn, wav16k, realtime=False)


@pytest.mark.skipif(not (SAMPLES / "yes.wav").exists(), reason="samples/audio not generated")
def test_stream_a_sample_to_8k_mulaw() -> None:
    conn = RecordingConnection(AudioFormat(8000, 1, "mulaw"))
    seconds = stream_file(conn, SAMPLES / "yes.wav", realtime=False, finish=True)
    assert seconds == pytest.approx(soundfile.info(str(SAMPLES / "yes.wav")).duration, abs=0.01)
    assert len(conn.received) == pytest.approx(seconds * 8000, abs=1)


# ------------------------------------------------- defaults and ownership


def test_audio_file_chunks_default_to_100_ms_unpaced(tmp_path: Path) -> None:
    path = write(tmp_path / "ten.wav", tone(16000, 10.0), 16000)
    start = time.monotonic()
    with AudioFile(path) as f:
        sizes = [len(c) for c in f.chunks()]
    assert sizes == [3200] * 100  # 100 ms of 16 kHz mono s16le each
    assert time.monotonic() - start < 5  # 10 s of audio, not paced


def test_unpaced_iter_chunks_of_a_long_file_do_not_wait(tmp_path: Path) -> None:
    path = write(tmp_path / "ten.wav", tone(16000, 10.0), 16000)
    start = time.monotonic()
    assert len(list(iter_chunks(path, chunk_ms=100))) == 100
    assert time.monotonic() - start < 5  # paced, it would take 10 s


def test_realtime_chunks_default_to_real_time_speed(wav16k: Path) -> None:
    start = time.monotonic()
    stamps = []
    with AudioFile(wav16k) as f:
        for _ in f.chunks(chunk_ms=100, realtime=True):
            stamps.append(time.monotonic() - start)
            if len(stamps) == 5:
                break
    # chunk k goes out once k * 100 ms of audio has played (speed 1.0), never earlier
    for k, stamp in enumerate(stamps):
        assert stamp >= k * 0.1 - 0.002


def test_stream_file_defaults_to_realtime_100_ms_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "half.wav", tone(16000, 0.5), 16000)
    conn = RecordingConnection(AudioFormat(16000, 1))
    start = time.monotonic()
    seconds = stream_file(conn, path, finish=True)  # finish: every queued chunk is written
    elapsed = time.monotonic() - start
    assert [len(c) for c in conn.chunks] == [3200] * 5
    assert seconds == 0.5
    assert elapsed >= 0.4 - 0.002  # the fifth chunk waits until 400 ms have played


def test_stream_file_returns_exactly_the_seconds_sent(wav16k: Path) -> None:
    fmt = AudioFormat(8000, 1, "mulaw")
    conn = RecordingConnection(fmt)
    seconds = stream_file(conn, wav16k, realtime=False, finish=True)
    assert seconds == fmt.duration(len(conn.received)) == 1.05


def test_stream_file_converts_an_audio_file_it_did_not_open(tmp_path: Path) -> None:
    path = write(tmp_path / "stereo44.wav", tone(44100, 0.3, channels=2), 44100)
    conn = RecordingConnection(AudioFormat(16000, 1, "pcm_s16le"))
    with AudioFile(path) as audio:  # opened in the file's own format
        seconds = stream_file(conn, audio, realtime=False, finish=True)
        # the caller's file is left open: reading it further is still possible
        assert audio.read() == b""
    assert seconds == pytest.approx(0.3, abs=0.002)
    assert conn.received == read_audio(path, conn.audio_format)[0]


def test_stream_file_closes_the_file_it_opened(wav16k: Path) -> None:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd to count open files")
    conn = RecordingConnection(AudioFormat(16000, 1))
    before = len(list(fds.iterdir()))
    for _ in range(5):
        stream_file(conn, wav16k, realtime=False)
    assert len(list(fds.iterdir())) == before
    conn.close()


class FinishRecorder(RecordingConnection):
    def __init__(self, audio_format: AudioFormat) -> None:
        super().__init__(audio_format)
        self.finish_timeouts: List[object] = []

    def finish(self, timeout: Optional[float] = None) -> None:
        self.finish_timeouts.append(timeout)
        super().finish(timeout)


def test_stream_file_passes_its_finish_timeout_on(wav16k: Path) -> None:
    conn = FinishRecorder(AudioFormat(16000, 1))
    stream_file(conn, wav16k, realtime=False, finish=True, finish_timeout=7.5)
    assert conn.finish_timeouts == [7.5]
    assert conn.state == "closed"


def test_stream_file_to_something_else_names_the_function(wav16k: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^stream_file\(\) needs a voxsync connection"):
        stream_file(object(), wav16k)  # type: ignore[arg-type]


def test_stream_file_logs_what_it_sent(wav16k: Path, caplog: pytest.LogCaptureFixture) -> None:
    conn = RecordingConnection(AudioFormat(16000, 1))
    caplog.set_level("DEBUG", logger="voxsync.audio.files")
    stream_file(conn, wav16k, realtime=False)
    conn.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "voxsync.audio.files"]
    assert messages == [f"sent 1.050 s of {wav16k} to {conn!r}"]


# ------------------------------------------------------ error details


def test_missing_file_error_carries_errno_filename_and_a_hint_for_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError) as info:
        read_audio(missing)
    assert info.value.errno == errno.ENOENT and info.value.filename == str(missing)
    assert str(info.value) == f"audio file not found: {str(missing)!r}"  # absolute: no hint
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        read_audio("nope.wav")
    assert str(info.value) == (
        f"audio file not found: 'nope.wav' (relative paths start in {tmp_path})"
    )
    assert info.value.filename == "nope.wav"


def test_directory_error_carries_errno_and_filename(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as info:
        read_audio(tmp_path)
    assert info.value.errno == errno.EISDIR and info.value.filename == str(tmp_path)
    assert info.value.strerror == f"expected an audio file, got a directory: {str(tmp_path)!r}"


def test_unreadable_file_message_names_it_and_lists_the_readable_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("these are not samples\n" * 20)
    with pytest.raises(UnsupportedAudioError) as info:
        read_audio(text)
    message = str(info.value)
    assert message.startswith(f"cannot read {str(text)!r} as audio (")
    formats = ", ".join(sorted(soundfile.available_formats()))
    assert message.endswith(f"; readable formats: {formats}. Convert it to WAV or FLAC")


def test_file_objects_are_named_by_their_name_or_their_type(tmp_path: Path, wav16k: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("these are not samples\n" * 20)
    with text.open("rb") as fh, pytest.raises(UnsupportedAudioError) as info:
        read_audio(fh)
    assert str(info.value).startswith(f"cannot read {str(text)!r} as audio")
    with pytest.raises(UnsupportedAudioError, match=r"^cannot read '<BytesIO>' as audio"):
        read_audio(io.BytesIO(b"not audio at all" * 10))
    with AudioFile(io.BytesIO(wav16k.read_bytes())) as f:
        assert f.name == "<BytesIO>"
    with wav16k.open("rb") as fh, AudioFile(fh) as f:
        assert f.name == str(wav16k)


def test_audio_file_target_must_be_a_format(wav16k: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^target must be an AudioFormat or None, got str$"
    ):
        AudioFile(wav16k, "pcm_s16le")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chunk_ms", "shown"), [(0, "0"), (-5, "-5"), (True, "True"), ("100", "'100'")]
)
def test_chunk_ms_must_be_a_positive_number(wav16k: Path, chunk_ms: object, shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        list(iter_chunks(wav16k, chunk_ms=chunk_ms))  # type: ignore[arg-type]
    assert str(info.value) == f"chunk_ms must be a positive number, got {shown}"


def test_one_frame_is_the_smallest_chunk(wav16k: Path) -> None:
    ulaw = AudioFormat(8000, 1, "mulaw")
    chunks = list(iter_chunks(wav16k, ulaw, chunk_ms=0.125))  # one 1-byte frame each
    assert len(chunks) == 8400 and all(len(c) == 1 for c in chunks)
    with pytest.raises(ConfigurationError, match=r"chunk_ms=0.1 is shorter than one frame"):
        list(iter_chunks(wav16k, ulaw, chunk_ms=0.1))
    assert {len(c) for c in iter_chunks(wav16k, chunk_ms=1)} == {32}  # 16 frames of 2 bytes


def test_iter_chunks_of_an_audio_file_uses_the_given_target_and_pacing(wav16k: Path) -> None:
    ulaw = AudioFormat(8000, 1, "mulaw")
    with AudioFile(wav16k, AudioFormat(16000, 2)) as f:
        chunks = list(iter_chunks(f, ulaw, chunk_ms=100))  # the file's own target is ignored
    assert [len(c) for c in chunks] == [800] * 10 + [400]
    with AudioFile(wav16k, ulaw) as f:
        assert [len(c) for c in iter_chunks(f, chunk_ms=100)] == [800] * 10 + [400]
    start = time.monotonic()
    stamps = []
    with AudioFile(wav16k) as f:
        for _ in iter_chunks(f, chunk_ms=100, realtime=True, speed=2.0):
            stamps.append(time.monotonic() - start)
            if len(stamps) == 4:
                break
    for k, stamp in enumerate(stamps):
        assert stamp >= k * 0.05 - 0.002  # paced at twice real time


def test_a_file_at_a_rate_voxsync_cannot_handle_is_unsupported_and_named(tmp_path: Path) -> None:
    path = write(tmp_path / "slow.wav", tone(500, 1.0), 500)  # libsndfile reads it; 500 Hz
    with pytest.raises(UnsupportedAudioError) as info:
        AudioFile(path)
    assert str(info.value).startswith(f"{str(path)!r}: sample_rate must be an int between 1000")
    assert isinstance(info.value.__cause__, ConfigurationError)


class TextIn(Connection):
    """A text-in product shape: its ``input_format`` is None."""

    provider = "textin"

    def __init__(self) -> None:
        super().__init__(None, output_format=AudioFormat(24000, 1))


def test_sources_say_what_a_sink_lacks(wav16k: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        stream_file(object(), wav16k)  # type: ignore[arg-type]
    assert str(info.value) == (
        "stream_file() needs a voxsync connection (an AudioSink: input_format, send(), "
        "report_warning(), ...), got object"
    )
    with pytest.raises(ConfigurationError) as info:
        stream_file(TextIn(), wav16k)
    assert str(info.value) == (
        "stream_file(): TextIn takes text, not audio (its input_format is None)"
    )


def test_iter_chunks_of_a_path_defaults_to_100_ms_and_keeps_its_speed(tmp_path: Path) -> None:
    path = write(tmp_path / "four.wav", tone(16000, 4.0), 16000)
    assert {len(c) for c in iter_chunks(path)} == {3200}
    start = time.monotonic()
    assert len(list(iter_chunks(path, realtime=True, speed=8.0))) == 40
    # at 8x the 40th chunk is due 39 x 12.5 ms = 0.4875 s after the first;
    # at real time it would be 3.9 s
    assert 39 * 0.1 / 8 - 0.002 <= time.monotonic() - start < 3.0
