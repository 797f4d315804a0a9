"""Write ``g711_reference.npz``: G.711 reference vectors from the standard library's ``audioop``.

``audioop`` implements ITU-T G.711 (its tables come from the Sun reference
code) and was part of Python up to 3.12. The file keeps its answers so the
bit-exact check in ``tests/test_audio_convert.py`` also runs on Python 3.13
and later, where ``audioop`` is gone. Regenerate (only ever needed if the
file is lost) with a Python 3.12 or older::

    python3.12 tests/data/make_g711_reference.py

Arrays (all little-endian):

``ulaw_encoded`` / ``alaw_encoded``
    uint8[65536]: the code for every int16 sample, -32768 .. 32767 in order.
``ulaw_decoded`` / ``alaw_decoded``
    int16[256]: the sample for every code, 0 .. 255 in order.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "g711_reference.npz"


def main() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            print("audioop is not available on this Python (removed in 3.13)", file=sys.stderr)
            return 1
    pcm = np.arange(-32768, 32768, dtype="<i2").tobytes()
    codes = bytes(range(256))
    np.savez_compressed(
        OUT,
        ulaw_encoded=np.frombuffer(audioop.lin2ulaw(pcm, 2), dtype=np.uint8),
        alaw_encoded=np.frombuffer(audioop.lin2alaw(pcm, 2), dtype=np.uint8),
        ulaw_decoded=np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2"),
        alaw_decoded=np.frombuffer(audioop.alaw2lin(codes, 2), dtype="<i2"),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) with Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
