"""MicrophoneStream details that need no sound device: arguments, buffer rules, consumers.

The capture side is driven the way PortAudio drives it: ``_callback`` is what
PortAudio's input thread calls with each block. tests/test_audio_microphone.py
captures from a real (virtual) microphone.
"""

from __future__ import annotations

import threading
import time
from typing import Any, List

import numpy as np
import pytest

from voxsync.audio import AudioFormat, MicrophoneStream
from voxsync.audio.microphone import InputDevice
from voxsync.connection import Connection
from voxsync.errors import ConfigurationError, LocalProtocolError

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
