"""aiOla REST calls: timeouts, retries with backoff, errors mapped to voxsync's.

The policy is the shared one of :mod:`voxsync.transport.http`: network
errors and HTTP 5xx are retried (``max_retries`` times, exponential backoff);
4xx never are. 401/403 raise
:class:`AuthenticationError`, 409 or code ``MAX_CONCURRENCY_REACHED`` raise
:class:`ConcurrencyLimitError`, other refusals :class:`ServerError`. The
service's message and code stay on the exception (``.code``, ``.raw``).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Dict, Mapping, Optional

from voxsync.errors import AuthenticationError, ConcurrencyLimitError, VoxsyncError
from voxsync.transport.http import HttpClient, HttpFailure

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


def aiola_error(failure: HttpFailure) -> Optional[VoxsyncError]:
    """aiOla's refusals: 409 / ``MAX_CONCURRENCY_REACHED`` and 401/403 with code and body."""
    status, code, raw = failure.status, failure.code, failure.raw
    message = failure.detail
    if status == 409 or code == "MAX_CONCURRENCY_REACHED":
        return ConcurrencyLimitError(
            f"{failure.what}: {message}. Too many open aiOla sessions: close one "
            "(AiolaClient.close_session() or client.close()) or wait until it expires",
            code=code or "MAX_CONCURRENCY_REACHED",
            raw=raw,
            status_code=status,
        )
    if status in (401, 403):
        return AiolaAuthenticationError(
            f"{failure.what}: {message} (HTTP {status}); check the API key or access token",
            status_code=status,
            code=code or ("UNAUTHORIZED" if status == 401 else "FORBIDDEN"),
            raw=raw,
        )
    return None  # the shared policy: ServerError with status, code and detail


class RestTransport:
    """aiOla's REST calls over the shared :class:`~voxsync.transport.http.HttpClient`."""

    def __init__(self, timeout: float = 30.0, max_retries: int = 2, backoff: float = 0.5) -> None:
        self._http = HttpClient(
            timeout=timeout,
            retries=max_retries,
            backoff=backoff,
            headers={"User-Agent": USER_AGENT},
            errors=aiola_error,
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        bearer: str,
        what: str,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
    ) -> Dict[str, Any]:
        """Send with the shared retry policy; return the JSON object body or raise a typed error.

        ``timeout`` and ``max_retries`` override the transport's defaults for
        this call (best-effort calls on a close path pass ``max_retries=0``).
        """
        return self._http.request_json(
            method,
            url,
            headers={"Authorization": f"Bearer {bearer}", **(headers or {})},
            json=json,
            data=data,
            files=files,
            expected=range(200, 400),
            timeout=timeout,
            retries=max_retries,
            secrets=[bearer],
            what=what,
        )
