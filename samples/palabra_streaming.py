"""Palabra's streaming example, synchronous: a feeder thread, events iterated.

Point it at the local emulator with ``voxsync emulate palabra`` and the three
``PALABRA_*`` variables it documents, or at the service with your credentials::

    python samples/palabra_streaming.py samples/audio/meeting.wav
"""

from __future__ import annotations

import sys
import threading

from voxsync.audio import iter_chunks
from voxsync.palabra import Audio, Palabra, Transcript


def main(path: str) -> int:
    palabra = Palabra()  # reads the env vars
    received = 0
    with palabra.translation(source="en", targets=["es"]) as session:

        def feed() -> None:
            # chunks: PCM s16le, 24 kHz, mono, ~320 ms each, real-time paced
            for chunk in iter_chunks(path, session.input_format, chunk_ms=320, realtime=True):
                session.send_audio(chunk)
            session.end(eos_timeout=4)  # let the tail finish, then the server closes

        feeder = threading.Thread(target=feed)
        feeder.start()
        for event in session:
            if isinstance(event, Transcript):
                print(event)  # "~ [lang] partial" / "[lang] final"
            elif isinstance(event, Audio):
                received += len(event.pcm)  # s16le, 24 kHz, mono: play it or save it
        feeder.join()
    print(f"{received / 48000:.1f} s of translated speech received")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
