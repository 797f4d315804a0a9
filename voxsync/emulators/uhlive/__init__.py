"""A local Uh!ive server, for ``voxsync emulate uhlive`` and for your tests.

One base URL serves the OIDC token endpoint, the Conversation API
(``/socket/websocket``, Phoenix channels v2) and the Recognition API
(``/bots``), so client code only swaps hosts::

    import os

    import voxsync
    from voxsync.emulators.uhlive import UhliveEmulator

    with UhliveEmulator(engine="scripted", transcripts=["hello world"]) as emu:
        os.environ.update(emu.env())       # UHLIVE_AUTH_SERVER, UHLIVE_API_URL, credentials
        with voxsync.connect("uhlive") as conn:
            print(conn.state)

From a shell, ``voxsync emulate uhlive`` prints the same settings as
``export`` lines to paste.
"""

from voxsync.emulators.uhlive.server import (
    DEFAULT_AUDIO_GAP_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    UhliveEmulator,
    UhliveFaults,
    UhliveState,
    add_cli_arguments,
    emulator_from_args,
    run_cli,
)

__all__ = [
    "DEFAULT_AUDIO_GAP_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "UhliveEmulator",
    "UhliveFaults",
    "UhliveState",
    "add_cli_arguments",
    "emulator_from_args",
    "run_cli",
]
