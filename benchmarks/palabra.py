"""Palabra translation benchmark: N real-time sessions against the local emulator.

The emulator (scripted recognition on a signal-energy endpointer, the marked
pseudo-translation, real eSpeak NG speech) runs in a child process so it
does not compete for this process's interpreter lock. Each of N sessions
streams, paced to the wall clock in 320 ms chunks, a loop of a real speech
sample followed by ``--gap`` seconds of silence. The script measures, on the
client side:

* end of speech -> first translated audio chunk: from ``send()`` of the chunk
  that ends the utterance to the handler of the first ``audio`` event of its
  translation (p50 / p99, ms); it includes the emulator's end-of-utterance
  silence detection (its ``silence_ms``), translation and synthesis;
* client CPU % per real-time stream (this process's CPU time / wall / N), and
  the emulator's for reference; voxsync threads per stream.

Prints a table and writes JSON to benchmarks/results/palabra.json.

Usage::

    python benchmarks/palabra.py [--sessions 1 10 50] [--rounds 3] [--gap 1.5]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import percentile, start_server, stop_server  # noqa: E402

from voxsync.audio.files import read_audio  # noqa: E402
from voxsync.audio.format import AudioFormat  # noqa: E402

SPEECH = ROOT / "samples" / "audio" / "yes.wav"
FORMAT = AudioFormat(24000, 1, "pcm_s16le")
CHUNK = FORMAT.nbytes(0.32)


def serve(pipe: Any) -> None:
    """Child process: run the emulator until the parent says stop."""
    from voxsync.emulators.palabra import PalabraEmulator

    with PalabraEmulator(
        engine="scripted",
        transcripts=["good morning everyone"],
        idle_timeout=600,
        pacing_tolerance=600,
    ) as emu:
        pipe.send(emu.env())
        pipe.recv()


def voxsync_threads() -> int:
    return sum(t.name.startswith("voxsync-palabra-") for t in threading.enumerate())


def timeline(rounds: int, gap: float) -> List[tuple[bytes, bool]]:
    """Chunks of one session: (chunk, ends an utterance)."""
    speech, _ = read_audio(SPEECH, FORMAT)
    speech += bytes(-len(speech) % CHUNK)
    silence = bytes(FORMAT.nbytes(gap) // CHUNK * CHUNK)
    out: List[tuple[bytes, bool]] = []
    for _ in range(rounds):
        pieces = [speech[i : i + CHUNK] for i in range(0, len(speech), CHUNK)]
        out += [(p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
        out += [(silence[i : i + CHUNK], False) for i in range(0, len(silence), CHUNK)]
    return out


def run(n: int, rounds: int, gap: float) -> Dict[str, Any]:
    from voxsync.palabra import Palabra

    proc = psutil.Process()
    server, parent, env = start_server(serve)
    try:
        server_proc = psutil.Process(server.pid)
        client = Palabra(
            env["PALABRA_CLIENT_ID"], env["PALABRA_CLIENT_SECRET"], api_url=env["PALABRA_API_URL"]
        )
        warm = client.translation(source="en", targets="es")  # lazy imports out of the figures
        warm.connect(timeout=30)
        warm.close()
        threads_before = voxsync_threads()
        lock = threading.Lock()
        latencies: List[float] = []
        ends: List[List[float]] = [[] for _ in range(n)]
        seen: List[set[str]] = [set() for _ in range(n)]
        sessions = []
        for i in range(n):
            session = client.translation(source="en", targets="es", name=f"bench-{i}")

            def on_audio(ev: Any, i: int = i) -> None:
                now = time.perf_counter()
                if ev.id in seen[i]:
                    return
                seen[i].add(ev.id)
                with lock:
                    done = [t for t in ends[i] if t <= now]
                    if done:
                        latencies.append(now - done[-1])

            session.on("audio", on_audio)
            session.connect(timeout=30)
            sessions.append(session)
        threads = voxsync_threads() - threads_before
        chunks = timeline(rounds, gap)
        cpu0, scpu0 = proc.cpu_times(), server_proc.cpu_times()
        start = time.perf_counter()
        slot = 0.32 / n
        for step, (chunk, ends_utterance) in enumerate(chunks):
            for i, session in enumerate(sessions):
                delay = start + step * 0.32 + i * slot - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                session.send_audio(chunk)
                if ends_utterance:
                    with lock:
                        ends[i].append(time.perf_counter())
        for session in sessions:
            session.end(timeout=60)
        wall = time.perf_counter() - start
        cpu1, scpu1 = proc.cpu_times(), server_proc.cpu_times()
        cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        scpu = (scpu1.user + scpu1.system) - (scpu0.user + scpu0.system)
        return {
            "sessions": n,
            "audio_seconds": round(len(chunks) * 0.32, 2),
            "utterances_measured": len(latencies),
            "utterances_sent": n * rounds,
            "client_cpu_pct_per_stream": round(100 * cpu / wall / n, 3),
            "emulator_cpu_pct_per_stream": round(100 * scpu / wall / n, 3),
            "threads_per_stream": round(threads / n, 2),
            "speech_end_to_audio_ms_p50": round(1000 * percentile(latencies, 50), 1),
            "speech_end_to_audio_ms_p99": round(1000 * percentile(latencies, 99), 1),
        }
    finally:
        stop_server(server, parent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--rounds", type=int, default=3, help="utterances per session")
    parser.add_argument("--gap", type=float, default=1.5, help="silence after each (s)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    header = (
        f"{'sessions':>8} {'client CPU %/stream':>20} {'emulator CPU %/stream':>22} "
        f"{'threads/stream':>15} {'speech end -> audio p50 ms':>27} {'p99 ms':>8} {'measured':>9}"
    )
    print(header)
    rows = []
    for n in args.sessions:
        row = run(n, args.rounds, args.gap)
        rows.append(row)
        print(
            f"{n:>8} {row['client_cpu_pct_per_stream']:>20} "
            f"{row['emulator_cpu_pct_per_stream']:>22} "
            f"{row['threads_per_stream']:>15} {row['speech_end_to_audio_ms_p50']:>27} "
            f"{row['speech_end_to_audio_ms_p99']:>8} "
            f"{row['utterances_measured']:>4}/{row['utterances_sent']}",
            flush=True,
        )
    result = {
        "benchmark": "palabra",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": psutil.cpu_count(),
        "rows": rows,
    }
    output: Optional[Path] = args.output or ROOT / "benchmarks" / "results" / "palabra.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
