"""The aiOla emulator on its own, driven by plain requests and python-socketio clients."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlencode

import pytest
import requests
import socketio

from voxsync.emulators import aiola as aiola_emulator
from voxsync.emulators.aiola import AiolaEmulator, AiolaFaults
from voxsync.emulators.engine import make_engine

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/voice-streaming/socket.io"
NS = "/events"


def emulator_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("voxsync-emulator-aiola-")]


@pytest.fixture
def emu() -> Iterator[AiolaEmulator]:
    engine = make_engine(
        "scripted", every_bytes=8000, transcripts=["hello world", "k eight s"], partial_ms=0
    )
    with AiolaEmulator(engine=engine, api_keys=["key-1"]) as emulator:
        yield emulator


def access_token(emu: AiolaEmulator, key: str = "key-1") -> str:
    r = requests.post(
        f"{emu.base_url}/voip-auth/apiKey2Token",
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    r.raise_for_status()
    temporary = r.json()["context"]["token"]
    r = requests.post(
        f"{emu.base_url}/voip-auth/session",
        headers={"Authorization": f"Bearer {temporary}"},
        json={"workflow_id": "flow-1"},
        timeout=5,
    )
    r.raise_for_status()
    body = r.json()
    assert set(body) == {"jwt", "sessionId"}
    return str(body["jwt"])


class Client:
    """A python-socketio client as aiOla's SDK configures it."""

    def __init__(self, emu: AiolaEmulator, token: Optional[str], **query: Any) -> None:
        self.events: List[tuple] = []
        self.cond = threading.Condition()
        self.sio = socketio.Client(
            reconnection=False,
            handle_sigint=False,
            logger=logging.getLogger("test.socketio"),
            engineio_logger=logging.getLogger("test.engineio"),
        )
        self.sio.on("*", self._record, namespace=NS)
        self.sio.on("connect_error", lambda data: self._record("connect_error", data), namespace=NS)
        params = {"execution_id": "exec-1", "flow_id": "flow-1", "time_zone": "UTC", **query}
        if token is not None:
            params["x-aiola-api-token"] = token
        self.url = f"{emu.base_url}?{urlencode(params)}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _record(self, name: str, data: Any = None) -> None:
        with self.cond:
            self.events.append((name, data))
            self.cond.notify_all()

    def connect(self, transports: Any = ("polling", "websocket"), headers: Any = None) -> None:
        self.sio.connect(
            self.url,
            headers=self.headers if headers is None else headers,
            transports=list(transports),
            namespaces=[NS],
            socketio_path=PATH,
            wait_timeout=5,
        )

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> List[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.of(name)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no {count} {name!r} events: {self.events}"
                self.cond.wait(left)
            return self.of(name)

    def of(self, name: str) -> List[Any]:
        return [d for n, d in self.events if n == name]

    def close(self) -> None:
        self.sio.disconnect()
        # after a server-side close python-socketio can leave its writer
        # thread waiting on the packet queue for a minute: release it
        queue = getattr(self.sio.eio, "queue", None)
        if queue is not None:
            queue.put(None)


def test_auth_flow_and_jwt_claims(emu: AiolaEmulator) -> None:
    import base64

    token = access_token(emu)
    _head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims["exp"] - claims["iat"] == 1800 and claims["sessionId"] and sig
    assert emu.active_sessions == 1
    r = requests.delete(
        f"{emu.base_url}/voip-auth/session", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert r.status_code == 200 and r.json()["status"] == "deleted" and r.json()["deletedAt"]
    assert emu.active_sessions == 0


@pytest.mark.parametrize("key", ["wrong", ""])
def test_unknown_api_key_is_401(emu: AiolaEmulator, key: str) -> None:
    r = requests.post(
        f"{emu.base_url}/voip-auth/apiKey2Token",
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"


def test_any_key_accepted_without_api_keys() -> None:
    with AiolaEmulator(engine=make_engine("scripted")) as emu:
        assert access_token(emu, key="whatever")


def test_max_sessions_gives_409(emu: AiolaEmulator) -> None:
    emu.faults.max_sessions = 1
    access_token(emu)
    r = requests.post(
        f"{emu.base_url}/voip-auth/apiKey2Token",
        headers={"Authorization": "Bearer key-1"},
        timeout=5,
    )
    temporary = r.json()["context"]["token"]
    r = requests.post(
        f"{emu.base_url}/voip-auth/session",
        headers={"Authorization": f"Bearer {temporary}"},
        json={"workflow_id": "flow-1"},
        timeout=5,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "MAX_CONCURRENCY_REACHED"


def test_unknown_path_is_404(emu: AiolaEmulator) -> None:
    assert requests.get(f"{emu.base_url}/nope", timeout=5).status_code == 404
    assert requests.get(f"{emu.base_url}/voip-auth/session", timeout=5).status_code == 405


@pytest.mark.parametrize("transports", [("polling",), ("websocket",), ("polling", "websocket")])
def test_stream_transcripts_over_every_transport(emu: AiolaEmulator, transports: Any) -> None:
    c = Client(emu, access_token(emu))
    c.connect(transports)
    for _ in range(4):
        c.sio.emit("binary_data", bytes(4000), namespace=NS)
    assert c.wait_for("transcript", 2) == [
        {"transcript": "hello world"},
        {"transcript": "k eight s"},
    ]
    c.close()


def test_token_in_query_only_and_legacy_header(emu: AiolaEmulator) -> None:
    token = access_token(emu)
    c = Client(emu, token)
    c.connect(headers={})  # query parameter only
    c.close()
    c = Client(emu, None)
    c.connect(headers={"x-api-key": token})  # v0.1 JS SDK
    c.close()
    assert len(emu.connections) == 2


@pytest.mark.parametrize("token", ["not-a-jwt", None, "forged"])
def test_bad_token_gets_connect_error(emu: AiolaEmulator, token: Optional[str]) -> None:
    if token == "forged":
        good = access_token(emu)
        token = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    c = Client(emu, token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect()
    (error,) = c.of("connect_error")
    assert error["message"]
    assert error["data"]["code"] in ("INVALID_TOKEN", "UNAUTHORIZED")
    c.close()


def test_closed_session_token_is_refused(emu: AiolaEmulator) -> None:
    token = access_token(emu)
    requests.delete(
        f"{emu.base_url}/voip-auth/session", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    c = Client(emu, token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect()
    c.close()


def test_keywords_translation_and_structured_tasks(emu: AiolaEmulator) -> None:
    tasks = {
        "TRANSLATION": {"src_lang_code": "en", "dst_lang_code": "de"},
        "ENTITY_DETECTION_FROM_LIST": {"entity_list": ["world"]},
    }
    c = Client(
        emu,
        access_token(emu),
        keywords=json.dumps({"k eight s": "Kubernetes"}),
        tasks_config=json.dumps(tasks),
    )
    c.connect()
    c.sio.emit("binary_data", bytes(16000), namespace=NS)
    assert c.wait_for("transcript", 2) == [
        {"transcript": "hello world"},
        {"transcript": "Kubernetes"},
    ]
    assert c.wait_for("translation", 2)[1] == {"translation": "[de] Kubernetes"}
    assert c.wait_for("structured", 2)[0] == {"results": {"entities": ["world"]}}
    names = [n for n, _ in c.events]
    assert names[:3] == ["transcript", "translation", "structured"]
    c.close()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"hello world": "Hi all"}, {"hello world": "Hi all"}),  # Python SDK: an object
        (
            json.dumps({"hello world": "Hi all"}).encode(),
            {"hello world": "Hi all"},
        ),  # JS: bytes of JSON
        (
            json.dumps(["hello", "world"]).encode(),
            {"hello": "hello", "world": "world"},
        ),  # legacy TS
        ({"data": ["hello"]}, {"hello": "hello"}),  # AsyncAPI example
    ],
)
def test_set_keywords_shapes(emu: AiolaEmulator, payload: Any, expected: Dict[str, str]) -> None:
    c = Client(emu, access_token(emu))
    c.connect()
    assert c.sio.call("set_keywords", payload, namespace=NS, timeout=5) == {"status": "received"}
    assert emu.keyword_updates == [expected]
    c.sio.emit("binary_data", bytes(8000), namespace=NS)
    transcript = c.wait_for("transcript")[0]["transcript"]
    assert transcript == ("Hi all" if "hello world" in expected else "hello world")
    c.close()


def test_bad_keywords_and_schema_values(emu: AiolaEmulator) -> None:
    c = Client(emu, access_token(emu))
    c.connect()
    answer = c.sio.call("set_keywords", b"{not json", namespace=NS, timeout=5)
    assert "error" in answer
    assert c.wait_for("error")[0]["message"] == "Invalid keywords"
    ok = c.sio.call(
        "set_schema_values", json.dumps({"a.b": [1, 2]}).encode(), namespace=NS, timeout=5
    )
    assert ok == {"status": "ok"}
    bad = c.sio.call("set_schema_values", b"[1]", namespace=NS, timeout=5)
    assert bad["status"] == "error" and bad["error"]["code"] == "INVALID_SCHEMA"
    updates = c.wait_for("schema_values_updated", 2)
    assert [u["status"] for u in updates] == ["ok", "error"]
    c.close()


def test_malformed_audio_gets_error_events(emu: AiolaEmulator) -> None:
    c = Client(emu, access_token(emu))
    c.connect()
    c.sio.emit("binary_data", b"\x01\x02\x03", namespace=NS)
    c.sio.emit("binary_data", "text, not audio", namespace=NS)
    c.sio.emit("binary_data", b"", namespace=NS)  # keepalive: no error
    c.sio.emit("binary_data", [bytes(8000), {"sub_flow_id": "container-123"}], namespace=NS)
    errors = c.wait_for("error", 2)
    assert all(set(e) == {"message", "details"} for e in errors)
    assert "3 bytes" in errors[0]["details"] and "str" in errors[1]["details"]
    c.close()


def test_binary_data_with_metadata(emu: AiolaEmulator) -> None:
    c = Client(emu, access_token(emu))
    c.connect()
    c.sio.emit("binary_data", (bytes(8000), {"sub_flow_id": "container-123"}), namespace=NS)
    assert c.wait_for("transcript")[0] == {"transcript": "hello world"}
    c.close()


def test_faults_idle_timeout_delay_and_malformed(emu: AiolaEmulator) -> None:
    emu.faults.idle_timeout = 0.3
    emu.faults.malformed_event = True
    c = Client(emu, access_token(emu))
    c.connect(("websocket",))
    assert c.wait_for("transcript")[0] == "this payload is not an object"
    deadline = time.monotonic() + 10
    while c.sio.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not c.sio.connected
    c.close()


def test_drop_after_chunks_cuts_the_transport(emu: AiolaEmulator) -> None:
    emu.faults.drop_after_chunks = 2
    c = Client(emu, access_token(emu))
    reasons: List[Any] = []
    c.sio.on("disconnect", lambda reason=None: reasons.append(reason), namespace=NS)
    c.connect(("websocket",))
    for _ in range(3):
        c.sio.emit("binary_data", bytes(100), namespace=NS)
    deadline = time.monotonic() + 10
    while not reasons and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reasons == [socketio.Client.reason.TRANSPORT_ERROR]
    c.close()
    # drop_times=1: the next connection is left alone
    c = Client(emu, access_token(emu))
    c.connect(("websocket",))
    for _ in range(3):
        c.sio.emit("binary_data", bytes(100), namespace=NS)
    time.sleep(0.3)
    assert c.sio.connected
    c.close()


def test_drop_after_seconds_set_while_connected(emu: AiolaEmulator) -> None:
    c = Client(emu, access_token(emu))
    reasons: List[Any] = []
    c.sio.on("disconnect", lambda reason=None: reasons.append(reason), namespace=NS)
    c.connect(("websocket",))
    emu.faults.drop_after_seconds = 0.2
    deadline = time.monotonic() + 10
    while not reasons and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reasons == [socketio.Client.reason.TRANSPORT_ERROR]
    c.close()


def test_file_transcription(emu: AiolaEmulator) -> None:
    token = access_token(emu)
    wav = (ROOT / "samples" / "audio" / "yes.wav").read_bytes()
    r = requests.post(
        f"{emu.base_url}/api/speech-to-text/file",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("yes.wav", wav)},
        data={"language": "en", "keywords": json.dumps({"hello world": "HELLO"})},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transcript"].startswith("HELLO")
    assert body["metadata"]["sample_rate"] == 16000 and body["metadata"]["language"] == "en"
    assert body["segments"] and {"start", "end"} <= set(body["segments"][0])
    r = requests.post(
        f"{emu.base_url}/api/speech-to-text/file",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("x.wav", b"RIFF....garbage")},
        timeout=20,
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_AUDIO_FORMAT"


def test_stop_disconnects_clients_and_joins_every_thread() -> None:
    before = set(emulator_threads())
    emu = AiolaEmulator(
        engine=make_engine("scripted"), faults=AiolaFaults(event_delay=0.05)
    ).start()
    clients = []
    for transports in (("polling",), ("websocket",)):
        c = Client(emu, access_token(emu))
        c.connect(transports)
        c.sio.emit("binary_data", bytes(3200), namespace=NS)
        clients.append(c)
    requests.get(f"{emu.base_url}/nope", timeout=5)  # a keep-alive HTTP connection
    assert set(emulator_threads()) - before
    emu.stop()
    assert not set(emulator_threads()) - before
    for c in clients:
        deadline = time.monotonic() + 10
        while c.sio.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not c.sio.connected
        c.close()
    emu.stop()  # idempotent


def test_cli_prints_the_url_and_stops_on_sigterm() -> None:
    parser = argparse.ArgumentParser()
    aiola_emulator.add_cli_arguments(parser)
    args = parser.parse_args(["--engine", "scripted", "--api-key", "k1", "--max-sessions", "3"])
    emu = aiola_emulator.emulator_from_args(args)
    assert emu.api_keys == {"k1"} and emu.faults.max_sessions == 3
    code = (
        "import argparse, sys\n"
        "from voxsync.emulators import aiola\n"
        "p = argparse.ArgumentParser(); aiola.add_cli_arguments(p)\n"
        "sys.exit(aiola.run_cli(p.parse_args(sys.argv[1:])))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--engine", "scripted", "--api-key", "k1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        r = requests.post(
            f"{url}/voip-auth/apiKey2Token", headers={"Authorization": "Bearer k1"}, timeout=5
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read() == ""  # exactly one line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
