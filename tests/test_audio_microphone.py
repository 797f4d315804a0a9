"""MicrophoneStream against a real (virtual) microphone: PulseAudio plays, PortAudio captures."""

from __future__ import annotations

import importlib.abc
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import soundfile
from pulse import VirtualMic, virtual_mic  # noqa: F401

from voxsync.audio import AudioFormat, MicrophoneStream, list_devices, read_audio
from voxsync.audio.microphone import InputDevice
from voxsync.connection import Connection
from voxsync.errors import (
    ConfigurationError,
    DeviceError,
    DisconnectedError,
    LocalProtocolError,
)
from voxsync.events import StreamWarning

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "audio"
JOIN = 10.0


class RecordingConnection(Connection):
    """A connection whose transport is a list: ``_write_chunk`` keeps every chunk."""

    provider = "rec"

    def __init__(self, audio_format: AudioFormat, fail_after: Optional[int] = None, **kw: Any):
        super().__init__(audio_format, **kw)
        self.chunks: List[bytes] = []
        self.fail_after = fail_after
        self.gate = threading.Event()
        self.gate.set()

    def _write_chunk(self, chunk: bytes) -> None:
        self.gate.wait(JOIN)
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise OSError("link down")
        self.chunks.append(chunk)

    @property
    def received(self) -> bytes:
        return b"".join(self.chunks)


# --------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 kHz mono speech WAV: a project sample, or a speech-like synthetic signal."""
    sample = SAMPLES / "quick_brown_fox.wav"
    if sample.exists():
        return sample
    rate = 16000
    t = np.arange(int(rate * 2.5)) / rate
    voiced = np.sin(2 * np.pi * (140 + 60 * np.sin(2 * np.pi * 0.7 * t)) * t)
    formants = voiced + 0.5 * np.sin(2 * np.pi * 700 * t) + 0.3 * np.sin(2 * np.pi * 1200 * t)
    syllables = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    signal = np.concatenate([np.zeros(rate // 4), 0.3 * formants * syllables, np.zeros(rate // 4)])
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    soundfile.write(str(path), signal.astype(np.float32), rate, subtype="PCM_16")
    return path


#: Taps either side of the aligned position the sound path may smear audio over (10 ms).
ECHO_TAPS = 160


def align(captured: np.ndarray, played: np.ndarray) -> Tuple[int, float, float]:
    """Best alignment of ``played`` inside ``captured``.

    Returns (offset in samples, correlation at that offset, RMS ratio
    captured/played over the aligned segment). The correlation is that of
    the captured segment with the best short linear filter of ``played``
    (taps up to :data:`ECHO_TAPS` samples either side): the sound server may
    smear what it plays (on a busy machine the virtual microphone has been
    seen to mix the stream with a copy of itself 5 ms apart, a comb filter
    that halves the plain correlation while the audio is intact), but audio
    lost, repeated, reordered or corrupted on the way still lowers it.
    """
    assert len(captured) >= len(played), "captured less audio than was played"
    n = len(captured) + len(played)
    corr = np.fft.irfft(np.fft.rfft(captured, n) * np.conj(np.fft.rfft(played, n)), n)
    corr = corr[: len(captured) - len(played) + 1]
    offset = int(np.argmax(corr))
    segment = captured[offset : offset + len(played)]
    rms = float(np.sqrt(np.mean(segment**2)) / np.sqrt(np.mean(played**2)))
    return offset, filtered_correlation(segment, played), rms


def filtered_correlation(segment: np.ndarray, played: np.ndarray, taps: int = ECHO_TAPS) -> float:
    """Correlation of ``segment`` with its least-squares fit ``h * played``, ``h`` of
    ``2 * taps + 1`` taps centred on the alignment (normal equations: a Toeplitz
    system of ``played``'s autocorrelation)."""
    n = 2 * len(played)
    spectrum = np.fft.rfft(played, n)
    auto = np.fft.irfft(spectrum * np.conj(spectrum), n)[: 2 * taps + 1]
    cross = np.fft.irfft(np.fft.rfft(segment, n) * np.conj(spectrum), n)
    lags = np.arange(-taps, taps + 1)
    rhs = cross[lags % n]  # sum over t of segment[t] * played[t - lag]
    gram = auto[np.abs(lags[:, None] - lags[None, :])]
    gram += np.eye(len(lags)) * 1e-9 * auto[0]
    h = np.linalg.solve(gram, rhs)
    explained = max(float(h @ rhs), 0.0)  # energy of the fit (its projection)
    return float(np.sqrt(explained) / np.linalg.norm(segment))


def similarity(captured: np.ndarray, played: np.ndarray, pieces: int = 4) -> Tuple[float, float]:
    """How well ``captured`` contains ``played``: (correlation, level ratio).

    ``played`` is cut into ``pieces`` and each piece is aligned on its own, so
    a hiccup of the sound server on a busy machine (a few milliseconds
    missing) spoils one piece, not the whole comparison. The correlation is
    the energy-weighted mean of the pieces' correlations (see :func:`align`);
    the level ratio comes from aligning the whole recording.
    """
    _, _, level = align(captured, played)
    bounds = np.linspace(0, len(played), pieces + 1).astype(int)
    scores, weights = [], []
    for start, end in zip(bounds[:-1], bounds[1:]):
        piece = played[start:end]
        energy = float(np.sum(piece**2))
        if energy > 0:
            scores.append(align(captured, piece)[1])
            weights.append(energy)
    return float(np.average(scores, weights=weights)), level


@pytest.fixture
def vmic(request: pytest.FixtureRequest) -> VirtualMic:
    """The session's virtual microphone (``virtual_mic`` from pulse.py)."""
    mic: VirtualMic = request.getfixturevalue("virtual_mic")
    return mic


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Poll ``condition()`` until true (the microphone is live) or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the microphone delivered no audio"
        time.sleep(0.01)


# ----------------------------------------------------- without hardware


def test_import_voxsync_does_not_load_portaudio() -> None:
    code = (
        "import sys; sys.modules['sounddevice'] = None\n"
        "import voxsync, voxsync.audio\n"
        "from voxsync.audio import MicrophoneStream\n"
        "mic = MicrophoneStream()\n"
        "try:\n"
        "    mic.start()\n"
        "except voxsync.errors.DeviceError as exc:\n"
        "    print('DeviceError:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "DeviceError:" in out.stdout
    assert "pip install sounddevice" in out.stdout


class _NoPortAudio(importlib.abc.MetaPathFinder):
    """Import hook that fails like sounddevice does when libportaudio is missing."""

    def find_spec(self, name: str, path: Optional[Sequence[str]], target: Any = None) -> None:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def test_missing_portaudio_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(DeviceError, match="apt-get install libportaudio2") as info:
        MicrophoneStream().start()
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(DeviceError, match="libportaudio2"):
        list_devices()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "int8"}, "dtype"),
        ({"blocksize": -1}, "blocksize"),
        ({"channels": 0}, "channels"),
        ({"samplerate": 10}, "sample_rate"),
        ({"queue_size": 0}, "queue_size"),
        ({"on_error": "print"}, "on_error"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        MicrophoneStream(**kwargs)


def test_format_and_defaults() -> None:
    mic = MicrophoneStream(channels=2, samplerate=48000, blocksize=4800, dtype="float32")
    assert mic.audio_format == AudioFormat(48000, 2, "pcm_f32le")
    assert mic.queue_size >= 100  # about 10 s of 100 ms blocks
    assert not mic.active and not mic.paused and mic.dropped_blocks == 0


def test_read_before_start_is_a_protocol_error() -> None:
    with pytest.raises(LocalProtocolError, match="start"):
        MicrophoneStream().read(timeout=0.1)


def test_stream_to_needs_a_connection() -> None:
    with pytest.raises(ConfigurationError, match="connection"):
        MicrophoneStream().stream_to(object())


def test_bad_device_is_a_device_error(vmic: VirtualMic) -> None:
    mic = MicrophoneStream(device="no such microphone anywhere")
    with pytest.raises(DeviceError, match="list_devices"):
        mic.start()
    assert not mic.active


# ------------------------------------------------------ real capture


def test_list_devices_sees_the_virtual_source(vmic: VirtualMic) -> None:
    devices = list_devices()
    assert devices and all(isinstance(d, InputDevice) for d in devices)
    assert all(d.channels > 0 and d.default_samplerate > 0 for d in devices)
    if vmic.device is not None:
        assert vmic.device in [d.name for d in devices]
    assert sum(d.is_default for d in devices) <= 1
    assert str(devices[0]).strip()


def test_captured_audio_matches_what_was_played(vmic: VirtualMic, speech: Path) -> None:
    played, _ = read_audio(speech, AudioFormat(16000, 1))
    reference = np.frombuffer(played, "<i2").astype(np.float64)
    blocks: List[bytes] = []
    with MicrophoneStream(channels=1, samplerate=16000, blocksize=1024, device=vmic.device) as mic:
        assert mic.active
        blocks.append(mic.read(timeout=10))  # live: play now
        # read() from this thread while a helper thread plays
        player = threading.Thread(target=lambda: vmic.play(speech).wait(30))
        player.start()
        # until the player is done (it may start late on a busy machine), and a bit more
        deadline = time.monotonic() + 30
        while player.is_alive() and time.monotonic() < deadline:
            blocks.append(mic.read(timeout=5))
        for _ in range(8):  # 0.5 s
            blocks.append(mic.read(timeout=5))
        player.join(JOIN)
    assert all(len(b) == 2048 for b in blocks)
    captured = np.frombuffer(b"".join(blocks), "<i2").astype(np.float64)
    ncc, rms = similarity(captured, reference)
    assert ncc > 0.9, f"captured audio does not match (correlation {ncc:.2f}, {mic!r})"
    assert 0.5 < rms < 2.0, f"captured level is off by a factor {rms:.2f}"
    assert mic.dropped_blocks == 0
    # after stop, read() drains and then reports the end
    while mic.read(timeout=1):
        pass
    assert mic.read(timeout=1) == b""


def test_stream_to_converts_48k_stereo_to_the_connection_format(
    vmic: VirtualMic, speech: Path
) -> None:
    conn = RecordingConnection(AudioFormat(16000, 1, "pcm_s16le"))
    errors: List[Any] = []
    conn.on("error", errors.append)
    try:
        with MicrophoneStream(
            channels=2, samplerate=48000, blocksize=4800, device=vmic.device
        ) as mic:
            sender = mic.stream_to(conn)  # idle: connects it
            assert conn.state == "open"
            assert sender.name == f"voxsync-mic-{mic.number}-sender"
            wait_for(lambda: conn.metrics.snapshot()["bytes_queued"] > 0)
            vmic.play(speech).wait(30)
            time.sleep(0.5)
        assert not sender.is_alive()
        conn.finish(timeout=10)
    finally:
        conn.close()
    assert errors == []
    received = conn.received
    assert len(received) % 2 == 0
    played = np.frombuffer(read_audio(speech, AudioFormat(16000, 1))[0], "<i2").astype(float)
    captured = np.frombuffer(received, "<i2").astype(np.float64)
    ncc, rms = similarity(captured, played)
    assert ncc > 0.9, f"correlation {ncc:.2f}"
    assert 0.5 < rms < 2.0, f"level ratio {rms:.2f}"


def test_stream_to_twice_raises(vmic: VirtualMic) -> None:
    conn = RecordingConnection(AudioFormat(8000, 1, "mulaw"))
    other = RecordingConnection(AudioFormat(16000, 1))
    try:
        with MicrophoneStream(blocksize=800, device=vmic.device) as mic:
            mic.stream_to(conn)
            with pytest.raises(LocalProtocolError, match="already streams"):
                mic.stream_to(other)
            with pytest.raises(LocalProtocolError, match="already streams"):
                mic.stream_with_callback(lambda block: None)
            with pytest.raises(LocalProtocolError, match="consumes"):
                mic.read(timeout=0.1)
            assert other.state == "idle"
            wait_for(lambda: conn.metrics.snapshot()["bytes_queued"] >= 1600)
        # nothing is playing: the virtual source is silent, which is 0xFF in mu-law
        assert set(conn.received) == {0xFF}
        # mulaw at 8 kHz: 8000 bytes a second
        assert conn.audio_format.duration(len(conn.received)) >= 0.2
    finally:
        conn.close()
        other.close()


def test_stop_delivers_the_buffered_tail(vmic: VirtualMic) -> None:
    delivered: List[Tuple[float, int]] = []

    def slow(block: bytes) -> None:
        delivered.append((time.monotonic(), len(block)))
        time.sleep(0.12)  # blocks of 64 ms: about half real-time speed

    mic = MicrophoneStream(blocksize=1024, device=vmic.device)
    mic.start()
    started = time.monotonic()
    mic.stream_with_callback(slow)
    time.sleep(1.2)
    stop_called = time.monotonic()
    mic.stop()
    captured_seconds = stop_called - started
    after_stop = [t for t, _ in delivered if t > stop_called]
    assert after_stop, "nothing was left to deliver when stop() was called"
    total = sum(n for _, n in delivered) / mic.audio_format.bytes_per_second
    assert total >= 0.7 * captured_seconds, (total, captured_seconds)
    assert mic.dropped_blocks == 0


def test_pause_mutes_and_resume_continues(vmic: VirtualMic) -> None:
    blocks: List[bytes] = []
    with MicrophoneStream(blocksize=512, device=vmic.device) as mic:
        mic.stream_with_callback(blocks.append)
        wait_for(lambda: blocks)
        mic.pause()
        assert mic.paused and mic.active
        time.sleep(0.3)  # let blocks captured before the pause arrive
        count = len(blocks)
        time.sleep(0.6)
        assert len(blocks) == count, "audio delivered while paused"
        mic.resume()
        time.sleep(0.6)
        assert len(blocks) > count
    assert mic.dropped_blocks == 0


def test_full_buffer_drops_are_counted_and_reported(
    vmic: VirtualMic, caplog: pytest.LogCaptureFixture
) -> None:
    conn = RecordingConnection(AudioFormat(16000, 1), queue_size=1, send_timeout=5.0)
    warnings: List[StreamWarning] = []
    conn.on("warning", warnings.append)
    conn.gate.clear()  # the transport stalls: the send queue fills, send() blocks
    try:
        mic = MicrophoneStream(blocksize=512, queue_size=2, device=vmic.device)
        mic.stream_to(conn)
        time.sleep(0.8)
        assert mic.dropped_blocks > 0
        conn.gate.set()
        mic.stop()
        conn.finish(timeout=10)
    finally:
        conn.gate.set()
        conn.close()
    drops = [w for w in warnings if w.code == "audio_dropped"]
    assert drops and "microphone buffer full" in drops[0].message
    assert drops[-1].count == mic.dropped_blocks
    assert "microphone buffer full" in caplog.text


def test_callback_errors_go_to_on_error(vmic: VirtualMic) -> None:
    seen: List[BaseException] = []
    got = threading.Event()

    def on_error(exc: BaseException) -> None:
        seen.append(exc)
        got.set()

    def broken(block: bytes) -> None:
        raise ValueError("cannot handle audio")

    with MicrophoneStream(blocksize=512, device=vmic.device, on_error=on_error) as mic:
        sender = mic.stream_with_callback(broken)
        assert got.wait(5)
        sender.join(JOIN)
        assert not sender.is_alive()  # delivery ended, the thread did not die silently
    assert len(seen) == 1 and isinstance(seen[0], ValueError)


def test_callback_errors_are_raised_by_stop(vmic: VirtualMic) -> None:
    def broken(block: bytes) -> None:
        raise ValueError("cannot handle audio")

    mic = MicrophoneStream(blocksize=512, device=vmic.device)
    mic.stream_with_callback(broken)
    time.sleep(0.3)
    with pytest.raises(ValueError, match="cannot handle audio"):
        mic.stop()
    mic.stop()  # raised once; stop is idempotent


def test_failed_connection_reaches_the_caller(vmic: VirtualMic) -> None:
    conn = RecordingConnection(AudioFormat(16000, 1), fail_after=2)
    conn_errors: List[BaseException] = []
    conn.on("error", conn_errors.append)
    try:
        mic = MicrophoneStream(blocksize=512, device=vmic.device)
        sender = mic.stream_to(conn)
        sender.join(JOIN)  # ends once send() reports the failed connection
        assert not sender.is_alive()
        with pytest.raises(DisconnectedError):
            mic.stop()
    finally:
        conn.close()
    assert conn_errors and isinstance(conn_errors[0], DisconnectedError)


def test_connection_closed_by_its_owner_ends_streaming_quietly(
    vmic: VirtualMic, caplog: pytest.LogCaptureFixture
) -> None:
    conn = RecordingConnection(AudioFormat(16000, 1))
    with MicrophoneStream(blocksize=512, device=vmic.device) as mic:
        sender = mic.stream_to(conn)
        time.sleep(0.3)
        conn.close()
        sender.join(JOIN)
        assert not sender.is_alive()
    assert "stopped sending" in caplog.text


def test_vendor_style_snippet(vmic: VirtualMic) -> None:
    """The documented pattern: connect, stream the microphone, disconnect in ``finally``."""
    connection = RecordingConnection(AudioFormat(16000, 1))
    errors: List[BaseException] = []
    connection.on("error", errors.append)
    connection.connect()
    try:
        with MicrophoneStream(
            channels=1, samplerate=16000, blocksize=4096, device=vmic.device
        ) as mic:
            mic.stream_to(connection)
            wait_for(lambda: connection.metrics.snapshot()["bytes_queued"] >= 8192)
    finally:
        connection.disconnect()
    assert errors == []
    # same format: whole 4096-frame blocks passed through unconverted
    assert connection.metrics.snapshot()["bytes_queued"] % 8192 == 0
    assert mic.dropped_blocks == 0


def test_stop_is_not_held_up_by_a_slow_connect(vmic: VirtualMic) -> None:
    """stream_to() connects an idle connection without holding the stream's lock."""
    opening = threading.Event()
    release = threading.Event()

    class SlowToOpen(RecordingConnection):
        def _open(self, timeout: float) -> None:
            opening.set()
            release.wait(JOIN)

    conn = SlowToOpen(AudioFormat(16000, 1, "pcm_s16le"))
    mic = MicrophoneStream(channels=1, samplerate=16000, blocksize=1024, device=vmic.device)
    outcome: List[Any] = []

    def run() -> None:
        try:
            outcome.append(mic.stream_to(conn))
        except LocalProtocolError as exc:
            outcome.append(exc)

    streamer = threading.Thread(target=run, name="stream-to")
    streamer.start()
    try:
        assert opening.wait(JOIN)
        start = time.monotonic()
        mic.stop()
        assert time.monotonic() - start < 2.0
    finally:
        release.set()
        streamer.join(JOIN)
        conn.close()
        mic.stop()
    assert isinstance(outcome[0], LocalProtocolError)
    assert "stopped" in str(outcome[0])
