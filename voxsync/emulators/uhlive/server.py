"""The local Uh!ive server: one TCP port, every path of the real services.

* ``POST /realms/<realm>/protocol/openid-connect/token``: OIDC token
  (client credentials or password grant, form-encoded);
* ``GET /socket/websocket?jwt=<token>&vsn=2.0.0``: the Conversation API
  (H2H), Phoenix channels v2;
* ``GET /bots`` with ``Authorization: bearer <token>``: the Recognition API
  (H2B), served by :func:`voxsync.emulators.uhlive.bots.serve_bot`.

A small front accepts each TCP connection and peeks at its first bytes: a
``POST`` goes to a minimal HTTP/1.1 handler (the token endpoint), anything
else to the ``websockets`` library's synchronous server connection, whose
opening handshake routes by path and checks the token (HTTP 403 when it is
missing, malformed, badly signed or expired; HTTP 404 for unknown paths).

Tokens are JWT-shaped (HS256, signed with a key made at start-up) and expire
after ``token_ttl`` seconds: like the real service, a token must be used to
*open* a socket in time; the socket may outlive it.

Every thread the emulator starts is named ``voxsync-emulator-uhlive-...``
and is joined by :meth:`UhliveEmulator.stop`; the library's own per-socket
receive threads are renamed the same way and joined too.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import time
from http import HTTPStatus
from typing import Any, Dict, List, Mapping, Optional, Tuple, cast
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection

from voxsync.emulators._cli import (
    add_server_arguments,
    engine_options_from_args,
    serve_until_stopped,
)
from voxsync.emulators.uhlive.bots import serve_bot
from voxsync.emulators.uhlive.conversation import ConversationHub
from voxsync.emulators.uhlive.state import UhliveFaults, UhliveState
from voxsync.emulators.wsfront import (
    HttpRequest,
    TrackedConnection,
    WebSocketFront,
    http_response,
    read_http_request,
)

# websockets logs request lines and headers at debug level: tokens in them are redacted

__all__ = [
    "DEFAULT_AUDIO_GAP_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "UhliveEmulator",
    "UhliveFaults",
    "UhliveState",
    "add_cli_arguments",
    "emulator_from_args",
    "run_cli",
]

log = logging.getLogger(__name__)

#: Seconds without any frame (pings included) after which a socket is closed.
DEFAULT_IDLE_TIMEOUT = 60.0
#: Seconds without audio after which a speaker's session ends.
DEFAULT_AUDIO_GAP_TIMEOUT = 10.0
#: Level of the folded 4-8 kHz band given to a wideband engine (see BandwidthExtender).
DEFAULT_BANDWIDTH_EXTENSION = 0.6
#: The OIDC realm of Uh!ive's own auth server.
DEFAULT_REALM = "uhlive"
#: Seconds a token may wait before it opens a socket.
DEFAULT_TOKEN_TTL = 300.0


# ---------------------------------------------------------------- tokens
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _TokenIssuer:
    def __init__(self, issuer: str, ttl: float) -> None:
        self._key = os.urandom(32)
        self.issuer = issuer
        self.ttl = ttl

    def issue(self, client_id: str, subject: str, ttl: Optional[float] = None) -> str:
        now = int(time.time())
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "iss": self.issuer,
            "azp": client_id,
            "sub": subject,
            "iat": now,
            "exp": now + int(self.ttl if ttl is None else ttl),
            "typ": "Bearer",
            "jti": _b64(os.urandom(9)),
        }
        signing = (
            f"{_b64(json.dumps(header, separators=(',', ':')).encode())}."
            f"{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
        )
        sig = hmac.new(self._key, signing.encode("ascii"), hashlib.sha256).digest()
        return f"{signing}.{_b64(sig)}"

    def verify(self, token: str) -> Optional[Dict[str, Any]]:
        """Claims of a valid, unexpired token; None otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signing = f"{parts[0]}.{parts[1]}".encode("ascii")
            expected = hmac.new(self._key, signing, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, UnicodeError):
            return None
        if not isinstance(claims, dict):
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp < time.time():
            return None
        return claims


# -------------------------------------------------------------- emulator
class UhliveEmulator(WebSocketFront):
    """A local Uh!ive server (auth, Conversation API, Recognition API).

    Parameters
    ----------
    host : str
        Interface to listen on.
    port : int
        TCP port; 0 picks a free one (see :attr:`port` after ``start()``).
    engine : None, str or Engine
        Recognition: ``"pocketsphinx"`` (default; real recognition of the
        8 kHz audio), ``"scripted"`` (canned transcripts, see
        ``engine_options``) or an engine from
        :func:`voxsync.emulators.engine.make_engine`.
    realm : str
        The OIDC realm in the token URL.
    clients : mapping of str to str, optional
        Accepted ``client_id -> client_secret``; default: any non-empty pair.
    users : mapping of str to str, optional
        Accepted ``username -> password`` for the password grant; default:
        any non-empty pair.
    token_ttl : float
        Seconds an issued token stays valid for opening a socket.
    idle_timeout : float
        Seconds without any frame from a client (WebSocket pings and Phoenix
        heartbeats count) before its socket is closed.
    audio_gap_timeout : float
        Seconds without audio after which a speaker's session ends
        (``speaker_left`` with ``reason: "audio_gap"``, then ``phx_close``).
    bandwidth_extension : float, optional
        How the 8 kHz audio is given to the engine: 0 feeds it as it is;
        a value in (0, 1] upsamples it to 16 kHz and mirrors the telephone
        band into the empty upper band at that level, which helps a
        wideband model a lot (see
        :class:`~voxsync.emulators.uhlive.conversation.BandwidthExtender`).
        Default: 0.6 with the pocketsphinx engine, 0 otherwise.
    faults : UhliveFaults, optional
        Faults to inject; also reachable as :attr:`faults`.
    stamp_events : bool
        Add ``"emitted_at"`` (``time.time()`` when the frame is written to the
        socket) to the payload of every pushed event, for latency measurements.
    engine_options
        Passed to ``make_engine`` when ``engine`` is a string.

    Examples
    --------
    ::

        with UhliveEmulator(engine="scripted", transcripts=["hello world"]) as emu:
            os.environ.update(emu.env())   # the four UHLIVE_* settings, credentials too
            conn = voxsync.connection("uhlive", model="en")
            ...
    """

    name = "uhlive"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        engine: Any = None,
        *,
        realm: str = DEFAULT_REALM,
        clients: Optional[Mapping[str, str]] = None,
        users: Optional[Mapping[str, str]] = None,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        audio_gap_timeout: float = DEFAULT_AUDIO_GAP_TIMEOUT,
        faults: Optional[UhliveFaults] = None,
        bandwidth_extension: Optional[float] = None,
        stamp_events: bool = False,
        **engine_options: Any,
    ) -> None:
        if bandwidth_extension is not None and not 0.0 <= bandwidth_extension <= 1.0:
            raise ValueError("bandwidth_extension must be None or between 0 and 1")
        super().__init__(host, port, engine, **engine_options)
        self.realm = realm
        self.clients = dict(clients) if clients is not None else None
        self.users = dict(users) if users is not None else None
        self.token_ttl = token_ttl
        self.state = UhliveState(
            faults or UhliveFaults(), idle_timeout, audio_gap_timeout, registry=self.threads
        )
        self.state.stopping = self.stopping
        self.state.stamp_events = stamp_events
        self.bandwidth_extension = bandwidth_extension
        self._issuer: Optional[_TokenIssuer] = None
        self._hub: Optional[ConversationHub] = None

    # ----------------------------------------------------------- info
    @property
    def faults(self) -> UhliveFaults:
        """The faults in force (change their attributes at any time)."""
        return self.state.faults

    @faults.setter
    def faults(self, value: UhliveFaults) -> None:
        self.state.faults = value

    @property
    def token_url(self) -> str:
        """Full URL of the token endpoint."""
        return f"{self.base_url}/realms/{self.realm}/protocol/openid-connect/token"

    def env(self) -> Dict[str, str]:
        """Environment variables that point the vendor's settings at this emulator.

        ``UHLIVE_AUTH_SERVER``, ``UHLIVE_API_URL``, ``UHLIVE_API_CLIENT`` and
        ``UHLIVE_API_SECRET`` (the configured client when there is exactly
        one, else a pair the emulator accepts), plus ``UHLIVE_AUTH_REALM``
        when the realm is not the default one.
        """
        env = {"UHLIVE_AUTH_SERVER": self.base_url, "UHLIVE_API_URL": self.ws_url}
        if self.realm != DEFAULT_REALM:
            env["UHLIVE_AUTH_REALM"] = self.realm
        if self.clients is None:
            env["UHLIVE_API_CLIENT"], env["UHLIVE_API_SECRET"] = "emulator", "emulator-secret"
        elif len(self.clients) == 1:
            ((cid, secret),) = self.clients.items()
            env["UHLIVE_API_CLIENT"], env["UHLIVE_API_SECRET"] = cid, secret
        return env

    def issue_token(
        self,
        client_id: str = "emulator",
        subject: Optional[str] = None,
        ttl: Optional[float] = None,
    ) -> str:
        """A valid access token without the HTTP round trip (for tests)."""
        if self._issuer is None:
            raise RuntimeError("start the emulator first")
        return self._issuer.issue(client_id, subject or client_id, ttl)

    def conversations(self) -> Dict[str, List[str]]:
        """Open conversations: topic -> members' speaker aliases (observers in brackets)."""
        return self._hub.snapshot() if self._hub else {}

    # ------------------------------------------------------ lifecycle
    def _prepare(self) -> None:
        alpha = self.bandwidth_extension
        if alpha is None:
            alpha = DEFAULT_BANDWIDTH_EXTENSION if self.engine_kind == "pocketsphinx" else 0.0
        self._hub = ConversationHub(self.engine, self.state, alpha)
        super()._prepare()

    def _serve(self, listener: socket.socket) -> None:
        self._issuer = _TokenIssuer(f"{self.base_url}/realms/{self.realm}", self.token_ttl)
        super()._serve(listener)

    def _serve_http(self, sock: socket.socket) -> None:
        request = read_http_request(sock)
        if request is None:
            http_response(
                sock, 400, {"error": "invalid_request", "error_description": "bad HTTP request"}
            )
            return
        status, body = self._token_endpoint(request)
        http_response(sock, status, body)

    def _token_endpoint(self, request: HttpRequest) -> Tuple[int, Dict[str, Any]]:
        path = urlsplit(request.target).path
        prefix, suffix = "/realms/", "/protocol/openid-connect/token"
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return 404, {"error": "not_found", "error_description": f"no such endpoint: {path}"}
        with self._lock:
            fail = self.state.faults.token_failures > 0
            if fail:
                self.state.faults.token_failures -= 1
        if fail:
            return 503, {"error": "temporarily_unavailable", "error_description": "overloaded"}
        realm = unquote(path[len(prefix) : -len(suffix)])
        if realm != self.realm:
            return 404, {"error": "Realm does not exist"}
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return 400, {
                "error": "invalid_request",
                "error_description": "the body must be application/x-www-form-urlencoded",
            }
        try:
            form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()}
        except UnicodeDecodeError:
            return 400, {"error": "invalid_request", "error_description": "body is not UTF-8"}
        grant = form.get("grant_type", "")
        if grant not in ("client_credentials", "password"):
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"Unsupported grant_type {grant!r}"
                if grant
                else "Missing form parameter: grant_type",
            }
        client_id = form.get("client_id", "")
        secret = form.get("client_secret", "")
        if not client_id:
            return 400, {
                "error": "invalid_request",
                "error_description": "Missing form parameter: client_id",
            }
        if not self._client_ok(client_id, secret):
            return 401, {
                "error": "invalid_client",
                "error_description": "Invalid client or Invalid client credentials",
            }
        subject = client_id
        if grant == "password":
            username, password = form.get("username", ""), form.get("password", "")
            if not self._user_ok(username, password):
                return 401, {
                    "error": "invalid_grant",
                    "error_description": "Invalid user credentials",
                }
            subject = username
        if self._issuer is None:
            return 503, {"error": "temporarily_unavailable", "error_description": "stopping"}
        token = self._issuer.issue(client_id, subject)
        return 200, {
            "access_token": token,
            "expires_in": int(self.token_ttl),
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }

    def _client_ok(self, client_id: str, secret: str) -> bool:
        if self.clients is None:
            return bool(client_id and secret)
        expected = self.clients.get(client_id)
        return expected is not None and hmac.compare_digest(expected, secret)

    def _user_ok(self, username: str, password: str) -> bool:
        if self.users is None:
            return bool(username and password)
        expected = self.users.get(username)
        return expected is not None and hmac.compare_digest(expected, password)

    def _verify(self, token: str) -> Optional[Dict[str, Any]]:
        return self._issuer.verify(token) if self._issuer is not None and token else None

    # ------------------------------------------------------ websocket
    def _route(self, conn: ServerConnection, request: Request, url: Any) -> Any:
        route = url.path.rstrip("/")
        if route == "/socket/websocket":
            query = parse_qs(url.query)
            vsn = query.get("vsn", ["1.0.0"])[0]
            if not vsn.startswith("2."):
                return conn.respond(
                    HTTPStatus.BAD_REQUEST, "unsupported serializer version; use vsn=2.0.0\n"
                )
            token = query.get("jwt", [""])[0]
            claims = self._verify(token)
            if claims is None:
                return self._forbidden(conn)
            return ("conversation", token, claims)
        if route == "/bots":
            auth = request.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            claims = self._verify(token.strip()) if scheme.lower() == "bearer" else None
            if claims is None:
                return self._forbidden(conn)
            return ("bots", token.strip(), claims)
        return conn.respond(HTTPStatus.NOT_FOUND, f"no such path: {url.path}\n")

    @staticmethod
    def _forbidden(conn: ServerConnection) -> Response:
        response = conn.respond(HTTPStatus.FORBIDDEN, "")
        return response

    def _serve_route(self, conn: TrackedConnection, route: Any) -> None:
        kind, token, claims = route
        if kind == "conversation":
            cast(ConversationHub, self._hub).serve(conn, claims)
        else:
            serve_bot(conn, engine=self.engine, state=self.state, token=token)


# ------------------------------------------------------------------- CLI
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``voxsync emulate uhlive``."""
    add_server_arguments(parser)
    parser.add_argument("--realm", default="uhlive", help="OIDC realm (default %(default)s)")
    parser.add_argument("--client-id", help="accept only this client id (with --client-secret)")
    parser.add_argument("--client-secret", help="the secret of --client-id")
    parser.add_argument(
        "--bandwidth-extension",
        type=float,
        metavar="LEVEL",
        help="pocketsphinx: level (0-1) of the 4-8 kHz band folded into the 8 kHz audio "
        "(default 0.6; 0 disables)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=DEFAULT_TOKEN_TTL,
        help="seconds a token may wait before opening a socket",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help="close sockets silent this many seconds (default %(default)s)",
    )
    parser.add_argument(
        "--audio-gap",
        type=float,
        default=DEFAULT_AUDIO_GAP_TIMEOUT,
        help="end a speaker's session after this many seconds without audio (default %(default)s)",
    )
    parser.add_argument(
        "--drop-after-frames", type=int, help="fault: cut each socket after N received frames"
    )
    parser.add_argument(
        "--refuse-join", metavar="REASON", help="fault: refuse every join with REASON"
    )
    parser.add_argument(
        "--phx-error-after-frames",
        type=int,
        help="fault: crash the channel (phx_error) after N frames",
    )
    parser.add_argument(
        "--event-delay", type=float, default=0.0, help="fault: delay every pushed event (s)"
    )
    parser.add_argument(
        "--malformed-after-frames", type=int, help="fault: send a malformed frame after N frames"
    )


def emulator_from_args(args: argparse.Namespace) -> UhliveEmulator:
    """Build an (unstarted) emulator from :func:`add_cli_arguments` options."""
    engine_options = engine_options_from_args(args)
    clients = None
    if args.client_id or args.client_secret:
        if not (args.client_id and args.client_secret):
            raise SystemExit("--client-id and --client-secret go together")
        clients = {args.client_id: args.client_secret}
    faults = UhliveFaults(
        drop_after_frames=args.drop_after_frames,
        refuse_join=args.refuse_join,
        phx_error_after_frames=args.phx_error_after_frames,
        event_delay=args.event_delay,
        malformed_after_frames=args.malformed_after_frames,
    )
    return UhliveEmulator(
        args.host,
        args.port,
        args.engine,
        realm=args.realm,
        clients=clients,
        token_ttl=args.token_ttl,
        idle_timeout=args.idle_timeout,
        audio_gap_timeout=args.audio_gap,
        faults=faults,
        bandwidth_extension=args.bandwidth_extension,
        **engine_options,
    )


def run_cli(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C or SIGTERM; print the base URL first."""
    return serve_until_stopped(emulator_from_args(args))
