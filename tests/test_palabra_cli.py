"""The command line with Palabra: ``voxsync translate`` and ``--provider palabra``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import soundfile as sf
from speech import sample

from voxsync.cli import main
from voxsync.emulators.palabra import PalabraEmulator


def run(argv: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[PalabraEmulator]:
    with PalabraEmulator(engine="scripted", transcripts=["hello world"]) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


def test_translate_prints_source_and_translations(
    emu: PalabraEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_wav = tmp_path / "out.wav"
    code, out, err = run(
        [
            "translate",
            str(sample("yes.wav")),
            "--from",
            "en",
            "--to",
            "es",
            "--to",
            "fr",
            "-o",
            str(out_wav),
            "--eos-timeout",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "hello world"
    assert sorted(lines[1:]) == ["[es] [es] hello world", "[fr] [fr] hello world"]
    data, rate = sf.read(str(out_wav), dtype="int16")
    assert rate == 24000 and len(data) > 24000  # speech in two languages


def test_translate_json(emu: PalabraEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        [
            "translate",
            str(sample("yes.wav")),
            "--to",
            "es",
            "--format",
            "json",
            "--eos-timeout",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    names = {e["event"] for e in events}
    assert {"transcript", "translation", "audio", "task", "end_of_stream"} <= names
    final = next(e for e in events if e["event"] == "translation")
    assert final["text"] == "[es] hello world" and final["language"] == "es"
    assert all(isinstance(e["pcm_bytes"], int) for e in events if e["event"] == "audio")


def test_translate_needs_input(emu: PalabraEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["translate", "--to", "es"], capsys)
    assert code != 0 and "FILE" in err and "--mic" in err


def test_provider_palabra_transcribe(
    emu: PalabraEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["--provider", "palabra", "--palabra-to", "de", "transcribe", str(sample("yes.wav"))],
        capsys,
    )
    assert code == 0, err
    assert out.splitlines() == ["hello world", "[de] [de] hello world"]


def test_emulate_palabra_serves(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxsync", "emulate", "palabra", "--engine", "scripted"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        from voxsync.palabra import Palabra

        session = Palabra(
            "emulator-client-id", "emulator-client-secret", api_url=url
        ).create_session()
        assert session.ws_url.startswith("ws://127.0.0.1:") and "?" not in session.ws_url
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def test_translate_output_takes_one_input(
    emu: PalabraEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = [str(sample("yes.wav"))] * 2
    code, out, err = run(["translate", *files, "-o", str(tmp_path / "x.wav")], capsys)
    assert code == 1 and out == ""
    assert "-o takes one input" in err
    assert not (tmp_path / "x.wav").exists()


def test_translate_device_is_for_the_microphone(
    emu: PalabraEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["translate", str(sample("yes.wav")), "--device", "1"], capsys)
    assert code == 1 and out == ""
    assert "--device is the microphone for --mic" in err
