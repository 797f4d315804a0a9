"""Palabra's REST session API: create and delete streaming sessions.

Policy (the same as Palabra's own SDK): network errors and HTTP 5xx are
retried, 3 attempts in total, 0.5 s then 1 s apart; 401/403/404 fail at once
with :class:`~voxsync.palabra.errors.AuthError`, other 4xx with
:class:`~voxsync.palabra.errors.SessionError`. Credentials travel only in the
``ClientID`` / ``ClientSecret`` headers and never appear in messages.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import requests

from voxsync.palabra.errors import AuthError, SessionError
from voxsync.redact import redact

log = logging.getLogger("voxsync.palabra")

#: Attempts in total for a transient failure, and the pauses between them.
ATTEMPTS = 3
BACKOFF = (0.5, 1.0)
#: Seconds one HTTP request may take.
REQUEST_TIMEOUT = 15.0


def _problem(body: Any) -> str:
    """The server's explanation from an error body (RFC 9457-like or free text)."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            first = errors[0]
            return str(first.get("detail") or first.get("title") or first.get("error_code") or "")
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])
    return ""


def request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    body: Optional[Mapping[str, Any]] = None,
    secrets: Tuple[str, ...] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> Tuple[int, Any]:
    """One REST call with Palabra's retry policy; returns ``(status, json body or None)``.

    Raises
    ------
    AuthError
        HTTP 401, 403 or 404 (wrong credentials or wrong base URL).
    SessionError
        Other 4xx, or 5xx / network errors after the last attempt.
    """
    last: Optional[BaseException] = None
    what = f"{method} {redact(url, secrets)}"
    for attempt in range(ATTEMPTS):
        if attempt:
            sleep(BACKOFF[min(attempt - 1, len(BACKOFF) - 1)])
        try:
            resp = requests.request(
                method, url, headers=dict(headers), json=body, timeout=REQUEST_TIMEOUT
            )
        except requests.RequestException as exc:
            last = exc
            log.debug("%s failed (attempt %d): %s", what, attempt + 1, redact(exc, secrets))
            continue
        try:
            payload: Any = resp.json() if resp.content else None
        except ValueError:
            payload = None
        status = resp.status_code
        if status >= 500:
            last = SessionError(f"Palabra answered {what} with HTTP {status}")
            log.debug("%s: HTTP %d (attempt %d)", what, status, attempt + 1)
            continue
        if status in (401, 403, 404):
            detail = _problem(payload)
            raise AuthError(
                f"Palabra refused {what} with HTTP {status}"
                + (f" ({redact(detail, secrets)})" if detail else "")
                + "; check PALABRA_CLIENT_ID / PALABRA_CLIENT_SECRET and PALABRA_API_URL",
                status_code=status,
            )
        if status >= 400:
            detail = _problem(payload)
            raise SessionError(
                f"Palabra refused {what} with HTTP {status}"
                + (f": {redact(detail, secrets)}" if detail else "")
            )
        return status, payload
    if isinstance(last, SessionError):
        raise SessionError(f"{last} ({ATTEMPTS} attempts)")
    raise SessionError(
        f"cannot reach Palabra for {what} after {ATTEMPTS} attempts: {redact(last, secrets)}"
    ) from last


def session_from_reply(payload: Any) -> Dict[str, Any]:
    """The ``data`` object of a create-session reply, checked."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    if not isinstance(data, Mapping) or not isinstance(data.get("ws_url"), str):
        raise SessionError("Palabra's create-session reply has no data.ws_url")
    if not isinstance(data.get("publisher"), (str, list)):
        raise SessionError("Palabra's create-session reply has no publisher token")
    return dict(data)
