"""Transcribe (and translate) an audio file with Palabra's realtime STT.

Usage::

    voxsync emulate palabra &            # prints its base URL
    export PALABRA_API_URL=<that URL> PALABRA_CLIENT_ID=emulator-client-id \
           PALABRA_CLIENT_SECRET=emulator-client-secret
    python samples/palabra_stt.py samples/audio/meeting.wav es
"""

from __future__ import annotations

import sys

from voxsync.palabra import Palabra, Transcript


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    path, targets = sys.argv[1], sys.argv[2:]
    with Palabra().stt(language="en", translate=targets) as stt:

        @stt.on("transcript")
        def show(ev: Transcript) -> None:
            if ev.is_final:
                print(ev)

        @stt.on("translation")
        def show_translation(ev: Transcript) -> None:
            print("   ", ev)

        stt.send_file(path)  # paced at real time, converted to stt.input_format
    # leaving the block streamed a silence tail and waited for the last final
    return 0


if __name__ == "__main__":
    sys.exit(main())
