"""The shared HTTP policy (voxsync.transport.http) against a real loopback server."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, List, Optional, Tuple

import pytest

from voxsync.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionError,
    RemoteProtocolError,
    ServerError,
    TimeoutError,
)
from voxsync.transport.http import HttpClient, HttpFailure, error_fields

SECRET = "sk-very-secret-value"


class Script:
    """Answers to give, in order (the last one repeats), and the requests seen."""

    def __init__(self) -> None:
        self.answers: List[Tuple[int, Any]] = [(200, {"ok": True})]
        self.seen: List[Tuple[str, str, Optional[str], bytes]] = []
        self.lock = threading.Lock()

    def next(self) -> Tuple[int, Any]:
        with self.lock:
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture()
def server() -> Iterator[Tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with script.lock:
                auth = self.headers.get("Authorization")
                script.seen.append((self.command, self.path, auth, body))
            status, payload = script.next()
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815 (http.server's names)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_success_returns_the_answer_and_joins_paths(server: Tuple[str, Script]) -> None:
    base, script = server
    with HttpClient(base + "/api/", headers={"Authorization": f"Bearer {SECRET}"}) as http:
        body = http.request_json("POST", "/v1/things", json={"a": 1}, params={"q": "x"})
    assert body == {"ok": True}
    method, path, auth, sent = script.seen[0]
    assert (method, path, auth) == ("POST", "/api/v1/things?q=x", f"Bearer {SECRET}")
    assert json.loads(sent) == {"a": 1}


def test_5xx_is_retried_with_backoff_then_succeeds(server: Tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(503, {"message": "busy"}), (502, b"bad gateway"), (200, {"ok": 1})]
    with HttpClient(base, backoff=0.05) as http:
        started = time.monotonic()
        assert http.request_json("GET", "/x") == {"ok": 1}
        elapsed = time.monotonic() - started
    assert len(script.seen) == 3  # 3 attempts by default
    assert elapsed >= 0.05 + 0.1  # backoff doubles


def test_5xx_gives_up_after_the_retries(server: Tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(500, {"error": {"message": "boom", "code": "INTERNAL"}})]
    with HttpClient(base, retries=1, backoff=0.01) as http, pytest.raises(ServerError) as info:
        http.request("GET", "/x", what="get x")
    assert len(script.seen) == 2
    err = info.value
    assert err.status_code == 500 and err.retryable and err.code == "INTERNAL"
    assert "get x" in str(err) and "boom" in str(err)


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_raise_authentication_error_at_once(
    server: Tuple[str, Script], status: int
) -> None:
    base, script = server
    script.answers = [(status, {"message": f"key {SECRET} refused"})]
    http = HttpClient(base, secrets=[SECRET], backoff=0.01)
    with http, pytest.raises(AuthenticationError) as info:
        http.request("POST", "/token")
    assert len(script.seen) == 1
    assert info.value.status_code == status
    assert SECRET not in str(info.value) and "refused" in str(info.value)


def test_other_4xx_is_not_retried_and_carries_status_and_redacted_detail(
    server: Tuple[str, Script],
) -> None:
    base, script = server
    bearer = "tok-1234567890"
    script.answers = [(422, {"message": f"bad field, token={bearer}", "details": "lang"})]
    with HttpClient(base, backoff=0.01) as http, pytest.raises(ServerError) as info:
        http.request("POST", "/x", headers={"Authorization": f"Bearer {bearer}"})
    assert len(script.seen) == 1
    err = info.value
    assert err.status_code == 422 and not err.retryable
    assert "bad field" in err.detail and "lang" in err.detail
    assert bearer not in str(err) and bearer not in err.detail


def test_expected_statuses_and_non_json_bodies(server: Tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(201, b"created")]
    with HttpClient(base) as http:
        assert http.request("POST", "/x", expected=(200, 201)).status_code == 201
        with pytest.raises(RemoteProtocolError, match="not JSON"):
            http.request_json("POST", "/x", expected=(201,))
        script.answers = [(200, [1, 2])]
        with pytest.raises(RemoteProtocolError, match="JSON object"):
            http.request_json("GET", "/x")


def test_error_hook_maps_a_provider_refusal(server: Tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(409, {"error": {"message": "too many", "code": "MAX_CONCURRENCY_REACHED"}})]
    seen: List[HttpFailure] = []

    def errors(failure: HttpFailure) -> Optional[ConcurrencyLimitError]:
        seen.append(failure)
        if failure.code == "MAX_CONCURRENCY_REACHED":
            return ConcurrencyLimitError(failure.detail, code=failure.code)
        return None

    http = HttpClient(base, errors=errors)
    with http, pytest.raises(ConcurrencyLimitError, match="too many"):
        http.request("POST", "/session")
    assert seen[0].status == 409 and seen[0].raw is not None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there now


def test_network_errors_are_retried_then_raised_without_secrets() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/x?api_key={SECRET}"
    with HttpClient(backoff=0.01, retries=2) as http:
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="cannot reach") as info:
            http.request("GET", url)
        assert time.monotonic() - started >= 0.01 + 0.02
    assert SECRET not in str(info.value)


def test_a_silent_server_times_out_within_the_deadline() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        with HttpClient(timeout=5, backoff=0.1) as http:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="no answer"):
                http.request("GET", f"http://127.0.0.1:{port}/", deadline=started + 0.6)
            elapsed = time.monotonic() - started
        assert 0.3 <= elapsed < 2.0, elapsed  # retried within the budget, not 3 x 5 s
    finally:
        listener.close()


def test_close_cuts_a_backoff_short(server: Tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(503, {"message": "busy"})]
    http = HttpClient(base, backoff=30)
    closer = threading.Timer(0.3, http.close)
    closer.start()
    started = time.monotonic()
    with pytest.raises(ServerError):
        http.request("GET", "/x")
    closer.join()
    assert time.monotonic() - started < 5
    assert len(script.seen) == 1


def test_error_fields_shapes() -> None:
    assert error_fields({"error": "invalid_client", "error_description": "Bad"}) == (
        "invalid_client: Bad",
        "invalid_client",
    )
    assert error_fields({"error": "Realm does not exist"}) == ("Realm does not exist", None)
    assert error_fields({"message": "m", "code": "C", "details": "d"}) == ("m (d)", "C")
    assert error_fields({"error": {"message": "m", "code": "C"}}) == ("m", "C")
    assert error_fields(["x"]) == (None, None)
    with HttpClient(f"http://h/?token={SECRET}") as http:
        assert SECRET not in repr(http) and "***" in repr(http)
