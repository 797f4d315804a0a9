"""Translate an audio file with Palabra (or the local emulator) and save the speech.

Usage::

    voxsync emulate palabra &            # prints its base URL
    export PALABRA_API_URL=<that URL> PALABRA_CLIENT_ID=emulator-client-id \
           PALABRA_CLIENT_SECRET=emulator-client-secret
    python samples/palabra_translate_file.py samples/audio/meeting.wav es out_es.wav
"""

from __future__ import annotations

import sys

from voxsync.palabra import Palabra


def main() -> int:
    path, target, output = (sys.argv[1:] + ["", "es", "translated.wav"][len(sys.argv) - 1 :])[:3]
    if not path:
        print(__doc__)
        return 2
    finals = Palabra().translate_file(
        path, source="en", targets=target, output=output, on_transcript=print
    )
    print(f"{len(finals)} final lines; speech written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
