"""Speak text with Palabra's realtime TTS (or the local emulator), three ways.

Usage::

    voxsync emulate palabra &            # prints its base URL
    export PALABRA_API_URL=<that URL> PALABRA_CLIENT_ID=emulator-client-id \
           PALABRA_CLIENT_SECRET=emulator-client-secret
    python samples/palabra_tts.py out.wav
"""

from __future__ import annotations

import sys
from typing import Iterator, List

import numpy as np
import soundfile as sf

from voxsync.palabra import Palabra


def fake_llm() -> Iterator[str]:
    """Tokens as a language model would stream them."""
    reply = (
        "Streaming speech works sentence by sentence. Each one is spoken as soon as "
        "it is complete, so the listener hears the start while the rest is written."
    )
    for i in range(0, len(reply), 4):
        yield reply[i : i + 4]


def main() -> int:
    output = sys.argv[1] if len(sys.argv) > 1 else "palabra_tts.wav"
    palabra = Palabra()
    audio: List[bytes] = []

    # 1. the seed's streaming example: send pieces, read chunks until the last one
    with palabra.tts(language="en", voice_id="default_low") as tts:
        tts.send_text("The sun was setting over the mountains,")
        tts.send_text(" casting long golden shadows.", eos=True)
        for chunk in tts:
            audio.append(chunk.audio)
            if chunk.last_chunk:
                break

    # 2. one sentence in, its audio out
    with palabra.tts(language="en", voice_id="default_low") as tts:
        audio.append(tts.synthesize("Curious minds think alike."))

    # 3. an LLM's token stream straight in
    with palabra.tts(language="en") as tts:
        tts.on("audio", lambda chunk: audio.append(chunk.pcm))
        sent = tts.speak_stream(fake_llm())
    print(f"speak_stream sent {sent} messages")

    samples = np.frombuffer(b"".join(audio), dtype="<i2")
    sf.write(output, samples, 24000, subtype="PCM_16")
    print(f"{len(samples) / 24000:.1f} s of speech written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
