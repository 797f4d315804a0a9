"""Palabra errors, under the names of Palabra's own SDK.

Each one is also a voxsync error, so ``except voxsync.VoxsyncError`` catches
them all:

=================  ====================================================
``AuthError``      :class:`~voxsync.errors.AuthenticationError`
``SessionError``   :class:`~voxsync.errors.ConnectionError`
``NotReadyError``  :class:`~voxsync.errors.TimeoutError`
``TaskError``      :class:`~voxsync.errors.ServerError`
=================  ====================================================
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from voxsync.errors import (
    AuthenticationError,
    ConnectionError,
    DisconnectedError,
    ServerError,
    TimeoutError,
)

__all__ = ["AuthError", "NotReadyError", "SessionDroppedError", "SessionError", "TaskError"]


class AuthError(AuthenticationError):
    """Missing or refused credentials (no credentials, HTTP 401/403/404)."""


class SessionError(ConnectionError):
    """The REST session API or the WebSocket failed.

    A crashed receive loop carries the original exception as ``__cause__``.
    """


class SessionDroppedError(SessionError, DisconnectedError):
    """An open translation stream failed (dropped, refused mid-stream)."""


class NotReadyError(TimeoutError):
    """The pipeline did not confirm the task in time (30 s by default)."""


class TaskError(ServerError):
    """The server rejected the task, or reported an error in the stream.

    Attributes
    ----------
    code : str
        The server's error code (``VALIDATION_ERROR``, ``NOT_FOUND``, ...).
    desc : str
        The server's explanation.
    """

    def __init__(
        self,
        code: Optional[str],
        desc: str,
        *,
        raw: Optional[Mapping[str, Any]] = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(desc, code=code or "UNKNOWN_ERROR", raw=raw, retryable=retryable)

    @property
    def desc(self) -> str:
        """The server's explanation (same as ``detail``)."""
        return self.detail
