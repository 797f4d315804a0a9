"""Keep credentials out of logs, reprs and exception messages.

voxsync passes every URL, header set and server message it logs or puts in
an exception through :func:`redact`. Users can do the same with their own
log lines::

    from voxsync.redact import redact
    log.info("connecting to %s", redact(url))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Dict

__all__ = ["REDACTED", "SECRET_NAMES", "RedactingFilter", "redact", "redact_headers", "secret_repr"]

REDACTED = "***"

#: Parameter / header / field names whose values are secrets (compared case-insensitively).
SECRET_NAMES = frozenset(
    {
        "token",
        "jwt",
        "access_token",
        "accesstoken",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "x-api-key",
        "x-aiola-api-token",
        "x-aiola-api-key",
        "client_secret",
        "clientsecret",
        "password",
        "user_pwd",
        "secret",
        "authorization",
    }
)

_NAMES = "|".join(sorted((re.escape(n) for n in SECRET_NAMES), key=len, reverse=True))
# name=value in query strings and form bodies; name: value / "name": "value" in headers and JSON
_KV = re.compile(
    rf"(?i)(?<![\w-])({_NAMES})(\"?\s*[=:]\s*\"?)(?!(?:bearer|basic)\s)([^&\s\"',;}}]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# a JWT: three base64url segments, the first starting like '{"' encoded
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def redact(text: Any, secrets: Iterable[str] = ()) -> str:
    """Return ``str(text)`` with credentials replaced by ``***``.

    Removes values of secret-named query parameters, form fields, headers and
    JSON keys (see :data:`SECRET_NAMES`), ``Bearer``/``Basic`` credentials,
    anything shaped like a JWT, and every literal string in ``secrets``.

    Parameters
    ----------
    text : object
        Converted with ``str()`` first.
    secrets : iterable of str
        Exact values to remove wherever they appear (API keys, passwords).
        Values shorter than 4 characters are ignored, to avoid mangling text.

    Examples
    --------
    >>> redact("wss://h/socket/websocket?jwt=abc.def.ghi&vsn=2.0.0")
    'wss://h/socket/websocket?jwt=***&vsn=2.0.0'
    >>> redact("Authorization: Bearer s3cr3t")
    'Authorization: Bearer ***'
    """
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, REDACTED)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", out)
    out = _KV.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", out)
    return _JWT.sub(REDACTED, out)


def redact_headers(headers: Mapping[str, Any]) -> Dict[str, Any]:
    """Copy of ``headers`` with secret-named values replaced by ``***``."""
    return {k: (REDACTED if k.lower() in SECRET_NAMES else redact(v)) for k, v in headers.items()}


def secret_repr(value: Any) -> str:
    """What a ``repr`` shows for a secret: ``'***'`` if set, ``None`` otherwise."""
    return "None" if value is None else repr(REDACTED)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (see :func:`redact`).

    voxsync attaches it to the loggers it hands to other libraries
    (python-socketio, websockets), whose messages can carry URLs with tokens.
    Attach it to a logger, not a handler, so every handler sees the redacted
    text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True
