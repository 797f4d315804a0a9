"""Several targets, per-target voices, with callbacks instead of iteration.

python samples/palabra_multi_language.py samples/audio/meeting.wav
"""

from __future__ import annotations

import sys
from collections import Counter

from voxsync.palabra import Palabra, build_task


def main(path: str) -> int:
    task = build_task(
        "en",
        {"es": {"speech_generation": {"voice_id": "default_high"}}, "fr": {}, "de": {}},
        translate_partials=True,
    )
    seconds: Counter[str] = Counter()
    session = Palabra().translation(task=task)

    @session.on("translation")
    def show(ev):  # type: ignore[no-untyped-def]
        if ev.is_final:
            print(ev)

    @session.on("audio")
    def count(ev):  # type: ignore[no-untyped-def]
        seconds[ev.language] += len(ev.pcm) / 48000

    with session:
        session.send_file(path)
        session.end(eos_timeout=4)
    for language, value in sorted(seconds.items()):
        print(f"{language}: {value:.1f} s of speech")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
