"""Uh!ive (Allo-Media) real-time speech APIs.

* :class:`ConversationConnection`: a threaded speaker or observer in a
  Conversation (H2H) with the voxsync connection API; :func:`create_connection`
  is the ``uhlive`` provider's factory.
* :class:`Conversation` and its event classes: the sans-I/O codec, used as in
  the vendor's getting-started guide with any WebSocket library.
* :func:`build_authentication_request`, :func:`get_token`,
  :func:`build_conversation_url`: authentication and URLs; settings come from
  ``UHLIVE_API_CLIENT``, ``UHLIVE_API_SECRET``, ``UHLIVE_AUTH_SERVER``,
  ``UHLIVE_AUTH_REALM`` and ``UHLIVE_API_URL``.
* :class:`BotConnection`, :func:`create_bot` and the sans-I/O
  :class:`Recognizer`: the Recognition API (H2B, voicebots), from
  :mod:`voxsync.uhlive.bot` and :mod:`voxsync.uhlive.recognition` (imported
  on first use).
"""

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from voxsync._lazy import lazy_exports

# Names are imported on first use: the sans-I/O codec (Conversation and its
# events) does not load the threaded runtime, nor the runtime the codec.
_lazy_getattr, __dir__ = lazy_exports(
    __name__,
    {
        "voxsync.uhlive.auth": (
            "build_authentication_request",
            "build_bot_url",
            "build_conversation_url",
            "get_token",
        ),
        "voxsync.uhlive.bot": ("BotConnection", "create_bot"),
        "voxsync.uhlive.connection": (
            "AUDIO_FORMATS",
            "ConversationConnection",
            "NormalizedTranscript",
            "create_connection",
        ),
        "voxsync.uhlive.conversation": (
            "AudioSegmentDecoded",
            "AudioSegmentNormalized",
            "AudioWordsDecoded",
            "Conversation",
            "ConversationState",
            "EntityFound",
            "EntityRecognized",
            "Ok",
            "RelationFound",
            "RelationRecognized",
            "SegmentDecoded",
            "SegmentNormalized",
            "SpeakerJoined",
            "SpeakerLeft",
            "SpeechDecoded",
            "TagsSet",
            "TimeScopedEvent",
            "UhliveError",
            "UnknownEvent",
            "WordsDecoded",
        ),
        "voxsync.uhlive.recognition": ("Recognizer",),
    },
)

if TYPE_CHECKING:
    from voxsync.uhlive.auth import (
        build_authentication_request,
        build_bot_url,
        build_conversation_url,
        get_token,
    )
    from voxsync.uhlive.bot import BotConnection, create_bot
    from voxsync.uhlive.connection import (
        AUDIO_FORMATS,
        ConversationConnection,
        NormalizedTranscript,
        create_connection,
    )
    from voxsync.uhlive.conversation import (
        AudioSegmentDecoded,
        AudioSegmentNormalized,
        AudioWordsDecoded,
        Conversation,
        ConversationState,
        EntityFound,
        EntityRecognized,
        Ok,
        RelationFound,
        RelationRecognized,
        SegmentDecoded,
        SegmentNormalized,
        SpeakerJoined,
        SpeakerLeft,
        SpeechDecoded,
        TagsSet,
        TimeScopedEvent,
        UhliveError,
        UnknownEvent,
        WordsDecoded,
    )
    from voxsync.uhlive.recognition import Recognizer

__all__ = [
    "AUDIO_FORMATS",
    "AudioSegmentDecoded",
    "AudioSegmentNormalized",
    "AudioWordsDecoded",
    "BotConnection",
    "Conversation",
    "ConversationConnection",
    "ConversationState",
    "EntityFound",
    "EntityRecognized",
    "NormalizedTranscript",
    "Ok",
    "Recognizer",
    "RelationFound",
    "RelationRecognized",
    "SegmentDecoded",
    "SegmentNormalized",
    "SpeakerJoined",
    "SpeakerLeft",
    "SpeechDecoded",
    "TagsSet",
    "TimeScopedEvent",
    "UhliveError",
    "UnknownEvent",
    "WordsDecoded",
    "build_authentication_request",
    "build_bot_url",
    "build_conversation_url",
    "create_bot",
    "create_connection",
    "get_token",
]


# Names this package used to re-export; they live where the comment says.
_MOVED = {
    "Event": ("voxsync.uhlive.conversation", "Event"),
    "Word": ("voxsync.uhlive.conversation", "Word"),
    "Unknown": ("voxsync.uhlive.conversation", "UnknownEvent"),
    "ProtocolError": ("voxsync.errors", "ProtocolError"),
}


def __getattr__(name: str) -> Any:
    moved = _MOVED.get(name)
    if moved is not None:
        module_name, attr = moved
        warnings.warn(
            f"voxsync.uhlive.{name} is deprecated; import {attr} from {module_name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module_name), attr)
    return _lazy_getattr(name)
