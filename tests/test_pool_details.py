"""Worker pool details: lane life cycle, timers, hand-offs, growth and retirement.

``test_pool.py`` covers order, isolation and thread hygiene; these tests pin
down the promises around them: a lane runs only once opened, waiting for a
timer costs no CPU and fires on time, quick work is handed on at once even
while another lane is blocked, idle workers end as soon as the last lane
closes, and the names and reprs that show up in logs and tracebacks.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import pytest
from test_pool import Timed, Work, wait_for

from voxsync.pool import RETIRE_AFTER, Pool


def blocker(started: threading.Event, release: threading.Event) -> Callable[[], bool]:
    """An item that blocks its lane until ``release``; ``started`` says it runs."""

    def item() -> bool:
        started.set()
        return release.wait(10)

    return item


def idle(owner: Pool) -> bool:
    """Every worker is idle: each carries the pool's own name again."""
    return all(t.name.startswith("voxsync-pool-") for t in owner.threads())


def test_a_lane_runs_only_once_opened_and_opening_twice_counts_once() -> None:
    owner = Pool()
    work = Work(owner, "late", open_now=False)
    assert repr(work.lane) == "<Lane voxsync-test-late new>"
    work.put(1)  # notified before open(): it waits for open()
    time.sleep(0.1)
    assert work.done == [] and owner.workers == 0
    work.lane.open()
    work.lane.open()
    assert repr(work.lane) == "<Lane voxsync-test-late open>"
    assert wait_for(lambda: work.done == [1])
    work.close()
    assert repr(work.lane) == "<Lane voxsync-test-late closed>"
    # opened twice, closed once: no lane is left open
    assert owner.join_if_unused(0.5)
    assert owner.workers == 0


def test_wait_closed_is_bounded_by_its_timeout() -> None:
    owner = Pool()
    work = Work(owner, "open")
    for timeout in (0.1, -1.0):
        start = time.monotonic()
        assert work.lane.wait_closed(timeout) is False
        assert time.monotonic() - start < 0.5
    assert not work.lane.closed
    work.close()
    assert work.lane.closed and work.lane.wait_closed(0)
    assert owner.join_if_unused(5)


def test_a_raising_step_is_logged_with_the_lane_name(caplog: pytest.LogCaptureFixture) -> None:
    owner = Pool()
    work = Work(owner, "broken")

    def boom() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="voxsync.pool"):
        work.put(boom)
        assert wait_for(lambda: bool(caplog.records))
        work.close()
    record = caplog.records[0]
    assert record.getMessage() == "voxsync-test-broken: unexpected error in pool work"
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])
    assert owner.join_if_unused(5)


def test_workers_are_named_and_listed_and_take_their_name_back_when_idle() -> None:
    owner = Pool()
    assert owner.threads() == [] and repr(owner) == "<Pool workers=0 idle=0 lanes=0>"
    work = Work(owner, "named")
    work.put(lambda: threading.current_thread().name)
    assert wait_for(lambda: len(work.done) == 1)
    assert work.done == ["voxsync-test-named"]
    threads = owner.threads()
    assert len(threads) == 1 and threads[0].is_alive()
    # the same worker, idle and still alive, carries the pool's name again
    assert wait_for(lambda: threads[0].name == "voxsync-pool-1", timeout=RETIRE_AFTER / 2)
    assert threads[0].is_alive() and owner.threads() == threads
    work.close()
    assert owner.join_if_unused(5)
    assert owner.threads() == [] and not threads[0].is_alive()


def test_a_replaced_timer_request_runs_the_lane_once() -> None:
    owner = Pool()
    timed = Timed(owner, "timer")
    lane, runs, closing = timed.lane, timed.runs, timed.closing
    start = time.monotonic()
    lane.wake_at(start + 0.3)
    lane.wake_at(start + 0.1)  # replaces the later request: its entry is stale
    time.sleep(0.6)
    assert len(runs) == 1 and runs[0] >= start + 0.1
    closing.set()
    lane.notify()
    assert lane.wait_closed(3)
    lane.wake_at(time.monotonic())  # a closed lane is never run again
    time.sleep(0.1)
    assert len(runs) == 2
    assert owner.join_if_unused(5)


def test_waiting_for_a_timer_costs_no_cpu_and_fires_on_time() -> None:
    owner = Pool()
    timed = Timed(owner, "wait")
    lane, runs, closing = timed.lane, timed.runs, timed.closing
    cpu = time.process_time()
    start = time.monotonic()
    lane.wake_at(start + 0.1)
    lane.wake_at(start + 0.6)  # the first entry fires, finds it early, re-arms
    time.sleep(0.35)
    # one worker waits for the re-armed timer; no other is started for it
    assert owner.workers == 1
    assert wait_for(lambda: len(runs) == 1, timeout=3)
    assert start + 0.6 <= runs[0] < start + 0.6 + 0.3
    assert time.process_time() - cpu < 0.3  # asleep, not polling, while it waits
    closing.set()
    lane.notify()
    assert lane.wait_closed(3)
    assert owner.join_if_unused(5)


def test_a_timer_due_after_the_retire_time_still_fires() -> None:
    owner = Pool()
    timed = Timed(owner, "later")
    lane, runs, closing = timed.lane, timed.runs, timed.closing
    start = time.monotonic()
    lane.wake_at(start + RETIRE_AFTER + 0.3)  # idle longer than a worker lives idle
    assert wait_for(lambda: len(runs) == 1, timeout=RETIRE_AFTER + 3)
    assert runs[0] < start + RETIRE_AFTER + 0.3 + 0.5
    closing.set()
    lane.notify()
    assert lane.wait_closed(3)
    assert owner.join_if_unused(5)


def test_quick_work_is_handed_on_at_once() -> None:
    owner = Pool()
    work = Work(owner, "ping")
    start = time.monotonic()
    for n in range(100):  # each item waits for the worker to be idle again
        work.put(n)
        assert wait_for(lambda n=n: len(work.done) == n + 1, timeout=3)  # type: ignore[misc]
        time.sleep(0.001)
    took = time.monotonic() - start - 0.1
    assert took < 1.0, took  # no item waits for a poll (each would add 20 ms: 2 s)
    work.close()
    assert owner.join_if_unused(5)


def test_a_blocked_lane_does_not_slow_a_busy_one() -> None:
    owner = Pool()
    slow, fast = Work(owner, "blocked"), Work(owner, "busy")
    started, release = threading.Event(), threading.Event()
    slow.put(blocker(started, release))
    assert started.wait(3)
    start = time.monotonic()
    for n in range(1600):  # 200 steps of 8: the worker that ran one takes the next
        fast.items.append(n)
    fast.lane.notify()
    assert wait_for(lambda: len(fast.done) == 1600, timeout=10)
    took = time.monotonic() - start
    assert took < 1.5, took  # a 20 ms wait between steps would take 4 s
    release.set()
    slow.close()
    fast.close()
    assert owner.join_if_unused(5)


def test_work_queued_behind_two_blocked_lanes_still_runs() -> None:
    owner = Pool()
    first, second, third = Work(owner, "first"), Work(owner, "second"), Work(owner, "third")
    started, release = threading.Event(), threading.Event()
    first.put(blocker(started, release))
    assert started.wait(3)
    # two lanes get work at once while the only idle worker watches
    second.items.append(blocker(threading.Event(), release))
    third.items.append("done")
    second.lane.notify()
    third.lane.notify()
    assert wait_for(lambda: third.done == ["done"], timeout=3), repr(owner)
    release.set()
    for work in (first, second, third):
        work.close()
    assert owner.join_if_unused(5)


def test_an_idle_worker_takes_new_work_at_once_while_a_lane_is_blocked() -> None:
    owner = Pool()
    release = threading.Event()
    lanes = [Work(owner, f"w{i}") for i in range(3)]
    # make more workers: two lanes block at once
    first, second = threading.Event(), threading.Event()
    lanes[0].put(blocker(first, release))
    assert first.wait(3)
    lanes[1].put(blocker(second, release))
    assert second.wait(3)
    release.set()
    assert wait_for(lambda: len(lanes[0].done) == 1 and len(lanes[1].done) == 1)
    assert wait_for(lambda: idle(owner) and owner.workers >= 2)
    time.sleep(0.05)
    # every worker idle, none watching (no lane runs); one takes a blocking step...
    started, blocked = threading.Event(), threading.Event()
    lanes[0].put(blocker(started, blocked))
    assert started.wait(3)
    # ...and new work on another lane goes to an idle one at once
    start = time.monotonic()
    lanes[2].put("now")
    assert wait_for(lambda: lanes[2].done == ["now"], timeout=3)
    assert time.monotonic() - start < 0.3
    blocked.set()
    for work in lanes:
        work.close()
    assert owner.join_if_unused(5)


def test_idle_workers_end_as_soon_as_the_last_lane_closes() -> None:
    owner = Pool()
    slow, fast = Work(owner, "slow"), Work(owner, "fast")
    started, release = threading.Event(), threading.Event()
    slow.put(blocker(started, release))
    assert started.wait(3)
    fast.put(1)  # goes to a second worker
    assert wait_for(lambda: fast.done == [1])
    release.set()
    assert wait_for(lambda: slow.done == [True] and idle(owner) and owner.workers >= 2)
    time.sleep(0.05)  # both idle, nothing running: neither watches
    fast.close()
    slow.close()
    closed = time.monotonic()
    # without join_if_unused(): the idle workers see that no lane is open
    assert wait_for(lambda: owner.workers == 0, timeout=RETIRE_AFTER + 2)
    assert time.monotonic() - closed < RETIRE_AFTER / 2
    assert owner.join_if_unused(5)


def test_join_if_unused_waits_for_workers_that_are_ending() -> None:
    owner = Pool()
    work = Work(owner, "ending")
    work.put(1)
    work.close()
    assert owner.join_if_unused(0.5)  # the workers end within it
    assert owner.workers == 0
