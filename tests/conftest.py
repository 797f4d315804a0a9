"""Shared fixtures: every test must leave no voxsync client thread behind."""

from __future__ import annotations

import threading
import time
from typing import AbstractSet, Iterator, List, Set

import pytest
from pulse import virtual_mic  # noqa: F401  (the virtual microphone, for every test module)

#: Client threads are named ``voxsync-<provider>-<n>-<role>``; emulators
#: (servers) name theirs ``voxsync-emulator-...`` and are checked by their own tests.
CLIENT_PREFIX = "voxsync-"
EMULATOR_PREFIX = "voxsync-emulator-"


#: Threads a failed test already reported as left behind. They are not counted
#: again, so one leak fails the test that made it and not every test after it.
_REPORTED: Set[threading.Thread] = set()


def voxsync_threads() -> List[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(CLIENT_PREFIX)
        and not t.name.startswith(EMULATOR_PREFIX)
        and t not in _REPORTED
    ]


def wait_no_voxsync_threads(
    timeout: float = 3.0, ignore: AbstractSet[threading.Thread] = frozenset()
) -> List[threading.Thread]:
    """Wait until no client thread but those in ``ignore`` runs; return those left."""
    deadline = time.monotonic() + timeout
    while True:
        left = [t for t in voxsync_threads() if t not in ignore]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail the test if a voxsync client thread is still alive after it."""
    before = set(voxsync_threads())
    yield
    left = wait_no_voxsync_threads(ignore=before)
    _REPORTED.update(left)
    assert not left, f"voxsync threads left running: {[t.name for t in left]}"
