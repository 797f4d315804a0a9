"""Local servers that speak each provider's protocol.

Every emulator runs in-process on loopback, backed by a recognition engine
(:mod:`voxsync.emulators.engine`): real offline recognition with
pocketsphinx, or scripted transcripts for deterministic tests. Each one is a
context manager::

    with SomeEmulator() as emu:      # starts on a free port
        ...                          # point the client at emu.base_url

From the command line: ``voxsync emulate NAME --help``.

Submodules are imported on demand; importing this package is cheap.
"""

from __future__ import annotations

from typing import List

__all__: List[str] = []
