"""aiOla streaming benchmark: N real-time streams against the local emulator.

The emulator (scripted engine: one transcript per 0.5 s of audio, payloads
stamped with their emit time) runs in a child process, so it does not
compete for this process's interpreter lock. N ``AiolaConnection`` streams
(one session token shared, 16 kHz s16le, 100 ms chunks paced to the wall
clock by one feeder thread, the streams staggered within the 100 ms period
as N independent microphones would be) run for ``--seconds``.
Measured on the client side:

* CPU % per stream: this process's CPU time / wall time / N (the
  emulator's CPU % per stream is shown for reference);
* resident memory and threads added per stream;
* event latency: from the emulator's emit (``emitted_at``, wall clock) to
  the start of the ``transcript`` handler (p50 / p99, ms): the socket, the
  Socket.IO decoding and voxsync's dispatcher.

Targets: at N = 50, at most 1 % of one core per stream and p99 latency at
most 10 ms. Prints a table and writes JSON to benchmarks/results/aiola.json.

Usage::

    python benchmarks/aiola.py [--streams 1 10 50] [--seconds 3] [--transports websocket]
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

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import percentile, start_server, stop_server  # noqa: E402

CHUNK = 3200  # 100 ms of 16 kHz s16le
SEGMENT_BYTES = 16000  # one transcript per 0.5 s of audio


def serve(pipe: Any) -> None:
    """Child process: run the emulator until told to stop."""
    from voxsync.emulators.aiola import AiolaEmulator
    from voxsync.emulators.engine import make_engine

    engine = make_engine(
        "scripted", every_bytes=SEGMENT_BYTES, transcripts=["benchmark words"], partial_ms=0
    )
    with AiolaEmulator(engine=engine, stamp_events=True) as emu:
        pipe.send(emu.base_url)
        pipe.recv()


def voxsync_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("voxsync-aiola-"))


def run(
    n: int, seconds: float, base_url: str, transports: List[str], server: psutil.Process
) -> Dict[str, Any]:
    from voxsync.aiola import AiolaClient

    proc = psutil.Process()
    client = AiolaClient(api_key="bench", base_url=base_url)
    client.get_access_token()
    latencies: List[float] = []
    lock = threading.Lock()
    transcripts = [0] * n
    rss0, threads0 = proc.memory_info().rss, voxsync_threads()
    conns = []
    for i in range(n):
        conn = client.stt.stream(lang_code="en", transports=transports, finish_silence=0)

        def on_transcript(ev: Any, i: int = i) -> None:
            now = time.time()
            with lock:
                latencies.append(now - float(ev["emitted_at"]))
                transcripts[i] += 1

        conn.on("transcript", on_transcript)
        conn.connect(timeout=30)
        conns.append(conn)
    rss1, threads1 = proc.memory_info().rss, voxsync_threads()
    chunk = bytes(CHUNK)
    steps = int(seconds / 0.1)
    cpu0, srv0, wall0 = sum(proc.cpu_times()[:2]), sum(server.cpu_times()[:2]), time.monotonic()
    # streams start at staggered times within the 100 ms chunk period, as
    # independent microphones would: no artificial bursts of N events at once
    slot = 0.1 / n
    for step in range(steps):
        for i, conn in enumerate(conns):
            delay = wall0 + step * 0.1 + i * slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.send(chunk)
    time.sleep(0.5)  # let the last transcripts arrive
    wall = time.monotonic() - wall0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    srv = sum(server.cpu_times()[:2]) - srv0
    for conn in conns:
        conn.close()
    client.close()
    expected = int(steps * CHUNK / SEGMENT_BYTES)
    return {
        "streams": n,
        "seconds": seconds,
        "transports": transports,
        "client_cpu_percent_per_stream": 100 * cpu / wall / n,
        "emulator_cpu_percent_per_stream": 100 * srv / wall / n,
        "rss_mb_per_stream": (rss1 - rss0) / n / 2**20,
        "threads_per_stream": (threads1 - threads0) / n,
        "latency_ms_p50": 1000 * percentile(latencies, 50),
        "latency_ms_p99": 1000 * percentile(latencies, 99),
        "transcripts": sum(transcripts),
        "transcripts_expected": expected * n,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=3.0, help="real-time audio per stream")
    parser.add_argument(
        "--transports",
        nargs="+",
        default=["polling", "websocket"],
        choices=("polling", "websocket"),
        help="Engine.IO transports of the client (default: aiOla's, polling then upgrade)",
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "aiola.json"
    )
    args = parser.parse_args()

    server, parent, base_url = start_server(serve, spawn=True)
    results = []
    try:
        for n in args.streams:
            results.append(
                run(n, args.seconds, base_url, args.transports, psutil.Process(server.pid))
            )
    finally:
        stop_server(server, parent)

    header = (
        f"{'streams':>7} {'cpu%/stream':>11} {'emu cpu%':>9} {'RSS MB/str':>10} "
        f"{'thr/str':>7} {'p50 ms':>7} {'p99 ms':>7} {'transcripts':>12}"
    )
    print(header)
    for r in results:
        print(
            f"{r['streams']:>7} {r['client_cpu_percent_per_stream']:>11.2f} "
            f"{r['emulator_cpu_percent_per_stream']:>9.2f} {r['rss_mb_per_stream']:>10.2f} "
            f"{r['threads_per_stream']:>7.1f} {r['latency_ms_p50']:>7.2f} "
            f"{r['latency_ms_p99']:>7.2f} "
            f"{r['transcripts']:>5}/{r['transcripts_expected']:<6}"
        )
    last = results[-1]
    print(
        f"targets at {last['streams']} streams: cpu <= 1 % per stream: "
        f"{'met' if last['client_cpu_percent_per_stream'] <= 1 else 'NOT met'}; "
        f"p99 <= 10 ms: {'met' if last['latency_ms_p99'] <= 10 else 'NOT met'}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "aiola",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": psutil.cpu_count(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
