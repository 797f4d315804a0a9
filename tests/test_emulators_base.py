"""The shared emulator base, thread registry and ``voxsync emulate`` front."""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Dict, List

import pytest
from blocked import run_without_server_packages

import voxsync.emulators.uhlive
from voxsync.emulators.base import EmulatorServer, ThreadRegistry
from voxsync.uhlive import get_token

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "voxsync" / "emulators"


class EchoEmulator(EmulatorServer):
    name = "echo"

    def _handle(self, sock: socket.socket) -> None:
        while not self.stopping.is_set():
            data = sock.recv(4096)
            if not data:
                return
            sock.sendall(data)


def _emulator_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("voxsync-emulator-")]


def test_a_subclass_serves_and_stop_joins_every_thread() -> None:
    emu = EchoEmulator(engine="scripted")
    with emu:
        assert emu.running and emu.port > 0 and emu.engine_kind == "scripted"
        clients = [socket.create_connection(("127.0.0.1", emu.port), timeout=5) for _ in range(3)]
        for i, client in enumerate(clients):
            client.sendall(b"ping %d" % i)
            assert client.recv(100) == b"ping %d" % i
        names = _emulator_threads()
        assert any(n.startswith("voxsync-emulator-echo-accept-") for n in names)
        assert sum(n.startswith("voxsync-emulator-echo-conn-") for n in names) == 3
        # clients still connected: stop() shuts their sockets down and joins
    assert not emu.running and emu.engine is None
    assert not _emulator_threads()
    for client in clients:
        assert client.recv(100) == b""
        client.close()
    emu.stop()  # idempotent
    assert repr(emu) == "<EchoEmulator stopped>"


def test_a_subclass_must_say_how_it_serves() -> None:
    class Nothing(EmulatorServer):
        name = "nothing"

    emu = Nothing(engine="scripted").start()
    try:
        with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as client:
            assert client.recv(10) == b""  # the handler raised; the socket is closed
    finally:
        emu.stop()
    assert not _emulator_threads()


def test_thread_registry_names_adopts_and_joins() -> None:
    registry = ThreadRegistry("voxsync-emulator-test")
    release = threading.Event()
    started = registry.start("work", release.wait, 5)
    outside = threading.Thread(target=release.wait, args=(5,))
    registry.adopt(outside, "lib")
    outside.start()
    assert started.name == "voxsync-emulator-test-work-1"
    assert outside.name == "voxsync-emulator-test-lib-2"
    assert registry.join_all(0.1) == [started, outside]  # still running: reported
    release.set()
    assert registry.join_all(5) == []


def test_uhlive_handlers_do_not_import_the_server() -> None:
    """No import circle: the handlers share state through uhlive/state.py."""
    for name in ("conversation.py", "bots.py", "state.py"):
        tree = ast.parse((PACKAGE / "uhlive" / name).read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        }
        assert "voxsync.emulators.uhlive.server" not in imported, name
    for module in ("conversation", "bots", "state", "server"):
        subprocess.run(
            [sys.executable, "-c", f"import voxsync.emulators.uhlive.{module}"],
            check=True,
            cwd=ROOT,
            timeout=60,
        )


def test_the_uhlive_package_docstring_example_runs() -> None:
    doc = voxsync.emulators.uhlive.__doc__ or ""
    code = textwrap.dedent(doc.split("::\n", 1)[1].split("\nFrom a shell")[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("UHLIVE_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "open"


def _emulate(name: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "voxsync", "emulate", name, "--engine", "scripted", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def _exports(proc: subprocess.Popen[str], count: int) -> Dict[str, str]:
    assert proc.stderr is not None
    lines = [proc.stderr.readline().strip() for _ in range(count + 1)]
    assert lines[0].startswith("#"), lines
    env = {}
    for line in lines[1:]:
        assert line.startswith("export "), lines
        name, _, value = line[len("export ") :].partition("=")
        env[name] = value
    return env


def test_voxsync_emulate_uhlive_prints_the_lines_to_paste() -> None:
    proc = _emulate("uhlive", "--client-id", "team", "--client-secret", "pa55-word")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        env = _exports(proc, 4)
        assert env == {
            "UHLIVE_AUTH_SERVER": url,
            "UHLIVE_API_URL": url.replace("http://", "ws://"),
            "UHLIVE_API_CLIENT": "team",
            "UHLIVE_API_SECRET": "pa55-word",
        }
        # the lines work as they are
        token = get_token(
            env["UHLIVE_API_CLIENT"],
            env["UHLIVE_API_SECRET"],
            auth_server=env["UHLIVE_AUTH_SERVER"],
            timeout=10,
        )
        assert token.count(".") == 2
        _stop(proc)
    finally:
        _kill(proc)


def test_voxsync_emulate_aiola_prints_the_lines_to_paste() -> None:
    proc = _emulate("aiola")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        env = _exports(proc, 2)
        assert env == {"AIOLA_BASE_URL": url, "AIOLA_API_KEY": "emulator-key"}
        from voxsync.aiola import AiolaClient

        result = AiolaClient.grant_token(
            api_key=env["AIOLA_API_KEY"], auth_base_url=env["AIOLA_BASE_URL"]
        )
        assert result.access_token
        _stop(proc)
    finally:
        _kill(proc)


@pytest.mark.parametrize("name", ["aiola", "uhlive"])
def test_emulate_without_the_server_packages_says_what_to_install(name: str) -> None:
    result = run_without_server_packages(["emulate", name])
    assert result.returncode == 1
    assert result.stdout == ""
    assert "pip install 'voxsync[emulators]'" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
