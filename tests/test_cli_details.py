"""The ``voxsync`` command's details: devices, emulate delegation, error lines, the display.

A provider plugs into the command through its spec (``cli`` and
``emulator_module``, see :class:`voxsync.providers.ProviderSpec`); these
tests register small plugins of their own to reach every branch of the
command's error reporting and of ``voxsync emulate``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
import types
from typing import IO, Any, Dict, List, Tuple

import pytest
from speech import sample
from test_providers import registry, run  # noqa: F401  (registry: a fixture)

import voxsync
import voxsync.audio
import voxsync.providers as providers
from voxsync.audio import InputDevice
from voxsync.audio.files import UnsupportedAudioError
from voxsync.cli import CommandHelpers, Display, emulator_names
from voxsync.errors import ConfigurationError, DeviceError
from voxsync.events import Transcript
from voxsync.local import LocalConnection
from voxsync.notebook import level_bar
from voxsync.providers import ProviderSpec


def _local(**options: Any) -> LocalConnection:
    return voxsync.local.create_connection(**options)


# ----------------------------------------------------------------- devices

DEVICES = [
    InputDevice(0, "Built-in Mic", 2, 48000.0, "ALSA", False),
    InputDevice(3, "USB headset", 1, 16000.0, "ALSA", True),
]


def test_devices_as_json_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(voxsync.audio, "list_devices", lambda: DEVICES)
    code, out, err = run(["devices", "--format", "json"], capsys)
    assert (code, err) == (0, "")
    assert out.endswith("\n") and [json.loads(line) for line in out.splitlines()] == [
        {
            "index": 0,
            "name": "Built-in Mic",
            "channels": 2,
            "default_samplerate": 48000.0,
            "hostapi": "ALSA",
            "is_default": False,
        },
        {
            "index": 3,
            "name": "USB headset",
            "channels": 1,
            "default_samplerate": 16000.0,
            "hostapi": "ALSA",
            "is_default": True,
        },
    ]


def test_no_devices_is_said_not_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(voxsync.audio, "list_devices", lambda: [])
    assert run(["devices"], capsys) == (0, "no audio input devices found\n", "")
    assert run(["devices", "--format", "json"], capsys) == (0, "", "")


def test_devices_that_cannot_be_listed_are_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> List[InputDevice]:
        raise DeviceError("PortAudio library not found")

    monkeypatch.setattr(voxsync.audio, "list_devices", broken)
    code, out, err = run(["devices"], capsys)
    assert (code, out) == (1, "")
    assert err == "voxsync: error: cannot list audio devices: PortAudio library not found\n"


# ----------------------------------------------------------------- emulate


def _emulator(calls: List[Dict[str, Any]], doc: Any) -> types.ModuleType:
    module = types.ModuleType("acme_voxsync_emulator")
    module.__doc__ = doc

    def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=0)

    def run_cli(args: argparse.Namespace) -> int:
        calls.append(vars(args))
        return 7

    module.add_cli_arguments = add_cli_arguments  # type: ignore[attr-defined]
    module.run_cli = run_cli  # type: ignore[attr-defined]
    return module


def _register_emulator(module_path: str) -> None:
    providers.register(ProviderSpec("acme", _local, emulator="acme", emulator_module=module_path))


def test_emulate_hands_over_its_arguments_and_exit_status(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: List[Dict[str, Any]] = []
    doc = "Acme's speech service, emulated.\n\nMore about it."
    monkeypatch.setitem(sys.modules, "acme_voxsync_emulator", _emulator(calls, doc))
    _register_emulator("acme_voxsync_emulator")
    code, _, _ = run(["--log-level", "info", "--debug", "emulate", "acme", "--port", "5"], capsys)
    assert code == 7  # the emulator's own status
    assert calls == [{"port": 5, "log_level": "info", "debug": True}]
    code, out, _ = run(["emulate", "acme", "--help"], capsys)
    assert code == 0
    assert out.startswith("usage: voxsync emulate acme [-h] [--port PORT]\n")
    assert "\nAcme's speech service, emulated.\n" in out and "More about it" not in out


def test_emulate_of_a_module_without_a_docstring(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "acme_voxsync_emulator", _emulator([], None))
    _register_emulator("acme_voxsync_emulator")
    code, out, _ = run(["emulate", "acme", "--help"], capsys)
    assert code == 0
    assert out.splitlines()[:3] == [
        "usage: voxsync emulate acme [-h] [--port PORT]",
        "",
        "options:",
    ]


def test_unknown_emulator_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["emulate", "nosuch"], capsys)
    assert code == 2
    known = ", ".join(emulator_names())
    assert err.endswith(
        f"voxsync: error: emulate: unknown emulator 'nosuch' (choose from {known})\n"
    )


def test_unknown_emulator_when_there_are_none(
    registry: Dict[str, ProviderSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n, spec in registry.items() if spec.emulator is not None]:
        del registry[name]
    code, _, err = run(["emulate", "nosuch"], capsys)
    assert code == 2
    assert err.endswith("emulate: unknown emulator 'nosuch' (choose from none)\n")


def test_emulator_without_its_server_packages_says_what_to_install(
    registry: Dict[str, ProviderSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    # what importing an emulator reports when one of the server packages is missing
    _register_emulator("werkzeug.voxsync_test_missing_part")
    code, _, err = run(["emulate", "acme"], capsys)
    assert code == 1
    assert err == (
        "voxsync: error: the acme emulator needs the server packages (werkzeug is not "
        "installed): pip install 'voxsync[emulators]' "
        "(from a source tree: pip install '.[emulators]')\n"
    )


def test_emulator_with_another_missing_module_is_not_blamed_on_the_extras(
    registry: Dict[str, ProviderSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    _register_emulator("acme_voxsync_emulator_not_installed")
    code, _, err = run(["emulate", "acme"], capsys)
    assert code == 1
    assert err == (
        "voxsync: error: unexpected ModuleNotFoundError: No module named "
        "'acme_voxsync_emulator_not_installed' (run with --debug for details)\n"
    )


# ------------------------------------------------------------ error lines


def _raising_cli(error: BaseException) -> types.ModuleType:
    """A provider command-line module with one command that raises ``error``."""
    module = types.ModuleType("acme_voxsync_cli")

    def run_fail(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
        raise error

    def add_commands(subparsers: Any, helpers: CommandHelpers) -> None:
        p = subparsers.add_parser("acme-fail", help="fail")
        p.set_defaults(func=run_fail)

    module.add_commands = add_commands  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            UnsupportedAudioError("x.ogg: bad header"),
            "not an audio file voxsync can read: x.ogg: bad header",
        ),
        (FileNotFoundError(2, "No such file or directory", "a.wav"), "a.wav: no such file"),
        (FileNotFoundError("gone.wav"), "gone.wav: no such file"),
        (DeviceError("the microphone was unplugged"), "audio device: the microphone was unplugged"),
        (ConfigurationError("silence_ms must be >= 100"), "silence_ms must be >= 100"),
        (PermissionError(13, "Permission denied", "/srv/a.wav"), "Permission denied: /srv/a.wav"),
        (OSError("disk on fire"), "disk on fire"),
        (RuntimeError("boom"), "unexpected RuntimeError: boom (run with --debug for details)"),
    ],
)
def test_errors_of_a_command_are_one_line_and_exit_1(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    line: str,
) -> None:
    monkeypatch.setitem(sys.modules, "acme_voxsync_cli", _raising_cli(error))
    providers.register(ProviderSpec("acme", _local, cli="acme_voxsync_cli"))
    assert run(["acme-fail"], capsys) == (1, "", f"voxsync: error: {line}\n")


def test_ctrl_c_in_a_command_exits_130(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "acme_voxsync_cli", _raising_cli(KeyboardInterrupt()))
    providers.register(ProviderSpec("acme", _local, cli="acme_voxsync_cli"))
    assert run(["acme-fail"], capsys) == (130, "", "\nvoxsync: interrupted\n")


# ---------------------------------------------------- helpers for plugins


def test_command_helpers_display_follows_the_options() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = CommandHelpers.display(argparse.Namespace(format="json"), out, err)
    assert (display.fmt, display.live, display.timestamps) == ("json", False, False)
    display = CommandHelpers.display(argparse.Namespace(timestamps=True), out, err)
    assert (display.fmt, display.timestamps) == ("text", True)
    display.event("transcript", Transcript("hi", start=1.0, end=2.0))
    assert out.getvalue() == "[   1.00 -    2.00] hi\n"


def test_command_helpers_connection_uses_the_parsed_options() -> None:
    parser = argparse.ArgumentParser()
    CommandHelpers.provider_options(parser)
    CommandHelpers.output_options(parser)
    args = parser.parse_args(["--provider", "local", "--silence-ms", "300", "--format", "json"])
    assert args.format == "json"
    conn = CommandHelpers.connection(args)
    conn.close()
    assert isinstance(conn, LocalConnection)
    # the provider's options reach the connection: a bad value is refused by it
    bad = parser.parse_args(["--silence-ms", "5"])
    with pytest.raises(ConfigurationError, match="silence_ms must be"):
        CommandHelpers.connection(bad, provider="local")
    assert bad.provider == "local"


def test_command_helpers_attach_shows_the_events() -> None:
    import time

    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err)
    conn = _local()
    try:
        CommandHelpers.attach(conn, display)
        conn.connect()
        conn.report_warning(voxsync.events.StreamWarning("audio_dropped", "dropped 2 blocks", 2))
        deadline = time.monotonic() + 5  # shown by the dispatcher thread
        while not err.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        conn.close()
    assert "voxsync: warning: " in err.getvalue() and "dropped 2 blocks" in err.getvalue()


# ----------------------------------------------------------------- Display


def test_progress_of_an_empty_or_finished_file_is_100_percent() -> None:
    err = io.StringIO()
    display = Display(io.StringIO(), err)
    display.progress("empty.wav", 0.0, 0.0)
    display.progress("short.wav", 0.25, 0.5)
    display.progress("long.wav", 60.0, 60.0)
    assert err.getvalue() == (
        "\r\x1b[Kempty.wav: 100% (0.0/0.0 s)"
        "\r\x1b[Kshort.wav:  50% (0.2/0.5 s)"
        "\r\x1b[Klong.wav: 100% (60.0/60.0 s)"
    )


@pytest.mark.parametrize(("columns", "shown"), [("30", 29), ("10", 20)])
def test_long_partials_keep_their_end_within_the_terminal_width(
    monkeypatch: pytest.MonkeyPatch, columns: str, shown: int
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    out = io.StringIO()
    display = Display(out, io.StringIO(), live=True)
    text = "the quick brown fox jumps over the lazy dog"
    display.event("transcript", Transcript(text, is_final=False))
    line = out.getvalue().removeprefix("\r\x1b[K")
    assert line == "..." + text[-(shown - 3) :] and len(line) == shown


def test_partials_without_a_terminal_size_assume_80_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)

    def no_terminal(fd: int = 1) -> os.terminal_size:
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    out = io.StringIO()
    display = Display(out, io.StringIO(), live=True)
    text = "word " * 40
    display.event("transcript", Transcript(text, is_final=False))
    line = out.getvalue().removeprefix("\r\x1b[K")
    assert len(line) == 79 and line == "..." + text.strip()[-76:]


def test_level_meter_on_the_status_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err)
    display.meter(0.0)
    display.meter(1.0)
    assert err.getvalue() == (
        f"\r\x1b[Klistening {level_bar(0.0)}\r\x1b[Klistening {level_bar(1.0)}"
    )
    display.event("transcript", Transcript("hello"))  # a final replaces the meter
    assert out.getvalue() == "hello\n" and err.getvalue().endswith("\r\x1b[K")


def test_level_meter_gives_way_to_partials_and_json() -> None:
    out = io.StringIO()
    display = Display(out, io.StringIO(), live=True)
    display.meter(0.5)
    assert out.getvalue() == f"\r\x1b[Klistening {level_bar(0.5)}"
    display.event("transcript", Transcript("hel", is_final=False))
    display.meter(0.5)  # a partial is shown: the meter does not overwrite it
    assert out.getvalue().endswith("\r\x1b[Khel")
    display.event("transcript", Transcript("hello"))
    display.meter(0.25)  # the line is free again
    assert out.getvalue().endswith(f"hello\n\r\x1b[Klistening {level_bar(0.25)}")
    json_out = io.StringIO()
    Display(json_out, io.StringIO(), fmt="json").meter(0.5)
    assert json_out.getvalue() == ""


# ------------------------------------------------------------- JSON events


def test_event_to_json_drops_raw_counts_audio_bytes_and_nulls_non_finite_times() -> None:
    from voxsync.cli import event_to_json
    from voxsync.events import AudioChunk
    from voxsync.format import AudioFormat

    chunk = AudioChunk(b"\x01\x02\x03\x04", AudioFormat(8000, 1), last=True, raw={"secret": 1})
    assert event_to_json("audio", chunk) == {
        "event": "audio",
        "audio_format": {"sample_rate": 8000, "channels": 1, "encoding": "pcm_s16le"},
        "language": None,
        "last": True,
        "id": None,
        "pcm_bytes": 4,
    }
    final = Transcript("hi", start=float("nan"), end=float("inf"), confidence=0.5, raw={"a": 1})
    body = event_to_json("transcript", final, file="a.wav")
    assert list(body)[:3] == ["event", "file", "text"]
    assert (body["start"], body["end"], body["confidence"]) == (None, None, 0.5)
    assert "raw" not in body
    json.dumps(body, allow_nan=False)  # valid JSON: no NaN or Infinity


def test_event_to_json_of_errors_and_plain_values() -> None:
    from voxsync.cli import event_to_json

    assert event_to_json("error", ConfigurationError("bad")) == {
        "event": "error",
        "type": "ConfigurationError",
        "message": "bad",
    }
    assert event_to_json("level", 0.25) == {"event": "level", "value": 0.25}
    assert event_to_json("extra", {1: (2.5, b"ab", memoryview(b"xyz"), None, False)}) == {
        "event": "extra",
        "1": [2.5, 2, 3, None, False],
    }
    cause = ValueError("inner")
    assert event_to_json("extra", {"cause": cause, "kind": int}) == {
        "event": "extra",
        "cause": "ValueError: inner",
        "kind": "<class 'int'>",
    }


# ------------------------------------------------------------ more helpers


class Terminal(io.StringIO):
    """An output stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_command_helpers_display_is_live_on_a_terminal_unless_partials_are_off() -> None:
    err = io.StringIO()
    display = CommandHelpers.display(argparse.Namespace(), Terminal(), err)
    assert display.live
    display.event("warning", "the line is noisy")
    assert err.getvalue() == "voxsync: warning: the line is noisy\n"
    quiet = CommandHelpers.display(argparse.Namespace(no_partials=True), Terminal(), err)
    assert not quiet.live
    assert not CommandHelpers.display(argparse.Namespace(), io.StringIO(), err).live


def test_command_helpers_provider_options_keep_a_value_given_before_the_command() -> None:
    parser = argparse.ArgumentParser()
    CommandHelpers.provider_options(parser)
    given = argparse.Namespace(provider="aiola", debug=True)
    args = parser.parse_args([], namespace=given)
    assert (args.provider, args.debug) == ("aiola", True)  # not reset to the defaults
    assert parser.parse_args(["--provider", "local"], namespace=given).provider == "local"


def test_speakers_and_target_languages_lead_their_lines() -> None:
    from voxsync.events import Translation

    out = io.StringIO()
    display = Display(out, io.StringIO())
    display.event("transcript", Transcript("  hello  ", speaker="Alice"))
    display.event("translation", Translation("hola", target_language="es"))
    display.event("translation", Translation("salut"))
    assert out.getvalue() == "[Alice] hello\n[es] hola\nsalut\n"


@pytest.mark.parametrize("device", ["4242", "-3"])
def test_listen_takes_a_device_number_as_a_number(
    device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["listen", f"--device={device}", "--duration", "1"], capsys)
    assert code == 1
    assert err.startswith(
        f"voxsync: error: cannot read from audio device {device}: "
        f"cannot open input device {device} for 16000 Hz mono pcm_s16le"
    )


def test_json_display_counts_final_transcripts_and_names_the_file_only_when_known() -> None:
    from voxsync.events import Translation

    out = io.StringIO()
    display = Display(out, io.StringIO(), fmt="json")
    display.event("transcript", Transcript("hel", is_final=False))
    display.event("transcript", Transcript("hello"))
    display.event("translation", Translation("hola"))
    display.source = "a.wav"
    display.event("transcript", Transcript("again"))
    assert display.finals == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert ["file" in row for row in rows] == [False, False, False, True]
    assert rows[-1]["file"] == "a.wav"


def test_text_display_shows_times_only_when_asked() -> None:
    out = io.StringIO()
    Display(out, io.StringIO()).event("transcript", Transcript("hi", start=1.0, end=2.0))
    assert out.getvalue() == "hi\n"


def test_a_partial_that_fits_the_width_is_shown_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")  # 29 usable columns
    out = io.StringIO()
    text = "x" * 29
    Display(out, io.StringIO(), live=True).event("transcript", Transcript(text, is_final=False))
    assert out.getvalue() == "\r\x1b[K" + text


# -------------------------------------------------------------------- help

#: what ``--help`` of each command says about each of its options: the
#: command's reference for its users (kept word for word, so that a change
#: to it is made on purpose)
HELP = {
    (): [
        "usage: voxsync [options] COMMAND ...",
        "Live speech-to-text from files and microphones (offline by default).",
        "transcribe transcribe audio files",
        "listen transcribe the microphone",
        "devices list audio input devices",
        "emulate run a local emulator of a provider",
        "speech service to use (default: local, offline)",
        "--log-level {debug,info,warning,error,critical}",
        "show library log messages from this level on (default: warning)",
        "--debug show tracebacks of errors",
        "local options:",
        "uhlive, uhlive-bot options:",  # one module's options, for the providers sharing it
        "Run 'voxsync COMMAND --help' for the options of a command.",
    ],
    ("transcribe",): [
        "usage: voxsync [options] COMMAND ... transcribe [options] FILE [FILE ...]",
        "Transcribe audio files (any rate, channels and format the audio layer reads). "
        "In a terminal the current partial is shown on one line and each final is printed.",
        "FILE audio file(s)",
        "--format {text,json} text for people (default) or one JSON object per event",
        "--no-partials do not show partial results (text format)",
        "--timestamps show start and end times of finals",
        "--realtime send the audio at real-time pace (default for cloud providers)",
        "--no-realtime send as fast as the provider accepts (default for local)",
        "--chunk-ms MS audio per send (default 100)",
        "--jobs N transcribe N files at a time; a failed file does not stop the others, "
        "and the exit status is the number of files that failed",
        "speech service to use (default: local, offline)",
        "show library log messages from this level on (default: warning)",
        "--debug show tracebacks of errors",
    ],
    ("listen",): [
        "usage: voxsync [options] COMMAND ... listen [options]",
        "Transcribe a microphone until Ctrl+C (the last words are printed).",
        "--device INDEX|NAME input device (see 'voxsync devices')",
        "--samplerate HZ capture rate (default 16000)",
        "--duration S stop after S seconds",
        "--format {text,json} text for people (default) or one JSON object per event",
        "--no-partials do not show partial results (text format)",
        "--timestamps show start and end times of finals",
        "speech service to use (default: local, offline)",
    ],
    ("devices",): [
        "List audio input devices: index, name, channels, default rate (* = default).",
        "--format {text,json}",
    ],
    ("emulate",): [
        "Run a local server that speaks a provider's protocol. "
        "'voxsync emulate NAME --help' lists its options.",
    ],
}


@pytest.mark.parametrize("command", sorted(HELP), ids=lambda c: " ".join(c) or "voxsync")
def test_help_of_each_command_describes_its_options(
    command: Tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = run([*command, "--help"], capsys)
    assert code == 0 and err == ""
    shown = " ".join(out.split())  # argparse wraps lines to the terminal width
    for line in HELP[command]:
        # a whole phrase, not part of a longer word
        assert re.search(rf"(?<!\S){re.escape(line)}(?!\S)", shown), line


def test_help_states_the_defaults_the_options_really_have() -> None:
    from voxsync.cli import build_parser

    args = build_parser().parse_args(["transcribe", "x.wav"])
    assert args.chunk_ms == 100.0 and args.format == "text" and args.provider == "local"
    assert args.realtime is None and args.jobs is None and args.log_level is None
    assert args.no_partials is False and args.timestamps is False and args.debug is False
    args = build_parser().parse_args(["listen"])
    assert args.samplerate == 16000 and args.duration is None and args.device is None


def test_emulate_help_names_every_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["emulate", "--help"], capsys)
    assert code == 0
    shown = " ".join(out.split())
    assert "usage: voxsync [options] COMMAND ... emulate [-h] NAME " in shown
    assert f" NAME emulator: {', '.join(emulator_names())} " in shown


# ----------------------------------------------------------------- logging


def _logging_cli(seen: List[Tuple[int, bool]]) -> types.ModuleType:
    """A provider command-line module whose command logs at every level."""
    module = types.ModuleType("acme_voxsync_cli")

    def run_log(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
        logger = logging.getLogger("voxsync.acme")
        root = logging.getLogger("voxsync")
        seen.append((root.level, root.propagate))
        logger.debug("debug line")
        logger.info("info line")
        logger.warning("warning line")
        return 0

    def add_commands(subparsers: Any, helpers: CommandHelpers) -> None:
        subparsers.add_parser("acme-log", help="log").set_defaults(func=run_log)

    module.add_commands = add_commands  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ([], ["warning"]),
        (["--log-level", "info"], ["info", "warning"]),
        (["--debug"], ["debug", "info", "warning"]),
        (["--debug", "--log-level", "error"], []),
    ],
)
def test_log_records_go_to_stderr_from_the_chosen_level_for_the_run_only(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: List[str],
    shown: List[str],
) -> None:
    seen: List[Tuple[int, bool]] = []
    monkeypatch.setitem(sys.modules, "acme_voxsync_cli", _logging_cli(seen))
    providers.register(ProviderSpec("acme", _local, cli="acme_voxsync_cli"))
    root = logging.getLogger("voxsync")
    before = (list(root.handlers), root.level, root.propagate)
    code, out, err = run([*options, "acme-log"], capsys)
    assert code == 0 and out == ""
    lines = err.splitlines()
    assert len(lines) == len(shown)
    for line, level in zip(lines, shown):
        # "<date> <time> LEVEL logger: message"
        assert re.fullmatch(
            rf"\d{{4}}-\d\d-\d\d [\d:,]+ {level.upper()} voxsync\.acme: {level} line", line
        ), line
    assert seen == [(getattr(logging, (shown or ["error"])[0].upper()), False)]
    # the library's logging is as the caller had it once main() returns
    assert (list(root.handlers), root.level, root.propagate) == before


def test_a_plugin_event_without_is_final_is_shown_as_a_final_line() -> None:
    # a provider plugin's own event type: text, no is_final
    out = io.StringIO()
    display = Display(out, io.StringIO(), live=True)
    display.event("transcript", types.SimpleNamespace(text=" hello "))
    assert out.getvalue() == "hello\n" and display.finals == 1


# ------------------------------------------------------------- transcribe


def test_transcribe_timestamps_prefix_each_final_with_its_times(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["transcribe", "--timestamps", str(sample("yes.wav"))], capsys)
    assert code == 0, err
    match = re.fullmatch(r"\[ *(\d+\.\d\d) - +(\d+\.\d\d)\] yes\n", out)
    assert match, out
    start, end = float(match.group(1)), float(match.group(2))
    assert 0.0 <= start < end <= 2.0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_one_error_line(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "locked.wav"
    path.write_bytes(sample("yes.wav").read_bytes())
    path.chmod(0)
    code, out, err = run(["transcribe", str(path)], capsys)
    assert (code, out, err) == (1, "", f"voxsync: error: {path}: permission denied\n")


# ------------------------------------------------------- broken plugins


def test_a_provider_whose_options_module_fails_to_import_is_named_in_a_warning(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    providers.register(ProviderSpec("acme", _local, cli="acme_voxsync_cli_not_installed"))
    with caplog.at_level(logging.WARNING, logger="voxsync"):
        code, out, _ = run(["--help"], capsys)
    assert code == 0 and "acme options" not in out  # the command still works
    assert (
        "command-line options from acme_voxsync_cli_not_installed unavailable: "
        "No module named 'acme_voxsync_cli_not_installed'"
    ) in [r.getMessage() for r in caplog.records]


def test_a_provider_whose_options_cannot_be_added_is_named_in_a_warning(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    module = types.ModuleType("acme_voxsync_cli")

    def add_cli_arguments(group: Any) -> None:
        group.add_argument("--debug", action="store_true")  # taken by the command

    module.add_cli_arguments = add_cli_arguments  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "acme_voxsync_cli", module)
    providers.register(ProviderSpec("acme", _local, cli="acme_voxsync_cli"))
    with caplog.at_level(logging.WARNING, logger="voxsync"):
        code, _, _ = run(["--help"], capsys)
    assert code == 0
    assert (
        "options of provider acme unavailable: argument --debug: conflicting option string: --debug"
    ) in [r.getMessage() for r in caplog.records]
