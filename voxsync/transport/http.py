"""One HTTP client with one error and retry policy for every provider.

Every REST call voxsync makes (aiOla's token and session calls, the Uh!ive
token request, ...) goes through :class:`HttpClient`, so they all behave the
same way:

* **Timeouts**: each attempt has a timeout (connect and read), set per client
  and overridable per request.
* **Retries**: network errors, timeouts and HTTP 5xx are retried with
  exponential backoff (``backoff``, ``2 * backoff``, ...); by default a call
  makes 3 attempts (``retries=2``). 4xx answers are never retried.
* **Typed errors**: 401 and 403 (plus any status listed in ``auth_statuses``)
  raise :class:`~voxsync.errors.AuthenticationError` at once; other refusals
  raise :class:`~voxsync.errors.ServerError` carrying ``status_code``, the
  service's ``code`` when it gave one, a redacted ``detail`` and ``retryable``
  (True for 5xx and 429); no answer in time raises
  :class:`~voxsync.errors.TimeoutError`, an unreachable host
  :class:`~voxsync.errors.ConnectionError`, a body that is not what was asked
  for :class:`~voxsync.errors.RemoteProtocolError`.
* **No secrets in messages**: every message goes through
  :func:`voxsync.redact.redact`, with the client's ``secrets``, the
  request's ``secrets`` and any ``Authorization`` header value removed.

The retry loop is written out rather than left to urllib3's ``Retry`` so
that each failed attempt becomes a typed, redacted error (logged at INFO
before the retry) and :meth:`HttpClient.close` cuts a pending backoff short.

A provider that needs a finer mapping (aiOla's 409 concurrency limit, say)
passes ``errors=``: a function that receives the :class:`HttpFailure` and
returns the exception to raise, or None for the default one.

Examples
--------
>>> http = HttpClient("https://api.example.org", timeout=10)        # doctest: +SKIP
>>> body = http.request_json("POST", "/v1/sessions", json={"lang": "en"},
...                          headers={"Authorization": "Bearer " + key},
...                          expected=(200, 201))                   # doctest: +SKIP
>>> http.close()                                                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Tuple

import requests

from voxsync.errors import (
    AuthenticationError,
    ConnectionError,
    RemoteProtocolError,
    ServerError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.redact import redact

__all__ = ["DEFAULT_USER_AGENT", "HttpClient", "HttpFailure", "default_error", "error_fields"]

log = logging.getLogger("voxsync.http")

DEFAULT_USER_AGENT = "voxsync"
#: Longest excerpt of a non-JSON error body kept in a message.
MAX_DETAIL = 200


@dataclass(frozen=True)
class HttpFailure:
    """An HTTP answer outside ``expected``, as handed to an ``errors=`` hook.

    Attributes
    ----------
    what : str
        What the call was for (``"create session"``), first word of every message.
    method : str
    url : str
        Redacted.
    status : int
    reason : str
        The status line's reason phrase.
    body : object
        The parsed JSON body, or None when the body was not JSON.
    detail : str
        The service's explanation (message, ``error_description``, start of
        the body or the reason phrase), already redacted.
    code : str or None
        The service's error code, when the body had one.
    secrets : tuple of str
        The literal secrets of this request: redact anything else you add.
    """

    what: str
    method: str
    url: str
    status: int
    reason: str
    body: Any
    detail: str
    code: Optional[str]
    secrets: Tuple[str, ...] = field(repr=False, default=())

    @property
    def raw(self) -> Optional[Mapping[str, Any]]:
        """The body when it is a JSON object, else None."""
        return self.body if isinstance(self.body, Mapping) else None


ErrorHook = Callable[[HttpFailure], Optional[VoxsyncError]]


def error_fields(body: Any) -> Tuple[Optional[str], Optional[str]]:
    """``(message, code)`` from the usual shapes of a JSON error body.

    Understands ``{"message", "code", "details"}``, the same nested under
    ``"error"``, and OAuth's ``{"error", "error_description"}``.
    """
    if not isinstance(body, Mapping):
        return None, None
    inner = body.get("error")
    src: Mapping[str, Any] = inner if isinstance(inner, Mapping) else body
    message = src.get("message")
    code = src.get("code")
    if isinstance(inner, str):  # OAuth 2: error (a code) + error_description
        description = body.get("error_description")
        message = f"{inner}: {description}" if description else (message or inner)
        if code is None and inner.isidentifier():
            code = inner
    details = src.get("details")
    if message is not None and details:
        message = f"{message} ({details})"
    return (
        str(message) if message is not None else None,
        str(code) if code is not None else None,
    )


class HttpClient:
    """An HTTP connection pool with voxsync's timeout, retry and error policy.

    Thread-safe: one client may serve several threads. Close it with
    :meth:`close` (or a ``with`` block) to release its pooled sockets.

    Parameters
    ----------
    base_url : str
        Prefix for relative paths given to :meth:`request` (``""``: paths are
        full URLs).
    timeout : float
        Seconds per attempt, for connecting and for each read.
    retries : int
        Further attempts after a network error, timeout or 5xx (0: one attempt).
    backoff : float
        Seconds before the first retry; doubled for each next one.
    headers : mapping, optional
        Sent with every request (a request's own headers win).
    secrets : iterable of str
        Literal values to redact from every message (API keys, passwords).
    auth_statuses : collection of int
        Statuses that mean "credentials refused" (default 401 and 403; OAuth
        token endpoints add 400).
    errors : callable, optional
        ``errors(failure) -> exception or None``: a provider's own mapping of
        refusals, tried before the default one.
    session : requests.Session, optional
        Use this session (proxies, adapters) instead of a new one; it is not
        closed by :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        headers: Optional[Mapping[str, str]] = None,
        secrets: Iterable[str] = (),
        auth_statuses: Collection[int] = (401, 403),
        errors: Optional[ErrorHook] = None,
        session: Optional[requests.Session] = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.auth_statuses = frozenset(auth_statuses)
        self._secrets = tuple(s for s in secrets if s)
        self._errors = errors
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        if self._owns_session:
            self._session.headers["User-Agent"] = DEFAULT_USER_AGENT
        self._headers = dict(headers or {})
        self._cond = threading.Condition()
        self._closes = 0  # close() calls so far: cuts the backoffs pending then

    def __repr__(self) -> str:
        return f"<HttpClient {redact(self.base_url or '(absolute URLs)', self._secrets)}>"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the pooled connections and cut pending retry backoffs short.

        Idempotent; never raises. The client stays usable: a later request
        opens a new connection.
        """
        with self._cond:
            self._closes += 1
            self._cond.notify_all()
        if self._owns_session:
            try:
                self._session.close()
            except Exception:  # pragma: no cover - requests does not raise here
                pass

    def url(self, path: str) -> str:
        """The full URL for ``path`` (returned unchanged when it is absolute)."""
        if "://" in path or not self.base_url:
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        expected: Collection[int] = (200,),
        timeout: Optional[float] = None,
        retries: Optional[int] = None,
        deadline: Optional[float] = None,
        secrets: Iterable[str] = (),
        what: Optional[str] = None,
    ) -> requests.Response:
        """Send a request, retrying per the policy; return the answer or raise.

        Parameters
        ----------
        method : str
            ``"GET"``, ``"POST"``, ...
        path : str
            Relative to ``base_url``, or a full URL.
        json, data, files, params
            As for :func:`requests.request`.
        headers : mapping, optional
            Added to the client's headers for this request.
        expected : collection of int
            Statuses that count as success; anything else raises.
        timeout, retries : optional
            Override the client's values for this call (a best-effort call on
            a close path passes ``retries=0`` and a short timeout).
        deadline : float, optional
            A :func:`time.monotonic` instant that bounds the whole call,
            retries included: each attempt's timeout is cut to the time left
            and no retry starts that could not finish before it.
        secrets : iterable of str
            More literal values to redact for this call (a bearer token).
        what : str, optional
            Names the call in messages; default ``"METHOD path"``.

        Returns
        -------
        requests.Response
            With a status in ``expected``.

        Raises
        ------
        AuthenticationError
            Status in ``auth_statuses`` (not retried).
        ServerError
            Any other status outside ``expected``, after the retries for 5xx.
        TimeoutError, ConnectionError
            No answer in time / host unreachable, after the retries.
        """
        url = self.url(path)
        all_headers = {**self._headers, **(headers or {})}
        hidden = list(self._secrets) + [s for s in secrets if s]
        for name, value in all_headers.items():
            if name.lower() == "authorization" and value:
                hidden.append(value.split(" ", 1)[-1])
        label = what or f"{method} {redact(path, hidden)}"
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            closes = self._closes
        attempts = 1 + (self.retries if retries is None else retries)
        for attempt in range(1, attempts + 1):
            limit = timeout
            if deadline is not None:
                limit = max(0.001, min(timeout, deadline - time.monotonic()))
            error = self._attempt(
                method, url, label, hidden, expected, limit, all_headers, json, data, files, params
            )
            if isinstance(error, requests.Response):
                return error
            delay = self.backoff * 2 ** (attempt - 1)
            if not _retryable(error) or attempt == attempts:
                raise error
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise error
            log.info("%s failed (%s); retry %d in %.1f s", label, error, attempt, delay)
            with self._cond:
                if self._cond.wait_for(lambda: self._closes != closes, delay):
                    raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def request_json(self, method: str, path: str, **kwargs: Any) -> Dict[str, Any]:
        """:meth:`request`, then the body as a JSON object.

        Raises
        ------
        RemoteProtocolError
            The body is not a JSON object.
        """
        what = kwargs.get("what") or f"{method} {path}"
        response = self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise RemoteProtocolError(
                f"{redact(what)}: HTTP {response.status_code} with a body that is not JSON"
            ) from exc
        if not isinstance(body, dict):
            raise RemoteProtocolError(
                f"{redact(what)}: expected a JSON object, got {type(body).__name__}"
            )
        return body

    # ------------------------------------------------------------ internals
    def _attempt(
        self,
        method: str,
        url: str,
        label: str,
        hidden: List[str],
        expected: Collection[int],
        timeout: float,
        headers: Dict[str, str],
        json: Any,
        data: Any,
        files: Any,
        params: Optional[Mapping[str, Any]],
    ) -> Any:
        """One attempt: the response when expected, else the exception to raise."""
        shown = redact(url, hidden)
        try:
            response = self._session.request(
                method,
                url,
                headers=headers,
                json=json,
                data=data,
                files=files,
                params=params,
                timeout=timeout,
            )
        except requests.Timeout as exc:
            error: VoxsyncError = TimeoutError(
                f"{label}: no answer from {shown} within {timeout:g} s"
            )
            error.__cause__ = exc
            return error
        except requests.RequestException as exc:
            detail = redact(f"{type(exc).__name__}: {exc}", hidden)
            error = ConnectionError(f"{label}: cannot reach {shown}: {detail}")
            error.__cause__ = exc
            return error
        if response.status_code in expected:
            return response
        return self._failure(response, method, shown, label, hidden)

    def _failure(
        self,
        response: requests.Response,
        method: str,
        shown: str,
        label: str,
        hidden: List[str],
    ) -> VoxsyncError:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        message, code = error_fields(body)
        if message is None:
            message = (response.text or "").strip()[:MAX_DETAIL] or response.reason or ""
        detail = redact(message or f"HTTP {status}", hidden)
        failure = HttpFailure(
            what=label,
            method=method,
            url=shown,
            status=status,
            reason=response.reason or "",
            body=body,
            detail=detail,
            code=code,
            secrets=tuple(hidden),
        )
        if self._errors is not None:
            custom = self._errors(failure)
            if custom is not None:
                return custom
        return default_error(failure, self.auth_statuses)


def default_error(
    failure: HttpFailure, auth_statuses: Collection[int] = (401, 403)
) -> VoxsyncError:
    """The exception :class:`HttpClient` raises for ``failure`` by default."""
    status = failure.status
    if status in auth_statuses:
        return AuthenticationError(
            f"{failure.what}: refused by {failure.url} (HTTP {status}): {failure.detail}",
            status_code=status,
        )
    return ServerError(
        f"{failure.what}: {failure.detail} (HTTP {status})",
        code=failure.code,
        retryable=status >= 500 or status == 429,
        raw=failure.raw,
        status_code=status,
    )


def _retryable(error: Any) -> bool:
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(error, ServerError) and isinstance(status, int) and status >= 500
