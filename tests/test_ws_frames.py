"""voxsync's own WebSocket frames, decoded by websocket-client and by websockets."""

from __future__ import annotations

import os
from typing import Iterator, List

import pytest
from websocket import ABNF
from websocket._abnf import frame_buffer
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.sync.server import ServerConnection
from wsserver import WebSocketServer

from voxsync.transport.websocket import (
    OPCODE_BINARY,
    OPCODE_PING,
    OPCODE_TEXT,
    WebSocketTransport,
    encode_frame,
)

LENGTHS = [0, 1, 2, 3, 4, 5, 7, 125, 126, 127, 4301, 65535, 65536, 65537, 65539, 200003]


def decode_with_websocket_client(data: bytes) -> ABNF:
    """websocket-client's own frame reader, fed ``data``; the frame must use all of it."""
    pending = bytearray(data)

    def recv(n: int) -> bytes:
        out = bytes(pending[:n])
        del pending[:n]
        return out

    frame = frame_buffer(recv, skip_utf8_validation=False).recv_frame()
    assert not pending, f"{len(pending)} bytes after the frame"
    return frame


def decode_with_websockets(data: bytes) -> Frame:
    """The websockets library's server-side parser (a client's frames must be masked)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
    else:  # pragma: no cover - the parser wanted more than the frame's bytes
        raise AssertionError("incomplete frame")
    assert reader.at_eof()
    return frame


@pytest.mark.parametrize("length", LENGTHS)
def test_binary_frames_round_trip_through_websocket_client(length: int) -> None:
    payload = os.urandom(length)
    data = bytes(encode_frame(OPCODE_BINARY, payload))
    frame = decode_with_websocket_client(data)
    assert (frame.fin, frame.opcode, frame.mask_value) == (1, ABNF.OPCODE_BINARY, 1)
    assert frame.data == payload
    header = 2 + (0 if length < 126 else 2 if length < 65536 else 8)
    assert len(data) == header + 4 + length  # header, key, payload: nothing else


@pytest.mark.parametrize("length", LENGTHS)
def test_binary_frames_round_trip_through_websockets(length: int) -> None:
    payload = os.urandom(length)
    frame = decode_with_websockets(bytes(encode_frame(OPCODE_BINARY, payload)))
    assert frame.opcode is Opcode.BINARY and frame.fin and frame.data == payload


@pytest.mark.parametrize("length", [0, 1, 3, 125, 126, 4099, 65535, 65536, 65537])
def test_frames_match_websocket_client_byte_for_byte_with_the_same_key(length: int) -> None:
    key = os.urandom(4)
    for opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
        payload = b"x" * length if opcode == ABNF.OPCODE_TEXT else os.urandom(length)
        theirs = ABNF.create_frame(payload, opcode)
        theirs.get_mask_key = lambda n: key
        assert bytes(encode_frame(opcode, payload, mask_key=key)) == theirs.format()


def test_text_frames_carry_utf8() -> None:
    text = "héllo wörld ✓ " * 21  # odd length in bytes, over 125
    data = bytes(encode_frame(OPCODE_TEXT, text.encode("utf-8")))
    frame = decode_with_websocket_client(data)
    assert frame.opcode == ABNF.OPCODE_TEXT and frame.data.decode("utf-8") == text
    assert decode_with_websockets(data).data.decode("utf-8") == text


def test_ping_frames() -> None:
    frame = decode_with_websocket_client(bytes(encode_frame(OPCODE_PING, b"")))
    assert frame.opcode == ABNF.OPCODE_PING and frame.data == b""


def test_every_frame_has_a_fresh_random_mask() -> None:
    payload = bytes(64)  # zeros: the masked payload is the key repeated
    frames = [bytes(encode_frame(OPCODE_BINARY, payload)) for _ in range(200)]
    keys = [f[2:6] for f in frames]
    assert len(set(keys)) == len(keys)  # 200 random 32-bit keys: a repeat is a 1e-5 chance
    for f, key in zip(frames, keys):
        assert f[6:] == key * 16  # the payload really is masked, with that frame's key


def test_the_mask_key_must_have_four_bytes() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        encode_frame(OPCODE_BINARY, b"abc", mask_key=b"\x01\x02\x03")


def test_the_payload_is_not_modified() -> None:
    payload = bytearray(os.urandom(4099))
    before = bytes(payload)
    encode_frame(OPCODE_BINARY, payload)
    assert payload == before


# ----------------------------------------------------------------- real server


@pytest.fixture
def echo() -> Iterator[str]:
    def handler(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    with WebSocketServer(handler, "ws-echo-server") as srv:
        yield srv.url


@pytest.mark.parametrize("through", [False, True])
def test_a_real_server_reads_every_length(echo: str, through: bool) -> None:
    t = WebSocketTransport(echo)
    t.connect(timeout=5)
    try:
        for length in LENGTHS:
            payload = os.urandom(length)
            if through:  # the non-blocking path; an idle loopback socket has room
                assert t.send_now(lambda p=payload: p, length + 14)
            else:
                t.send_binary(payload)
            assert t.recv(timeout=5) == payload
        text = "é" * 70001
        t.send_text(text)
        assert t.recv(timeout=5) == text
        assert t.send_now(lambda: "ok", 16)
        assert t.recv(timeout=5) == "ok"
        assert t.send_now(lambda: None, 16)  # nothing to send: nothing sent
        t.send_text("after")
        assert t.recv(timeout=5) == "after"
    finally:
        t.close()


def test_send_now_declines_while_another_thread_sends(echo: str) -> None:
    t = WebSocketTransport(echo)
    t.connect(timeout=5)
    built: List[int] = []
    try:
        with t._ws.lock:  # as a send in progress on another thread holds it
            sent = t.send_now(lambda: built.append(1) or b"x", 16)  # type: ignore[func-returns-value]
        assert sent is False and built == []  # declined before building the frame
    finally:
        t.close()
    assert t.send_now(lambda: b"x", 16) is False  # closed: declines
