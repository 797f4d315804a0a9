"""State shared by every socket handler of one Uh!ive emulator: faults, timeouts, threads.

Its own module, so that the handlers (:mod:`.conversation`, :mod:`.bots`)
and the server (:mod:`.server`) import it without importing each other.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from voxsync.emulators.base import THREAD_PREFIX, ThreadRegistry

__all__ = ["UhliveFaults", "UhliveState"]


_PREFIX = f"{THREAD_PREFIX}-uhlive"


@dataclasses.dataclass
class UhliveFaults:
    """Faults the emulator injects; tests may change them while it runs.

    Counts are per socket and count every frame received from the client
    (text and binary). ``None`` disables a fault.

    Attributes
    ----------
    drop_after_frames : int or None
        Cut the TCP connection (no close frame) after this many frames.
    refuse_join : str or None
        Refuse every ``phx_join`` with this reason (error reply).
    phx_error_after_frames : int or None
        After this many frames, crash the socket's channel: push
        ``phx_error`` and drop the membership.
    event_delay : float
        Seconds to hold back every pushed event (replies are not delayed,
        but keep their order with the events).
    malformed_after_frames : int or None
        After this many frames, send one text frame that is not a Phoenix
        frame.
    token_failures : int
        Answer this many of the next token requests with HTTP 503 (counts down).
    """

    drop_after_frames: Optional[int] = None
    refuse_join: Optional[str] = None
    phx_error_after_frames: Optional[int] = None
    event_delay: float = 0.0
    malformed_after_frames: Optional[int] = None
    token_failures: int = 0


class UhliveState:
    """What every socket handler of one emulator shares (configuration, faults, threads).

    Handlers receive it as ``state``. Attributes may be changed while the
    emulator runs; handlers read them when they need them.

    Attributes
    ----------
    faults : UhliveFaults
    idle_timeout : float
        Seconds without any frame from the client (pings count) before the
        server closes the socket.
    audio_gap_timeout : float
        Seconds without audio after which a streaming session ends.
    stopping : threading.Event
        Set when the emulator stops; long waits in handlers should watch it.
    """

    def __init__(
        self,
        faults: UhliveFaults,
        idle_timeout: float,
        audio_gap_timeout: float,
        registry: Optional[ThreadRegistry] = None,
    ) -> None:
        self.faults = faults
        self.idle_timeout = idle_timeout
        self.audio_gap_timeout = audio_gap_timeout
        self.stopping = threading.Event()
        self.stamp_events = False
        #: Default Recognition API parameters (``None``: the handler's own).
        self.bot_params: Optional[Dict[str, Any]] = None
        #: The emulator's threads (shared with the emulator, which joins them).
        self.registry = registry if registry is not None else ThreadRegistry(_PREFIX)

    def start_thread(self, role: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
        """Start a daemon thread ``voxsync-emulator-uhlive-<role>-<n>``, joined by ``stop()``."""
        return self.registry.start(role, target, *args)

    def adopt_thread(self, thread: threading.Thread, role: Optional[str] = None) -> None:
        """Have ``stop()`` join ``thread`` (renamed ``voxsync-emulator-uhlive-<role>-<n>``)."""
        self.registry.adopt(thread, role)

    def threads(self) -> List[threading.Thread]:
        """Threads started or adopted so far (alive or not started yet)."""
        return self.registry.threads()

    @property
    def event_delay(self) -> float:
        """Seconds every pushed event is held back (``faults.event_delay``)."""
        return self.faults.event_delay

    @staticmethod
    def now_ms() -> int:
        """Current UNIX time in milliseconds."""
        return int(time.time() * 1000)
