"""Uh!ive authentication functions against the emulator's OIDC token endpoint."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest
import requests

from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    ServerError,
    TimeoutError,
)
from voxsync.uhlive import build_authentication_request, build_conversation_url, get_token
from voxsync.uhlive.auth import build_bot_url

ENV = (
    "UHLIVE_API_CLIENT",
    "UHLIVE_API_SECRET",
    "UHLIVE_AUTH_SERVER",
    "UHLIVE_AUTH_REALM",
    "UHLIVE_API_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def emu() -> Iterator[UhliveEmulator]:
    with UhliveEmulator(
        engine="scripted", clients={"acme": "s3cr3t-value"}, users={"alice": "pa55word"}
    ) as emulator:
        yield emulator


def test_authentication_request_defaults() -> None:
    url, form = build_authentication_request("acme", "s3cr3t")
    assert url == "https://id.uh.live/realms/uhlive/protocol/openid-connect/token"
    assert form == {
        "client_id": "acme",
        "grant_type": "client_credentials",
        "client_secret": "s3cr3t",
    }


def test_authentication_request_password_grant() -> None:
    _, form = build_authentication_request("acme", "s3cr3t", "alice", "pw")
    assert form == {
        "client_id": "acme",
        "grant_type": "password",
        "client_secret": "s3cr3t",
        "username": "alice",
        "password": "pw",
    }


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("id.example.org", "https://id.example.org/realms/r1/protocol/openid-connect/token"),
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765/realms/r1/protocol/openid-connect/token"),
        (
            "https://auth.example.org",
            "https://auth.example.org/realms/r1/protocol/openid-connect/token",
        ),
    ],
)
def test_authentication_request_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: str, expected: str
) -> None:
    monkeypatch.setenv("UHLIVE_AUTH_SERVER", server)
    monkeypatch.setenv("UHLIVE_AUTH_REALM", "r1")
    assert build_authentication_request("a", "b")[0] == expected


def test_bad_auth_server_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UHLIVE_AUTH_SERVER", "ftp://x")
    with pytest.raises(ConfigurationError, match="http"):
        build_authentication_request("a", "b")


def test_conversation_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_conversation_url("abc") == "wss://api.uh.live/socket/websocket?jwt=abc&vsn=2.0.0"
    monkeypatch.setenv("UHLIVE_API_URL", "http://127.0.0.1:9000/")
    assert (
        build_conversation_url("a+b") == "ws://127.0.0.1:9000/socket/websocket?jwt=a%2Bb&vsn=2.0.0"
    )
    monkeypatch.setenv("UHLIVE_API_URL", "api.example.org")
    assert build_bot_url() == "wss://api.example.org/bots"
    assert build_conversation_url("t", "https://h") == "wss://h/socket/websocket?jwt=t&vsn=2.0.0"
    with pytest.raises(ConfigurationError, match="ws\\(s\\):// or http\\(s\\):// URL"):
        build_conversation_url("t", "ftp://h")


def test_vendor_snippet_against_the_emulator(
    emu: UhliveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    auth_url, auth_params = build_authentication_request("acme", "s3cr3t-value")
    login = requests.post(auth_url, data=auth_params, timeout=10)
    login.raise_for_status()
    body = login.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].count(".") == 2  # JWT-shaped


def test_get_token_with_env_credentials(
    emu: UhliveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    token = get_token(timeout=5)
    assert token.startswith("eyJ")


def test_get_token_password_grant(emu: UhliveEmulator) -> None:
    token = get_token("acme", "s3cr3t-value", "alice", "pa55word", auth_server=emu.base_url)
    assert token
    with pytest.raises(AuthenticationError, match="Invalid user credentials") as info:
        get_token("acme", "s3cr3t-value", "alice", "wrong-password", auth_server=emu.base_url)
    assert "wrong-password" not in str(info.value)


def test_refused_credentials_give_the_servers_message_without_the_secret(
    emu: UhliveEmulator,
) -> None:
    with pytest.raises(AuthenticationError) as info:
        get_token("acme", "not-the-secret", auth_server=emu.base_url, timeout=5)
    message = str(info.value)
    assert "invalid_client" in message and "Invalid client" in message
    assert "not-the-secret" not in message
    assert info.value.status_code == 401


def test_unknown_realm_is_a_server_error(emu: UhliveEmulator) -> None:
    with pytest.raises(ServerError, match="Realm does not exist") as info:
        get_token("acme", "s3cr3t-value", auth_server=emu.base_url, realm="other", timeout=5)
    assert info.value.status_code == 404


def test_token_endpoint_rejects_bad_requests(emu: UhliveEmulator) -> None:
    bad_grant = requests.post(
        emu.token_url, data={"grant_type": "implicit", "client_id": "acme"}, timeout=5
    )
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    as_json = requests.post(emu.token_url, json={"grant_type": "client_credentials"}, timeout=5)
    assert as_json.status_code == 400
    assert requests.post(f"{emu.base_url}/nowhere", data={}, timeout=5).status_code == 404


def test_missing_credentials() -> None:
    with pytest.raises(ConfigurationError, match="UHLIVE_API_CLIENT"):
        get_token()
    with pytest.raises(ConfigurationError, match="UHLIVE_API_SECRET"):
        get_token("acme")


def test_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ConnectionError, match="cannot reach"):
        get_token("acme", "secret-value", auth_server=f"http://127.0.0.1:{port}", timeout=5)


def test_silent_server_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept() -> None:
        try:
            accepted.append(listener.accept()[0])
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        with pytest.raises(TimeoutError, match="no answer"):
            get_token("acme", "secret-value", auth_server=f"http://127.0.0.1:{port}", timeout=0.5)
    finally:
        listener.close()
        thread.join(5)
        for conn in accepted:
            conn.close()


def test_token_request_follows_the_shared_retry_policy(emu: UhliveEmulator) -> None:
    emu.faults.token_failures = 2  # two 503 answers, then a token
    try:
        assert get_token("acme", "s3cr3t-value", auth_server=emu.base_url, timeout=10)
        assert emu.faults.token_failures == 0
        emu.faults.token_failures = 5
        with pytest.raises(ServerError) as info:
            get_token("acme", "s3cr3t-value", auth_server=emu.base_url, timeout=10, retries=1)
        assert info.value.status_code == 503 and info.value.retryable
        assert emu.faults.token_failures == 3  # two attempts, no more
    finally:
        emu.faults.token_failures = 0
