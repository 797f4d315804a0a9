"""What the realtime STT and TTS connections share: connection modes, upgrade, refusals."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional, Tuple

from voxsync.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConfigurationError,
    VoxsyncError,
)
from voxsync.palabra.errors import AuthError, SessionError
from voxsync.transport.websocket import WebSocketTransport
from voxsync.wsconnection import WebSocketConnection

if TYPE_CHECKING:
    from voxsync.palabra.client import Palabra, Session

log = logging.getLogger("voxsync.palabra")

#: Seconds between WebSocket pings (the service's own clients ping every 10 s).
PING_INTERVAL = 10.0
#: Keyword arguments that go to the connection runtime, not the product.
CONNECTION_OPTIONS = (
    "queue_size",
    "overflow",
    "send_timeout",
    "finish_timeout",
    "name",
    "event_queue_size",
)


def check_options(options: Any, product: str) -> None:
    """Raise ConfigurationError naming any option the runtime does not take."""
    unknown = set(options) - set(CONNECTION_OPTIONS)
    if unknown:
        raise ConfigurationError(f"unknown option(s) for {product}(): {', '.join(sorted(unknown))}")


class RealtimeSocket(WebSocketConnection):
    """Base of :class:`~voxsync.palabra.stt.SpeechToText` and ``TextToSpeech``.

    Three connection modes, as for translation streams: by default a REST
    session is created on connect and deleted on close; ``session=`` uses
    that session and never deletes it; ``ws_url=`` + ``token=`` connects
    directly (no REST, no credentials).
    """

    service = "Palabra"
    _awaits_reply = False  # these services send nothing once the upgrade succeeded

    def __init__(
        self,
        client: Palabra,
        *args: Any,
        session: Optional[Session] = None,
        ws_url: Optional[str] = None,
        token: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        if (ws_url is None) != (token is None):
            raise ConfigurationError("ws_url= and token= go together (direct connection mode)")
        if ws_url is not None and session is not None:
            raise ConfigurationError("give session= or ws_url=/token=, not both")
        kwargs.setdefault("keepalive_interval", PING_INTERVAL)
        super().__init__(*args, **kwargs)
        self._client = client
        self._session = session
        self._owned_session: Optional[Session] = None
        self._ws_url = ws_url
        self._token = token

    @property
    def session(self) -> Optional[Session]:
        """The REST session in use (None in ``ws_url=`` mode or before connecting)."""
        return self._session or self._owned_session

    # ------------------------------------------------------------- hooks
    def _socket_url(self, session: Optional[Session], token: str) -> str:
        """The socket URL with its query, for a session (None: ``ws_url=`` mode)."""
        raise NotImplementedError

    def _endpoint(self) -> Tuple[str, str]:
        """(url, token), creating the REST session when needed."""
        if self._ws_url is not None and self._token is not None:
            return self._socket_url(None, self._token), self._token
        session = self._session
        if session is None:
            session = self._client.create_session()
            self._owned_session = session
            self.add_close_callback(self._delete_owned_session)  # runs once, on close
        return self._socket_url(session, session.publisher), session.publisher

    def _create_transport(self, timeout: float) -> WebSocketTransport:
        url, token = self._endpoint()
        return WebSocketTransport(url, secrets=[token], service=self.service)

    def _refusal(self, exc: VoxsyncError) -> VoxsyncError:
        if isinstance(exc, AuthenticationError):
            return AuthError(
                f"{self.service} refused the token (HTTP {exc.status_code}); "
                "check the credentials or create a new session",
                status_code=exc.status_code,
            )
        status = getattr(exc.__cause__, "status_code", None)
        body = getattr(exc.__cause__, "resp_body", None)
        reason = body.decode("utf-8", "replace").strip() if isinstance(body, bytes) else ""
        if status == 409:
            return ConcurrencyLimitError(
                "a session is already active for this identity; close the other "
                "stream (or wait for it to end) and connect again",
                code="CONFLICT",
                status_code=409,
            )
        if status == 400:
            return ConfigurationError(
                f"{self.service} refused the stream's settings: {reason or 'HTTP 400'}"
            )
        return SessionError(str(exc))

    def _delete_owned_session(self) -> None:
        session, self._owned_session = self._owned_session, None
        if session is not None:
            try:
                self._client._delete_session_on_close(session)
            except Exception:
                log.debug("%s: deleting the session failed", self.name, exc_info=True)
