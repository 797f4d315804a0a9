"""G.711 companding (ITU-T G.711 mu-law and A-law) with numpy.

Both laws map 16-bit linear PCM to one byte per sample. Encoding uses a
65 536-entry table indexed by the 16-bit sample and decoding a 256-entry
table, so both are one vectorised ``take`` per call. The tables are built
once, from the segment rules of the recommendation:

* mu-law: take the magnitude of the 14-bit sample, add a bias of 33 and
  clip to 8191, find the segment (position of the highest set bit above
  bit 5), keep 4 mantissa bits, then invert the whole byte; the sign bit
  is set for positive values after inversion. Silence is ``0xFF``. The
  results equal those of the former standard-library ``audioop`` module.
* A-law: work on the 13-bit magnitude (sample >> 3), segment 0 and 1 share a
  step, keep 4 mantissa bits, then XOR with ``0xD5`` (positive) or ``0x55``
  (negative). Silence is ``0xD5``.

Examples
--------
>>> import numpy as np
>>> ulaw_encode(np.array([0, 32767, -32768], dtype=np.int16)).tolist()
[255, 128, 0]
>>> alaw_encode(np.array([0], dtype=np.int16)).tolist()
[213]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

_ULAW_BIAS = 0x84


def _segment(value: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Index of the highest set bit of ``value`` (0 for 0 and 1)."""
    seg = np.zeros(value.shape, dtype=np.int64)
    for bit in range(1, 16):
        seg[value >= (1 << bit)] = bit
    return seg


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int64)
    negative = pcm < 0
    # 14-bit sample (arithmetic shift), then its magnitude.
    magnitude = np.abs(pcm >> 2) + (_ULAW_BIAS >> 2)
    magnitude = np.minimum(magnitude, 0x1FFF)
    exponent = _segment(magnitude >> 5)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    code = (exponent << 4) | mantissa
    code = np.where(negative, code | 0x80, code)
    out = (~code) & 0xFF
    # Reorder so the table is indexed by the sample's uint16 bit pattern.
    return np.roll(out.astype(np.uint8), -32768)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    code = (~np.arange(256, dtype=np.int64)) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int64) >> 3
    negative = pcm < 0
    magnitude = np.where(negative, -pcm - 1, pcm)
    seg = np.clip(_segment(magnitude >> 4), 0, 7)
    # Segments 0 and 1 both use a step of 2 (13-bit units); above, the step doubles.
    shift = np.where(seg < 2, 1, seg)
    mantissa = (magnitude >> shift) & 0x0F
    code = (seg << 4) | mantissa
    code = np.where(magnitude > 0xFFF, 0x7F, code)
    out = np.where(negative, code ^ 0x55, code ^ 0xD5)
    return np.roll(out.astype(np.uint8), -32768)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int64) ^ 0x55
    seg = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        seg == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(seg - 1, 0),
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_ENC = _build_alaw_encode()
_ALAW_DEC = _build_alaw_decode()


def _as_index(pcm: Any) -> npt.NDArray[np.uint16]:
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise TypeError(f"G.711 encoding needs int16 samples, got dtype {arr.dtype}")
    return arr.view(np.uint16)


def _as_codes(codes: Any) -> npt.NDArray[np.uint8]:
    if isinstance(codes, (bytes, bytearray, memoryview)):
        return np.frombuffer(codes, dtype=np.uint8)
    arr = np.asarray(codes)
    if arr.dtype != np.uint8:
        raise TypeError(f"G.711 decoding needs uint8 codes or bytes, got dtype {arr.dtype}")
    return arr


def ulaw_encode(pcm: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Encode 16-bit linear samples to mu-law bytes.

    Parameters
    ----------
    pcm : array of int16
        Samples of any shape.

    Returns
    -------
    ndarray of uint8
        One code per sample, same shape.

    Raises
    ------
    TypeError
        If ``pcm`` is not int16.
    """
    return _ULAW_ENC[_as_index(pcm)]


def ulaw_decode(codes: npt.ArrayLike | bytes) -> npt.NDArray[np.int16]:
    """Decode mu-law codes (uint8 array or bytes) to 16-bit linear samples."""
    return _ULAW_DEC[_as_codes(codes)]


def alaw_encode(pcm: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Encode 16-bit linear samples to A-law bytes.

    Parameters
    ----------
    pcm : array of int16
        Samples of any shape.

    Returns
    -------
    ndarray of uint8
        One code per sample, same shape.

    Raises
    ------
    TypeError
        If ``pcm`` is not int16.
    """
    return _ALAW_ENC[_as_index(pcm)]


def alaw_decode(codes: npt.ArrayLike | bytes) -> npt.NDArray[np.int16]:
    """Decode A-law codes (uint8 array or bytes) to 16-bit linear samples."""
    return _ALAW_DEC[_as_codes(codes)]
