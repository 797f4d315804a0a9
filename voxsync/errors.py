"""The voxsync exception hierarchy.

Every exception voxsync raises derives from :class:`VoxsyncError`, so one
``except voxsync.VoxsyncError`` catches them all. Where the meaning matches a
built-in exception the class inherits from it too (``ConfigurationError`` is a
``ValueError``, ``TimeoutError`` is the built-in ``TimeoutError``), so code
that already catches those keeps working. Errors raised because of another
exception are chained (``raise ... from exc``); ``__cause__`` holds the
original.

::

    VoxsyncError
    ├── ConfigurationError (ValueError)      bad argument or audio: fix the call
    │   └── AudioFormatError                 bytes that do not match audio_format
    ├── AuthenticationError                  credentials refused: not retryable
    ├── ConnectionError (ConnectionError)    could not reach / lost the service
    │   └── DisconnectedError                the stream is gone; send() fails
    ├── TimeoutError (TimeoutError)          a bounded wait ran out
    ├── QueueFullError                       send() with overflow="raise" and no room
    ├── DeviceError                          audio device or PortAudio problem
    ├── ProtocolError
    │   ├── LocalProtocolError               you used the API in the wrong state
    │   └── RemoteProtocolError              the peer broke the protocol
    ├── ServerError                          the service reported an error
    │   └── ConcurrencyLimitError            too many open sessions
    └── HandlerError                         one of your event handlers raised

No message built by voxsync contains a credential: tokens and keys are
redacted before they reach an exception, a log record or a ``repr``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Callable, Optional

__all__ = [
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
]


class VoxsyncError(Exception):
    """Root of every exception raised by voxsync."""


class ConfigurationError(VoxsyncError, ValueError):
    """An argument, option or credential setting is invalid.

    The message names the expected value. Fix the call; retrying the same
    call cannot succeed.
    """


class AudioFormatError(ConfigurationError):
    """Audio handed to voxsync does not match the declared format.

    Raised by ``send()`` for non-bytes input or a byte count that is not a
    whole number of frames. The message states the format the connection
    expects (``conn.audio_format``).
    """


class AuthenticationError(VoxsyncError):
    """The service refused the credentials (HTTP 401/403 or equivalent).

    Retrying with the same credentials will fail again.

    Attributes
    ----------
    status_code : int or None
        HTTP status of the refusal, when there was one.
    """

    def __init__(self, message: str, *, status_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ConnectionError(VoxsyncError, builtins.ConnectionError):
    """The service could not be reached, or the connection failed.

    Usually transient: retrying later may succeed.
    """


class DisconnectedError(ConnectionError):
    """The stream is gone (closed by the server, the network or ``close()``).

    ``send()`` raises it once the receive loop has ended, so audio is never
    dropped silently; ``wait()`` raises it when the connection ended because
    of a failure. ``__cause__`` holds the underlying error, if any.

    Attributes
    ----------
    code : int or None
        The WebSocket close code the peer sent (1000 normal, 1008 policy
        violation - some services signal rate limits with it - ...), when
        the stream ended with a close frame; None otherwise.
    reason : str
        The close reason the peer sent with ``code`` (may be empty).
    """

    def __init__(self, message: str = "", *, code: Optional[int] = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class TimeoutError(VoxsyncError, builtins.TimeoutError):
    """A bounded wait (connect, finish, a blocking send, a reply) ran out."""


class QueueFullError(VoxsyncError):
    """``send()`` found the send queue full and the overflow policy is ``"raise"``.

    The chunk was not queued; the caller still owns it and may retry.
    """


class DeviceError(VoxsyncError):
    """An audio device could not be opened or used (including missing PortAudio)."""


class ProtocolError(VoxsyncError):
    """Something happened that the protocol does not allow."""


class LocalProtocolError(ProtocolError):
    """The API was used in the wrong state (e.g. ``send()`` before ``connect()``).

    The message says which call is needed first. This is a bug in the calling
    code, not a network problem.
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow (malformed frame, ...)."""


class ServerError(VoxsyncError):
    """The service reported an error.

    Attributes
    ----------
    code : str or None
        The service's error code, when it gave one.
    detail : str
        The service's human-readable explanation.
    retryable : bool
        True when the same request may succeed later (rate limits,
        temporary unavailability).
    raw : Mapping or None
        The service's error payload, as received. It also reads like the
        payload: ``err["message"]``, ``err.get("details")``.
    """

    def __init__(
        self,
        detail: str,
        *,
        code: Optional[str] = None,
        retryable: bool = False,
        raw: Optional[Mapping[str, Any]] = None,
        status_code: Optional[int] = None,
    ) -> None:
        super().__init__(f"{code}: {detail}" if code else detail)
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.raw = raw
        self.status_code = status_code

    def __getitem__(self, key: str) -> Any:
        if self.raw is None:
            raise KeyError(key)
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Read a field of the raw payload, like ``dict.get``."""
        if self.raw is None:
            return default
        return self.raw.get(key, default)


class ConcurrencyLimitError(ServerError):
    """The account has too many open sessions.

    Close a session you no longer use (or wait for one to expire) and try
    again.
    """


class HandlerError(VoxsyncError):
    """A user event handler raised; emitted as an ``error`` event.

    The stream goes on. ``__cause__`` holds the handler's exception.

    Attributes
    ----------
    event : str
        The event the handler was called for.
    handler : callable
        The handler that raised.
    """

    def __init__(self, event: str, handler: Callable[..., Any], exc: BaseException) -> None:
        name = getattr(handler, "__qualname__", repr(handler))
        super().__init__(f"handler {name} for {event!r} raised {type(exc).__name__}: {exc}")
        self.event = event
        self.handler = handler
        self.__cause__ = exc
