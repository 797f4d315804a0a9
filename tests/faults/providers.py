"""The providers of the fault matrix: one entry each in :data:`PROVIDERS`.

An entry is a context manager factory yielding an :class:`Env`: an
in-process emulator (with a scripted engine, for speed) behind a
:class:`~proxy.FaultProxy`, and a way to build connections to it. Adding a
provider means writing one such factory and listing it in ``PROVIDERS``
(with its not-applicable cells in the suite's ``NOT_APPLICABLE`` table).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import wave
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from faults.proxy import FaultProxy
from voxsync.audio.format import AudioFormat
from voxsync.connection import Connection
from voxsync.emulators.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "samples" / "audio" / "quick_brown_fox.wav"
_ids = itertools.count(1)
#: seconds of silence aiOla's finish() appends (the service has no end-of-audio message)
FINISH_SILENCE = 1.0


class NotApplicable(Exception):
    """This fault cannot be made for this provider (the suite marks such cells)."""


class CountingEngine:
    """A scripted engine that counts the PCM bytes the emulator decoded for it."""

    kind = "counting"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bytes = 0
        self.lock = threading.Lock()

    def new_session(self, sample_rate: int = 16000) -> Any:
        return _CountingSession(self, self.inner.new_session(sample_rate))


class _CountingSession:
    def __init__(self, owner: CountingEngine, inner: Any) -> None:
        self.owner = owner
        self.inner = inner

    def feed(self, pcm: bytes) -> Any:
        with self.owner.lock:
            self.owner.bytes += len(pcm)
        return self.inner.feed(pcm)

    def flush(self) -> Any:
        return self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Env:
    """One provider, ready for a fault case."""

    def __init__(
        self,
        name: str,
        audio_format: AudioFormat,
        connection: Callable[..., Connection],
        *,
        proxy: Optional[FaultProxy] = None,
        received: Optional[Callable[[], int]] = None,
        faults: Optional[Dict[str, Callable[..., None]]] = None,
        speech: bool = False,
        finish_bytes: int = 0,
        close_codes: bool = False,
        huge_send_seconds: Optional[float] = None,
        text: bool = False,
        result_event: str = "transcript",
    ) -> None:
        self.name = name
        self.audio_format = audio_format
        self._connection = connection
        self.proxy = proxy
        self._received = received
        self._faults = faults or {}
        self.speech = speech
        #: audio the client adds itself when finishing (not counted as sent)
        self.finish_bytes = finish_bytes
        #: whether a WebSocket close code reaches the client's errors
        self.close_codes = close_codes
        #: audio for the huge-send case, when the default (5 MiB) cannot end in time
        self.huge_send_seconds = huge_send_seconds
        #: text in (``send_text``), audio out: the cases feed text instead of audio
        self.text = text
        #: the event each result arrives as (the handler cases hook it)
        self.result_event = result_event

    def connection(self, **options: Any) -> Connection:
        """A new, not yet connected connection (options go to the constructor)."""
        return self._connection(**options)

    @property
    def counts_bytes(self) -> bool:
        return self._received is not None

    def received(self) -> int:
        """Audio bytes the server decoded so far."""
        if self._received is None:
            raise NotApplicable(f"{self.name}: no server-side byte count")
        return self._received()

    def fault(self, name: str, *args: Any) -> None:
        """Turn on one of the emulator's faults."""
        try:
            apply = self._faults[name]
        except KeyError:
            raise NotApplicable(f"{self.name} has no {name!r} fault") from None
        apply(*args)

    def needs_proxy(self) -> FaultProxy:
        if self.proxy is None:
            raise NotApplicable(f"{self.name} has no network link")
        return self.proxy

    @property
    def chunk_bytes(self) -> int:
        """100 ms of audio."""
        return self.audio_format.bytes_per_second // 10

    def audio(self, seconds: float) -> bytes:
        """Audio to send: speech for a real recognizer, silence for a scripted one."""
        n = int(seconds * 10) * self.chunk_bytes
        if not self.speech:
            return bytes(n)
        with wave.open(str(SPEECH)) as wav:
            assert wav.getframerate() == self.audio_format.sample_rate
            pcm = wav.readframes(wav.getnframes())
        return (pcm * (n // len(pcm) + 1))[:n]

    def chunks(self, seconds: float) -> List[bytes]:
        data = self.audio(seconds)
        size = self.chunk_bytes
        return [data[i : i + size] for i in range(0, len(data), size)]


# ------------------------------------------------------------ providers
@contextlib.contextmanager
def local_env() -> Iterator[Env]:
    from voxsync.local import LocalConnection

    yield Env(
        "local",
        AudioFormat(16000, 1, "pcm_s16le"),
        lambda **opts: LocalConnection(**opts),
        speech=True,
    )


@contextlib.contextmanager
def aiola_env() -> Iterator[Env]:
    from voxsync.aiola import AiolaClient
    from voxsync.emulators.aiola import AiolaEmulator

    engine = CountingEngine(
        make_engine("scripted", every_bytes=8000, transcripts=["one", "two", "three"], partial_ms=0)
    )
    with AiolaEmulator(engine=engine) as emu, FaultProxy(("127.0.0.1", emu.port)) as proxy:
        clients: List[Any] = []

        expired = {"on": False}

        def connection(**opts: Any) -> Connection:
            if expired["on"]:  # a token the server issued, past its lifetime
                client = AiolaClient(
                    access_token=emu.issue_access_token(ttl=-10),
                    base_url=f"http://127.0.0.1:{proxy.port}",
                )
            else:
                client = AiolaClient(api_key="k", base_url=f"http://127.0.0.1:{proxy.port}")
            clients.append(client)
            opts.setdefault("transports", ("websocket",))
            opts.setdefault("reconnection_attempts", 0)
            opts.setdefault("reconnection_delay", 0.05)
            opts["finish_silence"] = FINISH_SILENCE
            return client.stt.stream(**opts)  # type: ignore[no-any-return]

        def drop_every(chunks: int) -> None:
            emu.faults.drop_after_chunks = chunks
            emu.faults.drop_times = 1000

        faults: Dict[str, Callable[..., None]] = {
            "drop": lambda chunks=2: setattr(emu.faults, "drop_after_chunks", chunks),
            "drop_every": drop_every,
            "refuse_auth": lambda: setattr(emu.faults, "refuse_auth", True),
            "unavailable": lambda: setattr(emu.faults, "unavailable", True),
            "malformed": lambda: setattr(emu.faults, "malformed_event", True),
            "rest_failures": lambda n: setattr(emu.faults, "rest_failures", n),
            "event_delay": lambda s: setattr(emu.faults, "event_delay", s),
            "expired_token": lambda: expired.update(on=True),
        }
        try:
            yield Env(
                "aiola",
                AudioFormat(16000, 1, "pcm_s16le"),
                connection,
                proxy=proxy,
                received=lambda: engine.bytes,
                faults=faults,
                finish_bytes=int(FINISH_SILENCE * 32000),
                # finish() waits for the transcript of each utterance it heard:
                # silence has none, so the late-results case needs speech
                speech=True,
            )
        finally:
            for client in clients:
                client.close()


def _uhlive_faults(emu: Any) -> Dict[str, Callable[..., None]]:
    return {
        "drop": lambda frames=4: setattr(emu.faults, "drop_after_frames", frames),
        "malformed": lambda frames=2: setattr(emu.faults, "malformed_after_frames", frames),
        "server_error": lambda frames=3: setattr(emu.faults, "phx_error_after_frames", frames),
        "event_delay": lambda s: setattr(emu.faults, "event_delay", s),
    }


@contextlib.contextmanager
def uhlive_env() -> Iterator[Env]:
    from voxsync.emulators.uhlive import UhliveEmulator
    from voxsync.uhlive import ConversationConnection

    engine = CountingEngine(
        make_engine("scripted", every_bytes=4000, transcripts=["one", "two"], partial_ms=0)
    )
    with UhliveEmulator(engine=engine, clients={"acme": "acme-secret"}) as emu, FaultProxy(
        ("127.0.0.1", emu.port)
    ) as proxy:
        secret = {"value": "acme-secret"}
        expired = {"on": False}

        def connection(**opts: Any) -> Connection:
            if expired["on"]:  # a token the server issued, past its lifetime
                opts["token"] = emu.issue_token("acme", ttl=-10)
            return ConversationConnection(
                speaker="Alice",
                client_id="acme",
                client_secret=secret["value"],
                auth_server=f"http://127.0.0.1:{proxy.port}",
                api_url=f"ws://127.0.0.1:{proxy.port}",
                conversation_id=f"call-{next(_ids)}",
                model="en",
                **opts,
            )

        faults = _uhlive_faults(emu)
        faults["refuse_auth"] = lambda: secret.update(value="wrong-secret")
        faults["unavailable"] = lambda: setattr(emu.faults, "refuse_join", "service unavailable")
        faults["rest_failures"] = lambda n: setattr(emu.faults, "token_failures", n)
        faults["expired_token"] = lambda: expired.update(on=True)
        yield Env(
            "uhlive",
            AudioFormat(8000, 1, "pcm_s16le"),
            connection,
            proxy=proxy,
            received=lambda: engine.bytes,
            faults=faults,
            close_codes=True,
        )


@contextlib.contextmanager
def uhlive_bot_env() -> Iterator[Env]:
    from voxsync.emulators.uhlive import UhliveEmulator
    from voxsync.uhlive.bot import BotConnection

    with UhliveEmulator(engine="scripted", transcripts=["four nine two one"]) as emu, FaultProxy(
        ("127.0.0.1", emu.port)
    ) as proxy:
        token = {"value": None}

        def connection(**opts: Any) -> Connection:
            return BotConnection(
                token=token["value"] or emu.issue_token(),
                api_url=f"ws://127.0.0.1:{proxy.port}",
                **opts,
            )

        faults = _uhlive_faults(emu)
        faults["refuse_auth"] = lambda: token.update(value="not-a-valid-token")
        faults["expired_token"] = lambda: token.update(value=emu.issue_token(ttl=-10))
        yield Env(
            "uhlive-bot",
            AudioFormat(8000, 1, "pcm_s16le"),
            connection,
            proxy=proxy,
            faults=faults,
            close_codes=True,
        )


def _palabra_faults(emu: Any) -> Dict[str, Callable[..., None]]:
    return {
        "drop": lambda chunks=4: setattr(emu.faults, "drop_after_chunks", chunks),
        "refuse_auth": lambda: setattr(emu.faults, "refuse_auth", True),
        "unavailable": lambda: setattr(emu.faults, "rate_limit_close", True),
        "malformed": lambda chunks=3: setattr(emu.faults, "malformed_after_chunks", chunks),
        "rest_failures": lambda n: setattr(emu.faults, "rest_5xx", n),
    }


@contextlib.contextmanager
def _palabra() -> Iterator[Any]:
    """A Palabra emulator whose sessions name the proxy as socket address.

    Yields ``(emulator, proxy, client, engine)``: REST and sockets both pass the proxy.
    """
    from voxsync.emulators.palabra import PalabraEmulator
    from voxsync.palabra import Palabra

    engine = CountingEngine(
        make_engine("scripted", every_bytes=32000, transcripts=["one", "two"], partial_ms=0)
    )

    class ProxiedPalabra(PalabraEmulator):
        """Sessions name the proxy as the socket address, so sockets pass it too."""

        proxy_port = 0

        @property
        def ws_base(self) -> str:
            return f"ws://127.0.0.1:{self.proxy_port}"

    with ProxiedPalabra(engine=engine, translations=["uno", "dos"]) as emu, FaultProxy(
        ("127.0.0.1", emu.port)
    ) as proxy:
        emu.proxy_port = proxy.port
        client = Palabra(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_url=f"http://127.0.0.1:{proxy.port}",
        )
        try:
            yield emu, proxy, client, engine
        finally:
            client.close()


def _expiring(
    client: Any, faults: Dict[str, Callable[..., None]], make: Callable[..., Connection]
) -> Callable[..., Connection]:
    """``make``; after the "expired_token" fault, with a session deleted on the server.

    Its publisher token (the socket's credential) then opens nothing, as a
    token past its lifetime would.
    """
    expired = {"on": False}
    faults["expired_token"] = lambda: expired.update(on=True)

    def connection(**opts: Any) -> Connection:
        if expired["on"]:
            session = client.create_session()
            client.delete_session(session)
            opts["session"] = session
        return make(**opts)

    return connection


@contextlib.contextmanager
def palabra_env() -> Iterator[Env]:
    with _palabra() as (emu, proxy, client, engine):

        def connection(**opts: Any) -> Connection:
            return client.translation(  # type: ignore[no-any-return]
                source="en",
                targets=["es"],
                input_sample_rate=16000,
                ready_timeout=10,
                **opts,
            )

        faults = _palabra_faults(emu)
        yield Env(
            "palabra",
            AudioFormat(16000, 1, "pcm_s16le"),
            _expiring(client, faults, connection),
            proxy=proxy,
            received=lambda: engine.bytes,
            faults=faults,
            close_codes=True,
            # the server speaks each translation at real time and the stream ends
            # after the last word is spoken: 20 s of input, not 160 s
            huge_send_seconds=20.0,
        )


#: seconds of silence Palabra STT's finish() streams (paced at real time)
STT_SILENCE_TAIL = 0.32


@contextlib.contextmanager
def palabra_stt_env() -> Iterator[Env]:
    with _palabra() as (emu, proxy, client, engine):

        def connection(**opts: Any) -> Connection:
            opts.setdefault("silence_tail", STT_SILENCE_TAIL)
            return client.stt("en", **opts)  # type: ignore[no-any-return]

        faults = _palabra_faults(emu)
        yield Env(
            "palabra-stt",
            AudioFormat(16000, 1, "pcm_s16le"),
            _expiring(client, faults, connection),
            proxy=proxy,
            received=lambda: engine.bytes,
            faults=faults,
            finish_bytes=AudioFormat(16000, 1, "pcm_s16le").nbytes(STT_SILENCE_TAIL),
            close_codes=True,
            # finish() waits until a real-time recognizer could have heard it all
            huge_send_seconds=6.0,
        )


@contextlib.contextmanager
def palabra_tts_env() -> Iterator[Env]:
    with _palabra() as (emu, proxy, client, _engine):

        def connection(**opts: Any) -> Connection:
            return client.tts("en", **opts)  # type: ignore[no-any-return]

        faults = _palabra_faults(emu)
        yield Env(
            "palabra-tts",
            AudioFormat(24000, 1, "pcm_s16le"),
            _expiring(client, faults, connection),
            proxy=proxy,
            faults=faults,
            close_codes=True,
            text=True,
            result_event="audio",
        )


#: provider name -> factory of its :class:`Env` (a context manager).
PROVIDERS: Dict[str, Callable[[], Any]] = {
    "local": local_env,
    "aiola": aiola_env,
    "uhlive": uhlive_env,
    "uhlive-bot": uhlive_bot_env,
    "palabra": palabra_env,
    "palabra-stt": palabra_stt_env,
    "palabra-tts": palabra_tts_env,
}
