"""Palabra's translation socket: voxsync side by side with the official ``palabra-ai`` SDK.

The harness is ``compare.py``'s (imported, not repeated): the emulator runs
in its own process, every measurement in a fresh client process that
imports one library only, N streams fed 100 ms chunks at real time by the
main thread, the same figures (client CPU per stream, CPU by thread role,
threads and RSS per stream, send cost, chunk lateness at the server, event
latency), repeats in alternating order and paired ratios. What differs:

the server
    voxsync's Palabra emulator (``voxsync.emulators.palabra``), its
    translation socket at the path the 2.x SDK uses, accepting one API key
    as the token (``?token=``), as Palabra's 2.x flow does. Recognition is
    the scripted engine (one final per 0.5 s of audio); its "translation"
    of each final is the emulator's clock (``time.time()`` as text), which
    the client's handler subtracts from its own: the event latency. Each
    translation is "spoken" as 0.5 s of silence (no speech synthesizer
    loading the shared cores), streamed back at real time in 200 ms
    ``output_audio_data`` frames, so each stream also receives as much
    audio as it sends, as in real use.
voxsync
    ``voxsync.palabra.Palabra().translation(ws_url=..., token=...)``: one
    threaded connection per stream, ``send_audio()`` from the feeder, a
    ``translation`` handler.
official
    ``palabra_ai.TranslationSession(task, endpoint, token)`` (what
    ``Palabra().translation()`` builds; its endpoint comes from a fixed
    table of Palabra's regions, so the session is created with the
    emulator's URL directly): asyncio, run as a synchronous program runs
    it, in its own event loop on one background thread. Per stream an
    ``asyncio.Queue`` and a task that sends what the feeder puts in it
    (``loop.call_soon_threadsafe``), and a task iterating the session's
    events.

Both send the same task (source en, target es, 16 kHz PCM input so the
emulator does not resample; ``build_task`` of each library).

Writes benchmarks/results/compare_palabra.json. From the benchmark
environment (docs/guide/benchmarks.rst)::

    python benchmarks/compare_palabra.py --quick     # N = 1, 10, 50, one repeat, 3 s
    python benchmarks/compare_palabra.py             # N = 1, 10, 50, 3 repeats, 5 s
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare  # noqa: E402  (removes benchmarks/ from sys.path again)
from _common import receive, recording_engine, start_server, stop_server  # noqa: E402

PROVIDER = "palabra"
RATE = 16000  # input sample rate: the emulator's engine rate, no resampling
TOKEN = "bench-api-key"
SPEECH_SECONDS = 0.5  # the "spoken" translation of each final
compare.RATES[PROVIDER] = RATE


# =================================================================== emulator process


def serve(pipe: Any) -> None:
    """Child process: the Palabra emulator, recording each chunk's arrival."""
    from voxsync.emulators.engine import make_engine
    from voxsync.emulators.palabra import PalabraEmulator

    engine, sessions, lock = recording_engine(
        make_engine(
            "scripted",
            transcripts=["benchmark words"],
            every_bytes=int(compare.SEGMENT_SECONDS * RATE * 2),
        )
    )
    speech = bytes(int(24000 * SPEECH_SECONDS) * 2)  # the emulator's output: 24 kHz s16le

    class Silence:
        def synthesize(self, text: str, language: str) -> bytes:
            return speech

    class Emulator(PalabraEmulator):
        def synthesizer(self) -> Any:
            return Silence()

    with Emulator(
        engine=engine,
        api_key=TOKEN,
        translator=lambda text, source, target: f"{time.time():.6f}",
        idle_timeout=600,
        pacing_tolerance=600,
    ) as emu:
        pipe.send({"ws_url": emu.ws_url, "base_url": emu.base_url, "token": TOKEN})
        while True:
            message = pipe.recv()
            if message == "stop":
                return
            if message == "reset":
                with lock:
                    sessions.clear()
                emu.received.clear()  # every frame is kept for tests: not here
                pipe.send("ok")
            elif message == "arrivals":
                with lock:
                    pipe.send([list(s) for s in sessions])


# =================================================================== client process


class VoxsyncPalabra(compare.Library):
    def __init__(self, info: Dict[str, Any]) -> None:
        from voxsync.palabra import Palabra

        self.client = Palabra(api_url=info["base_url"])  # direct mode: no REST call
        self.info = info

    def open(self, i: int, on_final: Callable[[Optional[float]], None]) -> Any:
        session = self.client.translation(
            source="en",
            targets="es",
            ws_url=self.info["ws_url"],
            token=self.info["token"],
            input_sample_rate=RATE,
        )

        def on_translation(ev: Any) -> None:
            if ev.is_final:
                on_final(float(ev.text))

        session.on("translation", on_translation)
        session.connect(timeout=60)
        return session

    def send(self, stream: Any, chunk: bytes) -> None:
        stream.send_audio(chunk)

    def close(self, stream: Any) -> None:
        stream.close()


class OfficialPalabra(compare.Library):
    """palabra-ai's asyncio session, driven from a synchronous program: one loop thread."""

    def __init__(self, info: Dict[str, Any]) -> None:
        import asyncio

        from palabra_ai import Transcript, TranslationSession, build_task

        self.asyncio = asyncio
        self.session_class = TranslationSession
        self.transcript = Transcript
        self.task = build_task("en", "es", input_sample_rate=RATE)
        self.info = info
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="asyncio-loop", daemon=True
        )
        self.thread.start()

    def open(self, i: int, on_final: Callable[[Optional[float]], None]) -> Any:
        asyncio = self.asyncio

        async def start() -> Any:
            session = self.session_class(self.task, self.info["ws_url"], self.info["token"])
            await session.__aenter__()
            queue: Any = asyncio.Queue()

            async def pump() -> None:
                while True:
                    chunk = await queue.get()
                    if chunk is None:
                        return
                    await session.send_audio(chunk)

            async def events() -> None:
                async for ev in session:
                    if isinstance(ev, self.transcript) and ev.type == "translated_transcription":
                        on_final(float(ev.text))

            tasks = (asyncio.create_task(pump()), asyncio.create_task(events()))
            return session, queue, tasks

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(60)

    def send(self, stream: Any, chunk: bytes) -> None:
        _, queue, _ = stream
        self.loop.call_soon_threadsafe(queue.put_nowait, chunk)

    def close(self, stream: Any) -> None:
        session, queue, (pump, events) = stream

        async def stop() -> None:
            queue.put_nowait(None)
            await pump
            events.cancel()
            await session.close()

        self.asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)


compare.CLASSES[PROVIDER, "voxsync"] = VoxsyncPalabra
compare.CLASSES[PROVIDER, "official"] = OfficialPalabra


# =================================================================== orchestration


def run_one(library: str, n: int, seconds: float, server: Any) -> Dict[str, Any]:
    """One measurement in a fresh client process (``compare.worker`` in this script)."""
    proc, pipe, info = server
    pipe.send("reset")
    receive(pipe, proc)
    spec = {"provider": PROVIDER, "library": library, "n": n, "seconds": seconds, "info": info}
    failed = {"provider": PROVIDER, "library": library, "streams": n}
    env = dict(os.environ)
    if library == "baseline":  # voxsync from another checkout (--baseline)
        env["VOXSYNC_BENCH_BASELINE"] = compare.BASELINE[0]
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=120 + 2 * seconds + n,
            cwd=ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {**failed, "error": "timeout"}
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        return {**failed, "error": " | ".join(tail) or f"exit {done.returncode}"}
    result: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if library == "baseline" and not result.get("voxsync_file", "").startswith(compare.BASELINE[0]):
        raise RuntimeError(f"the baseline run imported voxsync from {result.get('voxsync_file')}")
    pipe.send("arrivals")
    result.update(compare.lateness(result, receive(pipe, proc)))
    result["held"] = compare.held(result)
    return result


def frame_costs() -> Dict[str, float]:
    """Microseconds to mask one audio frame (100 ms of 16 kHz PCM as Palabra's JSON).

    Clients must mask every frame they send: websocket-client does it in
    Python, websockets (palabra-ai's) in C when its extension is built, and
    voxsync's transport builds its frames itself with numpy ("voxsync": the
    whole frame, header and fresh key included).
    """
    import base64
    import timeit

    frame = json.dumps(
        {
            "message_type": "input_audio_data",
            "data": {"data": base64.b64encode(bytes(3200)).decode()},
        }
    ).encode()
    key = os.urandom(4)
    out: Dict[str, float] = {"frame_bytes": len(frame)}
    candidates: Dict[str, Callable[[], Any]] = {}
    try:
        from websocket._abnf import ABNF

        candidates["websocket-client"] = lambda: ABNF.mask(key, frame)
    except ImportError:
        pass
    try:
        from websockets.speedups import apply_mask

        candidates["websockets"] = lambda: apply_mask(frame, key)
    except ImportError:
        pass
    try:
        from voxsync.transport.websocket import OPCODE_TEXT, encode_frame

        candidates["voxsync"] = lambda: encode_frame(OPCODE_TEXT, frame)
    except ImportError:  # a voxsync from before its own frames
        pass
    for name, call in candidates.items():
        best = min(timeit.repeat(call, number=2000, repeat=5)) / 2000
        out[f"mask_us_{name}"] = round(1e6 * best, 2)
    return out


def versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("voxsync", "palabra-ai", "websockets", "websocket-client"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    compare.add_run_arguments(parser)
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "compare_palabra.json",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(compare.worker(json.loads(args.worker))))
        return 0
    compare.choose_libraries(parser, args)
    if "official" in args.libraries and importlib.util.find_spec("palabra_ai") is None:
        print(
            "palabra-ai is not installed here; create the benchmark environment first "
            "(docs/guide/benchmarks.rst)",
            file=sys.stderr,
        )
        return 2
    streams = args.streams or [1, 10, 50]
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.seconds or (3.0 if args.quick else 5.0)
    rows: List[Dict[str, Any]] = []
    print(f"== {PROVIDER}", flush=True)
    server = start_server(serve, spawn=True)
    try:
        for rep in range(repeats):
            for k, n in enumerate(streams):
                order = list(args.libraries)
                if (rep + k) % 2:
                    order.reverse()
                for library in order:
                    row = run_one(library, n, seconds, server)
                    row.update(phase="fixed", repeat=rep)
                    rows.append(row)
                    compare.show(row)
    finally:
        stop_server(server[0], server[1])
    pairs = {
        f"{num}/{den}": compare.ratios(rows, PROVIDER, num, den)
        for num, den in compare.PAIRS
        if num in args.libraries and den in args.libraries
    }
    summary = {PROVIDER: {"ratios": pairs}}
    compare.print_table(summary)
    costs = frame_costs()
    print(f"masking one {costs['frame_bytes']:.0f}-byte audio frame (fastest of 5 x 2000):")
    for name, us in costs.items():
        if name.startswith("mask_us_"):
            print(f"  {name[len('mask_us_') :]}: {us:.2f} us")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "compare_palabra",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": psutil.cpu_count(),
                "versions": versions(),
                "seconds": seconds,
                "repeats": repeats,
                "summary": summary,
                "frame_costs": costs,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
