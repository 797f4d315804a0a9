"""aiOla REST calls: timeouts, retries with backoff, errors mapped to voxsync's.

Policy: network errors and HTTP 5xx are retried (``max_retries`` times,
exponential backoff); 4xx never are. 401/403 raise
:class:`AuthenticationError`, 409 or code ``MAX_CONCURRENCY_REACHED`` raise
:class:`ConcurrencyLimitError`, other refusals :class:`ServerError`. The
service's message and code stay on the exception (``.code``, ``.raw``).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Dict, Mapping, Optional, Tuple

import requests

from voxsync.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionError,
    RemoteProtocolError,
    ServerError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.redact import redact

log = logging.getLogger("voxsync.aiola")

USER_AGENT = "voxsync-aiola"
#: Renew a token when it expires within this many seconds (aiOla's SDKs use 5 min).
EXPIRY_MARGIN = 300.0


class AiolaAuthenticationError(AuthenticationError):
    """:class:`~voxsync.errors.AuthenticationError` with aiOla's error code and body.

    Attributes
    ----------
    code : str or None
        ``UNAUTHORIZED``, ``FORBIDDEN``, ``TOKEN_EXPIRED``, ``INVALID_TOKEN``, ...
    raw : Mapping or None
        The error body as received.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        code: Optional[str] = None,
        raw: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.code = code
        self.raw = raw


def jwt_claims(token: str) -> Dict[str, Any]:
    """Decode a JWT's payload **without** verifying its signature.

    Raises
    ------
    AiolaAuthenticationError
        Not a three-part JWT with a JSON object payload.
    """
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise AiolaAuthenticationError(
            "the access token is not a JWT (expected three dot-separated parts); "
            "pass the accessToken returned by AiolaClient.grant_token()",
            code="INVALID_TOKEN",
        )
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError as exc:
        raise AiolaAuthenticationError(
            "the access token's payload is not valid JSON", code="INVALID_TOKEN"
        ) from exc
    if not isinstance(claims, dict):
        raise AiolaAuthenticationError(
            "the access token's payload is not an object", code="INVALID_TOKEN"
        )
    return claims


def token_expiry(token: str) -> Optional[float]:
    """``exp`` of a JWT (epoch seconds), or None if it has none."""
    exp = jwt_claims(token).get("exp")
    return float(exp) if isinstance(exp, (int, float)) else None


def token_fresh(token: str, margin: float = EXPIRY_MARGIN) -> bool:
    """True if ``token`` does not expire within ``margin`` seconds."""
    exp = token_expiry(token)
    return exp is None or exp > time.time() + margin


def _error_fields(body: Any) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    if isinstance(body, Mapping):
        inner = body.get("error")
        src = inner if isinstance(inner, Mapping) else body
        message = src.get("message") or (inner if isinstance(inner, str) else None)
        code, details = src.get("code"), src.get("details")
        return (
            str(message) if message is not None else None,
            str(code) if code is not None else None,
            str(details) if details is not None else None,
        )
    return None, None, None


class RestTransport:
    """One ``requests.Session`` with aiOla's error and retry policy."""

    def __init__(self, timeout: float = 30.0, max_retries: int = 2, backoff: float = 0.5) -> None:
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self._session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        bearer: str,
        what: str,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        """Send with retries; return the JSON object body or raise a typed error.

        ``timeout`` and ``max_retries`` override the transport's defaults for
        this call (best-effort calls on a close path pass ``max_retries=0``).
        """
        headers = {"Authorization": f"Bearer {bearer}", **kwargs.pop("headers", {})}
        timeout = self.timeout if timeout is None else timeout
        retries = self.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._session.request(
                    method, url, headers=headers, timeout=timeout, **kwargs
                )
            except requests.Timeout as exc:
                error: VoxsyncError = TimeoutError(
                    f"{what}: no answer from {redact(url)} within {timeout} s"
                )
                error.__cause__ = exc
            except requests.RequestException as exc:
                error = ConnectionError(
                    f"{what}: cannot reach {redact(url)}: {redact(exc, [bearer])}"
                )
                error.__cause__ = exc
            else:
                if response.status_code < 500:
                    return self._result(response, what, bearer)
                error = self._error(response, what, bearer)
            if attempt > retries:
                raise error
            delay = self.backoff * 2 ** (attempt - 1)
            log.info("%s failed (%s); retry %d in %.1f s", what, error, attempt, delay)
            time.sleep(delay)

    def _result(self, response: requests.Response, what: str, bearer: str) -> Dict[str, Any]:
        if response.status_code >= 400:
            raise self._error(response, what, bearer)
        try:
            body = response.json()
        except ValueError as exc:
            raise RemoteProtocolError(
                f"{what}: HTTP {response.status_code} with a body that is not JSON"
            ) from exc
        if not isinstance(body, dict):
            raise RemoteProtocolError(f"{what}: expected a JSON object, got {type(body).__name__}")
        return body

    @staticmethod
    def _error(response: requests.Response, what: str, bearer: str) -> VoxsyncError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        message, code, details = _error_fields(body)
        message = redact(message or response.reason or f"HTTP {status}", [bearer])
        if details:
            message = f"{message} ({redact(details, [bearer])})"
        raw = body if isinstance(body, Mapping) else None
        if status == 409 or code == "MAX_CONCURRENCY_REACHED":
            return ConcurrencyLimitError(
                f"{what}: {message}. Too many open aiOla sessions: close one "
                "(AiolaClient.close_session() or client.close()) or wait until it expires",
                code=code or "MAX_CONCURRENCY_REACHED",
                raw=raw,
                status_code=status,
            )
        if status in (401, 403):
            return AiolaAuthenticationError(
                f"{what}: {message} (HTTP {status}); check the API key or access token",
                status_code=status,
                code=code or ("UNAUTHORIZED" if status == 401 else "FORBIDDEN"),
                raw=raw,
            )
        return ServerError(
            f"{what}: {message} (HTTP {status})",
            code=code,
            retryable=status >= 500 or status == 429,
            raw=raw,
            status_code=status,
        )
