"""voxsync: live speech for synchronous Python code.

One callback API for real-time speech services, with an offline recognizer
as the default provider (no account, no network)::

    import voxsync
    from voxsync.audio import stream_file

    conn = voxsync.connection()                 # provider "local"

    @conn.on("transcript")
    def show(ev):
        if ev.is_final:
            print(ev.text)

    with conn:                                  # connect ... finish + close
        stream_file(conn, "hello.wav", realtime=False)

Overview::

    connect / connection     create a connection for a provider by name
    Connection               the contract every provider implements
    Transcript, Translation, AudioChunk, StreamWarning, Message, ...
                             event objects handed to handlers
    VoxsyncError and subclasses (voxsync.errors)
                             the exception hierarchy
    voxsync.audio            AudioFormat, conversion, files, MicrophoneStream
    voxsync.local, voxsync.aiola, voxsync.uhlive
                             providers; voxsync.emulators: local servers for each
    close_all                close every open connection (notebooks)
    voxsync.notebook         the live transcript view of conn.show()
"""

from voxsync.audio.format import AudioFormat
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
    Word,
)
from voxsync.providers import (
    DEFAULT_PROVIDER,
    available_providers,
    connect,
    connection,
    register_provider,
)

__version__ = "0.1.0"

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
    "HandlerError",
    "LocalProtocolError",
    "Message",
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
    "VoxsyncError",
    "Word",
    "__version__",
    "available_providers",
    "close_all",
    "connect",
    "connection",
    "register_provider",
]
