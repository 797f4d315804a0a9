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
