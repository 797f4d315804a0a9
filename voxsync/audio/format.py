"""Audio format descriptions (re-exported from :mod:`voxsync.format`).

:class:`AudioFormat` lives in the bottom layer :mod:`voxsync.format`, so
events and connections can use it without importing the audio layer; this
module keeps ``from voxsync.audio.format import AudioFormat`` working.
"""

from voxsync.format import ENCODINGS, AudioFormat

__all__ = ["ENCODINGS", "AudioFormat"]
