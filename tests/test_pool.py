"""The shared worker pool (voxsync.pool): order, isolation, timers, no thread left."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, List, Optional

import pytest
from conftest import voxsync_threads

from voxsync.pool import RETIRE_AFTER, Lane, Pool

STOP = object()
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class Work:
    """A lane fed through a deque: items are callables, STOP ends the lane."""

    def __init__(
        self,
        owner: Pool,
        name: str,
        context: Optional[contextvars.Context] = None,
        open_now: bool = True,
    ) -> None:
        self.items: Deque[Any] = deque()
        self.done: List[Any] = []
        self.running = 0
        self.overlap = False
        self.lane: Lane = owner.lane(
            f"voxsync-test-{name}",
            self.step,
            lambda: bool(self.items),
            context or contextvars.copy_context(),
        )
        if open_now:
            self.lane.open()

    def step(self) -> bool:
        self.running += 1
        if self.running > 1:
            self.overlap = True
        try:
            for _ in range(8):  # small batches, as the connections' lanes do
                if not self.items:
                    return False
                item = self.items.popleft()
                if item is STOP:
                    return True
                self.done.append(item() if callable(item) else item)
            return False
        finally:
            self.running -= 1

    def put(self, item: Any) -> None:
        self.items.append(item)
        self.lane.notify()

    def close(self, timeout: float = 5.0) -> None:
        self.put(STOP)
        assert self.lane.wait_closed(timeout), "the lane did not finish"


class Timed:
    """An open lane that records when it runs (``runs``) and ends once ``closing`` is set."""

    def __init__(self, owner: Pool, name: str) -> None:
        self.runs: List[float] = []
        self.closing = threading.Event()
        self.lane: Lane = owner.lane(
            f"voxsync-test-{name}", self.step, lambda: False, contextvars.copy_context()
        )
        self.lane.open()

    def step(self) -> bool:
        self.runs.append(time.monotonic())
        return self.closing.is_set()


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def pool_threads() -> List[str]:
    return [t.name for t in voxsync_threads()]


def test_each_lane_keeps_its_order_and_runs_on_one_worker_at_a_time() -> None:
    owner = Pool()
    lanes = [Work(owner, f"order-{i}") for i in range(8)]

    def produce(work: Work, tag: int) -> None:
        for n in range(300):
            work.put((tag, n))

    producers = [
        threading.Thread(target=produce, args=(work, tag))
        for work in lanes
        for tag in range(3)  # three threads feed each lane
    ]
    for t in producers:
        t.start()
    for t in producers:
        t.join(10)
    for work in lanes:
        work.close()
        assert len(work.done) == 900
        for tag in range(3):  # each producer's items in the order it put them
            assert [n for g, n in work.done if g == tag] == list(range(300))
        assert not work.overlap
    assert owner.join_if_unused(5)
    assert owner.workers == 0
    assert pool_threads() == []


def test_a_blocked_lane_never_holds_up_another() -> None:
    owner = Pool()
    slow, fast = Work(owner, "slow"), Work(owner, "fast")
    release = threading.Event()
    slow.put(lambda: release.wait(10))
    assert wait_for(lambda: slow.running == 1)
    start = time.monotonic()
    for n in range(50):
        fast.put(n)
    assert wait_for(lambda: len(fast.done) == 50, timeout=3), fast.done
    took = time.monotonic() - start
    assert slow.done == [] and slow.running == 1  # still blocked meanwhile
    assert took < 1.0
    release.set()
    slow.close()
    fast.close()
    assert slow.done == [True]
    assert owner.join_if_unused(5)
    assert pool_threads() == []


def test_the_pool_grows_only_when_work_waits() -> None:
    owner = Pool()
    lanes = [Work(owner, f"burst-{i}") for i in range(40)]
    peak = 0
    for _ in range(20):
        for work in lanes:
            work.put(1)
        peak = max(peak, owner.workers)
    assert wait_for(lambda: all(len(w.done) == 20 for w in lanes))
    # quick work on 40 lanes: a few workers, never one per lane
    assert peak < len(lanes) // 2, peak
    for work in lanes:
        work.close()
    assert owner.join_if_unused(5)
    assert pool_threads() == []


def test_a_worker_carries_the_name_of_the_lane_it_runs() -> None:
    owner = Pool()
    work = Work(owner, "named")
    work.put(lambda: threading.current_thread().name)
    assert wait_for(lambda: len(work.done) == 1)
    assert work.done == ["voxsync-test-named"]
    # idle again: the worker's own name
    assert wait_for(lambda: all(n.startswith("voxsync-pool-") for n in pool_threads()))
    work.close()
    assert owner.join_if_unused(5)


def test_steps_run_in_the_lane_context() -> None:
    owner = Pool()
    token = request_id.set("abc")
    try:
        context = contextvars.copy_context()
    finally:
        request_id.reset(token)
    work = Work(owner, "context", context)
    work.put(lambda: request_id.get())
    work.put(lambda: request_id.set("changed") and request_id.get())
    work.put(lambda: request_id.get())
    work.close()
    assert work.done == ["abc", "changed", "changed"]  # one context for the lane
    assert request_id.get() == "-"  # the caller's own context untouched
    assert owner.join_if_unused(5)


def test_a_raising_step_is_logged_and_the_lane_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    owner = Pool()
    work = Work(owner, "raising")

    def boom() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="voxsync.pool"):
        work.put(boom)
        assert wait_for(lambda: "boom" in caplog.text)
        work.put("after")
        work.close()
    assert work.done == ["after"]
    assert owner.join_if_unused(5)


def test_wake_at_runs_the_lane_at_the_time_asked() -> None:
    owner = Pool()
    timed = Timed(owner, "timer")
    lane, runs, closing = timed.lane, timed.runs, timed.closing
    start = time.monotonic()
    lane.wake_at(start + 0.2)
    lane.wake_at(start + 0.5)  # the last request replaces the earlier one
    assert wait_for(lambda: len(runs) >= 1, timeout=3)
    assert runs[0] >= start + 0.5
    time.sleep(0.3)
    assert len(runs) == 1  # one run, not one per request
    lane.wake_at(time.monotonic() + 5)
    lane.wake_at(time.monotonic() + 0.05)  # an earlier time replaces a later one too
    assert wait_for(lambda: len(runs) == 2, timeout=3)
    time.sleep(0.2)
    assert len(runs) == 2
    closing.set()
    lane.notify()
    assert lane.wait_closed(3)
    assert owner.join_if_unused(5)
    assert pool_threads() == []


def test_an_armed_timer_fires_while_every_other_worker_is_blocked() -> None:
    owner = Pool()
    slow = Work(owner, "blocking")
    release = threading.Event()
    slow.put(lambda: release.wait(10))
    assert wait_for(lambda: slow.running == 1)
    fired = threading.Event()

    def step() -> bool:
        fired.set()
        return True

    lane = owner.lane("voxsync-test-keepalive", step, lambda: False, contextvars.copy_context())
    lane.open()
    lane.wake_at(time.monotonic() + 0.2)
    assert fired.wait(3)
    release.set()
    slow.close()
    assert lane.wait_closed(3)
    assert owner.join_if_unused(5)


def test_idle_workers_retire_while_lanes_stay_open() -> None:
    owner = Pool()
    work = Work(owner, "idle")
    for n in range(10):
        work.put(n)
    assert wait_for(lambda: len(work.done) == 10)
    assert owner.workers >= 1
    assert wait_for(lambda: owner.workers == 0, timeout=RETIRE_AFTER + 3)
    work.put("again")  # a new worker starts for new work
    assert wait_for(lambda: work.done[-1:] == ["again"])
    work.close()
    assert owner.join_if_unused(5)


def test_no_worker_is_left_once_the_last_lane_closed() -> None:
    owner = Pool()
    work = Work(owner, "last")
    work.put(1)
    work.close()
    # join_if_unused returns once the workers ended: nothing left at once
    assert owner.join_if_unused(5)
    assert owner.workers == 0
    assert pool_threads() == []


def test_join_if_unused_does_not_wait_while_a_lane_is_open() -> None:
    owner = Pool()
    first, second = Work(owner, "first"), Work(owner, "second")
    first.put(1)
    first.close()
    start = time.monotonic()
    assert not owner.join_if_unused(2)
    assert time.monotonic() - start < 0.5
    second.close()
    assert owner.join_if_unused(5)


def test_a_lane_closed_from_its_own_step_lets_its_worker_end() -> None:
    owner = Pool()
    joined: List[bool] = []
    work = Work(owner, "self-close")
    # like close() from a handler: the worker cannot wait for itself
    work.put(lambda: joined.append(owner.join_if_unused(0.2)))
    work.put(STOP)
    assert work.lane.wait_closed(5)
    assert joined == [False]  # the lane was still open inside its own step
    assert owner.join_if_unused(5)
    assert pool_threads() == []
