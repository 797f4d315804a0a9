"""Shared fixtures: every test must leave no voxsync client thread behind."""

from __future__ import annotations

import threading
import time
from typing import Iterator, List

import pytest
from pulse import virtual_mic  # noqa: F401  (the virtual microphone, for every test module)

#: Client threads are named ``voxsync-<provider>-<n>-<role>``; emulators
#: (servers) name theirs ``voxsync-emulator-...`` and are checked by their own tests.
CLIENT_PREFIX = "voxsync-"
EMULATOR_PREFIX = "voxsync-emulator-"


def voxsync_threads() -> List[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(CLIENT_PREFIX) and not t.name.startswith(EMULATOR_PREFIX)
    ]


def wait_no_voxsync_threads(timeout: float = 3.0) -> List[threading.Thread]:
    deadline = time.monotonic() + timeout
    while True:
        left = voxsync_threads()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail the test if a voxsync client thread is still alive after it."""
    before = set(voxsync_threads())
    yield
    left = [t for t in wait_no_voxsync_threads() if t not in before]
    assert not left, f"voxsync threads left running: {[t.name for t in left]}"
