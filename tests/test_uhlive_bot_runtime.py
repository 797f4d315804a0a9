"""Bot close/finish bounds against a real WebSocket server that stalls or refuses."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any, Iterator, List, Optional

import pytest
from conftest import voxsync_threads
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection
from wsserver import WebSocketServer

from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.errors import DisconnectedError
from voxsync.uhlive.bot import BotConnection
from voxsync.uhlive.recognition import RecognizerState


class StallingBotServer(WebSocketServer):
    """Answers OPEN with OPENED, then reads frames and answers nothing.

    With ``close_on`` set, closes the socket with ``close_code`` / ``close_reason``
    when a command of that name arrives (as a rate-limiting service would).
    """

    def __init__(
        self, close_on: Optional[str] = None, close_code: int = 1008, close_reason: str = ""
    ) -> None:
        self.close_on = close_on
        self.close_code = close_code
        self.close_reason = close_reason
        self.commands: List[str] = []
        super().__init__(self._handle, "stall-server")

    def _handle(self, ws: ServerConnection) -> None:
        try:
            for message in ws:
                if isinstance(message, bytes):
                    continue  # audio or silence: swallowed
                frame = json.loads(message)
                self.commands.append(frame["command"])
                if frame["command"] == "OPEN":
                    ws.send(
                        json.dumps(
                            {
                                "event": "OPENED",
                                "request_id": frame["request_id"],
                                "channel_id": "stall-1",
                                "headers": {},
                                "completion_cause": None,
                                "completion_reason": None,
                                "body": "",
                            }
                        )
                    )
                elif frame["command"] == self.close_on:
                    ws.close(self.close_code, self.close_reason)
                    return
        except ConnectionClosed:
            return


@pytest.fixture
def stall() -> Iterator[StallingBotServer]:
    with StallingBotServer() as srv:
        yield srv


def bot_for(port: int, **options: Any) -> BotConnection:
    return BotConnection(token="t0ken", api_url=f"ws://127.0.0.1:{port}", **options)


def wait_recognizing(bot: BotConnection) -> None:
    deadline = time.monotonic() + 5
    while bot.recognizer_state is not RecognizerState.RECOGNITION:
        assert time.monotonic() < deadline, "the recognition did not start"
        time.sleep(0.01)


def test_close_from_a_handler_returns_at_once(stall: StallingBotServer) -> None:
    bot = bot_for(stall.port)
    took: List[float] = []

    def on_connect() -> None:
        start = time.monotonic()
        bot.close()  # the server would never answer a CLOSE: close() must not wait for it
        took.append(time.monotonic() - start)

    bot.on("connect", on_connect)
    bot.connect(timeout=5)
    assert bot.wait(timeout=5) is True
    assert len(took) == 1 and took[0] < 0.5
    assert "CLOSE" not in stall.commands  # the graceful CLOSE belongs to finish()


def test_close_fails_a_running_command_at_once(stall: StallingBotServer) -> None:
    bot = bot_for(stall.port).connect(timeout=5)
    errors: List[BaseException] = []

    def run() -> None:
        try:
            bot.set_params(speech_language="en", timeout=30)  # never answered
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 5
    while "SET-PARAMS" not in stall.commands:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    start = time.monotonic()
    bot.close()
    worker.join(5)
    assert time.monotonic() - start < 1.0
    assert len(errors) == 1 and isinstance(errors[0], DisconnectedError)


def test_ctrl_c_with_a_stalled_server_returns_at_once(stall: StallingBotServer) -> None:
    bot = bot_for(stall.port).connect(timeout=5)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        bot.wait()
    timer.join()
    assert time.monotonic() - start < 0.3 + 1.0
    assert bot.state == "closed"
    assert voxsync_threads() == []


def test_finish_with_a_stalled_server_is_bounded(stall: StallingBotServer) -> None:
    bot = bot_for(stall.port).connect(timeout=5)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        bot.finish(timeout=0.5)
    assert time.monotonic() - start < 0.5 + 1.0
    assert "CLOSE" in stall.commands
    assert voxsync_threads() == []


def test_finish_reports_the_close_code_when_the_socket_closes_before_closed() -> None:
    with StallingBotServer(close_on="CLOSE", close_code=1008, close_reason="rate limit") as srv:
        bot = bot_for(srv.port).connect(timeout=5)
        with pytest.raises(DisconnectedError) as info:
            bot.finish(timeout=5)
    assert info.value.code == 1008 and info.value.reason == "rate limit"
    assert "1008" in str(info.value) and "rate limit" in str(info.value)


def test_close_while_recognizing_is_immediate_and_finish_ends_gracefully() -> None:
    """close() drops the session at once; finish() after stop() sends CLOSE and gets CLOSED."""
    with UhliveEmulator(engine="scripted") as emu:
        bot = BotConnection(token=emu.issue_token(), api_url=emu.ws_url).connect(timeout=10)
        outcome: List[Any] = []

        def recognize() -> None:
            try:
                outcome.append(bot.recognize("builtin:speech/boolean", timeout=10, mode="hotword"))
            except DisconnectedError as exc:
                outcome.append(exc)

        worker = threading.Thread(target=recognize)
        worker.start()
        wait_recognizing(bot)
        start = time.monotonic()
        bot.close()
        worker.join(5)
        assert time.monotonic() - start < 1.0
        assert len(outcome) == 1 and isinstance(outcome[0], DisconnectedError)

        bot2 = BotConnection(token=emu.issue_token(), api_url=emu.ws_url).connect(timeout=10)
        messages: List[str] = []
        bot2.on("message", lambda m: messages.append(m.type))
        worker = threading.Thread(
            target=lambda: outcome.append(
                bot2.recognize("builtin:speech/boolean", timeout=10, mode="hotword")
            )
        )
        worker.start()
        wait_recognizing(bot2)
        bot2.stop(timeout=5)
        worker.join(5)
        bot2.finish(timeout=5)
        assert outcome[-1] is None
        assert bot2.recognizer_state is RecognizerState.NO_SESSION
        assert messages[-1] == "CLOSED"
