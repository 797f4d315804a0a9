"""voxsync: live speech for synchronous Python code.

One callback API for real-time speech services, with an offline recognizer
as the default provider (no account, no network)::

    import voxsync

    conn = voxsync.connection()                 # provider "local"

    @conn.on("transcript")
    def show(ev):
        if ev.is_final:
            print(ev.text)

    with conn:                                  # connect ... finish + close
        voxsync.stream_file(conn, "hello.wav", realtime=False)

Overview::

    connect / connection     create a connection for a provider by name
    Connection               the contract every provider implements
    Transcript, Translation, AudioChunk, StreamWarning, UnknownEvent, ...
                             event objects handed to handlers
    MicrophoneStream, stream_file
                             audio sources: ``MicrophoneStream().stream_to(conn)``,
                             ``stream_file(conn, "speech.wav")`` (imported on first use)
    VoxsyncError and subclasses (voxsync.errors)
                             the exception hierarchy
    voxsync.audio            AudioFormat, conversion, files, MicrophoneStream
    transcribe_many, FileResult
                             many files at once, on threads, processes or a cluster
    voxsync.local, voxsync.aiola, voxsync.uhlive, voxsync.palabra
                             providers; voxsync.emulators: local servers for each
    close_all                close every open connection (notebooks)
    voxsync.notebook         the live transcript view of conn.show()
"""

from typing import TYPE_CHECKING

from voxsync._lazy import lazy_exports

__version__ = "0.1.0"

# Every name is imported on first use: ``import voxsync`` loads none of the
# runtime, and audio sources (numpy, PortAudio bindings) wait until used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "voxsync.audio.files": ("stream_file",),
        "voxsync.audio.microphone": ("MicrophoneStream",),
        "voxsync.batch": ("FileResult", "transcribe_many"),
        "voxsync.connection": ("Connection", "State", "close_all"),
        "voxsync.errors": (
            "AudioFormatError",
            "AuthenticationError",
            "ConcurrencyLimitError",
            "ConfigurationError",
            "ConnectionError",
            "DeviceError",
            "DisconnectedError",
            "HandlerError",
            "LocalProtocolError",
            "ProtocolError",
            "QueueFullError",
            "RemoteProtocolError",
            "ServerError",
            "TimeoutError",
            "VoxsyncError",
        ),
        "voxsync.events": (
            "AudioChunk",
            "Connected",
            "Disconnected",
            "DisconnectReason",
            "Event",
            "Message",
            "Reconnected",
            "Reconnecting",
            "StreamWarning",
            "Transcript",
            "Translation",
            "UnknownEvent",
            "Word",
        ),
        "voxsync.format": ("AudioFormat",),
        "voxsync.providers": (
            "DEFAULT_PROVIDER",
            "available_providers",
            "connect",
            "connection",
            "register_provider",
        ),
    },
    # imported with the package before its names became lazy
    submodules=("metrics", "request"),
)

if TYPE_CHECKING:
    from voxsync.audio.files import stream_file
    from voxsync.audio.microphone import MicrophoneStream
    from voxsync.batch import FileResult, transcribe_many
    from voxsync.connection import Connection, State, close_all
    from voxsync.errors import (
        AudioFormatError,
        AuthenticationError,
        ConcurrencyLimitError,
        ConfigurationError,
        ConnectionError,
        DeviceError,
        DisconnectedError,
        HandlerError,
        LocalProtocolError,
        ProtocolError,
        QueueFullError,
        RemoteProtocolError,
        ServerError,
        TimeoutError,
        VoxsyncError,
    )
    from voxsync.events import (
        AudioChunk,
        Connected,
        Disconnected,
        DisconnectReason,
        Event,
        Message,
        Reconnected,
        Reconnecting,
        StreamWarning,
        Transcript,
        Translation,
        UnknownEvent,
        Word,
    )
    from voxsync.format import AudioFormat
    from voxsync.providers import (
        DEFAULT_PROVIDER,
        available_providers,
        connect,
        connection,
        register_provider,
    )

__all__ = [
    "DEFAULT_PROVIDER",
    "AudioChunk",
    "AudioFormat",
    "AudioFormatError",
    "AuthenticationError",
    "ConcurrencyLimitError",
    "ConfigurationError",
    "Connected",
    "Connection",
    "ConnectionError",
    "DeviceError",
    "DisconnectReason",
    "Disconnected",
    "DisconnectedError",
    "Event",
    "FileResult",
    "HandlerError",
    "LocalProtocolError",
    "Message",
    "MicrophoneStream",
    "ProtocolError",
    "QueueFullError",
    "Reconnected",
    "Reconnecting",
    "RemoteProtocolError",
    "ServerError",
    "State",
    "StreamWarning",
    "TimeoutError",
    "Transcript",
    "Translation",
    "UnknownEvent",
    "VoxsyncError",
    "Word",
    "__version__",
    "available_providers",
    "close_all",
    "connect",
    "connection",
    "register_provider",
    "stream_file",
    "transcribe_many",
]
