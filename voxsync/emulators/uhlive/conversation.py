"""Conversation API (H2H) of the Uh!ive emulator: Phoenix channels v2 on ``websockets``.

One :class:`ConversationHub` per emulator keeps the conversations (rooms);
each socket is served by a :class:`_SocketSession` on its own thread, with a
writer thread that sends everything the socket gets, in order.

Protocol, as the real service behaves (see the module docs of
:mod:`voxsync.uhlive.conversation` for the frame layout):

* ``phx_join`` on ``conversation:<identifier>@<conversation_id>``: checks the
  payload (``speaker``; ``model`` unless ``readonly``; ``audio_codec``),
  replies ``ok`` or ``error`` with a ``reason``, then pushes
  ``speaker_joined`` to the other members (observers join silently).
* binary ``audio_chunk`` pushes (16-bit LE PCM at 8 kHz, or G.711 A/mu-law)
  go to the recognition engine; no reply. Interim ``audio_words_decoded``
  (if the speaker asked for them), final ``audio_segment_decoded``, then
  ``audio_segment_normalized`` and ``entity_cardinal_number_recognized`` for
  numbers, are pushed to every member. Times are integer ms from ``origin``.
* ``phx_leave``: reply ``ok``, the speaker's remaining transcripts,
  ``speaker_left`` to everyone (the leaver included), ``phx_close`` last.
* Phoenix ``heartbeat`` on topic ``phoenix`` is answered.
* Messages for a topic the socket has not joined get an ``"unmatched
  topic"`` error reply with a null ``join_ref``.
* A speaker who sends no audio for ``audio_gap_timeout`` seconds is ended
  (``speaker_left`` with ``reason: "audio_gap"``, then ``phx_close``); a socket
  with no frame at all (pings included) for ``idle_timeout`` is closed; a
  socket that drops sends ``speaker_left`` (``reason: "disconnected"``) to
  the others.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import queue
import re
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from voxsync.emulators.uhlive.state import UhliveState

__all__ = ["BandwidthExtender", "ConversationHub", "normalize", "tag_numbers"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
AUDIO_CODECS = ("linear", "g711a", "g711u")
_POLL = 0.25
_MALFORMED = '{"event": "phx_reply", "payload": '  # not JSON, not a Phoenix frame

# ------------------------------------------------------------- numbers
_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1000000}


def _kind(token: str) -> Optional[str]:
    if token in _UNITS:
        return "unit"
    if token in _TEENS:
        return "teen"
    if token in _TENS:
        return "tens"
    if token in _SCALES:
        return "scale"
    if token.isdigit():
        return "digits"
    return None


def _value(token: str) -> int:
    for table in (_UNITS, _TEENS, _TENS, _SCALES):
        if token in table:
            return table[token]
    return int(token)


def tag_numbers(tokens: Sequence[str]) -> List[Tuple[int, int, int, str]]:
    """Find numbers in lower-case tokens: ``[(first, last_exclusive, value, display)]``.

    Handles number words (``"twenty two"``, ``"three hundred and five"``),
    digit tokens, and runs of single digits read one by one (``"five five
    five one two"`` -> ``"55512"``).
    """
    found: List[Tuple[int, int, int, str]] = []
    i = 0
    n = len(tokens)
    while i < n:
        kind = _kind(tokens[i])
        if kind is None or kind == "scale":
            i += 1
            continue
        start = i
        if kind == "unit" and i + 1 < n and _kind(tokens[i + 1]) == "unit":
            digits = ""
            while i < n and _kind(tokens[i]) == "unit":
                digits += str(_UNITS[tokens[i]])
                i += 1
            found.append((start, i, int(digits), digits))
            continue
        total, current, last = 0, _value(tokens[i]), kind
        i += 1
        while i < n:
            k = _kind(tokens[i])
            if (
                k is None
                and tokens[i] == "and"
                and last == "scale"
                and i + 1 < n
                and _kind(tokens[i + 1]) in ("unit", "teen", "tens")
            ):
                i += 1
                continue
            if k == "scale":
                scale = _SCALES[tokens[i]]
                if scale == 100 and 0 < current < 100:
                    current *= 100
                elif scale >= 1000 and 0 < current < scale:
                    total += current * scale
                    current = 0
                else:
                    break
            elif k == "unit" and last in ("tens", "scale") and (current % 10 == 0):
                current += _UNITS[tokens[i]]
            elif k in ("teen", "tens") and last == "scale" and current % 100 == 0:
                current += _value(tokens[i])
            else:
                break
            last = k
            i += 1
        value = total + current
        found.append((start, i, value, str(value)))
    return found


def normalize(text: str) -> str:
    """Normalized form of a transcript: numbers as digits, capital, final period."""
    tokens = text.split()
    if not tokens:
        return ""
    out: List[str] = []
    pos = 0
    for first, last, _, display in tag_numbers([t.lower() for t in tokens]):
        out.extend(tokens[pos:first])
        out.append(display)
        pos = last
    out.extend(tokens[pos:])
    sentence = " ".join(out)
    sentence = sentence[0].upper() + sentence[1:]
    return sentence if sentence[-1] in ".?!" else sentence + "."


# ------------------------------------------------ bandwidth extension
class BandwidthExtender:
    """8 kHz telephone audio -> 16 kHz for a wideband acoustic model, streaming.

    The audio is resampled to 16 kHz (soxr), then its 0-4 kHz band is
    mirrored into the empty 4-8 kHz band at ``alpha`` times its level
    (multiplying by ``1 + alpha * (-1)^n``, i.e. spectral folding). A
    wideband model sees energy where it was trained to expect some, instead
    of silence: on the sample sentences this cuts pocketsphinx's word error
    rate at 8 kHz from about 70 % to about 25 % (see the README).
    """

    def __init__(self, alpha: float) -> None:
        import soxr

        self.alpha = alpha
        self._stream = soxr.ResampleStream(SAMPLE_RATE, 16000, 1, dtype="float32")
        self._n = 0

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        import numpy as np

        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        y = self._stream.resample_chunk(x, last=last)
        if len(y):
            parity = (np.arange(len(y)) + self._n) % 2
            y = y * np.where(parity == 0, 1.0 + self.alpha, 1.0 - self.alpha).astype(np.float32)
            self._n += len(y)
        return bytes(np.clip(y, -32768, 32767).astype("<i2").tobytes())


# ------------------------------------------------------------- members
class _Member:
    def __init__(
        self,
        session: _SocketSession,
        room: _Room,
        join_ref: Optional[str],
        payload: Dict[str, Any],
        engine_session: Any,
    ) -> None:
        self.session = session
        self.room = room
        self.join_ref = join_ref
        self.speaker: str = payload["speaker"]
        self.readonly: bool = bool(payload.get("readonly", False))
        self.model = str(payload.get("model") or "")
        self.country = str(payload.get("country") or "fr")
        self.lang = (self.model.split("-")[0][:2] or self.country).lower()
        self.interim = bool(payload.get("interim_results", True))
        self.rescoring = bool(payload.get("rescoring", True))
        origin = payload.get("origin", 0)
        self.origin = origin if isinstance(origin, int) and not isinstance(origin, bool) else 0
        self.codec: str = payload.get("audio_codec", "linear") or "linear"
        self.engine_session = engine_session
        alpha = session.hub.bandwidth_extension
        self.extender = BandwidthExtender(alpha) if alpha > 0 and not self.readonly else None
        self.last_audio = time.monotonic()
        self.ids: Dict[int, str] = {}
        self.previous_id: Optional[str] = None
        self.pending = b""  # odd byte of linear audio
        self.active = True

    def ms(self, seconds: float) -> int:
        return self.origin + round(seconds * 1000)


class _Room:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.members: List[_Member] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)

    def broadcast(
        self, event: str, payload: Dict[str, Any], exclude: Optional[_Member] = None
    ) -> None:
        with self.lock:
            members = [m for m in self.members if m is not exclude]
        for member in members:
            member.session.push([member.join_ref, None, self.topic, event, payload], delay=True)


class ConversationHub:
    """The conversations of one emulator, and the handler of ``/socket/websocket``."""

    def __init__(self, engine: Any, state: UhliveState, bandwidth_extension: float = 0.0) -> None:
        self.engine = engine
        self.state = state
        self.bandwidth_extension = bandwidth_extension
        self._rooms: Dict[str, _Room] = {}
        self._lock = threading.Lock()

    def serve(self, ws: ServerConnection, claims: Dict[str, Any]) -> None:
        """Serve one accepted socket until it closes (the calling thread)."""
        _SocketSession(self, ws, claims).run()

    def admit(
        self, topic: str, speaker: str, readonly: bool, make: Callable[[_Room], _Member]
    ) -> Optional[_Member]:
        """Add the member ``make(room)`` to the conversation, or None if ``speaker`` is taken.

        Looking the room up, checking the alias and adding the member happen
        at once, so two joins cannot take one alias and a join cannot land
        in a room being discarded. ``make`` runs under the locks: keep it cheap.
        """
        with self._lock:
            room = self._rooms.get(topic)
            if room is None:
                room = self._rooms[topic] = _Room(topic)
            with room.lock:
                if not readonly and any(
                    m.speaker == speaker and not m.readonly for m in room.members
                ):
                    return None
                member = make(room)
                room.members.append(member)
                return member

    def discard(self, member: _Member) -> None:
        room = member.room
        with room.lock:
            if member in room.members:
                room.members.remove(member)
            empty = not room.members
        if empty:
            with self._lock:
                if self._rooms.get(room.topic) is room and not room.members:
                    del self._rooms[room.topic]

    def snapshot(self) -> Dict[str, List[str]]:
        with self._lock:
            rooms = list(self._rooms.values())
        out: Dict[str, List[str]] = {}
        for room in rooms:
            with room.lock:
                out[room.topic] = [
                    f"[{m.speaker}]" if m.readonly else m.speaker for m in room.members
                ]
        return out


def _g711_decode(codec: str, data: bytes) -> bytes:
    from voxsync.audio import g711

    decoded = g711.alaw_decode(data) if codec == "g711a" else g711.ulaw_decode(data)
    return bytes(decoded.astype("<i2").tobytes())


class _SocketSession:
    """One client socket: Phoenix frames in, replies and pushes out."""

    def __init__(self, hub: ConversationHub, ws: Any, claims: Dict[str, Any]) -> None:
        self.hub = hub
        self.state = hub.state
        self.ws = ws
        self.claims = claims
        self.client_id = str(claims.get("azp", ""))
        self.member: Optional[_Member] = None
        self.frames = 0
        self._out: queue.Queue[Any] = queue.Queue()
        self._crashed = False
        self._malformed_sent = False

    # -------------------------------------------------------- output
    def push(self, message: List[Any], delay: bool = False) -> None:
        if delay and self.state.stamp_events and isinstance(message[4], dict):
            # serialised by the writer, which stamps the time it sends
            self._out.put(([*message[:4], dict(message[4])], delay))
            return
        self._out.put((json.dumps(message, ensure_ascii=False, separators=(",", ":")), delay))

    def push_raw(self, text: str) -> None:
        self._out.put((text, False))

    def _writer(self) -> None:
        while True:
            item = self._out.get()
            if item is None:
                return
            message, delay = item
            wait = self.state.faults.event_delay if delay else 0.0
            if wait > 0 and self.state.stopping.wait(wait):
                return
            if isinstance(message, str):
                text = message
            else:
                message[4]["emitted_at"] = time.time()
                text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            try:
                self.ws.send(text)
            except (ConnectionClosed, OSError, RuntimeError):
                # the client is gone: keep draining until the sentinel
                continue

    def reply(
        self,
        join_ref: Any,
        ref: Any,
        topic: str,
        ok: bool,
        response: Optional[Dict[str, Any]] = None,
    ) -> None:
        if ref is None:
            return
        status = "ok" if ok else "error"
        self.push(
            [join_ref, ref, topic, "phx_reply", {"status": status, "response": response or {}}]
        )

    def error(self, join_ref: Any, ref: Any, topic: str, reason: str) -> None:
        self.reply(join_ref, ref, topic, False, {"reason": reason})

    # ---------------------------------------------------------- loop
    def run(self) -> None:
        writer = self.state.start_thread("send", self._writer)
        try:
            self._loop()
        finally:
            member = self.member
            if member is not None and member.active:
                self._end_member(member, "disconnected", to_self=False)
            self._out.put(None)
            writer.join(10.0)

    def _loop(self) -> None:
        ws = self.ws
        state = self.state
        while not state.stopping.is_set():
            try:
                message = ws.recv(timeout=_POLL)
            except TimeoutError:
                if self._timers():
                    return
                continue
            except ConnectionClosed:
                return
            self.frames += 1
            faults = state.faults
            if faults.drop_after_frames is not None and self.frames >= faults.drop_after_frames:
                log.info("uhlive emulator: fault: dropping the socket after %d frames", self.frames)
                ws.close_socket()
                return
            try:
                if isinstance(message, bytes):
                    self._binary(message)
                else:
                    self._text(message)
            except Exception:
                log.exception("uhlive emulator: error handling a frame")
            self._after_frame()
            if self._timers():
                return

    def _timers(self) -> bool:
        """Idle and audio-gap timeouts; True when the socket must close."""
        now = time.monotonic()
        member = self.member
        if (
            member is not None
            and member.active
            and not member.readonly
            and now - member.last_audio > self.state.audio_gap_timeout
        ):
            log.info(
                "uhlive emulator: %s sent no audio for %.1f s; ending its session",
                member.speaker,
                now - member.last_audio,
            )
            self._end_member(member, "audio_gap", to_self=True)
        last = getattr(self.ws, "last_activity", now)
        if now - last > self.state.idle_timeout:
            log.info("uhlive emulator: socket idle for %.1f s; closing", now - last)
            self.ws.close(1000, "idle timeout")
            return True
        return False

    def _after_frame(self) -> None:
        faults = self.state.faults
        member = self.member
        if (
            faults.phx_error_after_frames is not None
            and self.frames >= faults.phx_error_after_frames
            and member is not None
            and member.active
            and not self._crashed
        ):
            self._crashed = True
            log.info("uhlive emulator: fault: channel crash (phx_error)")
            member.active = False
            self.push(
                [
                    member.join_ref,
                    member.join_ref,
                    member.room.topic,
                    "phx_error",
                    {"reason": "channel_crash"},
                ]
            )
            self.hub.discard(member)
            self.member = None
            if member.engine_session is not None:
                member.engine_session.close()
            if not member.readonly:
                member.room.broadcast(
                    "speaker_left",
                    {
                        "speaker": member.speaker,
                        "timestamp": UhliveState.now_ms(),
                        "reason": "crashed",
                    },
                )
        if (
            faults.malformed_after_frames is not None
            and self.frames >= faults.malformed_after_frames
            and not self._malformed_sent
        ):
            self._malformed_sent = True
            log.info("uhlive emulator: fault: sending a malformed frame")
            self.push_raw(_MALFORMED)

    # -------------------------------------------------------- frames
    def _text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("uhlive emulator: ignoring a text frame that is not JSON")
            return
        if not (isinstance(message, list) and len(message) == 5):
            log.warning("uhlive emulator: ignoring a text frame that is not a Phoenix v2 frame")
            return
        join_ref, ref, topic, event, payload = message
        if not isinstance(topic, str) or not isinstance(event, str):
            log.warning("uhlive emulator: ignoring a frame without topic/event strings")
            return
        if not isinstance(payload, dict):
            payload = {}
        if topic == "phoenix" and event == "heartbeat":
            self.reply(None, ref, "phoenix", True)
            return
        if event == "phx_join":
            self._join(join_ref, ref, topic, payload)
            return
        member = self._member_for(join_ref, ref, topic)
        if member is None:
            return
        if event == "phx_leave":
            self._leave(member, ref)
        elif event == "audio_chunk":
            blob = payload.get("blob")
            try:
                data = base64.b64decode(blob, validate=True) if isinstance(blob, str) else b""
            except ValueError:
                self.error(join_ref, ref, topic, "audio_chunk blob is not base64")
                return
            self._audio(member, join_ref, ref, data)
        else:
            self.error(join_ref, ref, topic, f"unsupported event {event!r}")

    def _binary(self, frame: bytes) -> None:
        if len(frame) < 5 or frame[0] != 0:
            log.warning("uhlive emulator: ignoring a binary frame that is not a Phoenix push")
            return
        jlen, rlen, tlen, elen = frame[1], frame[2], frame[3], frame[4]
        end = 5 + jlen + rlen + tlen + elen
        if len(frame) < end:
            log.warning("uhlive emulator: ignoring a truncated binary push")
            return
        pos = 5
        try:
            join_ref = frame[pos : pos + jlen].decode("utf-8")
            pos += jlen
            ref = frame[pos : pos + rlen].decode("utf-8")
            pos += rlen
            topic = frame[pos : pos + tlen].decode("utf-8")
            pos += tlen
            event = frame[pos : pos + elen].decode("utf-8")
        except UnicodeDecodeError:
            log.warning("uhlive emulator: ignoring a binary push with non-UTF-8 header strings")
            return
        data = frame[end:]
        member = self._member_for(join_ref or None, ref or None, topic)
        if member is None:
            return
        if event != "audio_chunk":
            self.error(join_ref, ref, topic, f"unsupported event {event!r}")
            return
        self._audio(member, join_ref, ref, data)

    def _member_for(self, join_ref: Any, ref: Any, topic: str) -> Optional[_Member]:
        member = self.member
        if (
            member is None
            or not member.active
            or topic != member.room.topic
            or (join_ref is not None and str(join_ref) != member.join_ref)
        ):
            self.error(None, ref, topic, "unmatched topic")
            return None
        return member

    # ------------------------------------------------------- actions
    def _join(self, join_ref: Any, ref: Any, topic: str, payload: Dict[str, Any]) -> None:
        jref = None if join_ref is None else str(join_ref)
        match = re.fullmatch(r"conversation:([^@]+)@(.+)", topic, re.DOTALL)
        if match is None:
            self.error(None, ref, topic, "unmatched topic")
            return
        if self.member is not None and self.member.active:
            self.error(
                jref, ref, topic, "already in a conversation: one conversation per connection"
            )
            return
        refusal = self.state.faults.refuse_join
        if refusal:
            self.error(jref, ref, topic, refusal)
            return
        speaker = payload.get("speaker")
        readonly = payload.get("readonly", False)
        if not isinstance(readonly, bool):
            self.error(jref, ref, topic, "readonly must be a boolean")
            return
        if not isinstance(speaker, str) or not speaker:
            self.error(jref, ref, topic, "a speaker alias is required")
            return
        model = payload.get("model")
        if not readonly and (not isinstance(model, str) or not model):
            self.error(jref, ref, topic, "a model is required to stream audio")
            return
        codec = payload.get("audio_codec", "linear")
        if codec not in AUDIO_CODECS:
            self.error(
                jref, ref, topic, f"unsupported audio codec {codec!r}; use linear, g711a or g711u"
            )
            return
        rate = 16000 if self.hub.bandwidth_extension > 0 else SAMPLE_RATE
        engine_session = None if readonly else self.hub.engine.new_session(rate)

        def make(room: _Room) -> _Member:
            new = _Member(self, room, jref, payload, engine_session)
            self.reply(jref, ref, topic, True)  # queued before any event of the room
            return new

        member = self.hub.admit(topic, speaker, readonly, make)
        if member is None:
            if engine_session is not None:
                engine_session.close()
            self.error(jref, ref, topic, f"speaker {speaker!r} is already in the conversation")
            return
        room = member.room
        self.member = member
        if not readonly:
            room.broadcast(
                "speaker_joined",
                {
                    "speaker": speaker,
                    "timestamp": UhliveState.now_ms(),
                    "interim_results": member.interim,
                    "rescoring": member.rescoring,
                    "lang": member.lang,
                    "country": member.country,
                    "model": member.model,
                },
                exclude=member,
            )

    def _audio(self, member: _Member, join_ref: Any, ref: Any, data: bytes) -> None:
        if member.readonly:
            self.error(join_ref, ref, member.room.topic, "a readonly observer cannot stream audio")
            return
        member.last_audio = time.monotonic()
        if member.codec == "linear":
            data = member.pending + data
            cut = len(data) - (len(data) % 2)
            data, member.pending = data[:cut], data[cut:]
        else:
            data = _g711_decode(member.codec, data)
        if member.extender is not None:
            data = member.extender.process(data)
        if data:
            self._emit(member, member.engine_session.feed(data))

    def _leave(self, member: _Member, ref: Any) -> None:
        self.reply(member.join_ref, ref, member.room.topic, True)
        self._end_member(member, None, to_self=True)

    def _end_member(self, member: _Member, reason: Optional[str], *, to_self: bool) -> None:
        """Flush, ``speaker_left`` (speakers), ``phx_close`` (to self), leave the room."""
        if not member.active:
            return
        if member.engine_session is not None:
            try:
                segments: List[Any] = []
                if member.extender is not None:
                    segments += member.engine_session.feed(member.extender.process(b"", last=True))
                segments += member.engine_session.flush()
                self._emit(member, segments, exclude_self=not to_self)
            finally:
                member.engine_session.close()
        member.active = False
        if not member.readonly:
            left: Dict[str, Any] = {"speaker": member.speaker, "timestamp": UhliveState.now_ms()}
            if reason:
                left["reason"] = reason
            member.room.broadcast("speaker_left", left, exclude=None if to_self else member)
        if to_self:
            self.push(
                [member.join_ref, member.join_ref, member.room.topic, "phx_close", {}], delay=True
            )
        self.hub.discard(member)
        if self.member is member:
            self.member = None

    # -------------------------------------------------------- events
    def _emit(
        self, member: _Member, segments: Sequence[Any], *, exclude_self: bool = False
    ) -> None:
        exclude = member if exclude_self else None
        room = member.room
        for seg in segments:
            text = " ".join(str(seg.text).split())
            if not seg.is_final and not member.interim:
                continue
            if not text:
                continue
            uid = member.ids.get(seg.index)
            if uid is None:
                uid = member.ids[seg.index] = str(next(room.ids))
            payload = self._transcript_payload(member, seg, text, uid)
            if not seg.is_final:
                room.broadcast("audio_words_decoded", payload, exclude)
                continue
            room.broadcast("audio_segment_decoded", payload, exclude)
            normalized = dict(payload)
            normalized["value"] = normalize(text)
            room.broadcast("audio_segment_normalized", normalized, exclude)
            for name, entity in self._entities(member, payload):
                room.broadcast(name, entity, exclude)
            member.previous_id = uid
            member.ids.pop(seg.index, None)

    def _transcript_payload(self, member: _Member, seg: Any, text: str, uid: str) -> Dict[str, Any]:
        start, end = member.ms(seg.start), member.ms(seg.end)
        confidence = seg.confidence if seg.confidence is not None else 0.9
        words = []
        for word in seg.words:
            if word.start is None or word.end is None:
                continue
            ws, we = member.ms(word.start), member.ms(word.end)
            words.append(
                {
                    "value": word.text,
                    "start": ws,
                    "end": we,
                    "length": we - ws,
                    "confidence": round(
                        word.confidence if word.confidence is not None else confidence, 4
                    ),
                }
            )
        return {
            "id": uid,
            "speaker": member.speaker,
            "lang": member.lang,
            "country": member.country,
            "value": text,
            "start": start,
            "end": end,
            "length": end - start,
            "confidence": round(float(confidence), 4),
            "components": words,
            "meta": {"model": member.model, "previous_utterance_id": member.previous_id},
            "conversation": member.room.topic,
            "client_id": self.client_id,
        }

    def _entities(
        self, member: _Member, payload: Dict[str, Any]
    ) -> List[Tuple[str, Dict[str, Any]]]:
        words = payload["components"]
        tokens = [str(w["value"]).lower() for w in words]
        if not tokens or " ".join(tokens) != payload["value"].lower():
            tokens = payload["value"].lower().split()
            words = []
        out = []
        for first, last, value, display in tag_numbers(tokens):
            if words:
                start, end = words[first]["start"], words[last - 1]["end"]
            else:
                start, end = payload["start"], payload["end"]
            out.append(
                (
                    "entity_cardinal_number_recognized",
                    {
                        "id": f"e-{start}-{first}",
                        "speaker": member.speaker,
                        "lang": member.lang,
                        "country": member.country,
                        "source": " ".join(tokens[first:last]),
                        "display": display,
                        "value": value,
                        "start": start,
                        "end": end,
                        "length": end - start,
                        "confidence": 0.9,
                        "conversation": member.room.topic,
                        "client_id": self.client_id,
                    },
                )
            )
        return out
