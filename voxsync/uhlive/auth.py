"""Uh!ive authentication: OIDC token request and service URLs.

Both Uh!ive APIs take an access token issued by an OpenID Connect server
(``POST /realms/<realm>/protocol/openid-connect/token``, form-encoded,
client-credentials or password grant). The token must be used to open a
WebSocket within a few minutes; the socket may outlive it.

Settings come from the vendor's environment variables, read at call time:

======================  ==========================  =================================
variable                default                     meaning
======================  ==========================  =================================
``UHLIVE_API_CLIENT``   (none)                      client id
``UHLIVE_API_SECRET``   (none)                      client secret
``UHLIVE_AUTH_SERVER``  ``id.uh.live``              auth host, or a full URL such as
                                                    ``http://127.0.0.1:8765``
``UHLIVE_AUTH_REALM``   ``uhlive``                  realm
``UHLIVE_API_URL``      ``wss://api.uh.live``       API base URL (``ws``/``wss``;
                                                    ``http``/``https`` are mapped)
======================  ==========================  =================================

Pointing the two URL variables at a local emulator (``voxsync emulate
uhlive``) is all it takes to run unchanged client code against it.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional, Tuple
from urllib.parse import quote, urlsplit

from voxsync.errors import ConfigurationError, RemoteProtocolError
from voxsync.redact import redact
from voxsync.transport.http import HttpClient

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_AUTH_SERVER",
    "DEFAULT_REALM",
    "api_base_url",
    "auth_token_url",
    "build_authentication_request",
    "build_bot_url",
    "build_conversation_url",
    "credentials_from_env",
    "get_token",
]

DEFAULT_AUTH_SERVER = "id.uh.live"
DEFAULT_REALM = "uhlive"
DEFAULT_API_URL = "wss://api.uh.live"

ENV_CLIENT = "UHLIVE_API_CLIENT"
ENV_SECRET = "UHLIVE_API_SECRET"
ENV_AUTH_SERVER = "UHLIVE_AUTH_SERVER"
ENV_REALM = "UHLIVE_AUTH_REALM"
ENV_API_URL = "UHLIVE_API_URL"


def _strip(url: str) -> str:
    return url.strip().rstrip("/")


def auth_token_url(auth_server: Optional[str] = None, realm: Optional[str] = None) -> str:
    """URL of the token endpoint.

    Parameters
    ----------
    auth_server : str, optional
        A bare host (``"id.uh.live"``, used with ``https``) or a full URL
        (``"http://127.0.0.1:8765"``). Default: ``$UHLIVE_AUTH_SERVER`` or
        ``id.uh.live``.
    realm : str, optional
        Default: ``$UHLIVE_AUTH_REALM`` or ``uhlive``.
    """
    server = _strip(auth_server or os.environ.get(ENV_AUTH_SERVER) or DEFAULT_AUTH_SERVER)
    realm = (realm or os.environ.get(ENV_REALM) or DEFAULT_REALM).strip()
    if not server:
        raise ConfigurationError(f"empty auth server; set {ENV_AUTH_SERVER} or pass auth_server")
    if "://" not in server:
        server = f"https://{server}"
    scheme = urlsplit(server).scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(
            f"auth server must be an http(s) URL or a bare host name, got {redact(server)!r}"
        )
    return f"{server}/realms/{quote(realm, safe='')}/protocol/openid-connect/token"


def api_base_url(api_url: Optional[str] = None) -> str:
    """The API's WebSocket base URL (``ws://`` or ``wss://``, no trailing slash).

    ``http``/``https`` URLs are mapped to ``ws``/``wss`` and a bare host gets
    ``wss://``, so the base URL an emulator prints can be used as it is.
    """
    url = _strip(api_url or os.environ.get(ENV_API_URL) or DEFAULT_API_URL)
    if "://" not in url:
        url = f"wss://{url}"
    scheme, _, rest = url.partition("://")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("ws", "wss") or not rest:
        raise ConfigurationError(
            f"API URL must be a ws(s):// or http(s):// URL, got {redact(url)!r}"
        )
    return f"{scheme}://{rest}"


def build_authentication_request(
    client_id: str, client_secret: str, user_id: str = "", user_pwd: str = ""
) -> Tuple[str, Dict[str, str]]:
    """Build the token request: ``(url, form_data)`` for an HTTP POST.

    The client-credentials grant is used, or the password grant when
    ``user_id`` is given. The auth server and realm come from
    ``UHLIVE_AUTH_SERVER`` and ``UHLIVE_AUTH_REALM``.

    Examples
    --------
    >>> import requests                                     # doctest: +SKIP
    >>> url, form = build_authentication_request("my-client", "my-secret")
    >>> login = requests.post(url, data=form, timeout=10)   # doctest: +SKIP
    >>> login.raise_for_status()                            # doctest: +SKIP
    >>> token = login.json()["access_token"]                # doctest: +SKIP
    """
    return auth_token_url(), _form(client_id, client_secret, user_id, user_pwd)


def _form(client_id: str, client_secret: str, user_id: str, user_pwd: str) -> Dict[str, str]:
    form = {
        "client_id": client_id,
        "grant_type": "password" if user_id else "client_credentials",
        "client_secret": client_secret,
    }
    if user_id:
        form["username"] = user_id
        form["password"] = user_pwd
    return form


def credentials_from_env(
    client_id: Optional[str] = None, client_secret: Optional[str] = None
) -> Tuple[str, str]:
    """Return ``(client_id, client_secret)``, filling blanks from the environment.

    Raises
    ------
    ConfigurationError
        When a value is neither given nor set in ``UHLIVE_API_CLIENT`` /
        ``UHLIVE_API_SECRET``.
    """
    cid = client_id or os.environ.get(ENV_CLIENT, "")
    secret = client_secret or os.environ.get(ENV_SECRET, "")
    if not cid:
        raise ConfigurationError(f"no Uh!ive client id: pass client_id or set {ENV_CLIENT}")
    if not secret:
        raise ConfigurationError(f"no Uh!ive client secret: pass client_secret or set {ENV_SECRET}")
    return cid, secret


def get_token(
    client_id: Optional[str] = None,
    client_secret: Optional[str] = None,
    user_id: str = "",
    user_pwd: str = "",
    *,
    timeout: float = 10.0,
    retries: int = 2,
    session: Any = None,
    auth_server: Optional[str] = None,
    realm: Optional[str] = None,
) -> str:
    """Request an access token and return it.

    Parameters
    ----------
    client_id, client_secret : str, optional
        Default to ``UHLIVE_API_CLIENT`` / ``UHLIVE_API_SECRET``.
    user_id, user_pwd : str
        For the password grant.
    timeout : float
        Seconds for the whole request, retries included.
    retries : int
        Further attempts after a network error, a timeout or an HTTP 5xx
        (the policy of :mod:`voxsync.transport.http`); 4xx are not retried.
    session : requests.Session, optional
        Reuse a session (connection pooling, proxies).
    auth_server, realm : str, optional
        Override ``UHLIVE_AUTH_SERVER`` / ``UHLIVE_AUTH_REALM`` (see
        :func:`auth_token_url`).

    Raises
    ------
    AuthenticationError
        The server refused the credentials (HTTP 400/401/403); the message
        carries the server's explanation, without any secret.
    TimeoutError
        No answer within ``timeout``.
    ConnectionError
        The server could not be reached.
    ServerError
        Any other HTTP error (``retryable`` for 5xx and 429).
    RemoteProtocolError
        The answer had no ``access_token``.
    """
    cid, secret = credentials_from_env(client_id, client_secret)
    url = auth_token_url(auth_server, realm)
    form = _form(cid, secret, user_id, user_pwd)
    http = HttpClient(
        timeout=timeout,
        retries=retries,
        secrets=[secret, user_pwd],
        auth_statuses=(400, 401, 403),  # OAuth 2: invalid_client / invalid_grant
        session=session,
    )
    try:
        body = http.request_json(
            "POST",
            url,
            data=form,
            deadline=time.monotonic() + timeout,
            what="Uh!ive token request",
        )
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(
            f"the auth server at {redact(url)} answered without an access_token"
        ) from exc
    finally:
        http.close()
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise RemoteProtocolError(
            f"the auth server at {redact(url)} answered without an access_token"
        )
    return token


def build_conversation_url(token: str, api_url: Optional[str] = None) -> str:
    """URL of the Conversation (H2H) WebSocket for ``token``.

    ``wss://api.uh.live/socket/websocket?jwt=<token>&vsn=2.0.0`` by default;
    the base comes from ``api_url`` or ``UHLIVE_API_URL``. The URL contains the
    token: do not log it (:func:`voxsync.redact.redact` removes it).
    """
    return f"{api_base_url(api_url)}/socket/websocket?jwt={quote(token, safe='')}&vsn=2.0.0"


def build_bot_url(api_url: Optional[str] = None) -> str:
    """URL of the Recognition (H2B) WebSocket; the token goes in a header."""
    return f"{api_base_url(api_url)}/bots"
