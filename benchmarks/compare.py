"""voxsync side by side with the vendors' own SDKs: same emulator, same harness.

For each provider, one emulator (scripted engine, events stamped with their
emit time, every audio chunk's arrival recorded) runs in its own process.
Each measurement runs in a fresh client process that imports one library
only, so neither library's imports, threads or memory reach the other's
figures. Only the library calls differ:

* aiOla: ``voxsync.aiola.AiolaClient().stt.stream()`` vs the official
  ``aiola`` SDK (``AiolaClient().stt.stream()``, python-socketio inside);
* Uh!ive: ``voxsync.uhlive.ConversationConnection`` vs the official
  ``uhlive`` sans-I/O ``Conversation`` codec driven the way its guide shows,
  with websocket-client: a reader thread per stream, audio written from the
  caller's thread.

A run opens N streams, then one feeder thread (the main thread) sends each
stream a 100 ms chunk every 100 ms of wall clock, the streams staggered
evenly within the period as N independent microphones would be. Measured:

client CPU per stream
    process CPU time (user + system, ``time.process_time()``, nanosecond
    resolution) over the streaming window (first chunk
    due to last chunk sent) / window / N, in % of one core;
CPU by thread role
    each thread's CPU over the same window (Linux: ``/proc/self/task/*/schedstat``,
    nanoseconds), grouped by its name with digits
    replaced by ``N`` (``voxsync-aiola-N-writer``, ``Thread-N (_read_loop)``,
    ``MainThread`` = the feeder);
threads and RSS per stream
    OS threads and resident memory added by opening the N streams (after one
    warm-up stream was opened and closed), / N; "threads per stream while
    streaming" takes the most threads counted (once per 100 ms) while the
    streams ran instead, which counts pooled workers started for the load;
send cost
    mean wall time of one send call in the feeder;
chunk lateness at the server
    for every chunk: its arrival at the emulator's engine minus the time it
    was due (the stream's first chunk's due time + k x 100 ms). Streams are
    matched to the emulator's sessions by the order of their first chunk
    (the stagger is 100 ms / N, so a mismatch moves a figure by at most a
    few slots);
event latency
    from the emulator's emit (``emitted_at``) to the start of the client's
    handler, for every final transcript;
transcripts
    finals delivered within 5 s of the last chunk vs the engine's script.

A stream count is "held in real time" when every chunk reached the server,
chunk lateness p99 <= 100 ms and every transcript was delivered.

Repeats alternate which library runs first; ratios are voxsync / official
for each (repeat, N) pair, and the table shows their median.

Writes benchmarks/results/compare.json. Run it from the benchmark
environment, which has the official SDKs installed (see docs/guide/benchmarks.rst)::

    python benchmarks/compare.py --quick          # ~5 minutes: N = 1, 10, 50, one repeat
    python benchmarks/compare.py                  # N = 1, 10, 50, 100, three repeats
    python benchmarks/compare.py --ladder         # plus the real-time limit of each library
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import percentile, receive, start_server, stop_server  # noqa: E402

# benchmarks/aiola.py and benchmarks/uhlive.py would shadow the vendors' packages
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

PERIOD = 0.1  # seconds of audio per chunk, and between two chunks of a stream
RATES = {"aiola": 16000, "uhlive": 8000}
SEGMENT_SECONDS = 0.5  # the scripted engine's final per 0.5 s of audio
LATE_LIMIT = 0.1  # chunk lateness p99 that still counts as real time
BASELINE = [""]  # --baseline: a checkout whose voxsync runs as library "baseline"
LIBRARIES = {
    "aiola": {"voxsync": "voxsync.aiola", "official": "aiola"},
    "uhlive": {"voxsync": "voxsync.uhlive", "official": "uhlive"},
}


# =================================================================== emulator process


def serve(provider: str, pipe: Any, cpus: Optional[List[int]] = None) -> None:
    """Child process: the provider's emulator, recording each chunk's arrival.

    ``cpus``: run on these CPUs only (set before any thread starts, so every
    thread of the emulator inherits it).
    """
    if cpus:
        os.sched_setaffinity(0, cpus)
    from voxsync.emulators.engine import Engine, EngineSession, make_engine

    rate = RATES[provider]
    lock = threading.Lock()
    sessions: List[List[float]] = []

    class Recording(Engine):
        kind = "scripted"

        def __init__(self, inner: Engine) -> None:
            self.inner = inner

        def new_session(self, sample_rate: int = 16000) -> EngineSession:
            inner = self.inner.new_session(sample_rate)
            arrivals: List[float] = []
            with lock:
                sessions.append(arrivals)

            class Session(EngineSession):
                def feed(self, pcm: bytes) -> Any:
                    arrivals.append(time.time())
                    return inner.feed(pcm)

                def flush(self) -> Any:
                    return inner.flush()

                def close(self) -> None:
                    inner.close()

            return Session()

    engine = Recording(
        make_engine(
            "scripted",
            transcripts=["benchmark words"],
            every_bytes=int(SEGMENT_SECONDS * rate * 2),
        )
    )
    if provider == "aiola":
        from voxsync.emulators.aiola import AiolaEmulator

        emu: Any = AiolaEmulator(engine=engine, stamp_events=True)
    else:
        from voxsync.emulators.uhlive import UhliveEmulator

        emu = UhliveEmulator(
            engine=engine, idle_timeout=600, stamp_events=True, bandwidth_extension=0.0
        )
    with emu:
        info: Dict[str, Any] = {"base_url": emu.base_url}
        if provider == "uhlive":
            info["ws_url"] = emu.ws_url
            info["token"] = emu.issue_token("bench", ttl=24 * 3600)
        pipe.send(info)
        while True:
            message = pipe.recv()
            if message == "stop":
                return
            if message == "reset":
                with lock:
                    sessions.clear()
                pipe.send("ok")
            elif message == "arrivals":
                with lock:
                    pipe.send([list(s) for s in sessions])


# =================================================================== client process


class Library:
    """One library's calls: open a stream, send a chunk, close."""

    def open(self, i: int, on_final: Callable[[Optional[float]], None]) -> Any:
        raise NotImplementedError

    def send(self, stream: Any, chunk: bytes) -> None:
        raise NotImplementedError

    def close(self, stream: Any) -> None:
        raise NotImplementedError


class VoxsyncAiola(Library):
    def __init__(self, info: Dict[str, Any]) -> None:
        from voxsync.aiola import AiolaClient

        if info.get("aiola_no_ack"):
            # --aiola-no-ack: no acknowledgement asked for audio (as if the server
            # gave none), to measure what they cost; audio lost at a reset is
            # then not counted
            import voxsync.aiola.stream

            voxsync.aiola.stream.ACK_PROBE = 0

        self.client = AiolaClient(api_key="bench", base_url=info["base_url"])
        self.client.get_access_token()

    def open(self, i: int, on_final: Callable[[Optional[float]], None]) -> Any:
        conn = self.client.stt.stream(lang_code="en", finish_silence=0)
        conn.on("transcript", lambda ev: on_final(ev.get("emitted_at")))
        conn.connect(timeout=60)
        return conn

    def send(self, stream: Any, chunk: bytes) -> None:
        stream.send(chunk)

    def close(self, stream: Any) -> None:
        stream.close()


class OfficialAiola(Library):
    def __init__(self, info: Dict[str, Any]) -> None:
        from aiola import AiolaClient
        from aiola.types import LiveEvents

        self.event = LiveEvents.Transcript
        url = info["base_url"]
        token = AiolaClient.grant_token(api_key="bench", auth_base_url=url).access_token
        self.client = AiolaClient(access_token=token, base_url=url, auth_base_url=url)

    def open(self, i: int, on_final: Callable[[Optional[float]], None]) -> Any:
        conn = self.client.stt.stream(lang_code="en")
        conn.on(self.event, lambda data: on_final(data.get("emitted_at")))
        conn.connect()
        return conn

    def send(self, stream: Any, chunk: bytes) -> None:
        stream.send(chunk)

    def close(self, stream: Any) -> None:
        stream.disconnect()


class VoxsyncUhlive(Library):
    def __init__(self, info: Dict[str, Any]) -> None:
        from voxsync.uhlive import ConversationConnection

        self.cls = ConversationConnection
        self.info = info

    def open(self, i: int, on_final: Callable[[Optional[float]], None]) -> Any:
        conn = self.cls(
            f"bench-{i}-{os.getpid()}",
            f"speaker-{i}",
            identifier="bench",
            token=self.info["token"],
            api_url=self.info["ws_url"],
            model="en",
            origin=0,
        )

        def on_transcript(ev: Any) -> None:
            if ev.is_final:
                on_final(ev.get("emitted_at"))

        conn.on("transcript", on_transcript)
        conn.connect(timeout=60)
        return conn

    def send(self, stream: Any, chunk: bytes) -> None:
        stream.send(chunk)

    def close(self, stream: Any) -> None:
        stream.close()


class OfficialUhlive(Library):
    """The vendor's codec with websocket-client, as its guide shows: one reader thread each."""

    def __init__(self, info: Dict[str, Any]) -> None:
        os.environ["UHLIVE_API_URL"] = info["ws_url"]  # the vendor's documented setting
        import websocket
        from uhlive.stream.conversation import (
            AudioSegmentDecoded,
            Conversation,
            Ok,
            build_conversation_url,
        )

        self.ws = websocket
        self.final = AudioSegmentDecoded
        self.ok = Ok
        self.conversation = Conversation
        self.url = build_conversation_url(info["token"])

    def open(self, i: int, on_final: Callable[[Optional[float]], None]) -> Any:
        sock = self.ws.create_connection(self.url, timeout=60)
        conv = self.conversation("bench", f"bench-{i}-{os.getpid()}", f"speaker-{i}")
        sock.send(conv.join(model="en", country="us", origin=0))
        reply = conv.receive(sock.recv())
        if not isinstance(reply, self.ok):
            raise RuntimeError(f"join refused: {reply!r}")
        sock.settimeout(None)
        closed = self.ws.WebSocketConnectionClosedException

        def read() -> None:
            while True:
                try:
                    data = sock.recv()
                except (closed, OSError):
                    return
                if not data:
                    return
                event = conv.receive(data)
                if isinstance(event, self.final):
                    on_final(event._payload.get("emitted_at"))
                if conv.left:
                    return

        reader = threading.Thread(target=read, name=f"uhlive-reader-{i}", daemon=True)
        reader.start()
        return (sock, conv, reader)

    def send(self, stream: Any, chunk: bytes) -> None:
        sock, conv, _ = stream
        sock.send_binary(conv.send_audio_chunk(chunk))

    def close(self, stream: Any) -> None:
        sock, conv, reader = stream
        try:
            sock.send(conv.leave())
        except (self.ws.WebSocketConnectionClosedException, OSError):
            pass
        reader.join(5)
        sock.close()


CLASSES = {
    ("aiola", "voxsync"): VoxsyncAiola,
    ("aiola", "official"): OfficialAiola,
    ("uhlive", "voxsync"): VoxsyncUhlive,
    ("uhlive", "official"): OfficialUhlive,
}


def thread_cpu() -> Dict[int, float]:
    """CPU seconds of each thread of this process, by native thread id.

    Linux's per-task ``schedstat`` counts nanoseconds; psutil's per-thread
    times count 10 ms ticks, too coarse for a thread that runs a few
    microseconds per chunk. psutil is the fallback elsewhere.
    """
    tasks = Path("/proc/self/task")
    if tasks.is_dir():
        out = {}
        for task in tasks.iterdir():
            try:
                out[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                continue
        if out:
            return out
    return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}


def role(name: str) -> str:
    return re.sub(r"\d+", "N", name)


def pool_workers() -> Dict[int, str]:
    """voxsync's pooled workers by native id, under their idle name.

    A pooled worker takes the name of the connection whose work it runs, so
    its name at one instant says little; its CPU is reported as the pool's.
    """
    module = sys.modules.get("voxsync.pool")
    if module is None:
        return {}
    return {w.native_id: "voxsync-pool-N" for w in module.pool.threads() if w.native_id}


def worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Client process: open N streams of one library, feed them, measure."""
    baseline = os.environ.get("VOXSYNC_BENCH_BASELINE")
    if baseline:
        # an editable install's import hook would win over sys.path: drop it
        sys.meta_path[:] = [
            f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")
        ]
        sys.path.insert(0, baseline)
    provider, library, n, seconds = spec["provider"], spec["library"], spec["n"], spec["seconds"]
    if spec.get("cpus"):  # before any thread starts: every thread inherits it
        os.sched_setaffinity(0, spec["cpus"])
    lib = CLASSES[provider, "voxsync" if library == "baseline" else library](spec["info"])
    proc = psutil.Process()
    chunk = bytes(int(RATES[provider] * PERIOD) * 2)
    lock = threading.Lock()
    latencies: List[float] = []
    finals = [0]

    def on_final(emitted_at: Optional[float]) -> None:
        now = time.time()
        with lock:
            finals[0] += 1
            if emitted_at is not None:
                latencies.append(now - float(emitted_at))

    warm = lib.open(-1, lambda _: None)  # imports and first-use costs stay out of the figures
    lib.send(warm, chunk)
    lib.close(warm)
    time.sleep(0.5)
    gc.collect()
    with lock:
        finals[0] = 0
        latencies.clear()
    rss0, threads0 = proc.memory_info().rss, proc.num_threads()
    streams = [lib.open(i, on_final) for i in range(n)]
    gc.collect()
    rss1, threads1 = proc.memory_info().rss, proc.num_threads()
    steps = round(seconds / PERIOD)
    slot = PERIOD / n
    send_time = 0.0
    feeder_late: List[float] = []
    time.sleep(0.2)
    names = {t.native_id: t.name for t in threading.enumerate()}
    names.update(pool_workers())
    threads_peak = threads1
    tcpu0 = thread_cpu()
    cpu0 = time.process_time()
    start_epoch, start = time.time(), time.perf_counter()
    for step in range(steps):
        threads_peak = max(threads_peak, proc.num_threads())
        names.update(pool_workers())
        for i, stream in enumerate(streams):
            due = start + step * PERIOD + i * slot
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            feeder_late.append(t0 - due)
            lib.send(stream, chunk)
            send_time += time.perf_counter() - t0
    window = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    tcpu1 = thread_cpu()
    names.update({t.native_id: t.name for t in threading.enumerate()})
    names.update(pool_workers())
    expected = n * int(steps * PERIOD / SEGMENT_SECONDS + 1e-9)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        with lock:
            if finals[0] >= expected:
                break
        time.sleep(0.05)
    with lock:
        got, lat = finals[0], list(latencies)
    roles: Dict[str, Dict[str, float]] = {}
    for tid, after in tcpu1.items():
        used = after - tcpu0.get(tid, 0.0)
        entry = roles.setdefault(role(names.get(tid, "other")), {"threads": 0, "cpu_s": 0.0})
        entry["threads"] += 1
        entry["cpu_s"] += used
    for stream in streams:
        lib.close(stream)
    return {
        "provider": provider,
        "library": library,
        "voxsync_file": str(Path(sys.modules["voxsync"].__file__ or "").resolve())
        if "voxsync" in sys.modules
        else "",
        "streams": n,
        "seconds": seconds,
        "start_epoch": start_epoch,
        "slot": slot,
        "steps": steps,
        "window_s": window,
        "cpu_pct_per_stream": 100 * cpu / window / n,
        "threads_per_stream": (threads1 - threads0) / n,
        "threads_streaming_per_stream": (threads_peak - threads0) / n,
        "rss_kib_per_stream": (rss1 - rss0) / 1024 / n,
        "send_us_mean": 1e6 * send_time / (steps * n),
        "feeder_late_ms_p99": 1000 * percentile(feeder_late, 99),
        "latency_ms_p50": 1000 * percentile(lat, 50),
        "latency_ms_p99": 1000 * percentile(lat, 99),
        "finals": got,
        "finals_expected": expected,
        "cpu_by_role_pct_per_stream": {
            k: {"threads": v["threads"], "cpu_pct": round(100 * v["cpu_s"] / window / n, 4)}
            for k, v in sorted(roles.items(), key=lambda kv: -kv[1]["cpu_s"])
        },
    }


# =================================================================== orchestration


def lateness(result: Dict[str, Any], sessions: List[List[float]]) -> Dict[str, Any]:
    """Every chunk's arrival at the server minus its due time."""
    start, slot, steps, n = (
        result["start_epoch"],
        result["slot"],
        result["steps"],
        result["streams"],
    )
    ours = sorted((s for s in sessions if s and s[-1] >= start - 0.05), key=lambda s: s[0])
    ours = [[t for t in s if t >= start - 0.05] for s in ours][-n:] if ours else []
    late: List[float] = []
    for j, arrivals in enumerate(ours):
        for k, t in enumerate(arrivals[:steps]):
            late.append(t - (start + j * slot + k * PERIOD))
    received = sum(min(len(s), steps) for s in ours)
    return {
        "chunks_expected": n * steps,
        "chunks_received": received,
        "late_ms_p50": 1000 * percentile(late, 50),
        "late_ms_p99": 1000 * percentile(late, 99),
        "late_ms_max": 1000 * max(late) if late else float("nan"),
    }


def held(row: Dict[str, Any]) -> bool:
    return bool(
        row["chunks_received"] == row["chunks_expected"]
        and row["late_ms_p99"] <= 1000 * LATE_LIMIT
        and row["finals"] >= row["finals_expected"]
    )


def run_one(
    provider: str, library: str, n: int, seconds: float, server: Tuple[Any, Any, Any]
) -> Dict[str, Any]:
    proc, pipe, info = server
    pipe.send("reset")
    receive(pipe, proc)
    spec = {"provider": provider, "library": library, "n": n, "seconds": seconds, "info": info}
    spec["cpus"] = info.get("client_cpus")
    timeout = 120 + 2 * seconds + 1.0 * n
    env = dict(os.environ)
    if library == "baseline":  # voxsync from another checkout, e.g. before a change
        env["VOXSYNC_BENCH_BASELINE"] = BASELINE[0]
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"provider": provider, "library": library, "streams": n, "error": "timeout"}
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        return {
            "provider": provider,
            "library": library,
            "streams": n,
            "error": " | ".join(tail) or f"exit {done.returncode}",
        }
    result: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if library == "baseline" and not result.get("voxsync_file", "").startswith(BASELINE[0]):
        raise RuntimeError(f"the baseline run imported voxsync from {result.get('voxsync_file')}")
    pipe.send("arrivals")
    result.update(lateness(result, receive(pipe, proc)))
    result["held"] = held(result)
    return result


def show(row: Dict[str, Any]) -> None:
    if "error" in row:
        print(f"  {row['library']:<9} N={row['streams']:<4} FAILED: {row['error']}", flush=True)
        return
    print(
        f"  {row['library']:<9} N={row['streams']:<4} cpu {row['cpu_pct_per_stream']:6.3f} %/str  "
        f"thr {row['threads_per_stream']:4.2f}/{row['threads_streaming_per_stream']:4.2f}  "
        f"rss {row['rss_kib_per_stream']:7.1f} KiB  "
        f"send {row['send_us_mean']:6.1f} us  late p99 {row['late_ms_p99']:7.1f} ms  "
        f"lat p50/p99 {row['latency_ms_p50']:5.2f}/{row['latency_ms_p99']:6.2f} ms  "
        f"finals {row['finals']}/{row['finals_expected']}  "
        f"{'held' if row['held'] else 'NOT real time'}",
        flush=True,
    )


FIGURES = [
    ("client CPU per stream", "cpu_pct_per_stream"),
    ("threads per stream", "threads_per_stream"),
    ("threads per stream while streaming", "threads_streaming_per_stream"),
    ("RSS per stream", "rss_kib_per_stream"),
    ("send() cost", "send_us_mean"),
    ("event latency p50", "latency_ms_p50"),
    ("event latency p99", "latency_ms_p99"),
    ("chunk lateness p99", "late_ms_p99"),
]


PAIRS = [("voxsync", "official"), ("voxsync", "baseline"), ("baseline", "official")]


def ratios(
    rows: List[Dict[str, Any]], provider: str, num: str = "voxsync", den: str = "official"
) -> Dict[str, Dict[str, Any]]:
    """Median over repeats of ``num`` / ``den``, paired by (repeat, N)."""
    out: Dict[str, Dict[str, Any]] = {}
    pairs: Dict[Tuple[int, int], Dict[str, Dict[str, Any]]] = {}
    for r in rows:
        if r["provider"] == provider and "error" not in r and r.get("phase") == "fixed":
            pairs.setdefault((r["repeat"], r["streams"]), {})[r["library"]] = r
    for n in sorted({n for _, n in pairs}):
        per: Dict[str, Any] = {}
        for label, key in FIGURES:
            values = [
                p[num][key] / p[den][key]
                for (_, m), p in pairs.items()
                if m == n and num in p and den in p and p[den][key] > 0
            ]
            absolute = {
                lib: statistics.median(
                    p[lib][key] for (_, m), p in pairs.items() if m == n and lib in p
                )
                for lib in (num, den)
                if any(m == n and lib in p for (_, m), p in pairs.items())
            }
            per[label] = {
                "ratio": statistics.median(values) if values else None,
                "ratios": values,
                **{lib: v for lib, v in absolute.items()},
            }
        out[str(n)] = per
    return out


def ladder(
    provider: str,
    seconds: float,
    first: int,
    step: int,
    top: int,
    server: Tuple[Any, Any, Any],
    rows: List[Dict[str, Any]],
    libraries: List[str],
) -> Dict[str, Any]:
    """Raise N until each library fails twice in a row; its limit is the last N it held."""
    # stream counts below the ladder's first, held in the fixed runs, count too
    limits: Dict[str, Optional[int]] = {
        lib: max(
            (
                r["streams"]
                for r in rows
                if r.get("provider") == provider
                and r.get("library") == lib
                and r.get("held")
                and r["streams"] < first
            ),
            default=None,
        )
        for lib in libraries
    }
    failures = {lib: 0 for lib in libraries}
    n, k = first, 0
    while n <= top and any(f < 2 for f in failures.values()):
        order = list(libraries) if k % 2 == 0 else list(reversed(libraries))
        for library in order:
            if failures[library] >= 2:
                continue
            row = run_one(provider, library, n, seconds, server)
            row["phase"] = "ladder"
            rows.append(row)
            show(row)
            if "error" not in row and row["held"]:
                limits[library] = n
                failures[library] = 0
            else:
                failures[library] += 1
        n += step
        k += 1
    return limits


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``compare.py`` and ``compare_palabra.py`` share."""
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="audio per stream per run")
    parser.add_argument("--quick", action="store_true", help="N = 1, 10, 50; one repeat; 3 s")
    parser.add_argument(
        "--libraries",
        nargs="+",
        default=None,
        choices=("voxsync", "official", "baseline"),
        help="default: voxsync and official, plus baseline with --baseline",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="a checkout of voxsync (e.g. 'git worktree add /tmp/base main') measured "
        "as a third library, for before/after ratios in one run",
    )


def choose_libraries(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill in ``args.libraries``; point the baseline library at ``--baseline``."""
    if args.libraries is None:
        args.libraries = ["voxsync", "official"] + (["baseline"] if args.baseline else [])
    if "baseline" in args.libraries:
        if args.baseline is None or not (args.baseline / "voxsync" / "__init__.py").is_file():
            parser.error("the baseline library needs --baseline DIR, a checkout of voxsync")
        BASELINE[0] = str(args.baseline.resolve())


def split_cpus() -> Tuple[List[int], List[int]]:
    """The emulator's CPU and the client's CPUs for ``--split-cpus``.

    A Python emulator with a thread per stream, sharing all CPUs with the
    client, spends the CPU a client leaves idle contending for its own
    interpreter lock across cores, and then falls behind: a lighter client
    makes it slower. A real service runs elsewhere; one CPU for the
    emulator and the rest for the client keeps the client's saving from
    being charged to it.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--split-cpus needs at least two CPUs")
    return cpus[:1], cpus[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--providers", nargs="+", default=["aiola", "uhlive"], choices=LIBRARIES)
    parser.add_argument("--ladder", action="store_true", help="find each library's limit")
    parser.add_argument("--ladder-start", type=int, default=100)
    parser.add_argument("--ladder-step", type=int, default=50)
    parser.add_argument("--ladder-max", type=int, default=600)
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="run the emulator on CPU 0 and the client on the others (see the guide)",
    )
    parser.add_argument(
        "--aiola-no-ack",
        action="store_true",
        help="voxsync's aiOla streams ask no acknowledgement of audio (measures their cost)",
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "compare.json"
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    choose_libraries(parser, args)
    streams = args.streams or ([1, 10, 50] if args.quick else [1, 10, 50, 100])
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.seconds or (3.0 if args.quick else 5.0)
    missing = [
        module
        for provider in args.providers
        for module in LIBRARIES[provider].values()
        if importlib.util.find_spec(module.split(".")[0]) is None
    ]
    if missing and "official" in args.libraries:
        print(
            f"the official SDKs are not installed here ({', '.join(missing)}); "
            "create the benchmark environment first (docs/guide/benchmarks.rst)",
            file=sys.stderr,
        )
        return 2
    rows: List[Dict[str, Any]] = []
    summary: Dict[str, Any] = {}
    for provider in args.providers:
        server_cpus, client_cpus = split_cpus() if args.split_cpus else (None, None)
        where = f" (emulator on CPU {server_cpus}, client on {client_cpus})" if server_cpus else ""
        print(f"== {provider}{where}", flush=True)
        proc, pipe, info = start_server(
            functools.partial(serve, provider, cpus=server_cpus), spawn=True
        )
        server = (proc, pipe, dict(info, client_cpus=client_cpus, aiola_no_ack=args.aiola_no_ack))
        try:
            for rep in range(repeats):
                for k, n in enumerate(streams):
                    order = list(args.libraries)
                    if (rep + k) % 2:
                        order.reverse()
                    for library in order:
                        row = run_one(provider, library, n, seconds, server)
                        row.update(phase="fixed", repeat=rep)
                        rows.append(row)
                        show(row)
            summary[provider] = {
                "ratios": {
                    f"{a}/{b}": ratios(rows, provider, a, b)
                    for a, b in PAIRS
                    if a in args.libraries and b in args.libraries
                }
            }
            if args.ladder:
                summary[provider]["realtime_limit"] = ladder(
                    provider,
                    seconds,
                    args.ladder_start,
                    args.ladder_step,
                    args.ladder_max,
                    server,
                    rows,
                    args.libraries,
                )
        finally:
            stop_server(proc, pipe)
    print_table(summary)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "compare",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": psutil.cpu_count(),
                "versions": versions(),
                "seconds": seconds,
                "repeats": repeats,
                "aiola_no_ack": args.aiola_no_ack,
                "split_cpus": args.split_cpus,
                "summary": summary,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")
    return 0


def versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("voxsync", "aiola", "uhlive", "websocket-client", "python-socketio"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def print_table(summary: Dict[str, Any]) -> None:
    print()
    print("median of paired ratios (< 1: the first library uses less / is faster)")
    for provider, data in summary.items():
        for pair, table in data["ratios"].items():
            num, den = pair.split("/")
            print(f"-- {provider}: {num} / {den}")
            ns = list(table)
            print(f"{'figure':<24}" + "".join(f"{'N=' + n:>12}" for n in ns))
            for label, _ in FIGURES:
                cells = []
                for n in ns:
                    ratio = table[n][label]["ratio"]
                    cells.append(f"{ratio:>11.2f}x" if ratio is not None else f"{'-':>12}")
                print(f"{label:<24}" + "".join(cells))
            for n in ns:
                cpu = table[n]["client CPU per stream"]
                thr = table[n]["threads per stream"]
                if num in cpu and den in cpu:
                    print(
                        f"  N={n}: CPU %/stream {cpu[num]:.3f} vs {cpu[den]:.3f}; "
                        f"threads/stream {thr[num]:.2f} vs {thr[den]:.2f}"
                    )
        if "realtime_limit" in data:
            limits = ", ".join(f"{k} {v}" for k, v in data["realtime_limit"].items())
            print(f"  streams held in real time ({provider}): {limits}")


if __name__ == "__main__":
    sys.exit(main())
