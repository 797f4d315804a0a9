"""Notebook support in the connection runtime: the caller's context in handlers,
``on(..., replace=True)``, ``close_all()``, ``events()`` from before ``connect``,
Ctrl+C inside an ``events()`` loop, and the runtime's docstring examples."""

from __future__ import annotations

import contextvars
import doctest
import importlib
import os
import signal
import threading
import time
from typing import Iterator, List

import pytest
from speech import SAMPLES, pcm16

import voxsync
from voxsync.audio import stream_file

cell: contextvars.ContextVar[str] = contextvars.ContextVar("cell", default="none")


@pytest.fixture()
def in_samples(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(SAMPLES)
    yield


def test_connection_docstring_examples_run(in_samples: None) -> None:
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    # (``voxsync.connection`` is also a function; take the module itself)
    module = importlib.import_module("voxsync.connection")
    tests = [t for t in finder.find(module) if t.examples]
    names = {t.name.rsplit(".", 1)[-1] for t in tests}
    assert {"on", "events", "close_all"} <= names
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= 10


def test_handlers_run_in_the_context_of_connect() -> None:
    seen: List[str] = []
    conn = voxsync.connection()
    conn.on("connect", lambda ev: seen.append(cell.get()))
    conn.on("transcript", lambda ev: seen.append(cell.get()))
    token = cell.set("cell-1")
    try:
        conn.connect()
    finally:
        cell.reset(token)
    # a later "cell" of the same thread sets another value; handlers keep cell-1
    cell.set("cell-2")
    with conn:
        stream_file(conn, SAMPLES / "yes.wav", realtime=False)
    assert seen and set(seen) == {"cell-1"}, seen


def test_context_is_captured_per_connect_not_per_thread() -> None:
    seen: List[str] = []

    def run(name: str) -> None:
        cell.set(name)
        conn = voxsync.connection()
        conn.on("connect", lambda: seen.append(cell.get()))
        with conn:
            pass

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(seen) == ["t0", "t1", "t2"]


def test_on_replace_keeps_one_handler_per_qualified_name() -> None:
    conn = voxsync.connection()
    finals: List[str] = []

    def register(tag: str) -> None:
        # what re-running a notebook cell does: a new function, the same name
        @conn.on("transcript", replace=True)
        def show(ev: voxsync.Transcript) -> None:
            if ev.is_final:
                finals.append(f"{tag}:{ev.text}")

    register("first")
    register("second")
    conn.on("transcript", lambda ev: None)
    conn.on("transcript", lambda ev: None, replace=True)  # lambdas share a name
    assert len(conn.listeners("transcript")) == 2
    with conn:
        stream_file(conn, SAMPLES / "yes.wav", realtime=False)
    assert finals == ["second:yes"]


def test_on_without_replace_still_adds() -> None:
    conn = voxsync.connection()

    def make() -> object:
        def show(ev: object) -> None:
            pass

        return show

    conn.on("transcript", make())  # type: ignore[arg-type]
    conn.on("transcript", make())  # type: ignore[arg-type]
    assert len(conn.listeners("transcript")) == 2


def test_close_all_closes_open_connections_only() -> None:
    idle = voxsync.connection()
    a = voxsync.connection().connect()
    b = voxsync.connection().connect()
    done = voxsync.connection()
    with done:
        pass
    assert voxsync.close_all() == 2
    assert a.state is voxsync.State.CLOSED and b.state is voxsync.State.CLOSED
    assert idle.state is voxsync.State.IDLE
    assert voxsync.close_all() == 0
    with pytest.raises(voxsync.LocalProtocolError, match="closed"):
        a.send(b"\0\0" * 160)


def test_close_all_does_not_keep_connections_alive() -> None:
    import gc
    import weakref

    conn = voxsync.connection()
    with conn:
        pass
    ref = weakref.ref(conn)
    del conn
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("run", range(10))
def test_events_before_connect_sees_connect_first(run: int) -> None:
    conn = voxsync.connection()
    it = conn.events(timeout=30)
    with conn:
        conn.send(pcm16("yes.wav"))
    names = [getattr(ev, "event_name", "error") for ev in it]
    assert names[0] == "connect" and names[-1] == "disconnect"
    assert "transcript" in names


def test_keyboard_interrupt_in_events_loop_closes_the_connection() -> None:
    assert threading.current_thread() is threading.main_thread()
    conn = voxsync.connection().connect()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ev in conn.events(timeout=30):
                pass
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    assert conn.state is voxsync.State.CLOSED
    assert conn.wait(timeout=5)
