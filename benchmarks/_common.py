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
