"""MicrophoneStream details that need no sound device: arguments, buffer rules, consumers.

The capture side is driven the way PortAudio drives it: ``_callback`` is what
PortAudio's input thread calls with each block. tests/test_audio_microphone.py
captures from a real (virtual) microphone.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, List

import numpy as np
import pytest

from voxsync.audio import AudioFormat, MicrophoneStream
from voxsync.audio.microphone import InputDevice, list_devices
from voxsync.connection import Connection
from voxsync.errors import (
    ConfigurationError,
    DeviceError,
    LocalProtocolError,
    QueueFullError,
    TimeoutError,
)

BLOCK = np.zeros((160, 1), dtype="<i2")


def capture(mic: MicrophoneStream, block: Any = BLOCK, status: int = 0) -> None:
    """One block from PortAudio's input thread."""
    mic._callback(block, len(block), None, status)


def test_input_device_reads_as_one_line() -> None:
    assert str(InputDevice(3, "USB headset", 1, 16000.0, "ALSA", True)) == (
        "* 3: USB headset (ALSA, 1 in, 16000 Hz)"
    )
    assert str(InputDevice(0, "Built-in", 2, 44100.0, "Core Audio")) == (
        "  0: Built-in (Core Audio, 2 in, 44100 Hz)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "int8"}, "dtype must be 'int16' or 'float32', got 'int8'"),
        ({"blocksize": -1}, "blocksize must be an int >= 0 frames, got -1"),
        ({"blocksize": True}, "blocksize must be an int >= 0 frames, got True"),
        ({"blocksize": 1024.0}, "blocksize must be an int >= 0 frames, got 1024.0"),
        ({"queue_size": 0}, "queue_size must be a positive int, got 0"),
        ({"queue_size": True}, "queue_size must be a positive int, got True"),
        ({"queue_size": 8.0}, "queue_size must be a positive int, got 8.0"),
        ({"on_error": "print"}, "on_error must be a callable taking the exception"),
    ],
)
def test_bad_arguments_say_what_is_expected(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        MicrophoneStream(**kwargs)
    assert str(info.value) == message


def test_the_smallest_values_are_accepted() -> None:
    mic = MicrophoneStream(blocksize=0, queue_size=1)
    assert mic.blocksize == 0 and mic.queue_size == 1


@pytest.mark.parametrize(
    ("samplerate", "blocksize", "queue_size"),
    [
        (16000, 4096, 40),  # 10 s of 256 ms blocks, plus one
        (16000, 0, 157),  # PortAudio chooses: counted as 1024-frame blocks
        (48000, 480, 1001),
        (8000, 16000, 8),  # never fewer than 8 blocks
    ],
)
def test_the_buffer_holds_about_ten_seconds_by_default(
    samplerate: int, blocksize: int, queue_size: int
) -> None:
    mic = MicrophoneStream(samplerate=samplerate, blocksize=blocksize)
    assert mic.queue_size == queue_size


def test_a_whole_float_rate_is_an_int_rate() -> None:
    mic = MicrophoneStream(samplerate=44100.0)  # type: ignore[arg-type]
    assert mic.samplerate == 44100 and isinstance(mic.samplerate, int)
    assert mic.audio_format == AudioFormat(44100, 1, "pcm_s16le")
    assert repr(mic) == (
        f"<MicrophoneStream {mic.number} 44100 Hz mono pcm_s16le device=None stopped>"
    )


def test_paused_capture_is_neither_buffered_nor_counted_as_dropped() -> None:
    mic = MicrophoneStream(queue_size=2, blocksize=160)
    capture(mic)
    mic.pause()
    assert mic.paused
    for _ in range(5):
        capture(mic)
    assert len(mic._buffer) == 1 and mic.dropped_blocks == 0
    mic.resume()
    assert not mic.paused
    capture(mic)
    capture(mic)
    assert len(mic._buffer) == 2 and mic.dropped_blocks == 1


def test_portaudio_overflow_flags_are_counted() -> None:
    mic = MicrophoneStream(blocksize=160)
    capture(mic, status=0)
    capture(mic, status=2)  # paInputOverflow
    capture(mic, status=2)
    assert mic.input_overflows == 2
    assert len(mic._buffer) == 3  # the blocks themselves are kept


def test_read_before_start_says_how_to_start() -> None:
    mic = MicrophoneStream()
    with pytest.raises(LocalProtocolError) as info:
        mic.read(timeout=0.1)
    assert str(info.value) == "read() before start(); use `with MicrophoneStream() as mic:`"


def test_stream_with_callback_needs_a_callable() -> None:
    with pytest.raises(ConfigurationError, match="needs a callable taking bytes"):
        MicrophoneStream().stream_with_callback("print")  # type: ignore[arg-type]


class TextIn(Connection):
    """A text-in product shape: its ``input_format`` is None."""

    provider = "textin"

    def __init__(self) -> None:
        super().__init__(None, output_format=AudioFormat(24000, 1))


def test_stream_to_names_what_the_sink_lacks() -> None:
    with pytest.raises(ConfigurationError, match=r"^stream_to\(\) needs a voxsync connection"):
        MicrophoneStream().stream_to(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^stream_to\(\): TextIn takes text"):
        MicrophoneStream().stream_to(TextIn())


def test_stop_without_start_is_a_no_op() -> None:
    mic = MicrophoneStream()
    mic.stop()
    mic.stop()
    assert not mic.active


def test_drops_are_reported_once_each_with_the_running_total() -> None:
    """What the sender reports when the buffer overflowed: one warning per new loss."""
    seen: List[Any] = []

    class Sink(Connection):
        provider = "sink"

        def _write_chunk(self, chunk: bytes) -> None:
            pass

    conn = Sink(AudioFormat(16000, 1))
    conn.on("warning", seen.append)
    conn.connect()
    mic = MicrophoneStream(queue_size=2, blocksize=160)
    try:
        for _ in range(5):
            capture(mic)  # two buffered, three dropped
        mic._buffer.close()  # what stop() does once the device is closed
        sender = threading.Thread(target=mic._send_loop, args=(conn, _converter(mic, conn)))
        sender.start()
        sender.join(10)
        assert not sender.is_alive()
        conn.finish(timeout=5)
    finally:
        conn.close()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(w.code, w.count) for w in seen] == [("audio_dropped", 3)]
    assert seen[0].message == (
        "microphone buffer full: dropped 3 captured blocks (3 so far); "
        "the consumer is slower than real time"
    )


def _converter(mic: MicrophoneStream, conn: Connection) -> Any:
    from voxsync.audio import Converter

    assert conn.input_format is not None
    return Converter(mic.audio_format, conn.input_format)


# ------------------------------------------- PortAudio's side, simulated
#
# The tests below put a stand-in for the sounddevice package (the seam between
# voxsync and PortAudio) into sys.modules, to reach what a real device rarely
# does: refuse to open or start, fail to stop, have no default input. The
# stream's ``deliver()`` calls the capture callback the way PortAudio's input
# thread does.


class FakePortAudioError(Exception):
    """sounddevice.PortAudioError."""


class FakeInputStream:
    def __init__(self, device_layer: FakeSoundDevice, **settings: Any) -> None:
        self.layer = device_layer
        self.settings = settings
        self.callback = settings.pop("callback")
        self.started = self.stopped = self.closed = False
        if device_layer.open_error is not None:
            raise device_layer.open_error
        device_layer.streams.append(self)

    def start(self) -> None:
        if self.layer.start_error is not None:
            raise self.layer.start_error
        self.started = True

    def deliver(self, block: bytes, status: int = 0) -> None:
        assert self.started and not self.stopped
        self.callback(memoryview(block), len(block) // 2, None, status)

    def stop(self) -> None:
        self.stopped = True
        if self.layer.stop_error is not None:
            raise self.layer.stop_error

    def close(self, ignore_errors: bool = False) -> None:
        assert ignore_errors
        self.closed = True


class FakeSoundDevice:
    """What voxsync uses of sounddevice: streams, device queries, PortAudioError."""

    PortAudioError = FakePortAudioError

    def __init__(self) -> None:
        self.streams: List[FakeInputStream] = []
        self.open_error: Any = None
        self.start_error: Any = None
        self.stop_error: Any = None
        self.devices: List[dict] = []
        self.hostapis: List[dict] = [{"name": "ALSA"}, {"name": "JACK Audio Connection Kit"}]
        self.default = type("Default", (), {"device": [-1, -1]})()
        self.input_default: Any = FakePortAudioError("Error querying device -1")
        self.query_error: Any = None

    def RawInputStream(self, **settings: Any) -> FakeInputStream:  # noqa: N802 (sounddevice's name)
        return FakeInputStream(self, **settings)

    def query_devices(self, kind: Any = None) -> Any:
        if self.query_error is not None:
            raise self.query_error
        if kind == "input":
            if isinstance(self.input_default, Exception):
                raise self.input_default
            return self.input_default
        return self.devices

    def query_hostapis(self) -> List[dict]:
        return self.hostapis


@pytest.fixture
def portaudio(monkeypatch: pytest.MonkeyPatch) -> FakeSoundDevice:
    fake = FakeSoundDevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    return fake


def _device(name: str, inputs: int, rate: float = 44100.0, hostapi: int = 0) -> dict:
    return {
        "name": name,
        "max_input_channels": inputs,
        "default_samplerate": rate,
        "hostapi": hostapi,
    }


def test_the_device_is_opened_with_the_stream_s_settings(portaudio: FakeSoundDevice) -> None:
    mic = MicrophoneStream(2, 48000, 480, "float32", "USB", latency="low")
    assert mic.start() is mic
    assert mic.start() is mic  # idempotent: one device stream
    assert len(portaudio.streams) == 1
    stream = portaudio.streams[0]
    assert stream.settings == {
        "samplerate": 48000,
        "blocksize": 480,
        "device": "USB",
        "channels": 2,
        "dtype": "float32",
        "latency": "low",
    }
    assert stream.started and mic.active
    assert repr(mic) == (
        f"<MicrophoneStream {mic.number} 48000 Hz stereo pcm_f32le device='USB' running>"
    )
    mic.stop()
    assert stream.stopped and stream.closed and not mic.active
    assert repr(mic).endswith("stopped>")


def test_the_default_latency_is_high(portaudio: FakeSoundDevice) -> None:
    with MicrophoneStream():
        pass
    assert portaudio.streams[0].settings["latency"] == "high"
    assert portaudio.streams[0].settings["device"] is None


HINT = "; voxsync.audio.list_devices() lists the input devices"


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [
        (
            None,
            FakePortAudioError("Error querying device -1"),
            "cannot open the default input device for 16000 Hz mono pcm_s16le: there is none; "
            "connect a microphone or choose a device" + HINT,
        ),
        (
            7,
            FakePortAudioError("Error querying device 7"),
            "cannot open input device 7 for 16000 Hz mono pcm_s16le: there is no such input "
            "device" + HINT,
        ),
        (
            "usb",
            ValueError("No input device matching 'usb'"),
            "cannot open input device 'usb' for 16000 Hz mono pcm_s16le: there is no such input "
            "device" + HINT,
        ),
        (
            None,
            FakePortAudioError("Invalid sample rate [PaErrorCode -9997]"),
            "cannot open the default input device for 16000 Hz mono pcm_s16le: Invalid sample "
            "rate [PaErrorCode -9997]" + HINT,
        ),
        (
            2,
            FakePortAudioError("Invalid number of channels"),
            "cannot open input device 2 for 16000 Hz mono pcm_s16le: Invalid number of "
            "channels" + HINT,
        ),
    ],
)
def test_a_device_that_cannot_be_opened_is_named_with_the_way_out(
    portaudio: FakeSoundDevice, device: Any, error: Exception, message: str
) -> None:
    portaudio.open_error = error
    mic = MicrophoneStream(device=device)
    with pytest.raises(DeviceError) as info:
        mic.start()
    assert str(info.value) == message
    assert info.value.__cause__ is error
    assert not mic.active


def test_a_device_that_cannot_start_is_closed_again(portaudio: FakeSoundDevice) -> None:
    error = FakePortAudioError("Device unavailable [PaErrorCode -9985]")
    portaudio.start_error = error
    mic = MicrophoneStream(device=3)
    with pytest.raises(DeviceError) as info:
        mic.start()
    assert str(info.value) == "cannot start input device 3: Device unavailable [PaErrorCode -9985]"
    assert info.value.__cause__ is error
    assert portaudio.streams[0].closed and not mic.active
    with pytest.raises(LocalProtocolError, match="before start"):
        mic.read(timeout=0.1)


def test_a_device_that_fails_to_stop_is_still_closed(portaudio: FakeSoundDevice) -> None:
    portaudio.stop_error = FakePortAudioError("Stream is stopped already")
    mic = MicrophoneStream().start()
    mic.stop()  # nothing to report to the caller: the device is gone either way
    assert portaudio.streams[0].closed and not mic.active
    mic.stop()


def test_list_devices_keeps_inputs_and_marks_the_default(portaudio: FakeSoundDevice) -> None:
    portaudio.devices = [
        _device("HDMI output", 0),
        _device("USB headset", 1, 48000.0, hostapi=0),
        _device("system", 32, 44100.0, hostapi=1),
        _device("odd one", 2, 16000.0, hostapi=9),  # an API index PortAudio did not list
    ]
    portaudio.default.device = [2, 0]
    assert list_devices() == [
        InputDevice(1, "USB headset", 1, 48000.0, "ALSA", False),
        InputDevice(2, "system", 32, 44100.0, "JACK Audio Connection Kit", True),
        InputDevice(3, "odd one", 2, 16000.0, "", False),
    ]


def test_list_devices_asks_for_the_default_input_when_none_is_set(
    portaudio: FakeSoundDevice,
) -> None:
    portaudio.devices = [_device("a", 1), _device("b", 2)]
    portaudio.default.device = [-1, 0]
    portaudio.input_default = {"index": 1, "name": "b"}
    assert [d.is_default for d in list_devices()] == [False, True]
    portaudio.default.device = ["b", 0]  # set by name: not an index either
    assert [d.is_default for d in list_devices()] == [False, True]
    portaudio.input_default = FakePortAudioError("Error querying device -1")
    assert [d.is_default for d in list_devices()] == [False, False]
    portaudio.input_default = {"name": "b"}  # no index: no default rather than a crash
    assert [d.is_default for d in list_devices()] == [False, False]


def test_list_devices_failing_is_a_device_error(portaudio: FakeSoundDevice) -> None:
    error = FakePortAudioError("PortAudio not initialized [PaErrorCode -10000]")
    portaudio.query_error = error
    with pytest.raises(DeviceError) as info:
        list_devices()
    assert str(info.value) == (
        "cannot list audio devices: PortAudio not initialized [PaErrorCode -10000]"
    )
    assert info.value.__cause__ is error


class Gated(Connection):
    """A connection whose transport waits for ``gate`` and keeps every chunk."""

    provider = "gated"

    def __init__(self, **kw: Any) -> None:
        super().__init__(AudioFormat(16000, 1), **kw)
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.chunks: List[bytes] = []

    def _write_chunk(self, chunk: bytes) -> None:
        self.writing.set()
        assert self.gate.wait(10)
        self.chunks.append(chunk)


def _wait(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_chunk_the_connection_cannot_queue_is_reported_and_streaming_goes_on(
    portaudio: FakeSoundDevice,
) -> None:
    conn = Gated(queue_size=1, overflow="raise")
    errors: List[BaseException] = []
    conn.on("error", errors.append)
    blocks = [bytes([i]) * 320 for i in range(1, 5)]
    mic = MicrophoneStream(blocksize=160)
    try:
        sender = mic.stream_to(conn)
        stream = portaudio.streams[0]
        stream.deliver(blocks[0])  # taken by the (stalled) transport
        assert conn.writing.wait(5)
        stream.deliver(blocks[1])  # fills the queue
        stream.deliver(blocks[2])  # no room: QueueFullError
        _wait(lambda: bool(errors))
        conn.gate.set()
        _wait(lambda: len(conn.chunks) == 2)  # the queue has room again
        stream.deliver(blocks[3])  # still streaming
        _wait(lambda: len(conn.chunks) == 3)
        assert sender.is_alive()
        with pytest.raises(QueueFullError):  # without on_error, stop() raises it again
            mic.stop()
        conn.finish(timeout=5)
    finally:
        conn.gate.set()
        conn.close()
        with contextlib.suppress(QueueFullError):
            mic.stop()  # a no-op once stopped; ends the sender if the test failed early
    assert conn.chunks == [blocks[0], blocks[1], blocks[3]]
    assert len(errors) == 1 and isinstance(errors[0], QueueFullError)
    assert "send queue full" in str(errors[0])


def test_an_on_error_that_raises_is_logged_and_delivery_ends(
    portaudio: FakeSoundDevice, caplog: pytest.LogCaptureFixture
) -> None:
    def on_error(exc: BaseException) -> None:
        raise RuntimeError("handler broke")

    def consumer(block: bytes) -> None:
        raise ValueError("cannot handle audio")

    mic = MicrophoneStream(on_error=on_error)
    sender = mic.stream_with_callback(consumer)
    portaudio.streams[0].deliver(b"\x00\x00" * 160)
    sender.join(5)
    assert not sender.is_alive()
    mic.stop()  # the error went to on_error: stop() has nothing to raise
    assert f"microphone {mic.number}: on_error raised" in caplog.text
    assert "handler broke" in caplog.text


def test_a_stop_error_does_not_hide_the_exception_that_ends_the_with_block(
    portaudio: FakeSoundDevice, caplog: pytest.LogCaptureFixture
) -> None:
    def consumer(block: bytes) -> None:
        raise ValueError("cannot handle audio")

    with pytest.raises(KeyError, match="the caller's own error"), MicrophoneStream() as mic:
        sender = mic.stream_with_callback(consumer)
        portaudio.streams[0].deliver(b"\x00\x00" * 160)
        sender.join(5)
        raise KeyError("the caller's own error")
    assert f"microphone {mic.number}: error while stopping" in caplog.text
    assert "cannot handle audio" in caplog.text
    mic.stop()  # the sender's error was reported once, by the with block


def test_read_times_out_with_the_wait_in_the_message(portaudio: FakeSoundDevice) -> None:
    with MicrophoneStream() as mic:
        with pytest.raises(TimeoutError) as info:
            mic.read(timeout=0.05)
        assert str(info.value) == "no microphone audio within 0.05 s"
        portaudio.streams[0].deliver(b"\x01\x00" * 160)
        assert mic.read(timeout=1) == b"\x01\x00" * 160
    assert mic.read(timeout=1) == b""  # stopped and drained


def test_overflow_flags_of_a_real_capture_are_counted(portaudio: FakeSoundDevice) -> None:
    blocks: List[bytes] = []
    with MicrophoneStream() as mic:
        mic.stream_with_callback(blocks.append)
        stream = portaudio.streams[0]
        stream.deliver(b"\x01\x00" * 160, status=0)
        stream.deliver(b"\x02\x00" * 160, status=2)  # paInputOverflow
        _wait(lambda: len(blocks) == 2)
    assert mic.input_overflows == 1 and mic.dropped_blocks == 0
