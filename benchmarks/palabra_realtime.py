"""Palabra realtime benchmark: TTS time-to-first-audio and STT final latency.

The Palabra emulator runs in a child process (so it does not compete for
this process's interpreter lock); N sessions run at once in this process,
each on its own thread, for N in ``--sessions`` (default 1 10 50):

* **TTS**: each session calls ``synthesize()`` ``--rounds`` times; the time
  to first audio is from the call to the start of the handler of the
  generation's first ``audio`` chunk; the total is the call's duration
  (the emulator paces chunks at about real time, so it includes the
  speech's length). The emulator's eSpeak NG synthesizes one text at a time
  for the whole process, so the time to first audio grows with N.
* **STT**: each session streams ``samples/audio/meeting.wav`` at real time,
  then silence at real time until the final arrives; the latency is from
  sending the last chunk that holds speech to the start of the final's
  handler. It includes the emulator's end-of-utterance silence
  (``--silence-ms``, 500 ms by default), which is what a real service also
  waits for.

The emulator recognizes with the scripted engine by default (cheap and
deterministic, so the numbers show the sockets and the client); pass
``--engine pocketsphinx`` for real recognition. Prints a table and writes
JSON to ``benchmarks/results/palabra_realtime.json``.

Usage::

    python benchmarks/palabra_realtime.py [--sessions 1 10 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _common import percentile, start_server, stop_server  # noqa: E402

CHUNK_SECONDS = 0.1


def serve(pipe: Any, engine: str = "scripted", silence_ms: int = 500) -> None:
    from voxsync.emulators.palabra import PalabraEmulator

    options: Dict[str, Any] = {"silence_ms": silence_ms}
    if engine == "scripted":
        options["transcripts"] = ["the meeting starts at nine thirty"]
    with PalabraEmulator(engine=engine, api_key="bench-key", **options) as emu:
        pipe.send(emu.base_url)
        pipe.recv()  # "stop"


def _serve_scripted(pipe: Any) -> None:
    serve(pipe, "scripted")


def _serve_pocketsphinx(pipe: Any) -> None:
    serve(pipe, "pocketsphinx")


def tts_round(base_url: str, sessions: int, rounds: int) -> Dict[str, Any]:
    from voxsync.palabra import Palabra

    first_audio: List[float] = []
    totals: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()
    start = threading.Barrier(sessions)

    def one(i: int) -> None:
        palabra = Palabra(api_url=base_url)
        try:
            with palabra.tts(ws_url=base_url.replace("http", "ws", 1), token="bench-key") as tts:
                seen: Dict[str, float] = {}
                tts.on("audio", lambda c: seen.setdefault(c.generation_id, time.perf_counter()))
                start.wait(30)
                for r in range(rounds):
                    before = set(seen)
                    t0 = time.perf_counter()
                    tts.synthesize(f"Session {i} says sentence number {r}.", timeout=120)
                    t1 = time.perf_counter()
                    new = [t for g, t in seen.items() if g not in before]
                    with lock:
                        totals.append(t1 - t0)
                        if new:
                            first_audio.append(min(new) - t0)
        except Exception as exc:  # reported, not hidden
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return {
        "sessions": sessions,
        "synthesize_calls": len(totals),
        "first_audio_ms_p50": 1000 * percentile(first_audio, 50),
        "first_audio_ms_p99": 1000 * percentile(first_audio, 99),
        "total_ms_p50": 1000 * percentile(totals, 50),
        "errors": errors,
    }


def stt_round(base_url: str, sessions: int) -> Dict[str, Any]:
    import numpy as np
    import soundfile as sf

    from voxsync.palabra import Palabra

    data, rate = sf.read(str(ROOT / "samples" / "audio" / "meeting.wav"), dtype="int16")
    loud = np.nonzero(np.abs(data) > 500)[0]
    speech = data[: loud[-1] + 1].tobytes()
    step = int(rate * CHUNK_SECONDS) * 2
    silence = b"\0" * step
    latencies: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()
    start = threading.Barrier(sessions)

    def one(i: int) -> None:
        palabra = Palabra(api_url=base_url)
        final = threading.Event()
        got: List[float] = []

        def on_transcript(ev: Any) -> None:
            if ev.is_final and not final.is_set():
                got.append(time.perf_counter())
                final.set()

        try:
            # one socket per identity: each session uses its own REST session
            session = palabra.create_session()
            with palabra.stt(language="en", session=session, silence_tail=0) as stt:
                stt.on("transcript", on_transcript)
                start.wait(30)
                t0 = time.perf_counter()
                sent = 0
                for pos in range(0, len(speech), step):
                    stt.send(speech[pos : pos + step])
                    sent += 1
                    time.sleep(max(0.0, t0 + sent * CHUNK_SECONDS - time.perf_counter()))
                end_of_speech = time.perf_counter()
                while not final.wait(
                    max(0.0, t0 + (sent + 1) * CHUNK_SECONDS - time.perf_counter())
                ):
                    stt.send(silence)
                    sent += 1
                    if time.perf_counter() - end_of_speech > 30:
                        raise TimeoutError("no final within 30 s")
            palabra.delete_session(session)
            with lock:
                latencies.append(got[0] - end_of_speech)
        except Exception as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return {
        "sessions": sessions,
        "finals": len(latencies),
        "final_latency_ms_p50": 1000 * percentile(latencies, 50),
        "final_latency_ms_p99": 1000 * percentile(latencies, 99),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=["scripted", "pocketsphinx"], default="scripted")
    args = parser.parse_args()

    target = _serve_scripted if args.engine == "scripted" else _serve_pocketsphinx
    proc, pipe, base_url = start_server(target)
    import os

    os.environ.setdefault("PALABRA_CLIENT_ID", "emulator-client-id")
    os.environ.setdefault("PALABRA_CLIENT_SECRET", "emulator-client-secret")
    results: Dict[str, Any] = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "engine": args.engine,
        "tts": [],
        "stt": [],
    }
    try:
        print(f"{'sessions':>8} {'TTS first audio p50/p99 ms':>28} {'STT final p50/p99 ms':>24}")
        for n in args.sessions:
            tts = tts_round(base_url, n, args.rounds)
            stt = stt_round(base_url, n)
            results["tts"].append(tts)
            results["stt"].append(stt)
            print(
                f"{n:>8} {tts['first_audio_ms_p50']:>13.0f} / {tts['first_audio_ms_p99']:<12.0f}"
                f" {stt['final_latency_ms_p50']:>11.0f} / {stt['final_latency_ms_p99']:<10.0f}"
                + ("  errors: " + "; ".join((tts["errors"] + stt["errors"])[:3]))
                * bool(tts["errors"] or stt["errors"])
            )
    finally:
        stop_server(proc, pipe)
    out = ROOT / "benchmarks" / "results" / "palabra_realtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
