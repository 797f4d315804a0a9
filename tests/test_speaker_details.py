"""SpeakerStream's jitter buffer, driven the way PortAudio drives it.

tests/test_speaker.py plays through a real (PulseAudio) device; these tests
check the buffer's rules exactly, without a device: ``_callback`` is what
PortAudio's output thread calls for each block, with a writable buffer of
``frames * frame_size`` bytes to fill.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, List, Optional

import numpy as np
import pytest

from voxsync.audio import AudioFormat, SpeakerStream
from voxsync.connection import Connection
from voxsync.errors import AudioFormatError, ConfigurationError, DeviceError
from voxsync.events import AudioChunk

RATE = 8000
FMT = AudioFormat(RATE, 1, "pcm_s16le")


def pull(speaker: SpeakerStream, frames: int, status: int = 0) -> bytes:
    """One PortAudio callback asking for ``frames`` frames; what the device gets."""
    out = bytearray(b"\xee" * frames * speaker.audio_format.frame_size)
    speaker._callback(out, frames, None, status)
    return bytes(out)


def samples(start: int, count: int) -> bytes:
    """``count`` distinct 16-bit samples, so positions in the stream can be told apart."""
    return np.arange(start, start + count, dtype="<i2").tobytes()


class Mic:
    """What mute_while_playing() uses of a MicrophoneStream: pause() and resume()."""

    def __init__(self) -> None:
        self.calls: List[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


def test_arguments_are_checked_with_the_rule_in_the_message() -> None:
    with pytest.raises(ConfigurationError, match=r"buffer_seconds must be > 0, got -1"):
        SpeakerStream(buffer_seconds=-1)
    with pytest.raises(
        ConfigurationError, match=r"^prebuffer must be >= 0 and smaller than buffer_seconds$"
    ):
        SpeakerStream(buffer_seconds=1, prebuffer=1)
    with pytest.raises(ConfigurationError, match="prebuffer must be >= 0"):
        SpeakerStream(prebuffer=-0.1)
    # the bounds themselves are allowed: no prebuffer, a tiny buffer
    speaker = SpeakerStream(RATE, buffer_seconds=0.001, prebuffer=0)
    assert speaker.audio_format == FMT and not speaker.active
    assert speaker.underruns == speaker.overflows == speaker.played_bytes == 0
    assert repr(speaker).endswith(f"{FMT} stopped>")


def test_raw_chunks_must_be_whole_frames() -> None:
    speaker = SpeakerStream(RATE, 2)
    with pytest.raises(AudioFormatError, match="4-byte frames"):
        speaker.play(b"\x00" * 6)
    assert speaker.buffered == 0.0


def test_prebuffer_is_collected_before_playback_starts() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0.05)  # 400 frames
    sentence = samples(1, 800)
    speaker.play(AudioChunk(sentence[:600], FMT, last=False))  # 300 frames: not enough yet
    assert speaker.buffered == pytest.approx(300 / RATE)
    assert pull(speaker, 100) == b"\x00" * 200  # silence while priming
    assert speaker.played_bytes == 0 and speaker.underruns == 0
    speaker.play(AudioChunk(sentence[600:], FMT, last=False))  # 800 frames: enough
    assert pull(speaker, 100) == sentence[:200]
    assert pull(speaker, 100) == sentence[200:400]
    assert speaker.played_bytes == 400
    assert speaker.buffered == pytest.approx(600 / RATE)


def test_a_complete_short_sentence_plays_without_waiting_for_the_prebuffer() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0.5)
    speaker.play(AudioChunk(samples(1, 50), FMT, last=True))  # 50 frames, the whole sentence
    out = pull(speaker, 80)
    assert out == samples(1, 50) + b"\x00" * 60  # played, then silence
    assert speaker.played_bytes == 100
    assert speaker.underruns == 0  # the sentence ended: not an underrun
    speaker.play(samples(1, 10))  # raw chunks are complete sentences too
    assert pull(speaker, 10) == samples(1, 10)


def test_running_dry_inside_a_sentence_is_an_underrun_and_primes_again() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0.0125)  # 100 frames
    speaker.play(AudioChunk(samples(1, 150), FMT, last=False))
    assert pull(speaker, 100) == samples(1, 100)
    assert pull(speaker, 100) == samples(101, 50) + b"\x00" * 100  # ran dry mid-sentence
    assert speaker.underruns == 1
    assert pull(speaker, 100) == b"\x00" * 200  # still dry: counted once
    assert speaker.underruns == 1
    # primes again: the next 60 frames wait for the prebuffer
    speaker.play(AudioChunk(samples(500, 60), FMT, last=False))
    assert pull(speaker, 50) == b"\x00" * 100
    speaker.play(AudioChunk(samples(560, 60), FMT, last=True))
    assert pull(speaker, 120) == samples(500, 120)
    assert speaker.underruns == 1
    assert speaker.played_bytes == 2 * (150 + 120)


def test_device_underflows_are_counted_from_the_callback_status() -> None:
    speaker = SpeakerStream(RATE)
    pull(speaker, 10, status=0)
    assert speaker.output_underflows == 0
    pull(speaker, 10, status=4)  # paOutputUnderflow
    pull(speaker, 10, status=4)
    assert speaker.output_underflows == 2


def test_overflow_drops_the_oldest_audio_and_keeps_the_newest() -> None:
    speaker = SpeakerStream(RATE, buffer_seconds=0.0125, prebuffer=0)  # holds 100 frames
    speaker.play(samples(0, 80))
    assert speaker.overflows == 0
    speaker.play(samples(80, 40))  # 20 frames too many: the oldest 20 go
    assert speaker.overflows == 1
    assert speaker.buffered == pytest.approx(100 / RATE)
    assert pull(speaker, 100) == samples(20, 100)
    # a chunk larger than the whole buffer keeps its own newest part
    speaker.play(samples(1000, 30))
    speaker.play(samples(2000, 250))
    assert speaker.overflows == 2
    assert speaker.buffered == pytest.approx(100 / RATE)
    assert pull(speaker, 100) == samples(2150, 100)


def test_exactly_full_is_not_an_overflow() -> None:
    speaker = SpeakerStream(RATE, buffer_seconds=0.0125, prebuffer=0)
    speaker.play(samples(0, 60))
    speaker.play(samples(60, 40))
    assert speaker.overflows == 0
    assert pull(speaker, 100) == samples(0, 100)


def test_event_audio_is_converted_and_its_tail_flushed_at_the_sentence_end() -> None:
    speaker = SpeakerStream(16000, 2)
    src = AudioFormat(8000, 1, "pcm_s16le")
    tone = (np.sin(np.arange(800) * 0.2) * 8000).astype("<i2").tobytes()  # 0.1 s
    speaker.play(AudioChunk(tone[:800], src, last=False))
    half = speaker.buffered
    assert half < 0.05  # the resampler holds a few milliseconds back
    speaker.play(AudioChunk(tone[800:], src, last=True))
    assert speaker.buffered == pytest.approx(0.1, abs=0.0005)  # the tail came with the last chunk
    out = np.frombuffer(pull(speaker, 1600), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(out[:, 0], out[:, 1])  # mono duplicated to both channels
    assert np.abs(out).max() > 6000  # the tone, not silence


def test_event_audio_in_the_devices_format_is_queued_unchanged() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0)
    speaker.play(AudioChunk(samples(7, 33), FMT, last=False))
    assert pull(speaker, 33) == samples(7, 33)


def test_mute_while_playing_pauses_then_resumes_after_the_hangover() -> None:
    mic = Mic()
    speaker = SpeakerStream(RATE, prebuffer=0, mute_hangover=1.0)
    speaker.mute_while_playing(mic)
    speaker.play(b"")  # nothing to play: the microphone stays live
    assert mic.calls == []
    speaker.play(samples(0, 80))
    assert mic.calls == ["pause"]
    pull(speaker, 80)  # played out: the hangover starts now
    assert mic.calls == ["pause"]
    pull(speaker, 80)
    assert mic.calls == ["pause"]  # still within the hangover
    time.sleep(1.1)
    pull(speaker, 80)
    assert mic.calls == ["pause", "resume"]
    # new speech during a hangover restarts it
    speaker.play(samples(0, 8))
    pull(speaker, 80)
    time.sleep(0.3)
    speaker.play(samples(0, 8))
    pull(speaker, 80)
    time.sleep(0.3)
    pull(speaker, 80)  # 0.3 s after the last sample: too early
    assert mic.calls == ["pause", "resume", "pause", "pause"]


def test_switching_or_stopping_muting_resumes_the_previous_microphone() -> None:
    first, second = Mic(), Mic()
    speaker = SpeakerStream(RATE)
    speaker.mute_while_playing(first)
    speaker.mute_while_playing(first)  # the same one again: nothing to undo
    assert first.calls == []
    speaker.mute_while_playing(second)
    assert first.calls == ["resume"]
    speaker.play(samples(0, 8))
    assert second.calls == ["pause"]
    speaker.close()  # closing gives the microphone back
    assert second.calls == ["pause", "resume"]
    speaker.play(samples(0, 8))
    assert second.calls == ["pause", "resume"]  # no longer muted by this speaker


def test_close_discards_the_queue_and_stop_without_a_device_returns_at_once() -> None:
    speaker = SpeakerStream(RATE)
    speaker.play(samples(0, 800))
    speaker.close()
    assert speaker.buffered == 0.0
    speaker.play(samples(0, 800))
    start = time.monotonic()
    assert speaker.stop(timeout=5) is True  # nothing can play without a device: nothing to wait for
    assert time.monotonic() - start < 1.0
    assert speaker.buffered == 0.0


class Event:
    """An audio event from another library: ``pcm`` only, or with ``audio_format``."""

    def __init__(self, pcm: bytes, **fields: object) -> None:
        self.pcm = pcm
        self.__dict__.update(fields)


def test_defaults_are_palabra_s_format_five_seconds_of_buffer_and_100_ms_prebuffer() -> None:
    speaker = SpeakerStream()
    assert speaker.audio_format == AudioFormat(24000, 1, "pcm_s16le")
    speaker.play(AudioChunk(b"\x01\x00" * 2399, speaker.audio_format, last=False))
    assert pull(speaker, 100) == b"\x00" * 200  # 99.96 ms: still collecting
    speaker.play(AudioChunk(b"\x01\x00", speaker.audio_format, last=False))
    assert pull(speaker, 100) == b"\x01\x00" * 100  # 100 ms: playing
    speaker.play(b"\x00\x00" * 24000 * 6)
    assert speaker.overflows == 1 and speaker.buffered == 5.0


def test_buffer_seconds_zero_is_refused_for_what_it_is() -> None:
    with pytest.raises(ConfigurationError, match=r"^buffer_seconds must be > 0, got 0$"):
        SpeakerStream(buffer_seconds=0)


def test_events_without_a_format_or_an_end_flag() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0)
    speaker.play(Event(samples(0, 100)))  # no audio_format: the device's; no last: more follows
    assert pull(speaker, 100) == samples(0, 100)
    assert pull(speaker, 100) == b"\x00" * 200
    assert speaker.underruns == 1  # the sentence was not over
    speaker.play(Event(samples(0, 10), audio_format=FMT, last=True))
    pull(speaker, 100)
    assert speaker.underruns == 1


def test_a_single_converted_chunk_that_ends_a_sentence_is_played_whole() -> None:
    speaker = SpeakerStream(24000)
    one_second = (np.sin(np.arange(16000) * 0.1) * 8000).astype("<i2").tobytes()
    speaker.play(AudioChunk(one_second, AudioFormat(16000, 1), last=True))
    assert speaker.buffered == pytest.approx(1.0, abs=0.0005)


def test_exactly_the_prebuffer_starts_playback() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0.0125)  # 100 frames
    speaker.play(AudioChunk(samples(0, 100), FMT, last=False))
    assert pull(speaker, 100) == samples(0, 100)


def test_after_a_sentence_the_next_one_waits_for_the_prebuffer_again() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0.0125)  # 100 frames
    speaker.play(AudioChunk(samples(0, 30), FMT, last=True))
    pull(speaker, 100)  # the short sentence plays out
    pull(speaker, 100)  # idle
    speaker.play(AudioChunk(samples(0, 50), FMT, last=False))
    assert pull(speaker, 50) == b"\x00" * 100  # the next sentence collects its prebuffer


def test_running_dry_right_after_a_full_block_is_an_underrun_and_each_one_counts() -> None:
    speaker = SpeakerStream(RATE, prebuffer=0)
    for _ in range(2):
        speaker.play(AudioChunk(samples(0, 100), FMT, last=False))
        assert pull(speaker, 100) == samples(0, 100)  # the buffer is empty now
        assert pull(speaker, 100) == b"\x00" * 200  # and the sentence is not over
    assert speaker.underruns == 2


def test_the_default_hangover_is_about_a_third_of_a_second() -> None:
    mic = Mic()
    speaker = SpeakerStream(RATE, prebuffer=0)
    speaker.mute_while_playing(mic)
    speaker.play(samples(0, 80))
    pull(speaker, 80)
    time.sleep(0.6)
    pull(speaker, 80)
    assert mic.calls == ["pause", "resume"]


def test_play_from_plays_the_connection_s_audio_events() -> None:
    class Source(Connection):  # a product that speaks: it emits ``audio`` events
        provider = "source"
        event_names = Connection.event_names | {"audio"}

    conn = Source(None, output_format=FMT)
    speaker = SpeakerStream(RATE, prebuffer=0)
    speaker.play_from(conn)
    assert conn.listeners("audio") == [speaker.play]
    assert conn.listeners("warning") == []
    handler = conn.listeners("audio")[0]
    handler(AudioChunk(samples(0, 100), FMT, last=True))  # what the dispatcher calls
    assert pull(speaker, 100) == samples(0, 100)


# ------------------------------------------- PortAudio's side, simulated
#
# A stand-in for the sounddevice package (the seam between voxsync and
# PortAudio), to reach what a real device rarely does: refuse to open or
# start, fail to abort. tests/test_speaker.py plays through a real device.


class FakePortAudioError(Exception):
    """sounddevice.PortAudioError."""


class FakeOutputStream:
    def __init__(self, layer: FakeSoundDevice, **settings: object) -> None:
        self.layer = layer
        self.callback = settings.pop("callback")
        self.settings = settings
        self.calls: List[str] = []
        if layer.open_error is not None:
            raise layer.open_error
        layer.streams.append(self)

    def start(self) -> None:
        self.calls.append("start")
        if self.layer.start_error is not None:
            raise self.layer.start_error

    def stop(self) -> None:
        self.calls.append("stop")
        time.sleep(self.layer.stop_delay)  # the device confirms after playing what it holds
        if self.layer.stop_gate is not None:  # a device whose stop() hangs
            assert self.layer.stop_gate.wait(10)
        if self.layer.stop_error is not None:
            raise self.layer.stop_error

    def abort(self) -> None:
        self.calls.append("abort")
        if self.layer.abort_error is not None:
            raise self.layer.abort_error

    def close(self, ignore_errors: bool = False) -> None:
        assert ignore_errors
        self.calls.append("close")


class PlayingDevice:
    """PortAudio's output thread, played by a test: 100 frames from ``stream`` every 20 ms.

    ``start()`` / ``stop()`` (which joins the thread), or a ``with`` block;
    ``played`` holds what each call wrote.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.played: List[bytes] = []
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, name="portaudio-stand-in", daemon=True)

    def _run(self) -> None:
        while self._running.is_set():
            out = bytearray(200)
            self.stream.callback(out, 100, None, 0)
            self.played.append(bytes(out))
            time.sleep(0.02)

    def start(self) -> PlayingDevice:
        self._running.set()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running.clear()
        self._thread.join(5)

    def __enter__(self) -> PlayingDevice:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class FakeSoundDevice:
    PortAudioError = FakePortAudioError

    def __init__(self) -> None:
        self.streams: List[FakeOutputStream] = []
        self.open_error: object = None
        self.start_error: object = None
        self.abort_error: object = None
        self.stop_error: object = None
        self.stop_gate: Optional[threading.Event] = None
        self.stop_delay = 0.0

    def RawOutputStream(self, **settings: object) -> FakeOutputStream:  # noqa: N802
        return FakeOutputStream(self, **settings)


@pytest.fixture
def portaudio(monkeypatch: pytest.MonkeyPatch) -> FakeSoundDevice:
    fake = FakeSoundDevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    return fake


def test_the_device_is_opened_with_the_speaker_s_format(portaudio: FakeSoundDevice) -> None:
    speaker = SpeakerStream(48000, 2, device="USB", latency=0.2)
    assert speaker.start() is speaker
    assert speaker.start() is speaker  # idempotent: one device stream
    assert len(portaudio.streams) == 1
    stream = portaudio.streams[0]
    assert stream.settings == {
        "samplerate": 48000,
        "channels": 2,
        "dtype": "int16",
        "device": "USB",
        "latency": 0.2,
    }
    assert stream.calls == ["start"] and speaker.active
    assert repr(speaker) == f"<SpeakerStream {speaker.number} 48000 Hz stereo pcm_s16le running>"
    # what the device's callback gets is what was played
    speaker.play(AudioChunk(samples(0, 400) * 2, AudioFormat(48000, 2), last=True))
    out = bytearray(1600)
    stream.callback(out, 400, None, 0)
    assert bytes(out) == samples(0, 400) * 2
    speaker.close()
    assert stream.calls == ["start", "abort", "close"] and not speaker.active
    assert repr(speaker).endswith("stopped>")


def test_the_default_device_and_latency(portaudio: FakeSoundDevice) -> None:
    SpeakerStream().start().close()
    assert portaudio.streams[0].settings["device"] is None
    assert portaudio.streams[0].settings["latency"] == "low"


@pytest.mark.parametrize("stage", ["open", "start"])
@pytest.mark.parametrize(
    "error", [FakePortAudioError("Invalid device [PaErrorCode -9996]"), ValueError("bad")]
)
def test_a_device_that_cannot_play_is_named(
    portaudio: FakeSoundDevice, stage: str, error: Exception
) -> None:
    setattr(portaudio, f"{stage}_error", error)
    speaker = SpeakerStream(device="hdmi")
    with pytest.raises(DeviceError) as info:
        speaker.start()
    assert str(info.value) == (
        f"cannot open output device 'hdmi' for 24000 Hz mono pcm_s16le: {error}"
    )
    assert info.value.__cause__ is error
    assert not speaker.active
    if stage == "start":  # opened but not started: closed again, not left open
        assert portaudio.streams[0].calls == ["start", "close"]


def test_stop_plays_the_queue_out_then_stops_the_device(portaudio: FakeSoundDevice) -> None:
    speaker = SpeakerStream(RATE, prebuffer=0).start()
    stream = portaudio.streams[0]
    speaker.play(AudioChunk(samples(0, 200), FMT, last=True))
    played: List[bytes] = []

    def device() -> None:  # PortAudio's thread asks for 100 frames at a time
        for _ in range(3):
            out = bytearray(200)
            stream.callback(out, 100, None, 0)
            played.append(bytes(out))
            time.sleep(0.05)

    thread = threading.Thread(target=device)
    thread.start()
    assert speaker.stop(timeout=5) is True
    thread.join(5)
    assert played[:2] == [samples(0, 100), samples(100, 100)]
    assert stream.calls == ["start", "stop", "abort", "close"]
    assert not speaker.active


def test_a_device_that_fails_to_abort_is_still_closed(portaudio: FakeSoundDevice) -> None:
    portaudio.abort_error = FakePortAudioError("Stream is not active")
    speaker = SpeakerStream(RATE).start()
    speaker.play(samples(0, 100))
    speaker.close()
    assert portaudio.streams[0].calls == ["start", "abort", "close"]
    assert not speaker.active and speaker.buffered == 0.0
    speaker.close()


def test_a_device_that_fails_to_stop_is_closed_and_the_failure_logged(
    portaudio: FakeSoundDevice, caplog: pytest.LogCaptureFixture
) -> None:
    portaudio.stop_error = FakePortAudioError("Unanticipated host error [PaErrorCode -9999]")
    speaker = SpeakerStream(RATE).start()
    with caplog.at_level(logging.DEBUG, logger="voxsync.audio.speaker"):
        assert speaker.stop(timeout=5) is True  # nothing was queued
    assert portaudio.streams[0].calls == ["start", "stop", "abort", "close"]
    assert not speaker.active
    failures = [r for r in caplog.records if "stopping the device failed" in r.getMessage()]
    assert [r.getMessage() for r in failures] == [
        f"speaker {speaker.number}: stopping the device failed"
    ]
    assert failures[0].levelno == logging.DEBUG
    assert failures[0].exc_info is not None and failures[0].exc_info[1] is portaudio.stop_error


def test_stop_plays_a_tail_shorter_than_the_prebuffer_within_its_timeout(
    portaudio: FakeSoundDevice,
) -> None:
    speaker = SpeakerStream(RATE, prebuffer=0.1).start()  # 800 frames
    stream = portaudio.streams[0]
    tail = samples(1, 50)
    speaker.play(AudioChunk(tail, FMT, last=False))  # the sentence's end never comes
    with PlayingDevice(stream) as device:
        time.sleep(0.1)
        assert set(b"".join(device.played)) == {0}  # collecting the prebuffer: silence
        start = time.monotonic()
        assert speaker.stop(timeout=0.9) is True  # stop() plays it anyway
        assert time.monotonic() - start < 0.9
    assert tail in b"".join(device.played)


def test_stop_that_runs_out_of_time_says_so_and_discards_the_rest(
    portaudio: FakeSoundDevice,
) -> None:
    speaker = SpeakerStream(RATE).start()  # the device never asks for audio
    speaker.play(samples(0, RATE))  # one second queued
    start = time.monotonic()
    assert speaker.stop(timeout=0.2) is False
    assert 0.2 <= time.monotonic() - start < 1.0
    assert speaker.buffered == 0.0 and not speaker.active
    assert portaudio.streams[0].calls == ["start", "abort", "close"]  # not played out


def test_a_device_whose_stop_hangs_bounds_stop_and_cannot_block_exit(
    portaudio: FakeSoundDevice,
) -> None:
    portaudio.stop_gate = threading.Event()
    speaker = SpeakerStream(RATE).start()
    try:
        start = time.monotonic()
        assert speaker.stop(timeout=0.1) is False  # the device did not confirm
        assert time.monotonic() - start < 1.5
        assert not speaker.active
        stuck = [t for t in threading.enumerate() if t.name == "voxsync-speaker-stop"]
        assert len(stuck) == 1 and stuck[0].daemon  # never holds the interpreter at exit
    finally:
        portaudio.stop_gate.set()
    stuck[0].join(5)
    assert not stuck[0].is_alive()


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> List[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "voxsync.audio.speaker" and r.levelno == level
    ]


def test_close_reports_losses_and_discarded_audio_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="voxsync.audio.speaker")
    overflowing = SpeakerStream(RATE, buffer_seconds=0.01, prebuffer=0)  # 80 frames
    overflowing.play(samples(0, 100))
    overflowing.close()
    n = overflowing.number
    assert _messages(caplog, logging.WARNING) == [f"speaker {n}: 0 underruns, 1 overflows"]
    assert _messages(caplog, logging.DEBUG) == [f"speaker {n}: 160 queued bytes discarded"]
    caplog.clear()
    running_dry = SpeakerStream(RATE, prebuffer=0)
    running_dry.play(AudioChunk(samples(0, 10), FMT, last=False))
    pull(running_dry, 100)  # the sentence is not over: an underrun
    running_dry.close()
    assert _messages(caplog, logging.WARNING) == [
        f"speaker {running_dry.number}: 1 underruns, 0 overflows"
    ]
    assert _messages(caplog, logging.DEBUG) == []  # nothing was left to discard
    caplog.clear()
    SpeakerStream(RATE).close()  # nothing lost, nothing queued: nothing to say
    assert _messages(caplog, logging.WARNING) == _messages(caplog, logging.DEBUG) == []


def test_a_failed_abort_is_logged_with_its_traceback(
    portaudio: FakeSoundDevice, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="voxsync.audio.speaker")
    portaudio.abort_error = FakePortAudioError("Stream is not active")
    speaker = SpeakerStream(RATE).start()
    speaker.close()
    failed = [r for r in caplog.records if "aborting failed" in r.getMessage()]
    assert [r.getMessage() for r in failed] == [f"speaker {speaker.number}: aborting failed"]
    assert failed[0].exc_info is not None and failed[0].exc_info[1] is portaudio.abort_error


def test_muting_before_anything_played_keeps_the_microphone_live() -> None:
    mic = Mic()
    speaker = SpeakerStream(RATE, prebuffer=0)
    speaker.mute_while_playing(mic)
    assert pull(speaker, 100) == b"\x00" * 200  # nothing queued yet: silence, no error
    assert mic.calls == []


def test_stop_gives_the_device_half_a_second_past_the_timeout_to_confirm(
    portaudio: FakeSoundDevice,
) -> None:
    portaudio.stop_delay = 0.2
    speaker = SpeakerStream(RATE).start()
    assert speaker.stop(timeout=0.05) is True  # confirmed 0.15 s late: still in time
    assert portaudio.streams[0].calls == ["start", "stop", "abort", "close"]


def test_leaving_the_with_block_plays_the_queue_out(portaudio: FakeSoundDevice) -> None:
    with SpeakerStream(RATE, prebuffer=0) as speaker:
        stream = portaudio.streams[0]
        speaker.play(AudioChunk(samples(0, 200), FMT, last=True))
        device = PlayingDevice(stream).start()
    device.stop()
    assert b"".join(device.played).startswith(samples(0, 200))
    assert stream.calls == ["start", "stop", "abort", "close"]
