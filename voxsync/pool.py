"""The shared worker pool that runs every connection's ordered work.

A connection's handlers must run one at a time, in arrival order, and a
slow handler must delay only that connection's later handlers; its audio
must be written in order, and a write blocked on a slow socket must delay
only that connection. Giving every connection its own dispatcher and
writer thread keeps these promises at the price of two threads per
connection; this module keeps them on a pool of threads shared by every
connection of the process.

Each ordered stream of work is a :class:`Lane` (a connection has two: its
dispatch lane and its writer lane). A lane is run by at most one worker at
a time, so its work stays in order; a worker is added when work has
waited :data:`SPAWN_AFTER` seconds while every running lane looks blocked,
so a lane whose work blocks (a slow handler, a socket write that does not
return) never holds up another lane for long, while quick work on many
lanes does not multiply threads that would only contend for the
interpreter lock. When the process is short of CPU (the watching worker
itself wakes late), slow lanes are not taken for blocked ones and the pool
grows only for work that waited :data:`STARVED_AFTER` seconds. Idle
workers retire after :data:`RETIRE_AFTER` seconds (one stays while a lane
waits for a timer, or while lanes run, to watch them), and none is left
once every lane is closed: :meth:`Pool.join_if_unused` waits for them.

Workers are daemon threads named ``voxsync-pool-<n>`` while idle; while
running a lane a worker takes the lane's name
(``voxsync-<provider>-<n>-dispatch``, ``...-writer``), so log records and
tracebacks say which connection's work it is.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import os
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple

__all__ = ["RETIRE_AFTER", "SPAWN_AFTER", "STARVED_AFTER", "Lane", "Pool", "pool"]

log = logging.getLogger(__name__)

#: Seconds an idle worker waits for work before it ends.
RETIRE_AFTER = 1.0

#: Seconds queued work waits before it goes to a new worker even while the
#: process looks starved of the CPU (see ``Pool._work``).
STARVED_AFTER = 0.25

#: Seconds after which a running lane counts as blocked and queued work
#: waiting that long goes to a new worker: about the longest a blocked lane
#: (a slow handler, a stuck write) delays another lane.
SPAWN_AFTER = 0.02


class Lane:
    """One ordered stream of work on the pool (a connection's dispatch or writer).

    Parameters
    ----------
    owner : Pool
        The pool that runs it.
    name : str
        The name its worker thread takes while running it.
    step : callable
        Called on a worker with no argument, inside ``context``: does some of
        the lane's pending work (a bounded batch, for fairness) and returns
        True when the lane is finished for good (it is then closed and never
        run again).
    pending : callable
        Returns True while work is waiting; checked after each step.
    context : contextvars.Context
        The context every step runs in (one step at a time, so one copy).

    Notes
    -----
    :meth:`notify` after adding work (any thread), :meth:`wake_at` to be run
    at a time; :meth:`open` once, before the first notify.
    """

    __slots__ = (
        "_armed_due",
        "_closed",
        "_context",
        "_due",
        "_lock",
        "_opened",
        "_pending",
        "_pool",
        "_scheduled",
        "_step",
        "_thread",
        "name",
    )

    def __init__(
        self,
        owner: Pool,
        name: str,
        step: Callable[[], bool],
        pending: Callable[[], bool],
        context: contextvars.Context,
    ) -> None:
        self._pool = owner
        self.name = name
        self._step = step
        self._pending = pending
        self._context = context
        self._lock = threading.Lock()
        # True while queued on the pool or running: at most one worker runs a lane
        self._scheduled = True  # until open()
        self._opened = False
        self._closed = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._due = 0.0  # wake_at() time asked for last
        self._armed_due: Optional[float] = None  # the pool timer entry in force

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "open" if self._opened else "new"
        return f"<Lane {self.name} {state}>"

    def open(self) -> None:
        """Start running the lane; runs it at once if work is already pending."""
        with self._lock:
            if self._opened:
                return
            self._opened = True
        self._pool._lane_opened()
        self._scheduled = False
        if self._pending():
            self.notify()

    def notify(self) -> None:
        """There is work: run the lane soon (any thread; cheap when already scheduled)."""
        if self._scheduled:
            return
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        self._pool._enqueue(self)

    def wake_at(self, when: float) -> None:
        """Run the lane at ``when`` (``time.monotonic()``); replaces an earlier request.

        The lane may run sooner for work (:meth:`notify`); its step decides
        what is due.
        """
        armed = self._armed_due
        if armed is not None and armed <= when:  # the usual case, without the lock:
            self._due = when  # the entry in force fires first and re-arms for the rest
            return
        with self._lock:
            if self._closed.is_set():
                return
            self._due = when
            if self._armed_due is not None and self._armed_due <= when:
                return  # the entry in force fires first and re-arms for the rest
            self._armed_due = when
        self._pool._arm(when, self)

    def running_here(self) -> bool:
        """True on the worker running this lane right now."""
        return self._thread is threading.current_thread()

    @property
    def closed(self) -> bool:
        """True once a step returned True."""
        return self._closed.is_set()

    def wait_closed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lane to finish; True if it did."""
        return self._closed.wait(max(0.0, timeout))

    # -------------------------------------------------- worker side
    def _run(self) -> None:
        worker = threading.current_thread()
        if worker.name != self.name:
            worker.name = self.name
        self._thread = worker
        try:
            finished = self._context.run(self._step)
        except BaseException:  # a step's own errors are its business; never kill the worker
            log.exception("%s: unexpected error in pool work", self.name)
            finished = False
        finally:
            self._thread = None
        if finished:
            self._pool._lane_closed()  # before the event: a waiter then sees no open lane
            self._closed.set()
            return  # stays "scheduled": never run again
        self._scheduled = False
        if self._pending():
            self.notify()

    def _timer(self, due: float, now: float) -> None:
        with self._lock:
            if self._armed_due != due or self._closed.is_set():
                return  # a stale entry
            self._armed_due = None
            if self._due > now:
                self._armed_due = self._due
                later: Optional[float] = self._due
            else:
                later = None
        if later is not None:
            self._pool._arm(later, self, watching=True)
        else:
            self.notify()


class Pool:
    """An elastic pool of daemon worker threads running :class:`Lane` objects.

    Use the process-wide instance :data:`pool`.
    """

    def __init__(self) -> None:
        self._init()

    def _init(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._runq: Deque[Tuple[float, Lane]] = deque()
        self._timers: List[Tuple[float, int, Lane]] = []
        self._seq = itertools.count()
        self._names = itertools.count(1)
        self._workers: List[threading.Thread] = []
        self._idle = 0
        # started but not yet in their loop: each will watch the queue, so a
        # burst of work does not start a thread per lane before they run
        self._starting = 0
        self._polling = 0  # idle workers that look at the queue every SPAWN_AFTER
        self._open = 0
        self._running: Dict[threading.Thread, float] = {}  # worker -> when it took its lane

    def __repr__(self) -> str:
        return f"<Pool workers={len(self._workers)} idle={self._idle} lanes={self._open}>"

    def lane(
        self,
        name: str,
        step: Callable[[], bool],
        pending: Callable[[], bool],
        context: contextvars.Context,
    ) -> Lane:
        """A new :class:`Lane` of this pool (see its parameters); call ``open()`` to start it."""
        return Lane(self, name, step, pending, context)

    @property
    def workers(self) -> int:
        """Worker threads alive now."""
        with self._cond:
            return len(self._workers)

    def threads(self) -> List[threading.Thread]:
        """The worker threads alive now."""
        with self._cond:
            return list(self._workers)

    def join_if_unused(self, timeout: float) -> bool:
        """If no lane is open, wait up to ``timeout`` s for every worker to end.

        The calling thread is not waited for if it is a worker (a handler
        that closed its own connection). Returns True when no other worker
        is left, False if a lane is open or a worker outlived ``timeout``.
        """
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        with self._cond:
            workers = [w for w in self._workers if w is not current]
            self._cond.notify_all()  # idle workers see that no lane is open
            while True:
                if self._open or self._runq:
                    return False  # a connection opened meanwhile: its workers stay
                if not any(w is not current for w in self._workers):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        for worker in workers:  # they left the pool: wait for their threads to end
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in workers)

    # ------------------------------------------------------------ internals
    def _lane_opened(self) -> None:
        with self._cond:
            self._open += 1

    def _lane_closed(self) -> None:
        with self._cond:
            self._open -= 1
            if not self._open:
                self._cond.notify_all()  # idle workers end now

    def _enqueue(self, lane: Lane) -> None:
        with self._cond:
            runq = self._runq
            runq.append((time.monotonic(), lane))
            if not self._idle and not self._starting:  # nobody watches the queue: a new
                self._spawn()  # worker (see _work)
            elif not self._running or not self._polling:
                self._cond.notify()
            # else a running worker takes it when its lane is done, and the
            # idle watcher, which polls while lanes run, if they all look blocked

    def _arm(self, when: float, lane: Lane, watching: bool = False) -> None:
        # watching: called by a worker handling timers, which waits for the next one itself
        with self._cond:
            heapq.heappush(self._timers, (when, next(self._seq), lane))
            if self._timers[0][2] is lane:
                if self._idle:
                    self._cond.notify()  # an idle worker recomputes its wait
                elif not watching and not self._starting:
                    self._spawn()  # every worker is busy, maybe blocked: one must watch

    def _spawn(self) -> None:  # with _cond held
        worker = threading.Thread(
            target=self._work, name=f"voxsync-pool-{next(self._names)}", daemon=True
        )
        self._workers.append(worker)
        self._starting += 1
        worker.start()

    def _work(self) -> None:
        # A worker that finished a lane takes the next queued lane at once; so
        # does an idle worker when no lane is running or another worker is
        # idle too. The last idle worker, while others run lanes, watches: it
        # takes queued work only once that work waited SPAWN_AFTER seconds
        # while every running lane has been running that long - the running
        # workers look blocked (a slow handler, a stuck write), not merely
        # busy - and then starts a new watcher. So the pool grows only when
        # work would otherwise wait for blocked lanes, and stays small when
        # the work is plentiful but quick (a new thread would only contend
        # for the interpreter lock).
        me = threading.current_thread()
        idle_name = me.name
        cond = self._cond
        running = self._running
        idle_since = time.monotonic()
        free = False  # True right after running a lane
        overslept = 0.0  # how late this worker's last timed wait returned
        starting = True
        while True:
            due: List[Tuple[float, Lane]] = []
            lane: Optional[Lane] = None
            with cond:
                if starting:
                    starting = False
                    self._starting -= 1
                running.pop(me, None)
                while True:
                    now = time.monotonic()
                    timers = self._timers
                    while timers and timers[0][0] <= now:
                        when, _, timed = heapq.heappop(timers)
                        due.append((when, timed))
                    if due:
                        break
                    runq = self._runq
                    wait = RETIRE_AFTER - (now - idle_since)
                    if runq:
                        take = free or self._idle or not running
                        age = now - runq[0][0]
                        if not take and age >= SPAWN_AFTER:
                            # a watcher that itself woke late is starved of the CPU or
                            # the interpreter lock like the lanes it watches: they are
                            # slow, not blocked, and a new thread would add contention
                            take = (overslept < SPAWN_AFTER / 2 or age >= STARVED_AFTER) and all(
                                now - t >= SPAWN_AFTER for t in running.values()
                            )
                        if take:
                            lane = runq.popleft()[1]
                            if runq and self._idle:
                                cond.notify()  # more queued: wake another idle worker
                            elif (
                                not free
                                and not self._idle
                                and not self._starting
                                and (runq or timers or running)
                            ):
                                self._spawn()  # the watcher runs a lane now: a new one
                            running[me] = now
                            break
                        wait = SPAWN_AFTER / 2  # poll while the queue waits
                    elif not self._open or (wait <= 0 and (self._idle or not (timers or running))):
                        self._workers.remove(me)
                        cond.notify_all()  # join_if_unused() waits for this
                        return
                    free = False
                    if me.name != idle_name:
                        me.name = idle_name
                    polling = bool(running)
                    if polling:  # watch: are the running lanes blocked?
                        wait = min(wait, SPAWN_AFTER)
                    if timers:
                        wait = min(wait, timers[0][0] - now)
                    self._idle += 1
                    self._polling += polling
                    wait = max(wait, 0.0005)
                    try:
                        woken = cond.wait(wait)
                    finally:
                        self._idle -= 1
                        self._polling -= polling
                    overslept = 0.0 if woken else time.monotonic() - (now + wait)
            for when, timed in due:
                timed._timer(when, now)
            if lane is not None:
                lane._run()
                idle_since = time.monotonic()
                free = True

    def _after_fork(self) -> None:
        # a child process has none of the parent's threads: start empty
        self._init()


#: The process-wide pool every connection uses.
pool = Pool()

if hasattr(os, "register_at_fork"):  # pragma: no branch
    os.register_at_fork(after_in_child=pool._after_fork)
