"""First steps that used to surprise a newcomer: each message is one clear
sentence, samples agree on their flags and print the right words."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
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
