"""Palabra's commands on the (virtual) microphone and speakers, run as a person runs them.

``voxsync speak --play``, ``voxsync translate --mic --play`` (ended with
Ctrl+C) and ``voxsync listen --provider palabra-stt``. The commands run as
child processes: their microphone is a private PulseAudio null sink
(``PULSE_SOURCE``), their speaker the null sink the speaker tests record
(``PULSE_SINK``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Dict, Iterator, List

import numpy as np
import pytest
import soundfile as sf
from pulse import PrivateMic, listening, private_mic  # noqa: F401
from speech import MAX_WER, TRANSCRIPTS, sample, wer
from test_speaker import Recorder, assert_same_sound, speaker_sink  # noqa: F401

from voxsync.emulators.palabra import PalabraEmulator
from voxsync.emulators.palabra.synth import synthesizer_available

needs_synth = pytest.mark.skipif(
    not synthesizer_available(), reason="pip install 'voxsync[emulators]' (eSpeak NG)"
)


@pytest.fixture(scope="module")
def scripted() -> Iterator[PalabraEmulator]:
    with PalabraEmulator(engine="scripted", transcripts=["hello world"]) as server:
        yield server


def child_env(emu: PalabraEmulator, extra: Dict[str, str]) -> Dict[str, str]:
    # os.environ carries PULSE_SINK, set by the speaker_sink fixture
    return {**os.environ, **emu.env(), **extra}


class Lines:
    """A child's output read line by line on a thread, so a test can wait for one."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: List[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    def join(self, timeout: float) -> List[str]:
        self._thread.join(timeout)
        return self.lines


@needs_synth
def test_speak_plays_the_speech_it_writes(speaker_sink: str, tmp_path: Path) -> None:
    out = tmp_path / "spoken.wav"
    with PalabraEmulator() as emu:
        rec = Recorder()
        try:
            rec.wait_started()
            text = "Hello there. How are you today?"
            result = subprocess.run(
                [sys.executable, "-m", "voxsync", "speak", text, "--play", "-o", str(out)],
                env=child_env(emu, {}),
                capture_output=True,
                text=True,
                timeout=120,
            )
            time.sleep(0.3)  # the monitor's own latency
        finally:
            recorded = rec.stop()
    assert result.returncode == 0, result.stderr
    written, rate = sf.read(str(out), dtype="int16")
    assert rate == 24000 and len(written) / rate > 1.5
    assert_same_sound(written, recorded)  # the speakers gave out the speech the file holds


@needs_synth
def test_translate_mic_play_until_ctrl_c(
    scripted: PalabraEmulator, private_mic: PrivateMic, speaker_sink: str
) -> None:
    argv = [sys.executable, "-m", "voxsync", "translate", "--mic", "--play", "--to", "es"]
    argv += ["--eos-timeout", "1"]
    if private_mic.device is not None:
        argv += ["--device", private_mic.device]
    rec = Recorder()
    try:
        rec.wait_started()
        with listening(argv, child_env(scripted, private_mic.env)) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            out = Lines(proc.stdout)
            private_mic.play(sample("yes.wav")).wait(20)
            assert out.wait_for("[es] hello world", 30), out.lines
            # the translated speech is played while the command still listens
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not (
                rec.parts and np.abs(np.frombuffer(b"".join(rec.parts), "<i2")).max() > 3000
            ):
                time.sleep(0.1)
            assert proc.poll() is None  # a microphone session ends only with Ctrl+C
            proc.send_signal(signal.SIGINT)
            err = proc.stderr.read()
            assert proc.wait(30) == 0, err
            lines = out.join(10)
    finally:
        recorded = rec.stop()
    assert lines[0] == "hello world" and lines[1] == "[es] [es] hello world", lines
    assert np.abs(recorded).max() > 3000  # the Spanish speech came out of the speaker
    assert "Traceback" not in err


def test_listen_with_palabra_stt(private_mic: PrivateMic) -> None:
    argv = [sys.executable, "-m", "voxsync", "--provider", "palabra-stt", "listen"]
    argv += ["--duration", "8"]
    if private_mic.device is not None:
        argv += ["--device", private_mic.device]
    with PalabraEmulator() as emu, listening(argv, child_env(emu, private_mic.env)) as proc:
        private_mic.play(sample("meeting.wav")).wait(30)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert wer(TRANSCRIPTS["meeting.wav"], " ".join(out.split())) <= MAX_WER, out
