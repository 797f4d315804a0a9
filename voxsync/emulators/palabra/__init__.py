"""A local Palabra server, for ``voxsync emulate palabra`` and for your tests.

One base URL serves the REST session API and the translation socket, so
client code only changes ``PALABRA_API_URL``::

    from voxsync.emulators.palabra import PalabraEmulator

    with PalabraEmulator() as emu:
        os.environ.update(emu.env())   # PALABRA_CLIENT_ID / _SECRET / _API_URL
        ...

Recognition uses the local recognizer; translation is a marked
pseudo-translation (``"[es] hello world"``) unless you plug in a translator
or scripted texts; speech is synthesized with eSpeak NG.
"""

from voxsync.emulators.palabra.cli import add_cli_arguments, emulator_from_args, run_cli
from voxsync.emulators.palabra.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    PalabraEmulator,
    PalabraFaults,
    SocketHandler,
    Translator,
    pseudo_translate,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "PalabraEmulator",
    "PalabraFaults",
    "SocketHandler",
    "Translator",
    "add_cli_arguments",
    "emulator_from_args",
    "pseudo_translate",
    "run_cli",
]
