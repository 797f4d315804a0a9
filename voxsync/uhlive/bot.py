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

import functools
import logging
import time
from typing import Any, Callable, ClassVar, FrozenSet, Optional, Sequence, Tuple, Type, Union

from voxsync.connection import State
from voxsync.errors import (
    ConfigurationError,
    DisconnectedError,
    LocalProtocolError,
    RemoteProtocolError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import Message, Transcript
from voxsync.request import Request
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
from voxsync.wsconnection import Frame, WebSocketConnection

__all__ = ["BotConnection", "create_bot"]

log = logging.getLogger(__name__)

#: The silence byte of each codec (16-bit zero, G.711 A-law and mu-law zero).
_SILENCE_BYTE = {"linear": b"\x00", "g711a": b"\xd5", "g711u": b"\xff"}

_STOP_WAIT = 3.0  # seconds recognize() waits for STOPPED after its own timeout


class _NothingToDo(Exception):
    """Internal: a command turned out to be unnecessary in the current state."""


class BotConnection(WebSocketConnection):
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
        Audio encoding; sets :attr:`input_format` (always 8 kHz mono).
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
    :class:`~voxsync.errors.LocalProtocolError` without being sent. Commands
    are written in order with the audio queued before them (see
    :meth:`voxsync.connection.Connection._request`) and return after the
    handlers of their answer's events ran (unless called from a handler).

    :meth:`finish` (or leaving a ``with`` block) ends the session gracefully:
    it waits for a running recognition's result, sends ``CLOSE`` and returns
    after ``CLOSED``; if the socket closes first it raises
    :class:`~voxsync.errors.DisconnectedError` with the close code and
    reason. :meth:`close` is immediate: it sends no ``CLOSE`` and does not
    wait for the server; a command still waiting raises
    :class:`~voxsync.errors.DisconnectedError` at once.
    """

    provider: ClassVar[str] = "uhlive-bot"
    max_chunk_seconds = 0.5
    service: ClassVar[str] = "the Uh!ive Recognition API"
    event_names: ClassVar[FrozenSet[str]] = WebSocketConnection.event_names | frozenset(
        {"transcript", "start_of_input", "recognition_complete"}
    )

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
        self._fetch_token = functools.partial(
            get_token,
            client_id,
            client_secret,
            user_id,
            user_pwd,
            auth_server=auth_server,
            realm=realm,
        )
        self._api_url = api_url
        self._open_args = (custom_id, channel_id, audio_codec, session_id)
        self._command_timeout = command_timeout
        self._silence = _SILENCE_BYTE[audio_codec] * fmt.nbytes(silence_chunk_ms / 1000.0)
        self._rec = Recognizer()
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
    def _reset_codec(self) -> None:
        self._rec = Recognizer()  # a failed earlier attempt may have left OPEN pending

    def _create_transport(self, timeout: float) -> WebSocketTransport:
        token = self._token or self._fetch_token(timeout=timeout)
        return WebSocketTransport(
            build_bot_url(self._api_url),
            headers={"Authorization": f"bearer {token}"},
            secrets=[token],
            service=self.service,
        )

    def _handshake_frames(self) -> Sequence[Frame]:
        custom_id, channel_id, audio_codec, session_id = self._open_args
        return [
            self._rec.open(
                custom_id=custom_id,
                channel_id=channel_id,
                audio_codec=audio_codec,
                session_id=session_id,
            )
        ]

    def _handshake_reply(self, frame: Frame) -> bool:
        event = self._handle_frame(frame)
        if isinstance(event, Opened):
            self._connect_info = dict(event.raw)
            self._covered_until = time.monotonic()
            log.debug("%s: session %s open", self.name, self._rec.channel_id)
            return True
        if event is not None and isinstance(event, ERROR_EVENTS):
            raise error_from_event(event) or RemoteProtocolError(event.type)
        return False

    def _receive(self, frame: Frame) -> None:
        self._handle_frame(frame)

    def _write_chunk(self, chunk: bytes) -> None:
        self._send_audio(chunk)

    def _keepalive(self) -> None:
        now = time.monotonic()
        if now + 0.01 < self._covered_until:
            return  # audio sent earlier still covers this moment
        with self._codec_lock:
            in_session = self._rec.state is not RecognizerState.NO_SESSION
        if in_session:
            self._send_audio(self._silence)

    def _end_of_stream(self) -> None:
        # finish(): the graceful end of the session (CLOSE, then wait for CLOSED)
        frame = None
        with self._codec_lock:
            self._finishing = True
            state = self._rec.state
            if state is RecognizerState.IDLE_SESSION and not self._rec.closing:
                frame = self._build_close()
            elif state is RecognizerState.NO_SESSION and not self._rec.closing:
                self._stream_ended()
            # in a recognition: CLOSE goes out when its result arrived (_handle_frame)
        if frame is not None:
            self._write_frame(frame)

    # ------------------------------------------------------------ internals
    def _send_audio(self, chunk: bytes) -> None:
        with self._codec_lock:
            if self._rec.state is RecognizerState.NO_SESSION and (
                self._close_sent or self._finishing
            ):
                # our CLOSE was answered: audio still queued has no session to go to
                log.debug("%s: %d bytes after the session closed, not sent", self.name, len(chunk))
                return
            frame = self._rec.send_audio_chunk(chunk)
        self._write_frame(frame)
        now = time.monotonic()
        self._covered_until = max(self._covered_until, now) + self.audio_format.duration(len(frame))

    def _build_close(self) -> str:
        # caller holds _codec_lock; the frame is sent after releasing it
        frame = self._rec.close()
        self._close_sent = True
        return frame

    def _handle_frame(self, data: Union[str, bytes]) -> Optional[RecognitionEvent]:
        if isinstance(data, bytes):
            self._deliver(
                RemoteProtocolError(
                    f"the service sent a binary frame of {len(data)} bytes; only text "
                    "events are expected (ignored)"
                )
            )
            return None
        with self._codec_lock:
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
        with self._codec_lock:
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
                self._send_control(close_frame)
            except VoxsyncError:
                log.debug("%s: CLOSE after the last result could not be sent", self.name)
        self._emit(event)
        self._offer_reply(event)  # after its events, so a command returns after their handlers
        if isinstance(event, Closed):
            if self._finishing or self._close_sent:
                # our CLOSE was answered (the end-of-stream marker): the server may now
                # drop the socket
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
        what: str,
        *,
        any_id: bool = False,
    ) -> RecognitionEvent:
        """Send one command in order with the audio; wait (bounded) for the event that ends it."""
        if self.state is not State.OPEN:
            if self.state is State.FINISHING:
                raise LocalProtocolError("the bot is finishing; no more commands can be sent")
            if self._fatal is not None:
                raise DisconnectedError(f"the connection failed: {self._fatal}") from self._fatal
            raise LocalProtocolError(
                f"the bot connection is {self.state.value}; call connect() first"
            )
        timeout = self._command_timeout if timeout is None else timeout
        with self._codec_lock:
            frame = build(self._rec)
            request_id = self._rec.last_request_id

        def error(event: Any) -> Optional[VoxsyncError]:
            if isinstance(event, ERROR_EVENTS) and event.request_id == request_id:
                return error_from_event(event) or RemoteProtocolError(event.type)
            return None

        def match(event: Any) -> bool:
            return isinstance(event, done) and (any_id or event.request_id == request_id)

        reply: RecognitionEvent = self._request(
            frame, Request(match, error=error, what=what), timeout
        )
        return reply

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
        self._command(lambda r: r.set_params(**params), (ParamsSet,), timeout, "SET-PARAMS")

    def get_params(self, timeout: Optional[float] = None) -> dict[str, Any]:
        """Return the session's parameters (``GET-PARAMS``).

        Raises
        ------
        RecognitionError, LocalProtocolError, TimeoutError, DisconnectedError
        """
        event = self._command(lambda r: r.get_params(), (DefaultParams,), timeout, "GET-PARAMS")
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
        self._command(
            lambda r: r.define_grammar(alias, uri), (GrammarDefined,), timeout, "DEFINE-GRAMMAR"
        )

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
        try:
            event = self._command(
                lambda r: r.recognize(
                    grammar,
                    *more_grammars,
                    start_input_timers=start_input_timers,
                    recognition_mode=mode,
                    **params,
                ),
                (RecognitionComplete, Stopped),
                timeout,
                "RECOGNIZE",
                any_id=True,
            )
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
        self._command(
            lambda r: r.start_input_timers(), (InputTimersStarted,), timeout, "START-INPUT-TIMERS"
        )

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
            return self._command(
                build, (Stopped, RecognitionComplete), timeout, "STOP", any_id=True
            )
        except _NothingToDo:
            return None
        except VoxsyncError as exc:
            if isinstance(exc, MethodNotAllowedError):
                return None  # the recognition ended before the STOP arrived
            raise


def create_bot(**options: Any) -> BotConnection:
    """Create a (not yet connected) :class:`BotConnection`; see its parameters."""
    return BotConnection(**options)
