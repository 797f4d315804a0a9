"""Regenerate the sample recordings in ``samples/audio/``.

The samples are synthetic speech made with flite (Debian/Ubuntu package
``flite``), converted to 16 kHz mono 16-bit PCM WAV, plus
``transcripts.json`` mapping each file name to its exact lower-case words.

Usage::

    python samples/make_audio.py            # write the files
    python samples/make_audio.py --check    # also decode each one with pocketsphinx

With ``--check`` every file is decoded with pocketsphinx's bundled en-us
model and the script exits with status 1 if any transcript differs, so a
change of voice or sentence that the recognizer does not handle is noticed
before the file is kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
#: Silence added before and after every recording, in seconds.
PADDING = 0.3
#: Silence between the two sentences of ``two_utterances.wav``, in seconds.
GAP = 1.0
#: flite voice; ``slt`` is the one pocketsphinx's en-us model recognises best.
VOICE = "slt"

#: file name -> sentences spoken in it (several sentences are separated by GAP).
SAMPLES: Dict[str, Tuple[str, ...]] = {
    "quick_brown_fox.wav": ("the quick brown fox jumps over the lazy dog",),
    "call_at_three.wav": ("please call me at three o'clock tomorrow",),
    "phone_number.wav": ("my number is five five five one two three four",),
    "meeting.wav": ("the meeting starts at nine thirty",),
    "yes.wav": ("yes",),
    "no.wav": ("no",),
    "two_utterances.wav": ("the weather is nice today", "please turn off the radio"),
}


def synthesize(text: str, voice: str, workdir: str) -> np.ndarray:
    """Speak ``text`` with flite and return float32 mono samples at 16 kHz."""
    path = str(Path(workdir) / "speech.wav")
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", path], check=True)
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.asarray(mono, dtype=np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def render(sentences: Sequence[str], voice: str, workdir: str) -> np.ndarray:
    """Concatenate the spoken sentences with padding and gaps."""
    parts: List[np.ndarray] = [silence(PADDING)]
    for i, sentence in enumerate(sentences):
        if i:
            parts.append(silence(GAP))
        parts.append(synthesize(sentence, voice, workdir))
    parts.append(silence(PADDING))
    return np.concatenate(parts)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


def decode(path: str) -> str:
    """Decode a 16 kHz mono WAV file in one batch with pocketsphinx."""
    from pocketsphinx import Decoder

    data, rate = sf.read(path, dtype="int16")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: expected {SAMPLE_RATE} Hz, got {rate} Hz")
    decoder = Decoder(loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(data.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "audio",
        help="output folder (default: samples/audio next to this script)",
    )
    parser.add_argument("--voice", default=VOICE, help="flite voice (default: %(default)s)")
    parser.add_argument(
        "--check", action="store_true", help="decode every file with pocketsphinx and compare"
    )
    args = parser.parse_args(argv)

    if shutil.which("flite") is None:
        print("flite is not installed (apt-get install flite)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    transcripts: Dict[str, str] = {}
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        for name, sentences in SAMPLES.items():
            path = str(args.out / name)
            audio = render(sentences, args.voice, workdir)
            sf.write(path, to_pcm16(audio), SAMPLE_RATE, subtype="PCM_16")
            expected = " ".join(sentences).lower()
            transcripts[name] = expected
            line = f"{name}: {len(audio) / SAMPLE_RATE:.2f} s"
            if args.check:
                got = decode(path)
                ok = got == expected
                failures += not ok
                line += f"  {'ok' if ok else 'MISMATCH'}: {got!r}"
            print(line)
    with (args.out / "transcripts.json").open("w", encoding="utf-8") as f:
        json.dump(transcripts, f, indent=2, sort_keys=True)
        f.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
