"""Helpers shared by the benchmark scripts: percentiles and a server in a child process."""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable, List, Tuple


def percentile(values: List[float], pct: float) -> float:
    """The ``pct`` percentile of ``values`` (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def receive(conn: Any, proc: Any, timeout: float = 120.0) -> Any:
    """Next message from the child, or RuntimeError if it died or stays silent."""
    if conn.poll(timeout):
        return conn.recv()
    state = f"exited with code {proc.exitcode}" if not proc.is_alive() else "is silent"
    raise RuntimeError(f"the server process {state} after {timeout} s")


def start_server(target: Callable[[Any], None], *, spawn: bool = False) -> Tuple[Any, Any, Any]:
    """Run ``target(pipe)`` in a child process; return (process, pipe, its first message).

    The child sends one message when it is ready (e.g. its URL), then waits
    for "stop". A child that dies makes :func:`receive` raise instead of
    waiting forever (the parent closes its copy of the child's end).
    """
    ctx = multiprocessing.get_context("spawn" if spawn else None)
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child,), daemon=True)
    proc.start()
    child.close()
    try:
        return proc, parent, receive(parent, proc)
    except BaseException:
        proc.kill()
        raise


def stop_server(proc: Any, conn: Any) -> None:
    """Ask the child to stop and wait for it (killing it after 30 s)."""
    try:
        conn.send("stop")
    except OSError:
        pass
    proc.join(30)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


def recording_engine(inner: Any) -> Tuple[Any, List[List[float]], Any]:
    """``inner`` (an emulator engine) recording when each audio chunk reaches it.

    Returns ``(engine, sessions, lock)``: ``sessions`` gets one list per
    engine session, the ``time.time()`` of each ``feed()``; hold ``lock``
    to read or clear it. For chunk lateness at the server.
    """
    import threading
    import time

    from voxsync.emulators.engine import Engine, EngineSession

    lock = threading.Lock()
    sessions: List[List[float]] = []

    class Session(EngineSession):
        def __init__(self, wrapped: EngineSession, arrivals: List[float]) -> None:
            self.wrapped = wrapped
            self.arrivals = arrivals

        def feed(self, pcm: bytes) -> Any:
            self.arrivals.append(time.time())
            return self.wrapped.feed(pcm)

        def flush(self) -> Any:
            return self.wrapped.flush()

        def close(self) -> None:
            self.wrapped.close()

    class Recording(Engine):
        kind = inner.kind

        def new_session(self, sample_rate: int = 16000) -> EngineSession:
            arrivals: List[float] = []
            with lock:
                sessions.append(arrivals)
            return Session(inner.new_session(sample_rate), arrivals)

        def close(self) -> None:
            inner.close()

    return Recording(), sessions, lock
