"""Runtime benchmark: send() cost, dispatcher latency, threads and memory.

Runs N concurrent connections (N = 1, 10, 100 by default) of the loopback
test provider (real TCP sockets on 127.0.0.1, the server in a child process
so it does not compete for this process's interpreter lock), sends audio
through each and measures:

* ``send()`` duration while the queue has room (p50 / p99, microseconds),
  during a burst of sends as fast as the caller can;
* dispatch latency: event received by the reader -> handler start (p50 / p99,
  ms), while every connection streams at real time (one 20 ms chunk per
  20 ms each, so 100 connections make 5000 events per second);
* threads and resident memory added per connection: voxsync's threads
  right after the connections opened, and the most seen while they stream
  (pooled workers are started for the load and retire when idle).

``--provider aiola`` measures the same with aiOla streams instead: the aiOla
emulator in the child process, each connection a ``voxsync.aiola`` stream
(Engine.IO long-polling handshake, then the WebSocket upgrade), so its
threads include python-engineio's. Chunks of 100 ms every 100 ms, as aiOla's
SDKs send them (1000 chunks per second at 100 connections, each
acknowledged), and the emulator's scripted engine sends one transcript per
chunk.

Targets: send() p99 < 50 us; dispatch p99 < 1 ms at 100 connections; at most
1.5 threads per connection at 100 connections. Prints a table and writes JSON
to benchmarks/results/runtime.json. ``--baseline DIR`` runs the same
measurements a second time, in a child process, with voxsync imported from
another checkout (before a change), and prints both.

Usage: python benchmarks/runtime.py [--connections 1 10 100] [--chunks 200] [--seconds 3]
       [--provider loopback|aiola] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
BASELINE = os.environ.get("VOXSYNC_BENCH_BASELINE")
if BASELINE:  # voxsync from another checkout; an editable install's hook would win
    sys.meta_path[:] = [
        f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")
    ]
    sys.path.insert(0, BASELINE)

from _common import percentile, start_server, stop_server  # noqa: E402
from loopback import LoopbackConnection, LoopbackServer  # noqa: E402

CHUNK = b"\x01\x00" * 320  # 20 ms of 16 kHz mono s16le
AIOLA_CHUNK = b"\x01\x00" * 1600  # 100 ms, as aiOla's SDKs send


def serve(pipe: Any) -> None:
    """Child process: run the loopback server until the parent says stop."""
    with LoopbackServer() as server:
        pipe.send(server.port)
        pipe.recv()


def serve_aiola(pipe: Any) -> None:
    """Child process: the aiOla emulator (one transcript per chunk) until told to stop."""
    from voxsync.emulators.aiola import AiolaEmulator
    from voxsync.emulators.engine import make_engine

    engine = make_engine("scripted", transcripts=["benchmark"], every_bytes=len(AIOLA_CHUNK))
    with AiolaEmulator(engine=engine) as emu:
        pipe.send(emu.base_url)
        pipe.recv()


def open_connections(provider: str, address: Any, n: int, queue_size: int) -> List[Any]:
    """``n`` connections of ``provider`` to the server at ``address`` (not connected yet)."""
    if provider == "loopback":
        return [LoopbackConnection(address, queue_size=queue_size) for _ in range(n)]
    from voxsync.aiola import AiolaClient

    client = AiolaClient(api_key="bench", base_url=address)
    client.get_access_token()
    return [
        client.stt.stream(lang_code="en", finish_silence=0, queue_size=queue_size) for _ in range(n)
    ]


def voxsync_threads() -> int:
    return sum(t.name.startswith("voxsync-") for t in threading.enumerate())


def run(n: int, chunks: int, seconds: float, provider: str = "loopback") -> Dict[str, Any]:
    proc = psutil.Process()
    server, parent, address = start_server(serve if provider == "loopback" else serve_aiola)
    try:
        rss_before = proc.memory_info().rss
        conns = open_connections(provider, address, n, chunks + 8)
        received = [0] * n
        for i, conn in enumerate(conns):

            def count(ev: Any, i: int = i) -> None:
                received[i] += 1

            conn.on("transcript", count)
            conn.connect(timeout=10)
        threads = voxsync_threads()
        chunk, period = (CHUNK, 0.020) if provider == "loopback" else (AIOLA_CHUNK, 0.100)
        rss_open = proc.memory_info().rss
        # 1. burst: the cost of send() itself while the queue has room
        send_us: List[float] = []
        clock = time.perf_counter_ns
        for _ in range(chunks):
            for conn in conns:
                t0 = clock()
                conn.send(chunk)
                send_us.append((clock() - t0) / 1000)
        deadline = time.monotonic() + 120
        while sum(received) < n * chunks and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(received) == n * chunks, f"{sum(received)} of {n * chunks} events"
        # 2. real time: every connection sends one chunk per period (20 ms, aiOla 100 ms)
        for conn in conns:  # keep the real-time phase's latency samples only
            del conn.metrics._latencies[:]
            conn.metrics._latency_next = 0
        #    (streams are independent, so their chunks are spread over the period)
        ticks = int(seconds / period)
        slot = period / n
        threads_peak = threads
        start = time.perf_counter()
        for tick in range(ticks):
            if tick % max(1, round(0.1 / period)) == 0:  # every 100 ms
                threads_peak = max(threads_peak, voxsync_threads())
            for i, conn in enumerate(conns):
                delay = start + tick * period + i * slot - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                conn.send(chunk)
        for conn in conns:
            conn.finish(timeout=60)
        latencies_ms = [lat * 1000 for conn in conns for lat in conn.metrics._latencies]
        if provider == "loopback":
            assert all(r == chunks + ticks for r in received), "lost events"
    finally:
        stop_server(server, parent)
    return {
        "provider": provider,
        "connections": n,
        "burst_chunks_per_connection": chunks,
        "realtime_seconds": seconds,
        "chunk_ms": period * 1000,
        "events_received": sum(received),
        "events_expected": n * (chunks + ticks),
        "send_us_p50": percentile(send_us, 50),
        "send_us_p99": percentile(send_us, 99),
        "dispatch_ms_p50": percentile(latencies_ms, 50),
        "dispatch_ms_p99": percentile(latencies_ms, 99),
        "threads_per_connection": threads / n,
        "threads_streaming_per_connection": threads_peak / n,
        "rss_kib_per_connection": (rss_open - rss_before) / 1024 / n,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--chunks", type=int, default=200, help="burst chunks per connection")
    parser.add_argument("--seconds", type=float, default=3.0, help="real-time phase length")
    parser.add_argument("--provider", choices=["loopback", "aiola"], default="loopback")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/runtime.json")
    parser.add_argument(
        "--baseline", type=Path, help="also measure voxsync from this checkout (before a change)"
    )
    args = parser.parse_args()
    if args.output is None:
        suffix = "" if args.provider == "loopback" else f"-{args.provider}"
        args.output = ROOT / "benchmarks" / "results" / f"runtime{suffix}.json"

    rows = [run(n, args.chunks, args.seconds, args.provider) for n in args.connections]
    title = "voxsync" if not BASELINE else f"voxsync from {BASELINE}"
    show(f"{title}, {args.provider} connections", rows)
    worst = rows[-1]
    print(
        f"targets: send p99 < 50 us: {max(r['send_us_p99'] for r in rows):.1f} us; "
        f"dispatch p99 < 1 ms at {worst['connections']}: {worst['dispatch_ms_p99']:.3f} ms; "
        f"threads <= 1.5 at {worst['connections']}: "
        f"{worst['threads_streaming_per_connection']:.2f}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result: Dict[str, Any] = {
        "benchmark": "runtime",
        "provider": args.provider,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": psutil.cpu_count(),
        "median_send_us": statistics.median(r["send_us_p50"] for r in rows),
        "rows": rows,
    }
    if args.baseline is not None:
        base_out = args.output.with_name(args.output.stem + "-baseline.json")
        command = [sys.executable, __file__, "--output", str(base_out)]
        command += ["--connections", *map(str, args.connections)]
        command += ["--chunks", str(args.chunks), "--seconds", str(args.seconds)]
        command += ["--provider", args.provider]
        env = dict(os.environ, VOXSYNC_BENCH_BASELINE=str(args.baseline.resolve()))
        subprocess.run(command, env=env, check=True)
        result["baseline"] = json.loads(base_out.read_text())
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    return 0


def show(title: str, rows: List[Dict[str, Any]]) -> None:
    print(title)
    header = f"{'conns':>5} {'send p50 us':>11} {'send p99 us':>11} {'disp p50 ms':>11} "
    header += f"{'disp p99 ms':>11} {'threads/conn':>12} {'streaming':>9} {'RSS KiB/conn':>12}"
    print(header)
    for r in rows:
        print(
            f"{r['connections']:>5} {r['send_us_p50']:>11.1f} {r['send_us_p99']:>11.1f} "
            f"{r['dispatch_ms_p50']:>11.3f} {r['dispatch_ms_p99']:>11.3f} "
            f"{r['threads_per_connection']:>12.2f} "
            f"{r['threads_streaming_per_connection']:>9.2f} {r['rss_kib_per_connection']:>12.0f}"
        )


if __name__ == "__main__":
    sys.exit(main())
