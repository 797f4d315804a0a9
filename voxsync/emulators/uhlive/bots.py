"""The ``/bots`` endpoint of the Uh!ive emulator: the Recognition (H2B) API.

:func:`serve_bot` runs one voicebot session on an accepted WebSocket
(``websockets.sync.server.ServerConnection``): JSON commands in text frames,
raw audio in binary frames, JSON events back, following the command/event
state machine of the service::

    NoSession --OPEN--> IdleSession --RECOGNIZE--> Recognition
    Recognition --(result, timeout, STOP)--> IdleSession --CLOSE--> NoSession

Recognition
-----------
Audio (8 kHz, ``linear`` or G.711 ``g711a``/``g711u`` as chosen at ``OPEN``)
is decoded to 16-bit PCM and fed to the emulator's engine while a
``RECOGNIZE`` runs. With the pocketsphinx engine, the closed grammars listed
below recognise with a decoder restricted to their words ("yes"/"no", digit
names, number words), which is what makes 8 kHz telephone audio usable with
the wideband en-us model; ``builtin:speech/transcribe`` uses the full model.

==========================================  ==========================================
grammar                                     ``nlu.value``
==========================================  ==========================================
``builtin:speech/boolean``                  ``true`` for yes, ``false`` for no
``builtin:speech/spelling/digits``          the digits heard, as a string (``"4921"``)
``builtin:speech/spelling/phone_number``    same as digits
``builtin:speech/zipcode``                  same as digits
``builtin:speech/text2num``                 an integer (``"twenty three"`` -> 23)
``builtin:speech/transcribe``               the transcript
==========================================  ==========================================

The digit grammars accept the query parameters ``length``, ``min_length``,
``max_length`` and ``regex`` (e.g.
``builtin:speech/spelling/digits?length=4``, which also restricts the
decoder to exactly that many digits); a result that does not fit is a
``NoMatch``. Grammars can be named with ``DEFINE-GRAMMAR`` and used as
``session:<alias>``; an unknown grammar fails with ``METHOD-FAILED``
(``GramDefinitionFailure`` at definition, ``GramLoadFailure`` at
``RECOGNIZE``).

Timers (parameters in milliseconds, set with ``SET-PARAMS`` or per
``RECOGNIZE``) count **audio time**, so they behave the same whether a
client streams in real time or faster: ``no_input_timeout`` (no speech after
the input timers started: ``NoInputTimeout``), ``recognition_timeout``
(speech too long: ``SuccessMaxtime`` / ``NoMatchMaxtime``) and
``hotword_max_duration`` (``HotwordMaxtime``).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

import numpy as np

from voxsync.audio.g711 import alaw_decode, ulaw_decode

__all__ = ["BUILTIN_GRAMMARS", "DEFAULT_PARAMS", "serve_bot"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000

#: Session parameters and their values before any ``SET-PARAMS``.
DEFAULT_PARAMS: Dict[str, Any] = {
    "speech_language": "en",
    "confidence_threshold": 0.5,
    "no_input_timeout": 5000,
    "recognition_timeout": 20000,
    "speech_complete_timeout": 800,
    "speech_incomplete_timeout": 1500,
    "speech_nomatch_timeout": 3000,
    "hotword_max_duration": 10000,
    "n_best_list_length": 1,
    "logging_tag": "",
}

_MS_PARAMS = frozenset(
    {
        "no_input_timeout",
        "recognition_timeout",
        "speech_complete_timeout",
        "speech_incomplete_timeout",
        "speech_nomatch_timeout",
        "hotword_max_duration",
    }
)

# which command is allowed in which state
_NO_SESSION, _IDLE, _RECOGNITION = "NoSession", "IdleSession", "Recognition"
_ALLOWED: Dict[str, Tuple[str, ...]] = {
    "OPEN": (_NO_SESSION,),
    "SET-PARAMS": (_IDLE,),
    "GET-PARAMS": (_IDLE,),
    "DEFINE-GRAMMAR": (_IDLE,),
    "RECOGNIZE": (_IDLE,),
    "START-INPUT-TIMERS": (_RECOGNITION,),
    "STOP": (_RECOGNITION,),
    "CLOSE": (_IDLE,),
}

_AUDIO_CODECS = ("linear", "g711a", "g711u")

# Line noise added to the decoded audio before recognition (+-16 of 32768, about
# -66 dBFS). Digital-zero silence upsets pocketsphinx's running cepstral mean
# normalisation at 8 kHz (results then depend on how long the silence lasted);
# a real telephone line always carries such a noise floor.
_NOISE_LSB = 16
_NOISE_SEED = 0x5EED

# energy detector for START-OF-INPUT: 20 ms frames, 3 loud frames in a row
_FRAME = 160
_SPEECH_RMS = 300.0
_SPEECH_FRAMES = 3

# --------------------------------------------------------------------------- grammars

_DIGITS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "to": "2",
    "too": "2",
    "three": "3",
    "four": "4",
    "for": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_YES = frozenset({"yes", "yeah", "yep", "yup", "sure", "correct", "right", "okay", "ok", "oui"})
_NO = frozenset({"no", "nope", "nah", "wrong", "incorrect", "non"})
_UNITS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], start=2
    )
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1000000}

Interpreter = Callable[[List[str], Dict[str, str]], Tuple[bool, Any]]


def _tokens(text: str) -> List[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _interpret_boolean(words: List[str], query: Dict[str, str]) -> Tuple[bool, Any]:
    yes = any(w in _YES for w in words)
    no = any(w in _NO for w in words)
    if yes == no:
        return False, None
    return True, yes


def _check_digits(value: str, query: Dict[str, str]) -> bool:
    try:
        if "length" in query and len(value) != int(query["length"]):
            return False
        if "min_length" in query and len(value) < int(query["min_length"]):
            return False
        if "max_length" in query and len(value) > int(query["max_length"]):
            return False
    except ValueError:
        return False
    if "regex" in query:
        try:
            return re.fullmatch(query["regex"], value) is not None
        except re.error:
            return False
    return True


def _interpret_digits(words: List[str], query: Dict[str, str]) -> Tuple[bool, Any]:
    digits = []
    for w in words:
        if w.isdigit():
            digits.append(w)
        elif w in _DIGITS:
            digits.append(_DIGITS[w])
    value = "".join(digits)
    if not value or not _check_digits(value, query):
        return False, None
    return True, value


def _interpret_text2num(words: List[str], query: Dict[str, str]) -> Tuple[bool, Any]:
    total = current = 0
    seen = False
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
        elif w.isdigit():
            current += int(w)
        else:
            continue  # "and", fillers and other words carry no value
        seen = True
    if not seen:
        return False, None
    return True, total + current


def _interpret_transcribe(words: List[str], query: Dict[str, str]) -> Tuple[bool, Any]:
    text = " ".join(words)
    return (True, text) if text else (False, None)


@dataclass(frozen=True)
class _Builtin:
    interpret: Interpreter
    vocabulary: Optional[Tuple[str, ...]]  # None: the full model
    single_word: bool = False  # exactly one word of the vocabulary per utterance


_DIGIT_WORDS = (
    "zero",
    "oh",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
_NUMBER_WORDS = (*_UNITS, *_TENS, "hundred", "thousand", "million", "and")

#: Builtin grammars the emulator knows, by path (the part after ``builtin:``).
BUILTIN_GRAMMARS: Dict[str, _Builtin] = {
    "speech/boolean": _Builtin(_interpret_boolean, ("yes", "no"), single_word=True),
    "speech/spelling/digits": _Builtin(_interpret_digits, _DIGIT_WORDS),
    "speech/spelling/phone_number": _Builtin(_interpret_digits, _DIGIT_WORDS),
    "speech/zipcode": _Builtin(_interpret_digits, _DIGIT_WORDS),
    "speech/text2num": _Builtin(_interpret_text2num, _NUMBER_WORDS),
    "speech/transcribe": _Builtin(_interpret_transcribe, None),
}


@dataclass(frozen=True)
class _ResolvedGrammar:
    uri: str  # as named in RECOGNIZE ("session:x" or "builtin:...")
    path: str  # builtin path without query
    query: Dict[str, str]
    builtin: _Builtin


def _parse_builtin(uri: str) -> Optional[Tuple[str, Dict[str, str]]]:
    if not uri.startswith("builtin:"):
        return None
    path, _, query = uri[len("builtin:") :].partition("?")
    if path not in BUILTIN_GRAMMARS:
        return None
    return path, dict(parse_qsl(query, keep_blank_values=True))


# --------------------------------------------------------------------------- engines

# restricted engines derived from an emulator's pocketsphinx engine, per (words, silence)
_engine_cache: weakref.WeakKeyDictionary[Any, Dict[Any, Any]] = weakref.WeakKeyDictionary()
_engine_lock = threading.Lock()


# how a decoder is restricted: (kind, words, count); kind "one" = exactly one
# word, "any" = any sequence of the words, "exactly" = ``count`` words
Restriction = Tuple[str, Tuple[str, ...], int]


def _restriction(grammars: List[_ResolvedGrammar]) -> Optional[Restriction]:
    """How to restrict the decoder for ``grammars``, or None for the full model."""
    if any(g.builtin.vocabulary is None for g in grammars):
        return None
    words = tuple(sorted({w for g in grammars for w in (g.builtin.vocabulary or ())}))
    if len(grammars) == 1:
        grammar = grammars[0]
        if grammar.builtin.single_word:
            return ("one", words, 1)
        length = grammar.query.get("length", "")
        digits = grammar.builtin.interpret is _interpret_digits
        if digits and length.isdigit() and 1 <= int(length) <= 32:
            return ("exactly", words, int(length))
    return ("any", words, 0)


def _jsgf(restriction: Restriction) -> Optional[str]:
    kind, words, count = restriction
    if kind == "any":
        return None
    alternatives = " | ".join(words)
    body = alternatives if kind == "one" else " ".join(["<word>"] * count)
    rule = "" if kind == "one" else f"<word> = {alternatives} ;\n"
    return f"#JSGF V1.0;\ngrammar closed;\npublic <answer> = {body} ;\n{rule}"


def _engine_for(engine: Any, restriction: Optional[Restriction], silence_ms: int) -> Any:
    """The engine to use for a recognition: a restricted pocketsphinx one when possible.

    With the pocketsphinx engine, closed grammars get a decoder that knows
    only their words (same acoustic model and dictionary): exactly one of
    them (``speech/boolean``), exactly ``length`` of them (digit grammars
    with a ``length`` query) or any sequence of them (digits, numbers); the
    end-of-speech silence follows ``speech_complete_timeout``. Other engines
    are used as they are.
    """
    if restriction is None or getattr(engine, "kind", None) != "pocketsphinx":
        return engine
    silence_ms = min(10000, max(60, int(silence_ms)))
    key = (restriction, silence_ms)
    with _engine_lock:
        per_engine = _engine_cache.setdefault(engine, {})
        cached = per_engine.get(key)
        if cached is None:
            from voxsync.emulators.engine import make_engine

            base = getattr(engine, "options", None)
            options: Dict[str, Any] = {
                "hmm": getattr(base, "hmm", None),
                "dict": getattr(base, "dict", None),
                "silence_ms": silence_ms,
                "partial_ms": int(getattr(engine, "partial_ms", 200)),
            }
            jsgf = _jsgf(restriction)
            if jsgf is None:
                options["vocabulary"] = list(restriction[1])
            else:
                options["grammar"] = jsgf
            cached = make_engine("pocketsphinx", **options)
            per_engine[key] = cached
        return cached


# --------------------------------------------------------------------------- session


class _CommandError(Exception):
    def __init__(self, event: str, cause: Optional[str], reason: str) -> None:
        super().__init__(reason)
        self.event = event
        self.cause = cause
        self.reason = reason


def _check_params(params: Dict[str, Any]) -> Dict[str, Any]:
    for name, value in params.items():
        if name not in DEFAULT_PARAMS:
            raise _CommandError("INVALID-PARAM-VALUE", None, f"unknown parameter {name!r}")
        bad = False
        if name in _MS_PARAMS or name == "n_best_list_length":
            bad = isinstance(value, bool) or not isinstance(value, int) or value < 0
            if name == "n_best_list_length" and not bad:
                bad = value < 1
        elif name == "confidence_threshold":
            bad = (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0.0 <= value <= 1.0
            )
        else:
            bad = not isinstance(value, str)
        if bad:
            raise _CommandError(
                "INVALID-PARAM-VALUE", None, f"invalid value {value!r} for parameter {name!r}"
            )
    return params


@dataclass
class _Recognition:
    request_id: int
    grammars: List[_ResolvedGrammar]
    mode: str
    params: Dict[str, Any]
    session: Any
    wall0: float
    timers_at: Optional[float] = None
    audio_s: float = 0.0
    speech_at: Optional[float] = None
    loud_frames: int = 0
    last_text: str = ""
    last_confidence: Optional[float] = None
    residue: bytes = b""
    texts: List[str] = field(default_factory=list)


class _BotSession:
    def __init__(self, ws: Any, engine: Any, state: Any) -> None:
        self.ws = ws
        self.engine = engine
        self.state = state
        self.session_state = _NO_SESSION
        self.channel_id = ""
        self.codec = "linear"
        self.params = self.initial_params()
        self.grammars: Dict[str, str] = {}
        self.job: Optional[_Recognition] = None
        self.pcm_residue = b""
        self.frames_in = 0
        self.noise = np.random.default_rng(_NOISE_SEED)

    # -- transport

    def send_event(
        self,
        event: str,
        request_id: Any,
        *,
        headers: Optional[Dict[str, Any]] = None,
        cause: Optional[str] = None,
        reason: Optional[str] = None,
        body: Any = "",
    ) -> None:
        frame = {
            "event": event,
            "request_id": request_id,
            "channel_id": self.channel_id,
            "headers": headers or {},
            "completion_cause": cause,
            "completion_reason": reason,
            "body": body,
        }
        delay = float(getattr(self.state, "event_delay", 0.0) or 0.0)
        if delay > 0:
            time.sleep(delay)
        self.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))

    def faults(self) -> Any:
        return getattr(self.state, "faults", None)

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        idle = float(getattr(self.state, "idle_timeout", 60.0) or 60.0)
        stopping = getattr(self.state, "stopping", None)
        last = time.monotonic()
        try:
            while stopping is None or not stopping.is_set():
                try:
                    message = self.ws.recv(timeout=min(idle, 0.5))
                except TimeoutError:
                    # pings count as activity when the connection records them
                    last = max(last, float(getattr(self.ws, "last_activity", last)))
                    if time.monotonic() - last >= idle:
                        log.info("bot %s: no frame for %.0f s, closing", self.channel_id, idle)
                        self.ws.close(1000, "idle timeout")
                        return
                    continue
                last = time.monotonic()
                self.frames_in += 1
                if self.inject_faults():
                    return
                if isinstance(message, bytes):
                    self.on_audio(message)
                else:
                    self.on_text(message)
        except ConnectionClosed:
            return
        finally:
            self.end_job()

    def inject_faults(self) -> bool:
        """Apply the emulator's faults after a frame; True when the socket was cut."""
        faults = self.faults()
        if faults is None:
            return False
        drop = getattr(faults, "drop_after_frames", None)
        if drop is not None and self.frames_in >= drop:
            log.info("bot %s: fault: dropping the connection", self.channel_id)
            self.ws.close_socket()
            return True
        bad = getattr(faults, "malformed_after_frames", None)
        if bad is not None and self.frames_in == bad:
            self.ws.send('{"event": "RECOGNITION-COMPLETE", "request_id": "oops"')
        return False

    # -- commands

    def on_text(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            self.send_event("METHOD-NOT-VALID", 0, reason="frame is not JSON")
            return
        if not isinstance(frame, dict):
            self.send_event("METHOD-NOT-VALID", 0, reason="frame is not a JSON object")
            return
        request_id = frame.get("request_id", 0)
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            request_id = 0
        command = frame.get("command")
        headers = frame.get("headers")
        body = frame.get("body", "")
        if not isinstance(command, str) or command not in _ALLOWED:
            self.send_event("METHOD-NOT-VALID", request_id, reason=f"unknown command {command!r}")
            return
        if headers is None:
            headers = {}
        if not isinstance(headers, dict) or not isinstance(body, str):
            self.send_event(
                "METHOD-NOT-VALID", request_id, reason="headers must be an object, body a string"
            )
            return
        if self.session_state not in _ALLOWED[command]:
            self.send_event(
                "METHOD-NOT-ALLOWED",
                request_id,
                reason=f"{command} not allowed in state {self.session_state}",
            )
            return
        handler = getattr(self, "cmd_" + command.lower().replace("-", "_"))
        try:
            handler(request_id, frame, headers, body)
        except _CommandError as exc:
            self.send_event(exc.event, request_id, cause=exc.cause, reason=exc.reason)

    def cmd_open(self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str) -> None:
        codec = headers.get("audio_codec", "linear")
        if codec not in _AUDIO_CODECS:
            raise _CommandError(
                "INVALID-PARAM-VALUE", None, f"audio_codec must be one of {_AUDIO_CODECS}"
            )
        prefix = frame.get("channel_id") or ""
        if not isinstance(prefix, str):
            prefix = ""
        self.codec = codec
        self.channel_id = f"{prefix}{secrets.token_hex(6)}"
        self.session_state = _IDLE
        self.send_event("OPENED", rid)

    def cmd_set_params(
        self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str
    ) -> None:
        self.params.update(_check_params(dict(headers)))
        self.send_event("PARAMS-SET", rid)

    def cmd_get_params(
        self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str
    ) -> None:
        self.send_event("DEFAULT-PARAMS", rid, headers=dict(self.params))

    def cmd_define_grammar(
        self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str
    ) -> None:
        alias = headers.get("content_id")
        if not isinstance(alias, str) or not alias:
            raise _CommandError("MISSING-PARAM", None, "content_id (the grammar alias) is missing")
        uri = body.strip()
        if not uri:
            raise _CommandError("MISSING-PARAM", None, "the body must hold the builtin grammar")
        if _parse_builtin(uri) is None:
            raise _CommandError(
                "METHOD-FAILED", "GramDefinitionFailure", f"unknown grammar {uri!r}"
            )
        self.grammars[alias] = uri
        self.send_event("GRAMMAR-DEFINED", rid)

    def _resolve(self, name: str) -> _ResolvedGrammar:
        uri = name
        if name.startswith("session:"):
            uri = self.grammars.get(name[len("session:") :], "")
        parsed = _parse_builtin(uri) if uri else None
        if parsed is None:
            raise _CommandError("METHOD-FAILED", "GramLoadFailure", f"unknown grammar {name!r}")
        path, query = parsed
        return _ResolvedGrammar(name, path, query, BUILTIN_GRAMMARS[path])

    def cmd_recognize(
        self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str
    ) -> None:
        names = [line.strip() for line in body.split("\n") if line.strip()]
        if not names:
            raise _CommandError("MISSING-PARAM", None, "no grammar in the body")
        grammars = [self._resolve(n) for n in names]
        mode = headers.get("recognition_mode", "normal")
        if mode not in ("normal", "hotword"):
            raise _CommandError(
                "INVALID-PARAM-VALUE", None, f"recognition_mode must be normal or hotword: {mode!r}"
            )
        start_timers = headers.get("start_input_timers", True)
        if not isinstance(start_timers, bool):
            raise _CommandError("INVALID-PARAM-VALUE", None, "start_input_timers must be a boolean")
        extra = {
            k: v
            for k, v in headers.items()
            if k not in ("recognition_mode", "content_type", "start_input_timers")
        }
        params = dict(self.params)
        params.update(_check_params(extra))
        try:
            restriction = _restriction(grammars)
            engine = _engine_for(self.engine, restriction, params["speech_complete_timeout"])
            session = engine.new_session(SAMPLE_RATE)
        except Exception as exc:
            log.exception("bot %s: cannot start the recogniser", self.channel_id)
            raise _CommandError("METHOD-FAILED", "Error", f"recogniser unavailable: {exc}") from exc
        self.job = _Recognition(
            request_id=rid,
            grammars=grammars,
            mode=mode,
            params=params,
            session=session,
            wall0=time.time(),
            timers_at=0.0 if start_timers else None,
        )
        self.session_state = _RECOGNITION
        self.send_event("RECOGNITION-IN-PROGRESS", rid)

    def cmd_start_input_timers(
        self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str
    ) -> None:
        job = self.job
        if job is not None and job.timers_at is None:
            job.timers_at = job.audio_s
        self.send_event("INPUT-TIMERS-STARTED", rid)

    def cmd_stop(self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str) -> None:
        self.end_job()
        self.session_state = _IDLE
        self.send_event("STOPPED", rid)

    def initial_params(self) -> Dict[str, Any]:
        """New session parameters: the defaults, with the emulator's ``bot_params`` over them."""
        return {**DEFAULT_PARAMS, **(getattr(self.state, "bot_params", None) or {})}

    def cmd_close(
        self, rid: int, frame: Dict[str, Any], headers: Dict[str, Any], body: str
    ) -> None:
        self.session_state = _NO_SESSION
        self.send_event("CLOSED", rid)
        self.grammars.clear()
        self.params = self.initial_params()

    # -- audio and recognition

    def decode(self, data: bytes) -> bytes:
        """Client audio to 16-bit PCM with the line's noise floor."""
        if self.codec == "g711a":
            samples = alaw_decode(data).astype(np.int32)
        elif self.codec == "g711u":
            samples = ulaw_decode(data).astype(np.int32)
        else:
            data = self.pcm_residue + data
            cut = len(data) - len(data) % 2
            self.pcm_residue = data[cut:]
            samples = np.frombuffer(data[:cut], dtype="<i2").astype(np.int32)
        if not len(samples):
            return b""
        samples += self.noise.integers(-_NOISE_LSB, _NOISE_LSB + 1, len(samples))
        return np.clip(samples, -32768, 32767).astype("<i2").tobytes()

    def on_audio(self, data: bytes) -> None:
        if self.session_state == _NO_SESSION:
            return
        pcm = self.decode(data)
        job = self.job
        if job is None or not pcm:
            return
        start_s = job.audio_s
        job.audio_s += len(pcm) / (2 * SAMPLE_RATE)
        if job.mode == "normal" and job.speech_at is None:
            self.detect_speech(job, pcm, start_s)
        try:
            segments = job.session.feed(pcm)
        except Exception:
            log.exception("bot %s: recogniser failed", self.channel_id)
            self.complete(job, "Error", "recogniser failure", None)
            return
        for seg in segments:
            if self.job is not job:
                return
            self.on_segment(job, seg)
        if self.job is job:
            self.check_timers(job)

    def detect_speech(self, job: _Recognition, pcm: bytes, start_s: float) -> None:
        samples = np.frombuffer(job.residue + pcm, dtype="<i2").astype(np.float64)
        usable = len(samples) - len(samples) % _FRAME
        job.residue = (job.residue + pcm)[usable * 2 :]
        if not usable:
            return
        frames = samples[:usable].reshape(-1, _FRAME)
        rms = np.sqrt(np.mean(frames * frames, axis=1))
        for i, level in enumerate(rms):
            job.loud_frames = job.loud_frames + 1 if level > _SPEECH_RMS else 0
            if job.loud_frames >= _SPEECH_FRAMES:
                self.start_of_input(job, start_s + (i + 1) * _FRAME / SAMPLE_RATE)
                return

    def start_of_input(self, job: _Recognition, at: float) -> None:
        if job.speech_at is not None or job.mode != "normal":
            return
        job.speech_at = at
        self.send_event("START-OF-INPUT", job.request_id)

    def on_segment(self, job: _Recognition, seg: Any) -> None:
        text = str(getattr(seg, "text", "") or "").strip()
        if not text:
            return
        if job.mode == "normal" and job.speech_at is None:
            self.start_of_input(job, float(getattr(seg, "start", job.audio_s) or 0.0))
        job.last_text = text
        if not getattr(seg, "is_final", False):
            return
        confidence = getattr(seg, "confidence", None)
        job.last_confidence = confidence
        asr = self.asr_body(job, seg, text, confidence)
        if job.mode == "hotword":
            matched = self.interpret(job, text)
            if matched is not None:
                self.complete(job, "Success", "success", asr, matched, confidence)
            return
        self.finish_utterance(job, asr, text, confidence, maxtime=False)

    def asr_body(
        self, job: _Recognition, seg: Any, text: str, confidence: Optional[float]
    ) -> Dict[str, Any]:
        start = float(getattr(seg, "start", 0.0) or 0.0)
        end = float(getattr(seg, "end", job.audio_s) or job.audio_s)
        return {
            "transcript": text,
            "confidence": round(float(confidence if confidence is not None else 0.9), 3),
            "start": int((job.wall0 + start) * 1000),
            "end": int((job.wall0 + end) * 1000),
        }

    def interpret(self, job: _Recognition, text: str) -> Optional[Tuple[_ResolvedGrammar, Any]]:
        words = _tokens(text)
        for grammar in job.grammars:
            ok, value = grammar.builtin.interpret(words, grammar.query)
            if ok:
                return grammar, value
        return None

    def finish_utterance(
        self,
        job: _Recognition,
        asr: Dict[str, Any],
        text: str,
        confidence: Optional[float],
        *,
        maxtime: bool,
    ) -> None:
        threshold = float(job.params.get("confidence_threshold", 0.5))
        matched = self.interpret(job, text)
        if matched is None:
            cause = "NoMatchMaxtime" if maxtime else "NoMatch"
            self.complete(job, cause, "no match", asr)
        elif confidence is not None and confidence < threshold:
            cause = "NoMatchMaxtime" if maxtime else "NoMatch"
            self.complete(job, cause, "confidence too low", asr)
        else:
            cause = "SuccessMaxtime" if maxtime else "Success"
            self.complete(job, cause, "success", asr, matched, confidence)

    def check_timers(self, job: _Recognition) -> None:
        p = job.params
        if job.mode == "hotword":
            if job.audio_s * 1000 >= p["hotword_max_duration"]:
                self.complete(job, "HotwordMaxtime", "hotword not found in time", None)
            return
        if job.speech_at is None:
            if (
                job.timers_at is not None
                and (job.audio_s - job.timers_at) * 1000 >= p["no_input_timeout"]
            ):
                self.complete(job, "NoInputTimeout", "no speech", None)
            return
        if (job.audio_s - job.speech_at) * 1000 >= p["recognition_timeout"]:
            segments: List[Any] = []
            try:
                segments = list(job.session.flush())
            except Exception:
                log.exception("bot %s: recogniser flush failed", self.channel_id)
            finals = [s for s in segments if getattr(s, "is_final", False) and s.text.strip()]
            text = finals[-1].text.strip() if finals else job.last_text
            if not text:
                self.complete(job, "NoMatchMaxtime", "speech too long", None)
                return
            seg = finals[-1] if finals else None
            confidence = getattr(seg, "confidence", None) if seg is not None else None
            asr = self.asr_body(job, seg, text, confidence)
            self.finish_utterance(job, asr, text, confidence, maxtime=True)

    def complete(
        self,
        job: _Recognition,
        cause: str,
        reason: str,
        asr: Optional[Dict[str, Any]],
        matched: Optional[Tuple[_ResolvedGrammar, Any]] = None,
        confidence: Optional[float] = None,
    ) -> None:
        nlu = None
        grammar_uri = job.grammars[0].uri
        if matched is not None:
            grammar, value = matched
            grammar_uri = grammar.uri
            nlu = {
                "type": f"builtin:{grammar.path}",
                "value": value,
                "confidence": round(float(confidence if confidence is not None else 0.9), 3),
            }
        body = {"asr": asr, "nlu": nlu, "grammar_uri": grammar_uri}
        self.end_job()
        self.session_state = _IDLE
        self.send_event(
            "RECOGNITION-COMPLETE", job.request_id, cause=cause, reason=reason, body=body
        )

    def end_job(self) -> None:
        job, self.job = self.job, None
        if job is None:
            return
        try:
            job.session.close()
        except Exception:
            log.debug("bot: closing the recogniser session raised", exc_info=True)


def serve_bot(ws: Any, *, engine: Any, state: Any = None, token: str = "") -> None:
    """Serve one Recognition API session on an accepted WebSocket.

    Returns when the client closes the socket, after an idle period of
    ``state.idle_timeout`` seconds (default 60) without any frame, or when
    the server shuts the socket down.

    Parameters
    ----------
    ws : websockets.sync.server.ServerConnection
        The accepted ``/bots`` connection; its ``Authorization`` header was
        already checked by the caller.
    engine : Engine
        The emulator's recognition engine (see
        :func:`voxsync.emulators.engine.make_engine`). With a pocketsphinx
        engine, closed grammars use a restricted-vocabulary variant of it.
    state : object, optional
        The emulator's settings; read attributes (all optional):
        ``idle_timeout`` (seconds), ``bot_params`` (dict of default
        parameters), ``event_delay`` (seconds to wait before each event),
        ``stopping`` (an event set when the emulator stops) and ``faults``
        (``drop_after_frames``: cut the TCP connection after that many
        frames; ``malformed_after_frames``: send one broken event then).
    token : str
        The access token of the client (not used for anything else).
    """
    _BotSession(ws, engine, state).run()
