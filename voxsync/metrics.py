"""Per-connection counters: audio sent, queue depth, events, handler time, latency."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any, Callable, Deque, Dict, Optional

from voxsync.format import AudioFormat

__all__ = ["Metrics"]

_LATENCY_SAMPLES = 4096


class Metrics:
    """Live counters of one connection; read them any time from any thread.

    Attributes are updated by voxsync's threads; :meth:`snapshot` returns a
    consistent copy as a plain dict (JSON-serialisable), which is what you
    should log or export.

    Attributes
    ----------
    chunks_queued, bytes_queued : int
        Audio accepted by ``send()``.
    chunks_sent, bytes_sent : int
        Audio written to the service by the writer thread.
    chunks_dropped, bytes_dropped : int
        Audio discarded by the ``"drop_oldest"`` overflow policy (each drop is
        also reported as a ``warning`` event).
    chunks_discarded : int
        Audio still queued when ``close()`` was called (``finish()`` sends it instead).
    events_discarded : int
        Events received but not yet dispatched when ``close()`` was called
        (``close()`` does not wait for your handlers to catch up).
    queue_high_water : int
        Largest send-queue depth seen, in chunks.
    events : collections.Counter
        Events dispatched, per event name.
    handler_seconds : float
        Total time spent inside your handlers.
    reconnects : int
        Successful reconnections of the transport.
    """

    def __init__(self, audio_format: Optional[AudioFormat], queue_depth: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._audio_format = audio_format
        self._queue_depth = queue_depth
        self.created_at = time.time()
        self.connected_at: Optional[float] = None
        self.chunks_queued = 0
        self.bytes_queued = 0
        self.chunks_sent = 0
        self.bytes_sent = 0
        self.chunks_dropped = 0
        self.bytes_dropped = 0
        self.chunks_discarded = 0
        self.events_discarded = 0
        self.queue_high_water = 0
        self.events: Counter[str] = Counter()
        self.handler_seconds = 0.0
        self.reconnects = 0
        self._latencies: Deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self.latency_max = 0.0

    # -- updates (voxsync threads) ---------------------------------------
    def _queued(self, nbytes: int, depth: int) -> None:
        with self._lock:
            self.chunks_queued += 1
            self.bytes_queued += nbytes
            if depth > self.queue_high_water:
                self.queue_high_water = depth

    def _sent(self, nbytes: int) -> None:
        with self._lock:
            self.chunks_sent += 1
            self.bytes_sent += nbytes

    def _dropped(self, nbytes: int) -> int:
        with self._lock:
            self.chunks_dropped += 1
            self.bytes_dropped += nbytes
            return self.chunks_dropped

    def _discarded(self, chunks: int) -> None:
        with self._lock:
            self.chunks_discarded += chunks

    def _events_discarded(self, count: int) -> None:
        with self._lock:
            self.events_discarded += count

    def _dispatched(self, name: str, latency: float, handler_seconds: float) -> None:
        with self._lock:
            self.events[name] += 1
            self.handler_seconds += handler_seconds
            self._latencies.append(latency)
            if latency > self.latency_max:
                self.latency_max = latency

    def count_reconnect(self) -> None:
        """Record one successful reconnection (called by providers)."""
        with self._lock:
            self.reconnects += 1

    # -- reading -----------------------------------------------------------
    @property
    def seconds_sent(self) -> float:
        """Seconds of audio written to the service."""
        return self._seconds_sent()

    @property
    def queue_depth(self) -> int:
        """Chunks waiting in the send queue right now."""
        return self._queue_depth()

    def latency_percentile(self, percent: float) -> Optional[float]:
        """Event latency (received -> handler start) percentile in seconds.

        Computed over the last 4096 events; None before the first event.
        """
        with self._lock:
            samples = sorted(self._latencies)
        if not samples:
            return None
        rank = min(len(samples) - 1, max(0, round(percent / 100.0 * (len(samples) - 1))))
        return samples[rank]

    def snapshot(self) -> Dict[str, Any]:
        """A consistent copy of every counter as a plain dict."""
        p50 = self.latency_percentile(50)
        p99 = self.latency_percentile(99)
        with self._lock:
            return {
                "chunks_queued": self.chunks_queued,
                "bytes_queued": self.bytes_queued,
                "chunks_sent": self.chunks_sent,
                "bytes_sent": self.bytes_sent,
                "seconds_sent": self._seconds_sent(),
                "chunks_dropped": self.chunks_dropped,
                "bytes_dropped": self.bytes_dropped,
                "chunks_discarded": self.chunks_discarded,
                "events_discarded": self.events_discarded,
                "queue_depth": self._queue_depth(),
                "queue_high_water": self.queue_high_water,
                "events": dict(self.events),
                "handler_seconds": self.handler_seconds,
                "latency_p50": p50,
                "latency_p99": p99,
                "latency_max": self.latency_max if self._latencies else None,
                "reconnects": self.reconnects,
                "connected_at": self.connected_at,
            }

    def __repr__(self) -> str:
        return (
            f"<Metrics sent={self.seconds_sent:.2f}s chunks={self.chunks_sent} "
            f"dropped={self.chunks_dropped} events={sum(self.events.values())}>"
        )

    def _seconds_sent(self) -> float:
        fmt = self._audio_format
        return 0.0 if fmt is None else fmt.duration(self.bytes_sent)
