"""``voxsync speak`` and ``--provider palabra-stt`` / ``palabra-tts``, run as commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import soundfile as sf
from speech import MAX_WER, TRANSCRIPTS, sample, wer

import voxsync
from voxsync.emulators.palabra import PalabraEmulator
from voxsync.emulators.palabra.synth import synthesizer_available
from voxsync.palabra.stt import SpeechToText
from voxsync.palabra.tts import TextToSpeech


@pytest.fixture(scope="module")
def emu() -> Iterator[PalabraEmulator]:
    with PalabraEmulator() as e:
        yield e


def env(emu: PalabraEmulator) -> Dict[str, str]:
    return {**os.environ, **emu.env()}


def run(args: Any, emu: PalabraEmulator, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voxsync", *args],
        env=env(emu),
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


needs_synth = pytest.mark.skipif(
    not synthesizer_available(), reason="pip install 'voxsync[emulators]' (eSpeak NG)"
)


@needs_synth
def test_speak_text_to_wav(emu: PalabraEmulator, tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = run(["speak", "Hello there. How are you today?", "-o", str(out)], emu)
    assert result.returncode == 0, result.stderr
    data, rate = sf.read(str(out), dtype="int16")
    assert rate == 24000 and len(data) / rate > 1.5
    assert "wrote" in result.stderr


@needs_synth
def test_speak_from_stdin_in_spanish_at_16k(emu: PalabraEmulator, tmp_path: Path) -> None:
    out = tmp_path / "es.wav"
    text = "Hola a todos.\nEsta es una prueba.\n"
    result = run(
        ["speak", "-", "-o", str(out), "--language", "es", "--sample-rate", "16000"],
        emu,
        input=text,
    )
    assert result.returncode == 0, result.stderr
    data, rate = sf.read(str(out), dtype="int16")
    assert rate == 16000 and len(data) / rate > 1.5


def test_speak_needs_an_output(emu: PalabraEmulator) -> None:
    result = run(["speak", "Hello."], emu)
    assert result.returncode != 0
    assert "-o OUT.wav and/or --play" in result.stderr


def test_transcribe_with_palabra_stt(emu: PalabraEmulator) -> None:
    result = run(
        [
            "--provider",
            "palabra-stt",
            "--palabra-translate",
            "es",
            "transcribe",
            "--format",
            "json",
            str(sample("meeting.wav")),
        ],
        emu,
    )
    assert result.returncode == 0, result.stderr
    import json

    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    finals = [x for x in lines if x.get("event") == "transcript" and x.get("is_final")]
    assert finals and wer(TRANSCRIPTS["meeting.wav"], finals[-1]["text"]) <= MAX_WER
    assert any(x.get("event") == "translation" for x in lines)


def test_registry_makes_both_products(
    emu: PalabraEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in emu.env().items():
        monkeypatch.setenv(key, value)
    stt = voxsync.connection("palabra-stt", language="en", translate=["es"])
    tts = voxsync.connection("palabra-tts", language="es")
    assert isinstance(stt, SpeechToText) and stt.translate_languages == ("es",)
    assert isinstance(tts, TextToSpeech) and tts.settings.language == "es"
    assert tts.input_format is None and tts.output_format.sample_rate == 24000
    stt.close()
    tts.close()


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@needs_synth
def test_samples_run_against_the_emulator(emu: PalabraEmulator, tmp_path: Path) -> None:
    out = tmp_path / "tts.wav"
    tts = subprocess.run(
        [sys.executable, str(SAMPLES / "palabra_tts.py"), str(out)],
        env=env(emu),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tts.returncode == 0, tts.stderr
    assert sf.info(str(out)).duration > 5
    stt = subprocess.run(
        [sys.executable, str(SAMPLES / "palabra_stt.py"), str(sample("meeting.wav")), "es"],
        env=env(emu),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stt.returncode == 0, stt.stderr
    lines = stt.stdout.splitlines()
    assert lines[0].startswith("[en] ")
    assert wer(TRANSCRIPTS["meeting.wav"], lines[0][5:]) <= MAX_WER
    assert lines[1].strip().startswith("[es] ")
