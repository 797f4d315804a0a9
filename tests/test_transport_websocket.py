"""The shared websocket-client transport against a real `websockets` server."""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Iterator

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Response
from websockets.sync.server import serve

from voxsync.errors import AuthenticationError, ConnectionError, DisconnectedError, TimeoutError
from voxsync.transport import WebSocketTransport

TOKEN = "tok-1234567890"


def handler(ws) -> None:
    for message in ws:
        if message == "close":
            ws.close()
            return
        if message == "close1008":
            ws.close(1008, "slow down, token tok-1234567890")
            return
        if message == "drop":  # no close frame: the TCP connection just goes away
            ws.socket.shutdown(socket.SHUT_RDWR)
            return
        ws.send(message)  # echo, text or binary


def process_request(connection, request):
    if f"token={TOKEN}" not in (request.path or ""):
        return Response(403, "Forbidden", Headers(), b"")
    return None


@pytest.fixture
def url() -> Iterator[str]:
    server = serve(handler, "127.0.0.1", 0, process_request=process_request)
    thread = threading.Thread(target=server.serve_forever, name="ws-test-server", daemon=True)
    thread.start()
    port = server.socket.getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/socket?token={TOKEN}"
    finally:
        server.shutdown()
        thread.join(5)
        assert not thread.is_alive()


def test_text_and_binary_round_trip(url):
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    try:
        t.send_text("héllo")
        assert t.recv(timeout=5) == "héllo"
        t.send_binary(b"\x00\x01\x02")
        assert t.recv(timeout=5) == b"\x00\x01\x02"
        t.ping()
    finally:
        t.close()
    assert t.recv() is None and t.closed


def test_server_close_reads_as_none(url):
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    t.send_text("close")
    assert t.recv(timeout=5) is None
    t.close()


def test_the_peer_close_code_and_reason_are_kept(url):
    t = WebSocketTransport(url, secrets=[TOKEN])
    t.connect(timeout=5)
    assert t.close_code is None and not t.closed_by_peer
    t.send_text("close1008")
    assert t.recv(timeout=5) is None
    assert t.closed_by_peer and t.close_code == 1008
    assert TOKEN not in t.close_reason and t.close_reason.startswith("slow down")
    err = t.disconnected_error("before the end of the stream")
    assert isinstance(err, DisconnectedError)
    assert (err.code, err.reason) == (1008, t.close_reason)
    assert "close code 1008" in str(err) and TOKEN not in str(err)
    t.close()


def test_the_close_code_is_kept_when_answering_the_close_frame_fails(url):
    # the peer sent its close frame and is gone: websocket-client's answer to
    # it fails (here: our side can no longer write), which must not turn the
    # peer's clean close with a code into a dropped connection
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    t.send_text("close1008")
    sock = t._ws.sock
    readable, _, _ = select.select([sock], [], [], 5)
    assert readable, "the close frame did not arrive"
    sock.shutdown(socket.SHUT_WR)
    assert t.recv(timeout=5) is None
    assert t.closed_by_peer and t.close_code == 1008
    t.close()


def test_a_close_without_a_close_frame_has_no_code(url):
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    t.send_text("drop")
    with pytest.raises(ConnectionError):
        t.recv(timeout=5)
    err = t.disconnected_error("during the stream")
    assert err.code is None and err.reason == ""
    t.close()


def test_bad_token_is_authentication_error_without_the_token(url):
    bad = url.replace(TOKEN, "wrong-secret-value")
    t = WebSocketTransport(bad, secrets=["wrong-secret-value"], service="Uh!ive")
    with pytest.raises(AuthenticationError) as info:
        t.connect(timeout=5)
    assert info.value.status_code == 403
    assert "wrong-secret-value" not in str(info.value) and "Uh!ive" in str(info.value)
    assert "wrong-secret-value" not in repr(t)


def test_unreachable_is_connection_error():
    t = WebSocketTransport(f"ws://127.0.0.1:9/?token={TOKEN}")
    with pytest.raises(ConnectionError) as info:
        t.connect(timeout=2)
    assert TOKEN not in str(info.value)


def test_recv_timeout(url):
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    try:
        with pytest.raises(TimeoutError):
            t.recv(timeout=0.2)
        t.send_text("still usable")
        assert t.recv(timeout=5) == "still usable"
    finally:
        t.close()


def test_close_wakes_a_blocked_reader(url):
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    got = []
    reader = threading.Thread(target=lambda: got.append(t.recv()), name="ws-test-reader")
    reader.start()
    time.sleep(0.1)
    start = time.monotonic()
    t.close()
    reader.join(2)
    assert not reader.is_alive() and got == [None]
    assert time.monotonic() - start < 1.5
    with pytest.raises(ConnectionError):
        t.send_text("after close")


def test_a_dropped_connection_is_an_error_not_a_clean_close(url):
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    try:
        t.send_text("drop")
        with pytest.raises(ConnectionError):
            t.recv(timeout=5)
    finally:
        t.close()


def test_close_does_not_wait_for_a_stuck_send(url):
    t = WebSocketTransport(url)
    t.connect(timeout=5)
    got = []
    reader = threading.Thread(target=lambda: got.append(t.recv()), name="ws-test-reader")
    reader.start()
    t._ws.lock.acquire()  # what a writer blocked in send() holds
    try:
        start = time.monotonic()
        t.close()
        reader.join(3)
        assert time.monotonic() - start < 2.5
        assert not reader.is_alive() and got == [None]
    finally:
        t._ws.lock.release()
