"""Pacing: release audio no faster than it would play.

Services that expect a live stream (and their rate limits) want audio at
real-time speed. :class:`Pacer` keeps one schedule from the first chunk on:
chunk *k* is due when the audio sent before it has had time to play, i.e. at
``start + (seconds sent so far) / speed``. Sleeping towards that absolute
deadline means late wake-ups do not add up (no drift); if the sender fell
behind, the next chunks go out at once until it has caught up.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from voxsync.errors import ConfigurationError

__all__ = ["Pacer"]


class Pacer:
    """Schedule chunks of audio to track the wall clock.

    Parameters
    ----------
    speed : float, optional
        1.0 (default) is real time, 2.0 twice as fast; must be positive.
    clock : callable, optional
        Monotonic clock in seconds (default :func:`time.monotonic`).

    Examples
    --------
    ::

        pacer = Pacer()
        for chunk in chunks:
            pacer.wait()                    # first call returns at once
            conn.send(chunk)
            pacer.advance(fmt.duration(len(chunk)))

    or, in one call per chunk, ``pacer.pace(seconds)``: wait for the chunk's
    slot, then count it.

    Notes
    -----
    :meth:`wait` sleeps in the calling thread. :meth:`interrupt` (from any
    thread) wakes it and makes later waits return at once.
    """

    def __init__(self, speed: float = 1.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ConfigurationError(f"speed must be a positive number, got {speed!r}")
        self.speed = float(speed)
        self._clock = clock
        self._start: Optional[float] = None
        self._sent = 0.0
        self._interrupted = threading.Event()

    @property
    def sent(self) -> float:
        """Seconds of audio counted with :meth:`advance` so far."""
        return self._sent

    def due(self) -> float:
        """Seconds until the next chunk is due (0 when it is due now)."""
        if self._start is None:
            return 0.0
        return max(0.0, self._start + self._sent / self.speed - self._clock())

    def wait(self) -> bool:
        """Block until the next chunk is due.

        The first call starts the schedule and returns at once.

        Returns
        -------
        bool
            False if :meth:`interrupt` was called, True otherwise.
        """
        if self._start is None:
            self._start = self._clock()
        while not self._interrupted.is_set():
            delay = self.due()
            if delay <= 0:
                return True
            self._interrupted.wait(delay)
        return False

    def advance(self, seconds: float) -> None:
        """Count ``seconds`` of audio as sent."""
        if self._start is None:
            self._start = self._clock()
        self._sent += seconds

    def pace(self, seconds: float) -> bool:
        """:meth:`wait` for the next slot, then :meth:`advance` by ``seconds``.

        Returns
        -------
        bool
            False if interrupted.
        """
        ok = self.wait()
        self.advance(seconds)
        return ok

    def interrupt(self) -> None:
        """Wake a waiting :meth:`wait` and stop pacing (any thread)."""
        self._interrupted.set()

    def reset(self) -> None:
        """Start a new schedule at the next :meth:`wait` and clear an interrupt."""
        self._start = None
        self._sent = 0.0
        self._interrupted.clear()
