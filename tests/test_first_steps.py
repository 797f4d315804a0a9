"""First steps that used to surprise a newcomer: each message is one clear
sentence, samples agree on their flags and print the right words."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from pulse import listening, private_mic, virtual_mic  # noqa: F401
from speech import MAX_WER, TRANSCRIPTS, sample, wer

import voxsync
from voxsync.audio import AudioFormat, MicrophoneStream, stream_file
from voxsync.audio.microphone import _open_failure
from voxsync.cli import main
from voxsync.emulators.uhlive import UhliveEmulator

ROOT = Path(__file__).resolve().parent.parent


def test_missing_audio_file_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        stream_file(voxsync.connection(), "nope.wav")
    message = str(info.value)
    assert message == f"audio file not found: 'nope.wav' (relative paths start in {tmp_path})"
    assert info.value.errno == 2 and info.value.filename == "nope.wav"
    absolute = tmp_path / "gone.wav"
    with pytest.raises(FileNotFoundError) as info:
        stream_file(voxsync.connection(), absolute)
    assert str(info.value) == f"audio file not found: {str(absolute)!r}"


def test_device_that_cannot_open_is_one_sentence_with_one_hint() -> None:
    with pytest.raises(voxsync.DeviceError) as info:
        MicrophoneStream(device=4242).start()
    message = str(info.value)
    assert message == (
        "cannot open input device 4242 for 16000 Hz mono pcm_s16le: there is no such "
        "input device; voxsync.audio.list_devices() lists the input devices"
    )


def test_no_default_device_says_what_to_do() -> None:
    fmt = AudioFormat(16000, 1)
    message = _open_failure(None, fmt, RuntimeError("Error querying device -1"))
    assert message == (
        "cannot open the default input device for 16000 Hz mono pcm_s16le: there is none; "
        "connect a microphone or choose a device; "
        "voxsync.audio.list_devices() lists the input devices"
    )
    assert "-1" not in message


def test_cli_listen_bad_device_has_one_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", "--device", "4242"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "voxsync: error: cannot read from audio device 4242: cannot open input device 4242 "
        "for 16000 Hz mono pcm_s16le: there is no such input device (see 'voxsync devices')\n"
    )


@pytest.fixture()
def uhlive_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[UhliveEmulator]:
    with UhliveEmulator(engine="scripted", transcripts=["the weather is nice today"]) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("UHLIVE_API_CLIENT", "docs")
        monkeypatch.setenv("UHLIVE_API_SECRET", "docs")
        yield emu


def test_cli_speaker_alias_is_not_a_diagnostic_prefix(
    uhlive_env: UhliveEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--provider", "uhlive", "transcribe", "--no-partials", str(sample("yes.wav"))])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "[voxsync] the weather is nice today\n"
    assert not out.startswith("voxsync:")


def test_samples_use_one_emulator_flag() -> None:
    flags = {
        path.name: set(re.findall(r"--emulat\w*", path.read_text("utf-8")))
        for path in (ROOT / "samples").glob("*.py")
    }
    with_flag = {name: found for name, found in flags.items() if found}
    assert len(with_flag) >= 4, flags
    assert all(found == {"--emulator"} for found in with_flag.values()), with_flag


@pytest.mark.timeout(180)
def test_uhlive_conversation_sample_prints_the_right_words() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "samples" / "uhlive_conversation.py"), "--emulator"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    finals = re.findall(r"^\[Alice +[\d.]+s\] (.*)$", run.stdout, re.M)
    assert finals, run.stdout
    assert wer(TRANSCRIPTS["meeting.wav"], " ".join(finals)) <= MAX_WER, run.stdout


def test_listen_meter_moves_and_gives_way_to_partials() -> None:
    import io

    from voxsync.cli import Display

    out = io.StringIO()
    display = Display(out, io.StringIO(), live=True)
    display.meter(0.0)
    display.meter(1.0)
    assert out.getvalue() == "\r\x1b[Klistening ▱▱▱▱▱▱▱▱▱▱\r\x1b[Klistening ▰▰▰▰▰▰▰▰▰▰"
    display.event("transcript", voxsync.Transcript("hello", is_final=False))
    shown = out.getvalue()
    display.meter(0.5)  # a partial is on the line: the meter waits
    assert out.getvalue() == shown and shown.endswith("\r\x1b[Khello")
    display.event("transcript", voxsync.Transcript("hello there", is_final=True))
    assert out.getvalue().endswith("\r\x1b[Khello\r\x1b[Khello there\n")
    display.meter(0.5)
    assert out.getvalue().endswith("hello there\n\r\x1b[Klistening ▰▰▰▰▰▰▰▰▰▱")
    display.end()
    assert out.getvalue().endswith("\r\x1b[K")
    json_out = io.StringIO()
    Display(json_out, io.StringIO(), fmt="json").meter(1.0)
    assert json_out.getvalue() == ""


@pytest.mark.timeout(180)
def test_listen_keeps_speech_said_while_connecting(private_mic: Any) -> None:
    import os
    import signal

    from voxsync.emulators.aiola import AiolaEmulator

    with AiolaEmulator() as emu:
        emu.faults.rest_failures = 2  # connect() retries the auth calls: it takes a while
        env = {
            **os.environ,
            "AIOLA_BASE_URL": emu.base_url,
            "AIOLA_AUTH_BASE_URL": emu.base_url,
            "AIOLA_API_KEY": "test-key",
            **private_mic.env,  # no other test run's audio reaches this microphone
        }
        argv = [sys.executable, "-m", "voxsync", "--provider", "aiola", "listen"]
        if private_mic.device is not None:
            argv += ["--device", str(private_mic.device)]
        with listening(argv, env) as proc:
            # speak while the stream is not open yet
            assert emu.active_streams == 0
            playback = private_mic.play(sample("meeting.wav"))
            playback.wait(30)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "listening" not in out  # no meter when stdout is not a terminal
    # the first words, said before the stream was open, are there (on a shared
    # machine other audio may reach the virtual microphone after them)
    reference = TRANSCRIPTS["meeting.wav"]
    heard = out.split()[: len(reference.split())]
    assert wer(reference, " ".join(heard)) <= MAX_WER, out
