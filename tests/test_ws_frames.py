"""voxsync's own WebSocket frames, decoded by websocket-client and by websockets."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from typing import Iterator, List, Tuple

import pytest
from websocket import ABNF
from websocket._abnf import frame_buffer
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.sync.server import ServerConnection
from wsserver import RawServer, WebSocketServer

from voxsync.errors import ConnectionError, RemoteProtocolError
from voxsync.errors import TimeoutError as VoxsyncTimeoutError
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
    frames = [bytes(encode_frame(OPCODE_BINARY, payload)) for _ in range(600)]  # > 2 draws
    keys = [f[2:6] for f in frames]
    assert len(set(keys)) == len(keys)  # 600 random 32-bit keys: a repeat is a 4e-5 chance
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


# ------------------------------------------------------- frames from a server


def server_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked frame as a server writes it."""
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    if n < 126:
        header = bytes((first, n))
    elif n < 65536:
        header = bytes((first, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + n.to_bytes(8, "big")
    return header + payload


@pytest.fixture
def raw() -> Iterator[Tuple[RawServer, WebSocketTransport]]:
    server = RawServer()
    t = WebSocketTransport(server.url)
    t.connect(timeout=5)
    server.ready()
    try:
        yield server, t
    finally:
        t.close()
        server.close()


def test_frames_arriving_together_are_read_one_by_one(
    raw: Tuple[RawServer, WebSocketTransport],
) -> None:
    server, t = raw
    payloads = [os.urandom(n) for n in (0, 5, 125, 126, 4301, 65536, 70001)]
    server.ready().sendall(b"".join(server_frame(OPCODE_BINARY, p) for p in payloads))
    assert [t.recv(timeout=5) for _ in payloads] == payloads


def test_a_frame_arriving_byte_by_byte_is_read_whole(
    raw: Tuple[RawServer, WebSocketTransport],
) -> None:
    server, t = raw
    data = server_frame(OPCODE_TEXT, "héllo".encode()) + server_frame(OPCODE_BINARY, b"x" * 300)
    conn = server.ready()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def trickle() -> None:
        for i in range(len(data)):
            conn.sendall(data[i : i + 1])
            time.sleep(0.0005)

    writer = threading.Thread(target=trickle, name="trickle")
    writer.start()
    assert t.recv(timeout=5) == "héllo"
    assert t.recv(timeout=5) == b"x" * 300
    writer.join(5)


def test_fragments_are_joined_and_pings_between_them_answered(
    raw: Tuple[RawServer, WebSocketTransport],
) -> None:
    server, t = raw
    server.ready().sendall(
        server_frame(OPCODE_TEXT, b"one ", fin=False)
        + server_frame(OPCODE_PING, b"are you there")
        + server_frame(0x0, b"two ", fin=False)
        + server_frame(0xA, b"unsolicited pong")  # ignored
        + server_frame(0x0, "thrée".encode())
        + server_frame(OPCODE_BINARY, b"next")
    )
    assert t.recv(timeout=5) == "one two thrée"
    assert t.recv(timeout=5) == b"next"
    assert server.read_frames(1) == [(ABNF.OPCODE_PONG, b"are you there")]


def test_a_close_frame_is_answered_and_its_code_kept(
    raw: Tuple[RawServer, WebSocketTransport],
) -> None:
    server, t = raw
    server.ready().sendall(server_frame(0x8, (1008).to_bytes(2, "big") + b"slow down"))
    assert t.recv(timeout=5) is None
    assert (t.closed_by_peer, t.close_code, t.close_reason) == (True, 1008, "slow down")
    assert server.read_frames(1) == [(ABNF.OPCODE_CLOSE, (1000).to_bytes(2, "big"))]


@pytest.mark.parametrize(
    "data, message",
    [
        (bytes((0x82, 0x80 | 3)) + b"\x01\x02\x03\x04abc", "masked"),
        (server_frame(OPCODE_BINARY, b"x", rsv=0x40), "reserved bits"),
        (server_frame(0x3, b"x"), "unknown opcode 3"),
        (server_frame(0x0, b"x"), "continuation"),
        (server_frame(OPCODE_PING, b"x" * 126), "control frame"),
        (
            server_frame(OPCODE_TEXT, b"a", fin=False) + server_frame(OPCODE_TEXT, b"b"),
            "new message",
        ),
    ],
)
def test_frames_that_break_the_protocol_are_refused(
    raw: Tuple[RawServer, WebSocketTransport], data: bytes, message: str
) -> None:
    server, t = raw
    server.ready().sendall(data)
    with pytest.raises(RemoteProtocolError, match=message):
        t.recv(timeout=5)


def test_text_that_is_not_utf8_is_refused(raw: Tuple[RawServer, WebSocketTransport]) -> None:
    server, t = raw
    server.ready().sendall(server_frame(OPCODE_TEXT, b"\xff\xfe"))
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        t.recv(timeout=5)


def test_a_timeout_mid_frame_loses_nothing(raw: Tuple[RawServer, WebSocketTransport]) -> None:
    server, t = raw
    frame = server_frame(OPCODE_BINARY, b"y" * 1000)
    server.ready().sendall(frame[:500])
    with pytest.raises(VoxsyncTimeoutError):
        t.recv(timeout=0.2)
    server.ready().sendall(frame[500:])
    assert t.recv(timeout=5) == b"y" * 1000


def test_a_dropped_socket_is_a_connection_error(raw: Tuple[RawServer, WebSocketTransport]) -> None:
    server, t = raw
    server.ready().sendall(server_frame(OPCODE_BINARY, b"z" * 10)[:5])
    server.ready().shutdown(socket.SHUT_RDWR)
    with pytest.raises(ConnectionError, match="lost without a close frame"):
        t.recv(timeout=5)


def test_a_frame_cut_off_by_ctrl_c_is_followed_by_nothing(
    raw: Tuple[RawServer, WebSocketTransport],
) -> None:
    """Ctrl+C inside a write on the caller's thread: no byte may follow the cut frame.

    The server does not read, so the kernel takes only part of a frame far
    larger than the socket buffers; SIGINT then interrupts the write. What
    went out must be exactly a prefix of that one frame: a close frame after
    it would be read as more of its payload.
    """
    server, t = raw
    conn = server.ready()
    payload = os.urandom(16 << 20)
    t._room = 1 << 40  # the room estimate is wrong once: the write goes ahead and blocks
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            t.send_now(lambda: payload, 16)
            time.sleep(5)  # not reached when the write is interrupted
    finally:
        timer.cancel()
        timer.join()
    data = bytearray(server.drain())  # what the kernel holds: empty again before close()
    t.close()
    conn.settimeout(5)
    while True:
        piece = conn.recv(1 << 20)
        if not piece:
            break
        data += piece
    assert data[:2] == bytes((0x82, 0xFF))  # final binary frame, masked, 64-bit length
    assert int.from_bytes(data[2:10], "big") == len(payload)
    key, body = data[10:14], data[14:]
    assert 0 < len(body) < len(payload)
    unmasked = bytes(b ^ key[i & 3] for i, b in enumerate(body[-64:], len(body) - 64))
    assert unmasked == payload[len(body) - 64 : len(body)]
