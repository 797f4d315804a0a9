"""Palabra: speech-to-speech translation over WebSocket, with REST sessions.

The same API as Palabra's own (asyncio) SDK, synchronous::

    from voxsync.palabra import Palabra, Transcript, Audio

    palabra = Palabra()                      # PALABRA_CLIENT_ID / _SECRET / _API_URL
    with palabra.translation(source="en", targets=["es"]) as session:
        session.send_file("speech_en.wav")   # or send_audio(chunk), paced by you
        session.end(eos_timeout=4)
        for event in session:
            print(event)

Handlers work too: ``@session.on("translation")``, ``@session.on("audio")``.
"""

from typing import TYPE_CHECKING, Any, List

from voxsync._lazy import lazy_exports

# Names are imported on first use: 'voxsync --help' and the codec alone do
# not load the runtime, the REST client or the audio helpers.
_lazy_getattr, _lazy_dir = lazy_exports(
    __name__,
    {
        "voxsync.palabra.client": ("DEFAULT_API_URL", "Palabra", "Session"),
        "voxsync.palabra.codec": ("build_task", "parse_message"),
        "voxsync.palabra.errors": (
            "AuthError",
            "NotReadyError",
            "SessionDroppedError",
            "SessionError",
            "TaskError",
        ),
        "voxsync.palabra.events": (
            "OUTPUT_FORMAT",
            "Audio",
            "Raw",
            "ServerError",
            "ServerWarning",
            "StreamEnd",
            "TaskInfo",
            "Transcript",
        ),
        "voxsync.palabra.realtime": ("TtsChunk",),
        "voxsync.palabra.stt": ("SpeechToText",),
        "voxsync.palabra.translation": ("TranslationSession", "create_connection"),
        "voxsync.palabra.tts": ("TextToSpeech",),
    },
)

if TYPE_CHECKING:
    from voxsync.palabra.client import DEFAULT_API_URL, Palabra, Session
    from voxsync.palabra.codec import build_task, parse_message
    from voxsync.palabra.errors import (
        AuthError,
        NotReadyError,
        SessionDroppedError,
        SessionError,
        TaskError,
    )
    from voxsync.palabra.events import (
        OUTPUT_FORMAT,
        Audio,
        Raw,
        ServerError,
        ServerWarning,
        StreamEnd,
        TaskInfo,
        Transcript,
    )
    from voxsync.palabra.realtime import TtsChunk
    from voxsync.palabra.stt import SpeechToText
    from voxsync.palabra.translation import TranslationSession, create_connection
    from voxsync.palabra.tts import TextToSpeech

    raise_on_error = TranslationSession.raise_on_error


def __getattr__(name: str) -> Any:
    if name == "raise_on_error":  # a static method, exported as a function
        from voxsync.palabra.translation import TranslationSession

        value = globals()[name] = TranslationSession.raise_on_error
        return value
    return _lazy_getattr(name)


def __dir__() -> List[str]:
    return sorted({*_lazy_dir(), "raise_on_error"})


__all__ = [
    "DEFAULT_API_URL",
    "OUTPUT_FORMAT",
    "Audio",
    "AuthError",
    "NotReadyError",
    "Palabra",
    "Raw",
    "ServerError",
    "ServerWarning",
    "Session",
    "SessionDroppedError",
    "SessionError",
    "SpeechToText",
    "StreamEnd",
    "TaskError",
    "TaskInfo",
    "TextToSpeech",
    "Transcript",
    "TranslationSession",
    "TtsChunk",
    "build_task",
    "create_connection",
    "parse_message",
    "raise_on_error",
]
