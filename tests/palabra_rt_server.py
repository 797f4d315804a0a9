"""A loopback server for the realtime STT/TTS socket services, and a flite synthesizer.

Used until (and beside) the full Palabra emulator: it routes the ASR and TTS
paths of one ``websockets`` server to :class:`AsrService` / :class:`TtsService`
the way the emulator's server does.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
from http import HTTPStatus
from typing import Any, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import soundfile as sf
from websockets.sync.server import Server, ServerConnection, serve

from voxsync.emulators.palabra.asr import ASR_PATH, AsrService
from voxsync.emulators.palabra.tts import TTS_PATH, TtsService

LEGACY_TTS_PATH = "/v1/text-to-speech/stream"


def flite_synthesizer(text: str, language: str) -> Tuple[bytes, int]:
    """Real speech from flite (16 kHz mono PCM)."""
    flite = shutil.which("flite")
    if flite is None:
        pytest.skip("flite is not installed (apt-get install flite)")
    out = subprocess.run(
        [flite, "-voice", "slt", "-t", text, "-o", "/dev/stdout"],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    data, rate = sf.read(io.BytesIO(out), dtype="int16")
    return bytes(np.asarray(data).tobytes()), int(rate)


class RealtimeServer:
    def __init__(self, asr: Optional[AsrService] = None, tts: Optional[TtsService] = None) -> None:
        self.asr = asr
        self.tts = tts
        self._server: Optional[Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def ws_base(self) -> str:
        return self.base_url.replace("http://", "ws://")

    def _service(self, path: str) -> Any:
        if path == ASR_PATH:
            return self.asr
        if path in (TTS_PATH, LEGACY_TTS_PATH):
            return self.tts
        return None

    def _process_request(self, conn: ServerConnection, request: Any) -> Any:
        parts = urlsplit(request.path)
        service = self._service(parts.path)
        if service is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "no such socket\n")
        refusal = service.check(parse_qs(parts.query))
        if refusal is not None:
            status, reason = refusal
            return conn.respond(HTTPStatus(status), reason + "\n")
        return None

    def _handler(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        parts = urlsplit(conn.request.path)
        self._service(parts.path).serve(conn, parse_qs(parts.query))

    def __enter__(self) -> RealtimeServer:
        self._server = serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            max_size=2**20,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="voxsync-emulator-test-server", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._thread.join(timeout=10)
