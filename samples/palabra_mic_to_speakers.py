"""Live microphone translation to the speakers (the mic is muted while speech plays).

The same as ``voxsync translate --mic --from en --to es --play``. Ctrl+C ends::

    python samples/palabra_mic_to_speakers.py en es
"""

from __future__ import annotations

import sys

from voxsync.audio import MicrophoneStream, SpeakerStream
from voxsync.palabra import Palabra


def main(source: str, target: str) -> int:
    palabra = Palabra()
    session = palabra.translation(source=source, targets=[target])
    session.on("translation", lambda ev: print(ev) if ev.is_final else None)
    with session, SpeakerStream(samplerate=24000) as speaker:
        speaker.play_from(session)
        mic = MicrophoneStream(samplerate=session.input_format.sample_rate, blocksize=2400)
        speaker.mute_while_playing(mic)  # do not translate our own output
        with mic:
            mic.stream_to(session)
            try:
                session.wait()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    args = sys.argv[1:] or ["en", "es"]
    sys.exit(main(*args[:2]))
