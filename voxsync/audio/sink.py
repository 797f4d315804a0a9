"""What audio sources need from a connection: the :class:`AudioSink` protocol.

:func:`~voxsync.audio.stream_file` and
:meth:`~voxsync.audio.MicrophoneStream.stream_to` feed any object that has
this shape; every :class:`voxsync.Connection` has it. The audio layer uses
nothing else of a connection, so it does not depend on the connection
runtime.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

from voxsync.errors import ConfigurationError
from voxsync.events import StreamWarning
from voxsync.format import AudioFormat

__all__ = ["AudioSink", "sink_format"]


@runtime_checkable
class AudioSink(Protocol):
    """A consumer of audio chunks, such as a :class:`voxsync.Connection`.

    Attributes
    ----------
    input_format : AudioFormat or None
        The audio :meth:`send` takes; sources convert to it. None means
        the sink takes no audio (a text-in product): sources refuse it.
    state : str
        ``"idle"`` until :meth:`connect`; sources connect an idle sink first.
    """

    @property
    def input_format(self) -> Optional[AudioFormat]: ...

    @property
    def state(self) -> str: ...

    def connect(self, timeout: float = ...) -> Any:
        """Open the sink (called by sources when ``state == "idle"``)."""

    def send(self, chunk: bytes) -> None:
        """Take one chunk of audio in :attr:`input_format`."""

    def finish(self, timeout: Optional[float] = None) -> None:
        """Send what is queued, end the stream and wait (bounded) for the last results."""

    def report_warning(self, warning: StreamWarning) -> None:
        """Emit ``warning`` to the sink's listeners (a ``warning`` event); any thread."""

    def report_error(self, error: BaseException) -> None:
        """Emit ``error`` to the sink's listeners as a non-fatal ``error`` event; any thread."""


def sink_format(conn: object, what: str) -> AudioFormat:
    """The input format of ``conn``, checked to be an audio sink that takes audio.

    Raises
    ------
    ConfigurationError
        ``conn`` lacks the :class:`AudioSink` methods, or takes text
        (``input_format`` is None).
    """
    if not isinstance(conn, AudioSink):
        raise ConfigurationError(
            f"{what} needs a voxsync connection (an AudioSink: input_format, send(), "
            f"report_warning(), ...), got {type(conn).__name__}"
        )
    fmt = conn.input_format
    if not isinstance(fmt, AudioFormat):
        raise ConfigurationError(
            f"{what}: {type(conn).__name__} takes text, not audio (its input_format is None)"
        )
    return fmt
