"""Threaded connection to the Uh!ive Recognition (H2B, voicebot) API.

A :class:`BotConnection` opens ``<UHLIVE_API_URL>/bots`` with websocket-client,
opens a recognition session, and offers blocking methods for the dialogue
steps of a voicebot::

    from voxsync.uhlive import create_bot

    with create_bot(client_id="...", client_secret="...") as bot:
        bot.set_params(speech_language="en", no_input_timeout=5000)
        result = bot.recognize("builtin:speech/boolean", timeout=15)
        if result.value is True:
            ...

While the bot is given no audio the connection streams silence (60 ms
chunks, one every 60 ms), as the service expects a continuous stream from
``OPEN`` to ``CLOSE``; audio passed to :meth:`~voxsync.connection.Connection.send`
replaces the silence. The audio format is 8 kHz mono 16-bit PCM (``linear``)
or G.711 (``g711a`` / ``g711u``), per ``audio_codec``; the audio functions of
:mod:`voxsync.audio` convert to it.

Events (handlers run on the dispatcher thread, see
:meth:`~voxsync.connection.Connection.on`): ``start_of_input``
(:class:`~voxsync.uhlive.recognition.StartOfInput`, the barge-in point),
``recognition_complete``
(:class:`~voxsync.uhlive.recognition.RecognitionComplete`), ``transcript``
(a final :class:`~voxsync.events.Transcript` of what was heard, before
``recognition_complete``), ``message`` (every other event as a
:class:`~voxsync.events.Message` whose ``type`` is the event name, e.g.
``"PARAMS-SET"``), plus ``connect``, ``disconnect`` and ``error``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, ClassVar, FrozenSet, List, Optional, Tuple, Type, Union

from voxsync.connection import Connection, State
from voxsync.errors import (
    ConfigurationError,
    ConnectionError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import Message, Transcript
from voxsync.transport.websocket import WebSocketTransport
from voxsync.uhlive.auth import build_bot_url, get_token
from voxsync.uhlive.connection import AUDIO_FORMATS  # shared with conversations
from voxsync.uhlive.recognition import (
    ERROR_EVENTS,
    Closed,
    DefaultParams,
    GrammarDefined,
    InputTimersStarted,
    MethodNotAllowedError,
    Opened,
    ParamsSet,
    RecognitionComplete,
    RecognitionEvent,
    Recognizer,
    RecognizerState,
    StartOfInput,
    Stopped,
    error_from_event,
)

__all__ = ["BotConnection", "create_bot"]

log = logging.getLogger(__name__)

#: The silence byte of each codec (16-bit zero, G.711 A-law and mu-law zero).
_SILENCE_BYTE = {"linear": b"\x00", "g711a": b"\xd5", "g711u": b"\xff"}

_CLOSE_WAIT = 3.0  # seconds close() waits for CLOSED
_STOP_WAIT = 3.0  # seconds recognize() waits for STOPPED after its own timeout


class _NothingToDo(Exception):
    """Internal: a command turned out to be unnecessary in the current state."""


class _Waiter:
    """Waits for the event that ends one command (resolved on the reader thread)."""

    def __init__(
        self, request_id: Optional[int], done: Tuple[Type[RecognitionEvent], ...], any_id: bool
    ) -> None:
        self.request_id = request_id
        self.done = done
        self.any_id = any_id
        self.flag = threading.Event()
        self.result: Optional[RecognitionEvent] = None
        self.error: Optional[VoxsyncError] = None

    def offer(self, event: RecognitionEvent) -> None:
        if self.flag.is_set():
            return
        if isinstance(event, ERROR_EVENTS) and event.request_id == self.request_id:
            self.error = error_from_event(event)
            self.flag.set()
        elif isinstance(event, self.done) and (self.any_id or event.request_id == self.request_id):
            self.result = event
            self.flag.set()

    def abort(self, error: VoxsyncError) -> None:
        if not self.flag.is_set():
            self.error = error
            self.flag.set()


class BotConnection(Connection):
    """A voicebot session on the Uh!ive Recognition API.

    Parameters
    ----------
    token : str, optional
        An access token. Without one, :meth:`connect` requests a fresh token
        with ``client_id`` / ``client_secret`` (or ``UHLIVE_API_CLIENT`` /
        ``UHLIVE_API_SECRET``), since a token must be used within minutes.
    client_id, client_secret, user_id, user_pwd : str, optional
        Credentials for :func:`voxsync.uhlive.auth.get_token`.
    auth_server, realm : str, optional
        Where to request the token; default ``UHLIVE_AUTH_SERVER`` /
        ``UHLIVE_AUTH_REALM`` or Uh!ive's (as for conversations).
    api_url : str, optional
        API base URL; default ``UHLIVE_API_URL`` or ``wss://api.uh.live``.
    custom_id : str
        Your identifier for the session, sent in ``OPEN``.
    channel_id : str
        Optional prefix of the channel id the server generates.
    session_id : str
        Optional session id sent in ``OPEN``.
    audio_codec : {"linear", "g711a", "g711u"}
        Audio encoding; sets :attr:`audio_format` (always 8 kHz mono).
    command_timeout : float
        Default seconds a command method waits for the server's answer.
    silence_chunk_ms : int
        Length of each chunk of silence streamed while no audio is given.
    **options
        Passed to :class:`~voxsync.connection.Connection` (``queue_size``,
        ``overflow``, ``send_timeout``, ``finish_timeout``, ``name``).

    Notes
    -----
    The command methods (:meth:`set_params`, :meth:`recognize`, ...) block the
    calling thread until the server answers; they may be called from any
    thread, including a handler, but one command at a time makes sense for
    a dialogue. A command the session's state does not allow raises
    :class:`~voxsync.errors.LocalProtocolError` without being sent.
    """

    provider: ClassVar[str] = "uhlive-bot"
    event_names: ClassVar[FrozenSet[str]] = Connection.event_names | frozenset(
        {"transcript", "start_of_input", "recognition_complete"}
    )
    _uses_reader_thread: ClassVar[bool] = True

    def __init__(
        self,
        *,
        token: Optional[str] = None,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        user_id: str = "",
        user_pwd: str = "",
        auth_server: Optional[str] = None,
        realm: Optional[str] = None,
        api_url: Optional[str] = None,
        custom_id: str = "",
        channel_id: str = "",
        session_id: str = "",
        audio_codec: str = "linear",
        command_timeout: float = 10.0,
        silence_chunk_ms: int = 60,
        **options: Any,
    ) -> None:
        if audio_codec not in AUDIO_FORMATS:
            raise ConfigurationError(
                f"audio_codec must be one of {', '.join(AUDIO_FORMATS)}, got {audio_codec!r}"
            )
        if not isinstance(silence_chunk_ms, int) or not 10 <= silence_chunk_ms <= 1000:
            raise ConfigurationError(
                f"silence_chunk_ms must be an int from 10 to 1000, got {silence_chunk_ms!r}"
            )
        if not command_timeout > 0:
            raise ConfigurationError(f"command_timeout must be > 0 s, got {command_timeout!r}")
        if "keepalive_interval" in options:
            raise ConfigurationError(
                "BotConnection streams silence every silence_chunk_ms; "
                "use silence_chunk_ms instead of keepalive_interval"
            )
        fmt = AUDIO_FORMATS[audio_codec]
        super().__init__(fmt, keepalive_interval=silence_chunk_ms / 1000.0, **options)
        self._token = token
        self._credentials = (client_id, client_secret, user_id, user_pwd)
        self._auth_server = auth_server
        self._realm = realm
        self._api_url = api_url
        self._open_args = (custom_id, channel_id, audio_codec, session_id)
        self._command_timeout = command_timeout
        self._silence = _SILENCE_BYTE[audio_codec] * fmt.nbytes(silence_chunk_ms / 1000.0)
        self._rec = Recognizer()
        self._rec_lock = threading.RLock()
        self._waiters: List[_Waiter] = []
        self._transport: Optional[WebSocketTransport] = None
        self._transport_lock = threading.Lock()
        self._covered_until = 0.0  # monotonic time up to which audio was sent
        self._finishing = False
        self._close_sent = False

    # ------------------------------------------------------------ read-only info
    @property
    def recognizer_state(self) -> RecognizerState:
        """The session's protocol state (NoSession, IdleSession, Recognition)."""
        return self._rec.state

    @property
    def channel_id(self) -> str:
        """The channel id the server assigned (``""`` before connecting)."""
        return self._rec.channel_id

    def __repr__(self) -> str:
        return (
            f"<BotConnection {self.name} state={self.state.value} "
            f"session={self._rec.state.value} {self.audio_format}>"
        )

    # ------------------------------------------------------------ transport hooks
    def _open(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._rec_lock:  # a failed earlier attempt may have left OPEN pending
            self._rec = Recognizer()
        token = self._token
        if token is None:
            client_id, client_secret, user_id, user_pwd = self._credentials
            token = get_token(
                client_id,
                client_secret,
                user_id,
                user_pwd,
                timeout=timeout,
                auth_server=self._auth_server,
                realm=self._realm,
            )
        transport = WebSocketTransport(
            build_bot_url(self._api_url),
            headers={"Authorization": f"bearer {token}"},
            secrets=[token],
            service="the Uh!ive Recognition API",
        )
        with self._transport_lock:
            self._transport = transport
        transport.connect(max(0.1, deadline - time.monotonic()))
        custom_id, channel_id, audio_codec, session_id = self._open_args
        with self._rec_lock:
            frame = self._rec.open(
                custom_id=custom_id,
                channel_id=channel_id,
                audio_codec=audio_codec,
                session_id=session_id,
            )
        self._send_text(frame)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no OPENED from {transport.service} within {timeout} s")
            data = transport.recv(timeout=remaining)
            if data is None:
                raise ConnectionError(f"{transport.service} closed the connection before OPENED")
            event = self._handle_frame(data)
            if isinstance(event, Opened):
                self._connect_info = dict(event.raw)
                break
            if event is not None and isinstance(event, ERROR_EVENTS):
                raise error_from_event(event) or RemoteProtocolError(event.type)
        self._covered_until = time.monotonic()
        log.debug("%s: session %s open", self.name, self._rec.channel_id)

    def _read_loop(self) -> None:
        transport = self._transport
        if transport is None:
            return
        while True:
            try:
                data = transport.recv()
            except ConnectionError as exc:
                if isinstance(exc, DisconnectedError):
                    raise
                raise DisconnectedError(f"the connection broke: {exc}") from exc
            if data is None:
                return
            self._handle_frame(data)

    def _write_chunk(self, chunk: bytes) -> None:
        self._send_audio(chunk)

    def _keepalive(self) -> None:
        now = time.monotonic()
        if now + 0.01 < self._covered_until:
            return  # audio sent earlier still covers this moment
        with self._rec_lock:
            in_session = self._rec.state is not RecognizerState.NO_SESSION
        if in_session:
            self._send_audio(self._silence)

    def _end_of_stream(self) -> None:
        frame = None
        with self._rec_lock:
            self._finishing = True
            state = self._rec.state
            if state is RecognizerState.IDLE_SESSION and not self._rec.closing:
                frame = self._build_close()
            elif state is RecognizerState.NO_SESSION and not self._rec.closing:
                self._stream_ended()
            # in a recognition: CLOSE goes out when its result arrived (_handle_frame)
        if frame is not None:
            self._send_text(frame)

    def _close_transport(self) -> None:
        with self._transport_lock:
            transport = self._transport
        fatal = self._fatal
        reason = f"the connection failed: {fatal}" if fatal else "the connection was closed"
        self._abort_waiters(DisconnectedError(reason))
        if transport is not None:
            transport.close()

    # ------------------------------------------------------------ internals
    def _send_text(self, text: str) -> None:
        transport = self._transport
        if transport is None or transport.closed:
            raise DisconnectedError("the connection is closed")
        try:
            transport.send_text(text)
        except ConnectionError as exc:
            raise DisconnectedError(f"sending a command failed: {exc}") from exc

    def _send_audio(self, chunk: bytes) -> None:
        with self._rec_lock:
            if self._rec.state is RecognizerState.NO_SESSION and (
                self._close_sent or self._finishing
            ):
                # our CLOSE was answered: audio still queued has no session to go to
                log.debug("%s: %d bytes after the session closed, not sent", self.name, len(chunk))
                return
            frame = self._rec.send_audio_chunk(chunk)
        transport = self._transport
        if transport is None:
            raise DisconnectedError("the connection is closed")
        transport.send_binary(frame)
        now = time.monotonic()
        self._covered_until = max(self._covered_until, now) + self.audio_format.duration(len(frame))

    def _build_close(self) -> str:
        # caller holds _rec_lock; the frame is sent after releasing it
        frame = self._rec.close()
        self._close_sent = True
        return frame

    def _abort_waiters(self, error: VoxsyncError) -> None:
        with self._rec_lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.abort(error)

    def _handle_frame(self, data: Union[str, bytes]) -> Optional[RecognitionEvent]:
        if isinstance(data, bytes):
            self._deliver(
                RemoteProtocolError(
                    f"the service sent a binary frame of {len(data)} bytes; only text "
                    "events are expected (ignored)"
                )
            )
            return None
        with self._rec_lock:
            try:
                event = self._rec.receive(data)
            except RemoteProtocolError as exc:
                malformed: Optional[RemoteProtocolError] = exc
            else:
                malformed = None
        if malformed is not None:  # delivered outside the lock: _deliver may wait for room
            log.warning("%s: %s", self.name, malformed)
            self._deliver(malformed)
            return None
        with self._rec_lock:
            waiters = list(self._waiters)
            close_frame = None
            if (
                self._finishing
                and isinstance(event, (RecognitionComplete, Stopped))
                and self._rec.state is RecognizerState.IDLE_SESSION
                and not self._rec.closing
            ):
                close_frame = self._build_close()
        if close_frame is not None:  # finish(): the last result is in, end the session
            try:
                self._send_text(close_frame)
            except DisconnectedError:
                log.debug("%s: CLOSE after the last result could not be sent", self.name)
        for waiter in waiters:
            waiter.offer(event)
        self._emit(event)
        if isinstance(event, Closed):
            if self._finishing or self._close_sent:
                # our CLOSE was answered: the server may now drop the socket
                self._stream_ended()
            else:
                self._fail(DisconnectedError("the service closed the recognition session"))
        return event

    def _emit(self, event: RecognitionEvent) -> None:
        if isinstance(event, Opened):
            return  # reported by the "connect" event
        if isinstance(event, StartOfInput):
            self._deliver(event)
        elif isinstance(event, RecognitionComplete):
            if event.asr is not None and event.asr.transcript:
                self._deliver(
                    Transcript(
                        event.asr.transcript,
                        is_final=True,
                        confidence=event.asr.confidence,
                        id=str(event.request_id),
                        raw=event.raw,
                    )
                )
            self._deliver(event)
        else:
            self._deliver(Message(event.type, event.raw))

    def _command(
        self,
        build: Callable[[Recognizer], str],
        done: Tuple[Type[RecognitionEvent], ...],
        timeout: Optional[float],
        *,
        any_id: bool = False,
    ) -> Tuple[_Waiter, float]:
        if self.state is not State.OPEN:
            if self.state is State.FINISHING:
                raise LocalProtocolError("the bot is finishing; no more commands can be sent")
            if self._fatal is not None:
                raise DisconnectedError(f"the connection failed: {self._fatal}") from self._fatal
            raise LocalProtocolError(
                f"the bot connection is {self.state.value}; call connect() first"
            )
        timeout = self._command_timeout if timeout is None else timeout
        with self._rec_lock:
            frame = build(self._rec)
            waiter = _Waiter(self._rec.last_request_id, done, any_id)
            self._waiters.append(waiter)
        # sent outside the lock, so the reader never waits for a blocked socket send
        try:
            self._send_text(frame)
        except BaseException:
            with self._rec_lock:
                self._waiters.remove(waiter)
            raise
        return waiter, time.monotonic() + timeout

    def _wait(self, waiter: _Waiter, deadline: float, what: str) -> RecognitionEvent:
        try:
            while not waiter.flag.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no answer to {what} from the service in time")
        finally:
            with self._rec_lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        if waiter.error is not None:
            raise waiter.error
        if waiter.result is None:  # pragma: no cover - flag is set with a result or an error
            raise RemoteProtocolError(f"no answer to {what}")
        return waiter.result

    # ------------------------------------------------------------ public commands
    def set_params(self, timeout: Optional[float] = None, **params: Any) -> None:
        """Set session parameters (``SET-PARAMS``) and wait until they are accepted.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the answer (default ``command_timeout``).
        **params
            e.g. ``speech_language="en"``, ``no_input_timeout=5000`` (ms),
            ``recognition_timeout=20000``, ``confidence_threshold=0.6``.

        Raises
        ------
        InvalidParamValueError, MissingParamError, RecognitionError
            The server refused (``.code``, ``.detail`` say why).
        LocalProtocolError
            A recognition is running.
        TimeoutError, DisconnectedError
        """
        waiter, deadline = self._command(lambda r: r.set_params(**params), (ParamsSet,), timeout)
        self._wait(waiter, deadline, "SET-PARAMS")

    def get_params(self, timeout: Optional[float] = None) -> dict[str, Any]:
        """Return the session's parameters (``GET-PARAMS``).

        Raises
        ------
        RecognitionError, LocalProtocolError, TimeoutError, DisconnectedError
        """
        waiter, deadline = self._command(lambda r: r.get_params(), (DefaultParams,), timeout)
        event = self._wait(waiter, deadline, "GET-PARAMS")
        return dict(event.headers)

    def define_grammar(self, alias: str, uri: str, timeout: Optional[float] = None) -> None:
        """Name a builtin grammar (``DEFINE-GRAMMAR``); use it as ``"session:<alias>"``.

        Parameters
        ----------
        alias : str
        uri : str
            e.g. ``"builtin:speech/spelling/digits?length=4"``.

        Raises
        ------
        MethodFailedError
            Unknown grammar (``code`` ``"GramDefinitionFailure"``).
        LocalProtocolError, TimeoutError, DisconnectedError
        """
        waiter, deadline = self._command(
            lambda r: r.define_grammar(alias, uri), (GrammarDefined,), timeout
        )
        self._wait(waiter, deadline, "DEFINE-GRAMMAR")

    def recognize(
        self,
        grammar: str,
        *more_grammars: str,
        timeout: float = 30.0,
        mode: str = "normal",
        start_input_timers: bool = True,
        **params: Any,
    ) -> Optional[RecognitionComplete]:
        """Run one recognition (``RECOGNIZE``) and wait for its result.

        Parameters
        ----------
        grammar, *more_grammars : str
            ``"builtin:speech/boolean"``, ``"session:<alias>"``, ...
        timeout : float
            Seconds to wait for the result. When it runs out the recognition
            is stopped (``STOP``) and :class:`~voxsync.errors.TimeoutError`
            raised. Keep it above the protocol timers you set.
        mode : {"normal", "hotword"}
            Normal: one utterance (``start_of_input`` marks the barge-in
            point). Hotword: listen until the grammar matches.
        start_input_timers : bool
            False to start the no-input timer later with
            :meth:`start_input_timers` (e.g. from another thread once a
            prompt has been played).
        **params
            Parameters for this recognition only (``no_input_timeout=3000``).

        Returns
        -------
        RecognitionComplete or None
            The result: ``.completion_cause`` (``"Success"``, ``"NoMatch"``,
            ``"NoInputTimeout"``, ...), ``.asr``, ``.nlu``, ``.value``. None
            when another thread ended the recognition with :meth:`stop`.

        Raises
        ------
        MethodFailedError
            e.g. an unknown grammar (``code`` ``"GramLoadFailure"``).
        LocalProtocolError
            A recognition is already running.
        TimeoutError, DisconnectedError
        """
        waiter, deadline = self._command(
            lambda r: r.recognize(
                grammar,
                *more_grammars,
                start_input_timers=start_input_timers,
                recognition_mode=mode,
                **params,
            ),
            (RecognitionComplete, Stopped),
            timeout,
            any_id=True,
        )
        try:
            event = self._wait(waiter, deadline, "RECOGNIZE")
        except TimeoutError:
            if self._rec.state is RecognizerState.RECOGNITION:
                try:
                    self.stop(timeout=_STOP_WAIT)
                except VoxsyncError as exc:
                    log.debug("%s: STOP after a recognize() timeout failed: %s", self.name, exc)
            raise
        if isinstance(event, RecognitionComplete):
            return event
        return None

    def start_input_timers(self, timeout: Optional[float] = None) -> None:
        """Start the no-input timer of the running recognition (``START-INPUT-TIMERS``).

        Raises
        ------
        LocalProtocolError
            No recognition is running.
        RecognitionError, TimeoutError, DisconnectedError
        """
        waiter, deadline = self._command(
            lambda r: r.start_input_timers(), (InputTimersStarted,), timeout
        )
        self._wait(waiter, deadline, "START-INPUT-TIMERS")

    def stop(self, timeout: Optional[float] = None) -> Optional[RecognitionEvent]:
        """Stop the running recognition (``STOP``); do nothing if none runs.

        Returns
        -------
        Stopped, RecognitionComplete or None
            ``Stopped``; the result if the recognition completed first; None
            when no recognition was running.

        Raises
        ------
        TimeoutError, DisconnectedError
        """

        def build(rec: Recognizer) -> str:
            if rec.state is not RecognizerState.RECOGNITION:
                raise _NothingToDo
            return rec.stop()

        try:
            waiter, deadline = self._command(
                build, (Stopped, RecognitionComplete), timeout, any_id=True
            )
        except _NothingToDo:
            return None
        try:
            return self._wait(waiter, deadline, "STOP")
        except VoxsyncError as exc:
            if isinstance(exc, MethodNotAllowedError):
                return None  # the recognition ended before the STOP arrived
            raise

    def close(self) -> None:
        """End the session (``CLOSE``, waiting up to 3 s for ``CLOSED``), then close.

        A running recognition is stopped first. Idempotent, never raises,
        safe from any thread including a handler. See
        :meth:`voxsync.connection.Connection.close`.
        """
        if self.state is State.OPEN and not self._close_sent and self._fatal is None:
            try:
                self._close_session(_CLOSE_WAIT)
            except VoxsyncError as exc:
                log.debug("%s: closing the session cleanly failed: %s", self.name, exc)
        super().close()

    def _close_session(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self._rec.state is RecognizerState.RECOGNITION:
            self.stop(timeout=timeout)

        def build(rec: Recognizer) -> str:
            if rec.state is not RecognizerState.IDLE_SESSION or self._close_sent:
                raise _NothingToDo
            return self._build_close()

        try:
            waiter, _ = self._command(build, (Closed,), timeout, any_id=True)
        except _NothingToDo:
            return
        self._wait(waiter, deadline, "CLOSE")


def create_bot(**options: Any) -> BotConnection:
    """Create a (not yet connected) :class:`BotConnection`; see its parameters."""
    return BotConnection(**options)
