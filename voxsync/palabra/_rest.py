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
from typing import Any, Dict, Mapping, Optional, Tuple

from voxsync.errors import VoxsyncError
from voxsync.palabra.errors import AuthError, SessionError
from voxsync.transport.http import HttpClient, HttpFailure

log = logging.getLogger("voxsync.palabra")

#: Attempts in total for a transient failure; the first retry waits BACKOFF s, then twice that.
ATTEMPTS = 3
BACKOFF = 0.5
#: Seconds one HTTP attempt may take.
REQUEST_TIMEOUT = 15.0
#: Seconds the one attempt to delete a session may take when a stream closes
#: (``close()`` is bounded whatever the server does; a session left behind expires).
CLOSE_DELETE_TIMEOUT = 1.0


def _refusal(failure: HttpFailure) -> Optional[VoxsyncError]:
    if failure.status in (401, 403, 404):
        return AuthError(
            f"Palabra refused {failure.what} with HTTP {failure.status} ({failure.detail}); "
            "check PALABRA_CLIENT_ID / PALABRA_CLIENT_SECRET and PALABRA_API_URL",
            status_code=failure.status,
        )
    return None  # the default: ServerError, retried for 5xx


def make_http(api_url: str, secrets: Tuple[str, ...]) -> HttpClient:
    """The HTTP client of one :class:`~voxsync.palabra.Palabra` (Palabra's retry policy)."""
    return HttpClient(
        api_url,
        timeout=REQUEST_TIMEOUT,
        retries=ATTEMPTS - 1,
        backoff=BACKOFF,
        headers={"User-Agent": "voxsync-palabra"},
        secrets=secrets,
        auth_statuses=(),
        errors=_refusal,
    )


def request(
    http: HttpClient,
    method: str,
    path: str,
    headers: Mapping[str, str],
    *,
    body: Optional[Mapping[str, Any]] = None,
    what: str,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Any:
    """One REST call; returns the JSON body (or None).

    Raises
    ------
    AuthError
        HTTP 401, 403 or 404 (wrong credentials or wrong base URL).
    SessionError
        Other refusals, or 5xx / network errors after the last attempt.
    """
    try:
        response = http.request(
            method,
            path,
            json=body,
            headers=dict(headers),
            expected=range(200, 400),
            timeout=timeout,
            retries=retries,
            what=what,
        )
    except AuthError:
        raise
    except VoxsyncError as exc:
        raise SessionError(
            f"{exc}" + (f" ({ATTEMPTS} attempts)" if _transient(exc) and retries is None else "")
        ) from exc
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _transient(exc: VoxsyncError) -> bool:
    status = getattr(exc, "status_code", None)
    return status is None or (isinstance(status, int) and status >= 500)


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
