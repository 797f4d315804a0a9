"""Benchmark of the offline (``local``) provider.

    python benchmarks/local.py [--rounds 5] [--loops 3] [--no-realtime]

Measures, on the sample recordings joined into one stream (1 s of silence
between them):

* **real-time factor** (processing time / audio duration) of
  :class:`voxsync.local.LocalConnection` fed as fast as it decodes, and of raw
  pocketsphinx decoding of the same audio in the same run, written the way
  pocketsphinx's documentation does live decoding (``Endpointer`` segments,
  one ``Decoder`` utterance per segment). Their ratio is voxsync's overhead
  (target: at most 1.05). voxsync's :class:`~voxsync.local.Recognizer` alone
  is measured too, to split the ratio into the recognizer's own extra work
  (the first utterance's cepstral-mean estimate and its second decoding,
  decoding margins around utterances) and the connection's (threads, queue,
  events). Each is measured ``--rounds`` times, interleaved, and the
  fastest round is kept (the least disturbed by other processes);
* **end of speech to final**: with audio paced to real time, the delay from
  the moment the last word of an utterance was sent to its final
  ``transcript`` event (the utterance-ending silence, 500 ms by default,
  is part of it);
* **CPU per real-time stream**: CPU time of the process / wall time during
  the paced run (1.0 = one core);
* **word error rate (WER) on two sets**, each file decoded as its own
  stream and the WER averaged over the files: the synthesized samples
  (``samples/audio``) and real human read speech (five LibriVox utterances
  shipped in Debian's ``pocketsphinx-testdata`` package, see
  ``tests/data/README``). Each by raw pocketsphinx decoding the file whole
  (one utterance, whole-file cepstral mean: the engine's best case), by
  voxsync's :class:`~voxsync.local.Recognizer` at 16 kHz, and by the same at
  8 kHz (the audio downsampled with :func:`voxsync.audio.convert`, the way
  telephone audio reaches the Uh!ive emulator), plain and with the Uh!ive
  emulator's bandwidth extension (what its recognition runs). The real files are also
  joined into one stream (1 s of silence apart) and decoded live, to cover
  the later utterances of a stream.

Prints a table and writes ``benchmarks/results/local.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import voxsync  # noqa: E402
from voxsync.events import Transcript  # noqa: E402

SAMPLES = ROOT / "samples" / "audio"
#: Where Debian's pocketsphinx-testdata package puts its LibriVox utterances.
REAL_SPEECH = Path(
    os.environ.get("VOXSYNC_REAL_SPEECH_DIR", "/usr/share/pocketsphinx/test/data/librivox")
)
RATE = 16000
CHUNK = RATE * 2 // 10  # 100 ms of 16-bit mono


def build_stream(loops: int) -> Tuple[bytes, List[str]]:
    """All samples, 1 s of silence apart, ``loops`` times; and their expected words."""
    transcripts: Dict[str, str] = json.loads((SAMPLES / "transcripts.json").read_text("utf-8"))
    gap = np.zeros(RATE, dtype="<i2")
    parts: List[np.ndarray] = []
    words: List[str] = []
    for _ in range(loops):
        for name in sorted(transcripts):
            data, rate = sf.read(str(SAMPLES / name), dtype="int16")
            assert rate == RATE
            parts += [data.astype("<i2"), gap]
            words += transcripts[name].split()
    return np.concatenate(parts).tobytes(), words


Item = Tuple[str, bytes, str]  # name, 16 kHz PCM, reference transcript


def synthesized_set() -> List[Item]:
    transcripts: Dict[str, str] = json.loads((SAMPLES / "transcripts.json").read_text("utf-8"))
    items = []
    for name in sorted(transcripts):
        data, rate = sf.read(str(SAMPLES / name), dtype="int16")
        assert rate == RATE
        items.append((name, data.astype("<i2").tobytes(), transcripts[name]))
    return items


def real_speech_set() -> Optional[List[Item]]:
    """The LibriVox utterances and their transcripts, or None if not installed."""
    listing = REAL_SPEECH / "transcription"
    if not listing.is_file():
        return None
    items = []
    for line in listing.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        text, _, name = line.rpartition("(")
        words = [w for w in text.split() if w not in ("<s>", "</s>")]
        data, rate = sf.read(str(REAL_SPEECH / (name.strip(" )") + ".wav")), dtype="int16")
        assert rate == RATE and data.ndim == 1
        items.append((name.strip(" )"), data.astype("<i2").tobytes(), " ".join(words)))
    return items


def raw_whole(pcm: bytes) -> str:
    """Raw pocketsphinx, a fresh decoder, the file decoded whole as one utterance."""
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def recognizer_text(pcm: bytes, rate: int = RATE) -> str:
    """voxsync's Recognizer on one stream (100 ms chunks), its finals joined."""
    from voxsync.local import Recognizer

    chunk = rate * 2 // 10
    with Recognizer(rate) as recognizer:
        finals: List[str] = []
        for start in range(0, len(pcm), chunk):
            finals += [s.text for s in recognizer.feed(pcm[start : start + chunk]) if s.is_final]
        finals += [s.text for s in recognizer.flush() if s.is_final]
    return " ".join(finals)


def to_8k(pcm: bytes) -> bytes:
    from voxsync.audio import AudioFormat, convert

    return convert(pcm, AudioFormat(sample_rate=RATE), AudioFormat(sample_rate=8000))


def uhlive_emulator_text(pcm8: bytes) -> str:
    """8 kHz audio as the Uh!ive emulator recognises it: bandwidth extension, then 16 kHz."""
    from voxsync.emulators.uhlive.conversation import BandwidthExtender
    from voxsync.emulators.uhlive.server import DEFAULT_BANDWIDTH_EXTENSION

    extender = BandwidthExtender(DEFAULT_BANDWIDTH_EXTENSION)
    chunk = 1600
    pcm16 = b"".join(
        extender.process(pcm8[i : i + chunk], last=i + chunk >= len(pcm8))
        for i in range(0, len(pcm8), chunk)
    )
    return recognizer_text(pcm16)


def accuracy(items: List[Item]) -> Dict[str, Any]:
    """Per-file WER: raw pocketsphinx, voxsync at 16 kHz, at 8 kHz, and as the Uh!ive emulator."""
    files: Dict[str, Dict[str, float]] = {}
    for name, pcm, reference in items:
        ref = reference.split()
        files[name] = {
            "raw_pocketsphinx_whole": wer(ref, raw_whole(pcm).split()),
            "voxsync_16k": wer(ref, recognizer_text(pcm).split()),
            "voxsync_8k": wer(ref, recognizer_text(to_8k(pcm), 8000).split()),
            "uhlive_emulator_8k": wer(ref, uhlive_emulator_text(to_8k(pcm)).split()),
        }
    keys = ("raw_pocketsphinx_whole", "voxsync_16k", "voxsync_8k", "uhlive_emulator_8k")
    return {
        "mean_wer": {k: statistics.mean(f[k] for f in files.values()) for k in keys},
        "files": files,
    }


def joined(items: List[Item]) -> Tuple[bytes, List[str]]:
    gap = bytes(RATE * 2)
    pcm = b"".join(p + gap for _, p, _ in items)
    return pcm, [w for _, _, ref in items for w in ref.split()]


def raw_pocketsphinx(pcm: bytes) -> Tuple[float, float, str]:
    """Decode with pocketsphinx alone: (seconds, cpu seconds, text). Model load excluded."""
    from pocketsphinx import Decoder, Endpointer

    decoder = Decoder(loglevel="FATAL")
    endpointer = Endpointer()
    frame = endpointer.frame_bytes
    texts: List[str] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(pcm) - frame + 1, frame):
        was_speech = endpointer.in_speech
        speech = endpointer.process(pcm[start : start + frame])
        if speech is None:
            continue
        if not was_speech:
            decoder.start_utt()
        decoder.process_raw(speech)
        if not endpointer.in_speech:
            decoder.end_utt()
            hyp = decoder.hyp()
            if hyp is not None and hyp.hypstr:
                texts.append(hyp.hypstr)
    if endpointer.in_speech:
        decoder.end_utt()
        hyp = decoder.hyp()
        if hyp is not None and hyp.hypstr:
            texts.append(hyp.hypstr)
    return time.perf_counter() - wall, time.process_time() - cpu, " ".join(texts)


def voxsync_recognizer(pcm: bytes) -> Tuple[float, float, str]:
    """voxsync's streaming recognizer alone, no connection. Model load excluded."""
    from voxsync.local import Recognizer

    recognizer = Recognizer()
    finals: List[str] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(pcm), CHUNK):
        finals += [s.text for s in recognizer.feed(pcm[start : start + CHUNK]) if s.is_final]
    finals += [s.text for s in recognizer.flush() if s.is_final]
    return time.perf_counter() - wall, time.process_time() - cpu, " ".join(finals)


def voxsync_local(pcm: bytes) -> Tuple[float, float, str]:
    """Decode through LocalConnection, as fast as possible. Model load (connect) excluded."""
    conn = voxsync.connect("local")
    finals: List[str] = []
    conn.on("transcript", lambda ev: ev.is_final and finals.append(ev.text))
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(pcm), CHUNK):
        conn.send(pcm[start : start + CHUNK])
    conn.finish(timeout=600)
    return time.perf_counter() - wall, time.process_time() - cpu, " ".join(finals)


def realtime_latency(pcm: bytes) -> Dict[str, Any]:
    """Pace the audio to real time; measure end of speech -> final, and CPU use."""
    conn = voxsync.connect("local")
    arrivals: List[Tuple[float, Transcript]] = []
    lock = threading.Lock()

    @conn.on("transcript")
    def on_transcript(ev: Transcript) -> None:
        if ev.is_final:
            with lock:
                arrivals.append((time.perf_counter(), ev))

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i, start in enumerate(range(0, len(pcm), CHUNK)):
        due = t0 + i * CHUNK / (2 * RATE)
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        conn.send(pcm[start : start + CHUNK])
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    conn.finish(timeout=60)
    delays = []
    for arrived, ev in arrivals:
        assert ev.end is not None
        # the chunk holding the last word's end was sent at t0 + (chunk index) * 0.1 s
        sent = t0 + int(ev.end * 10) / 10 + 0.1
        delays.append(arrived - sent)
    return {
        "audio_seconds": len(pcm) / (2 * RATE),
        "finals": len(delays),
        "end_of_speech_to_final_median_s": statistics.median(delays) if delays else None,
        "end_of_speech_to_final_max_s": max(delays) if delays else None,
        "cpu_per_realtime_stream": cpu / wall,
    }


def wer(reference: List[str], hypothesis: List[str]) -> float:
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(1, len(reference))


def _seconds(value: Optional[float]) -> str:
    return "n/a (no final)" if value is None else f"{value:.3f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark of the local provider.")
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each (default 5)")
    parser.add_argument("--loops", type=int, default=3, help="times the samples repeat (default 3)")
    parser.add_argument("--no-realtime", action="store_true", help="skip the paced run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "local.json")
    args = parser.parse_args()

    pcm, words = build_stream(args.loops)
    seconds = len(pcm) / (2 * RATE)
    print(f"audio: {seconds:.1f} s ({args.loops} x the samples), {args.rounds} rounds each")
    runs: Dict[str, List[Tuple[float, float, str]]] = {"raw": [], "rec": [], "local": []}
    measures = [("raw", raw_pocketsphinx), ("rec", voxsync_recognizer), ("local", voxsync_local)]
    for i in range(args.rounds):
        # rotate the order so that none is always measured first
        for key, measure in measures[i % 3 :] + measures[: i % 3]:
            runs[key].append(measure(pcm))
    raw_runs, rec_runs, local_runs = runs["raw"], runs["rec"], runs["local"]
    raw = min(raw_runs, key=lambda r: r[0])
    rec = min(rec_runs, key=lambda r: r[0])
    local = min(local_runs, key=lambda r: r[0])
    result: Dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "audio_seconds": seconds,
        "rounds": args.rounds,
        "raw_pocketsphinx": {
            "rtf": raw[0] / seconds,
            "cpu_rtf": raw[1] / seconds,
            "wer": wer(words, raw[2].split()),
            "all_rtf": [r[0] / seconds for r in raw_runs],
        },
        "voxsync_recognizer": {
            "rtf": rec[0] / seconds,
            "cpu_rtf": rec[1] / seconds,
            "wer": wer(words, rec[2].split()),
            "all_rtf": [r[0] / seconds for r in rec_runs],
        },
        "voxsync_local": {
            "rtf": local[0] / seconds,
            "cpu_rtf": local[1] / seconds,
            "wer": wer(words, local[2].split()),
            "all_rtf": [r[0] / seconds for r in local_runs],
        },
    }
    result["overhead_ratio"] = local[0] / raw[0]
    result["overhead_ratio_cpu"] = min(r[1] for r in local_runs) / min(r[1] for r in raw_runs)
    result["recognizer_vs_raw"] = rec[0] / raw[0]
    result["connection_vs_recognizer"] = local[0] / rec[0]
    result["target_overhead_ratio"] = 1.05
    print("word error rates (each file its own stream) ...")
    result["synthesized"] = accuracy(synthesized_set())
    real = real_speech_set()
    if real is None:
        print(f"real speech: not found in {REAL_SPEECH} (apt-get install pocketsphinx-testdata)")
        result["real_speech"] = None
    else:
        result["real_speech"] = accuracy(real)
        pcm_real, words_real = joined(real)
        result["real_speech"]["joined_stream_wer"] = {
            "raw_pocketsphinx_live": wer(words_real, raw_pocketsphinx(pcm_real)[2].split()),
            "voxsync_16k": wer(words_real, voxsync_recognizer(pcm_real)[2].split()),
        }
    if not args.no_realtime:
        pcm_rt, _ = build_stream(1)
        result["realtime"] = realtime_latency(pcm_rt)

    rows = [
        ("raw pocketsphinx RTF", f"{result['raw_pocketsphinx']['rtf']:.3f}"),
        ("voxsync Recognizer alone RTF", f"{result['voxsync_recognizer']['rtf']:.3f}"),
        ("voxsync local connection RTF", f"{result['voxsync_local']['rtf']:.3f}"),
        ("overhead ratio (target <= 1.05)", f"{result['overhead_ratio']:.3f}"),
        ("same, in CPU time", f"{result['overhead_ratio_cpu']:.3f}"),
        ("  of which: recognizer / raw", f"{result['recognizer_vs_raw']:.3f}"),
        ("  of which: connection / recognizer", f"{result['connection_vs_recognizer']:.3f}"),
        ("synthesized stream: raw live WER", f"{result['raw_pocketsphinx']['wer']:.1%}"),
        ("synthesized stream: voxsync local WER", f"{result['voxsync_local']['wer']:.1%}"),
    ]
    for label, key in (("synthesized", "synthesized"), ("real speech", "real_speech")):
        acc = result[key]
        if acc is None:
            rows.append((f"{label}: WER", "not installed"))
            continue
        mean = acc["mean_wer"]
        rows += [
            (f"{label}: raw pocketsphinx, whole files", f"{mean['raw_pocketsphinx_whole']:.1%}"),
            (f"{label}: voxsync Recognizer, 16 kHz", f"{mean['voxsync_16k']:.1%}"),
            (f"{label}: voxsync Recognizer, 8 kHz", f"{mean['voxsync_8k']:.1%}"),
            (f"{label}: Uh!ive emulator, 8 kHz", f"{mean['uhlive_emulator_8k']:.1%}"),
        ]
    if result["real_speech"] is not None:
        stream = result["real_speech"]["joined_stream_wer"]
        rows += [
            ("real speech, one stream: raw live", f"{stream['raw_pocketsphinx_live']:.1%}"),
            ("real speech, one stream: voxsync", f"{stream['voxsync_16k']:.1%}"),
        ]
    if "realtime" in result:
        rt = result["realtime"]
        rows += [
            ("end of speech -> final, median", _seconds(rt["end_of_speech_to_final_median_s"])),
            ("end of speech -> final, max", _seconds(rt["end_of_speech_to_final_max_s"])),
            ("CPU per real-time stream", f"{rt['cpu_per_realtime_stream']:.1%} of a core"),
        ]
    width = max(len(name) for name, _ in rows)
    print("-" * (width + 14))
    for name, value in rows:
        print(f"{name:<{width}}  {value:>11}")
    print("-" * (width + 14))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
