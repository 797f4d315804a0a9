"""Helpers for tests that recognise the sample recordings in ``samples/audio``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import soundfile as sf
import soxr

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "audio"
TRANSCRIPTS: Dict[str, str] = json.loads((SAMPLES / "transcripts.json").read_text("utf-8"))
#: Highest word error rate accepted for a sample.
MAX_WER = 0.15


def sample(name: str) -> Path:
    return SAMPLES / name


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance / number of reference words."""
    ref: List[str] = reference.lower().split()
    hyp: List[str] = hypothesis.lower().split()
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (r != h),  # substitution
            )
        previous = current
    return previous[-1] / len(ref)


def pcm16(name: str) -> bytes:
    """A sample's 16 kHz mono 16-bit PCM."""
    data, rate = sf.read(str(sample(name)), dtype="int16")
    assert rate == 16000 and data.ndim == 1
    return bytes(data.tobytes())


def write_variant(
    name: str,
    dest: Path,
    *,
    rate: int = 16000,
    channels: int = 1,
    subtype: str = "PCM_16",
    cut_end: Optional[float] = None,
) -> Path:
    """Write a sample at another rate / channel count (and optionally shortened)."""
    data, src_rate = sf.read(str(sample(name)), dtype="float32")
    if cut_end is not None:
        data = data[: len(data) - int(cut_end * src_rate)]
    if rate != src_rate:
        data = soxr.resample(data, src_rate, rate)
    if channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    sf.write(str(dest), data, rate, subtype=subtype)
    return dest


def chunks(data: bytes, size: int) -> Sequence[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
