"""Audio formats, conversion, files and microphones.

* :class:`AudioFormat` describes raw audio (rate, channels, encoding);
* :class:`Converter` / :func:`convert` change rate, channels and encoding
  (``pcm_s16le``, ``pcm_f32le``, G.711 ``mulaw`` and ``alaw``);
* :func:`read_audio`, :class:`AudioFile`, :func:`iter_chunks` and
  :func:`stream_file` read audio files and feed them to connections (any
  :class:`AudioSink`);
* :class:`MicrophoneStream` and :func:`list_devices` capture live audio
  (PortAudio is loaded on first use).
"""

from typing import TYPE_CHECKING

from voxsync._lazy import lazy_exports

# Names are imported on first use: only conversion and files need numpy,
# only microphones and speakers PortAudio.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "voxsync.audio.convert": ("Converter", "convert", "from_float32", "level", "to_float32"),
        "voxsync.audio.files": (
            "AudioFile",
            "UnsupportedAudioError",
            "iter_chunks",
            "read_audio",
            "stream_file",
        ),
        "voxsync.audio.microphone": ("InputDevice", "MicrophoneStream", "list_devices"),
        "voxsync.audio.pacing": ("Pacer",),
        "voxsync.audio.sink": ("AudioSink",),
        "voxsync.audio.speaker": ("SpeakerStream",),
        "voxsync.format": ("ENCODINGS", "AudioFormat"),
    },
    # imported with the package before its names became lazy
    submodules=("format", "g711"),
)

if TYPE_CHECKING:
    from voxsync.audio.convert import Converter, convert, from_float32, level, to_float32
    from voxsync.audio.files import (
        AudioFile,
        UnsupportedAudioError,
        iter_chunks,
        read_audio,
        stream_file,
    )
    from voxsync.audio.microphone import InputDevice, MicrophoneStream, list_devices
    from voxsync.audio.pacing import Pacer
    from voxsync.audio.sink import AudioSink
    from voxsync.audio.speaker import SpeakerStream
    from voxsync.format import ENCODINGS, AudioFormat

__all__ = [
    "ENCODINGS",
    "AudioFile",
    "AudioFormat",
    "AudioSink",
    "Converter",
    "InputDevice",
    "MicrophoneStream",
    "Pacer",
    "SpeakerStream",
    "UnsupportedAudioError",
    "convert",
    "from_float32",
    "iter_chunks",
    "level",
    "list_devices",
    "read_audio",
    "stream_file",
    "to_float32",
]
