"""``AiolaClient``: tokens, sessions, streaming and file transcription."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Dict, Mapping, Optional, Type, Union

from voxsync.aiola._rest import (
    EXPIRY_MARGIN,
    AiolaAuthenticationError,
    RestTransport,
    token_expiry,
    token_fresh,
)
from voxsync.aiola.types import (
    DEFAULT_API_BASE_URL,
    DEFAULT_AUTH_BASE_URL,
    DEFAULT_WORKFLOW_ID,
    FileTranscript,
    GrantTokenResponse,
)
from voxsync.errors import ConfigurationError, RemoteProtocolError

__all__ = ["AiolaClient", "SttClient"]

log = logging.getLogger("voxsync.aiola")

#: Environment variables read when the matching argument is not given.
ENV_API_KEY = "AIOLA_API_KEY"
ENV_ACCESS_TOKEN = "AIOLA_ACCESS_TOKEN"
ENV_BASE_URL = "AIOLA_BASE_URL"
ENV_AUTH_BASE_URL = "AIOLA_AUTH_BASE_URL"


def _base(url: Optional[str], env: str, default: str) -> str:
    value = url or os.environ.get(env) or default
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{env.lower()} must start with http:// or https://, got {value!r}"
        )
    return value.rstrip("/")


def _auth_base(auth_base_url: Optional[str], base_url: Optional[str]) -> str:
    """The auth host: ``auth_base_url``, else ``$AIOLA_AUTH_BASE_URL``, else the API host
    given (``base_url``, else ``$AIOLA_BASE_URL``), else aiOla's default auth host.

    Pointing only the API host at a deployment (or an emulator, which serves
    both) thus never sends the API key to the public auth host.
    """
    return _base(
        auth_base_url
        or os.environ.get(ENV_AUTH_BASE_URL)
        or base_url
        or os.environ.get(ENV_BASE_URL),
        ENV_AUTH_BASE_URL,
        DEFAULT_AUTH_BASE_URL,
    )


class AiolaClient:
    """Entry point to aiOla: ``client.stt.stream(...)``, ``client.stt.transcribe_file(...)``.

    Parameters
    ----------
    api_key : str or None
        Your aiOla API key (default: ``$AIOLA_API_KEY``). With a key the
        client gets its session token itself, caches it, and renews it when
        it expires within 5 minutes.
    access_token : str or None
        A session token from :meth:`grant_token` (default:
        ``$AIOLA_ACCESS_TOKEN``). Used as is; when it is about to expire and
        no API key is known, the call that needs it raises
        :class:`~voxsync.errors.AuthenticationError` (code ``TOKEN_EXPIRED``).
    base_url : str or None
        API host (streaming and REST). Default ``$AIOLA_BASE_URL`` or
        ``https://apis.aiola.ai``; point it at an emulator's ``base_url``.
    auth_base_url : str or None
        Auth host. Default ``$AIOLA_AUTH_BASE_URL``, else ``base_url`` when
        that was given, else ``https://auth.aiola.ai``.
    workflow_id : str
        The workflow (flow) sessions and streams run.
    timeout : float
        Seconds for each REST request.
    max_retries : int
        Retries of a REST request after a network error or HTTP 5xx.

    Raises
    ------
    ConfigurationError
        Neither ``api_key`` nor ``access_token`` (nor their environment
        variables), or a malformed URL.

    Examples
    --------
    >>> result = AiolaClient.grant_token(api_key="...")              # doctest: +SKIP
    >>> client = AiolaClient(access_token=result["accessToken"])     # doctest: +SKIP
    >>> conn = client.stt.stream(lang_code="en")                     # doctest: +SKIP
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        access_token: Optional[str] = None,
        base_url: Optional[str] = None,
        auth_base_url: Optional[str] = None,
        workflow_id: str = DEFAULT_WORKFLOW_ID,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        if api_key is None and access_token is None:
            api_key = os.environ.get(ENV_API_KEY) or None
            access_token = os.environ.get(ENV_ACCESS_TOKEN) or None
        if not api_key and not access_token:
            raise ConfigurationError(
                "AiolaClient needs api_key= or access_token= (or the AIOLA_API_KEY "
                "environment variable)"
            )
        self.base_url = _base(base_url, ENV_BASE_URL, DEFAULT_API_BASE_URL)
        self.auth_base_url = _auth_base(auth_base_url, base_url)
        self.workflow_id = workflow_id
        self.timeout = timeout
        self._api_key = api_key or None
        self._access_token = access_token or None
        self._session_id: Optional[str] = None
        self._owns_session = False
        self._lock = threading.Lock()
        self._rest = RestTransport(timeout=timeout, max_retries=max_retries)
        self.stt = SttClient(self)

    def __repr__(self) -> str:
        return f"<AiolaClient {self.base_url} workflow_id={self.workflow_id!r}>"

    # --------------------------------------------------------------- tokens
    @classmethod
    def grant_token(
        cls,
        api_key: str,
        auth_base_url: Optional[str] = None,
        workflow_id: str = DEFAULT_WORKFLOW_ID,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> GrantTokenResponse:
        """Exchange an API key for a session access token (two REST calls).

        ``POST /voip-auth/apiKey2Token`` then ``POST /voip-auth/session``. The
        session holds one of the account's concurrency slots until
        :meth:`close_session` or its expiry.

        Parameters
        ----------
        api_key : str
        auth_base_url : str or None
            Default ``$AIOLA_AUTH_BASE_URL``, then ``$AIOLA_BASE_URL``, then
            ``https://auth.aiola.ai``.
        workflow_id : str
        timeout : float
            Seconds per request.
        max_retries : int

        Returns
        -------
        GrantTokenResponse
            ``result["accessToken"]``, ``result.access_token``, ``result.session_id``.

        Raises
        ------
        AuthenticationError
            The key was refused (HTTP 401/403); ``.code`` and ``.raw`` keep the service's.
        ConcurrencyLimitError
            Too many open sessions (HTTP 409 / ``MAX_CONCURRENCY_REACHED``).
        ConnectionError, TimeoutError, ServerError
            Network failure or service error after the retries.
        """
        if not api_key or not isinstance(api_key, str):
            raise ConfigurationError("grant_token() needs a non-empty api_key string")
        base = _auth_base(auth_base_url, None)
        rest = RestTransport(timeout=timeout, max_retries=max_retries)
        try:
            return cls._grant(rest, base, api_key, workflow_id)
        finally:
            rest.close()

    @staticmethod
    def _grant(
        rest: RestTransport, base: str, api_key: str, workflow_id: str
    ) -> GrantTokenResponse:
        body = rest.request(
            "POST", f"{base}/voip-auth/apiKey2Token", bearer=api_key, what="apiKey2Token"
        )
        context = body.get("context")
        temporary = context.get("token") if isinstance(context, dict) else None
        if not isinstance(temporary, str) or not temporary:
            raise RemoteProtocolError(
                "apiKey2Token: the answer has no context.token (INVALID_TOKEN_RESPONSE)"
            )
        body = rest.request(
            "POST",
            f"{base}/voip-auth/session",
            bearer=temporary,
            what="create session",
            json={"workflow_id": workflow_id},
        )
        jwt = body.get("jwt")
        if not isinstance(jwt, str) or not jwt:
            raise RemoteProtocolError(
                "create session: the answer has no jwt (INVALID_SESSION_RESPONSE)"
            )
        session_id = body.get("sessionId")
        return GrantTokenResponse(
            access_token=jwt,
            session_id=str(session_id) if session_id is not None else None,
            expires_at=token_expiry(jwt),
            raw={k: v for k, v in body.items() if k != "jwt"},
        )

    @classmethod
    def close_session(
        cls, access_token: str, auth_base_url: Optional[str] = None, timeout: float = 30.0
    ) -> Dict[str, Any]:
        """Close a session (``DELETE /voip-auth/session``), freeing its concurrency slot.

        Returns
        -------
        dict
            The service's answer, e.g. ``{"status": "deleted", "deletedAt": "..."}``.

        Raises
        ------
        AuthenticationError, ServerError, ConnectionError, TimeoutError
        """
        base = _auth_base(auth_base_url, None)
        rest = RestTransport(timeout=timeout)
        try:
            return rest.request(
                "DELETE",
                f"{base}/voip-auth/session",
                bearer=access_token,
                what="close session",
                headers={"Content-Type": "application/json"},
            )
        finally:
            rest.close()

    def get_access_token(self) -> str:
        """A session token valid for at least 5 more minutes (cached; renewed with the API key).

        Thread-safe. Raises :class:`~voxsync.errors.AuthenticationError` when
        the token given to the constructor has (nearly) expired and there is
        no API key to renew it.
        """
        with self._lock:
            token = self._access_token
            if token is not None and token_fresh(token, EXPIRY_MARGIN):
                return token
            if self._api_key is None:
                raise AiolaAuthenticationError(
                    "the access token expires within 5 minutes (or has expired); get a new one "
                    "with AiolaClient.grant_token() or pass api_key= so the client renews it",
                    code="TOKEN_EXPIRED",
                )
            if token is not None and self._owns_session:
                self._close_own_session(token)
            result = self._grant(self._rest, self.auth_base_url, self._api_key, self.workflow_id)
            self._access_token = result.access_token
            self._session_id = result.session_id
            self._owns_session = True
            log.debug("aiOla session %s opened", result.session_id)
            return result.access_token

    @property
    def session_id(self) -> Optional[str]:
        """Id of the session this client opened itself, if any."""
        return self._session_id

    def _close_own_session(self, token: str) -> None:
        try:
            self._rest.request(
                "DELETE",
                f"{self.auth_base_url}/voip-auth/session",
                bearer=token,
                what="close session",
                timeout=1.5,
                max_retries=0,
            )
        except Exception as exc:  # best effort: the session expires anyway
            log.info("closing aiOla session %s failed: %s", self._session_id, exc)

    def close(self) -> None:
        """Close the session this client opened with its API key (if any) and its HTTP pool.

        Tokens given to the constructor are left alone: close them with
        :meth:`close_session`. Never raises.
        """
        with self._lock:
            token, owned = self._access_token, self._owns_session
            if owned:
                self._access_token = None
                self._owns_session = False
        if owned and token is not None:
            self._close_own_session(token)
        self._rest.close()

    def __enter__(self) -> AiolaClient:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class SttClient:
    """Speech to text: ``client.stt``."""

    def __init__(self, client: AiolaClient) -> None:
        self._client = client

    def stream(
        self,
        workflow_id: Optional[str] = None,
        execution_id: Optional[str] = None,
        lang_code: Optional[str] = None,
        time_zone: Optional[str] = None,
        keywords: Optional[Mapping[str, str]] = None,
        tasks_config: Optional[Mapping[str, Any]] = None,
        vad_config: Optional[Mapping[str, Any]] = None,
        **options: Any,
    ) -> Any:
        """A new, not yet connected streaming connection (:class:`~voxsync.aiola.AiolaConnection`).

        Parameters
        ----------
        workflow_id : str or None
            Default: the client's.
        execution_id : str or None
            Default: a new UUID.
        lang_code : str or None
            ``en``, ``de``, ``fr``, ``es``, ... (``en_US`` style is accepted too).
        time_zone : str or None
            IANA name; default ``UTC``.
        keywords : mapping or None
            Spoken form -> written form, e.g. ``{"k eight s": "Kubernetes"}``.
        tasks_config : mapping or None
            e.g. ``{"TRANSLATION": {"src_lang_code": "en", "dst_lang_code": "es"}}``.
        vad_config : mapping or None
            ``{"threshold", "min_speech_ms", "min_silence_ms", "max_segment_ms"}``.
        **options
            :class:`~voxsync.aiola.AiolaConnection` options (reconnection
            policy, queue size, ...).
        """
        from voxsync.aiola.stream import AiolaConnection

        client = self._client
        return AiolaConnection(
            client.get_access_token,
            base_url=client.base_url,
            workflow_id=workflow_id or client.workflow_id,
            execution_id=execution_id,
            lang_code=lang_code,
            time_zone=time_zone,
            keywords=keywords,
            tasks_config=tasks_config,
            vad_config=vad_config,
            **options,
        )

    def transcribe_file(
        self,
        file: Union[str, os.PathLike[str], bytes, IO[bytes]],
        language: str = "en",
        keywords: Optional[Mapping[str, str]] = None,
        vad_config: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> FileTranscript:
        """Transcribe a whole file over REST (``POST /api/speech-to-text/file``).

        Parameters
        ----------
        file : path, bytes or binary file object
            Audio (WAV, or raw 16 kHz 16-bit mono PCM).
        language : str
        keywords : mapping or None
            Spoken form -> written form.
        vad_config : mapping or None
        timeout : float or None
            Seconds for the request; default the client's ``timeout``.

        Returns
        -------
        FileTranscript
            ``.transcript`` (also ``result["transcript"]``), ``.segments``, ``.metadata``.

        Raises
        ------
        AuthenticationError, ServerError, ConnectionError, TimeoutError
        ConfigurationError
            ``file`` is none of the accepted kinds, or the path does not exist.
        """
        if isinstance(file, (bytes, bytearray)):
            data, filename = bytes(file), "audio.wav"
        elif isinstance(file, (str, os.PathLike)):
            path = Path(file)
            if not path.is_file():
                raise ConfigurationError(f"no such audio file: {path}")
            data, filename = path.read_bytes(), path.name
        elif hasattr(file, "read"):
            data = file.read()
            filename = Path(str(getattr(file, "name", "audio.wav"))).name
        else:
            raise ConfigurationError("file must be a path, bytes, or a binary file object")
        fields: Dict[str, Any] = {"language": language}
        if keywords:
            fields["keywords"] = json.dumps(dict(keywords))
        if vad_config:
            fields["vad_config"] = json.dumps(dict(vad_config))
        client = self._client
        body = client._rest.request(
            "POST",
            f"{client.base_url}/api/speech-to-text/file",
            bearer=client.get_access_token(),
            what="transcribe file",
            timeout=timeout,
            files={"file": (filename, data, "application/octet-stream")},
            data=fields,
        )
        transcript = body.get("transcript", body.get("itn_transcript"))
        if not isinstance(transcript, str):
            raise RemoteProtocolError("transcribe file: the answer has no transcript")
        segments = body.get("segments")
        metadata = body.get("metadata")
        return FileTranscript(
            transcript=transcript,
            raw_transcript=body.get("raw_transcript"),
            segments=list(segments) if isinstance(segments, list) else [],
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            raw=body,
        )
