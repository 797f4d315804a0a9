"""SpeakerStream for real: PulseAudio null sink, its monitor recorded with parec."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Iterator, List

import numpy as np
import pytest
from pulse import VirtualMic, _pactl

from voxsync.audio import AudioFormat, MicrophoneStream, SpeakerStream
from voxsync.errors import ConfigurationError
from voxsync.events import AudioChunk

SINK = "vspk"
RATE = 24000


class Recorder:
    """``parec`` on the sink's monitor, read on a thread (24 kHz mono s16le)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [
                "parec",
                f"--device={SINK}.monitor",
                "--format=s16le",
                f"--rate={RATE}",
                "--channels=1",
                "--raw",
                "--latency-msec=20",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.parts: List[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            data = self.proc.stdout.read1(4096)  # type: ignore[attr-defined]
            if not data:
                return
            self.parts.append(data)

    def wait_started(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(map(len, self.parts)) < RATE:  # half a second of (silent) monitor audio
            assert time.monotonic() < deadline, "parec delivered nothing"
            time.sleep(0.02)

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(5)
        self.thread.join(5)
        return np.frombuffer(b"".join(self.parts), dtype="<i2").astype(np.float64)


@pytest.fixture
def speaker_sink(virtual_mic: VirtualMic, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    sinks = [line.split("\t")[1] for line in _pactl("list", "short", "sinks").splitlines() if line]
    if SINK not in sinks:
        _pactl("load-module", "module-null-sink", f"sink_name={SINK}")
    monkeypatch.setenv("PULSE_SINK", SINK)  # new PulseAudio streams of this process play there
    yield "pulse" if virtual_mic.device == "pulse" else os.environ.get("VOXSYNC_SPEAKER", "pulse")


def _speech() -> bytes:
    from voxsync.emulators.palabra.synth import SpeechSynthesizer

    return SpeechSynthesizer().synthesize("hola, esto es una prueba del altavoz", "es")


def _envelope(x: np.ndarray, n: int = 1200) -> np.ndarray:
    m = len(x) // n
    return np.sqrt((x[: m * n].reshape(m, n) ** 2).mean(axis=1))


def assert_same_sound(played: np.ndarray, recorded: np.ndarray) -> None:
    """``recorded`` (from the sink's monitor, 24 kHz) is the sound ``played`` (24 kHz)."""
    played = played.astype(np.float64)
    # the same energy came out (PulseAudio converts 24 kHz mono to the sink's format and back)
    ratio = float((recorded**2).sum() / (played**2).sum())
    assert 0.6 < ratio < 1.4, ratio
    # and the same sound: the loudness contour (10 ms steps) of the recording, aligned
    ea, eb = _envelope(played, 240), _envelope(recorded, 240)
    assert len(eb) >= len(ea)
    best = max(
        float(np.corrcoef(eb[k : k + len(ea)], ea)[0, 1]) for k in range(0, len(eb) - len(ea) + 1)
    )
    assert best > 0.8, best


def test_plays_what_it_received(speaker_sink: str) -> None:
    pcm = _speech()
    rec = Recorder()
    try:
        rec.wait_started()
        # a prebuffer that absorbs the jitter of a busy machine
        with SpeakerStream(RATE, 1, device=speaker_sink, prebuffer=0.4) as speaker:
            chunks = [pcm[i : i + 9600] for i in range(0, len(pcm), 9600)]
            for i, chunk in enumerate(chunks):
                speaker.play(
                    AudioChunk(chunk, AudioFormat(RATE, 1, "pcm_s16le"), last=i == len(chunks) - 1)
                )
                time.sleep(0.2)  # as a stream delivers it
        time.sleep(0.3)
    finally:
        recorded = rec.stop()
    assert speaker.played_bytes == len(pcm)
    assert speaker.overflows == 0
    assert_same_sound(np.frombuffer(pcm, dtype="<i2"), recorded)


def test_converts_the_event_format(speaker_sink: str) -> None:
    pcm16k = np.zeros(16000, dtype="<i2")
    pcm16k[::20] = 8000
    with SpeakerStream(RATE, 2, device=speaker_sink) as speaker:
        speaker.play(AudioChunk(pcm16k.tobytes(), AudioFormat(16000, 1, "pcm_s16le"), last=True))
        assert speaker.stop(timeout=5)
    # one second of 16 kHz mono became about one second of 24 kHz stereo
    assert abs(speaker.played_bytes - RATE * 2 * 2) < 2000


def test_underruns_and_overflows_are_counted(speaker_sink: str) -> None:
    one_second = b"\x10\x00" * RATE
    fmt = AudioFormat(RATE, 1, "pcm_s16le")
    with SpeakerStream(RATE, 1, device=speaker_sink, buffer_seconds=0.5) as speaker:
        speaker.play(AudioChunk(one_second, fmt, last=False))  # more than the buffer holds
        assert speaker.overflows == 1
        assert speaker.buffered <= 0.5
        deadline = time.monotonic() + 5
        while speaker.underruns == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the sentence's next chunk never comes: the buffer runs dry
        assert speaker.underruns >= 1
        speaker.play(AudioChunk(b"\x10\x00" * 2400, fmt, last=True))
        before = speaker.underruns
        assert speaker.stop(timeout=5)
    assert speaker.underruns == before  # a sentence's end is not an underrun


def test_close_is_immediate_and_stop_is_bounded(speaker_sink: str) -> None:
    speaker = SpeakerStream(RATE, 1, device=speaker_sink, buffer_seconds=10).start()
    speaker.play(b"\x00\x00" * RATE * 8)
    start = time.monotonic()
    assert speaker.stop(timeout=0.5) is False
    assert time.monotonic() - start < 2.0
    speaker = SpeakerStream(RATE, 1, device=speaker_sink, buffer_seconds=10).start()
    speaker.play(b"\x00\x00" * RATE * 8)
    start = time.monotonic()
    speaker.close()
    assert time.monotonic() - start < 1.0 and not speaker.active
    speaker.close()  # idempotent


def test_mute_while_playing(speaker_sink: str) -> None:
    mic = MicrophoneStream()  # not started: pause/resume only switch delivery
    fmt = AudioFormat(RATE, 1, "pcm_s16le")
    with SpeakerStream(RATE, 1, device=speaker_sink, mute_hangover=0.1) as speaker:
        speaker.mute_while_playing(mic)
        speaker.play(AudioChunk(b"\x00\x01" * (RATE // 2), fmt, last=True))
        assert mic.paused
        deadline = time.monotonic() + 5
        while mic.paused and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not mic.paused  # resumed after the speech and the hangover


def test_bad_arguments() -> None:
    with pytest.raises(ConfigurationError):
        SpeakerStream(buffer_seconds=0)
    with pytest.raises(ConfigurationError):
        SpeakerStream(buffer_seconds=1, prebuffer=2)
    speaker = SpeakerStream()
    with pytest.raises(ConfigurationError):
        speaker.play(b"\x00")  # not a whole frame
