"""The speech-to-speech translation stream: ``Palabra().translation(...)``.

:class:`TranslationSession` puts the sans-I/O codec
(:mod:`voxsync.palabra.codec`) on a websocket-client socket and voxsync's
provider-neutral runtime (:class:`~voxsync.connection.Connection`): a reader
thread, a writer thread draining one ordered send queue (audio *and*
commands, so a command never overtakes audio queued before it) and a
dispatcher thread that runs your handlers.
"""

from __future__ import annotations

import logging
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    Optional,
    Union,
)

from voxsync.audio.format import AudioFormat
from voxsync.connection import EventIterator
from voxsync.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    RemoteProtocolError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.palabra import codec
from voxsync.palabra.errors import NotReadyError, SessionDroppedError, SessionError, TaskError
from voxsync.palabra.events import (
    OUTPUT_FORMAT,
    ServerError,
    StreamEnd,
    TaskInfo,
    Transcript,
)
from voxsync.request import Request
from voxsync.transport.websocket import WebSocketTransport
from voxsync.wsconnection import Frame, WebSocketConnection

if TYPE_CHECKING:
    from voxsync.palabra.client import Palabra, Session

__all__ = [
    "CHUNK_MS",
    "GET_TASK_INTERVAL",
    "TranslationSession",
    "create_connection",
    "translate_file",
]

log = logging.getLogger("voxsync.palabra")

#: Duration of the audio frames sent (Palabra's optimum).
CHUNK_MS = 320
#: Seconds between two ``get_task`` polls while waiting for readiness (server: 1 per 2 s).
GET_TASK_INTERVAL = 2.1
#: WebSocket ping interval (seconds of send-queue silence).
PING_INTERVAL = 10.0

_CONNECTION_OPTIONS = (
    "queue_size",
    "overflow",
    "send_timeout",
    "finish_timeout",
    "name",
    "event_queue_size",
)


class TranslationSession(WebSocketConnection):
    """One translation stream: audio in, transcripts, translations and speech out.

    Create it with :meth:`voxsync.palabra.Palabra.translation`. Entering the
    ``with`` block (or :meth:`connect`) creates the REST session if needed,
    connects, sends the task and waits (bounded, ``ready_timeout``) until the
    pipeline confirms it. Leaving it ends the stream gracefully if
    :meth:`end` was not called, closes the socket and deletes the session
    voxsync created.

    Events (handlers run on the session's dispatcher thread, one at a time):
    ``transcript`` and ``translation`` (:class:`~voxsync.palabra.Transcript`),
    ``audio`` (:class:`~voxsync.palabra.Audio`), ``task``
    (:class:`~voxsync.palabra.TaskInfo`), ``end_of_stream``
    (:class:`~voxsync.palabra.StreamEnd`), ``warning``
    (:class:`~voxsync.palabra.ServerWarning`), ``error``
    (:class:`~voxsync.palabra.ServerError` and other voxsync errors),
    ``message`` (:class:`~voxsync.palabra.Raw`), ``connect``, ``disconnect``.
    ``for event in session`` yields the same objects, from the moment the
    session connected, until it closes.
    """

    provider: ClassVar[str] = "palabra"
    max_chunk_seconds = CHUNK_MS / 1000  # the service's optimal input chunk
    service: ClassVar[str] = "Palabra"
    event_names: ClassVar[FrozenSet[str]] = WebSocketConnection.event_names | frozenset(
        {"transcript", "translation", "audio", "task", "end_of_stream"}
    )

    def __init__(
        self,
        client: Palabra,
        *,
        source: Optional[str] = None,
        targets: Optional[codec.Targets] = None,
        task: Optional[Mapping[str, Any]] = None,
        session: Optional[Session] = None,
        ws_url: Optional[str] = None,
        token: Optional[str] = None,
        ready_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        conn_options = {k: options.pop(k) for k in _CONNECTION_OPTIONS if k in options}
        if task is None:
            if source is None or targets is None:
                raise ConfigurationError(
                    "translation() needs source= and targets= (or a full task= from build_task())"
                )
            task = codec.build_task(source, targets, **options)
        elif options or source is not None or targets is not None:
            raise ConfigurationError(
                "give either task= or source=/targets= with build_task options, not both"
            )
        if (ws_url is None) != (token is None):
            raise ConfigurationError("ws_url= and token= go together (direct connection mode)")
        if ws_url is not None and session is not None:
            raise ConfigurationError("give session= or ws_url=/token=, not both")
        if not ready_timeout > 0:
            raise ConfigurationError(f"ready_timeout must be > 0 seconds, got {ready_timeout!r}")
        self._task: Dict[str, Any] = dict(task)
        conn_options.setdefault("finish_timeout", 30.0)
        super().__init__(
            input_format=codec.task_input_format(self._task),
            output_format=OUTPUT_FORMAT,
            keepalive_interval=PING_INTERVAL,
            **conn_options,
        )
        self._client = client
        self._session = session
        self._owned_session: Optional[Session] = None
        self._ws_url = ws_url
        self._token = token
        self._ready_timeout = ready_timeout
        self._eos_timeout: Optional[float] = None
        self._stale_task_replies = 0
        self._force = False
        self._iterator: Optional[EventIterator] = None
        self._compressed = self._output_compressed(self._task)
        self._chunk_bytes = self.audio_format.nbytes(CHUNK_MS / 1000)

    # ----------------------------------------------------------------- info
    @staticmethod
    def _output_compressed(task: Mapping[str, Any]) -> bool:
        try:
            return bool(task["output_stream"]["target"]["format"] == "zlib_pcm_s16le")
        except (KeyError, TypeError):
            return False

    @property
    def task(self) -> Dict[str, Any]:
        """The task last sent with ``set_task`` (a copy)."""
        return dict(self._task)

    @property
    def session(self) -> Optional[Session]:
        """The REST session in use (None in ``ws_url=`` mode or before connecting)."""
        return self._session or self._owned_session

    @property
    def source_language(self) -> Optional[str]:
        try:
            value = self._task["pipeline"]["transcription"]["source_language"]
        except (KeyError, TypeError):
            return None
        return value if isinstance(value, str) else None

    # ------------------------------------------------------------ lifecycle
    def connect(self, timeout: float = 10.0) -> TranslationSession:
        """Connect, send the task and wait until the pipeline confirms it.

        Parameters
        ----------
        timeout : float
            Seconds for the REST call and the WebSocket handshake; readiness
            has its own bound, ``ready_timeout`` (default 30 s).

        Raises
        ------
        AuthError
            No credentials for the REST session, or refused.
        SessionError
            The REST API or the socket failed.
        TaskError
            The server rejected the task (its ``code`` and ``desc``).
        NotReadyError
            The pipeline did not confirm the task within ``ready_timeout``.
        """
        if self._iterator is None:
            self._iterator = self.events(maxsize=100000)
        try:
            super().connect(timeout)
        except BaseException:
            self._delete_owned_session()
            raise
        return self

    def _create_transport(self, timeout: float) -> WebSocketTransport:
        if self._ws_url is not None and self._token is not None:
            ws_url, token = self._ws_url, self._token
        else:
            session = self._session
            if session is None:
                session = self._client.create_session()
                self._owned_session = session
            ws_url, token = session.ws_url, session.publisher
        # the service's own clients append the token verbatim (no URL-encoding)
        return WebSocketTransport(f"{ws_url}?token={token}", secrets=[token], service="Palabra")

    def _refusal(self, exc: VoxsyncError) -> VoxsyncError:
        if isinstance(exc, AuthenticationError):
            return exc
        return SessionError(str(exc))

    def _accept(self, transport: WebSocketTransport, remaining: Callable[[], float]) -> None:
        # Palabra's readiness has its own bound (ready_timeout), and get_task
        # polls while waiting, for servers that send no task_status ack
        self._wait_ready(transport)
        self._connect_info = {"task": self.task}

    def _wait_ready(self, transport: WebSocketTransport) -> None:
        """Send the task; serve both readiness generations (get_task polls and task_status acks)."""
        self._write_frame(codec.set_task_frame(self._task))
        self._write_frame(codec.get_task_frame())
        polls_out = 1
        next_poll = time.monotonic() + GET_TASK_INTERVAL
        ready_deadline = time.monotonic() + self._ready_timeout
        while True:
            now = time.monotonic()
            if now >= ready_deadline:
                raise NotReadyError(
                    f"Palabra did not confirm the task within {self._ready_timeout} s; "
                    "try again later or raise ready_timeout"
                )
            if now >= next_poll:
                self._write_frame(codec.get_task_frame())
                polls_out += 1
                next_poll = now + GET_TASK_INTERVAL
            try:
                data = transport.recv(timeout=max(0.01, min(next_poll, ready_deadline) - now))
            except TimeoutError:
                continue
            except ConnectionError as exc:
                raise SessionError(f"the socket failed while waiting for the task: {exc}") from exc
            if data is None:
                err = transport.disconnected_error("before confirming the task")
                raise SessionDroppedError(str(err), code=err.code, reason=err.reason)
            if isinstance(data, bytes):
                log.debug("%s: binary frame before readiness ignored", self.name)
                continue
            try:
                event = codec.parse_message(data, compressed_audio=self._compressed)
            except RemoteProtocolError as exc:
                self._deliver(exc)
                continue
            if isinstance(event, ServerError):
                if event.code == "NOT_FOUND" and polls_out > 0:
                    polls_out -= 1
                    continue
                raise TaskError(event.code, event.desc, raw=event.raw)
            if isinstance(event, TaskInfo):
                if event.command is None:  # current_task: running (or paused) -> ready
                    self._stale_task_replies = max(0, polls_out - 1)
                    self._deliver(event)
                    return
                if (
                    event.command == "set_task"
                    and event.change in codec.READY_EVENTS
                    and event.status == "running"
                ):
                    # the answers to our polls still come: they answer no later get_task()
                    self._stale_task_replies = polls_out
                    self._deliver(event)
                    return
            self._deliver(self._fill(event))

    def _fill(self, event: Any) -> Any:
        if isinstance(event, Transcript) and event.is_translation and event.source_language is None:
            import dataclasses

            return dataclasses.replace(event, source_language=self.source_language)
        return event

    def _receive(self, frame: Frame) -> None:
        if isinstance(frame, bytes):
            self._deliver(RemoteProtocolError("Palabra sent an unexpected binary frame"))
            return
        try:
            event = codec.parse_message(frame, compressed_audio=self._compressed)
        except RemoteProtocolError as exc:
            log.warning("%s: %s", self.name, exc)
            self._deliver(exc)
            return
        if self._stale_task_replies and (
            (isinstance(event, TaskInfo) and event.command is None)
            or (isinstance(event, ServerError) and event.code == "NOT_FOUND")
        ):
            self._stale_task_replies -= 1  # a readiness poll's answer
        else:
            self._offer_reply(event)
        self._deliver(self._fill(event))
        if isinstance(event, StreamEnd):
            self._stream_ended()

    def _audio_frame(self, chunk: bytes) -> Optional[Frame]:
        return codec.audio_frame(chunk)

    def _end_of_stream(self) -> None:
        transport = self._transport
        if transport is None or transport.closed:
            self._stream_ended()
            return
        if self._force:
            self._write_frame(codec.end_task_frame(force=True))
        else:
            self._write_frame(codec.end_task_frame(eos_timeout=self._eos_timeout))

    def close(self) -> None:
        """Close at once and delete the REST session voxsync created (see the base class)."""
        super().close()
        self._delete_owned_session()

    def _delete_owned_session(self) -> None:
        session, self._owned_session = self._owned_session, None
        if session is None:
            return
        try:
            self._client._delete_session_on_close(session)
        except VoxsyncError as exc:
            log.warning("%s: deleting the session failed: %s", self.name, exc)

    def _fail(self, exc: VoxsyncError) -> None:
        if isinstance(exc, DisconnectedError) and not isinstance(exc, SessionError):
            wrapped = SessionDroppedError(str(exc), code=exc.code, reason=exc.reason)
            wrapped.__cause__ = exc.__cause__ or exc
            exc = wrapped
        super()._fail(exc)

    def _raise_not_open(self, what: str) -> None:
        try:
            super()._raise_not_open(what)
        except DisconnectedError as exc:
            if isinstance(exc, SessionError):
                raise
            raise SessionDroppedError(str(exc), code=exc.code, reason=exc.reason) from exc.__cause__

    def finish(self, timeout: Optional[float] = None) -> None:
        """Like :meth:`end` without ``eos_timeout`` (the runtime's name for it)."""
        try:
            super().finish(timeout)
        except DisconnectedError as exc:
            if isinstance(exc, SessionError):
                raise
            raise SessionDroppedError(str(exc), code=exc.code, reason=exc.reason) from exc.__cause__

    def __iter__(self) -> Iterator[Any]:
        """Every event since the session connected, blocking, until it closes.

        Errors come as exception objects (:class:`~voxsync.palabra.ServerError`
        and others), not raised; see :func:`raise_on_error`.
        """
        if self._iterator is None:
            self._iterator = self.events(maxsize=100000)
        return self._iterator

    # ------------------------------------------------------------- commands
    def _command(self, frame: str, what: str) -> None:
        try:
            self._send_control(frame)
        except DisconnectedError as exc:
            if isinstance(exc, SessionError):
                raise
            raise SessionDroppedError(f"{what}(): {exc}", code=exc.code, reason=exc.reason) from exc

    def send_audio(self, chunk: Union[bytes, bytearray, memoryview]) -> None:
        """Queue one chunk of audio in :attr:`input_format` (pace it to real time yourself)."""
        self.send(chunk)

    def speak(self, text: str, language: str, translate: bool = False) -> None:
        """Speak ``text`` through the pipeline (``tts_task``), in order with the audio.

        ``language`` must be a target unless ``translate`` is True (then it is
        the text's language and the text is translated to every target).
        """
        self._command(codec.tts_task_frame(text, language, translate), "speak")

    def flush(self) -> None:
        """Drop the phrase in flight, transcription and audio (``flush_task``)."""
        self._command(codec.flush_task_frame(), "flush")

    def pause(self) -> None:
        """Stop processing audio, keeping the task (``pause_task``); :meth:`resume` restarts."""
        self._command(codec.pause_task_frame(), "pause")

    def resume(self) -> None:
        """Resume after :meth:`pause` (``set_task`` with the current task)."""
        self._command(codec.set_task_frame(self._task), "resume")

    def set_task(self, task: Mapping[str, Any]) -> None:
        """Change the settings on the fly (``set_task``).

        The input format must stay what this session sends (re-create the
        session to change it).
        """
        if codec.task_input_format(task) != self.audio_format:
            raise ConfigurationError(
                "set_task() cannot change the input format of a running session; "
                f"keep {self.audio_format.describe()} or open a new session"
            )
        self._task = dict(task)
        self._compressed = self._output_compressed(self._task)
        self._command(codec.set_task_frame(self._task), "set_task")

    def get_task(self, timeout: Optional[float] = None) -> Optional[TaskInfo]:
        """Ask for the running task; the answer also arrives as a ``task`` event.

        Parameters
        ----------
        timeout : float or None
            Wait (bounded) for the answer and return it; None returns at once.

        Raises
        ------
        TaskError
            The server answered with an error (e.g. ``NOT_FOUND``).
        TimeoutError
            No answer within ``timeout``.
        """
        frame = codec.get_task_frame()
        if timeout is None:
            self._command(frame, "get_task")
            return None
        request = Request(
            lambda m: isinstance(m, TaskInfo) and m.command is None,
            error=lambda m: (
                TaskError(m.code, m.desc, raw=m.raw) if isinstance(m, ServerError) else None
            ),
            what="get_task",
        )
        reply: TaskInfo = self._request(frame, request, timeout)
        return reply

    def end(
        self,
        eos_timeout: Optional[float] = None,
        *,
        force: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        """End the stream: send the queued audio, then ``end_task``; wait for the tail.

        Waits (bounded) until the server sent its last results and its
        end-of-stream marker (``eos`` or ``end_of_stream``) or closed the
        socket, then closes. Events received stay available to
        ``for event in session``.

        Parameters
        ----------
        eos_timeout : float or None
            Seconds of trailing silence the server waits for (1-30).
        force : bool
            Drop the tail: ``end_task {"force": true}``.
        timeout : float or None
            Bound of the wait (default ``eos_timeout + finish_timeout``).

        Raises
        ------
        TimeoutError
            The end did not arrive in time (the session is closed anyway).
        SessionError
            The stream had failed.
        """
        self._eos_timeout = eos_timeout
        self._force = force
        if timeout is None:
            timeout = (eos_timeout or 0) + self._finish_timeout
        if self.state.value in ("closed", "idle") and self._fatal is None:
            return
        self.finish(timeout)

    @staticmethod
    def raise_on_error(event: Any) -> None:
        """Raise :class:`~voxsync.palabra.TaskError` if ``event`` is a server error."""
        if isinstance(event, ServerError):
            raise TaskError(event.code, event.desc, raw=event.raw) from event

    # ---------------------------------------------------------- file helpers
    def send_pcm(
        self,
        pcm: Union[bytes, bytearray, memoryview],
        audio_format: Optional[AudioFormat] = None,
        *,
        realtime: bool = True,
    ) -> None:
        """Send raw audio in 320 ms chunks, paced to real time.

        Parameters
        ----------
        pcm : bytes-like
            The audio, in ``audio_format`` (default: :attr:`input_format`);
            it is converted to the task's input format.
        realtime : bool
            Pace to the wall clock (default True), as the service requires.
        """
        from voxsync.audio.convert import convert
        from voxsync.audio.pacing import Pacer

        data = bytes(pcm)
        if audio_format is not None and audio_format != self.audio_format:
            data = convert(data, audio_format, self.audio_format)
        pacer = Pacer() if realtime else None
        size = self._chunk_bytes
        for offset in range(0, len(data), size):
            piece = data[offset : offset + size]
            if pacer is not None:
                pacer.wait()
            self.send(piece)
            if pacer is not None:
                pacer.advance(self.audio_format.duration(len(piece)))

    def send_file(self, path: Any, *, realtime: bool = True) -> float:
        """Send an audio file (any format :mod:`voxsync.audio` reads), converted and paced.

        Returns
        -------
        float
            Seconds of audio sent.
        """
        from voxsync.audio.files import iter_chunks

        sent = 0
        for chunk in iter_chunks(path, self.audio_format, chunk_ms=CHUNK_MS, realtime=realtime):
            self.send(chunk)
            sent += len(chunk)
        return self.audio_format.duration(sent)


def translate_file(
    client: Palabra,
    path: Any,
    *,
    source: Optional[str] = None,
    targets: Optional[codec.Targets] = None,
    output: Any = None,
    on_transcript: Optional[Callable[[Any], Any]] = None,
    eos_timeout: float = 4.0,
    timeout: Optional[float] = None,
    realtime: bool = True,
    **options: Any,
) -> List[Transcript]:
    """See :meth:`voxsync.palabra.Palabra.translate_file`."""
    finals: List[Transcript] = []
    audio: List[bytes] = []
    session = client.translation(source=source, targets=targets, **options)

    def on_text(event: Transcript) -> None:
        if event.is_final:
            finals.append(event)
        if on_transcript is not None:
            on_transcript(event)

    session.on("transcript", on_text)
    session.on("translation", on_text)
    if output is not None:
        session.on("audio", lambda ev: audio.append(ev.pcm))
    with session:
        session.send_file(path, realtime=realtime)
        session.end(eos_timeout=eos_timeout, timeout=timeout)
    if output is not None:
        import numpy as np
        import soundfile

        samples = np.frombuffer(b"".join(audio), dtype="<i2")
        soundfile.write(output, samples, OUTPUT_FORMAT.sample_rate, subtype="PCM_16")
    return finals


def create_connection(
    source: str = "en",
    targets: Optional[codec.Targets] = None,
    *,
    client_id: Optional[str] = None,
    client_secret: Optional[str] = None,
    api_url: Optional[str] = None,
    **options: Any,
) -> TranslationSession:
    """The ``palabra`` provider's factory: ``voxsync.connection("palabra", source=, targets=)``.

    ``targets`` defaults to ``["es"]``; credentials and base URL as for
    :class:`~voxsync.palabra.Palabra` (arguments or environment).
    """
    from voxsync.palabra.client import Palabra

    client = Palabra(client_id, client_secret, api_url)
    return client.translation(source=source, targets=targets or ["es"], **options)
