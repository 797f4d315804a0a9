"""Uh!ive Conversation benchmark: N real-time speakers against the local emulator.

Default mode: the emulator (scripted engine: one interim and one final per
0.5 s of audio) runs in a child process so it does not compete for this
process's interpreter lock. N ``ConversationConnection`` speakers (each in
its own conversation, 8 kHz linear PCM, 100 ms chunks paced to the wall
clock) stream for ``--seconds``; the script measures, on the client side:

* CPU % per stream (this process's CPU time / wall time / N), and the
  emulator's CPU % per stream for reference;
* resident memory and voxsync threads added per stream;
* event latency, as for aiOla: from the emulator writing the event to its
  socket (``emitted_at``, wall clock) to the start of the handler (p50 / p99,
  ms);
* end-to-end latency: from ``send()`` of the chunk that completes a segment
  to the start of the handler of that segment's final transcript; it adds
  the send queue, the socket out and the emulator's processing.

Speakers are independent, so their chunks are spread over each 100 ms
period rather than sent in one burst.

Targets (as for aiOla): at 50 streams, event latency p99 <= 10 ms, client
CPU <= 1 % of a core per stream; 3 threads per stream. Prints a table and writes JSON to
benchmarks/results/uhlive.json.

``--wer`` instead measures the word error rate of the emulator's real
recognition (pocketsphinx) on ``samples/audio`` sent at 8 kHz through the
Conversation API, with and without the emulator's bandwidth extension and a
restricted vocabulary, and writes benchmarks/results/uhlive_wer.json.

Usage::

    python benchmarks/uhlive.py [--speakers 1 10 50] [--seconds 5]
    python benchmarks/uhlive.py --wer [--codec linear|g711a|g711u]
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

CHUNK_SECONDS = 0.1
SEGMENT_BYTES = 8000  # 0.5 s of 8 kHz s16le: one final per 5 chunks


def serve(pipe: Any) -> None:
    """Child process: run the emulator until the parent says stop."""
    from voxsync.emulators.engine import make_engine
    from voxsync.emulators.uhlive import UhliveEmulator

    engine = make_engine("scripted", transcripts=["one two three four"], every_bytes=SEGMENT_BYTES)
    with UhliveEmulator(engine=engine, idle_timeout=120, stamp_events=True) as emu:
        pipe.send((emu.base_url, emu.ws_url, emu.issue_token("bench", ttl=3600)))
        pipe.recv()


def voxsync_threads() -> int:
    return sum(t.name.startswith("voxsync-uhlive-") for t in threading.enumerate())


def run(n: int, seconds: float) -> Dict[str, Any]:
    from voxsync.uhlive import ConversationConnection

    proc = psutil.Process()
    server, parent, (_base, ws_url, token) = start_server(serve)
    try:
        server_proc = psutil.Process(server.pid)
        # warm-up: the first connection imports modules lazily; keep that out of the figures
        warm = ConversationConnection(
            "warm-up", "warm-up", identifier="bench", token=token, api_url=ws_url, model="en"
        )
        warm.connect(timeout=30)
        warm.finish(timeout=10)
        warm.close()
        rss_before = proc.memory_info().rss
        threads_before = voxsync_threads()
        conns = []
        latencies: List[float] = []
        emit_latencies: List[float] = []
        lock = threading.Lock()
        send_times: List[List[float]] = [[] for _ in range(n)]
        for i in range(n):
            conn = ConversationConnection(
                f"bench-{i}",
                f"speaker-{i}",
                identifier="bench",
                token=token,
                api_url=ws_url,
                model="en",
                origin=0,
            )

            def on_transcript(ev: Any, i: int = i) -> None:
                if not ev.is_final or ev.end is None:
                    return
                now = time.perf_counter()
                with lock:
                    emit_latencies.append(time.time() - float(ev["emitted_at"]))
                index = max(0, round(ev.end / CHUNK_SECONDS) - 1)
                sent = send_times[i]
                if index < len(sent):
                    with lock:
                        latencies.append(now - sent[index])

            conn.on("transcript", on_transcript)
            conn.connect(timeout=30)
            conns.append(conn)
        threads = voxsync_threads() - threads_before
        rss_open = proc.memory_info().rss
        chunk = bytes(int(8000 * CHUNK_SECONDS) * 2)
        steps = int(seconds / CHUNK_SECONDS)
        cpu0 = proc.cpu_times()
        scpu0 = server_proc.cpu_times()
        start = time.perf_counter()
        slot = CHUNK_SECONDS / n
        for step in range(steps):
            for i, conn in enumerate(conns):
                delay = start + step * CHUNK_SECONDS + i * slot - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                send_times[i].append(time.perf_counter())
                conn.send(chunk)
        for conn in conns:
            conn.finish(timeout=30)
        wall = time.perf_counter() - start
        cpu1 = proc.cpu_times()
        scpu1 = server_proc.cpu_times()
        dispatch = [conn.metrics.snapshot()["latency_p99"] for conn in conns]
        for conn in conns:
            conn.close()
        cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        scpu = (scpu1.user + scpu1.system) - (scpu0.user + scpu0.system)
        return {
            "speakers": n,
            "seconds": seconds,
            "finals": len(latencies),
            "client_cpu_pct_per_stream": round(100 * cpu / wall / n, 3),
            "emulator_cpu_pct_per_stream": round(100 * scpu / wall / n, 3),
            "rss_kib_per_stream": round((rss_open - rss_before) / 1024 / n, 1),
            "threads_per_stream": round(threads / n, 2),
            "latency_ms_p50": round(1000 * percentile(emit_latencies, 50), 2),
            "latency_ms_p99": round(1000 * percentile(emit_latencies, 99), 2),
            "end_to_end_ms_p50": round(1000 * percentile(latencies, 50), 2),
            "end_to_end_ms_p99": round(1000 * percentile(latencies, 99), 2),
            "dispatch_ms_p99_max": round(1000 * max(d or 0.0 for d in dispatch), 2),
        }
    finally:
        stop_server(server, parent)


# ------------------------------------------------------------------ word error rate
def word_errors(ref: str, hyp: str) -> int:
    r, h = ref.split(), hyp.split()
    row = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(h) + 1):
            cur = min(row[j] + 1, row[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, row[j] = row[j], cur
    return row[-1]


def transcribe(emu: Any, pcm: bytes, codec: str) -> str:
    """The vendor guide's flow with websocket-client and the sans-I/O codec, full speed."""
    import websocket

    from voxsync.audio.convert import convert
    from voxsync.uhlive import AudioSegmentDecoded, Conversation, build_conversation_url

    fmt = {"linear": "pcm_s16le", "g711a": "alaw", "g711u": "mulaw"}[codec]
    audio = convert(pcm, AudioFormat(8000, 1, "pcm_s16le"), AudioFormat(8000, 1, fmt))
    sock = websocket.create_connection(
        build_conversation_url(emu.issue_token(), emu.ws_url), timeout=120
    )
    client = Conversation("bench", "wer", "speaker")
    try:
        sock.send(client.join(model="en", interim_results=False, audio_codec=codec))
        client.receive(sock.recv())
        step = 800 if codec == "linear" else 400
        for i in range(0, len(audio), step):
            sock.send_binary(client.send_audio_chunk(audio[i : i + step]))
        sock.send(client.leave())
        finals = []
        while not client.left:
            event = client.receive(sock.recv())
            if isinstance(event, AudioSegmentDecoded):
                finals.append(event.transcript)
        return " ".join(finals)
    finally:
        sock.close()


def run_wer(codec: str) -> Dict[str, Any]:
    from voxsync.emulators.engine import make_engine
    from voxsync.emulators.uhlive import UhliveEmulator

    transcripts: Dict[str, str] = json.loads((ROOT / "samples/audio/transcripts.json").read_text())
    vocabulary = sorted({w for text in transcripts.values() for w in text.split()})
    audio = {
        name: read_audio(ROOT / "samples/audio" / name, AudioFormat(8000, 1, "pcm_s16le"))[0]
        for name in transcripts
    }
    configs: List[Dict[str, Any]] = [
        {"name": "plain upsampling", "bandwidth_extension": 0.0, "vocabulary": None},
        {"name": "bandwidth extension (default)", "bandwidth_extension": None, "vocabulary": None},
        {"name": "restricted vocabulary", "bandwidth_extension": 0.0, "vocabulary": vocabulary},
        {"name": "extension + vocabulary", "bandwidth_extension": None, "vocabulary": vocabulary},
    ]
    rows = []
    total_words = sum(len(t.split()) for t in transcripts.values())
    for config in configs:
        options: Dict[str, Any] = {}
        if config["vocabulary"]:
            options["vocabulary"] = config["vocabulary"]
        engine = make_engine("pocketsphinx", **options)
        errors = 0
        outputs: Dict[str, str] = {}
        started = time.perf_counter()
        with UhliveEmulator(
            engine=engine, bandwidth_extension=config["bandwidth_extension"]
        ) as emu:
            for name, ref in transcripts.items():
                hyp = transcribe(emu, audio[name], codec)
                outputs[name] = hyp
                errors += word_errors(ref, hyp)
        rows.append(
            {
                "config": config["name"],
                "codec": codec,
                "words": total_words,
                "errors": errors,
                "wer_pct": round(100 * errors / total_words, 1),
                "seconds": round(time.perf_counter() - started, 1),
                "outputs": outputs,
            }
        )
        print(
            f"{config['name']:<32} WER {rows[-1]['wer_pct']:5.1f} %  ({errors}/{total_words})",
            flush=True,
        )
    return {"benchmark": "uhlive_wer", "vocabulary_words": len(vocabulary), "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=5.0, help="real-time audio per speaker")
    parser.add_argument(
        "--wer", action="store_true", help="measure the 8 kHz word error rate instead"
    )
    parser.add_argument("--codec", choices=("linear", "g711a", "g711u"), default="linear")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": psutil.cpu_count(),
    }
    if args.wer:
        result: Dict[str, Any] = {**run_wer(args.codec), **machine}
        output: Optional[Path] = args.output or ROOT / "benchmarks" / "results" / "uhlive_wer.json"
    else:
        rows = []
        header = (
            f"{'speakers':>8} {'client CPU %/stream':>20} {'emulator CPU %/stream':>22} "
            f"{'RSS KiB/stream':>15} {'threads/stream':>15} {'latency p50 ms':>15} {'p99 ms':>8} "
            f"{'end-to-end p50 ms':>18} {'p99 ms':>8}"
        )
        print(header)
        for n in args.speakers:
            row = run(n, args.seconds)
            rows.append(row)
            print(
                f"{n:>8} {row['client_cpu_pct_per_stream']:>20} "
                f"{row['emulator_cpu_pct_per_stream']:>22} "
                f"{row['rss_kib_per_stream']:>15} {row['threads_per_stream']:>15} "
                f"{row['latency_ms_p50']:>15} {row['latency_ms_p99']:>8} "
                f"{row['end_to_end_ms_p50']:>18} {row['end_to_end_ms_p99']:>8}",
                flush=True,
            )
        result = {"benchmark": "uhlive", **machine, "rows": rows}
        output = args.output or ROOT / "benchmarks" / "results" / "uhlive.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
