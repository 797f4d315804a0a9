"""A virtual microphone for tests: PulseAudio with a null sink whose monitor is the default source.

Audio played into the sink ``vmic`` (``VirtualMic.play``) comes out of the
default input device, so ``MicrophoneStream`` captures it like speech into a
real microphone. Use it with::

    from pulse import virtual_mic  # noqa: F401

    def test_x(virtual_mic):
        with MicrophoneStream(device=virtual_mic.device) as mic:
            virtual_mic.play("speech.wav").wait(10)

The daemon is started once per test session (``pulseaudio -D
--exit-idle-time=-1``) if none is running, and left running afterwards; the
set-up is idempotent. At the end of the session the machine's default source
is restored and the null sink is unloaded if this session loaded it. Where
PulseAudio cannot start the fixture skips with the reason, except when the
environment variable ``CI`` is set: then it fails, so a CI machine never
silently skips the microphone tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import pytest

SINK = "vmic"
SOURCE = f"{SINK}.monitor"
_START_TIMEOUT = 10.0


class PulseUnavailable(RuntimeError):
    """PulseAudio could not be started or configured."""


def _run(args: List[str], timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def _pactl(*args: str) -> str:
    result = _run(["pactl", *args])
    if result.returncode != 0:
        raise PulseUnavailable(
            f"`pactl {' '.join(args)}` failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result.stdout


def _server_running() -> bool:
    return _run(["pactl", "info"], timeout=5.0).returncode == 0


def _start_daemon() -> None:
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            raise PulseUnavailable(
                f"{tool} not found; install the Debian packages pulseaudio and pulseaudio-utils"
            )
    if _server_running():
        return
    result = _run(["pulseaudio", "-D", "--exit-idle-time=-1"], timeout=_START_TIMEOUT)
    deadline = time.monotonic() + _START_TIMEOUT
    while not _server_running():
        if time.monotonic() > deadline:
            raise PulseUnavailable(
                f"pulseaudio did not start (exit {result.returncode}): {result.stderr.strip()}"
            )
        time.sleep(0.1)


def default_source() -> Optional[str]:
    """The server's default source (``pactl info``), None if it names none."""
    for line in _pactl("info").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Default Source":
            return value.strip() or None
    return None


def sink_loaded() -> bool:
    sinks = [line.split("\t")[1] for line in _pactl("list", "short", "sinks").splitlines() if line]
    return SINK in sinks


def _ensure_sink() -> Tuple[Optional[str], Optional[str]]:
    """Load the sink, make its monitor the default source.

    Returns the previous default source and the module index this call
    loaded (None if the sink was there already), for :func:`_restore`.
    """
    previous = default_source()
    module = None
    if not sink_loaded():
        module = _pactl("load-module", "module-null-sink", f"sink_name={SINK}").strip()
    _pactl("set-default-source", SOURCE)
    return previous, module


def _sources() -> List[str]:
    return [line.split("\t")[1] for line in _pactl("list", "short", "sources").splitlines() if line]


def _restore(previous: Optional[str], module: Optional[str]) -> None:
    """Undo :func:`_ensure_sink`: our sink unloaded, the old default source back.

    The old source may be gone: PulseAudio's ``module-always-sink`` removes
    its placeholder sink ``auto_null`` (and so ``auto_null.monitor``) once
    another sink is loaded, and loads it again only after ours is unloaded,
    which it does asynchronously. Then the server chooses its own default and
    there is nothing to restore.
    """
    if module:
        _pactl("unload-module", module)
    if not previous or previous == SOURCE:
        return
    deadline = time.monotonic() + 2.0
    while previous not in _sources():
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
    _pactl("set-default-source", previous)


def _refresh_portaudio() -> Optional[str]:
    """Make PortAudio see the running server; return the device name to capture from."""
    sd = sys.modules.get("sounddevice")
    if sd is not None:  # imported before the daemon ran: enumerate the devices again
        sd._terminate()
        sd._initialize()
    else:
        import sounddevice as sd
    names = [dev["name"] for dev in sd.query_devices() if dev["max_input_channels"] > 0]
    # ALSA's "pulse" device always goes through the server; "default" only does
    # when the server was running when ALSA read its configuration.
    device = "pulse" if "pulse" in names else None
    # The first capture of a process starts late (the first block can take
    # seconds, and audio played meanwhile comes out garbled): capture until
    # the first block arrives before any test does.
    first_block = threading.Event()
    with sd.RawInputStream(
        samplerate=16000,
        blocksize=1024,
        device=device,
        channels=1,
        callback=lambda *args: first_block.set(),
    ):
        if not first_block.wait(_START_TIMEOUT):
            raise PulseUnavailable(f"no audio from the virtual source within {_START_TIMEOUT} s")
    return device


class Playback:
    """A running ``paplay``; :meth:`wait` blocks until it has played everything."""

    def __init__(self, process: subprocess.Popen[bytes], path: str) -> None:
        self.process = process
        self.path = path

    def wait(self, timeout: float = 30.0) -> int:
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise
        if self.process.returncode != 0:
            raise RuntimeError(f"paplay {self.path} failed: {err.decode(errors='replace')}")
        return self.process.returncode

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@contextlib.contextmanager
def listening(
    argv: List[str], env: Optional[Dict[str, str]] = None, timeout: float = 30.0
) -> Iterator[subprocess.Popen[str]]:
    """Run a command that captures the microphone; yield it once it says ``Listening``.

    The first blocks of a fresh capture come late (see ``_refresh_portaudio``),
    so it waits a moment more before yielding. The command is killed if it
    still runs when the block ends.
    """
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        before = _read_until_listening(proc, timeout)
        assert before is None, f"no 'Listening' line within {timeout} s; stderr: {before!r}"
        time.sleep(0.8)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _read_until_listening(proc: subprocess.Popen[str], timeout: float) -> Optional[str]:
    """Read ``proc``'s stderr until the ``Listening`` line; None once it came, else what came.

    Other lines may come first (ALSA writes its own warnings to stderr); they
    are skipped. Bounded: past ``timeout`` the command is killed and whatever it
    wrote is returned, so a test fails with the reason instead of hanging.
    """
    assert proc.stderr is not None
    stream = proc.stderr
    got: List[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            if line.startswith("Listening"):
                found.set()
                return
            got.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if found.wait(timeout):
        reader.join()
        return None
    proc.kill()
    reader.join(5)
    return "".join(got)


class VirtualMic:
    """The virtual microphone: what :meth:`play` plays, the default input captures."""

    sink = SINK
    source = SOURCE

    def __init__(self, device: Optional[str]) -> None:
        #: PortAudio device to pass as ``MicrophoneStream(device=...)`` (None: default).
        self.device = device

    def play(self, path: Union[str, Path]) -> Playback:
        """Start playing a WAV file into the virtual microphone (returns at once)."""
        process = subprocess.Popen(
            ["paplay", f"--device={SINK}", "--latency-msec=1000", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return Playback(process, str(path))


class PrivateMic(VirtualMic):
    """A null sink of this process only; a child process started with :attr:`env`
    captures its monitor as the default source (libpulse reads ``PULSE_SOURCE``),
    so audio other processes play into the shared sink never reaches it."""

    def __init__(self, device: Optional[str], sink: str) -> None:
        super().__init__(device)
        self.sink = sink
        self.source = f"{sink}.monitor"
        #: Environment for a child process whose default input is this sink.
        self.env = {"PULSE_SOURCE": self.source}

    def play(self, path: Union[str, Path]) -> Playback:
        process = subprocess.Popen(
            ["paplay", f"--device={self.sink}", "--latency-msec=1000", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return Playback(process, str(path))


@pytest.fixture()
def private_mic(virtual_mic: VirtualMic) -> Iterator[PrivateMic]:
    """A virtual microphone for child processes that no other test run shares."""
    sink = f"vmic_{os.getpid()}_{time.monotonic_ns()}"
    module = _pactl("load-module", "module-null-sink", f"sink_name={sink}").strip()
    try:
        yield PrivateMic(virtual_mic.device, sink)
    finally:
        _pactl("unload-module", module)


@pytest.fixture(scope="session")
def virtual_mic() -> Iterator[VirtualMic]:
    """PulseAudio with the null sink ``vmic`` whose monitor is the default source."""
    previous: Optional[str] = None
    module: Optional[str] = None
    try:
        _start_daemon()
        previous, module = _ensure_sink()
        device = _refresh_portaudio()
    except Exception as exc:  # PulseUnavailable, OSError, PortAudioError, ...
        if module is not None or previous is not None:
            _restore(previous, module)
        if os.environ.get("CI"):
            pytest.fail(f"virtual microphone unavailable under CI: {exc}")
        pytest.skip(f"virtual microphone unavailable (PulseAudio cannot start): {exc}")
    try:
        yield VirtualMic(device)
    finally:
        _restore(previous, module)
