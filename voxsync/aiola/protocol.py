"""aiOla's streaming protocol without I/O: what to send, how to read what comes back.

Pure functions and small state objects, so they can be tested (and fuzzed)
without sockets; :class:`voxsync.aiola.AiolaConnection` does the I/O with
:mod:`voxsync.transport.socketio`.

* :func:`stream_query` / :func:`stream_url`: the connection query;
* :func:`decode_event`: one server event -> a voxsync event or error;
* :func:`refusal_error`: a refused connection -> the right exception;
* :class:`SpeechTracker`: how many utterances sent are not transcribed yet
  (aiOla has no end-of-audio message, so ``finish()`` needs to know).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Mapping, Optional, Union
from urllib.parse import urlencode

import numpy as np

from voxsync.aiola._rest import AiolaAuthenticationError
from voxsync.aiola.types import Structured
from voxsync.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionError,
    RemoteProtocolError,
    ServerError,
    TimeoutError,
    VoxsyncError,
)
from voxsync.events import Event, Transcript, Translation, UnknownEvent
from voxsync.redact import redact

__all__ = [
    "CHUNK_BYTES",
    "NAMESPACE",
    "SOCKETIO_PATH",
    "SPEECH_RMS",
    "UTTERANCE_PAUSE",
    "SpeechTracker",
    "decode_event",
    "refusal_error",
    "stream_query",
    "stream_url",
]

SOCKETIO_PATH = "/api/voice-streaming/socket.io"
NAMESPACE = "/events"

#: Largest ``binary_data`` payload sent (aiOla's recommended 4096 bytes, 128 ms);
#: a bigger ``send()`` is cut into pieces of this size.
CHUNK_BYTES = 4096

#: RMS level (16-bit scale) from which a chunk counts as speech.
SPEECH_RMS = 300.0

#: Seconds of non-speech audio that end an utterance, for :class:`SpeechTracker`.
#: Longer than the usual end-of-utterance silence of voice activity detection
#: (about 0.5 s): two utterances are rather counted as one than one as two.
UTTERANCE_PAUSE = 0.8

#: engine.io's message for a refused handshake ("Unexpected status code 401 ...")
_AUTH_STATUS = re.compile(r"status code (401|403)\b")

# CONNECT_ERROR codes that mean "these credentials will not do" (no code: the same)
_AUTH_CODES = frozenset({"UNAUTHORIZED", "FORBIDDEN", "INVALID_TOKEN", "TOKEN_EXPIRED"})


def stream_query(
    token: str,
    *,
    execution_id: str,
    workflow_id: str,
    time_zone: str,
    lang_code: Optional[str] = None,
    keywords: Optional[Mapping[str, str]] = None,
    tasks_config: Optional[Mapping[str, Any]] = None,
    vad_config: Optional[Mapping[str, Any]] = None,
) -> dict[str, str]:
    """The query parameters of a streaming connection (JSON for the structured ones)."""
    query: dict[str, str] = {
        "execution_id": execution_id,
        "flow_id": workflow_id,
        "time_zone": time_zone,
        "x-aiola-api-token": token,
    }
    if lang_code:
        query["lang_code"] = lang_code
    if keywords:
        query["keywords"] = json.dumps(dict(keywords))
    if tasks_config:
        query["tasks_config"] = json.dumps(dict(tasks_config))
    if vad_config:
        query["vad_config"] = json.dumps(dict(vad_config))
    return query


def stream_url(base_url: str, token: str, **params: Any) -> str:
    """``base_url`` with the :func:`stream_query` query. Contains the token: never log it."""
    return f"{base_url.rstrip('/')}?{urlencode(stream_query(token, **params))}"


def decode_event(
    name: str,
    data: Any,
    *,
    language: Optional[str] = None,
    translation: Optional[Mapping[str, Any]] = None,
    index: int = 0,
) -> Union[Event, VoxsyncError]:
    """Turn one server event into a voxsync event or error (pure; no I/O).

    Parameters
    ----------
    name : str
        The Socket.IO event name.
    data : object
        Its first argument as python-socketio decoded it.
    language : str or None
        The stream's ``lang_code``, put on transcripts.
    translation : mapping or None
        The stream's ``tasks_config["TRANSLATION"]`` (source/target languages).
    index : int
        Utterance number: the ``id`` of a transcript, and of the translation
        of that transcript.

    Returns
    -------
    Event or VoxsyncError
        :class:`Transcript`, :class:`Translation`, :class:`Structured`,
        :class:`~voxsync.events.UnknownEvent` (anything else, never dropped), :class:`ServerError`
        for ``error`` events, :class:`RemoteProtocolError` for a known event
        with a payload of the wrong shape.
    """
    raw: Mapping[str, Any] = data if isinstance(data, Mapping) else {"data": data}
    if name == "transcript":
        text = raw.get("transcript")
        if not isinstance(text, str):
            return RemoteProtocolError(
                "aiOla sent a transcript event without a text 'transcript' field: "
                f"{redact(repr(data))[:200]}"
            )
        return Transcript(text=text, is_final=True, language=language, id=str(index), raw=raw)
    if name == "translation":
        text = raw.get("translation")
        if not isinstance(text, str):
            return RemoteProtocolError(
                "aiOla sent a translation event without a text 'translation' field: "
                f"{redact(repr(data))[:200]}"
            )
        cfg = translation or {}
        return Translation(
            text=text,
            source_language=cfg.get("src_lang_code") or language,
            target_language=cfg.get("dst_lang_code"),
            id=str(index),
            raw=raw,
        )
    if name == "structured":
        results = raw.get("results")
        return Structured(results=results if isinstance(results, Mapping) else {}, raw=raw)
    if name == "error":
        message = raw.get("message")
        details = raw.get("details")
        if message is None and isinstance(data, str) and data:
            message = data  # a bare string payload is the server's message
        text = str(message) if message is not None else "aiOla reported an error"
        if details:
            text = f"{text}: {details}"
        code = raw.get("code")
        return ServerError(redact(text), code=str(code) if code is not None else None, raw=raw)
    return UnknownEvent(type=name, raw=raw)


def refusal_error(
    connect_error: Any, text: str, *, base_url: str, secrets: tuple[str, ...] = ()
) -> VoxsyncError:
    """The exception for a connection the service (or the network) refused.

    Parameters
    ----------
    connect_error : object
        The Socket.IO CONNECT_ERROR payload, if the namespace was refused
        (``{"message", "data": {"code"}}``); None otherwise.
    text : str
        The transport's error message.
    base_url : str
    secrets : tuple of str
        Redacted from every message (the token).

    Returns
    -------
    VoxsyncError
        :class:`ConcurrencyLimitError` (``MAX_CONCURRENCY_REACHED``),
        :class:`ServerError` (any other code, retryable), an authentication
        error (an auth code, no code, or HTTP 401/403 at the handshake),
        :class:`TimeoutError` or :class:`ConnectionError`.
    """
    text = redact(text, secrets)
    if isinstance(connect_error, Mapping):  # a Socket.IO CONNECT_ERROR from the service
        data = connect_error
        message = redact(str(data.get("message", "connection refused")), secrets)
        extra = data.get("data")
        code = extra.get("code") if isinstance(extra, Mapping) else data.get("code")
        if code == "MAX_CONCURRENCY_REACHED":
            return ConcurrencyLimitError(
                f"aiOla refused the stream: {message}; close a session first",
                code=code,
                raw=data,
            )
        if code is not None and code not in _AUTH_CODES:
            return ServerError(
                f"aiOla refused the stream: {message}",
                code=str(code),
                retryable=True,
                raw=data,
            )
        return AiolaAuthenticationError(
            f"aiOla refused the stream: {message}; check the access token / API key",
            code=str(code) if code else None,
            raw=data,
        )
    if _AUTH_STATUS.search(text):
        return AuthenticationError(f"aiOla refused the credentials: {text}")
    if "timed out" in text.lower() or "timeout" in text.lower():
        return TimeoutError(f"aiOla did not accept the stream in time: {text}")
    return ConnectionError(f"cannot connect to aiOla at {redact(base_url)}: {text}")


def is_speech(chunk: bytes, rms: float = SPEECH_RMS) -> bool:
    """True when 16-bit PCM ``chunk`` is loud enough to count as speech."""
    if len(chunk) < 2:
        return False
    samples = np.frombuffer(chunk, dtype="<i2", count=len(chunk) // 2).astype(np.int64)
    return int(np.dot(samples, samples)) >= rms**2 * len(samples)


class SpeechTracker:
    """How many utterances were sent and not transcribed yet (aiOla has no end-of-audio).

    Audio is told to be speech by its level (:data:`SPEECH_RMS`); an
    utterance starts at the first speech after at least ``pause`` seconds
    of non-speech audio (measured in audio time, as the service's voice
    activity detection does), so one transcript is expected per utterance.
    A transcript accounts for the oldest utterance not transcribed yet;
    one more than there were utterances (the service split one) accounts
    for nothing. ``pause`` errs long: an utterance counted twice would make
    ``finish()`` wait for a transcript that never comes.

    Thread-safe: the writer calls :meth:`audio`, the reader :meth:`transcript`.

    Parameters
    ----------
    rms : float
        Level (16-bit scale) from which a chunk counts as speech.
    pause : float
        Seconds of non-speech audio that end an utterance.
    sample_rate : int
        Of the 16-bit mono audio passed to :meth:`audio`.
    """

    def __init__(
        self, rms: float = SPEECH_RMS, pause: float = UTTERANCE_PAUSE, sample_rate: int = 16000
    ) -> None:
        self.rms = rms
        self.pause = pause
        self._bytes_per_second = 2 * sample_rate
        self._lock = threading.Lock()
        self.utterances = 0  # utterances sent
        self.transcribed = 0  # of them, accounted for by a transcript
        self._quiet = float("inf")  # seconds of non-speech audio since the last speech

    def audio(self, chunk: bytes) -> None:
        """Audio ``chunk`` is being sent."""
        speech = is_speech(chunk, self.rms)
        with self._lock:
            if not speech:
                self._quiet += len(chunk) / self._bytes_per_second
                return
            if self._quiet >= self.pause:
                self.utterances += 1
            self._quiet = 0.0

    def transcript(self) -> None:
        """A transcript arrived."""
        with self._lock:
            self.transcribed = min(self.transcribed + 1, self.utterances)

    def forget(self) -> None:
        """Stop waiting for the utterances sent so far (the stream was reset).

        The next speech starts a new utterance.
        """
        with self._lock:
            self.transcribed = self.utterances
            self._quiet = float("inf")

    @property
    def pending(self) -> int:
        """Utterances sent whose transcript has not arrived (0: none)."""
        with self._lock:
            return self.utterances - self.transcribed
