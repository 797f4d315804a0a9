"""The Uh!ive emulator's Conversation API, driven with websocket-client and the sans-I/O codec.

These tests follow the vendor's getting-started flow (token, socket, join,
audio, leave, read until ``.left``) and check the wire details the real
service shows: reply and push frames, the order at leave, HTTP 403 on a bad
token, the timeouts, and the faults tests can inject.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import requests
import websocket
from speech import wer

from voxsync.audio.files import read_audio
from voxsync.audio.format import AudioFormat
from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.emulators.uhlive.conversation import normalize, tag_numbers
from voxsync.errors import RemoteProtocolError
from voxsync.uhlive import (
    AudioSegmentDecoded,
    AudioSegmentNormalized,
    AudioWordsDecoded,
    Conversation,
    EntityFound,
    Ok,
    SpeakerJoined,
    SpeakerLeft,
    UhliveError,
    build_authentication_request,
    build_conversation_url,
)

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "samples" / "audio"
TRANSCRIPTS = json.loads((AUDIO / "transcripts.json").read_text())
PCM8 = AudioFormat(8000, 1, "pcm_s16le")
FOX = TRANSCRIPTS["quick_brown_fox.wav"]


def pcm8(name: str) -> bytes:
    data, _ = read_audio(AUDIO / name, PCM8)
    return data


def emulator_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("voxsync-emulator-uhlive")]


@pytest.fixture
def emu() -> Iterator[UhliveEmulator]:
    with UhliveEmulator(engine="scripted", transcripts=[FOX]) as emulator:
        yield emulator
    assert not emulator_threads(), "the emulator left threads running"


class Client:
    """The vendor guide's synchronous client: websocket-client + Conversation."""

    def __init__(
        self,
        emu: UhliveEmulator,
        speaker: str = "Alice",
        conversation: str = "my-conversation",
        identifier: str = "acme",
    ) -> None:
        url = build_conversation_url(emu.issue_token(identifier), emu.ws_url)
        self.socket = websocket.create_connection(url, timeout=10)
        self.client = Conversation(identifier, conversation, speaker)

    def recv(self) -> Any:
        return self.client.receive(self.socket.recv())

    def raw(self) -> List[Any]:
        return json.loads(self.socket.recv())  # type: ignore[no-any-return]

    def join(self, **options: Any) -> Any:
        options.setdefault("model", "en")
        options.setdefault("country", "us")
        self.socket.send(self.client.join(**options))
        return self.recv()

    def stream(self, pcm: bytes, chunk: int = 1600) -> None:
        for i in range(0, len(pcm), chunk):
            self.socket.send_binary(self.client.send_audio_chunk(pcm[i : i + chunk]))

    def leave_and_collect(self) -> List[Any]:
        self.socket.send(self.client.leave())
        events = []
        while not self.client.left:
            events.append(self.recv())
        return events

    def collect_until(self, predicate: Any, limit: int = 500) -> List[Any]:
        events = []
        for _ in range(limit):
            event = self.recv()
            events.append(event)
            if predicate(event):
                return events
        raise AssertionError(f"condition not met in {limit} events: {events[-5:]}")

    def close(self) -> None:
        self.socket.close()


# ------------------------------------------------------------------ the guide's flow
def test_vendor_guide_flow(emu: UhliveEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    auth_url, auth_params = build_authentication_request("my-client", "my-secret")
    login = requests.post(auth_url, data=auth_params, timeout=10)
    login.raise_for_status()
    uhlive_token = login.json()["access_token"]

    socket = websocket.create_connection(build_conversation_url(uhlive_token), timeout=10)
    client = Conversation("my-client", "my-conversation", "Alice")
    socket.send(
        client.join(
            model="en",
            interim_results=False,
            rescoring=True,
            origin=1_700_000_000_000,
            country="us",
        )
    )
    assert isinstance(client.receive(socket.recv()), Ok)
    audio = pcm8("quick_brown_fox.wav")
    for i in range(0, len(audio), 960):
        socket.send_binary(client.send_audio_chunk(audio[i : i + 960]))
    socket.send(client.leave())
    events = []
    while not client.left:
        events.append(client.receive(socket.recv()))
    socket.close()

    finals = [e for e in events if isinstance(e, AudioSegmentDecoded)]
    assert [f.transcript for f in finals] == [FOX]
    assert not [e for e in events if isinstance(e, AudioWordsDecoded)]  # interim_results=False
    final = finals[0]
    assert final.speaker == "Alice" and final.lang == "en" and final.country == "us"
    # times are integer ms from origin; words inside the segment, in order
    assert final.start >= 1_700_000_000_000 and final.end > final.start
    assert [w.word for w in final.words] == FOX.split()
    assert all(isinstance(w.start, int) and w.end - w.start == w.length for w in final.words)
    assert final.words[0].start >= final.start and final.words[-1].end <= final.end
    normalized = [e for e in events if isinstance(e, AudioSegmentNormalized)]
    assert normalized[0].transcript == "The quick brown fox jumps over the lazy dog."
    assert normalized[0].utterance_id == final.utterance_id
    assert isinstance(events[-1], SpeakerLeft) and events[-1].speaker == "Alice"


def test_leave_order_is_reply_transcripts_speaker_left_then_close(emu: UhliveEmulator) -> None:
    alice = Client(emu)
    alice.join(origin=0)
    alice.stream(pcm8("quick_brown_fox.wav")[:16000])  # speech still going on at leave
    alice.socket.send(alice.client.leave())
    leave_ref = alice.client.last_ref
    frames = []
    while True:
        frame = alice.raw()
        frames.append(frame)
        if frame[3] == "phx_close":
            break
    alice.close()
    names = [f[3] for f in frames]
    reply_at = next(i for i, f in enumerate(frames) if f[3] == "phx_reply" and f[1] == leave_ref)
    final_at = names.index("audio_segment_decoded")
    left_at = names.index("speaker_left")
    assert reply_at < final_at < left_at < len(frames) - 1
    assert frames[-1] == ["1", "1", alice.client.topic, "phx_close", {}]
    assert frames[reply_at][4] == {"status": "ok", "response": {}}
    # pushes carry the member's join_ref and a null ref
    assert frames[final_at][:2] == ["1", None]


def test_vendor_guide_flow_with_real_recognition_at_8_khz() -> None:
    """pocketsphinx on 8 kHz audio (bandwidth-extended to 16 kHz by the emulator)."""
    with UhliveEmulator() as emu:
        alice = Client(emu)
        alice.socket.settimeout(120)  # decoding is slow on a busy machine
        alice.join(interim_results=False)
        alice.stream(pcm8("call_at_three.wav") + bytes(8000))
        events = alice.leave_and_collect()
        alice.close()
    finals = " ".join(e.transcript for e in events if isinstance(e, AudioSegmentDecoded))
    # real recognition of narrowband audio: judged by word error rate, as documented
    assert wer(TRANSCRIPTS["call_at_three.wav"], finals) <= 0.15, finals
    entities = [e for e in events if isinstance(e, EntityFound)]
    assert [(e.canonical, e.original, e.value) for e in entities] == [("3", "three", 3)]


def test_numbers_become_entities_and_digits(emu: UhliveEmulator) -> None:
    with UhliveEmulator(engine="scripted", transcripts=[TRANSCRIPTS["phone_number.wav"]]) as emu2:
        alice = Client(emu2)
        alice.join()
        alice.stream(pcm8("phone_number.wav") + bytes(8000))
        events = alice.leave_and_collect()
        alice.close()
    entities = [e for e in events if isinstance(e, EntityFound)]
    assert len(entities) == 1
    entity = entities[0]
    assert entity.event == "entity_cardinal_number_recognized"
    assert (entity.canonical, entity.value, entity.original) == (
        "5551234",
        5551234,
        "five five five one two three four",
    )
    assert entity.speaker == "Alice" and entity.start < entity.end
    normalized = [e.transcript for e in events if isinstance(e, AudioSegmentNormalized)]
    assert normalized == ["My number is 5551234."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("twenty two", [(0, 2, 22, "22")]),
        ("three hundred and five apples", [(0, 4, 305, "305")]),
        ("nine thirty", [(0, 1, 9, "9"), (1, 2, 30, "30")]),
        ("two thousand twenty six", [(0, 4, 2026, "2026")]),
        ("call five five five", [(1, 4, 555, "555")]),
        ("room 42 please", [(1, 2, 42, "42")]),
        ("no numbers here", []),
        ("hundred", []),
    ],
)
def test_tag_numbers(text: str, expected: list) -> None:
    assert tag_numbers(text.split()) == expected


def test_normalize() -> None:
    assert normalize("the meeting starts at nine thirty") == "The meeting starts at 9 30."
    assert normalize("") == ""


# ------------------------------------------------------------------ several speakers
def test_two_speakers_and_an_observer_see_each_others_events() -> None:
    with UhliveEmulator(engine="scripted", transcripts=["hello from somebody"]) as emu:
        watcher = Client(emu, speaker="watcher")
        assert isinstance(watcher.join(readonly=True, model=""), Ok)
        alice = Client(emu, speaker="Alice")
        alice.join()
        bob = Client(emu, speaker="Bob")
        bob.join()
        assert sorted(emu.conversations()["conversation:acme@my-conversation"]) == [
            "Alice",
            "Bob",
            "[watcher]",
        ]
        alice.stream(pcm8("yes.wav") + bytes(8000))
        bob.stream(pcm8("no.wav") + bytes(8000))

        def finals_by(events: List[Any]) -> List[str]:
            return sorted(e.speaker for e in events if isinstance(e, AudioSegmentDecoded))

        def until_both_finals(client: Client) -> List[Any]:
            events: List[Any] = []
            while finals_by(events) != ["Alice", "Bob"]:
                events.append(client.recv())
            return events

        alice_events = until_both_finals(alice)
        bob_events = until_both_finals(bob)
        alice_events += alice.leave_and_collect()
        bob_events += bob.leave_and_collect()
        watcher_events = watcher.collect_until(
            lambda e: isinstance(e, SpeakerLeft) and e.speaker == "Bob"
        )
        for c in (alice, bob, watcher):
            c.close()

    assert finals_by(watcher_events) == ["Alice", "Bob"]
    assert finals_by(alice_events) == ["Alice", "Bob"]
    assert finals_by(bob_events) == ["Alice", "Bob"]
    # speaker_joined goes to the others (observers too), never to the joiner; observers are silent
    joined_seen_by_alice = [e.speaker for e in alice_events if isinstance(e, SpeakerJoined)]
    assert joined_seen_by_alice == ["Bob"]
    joined_seen_by_watcher = [e.speaker for e in watcher_events if isinstance(e, SpeakerJoined)]
    assert joined_seen_by_watcher == ["Alice", "Bob"]
    everything = alice_events + bob_events + watcher_events
    assert "watcher" not in {
        e.speaker for e in everything if isinstance(e, (SpeakerJoined, SpeakerLeft))
    }


def test_same_speaker_alias_twice_is_refused(emu: UhliveEmulator) -> None:
    first = Client(emu)
    first.join()
    second = Client(emu)
    with pytest.raises(UhliveError, match="already in the conversation"):
        second.join()
    first.close()
    second.close()


def test_one_conversation_per_socket(emu: UhliveEmulator) -> None:
    alice = Client(emu)
    alice.join()
    other = Conversation("acme", "other-conversation", "Alice")
    alice.socket.send(other.join(model="en"))
    with pytest.raises(UhliveError, match="one conversation per connection"):
        other.receive(alice.socket.recv())
    alice.close()


# ------------------------------------------------------------------ join validation
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"readonly": False, "speaker": "A", "model": ""}, "model is required"),
        ({"readonly": False, "model": "en"}, "speaker alias is required"),
        ({"speaker": "A", "model": "en", "audio_codec": "opus"}, "unsupported audio codec"),
        ({"speaker": "A", "model": "en", "readonly": "yes"}, "readonly must be a boolean"),
    ],
)
def test_join_payload_is_checked(emu: UhliveEmulator, payload: dict, reason: str) -> None:
    alice = Client(emu)
    alice.socket.send(json.dumps(["1", "1", alice.client.topic, "phx_join", payload]))
    reply = alice.raw()
    alice.close()
    assert reply[3] == "phx_reply" and reply[4]["status"] == "error"
    assert reason in reply[4]["response"]["reason"]


def test_unknown_keys_in_the_join_are_ignored(emu: UhliveEmulator) -> None:
    alice = Client(emu)
    payload = {"speaker": "A", "model": "en", "wrapper": "x", "ignoreEntities": True}
    alice.socket.send(json.dumps(["1", "1", alice.client.topic, "phx_join", payload]))
    assert alice.raw() == [
        "1",
        "1",
        alice.client.topic,
        "phx_reply",
        {"status": "ok", "response": {}},
    ]
    alice.close()


def test_messages_for_an_unjoined_topic_get_unmatched_topic(emu: UhliveEmulator) -> None:
    alice = Client(emu)
    alice.socket.send(json.dumps(["1", "5", alice.client.topic, "phx_leave", {}]))
    assert alice.raw() == [
        None,
        "5",
        alice.client.topic,
        "phx_reply",
        {"status": "error", "response": {"reason": "unmatched topic"}},
    ]
    alice.socket.send(json.dumps(["1", "6", "room:lobby", "phx_join", {}]))
    assert alice.raw()[4]["response"]["reason"] == "unmatched topic"
    alice.close()


def test_heartbeat_is_answered(emu: UhliveEmulator) -> None:
    alice = Client(emu)
    alice.socket.send(alice.client.heartbeat())
    assert alice.raw() == [None, "1", "phoenix", "phx_reply", {"status": "ok", "response": {}}]
    alice.close()


# ------------------------------------------------------------------ HTTP errors
def test_bad_tokens_get_http_403(emu: UhliveEmulator) -> None:
    good = emu.issue_token()
    for token in ("not-a-jwt", good[:-4] + "AAAA", emu.issue_token(ttl=-10), ""):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(build_conversation_url(token, emu.ws_url), timeout=5)
        assert info.value.status_code == 403


def test_unknown_path_and_serializer(emu: UhliveEmulator) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(f"{emu.ws_url}/socket/other", timeout=5)
    assert info.value.status_code == 404
    url = build_conversation_url(emu.issue_token(), emu.ws_url).replace("vsn=2.0.0", "vsn=1.0.0")
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, timeout=5)
    assert info.value.status_code == 400


def test_bots_with_a_bad_token_is_403(emu: UhliveEmulator) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(
            f"{emu.ws_url}/bots", header=["Authorization: bearer x"], timeout=5
        )
    assert info.value.status_code == 403


# ------------------------------------------------------------------ timeouts
def test_idle_socket_is_closed_and_pings_keep_it_open() -> None:
    with UhliveEmulator(engine="scripted", idle_timeout=1.0) as emu:
        kept = Client(emu, speaker="kept")
        kept.join(readonly=True, model="")
        idle = Client(emu, speaker="idle")
        idle.join(readonly=True, model="")
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            kept.socket.ping()
            time.sleep(0.2)
        idle.socket.settimeout(5)
        opcode, _ = idle.socket.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        kept.socket.send(kept.client.heartbeat())
        assert isinstance(kept.recv(), Ok)  # still served
        kept.close()
        idle.close()


def test_audio_gap_ends_the_speakers_session() -> None:
    with UhliveEmulator(engine="scripted", transcripts=["hi"], audio_gap_timeout=0.5) as emu:
        watcher = Client(emu, speaker="watcher")
        watcher.join(readonly=True, model="")
        alice = Client(emu)
        alice.join()
        alice.stream(bytes(1600))
        events = alice.collect_until(lambda e: alice.client.left)
        seen = watcher.collect_until(lambda e: isinstance(e, SpeakerLeft))
        alice.close()
        watcher.close()
    left = [e for e in events if isinstance(e, SpeakerLeft)]
    assert left[0].speaker == "Alice" and left[0].reason == "audio_gap"
    assert seen[-1].reason == "audio_gap"


def test_dropped_speaker_is_announced_to_the_others(emu: UhliveEmulator) -> None:
    watcher = Client(emu, speaker="watcher")
    watcher.join(readonly=True, model="")
    alice = Client(emu)
    alice.join()
    alice.socket.shutdown()  # no leave, no close frame
    events = watcher.collect_until(lambda e: isinstance(e, SpeakerLeft))
    assert events[-1].speaker == "Alice" and events[-1].reason == "disconnected"
    watcher.close()


# ------------------------------------------------------------------ faults
def test_fault_refuse_join(emu: UhliveEmulator) -> None:
    emu.faults.refuse_join = "quota exceeded"
    alice = Client(emu)
    with pytest.raises(UhliveError, match="quota exceeded"):
        alice.join()
    alice.close()


def test_fault_drop_after_frames(emu: UhliveEmulator) -> None:
    emu.faults.drop_after_frames = 3
    alice = Client(emu)
    alice.join()
    with pytest.raises((websocket.WebSocketException, OSError)):
        for _ in range(50):
            alice.stream(bytes(320))
            alice.socket.settimeout(0.05)
            try:
                alice.socket.recv()
            except websocket.WebSocketTimeoutException:
                pass
    alice.close()


def test_fault_phx_error(emu: UhliveEmulator) -> None:
    emu.faults.phx_error_after_frames = 2
    alice = Client(emu)
    alice.join()
    alice.stream(bytes(320))
    with pytest.raises(UhliveError, match="crashed"):
        alice.recv()
    alice.socket.send_binary(
        b"\x00\x01\x01"
        + bytes([len(alice.client.topic), 11])
        + b"19"
        + alice.client.topic.encode()
        + b"audio_chunk"
        + bytes(2)
    )
    assert alice.raw()[4]["response"]["reason"] == "unmatched topic"
    alice.close()


def test_fault_malformed_frame(emu: UhliveEmulator) -> None:
    emu.faults.malformed_after_frames = 1
    alice = Client(emu)
    assert isinstance(alice.join(), Ok)
    with pytest.raises(RemoteProtocolError):
        alice.recv()
    alice.socket.send(alice.client.heartbeat())  # the socket is still served
    assert isinstance(alice.recv(), Ok)
    assert alice.client.joined
    alice.close()


def test_fault_event_delay_keeps_order(emu: UhliveEmulator) -> None:
    emu.faults.event_delay = 0.05
    alice = Client(emu)
    alice.join()
    alice.stream(pcm8("quick_brown_fox.wav") + bytes(8000))
    events = alice.leave_and_collect()
    alice.close()
    names = [type(e).__name__ for e in events]
    assert names.index("AudioSegmentDecoded") < names.index("SpeakerLeft") == len(names) - 1


# ------------------------------------------------------------------ threads and CLI
def test_threads_are_named_and_joined_on_stop() -> None:
    before = set(threading.enumerate())
    emu = UhliveEmulator(engine="scripted").start()
    alice = Client(emu)
    alice.join()
    alice.stream(bytes(3200))
    new = [t for t in threading.enumerate() if t not in before]
    assert new and all(t.name.startswith("voxsync-emulator-uhlive-") for t in new), [
        t.name for t in new
    ]
    emu.stop()  # with a client still connected
    assert not emulator_threads()
    alice.close()
    emu.stop()  # idempotent


def test_cli_prints_the_base_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    code = (
        "import argparse, sys\n"
        "from voxsync.emulators.uhlive import add_cli_arguments, run_cli\n"
        "p = argparse.ArgumentParser(); add_cli_arguments(p)\n"
        "sys.exit(run_cli(p.parse_args(sys.argv[1:])))\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--engine",
            "scripted",
            "--client-id",
            "cli",
            "--client-secret",
            "cli-secret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        assert line.startswith("http://127.0.0.1:")
        token_url = f"{line}/realms/uhlive/protocol/openid-connect/token"
        ok = requests.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": "cli",
                "client_secret": "cli-secret",
            },
            timeout=5,
        )
        assert ok.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
