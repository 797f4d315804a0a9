"""Speech synthesis for the Palabra emulator: eSpeak NG through ctypes.

Why eSpeak NG: it speaks about a hundred languages (every Palabra target
the emulator is likely to be asked for: es, fr, de, it, pt, nl, ru, ...),
it is small and fast enough to synthesize in real time many times over on
one core, and the ``espeakng-loader`` wheel ships the library *and* its
voice data, so ``pip install voxsync[emulators]`` is enough: no system
package. The binding below is ours and minimal: initialise in synchronous
mode, collect samples in the synth callback, pick a voice per language.

eSpeak NG keeps global state, so one process-wide lock serialises every
synthesis. Output (22050 Hz) is converted to what the caller asks for with
:mod:`voxsync.audio`.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, List, Optional

from voxsync.audio.convert import convert
from voxsync.audio.format import AudioFormat
from voxsync.errors import ConfigurationError

__all__ = ["SpeechSynthesizer", "SynthesisError", "synthesizer_available"]

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_lock = threading.Lock()
_lib: Any = None
_rate = 0
_samples: List[bytes] = []

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SynthesisError(ConfigurationError):
    """The speech synthesizer is missing or cannot speak a language."""


def _collect_samples(wav: Any, count: int, events: Any) -> int:
    if count > 0 and wav:
        _samples.append(ctypes.string_at(wav, count * 2))
    return 0


_collect = _CALLBACK(_collect_samples)


def _load() -> Any:
    global _lib, _rate
    if _lib is not None:
        return _lib
    try:
        import espeakng_loader
    except ImportError as exc:
        raise SynthesisError(
            "the Palabra emulator speaks with eSpeak NG: pip install 'voxsync[emulators]' "
            "(it brings the espeakng-loader package)"
        ) from exc
    lib = ctypes.CDLL(str(espeakng_loader.get_library_path()))
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    data = str(espeakng_loader.get_data_path()).encode()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
    if rate <= 0:
        raise SynthesisError("eSpeak NG failed to initialise")
    lib.espeak_SetSynthCallback(_collect)
    _rate = rate
    _lib = lib
    return lib


def synthesizer_available() -> bool:
    """True if eSpeak NG can be loaded."""
    try:
        with _lock:
            _load()
    except (SynthesisError, OSError):
        return False
    return True


#: eSpeak NG voices for bare language codes where its default is not the
#: likeliest accent: its "en" voice is British, the recognizer's model American.
_VOICES = {"en": "en-us"}


class SpeechSynthesizer:
    """Text to PCM speech in a given language (thread-safe; one synthesis at a time).

    Parameters
    ----------
    output : AudioFormat
        What :meth:`synthesize` returns (default PCM s16le, 24 kHz, mono).
    """

    def __init__(self, output: Optional[AudioFormat] = None) -> None:
        self.output = output or AudioFormat(24000, 1, "pcm_s16le")

    def synthesize(self, text: str, language: str) -> bytes:
        """Speak ``text`` in ``language`` (a code such as ``"es"`` or ``"en-us"``).

        Raises
        ------
        SynthesisError
            eSpeak NG is not installed or has no voice for ``language``.
        """
        with _lock:
            lib = _load()
            voice = _VOICES.get(language.lower(), language.lower())
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                base = voice.split("-")[0]
                if lib.espeak_SetVoiceByName(base.encode()) != 0:
                    raise SynthesisError(f"eSpeak NG has no voice for language {language!r}")
            _samples.clear()
            raw = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(raw)
            err = lib.espeak_Synth(buf, len(raw), 0, 0, 0, _CHARS_UTF8, None, None)
            pcm = b"".join(_samples)
            _samples.clear()
            rate = _rate
        if err != 0:
            raise SynthesisError(f"eSpeak NG failed to speak ({err})")
        return convert(pcm, AudioFormat(rate, 1, "pcm_s16le"), self.output)
