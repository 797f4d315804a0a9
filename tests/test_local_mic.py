"""The offline provider fed by a (virtual) microphone, as a user would run it."""

from __future__ import annotations

import signal
import sys
import threading
from typing import List

import pytest
from pulse import VirtualMic, listening, virtual_mic  # noqa: F401
from speech import MAX_WER, TRANSCRIPTS, sample, wer

import voxsync
from voxsync.audio import MicrophoneStream
from voxsync.cli import main
from voxsync.events import Transcript


def test_microphone_stream_to_local_connection(virtual_mic: VirtualMic) -> None:
    conn = voxsync.connect("local")
    events: List[Transcript] = []
    two_finals = threading.Event()

    @conn.on("transcript")
    def collect(ev: Transcript) -> None:
        events.append(ev)
        if sum(e.is_final for e in events) >= 2:
            two_finals.set()

    with MicrophoneStream(device=virtual_mic.device, samplerate=16000, blocksize=1600) as mic:
        mic.stream_to(conn)
        virtual_mic.play(sample("two_utterances.wav")).wait(30)
        two_finals.wait(10)  # the second final needs its trailing silence to arrive
    conn.finish(timeout=30)
    text = " ".join(e.text for e in events if e.is_final)
    assert wer(TRANSCRIPTS["two_utterances.wav"], text) <= MAX_WER, text
    assert any(not e.is_final for e in events)


def test_cli_listen_prints_the_words(
    virtual_mic: VirtualMic,
    capsys: pytest.CaptureFixture[str],
) -> None:
    player = threading.Timer(2.0, lambda: virtual_mic.play(sample("meeting.wav")).wait(30))
    player.start()
    try:
        argv = ["listen", "--duration", "7"]
        if virtual_mic.device is not None:
            argv += ["--device", str(virtual_mic.device)]
        code = main(argv)
    finally:
        player.join(30)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert wer(TRANSCRIPTS["meeting.wav"], " ".join(captured.out.split())) <= MAX_WER, captured.out


def test_cli_listen_ctrl_c_prints_the_last_words(virtual_mic: VirtualMic) -> None:
    argv = [sys.executable, "-m", "voxsync", "listen", "--silence-ms", "3000"]
    if virtual_mic.device is not None:
        argv += ["--device", str(virtual_mic.device)]
    with listening(argv) as proc:
        virtual_mic.play(sample("meeting.wav")).wait(30)
        # With 3 s of silence needed to end the utterance, nothing final has
        # been printed yet: only the Ctrl+C path can deliver these words.
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert wer(TRANSCRIPTS["meeting.wav"], " ".join(out.split())) <= MAX_WER, out
