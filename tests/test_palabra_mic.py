"""A virtual microphone translated to a virtual speaker (``translate --mic --play``'s path)."""

from __future__ import annotations

import time
from typing import Any, List

import numpy as np
import pytest
from pulse import VirtualMic, _pactl
from speech import sample
from test_speaker import SINK, Recorder

from voxsync.audio import MicrophoneStream, SpeakerStream
from voxsync.emulators.palabra import PalabraEmulator
from voxsync.palabra import Palabra, Transcript


def test_microphone_to_speaker(virtual_mic: VirtualMic, monkeypatch: pytest.MonkeyPatch) -> None:
    sinks = [line.split("\t")[1] for line in _pactl("list", "short", "sinks").splitlines() if line]
    if SINK not in sinks:
        _pactl("load-module", "module-null-sink", f"sink_name={SINK}")
    monkeypatch.setenv("PULSE_SINK", SINK)
    finals: List[Any] = []
    with PalabraEmulator(engine="scripted", transcripts=["hello world"]) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        rec = Recorder()
        try:
            rec.wait_started()
            session = Palabra().translation(source="en", targets=["es"])
            session.on("translation", lambda ev: finals.append(ev) if ev.is_final else None)
            with session, SpeakerStream(24000, device=virtual_mic.device or "pulse") as speaker:
                speaker.play_from(session)
                mic = MicrophoneStream(
                    samplerate=session.input_format.sample_rate,
                    blocksize=2400,
                    device=virtual_mic.device,
                )
                speaker.mute_while_playing(mic)
                with mic:
                    mic.stream_to(session)
                    virtual_mic.play(sample("yes.wav")).wait(20)
                    deadline = time.monotonic() + 15
                    while not (finals and speaker.played_bytes) and time.monotonic() < deadline:
                        time.sleep(0.1)
                session.end(eos_timeout=1)
        finally:
            recorded = rec.stop()
    assert [f.text for f in finals] == ["[es] hello world"]
    assert isinstance(finals[0], Transcript) and finals[0].source_language == "en"
    assert speaker.played_bytes > 24000  # over half a second of synthesized Spanish played
    assert np.abs(recorded).max() > 3000  # and it came out of the (virtual) speaker
