"""Conversation finish() against a real Phoenix-speaking server that closes early."""

from __future__ import annotations

import json
from typing import Any, Iterator, List

import pytest
from conftest import voxsync_threads
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection
from wsserver import WebSocketServer

from voxsync.errors import DisconnectedError
from voxsync.uhlive.connection import ConversationConnection


class ClosingPhoenixServer(WebSocketServer):
    """Accepts the join, swallows audio, and answers the leave by closing with 1008."""

    def __init__(self) -> None:
        self.events: List[str] = []
        super().__init__(self._handle, "phx-server")

    def _handle(self, ws: ServerConnection) -> None:
        try:
            for message in ws:
                if isinstance(message, bytes):
                    self.events.append("audio")
                    continue
                join_ref, ref, topic, event, _payload = json.loads(message)
                self.events.append(event)
                if event == "phx_join":
                    reply = {"status": "ok", "response": {}}
                    ws.send(json.dumps([join_ref, ref, topic, "phx_reply", reply]))
                elif event == "phx_leave":
                    ws.close(1008, "too many requests")
                    return
        except ConnectionClosed:
            return


@pytest.fixture
def phx() -> Iterator[ClosingPhoenixServer]:
    with ClosingPhoenixServer() as srv:
        yield srv


def test_finish_fails_with_the_close_code_when_the_socket_closes_before_speaker_left(
    phx: ClosingPhoenixServer,
) -> None:
    conn = ConversationConnection(
        "call-1", "alice", token="t0ken", identifier="acme", api_url=f"ws://127.0.0.1:{phx.port}"
    )
    errors: List[Any] = []
    conn.on("error", errors.append)
    conn.connect(timeout=5)
    conn.send(b"\x00\x00" * 800)
    with pytest.raises(DisconnectedError) as info:
        conn.finish(timeout=5)
    assert info.value.code == 1008 and info.value.reason == "too many requests"
    assert "before the end of the stream" in str(info.value)
    assert phx.events == ["phx_join", "audio", "phx_leave"]  # audio first, then the leave
    assert errors and isinstance(errors[0], DisconnectedError) and errors[0].code == 1008
    assert voxsync_threads() == []


def test_a_join_refused_with_a_close_frame_reports_its_code() -> None:
    def refuse(ws: ServerConnection) -> None:
        ws.recv()  # the phx_join
        ws.close(1008, "rate limited")

    with WebSocketServer(refuse, "refusing-server") as srv:
        conn = ConversationConnection(
            "call-2", "bob", token="t0ken", identifier="acme", api_url=srv.url
        )
        with pytest.raises(DisconnectedError) as info:
            conn.connect(timeout=5)
    assert info.value.code == 1008 and info.value.reason == "rate limited"
    assert "before accepting the stream" in str(info.value)
    assert conn.state == "idle"
    assert voxsync_threads() == []
