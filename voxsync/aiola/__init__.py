"""aiOla streaming speech-to-text, in the style of aiOla's own SDK.

aiOla's examples run with only their imports changed::

    from voxsync.aiola import AiolaClient, MicrophoneStream   # was: from aiola import ...
    from voxsync.aiola.types import LiveEvents                 # was: from aiola.types import ...

    result = AiolaClient.grant_token(api_key=os.environ["AIOLA_API_KEY"])
    client = AiolaClient(access_token=result["accessToken"])
    connection = client.stt.stream(lang_code="en")

    @connection.on(LiveEvents.Transcript)
    def on_transcript(data):
        print("Transcript:", data.get("transcript", data))

    connection.connect()

``AIOLA_BASE_URL`` / ``AIOLA_AUTH_BASE_URL`` redirect every client to
another host (an emulator: ``voxsync emulate aiola``) without changing code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

from voxsync._lazy import lazy_exports

# Names are imported on first use: python-socketio and numpy cost more than
# the rest of the package, and 'voxsync --help' only needs the provider's
# options (voxsync.aiola._cli).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "voxsync.aiola._rest": ("AiolaAuthenticationError",),
        "voxsync.aiola.client": ("AiolaClient", "SttClient"),
        "voxsync.aiola.stream": ("AiolaConnection", "decode_event"),
        "voxsync.aiola.types": ("FileTranscript", "GrantTokenResponse", "LiveEvents", "Structured"),
        "voxsync.audio": ("MicrophoneStream",),
    },
)

if TYPE_CHECKING:
    from voxsync.aiola._rest import AiolaAuthenticationError
    from voxsync.aiola.client import AiolaClient, SttClient
    from voxsync.aiola.stream import AiolaConnection, decode_event
    from voxsync.aiola.types import FileTranscript, GrantTokenResponse, LiveEvents, Structured
    from voxsync.audio import MicrophoneStream

__all__ = [
    "AiolaAuthenticationError",
    "AiolaClient",
    "AiolaConnection",
    "FileTranscript",
    "GrantTokenResponse",
    "LiveEvents",
    "MicrophoneStream",
    "Structured",
    "SttClient",
    "create_connection",
    "decode_event",
]


def create_connection(
    *,
    api_key: Optional[str] = None,
    access_token: Optional[str] = None,
    base_url: Optional[str] = None,
    auth_base_url: Optional[str] = None,
    workflow_id: Optional[str] = None,
    lang_code: Optional[str] = None,
    keywords: Optional[Mapping[str, str]] = None,
    tasks_config: Optional[Mapping[str, Any]] = None,
    vad_config: Optional[Mapping[str, Any]] = None,
    time_zone: Optional[str] = None,
    execution_id: Optional[str] = None,
    **options: Any,
) -> AiolaConnection:
    """A not yet connected aiOla stream (``voxsync.connection("aiola", ...)``).

    Credentials default to ``$AIOLA_API_KEY`` / ``$AIOLA_ACCESS_TOKEN``, hosts
    to ``$AIOLA_BASE_URL`` / ``$AIOLA_AUTH_BASE_URL`` or aiOla's. A session
    opened here with the API key is closed (its concurrency slot freed) when
    the connection closes. Other ``options`` go to :class:`AiolaConnection`.
    """
    from voxsync.aiola.client import AiolaClient

    client_args: dict[str, Any] = {}
    if workflow_id:
        client_args["workflow_id"] = workflow_id
    client = AiolaClient(
        api_key=api_key,
        access_token=access_token,
        base_url=base_url,
        auth_base_url=auth_base_url,
        **client_args,
    )
    conn: AiolaConnection = client.stt.stream(
        lang_code=lang_code,
        keywords=keywords,
        tasks_config=tasks_config,
        vad_config=vad_config,
        time_zone=time_zone,
        execution_id=execution_id,
        **options,
    )
    conn.add_close_callback(client.close)  # the session this factory opened
    return conn
