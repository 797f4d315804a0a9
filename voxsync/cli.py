"""The ``voxsync`` command: transcribe files and microphones, list devices, run emulators.

::

    voxsync transcribe speech.wav                 # offline, prints the transcript
    voxsync transcribe --format json a.wav b.flac # one JSON object per event
    voxsync transcribe --jobs 8 calls/*.wav       # 8 files at a time
    voxsync listen --device 2                     # microphone; Ctrl+C to stop
    voxsync devices                               # input devices
    voxsync --provider aiola transcribe call.wav  # a cloud provider
    voxsync emulate aiola --port 8080             # a local aiOla server

Exit status: 0 on success, 1 on an error (one line on stderr; ``--debug``
adds the traceback), 2 on a usage error, 130 when interrupted (except
``listen``, for which Ctrl+C is the normal way to stop). ``transcribe
--jobs N`` exits with the number of files that failed (at most 100).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import math
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

from voxsync import __version__
from voxsync.errors import (
    ConfigurationError,
    DeviceError,
    VoxsyncError,
)

__all__ = ["main"]

log = logging.getLogger(__name__)

PROG = "voxsync"
#: Files at least this long (seconds) get a progress indicator when partials are not shown.
PROGRESS_MIN_SECONDS = 10.0
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class CliError(Exception):
    """An error to report as one line, with exit status 1."""


# ---------------------------------------------------------------- providers


def _specs() -> List[Any]:
    from voxsync.providers import provider_specs

    return provider_specs()


def _cli_module(path: Optional[str]) -> Any:
    """A provider's command-line module, or None (a broken one must not break the command)."""
    if path is None:
        return None
    try:
        return importlib.import_module(path)
    except Exception as exc:
        log.warning("command-line options from %s unavailable: %s", path, exc)
        return None


def _cli_modules() -> List[Tuple[str, Any]]:
    """``(module path, module)`` of every provider's command-line module, once each."""
    seen: Dict[str, Any] = {}
    for spec in _specs():
        if spec.cli is not None and spec.cli not in seen:
            seen[spec.cli] = _cli_module(spec.cli)
    return [(path, module) for path, module in seen.items() if module is not None]


def _add_provider_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Add ``--provider``, the logging options and every provider's options.

    The same options go on the main parser (with defaults) and on the
    ``transcribe`` / ``listen`` parsers (``suppress``: no defaults, so a value
    given before the sub-command is not overwritten), so both
    ``voxsync --provider X transcribe`` and ``voxsync transcribe --provider X``
    work.
    """
    before = len(parser._actions)
    specs = _specs()
    providers = [spec.name for spec in specs if spec.transcribes]
    parser.add_argument(
        "--provider",
        choices=providers,
        default=providers[0],
        help="speech service to use (default: %(default)s, offline)",
    )
    parser.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default=None,
        help="show library log messages from this level on (default: warning)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=False, help="show tracebacks of errors"
    )
    for path, module in _cli_modules():
        names = ", ".join(spec.name for spec in specs if spec.cli == path)
        group = parser.add_argument_group(f"{names} options")
        try:
            module.add_cli_arguments(group)
        except (argparse.ArgumentError, AttributeError, TypeError) as exc:
            log.warning("options of provider %s unavailable: %s", names, exc)
    if suppress:
        for action in parser._actions[before:]:
            if action.help and "%(default)" in action.help:
                # argparse drops "default" from the help's values once it is SUPPRESS
                shown = str(action.default).replace("%", "%%")
                action.help = action.help.replace("%(default)s", shown)
            action.default = argparse.SUPPRESS


def _connection_options(args: argparse.Namespace) -> Dict[str, Any]:
    from voxsync.providers import provider_spec

    module = _cli_module(provider_spec(args.provider).cli)
    if module is None or not hasattr(module, "options_from_args"):
        return {}
    options: Dict[str, Any] = module.options_from_args(args)
    return options


def _new_connection(args: argparse.Namespace) -> Any:
    import voxsync.providers

    return voxsync.providers.connection(args.provider, **_connection_options(args))


# ------------------------------------------------------------------ output


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "raw"
        }
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def event_to_json(name: str, event: Any, **extra: Any) -> Dict[str, Any]:
    """One event as a JSON-ready dict: ``{"event": name, ...fields}`` (no raw payload)."""
    if isinstance(event, BaseException):
        body: Dict[str, Any] = {"type": type(event).__name__, "message": str(event)}
    else:
        fields = _jsonable(event)
        body = fields if isinstance(fields, dict) else {"value": fields}
        if "pcm" in body:
            body["pcm_bytes"] = body.pop("pcm")
    return {"event": name, **extra, **body}


class Display:
    """Writes events for people (text) or scripts (JSON). Thread-safe.

    Parameters
    ----------
    out, err : text streams
    fmt : {"text", "json"}
    live : bool
        Text mode: show the current partial on one line, rewritten in place
        (for terminals).
    timestamps : bool
        Text mode: prefix finals with their start and end times.
    """

    def __init__(
        self,
        out: IO[str],
        err: IO[str],
        *,
        fmt: str = "text",
        live: bool = False,
        timestamps: bool = False,
    ) -> None:
        self.out = out
        self.err = err
        self.fmt = fmt
        self.live = live and fmt == "text"
        self.timestamps = timestamps
        self.source: Optional[str] = None
        self.finals = 0
        self._lock = threading.Lock()
        self._line = False  # a partial or progress line is shown on out/err
        self._meter_shown = False  # that line is the input-level meter

    def _width(self) -> int:
        return max(20, shutil.get_terminal_size((80, 24)).columns - 1)

    def _clear(self) -> None:
        if self._line:
            stream = self.out if self.live else self.err
            stream.write("\r\x1b[K")
            stream.flush()
            self._line = False
            self._meter_shown = False

    def event(self, name: str, event: Any) -> None:
        """Show one event (called on the connection's dispatcher thread)."""
        with self._lock:
            if self.fmt == "json":
                extra = {"file": self.source} if self.source is not None else {}
                self.out.write(json.dumps(event_to_json(name, event, **extra)) + "\n")
                self.out.flush()
                if name == "transcript" and getattr(event, "is_final", False):
                    self.finals += 1
                return
            if name in ("transcript", "translation"):
                self._text(name, event)
            elif name in ("error", "warning"):
                self._clear()
                self.err.write(f"{PROG}: {name}: {event}\n")
                self.err.flush()

    def _text(self, name: str, event: Any) -> None:
        text = str(getattr(event, "text", "")).strip()
        speaker = getattr(event, "speaker", None)
        if name == "translation":
            lang = getattr(event, "target_language", None)
            text = f"[{lang}] {text}" if lang else text
        if speaker:  # "[Alice] ...": "Alice: ..." read like a diagnostic ("voxsync: ...")
            text = f"[{speaker}] {text}"
        if not getattr(event, "is_final", True):
            if self.live:
                line = text if len(text) <= self._width() else "..." + text[-self._width() + 3 :]
                self.out.write("\r\x1b[K" + line)
                self.out.flush()
                self._line = True
                self._meter_shown = False
            return
        self._clear()
        if self.timestamps:
            start, end = getattr(event, "start", None), getattr(event, "end", None)
            if start is not None and end is not None:
                text = f"[{start:7.2f} - {end:7.2f}] {text}"
        if name == "transcript":
            self.finals += 1
        self.out.write(text + "\n")
        self.out.flush()

    def progress(self, label: str, done: float, total: float) -> None:
        """Show ``label: NN% (done/total s)`` on one line of ``err``."""
        with self._lock:
            pct = 100.0 * done / total if total > 0 else 100.0
            self.err.write(f"\r\x1b[K{label}: {pct:3.0f}% ({done:.1f}/{total:.1f} s)")
            self.err.flush()
            self._line = True

    def header(self, text: str) -> None:
        with self._lock:
            self._clear()
            if self.fmt == "text":
                self.out.write(f"==> {text} <==\n")
                self.out.flush()

    def meter(self, level: float) -> None:
        """Show ``listening ▰▰▰▱▱▱▱▱▱▱`` moving with the input level (RMS, 0-1).

        For terminals: drawn on the line partials use, only while no partial
        is shown; the next partial or final replaces it.
        """
        from voxsync.notebook import level_bar

        with self._lock:
            if self.fmt != "text" or (self._line and not self._meter_shown):
                return
            stream = self.out if self.live else self.err
            stream.write(f"\r\x1b[Klistening {level_bar(level)}")
            stream.flush()
            self._line = True
            self._meter_shown = True

    def end(self) -> None:
        """Remove a partial or progress line left on the screen."""
        with self._lock:
            self._clear()


def _attach(conn: Any, display: Display) -> None:
    names = sorted(set(conn.event_names) - {"connect", "disconnect", "reconnected"})
    for name in names:
        conn.on(name, _bind(display, name))


def _bind(display: Display, name: str) -> Callable[[Any], None]:
    def handler(event: Any) -> None:
        display.event(name, event)

    return handler


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------- commands


def _open_audio(path: str, target: Any) -> Any:
    """Open ``path`` with the audio layer, turning its errors into one-line messages."""
    from voxsync.audio import AudioFile, UnsupportedAudioError

    try:
        return AudioFile(path, target)
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not an audio file") from None
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except PermissionError:
        raise CliError(f"{path}: permission denied") from None
    except UnsupportedAudioError as exc:
        raise CliError(
            f"{path}: not an audio file voxsync can read (convert it to WAV or FLAC)"
        ) from exc


def cmd_transcribe(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from voxsync.audio import AudioFormat

    if getattr(args, "jobs", None) is not None:
        return _transcribe_batch(args, out, err)

    # check every file before transcribing any
    for path in args.files:
        _open_audio(path, None).close()
    realtime = args.realtime if args.realtime is not None else args.provider != "local"
    live = not args.no_partials and _isatty(out)
    display = Display(out, err, fmt=args.format, live=live, timestamps=args.timestamps)
    many = len(args.files) > 1
    for path in args.files:
        conn = _new_connection(args)
        fmt: AudioFormat = conn.audio_format
        try:
            audio = _open_audio(path, fmt)
        except BaseException:
            conn.close()  # e.g. the file went away after the check
            raise
        display.source = path
        if many:
            display.header(path)
        _attach(conn, display)
        show_progress = (
            not live
            and args.format == "text"
            and _isatty(err)
            and audio.duration >= PROGRESS_MIN_SECONDS
        )
        try:
            _stream_file(conn, audio, realtime, args.chunk_ms, display if show_progress else None)
        finally:
            audio.close()
            conn.close()
            display.end()
    return 0


# ---- batch mode (voxsync transcribe --jobs N): the logic lives in voxsync.batch


def _transcribe_batch(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from voxsync.batch import run_batch_command

    if args.jobs < 1:
        raise _UsageError(f"transcribe: --jobs must be at least 1, got {args.jobs}")
    return run_batch_command(
        args.files,
        provider=args.provider,
        jobs=args.jobs,
        out=out,
        err=err,
        fmt=args.format,
        progress=args.format == "text" and _isatty(err),
        realtime=args.realtime,
        chunk_ms=args.chunk_ms,
        options=_connection_options(args),
    )


# ---- end of batch mode


def _stream_file(
    conn: Any, audio: Any, realtime: bool, chunk_ms: float, progress: Optional[Display]
) -> None:
    from voxsync.audio import iter_chunks

    total = audio.duration
    label = Path(audio.name).name if isinstance(audio.name, str) else "audio"
    stop = threading.Event()
    ticker: Optional[threading.Thread] = None
    if progress is not None:

        def tick() -> None:
            while True:
                progress.progress(label, min(total, conn.metrics.seconds_sent), total)
                if stop.wait(0.25):
                    return

        ticker = threading.Thread(target=tick, name="voxsync-cli-progress", daemon=True)
    conn.connect()
    try:
        if ticker is not None:
            ticker.start()
        for chunk in iter_chunks(audio, conn.audio_format, chunk_ms, realtime):
            conn.send(chunk)
        conn.finish()
    except KeyboardInterrupt:
        conn.close()
        raise
    finally:
        stop.set()
        if ticker is not None:
            ticker.join(2.0)
            progress.end()  # type: ignore[union-attr]


def _device(value: Optional[str]) -> Any:
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


#: Printed to standard error once the microphone runs.
LISTENING = "Listening... press Ctrl+C to stop.\n"


def cmd_listen(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from voxsync.audio import MicrophoneStream, level
    from voxsync.audio.microphone import LIST_DEVICES_HINT

    display = Display(
        out,
        err,
        fmt=args.format,
        live=not args.no_partials and _isatty(out),
        timestamps=args.timestamps,
    )
    conn = _new_connection(args)
    _attach(conn, display)
    closed = threading.Event()
    conn.on("disconnect", lambda: closed.set())
    device = _device(args.device)
    try:
        mic = MicrophoneStream(
            channels=1,
            samplerate=args.samplerate,
            blocksize=max(1, args.samplerate // 10),
            device=device,
        )
    except ConfigurationError as exc:
        raise CliError(f"microphone: {exc}") from exc
    try:
        # capture first: what is said while the connection opens is buffered
        # by the microphone and sent once it is open, not lost
        mic.start()
    except DeviceError as exc:
        name = device if device is not None else "(default)"
        # one hint, the command's: the library's names list_devices()
        problem = str(exc).replace(LIST_DEVICES_HINT, "")
        raise CliError(
            f"cannot read from audio device {name}: {problem} (see 'voxsync devices')"
        ) from exc
    CommandHelpers.listening(args, err)
    # a moving level meter on a terminal shows that the microphone works
    show_meter = args.format == "text" and _isatty(out if display.live else err)
    try:
        conn.connect()
        mic.stream_to(conn)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while not closed.wait(0.1):
                if show_meter:
                    display.meter(level(conn.last_chunk, conn.input_format))
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            pass  # the normal way to stop: the last words are delivered below
        mic.stop()  # closes the device, sends the buffered tail
        if conn.connected:
            conn.finish()  # flushes the recognizer: the last final is printed
    except KeyboardInterrupt:  # a second Ctrl+C while finishing: stop at once
        return 130
    finally:
        try:
            mic.stop()
        except Exception:  # already reported, or the connection's own error
            log.debug("microphone stop", exc_info=True)
        conn.close()
        display.end()
    if conn.error is not None:
        raise conn.error
    return 0


def cmd_devices(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from voxsync.audio import list_devices

    try:
        devices = list_devices()
    except DeviceError as exc:
        raise CliError(f"cannot list audio devices: {exc}") from exc
    if args.format == "json":
        for dev in devices:
            out.write(json.dumps(_jsonable(dev)) + "\n")
        return 0
    if not devices:
        out.write("no audio input devices found\n")
        return 0
    width = max(len(d.name) for d in devices)
    out.write(f"  {'index':>5}  {'name':<{width}}  {'channels':>8}  {'default rate':>12}\n")
    for dev in devices:
        mark = "*" if dev.is_default else " "
        out.write(
            f"{mark} {dev.index:>5}  {dev.name:<{width}}  {dev.channels:>8}  "
            f"{dev.default_samplerate:>9.0f} Hz\n"
        )
    return 0


def emulator_names() -> List[str]:
    """Names accepted by ``voxsync emulate``, from the provider registry."""
    from voxsync.providers import emulators

    return list(emulators())


#: What ``voxsync emulate`` needs beyond a plain install.
EMULATOR_EXTRA = "voxsync[emulators]"
_SERVER_PACKAGES = frozenset({"websockets", "werkzeug", "simple_websocket", "engineio", "socketio"})


def _import_emulator(name: str) -> Any:
    from voxsync.providers import emulators

    try:
        return importlib.import_module(emulators()[name])
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in _SERVER_PACKAGES:
            raise CliError(
                f"the {name} emulator needs the server packages ({missing} is not "
                f"installed): pip install '{EMULATOR_EXTRA}' "
                "(from a source tree: pip install '.[emulators]')"
            ) from exc
        raise


def cmd_emulate(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    names = emulator_names()
    if args.name not in names:
        raise _UsageError(
            f"emulate: unknown emulator {args.name!r} (choose from {', '.join(names) or 'none'})"
        )
    module = _import_emulator(args.name)
    parser = argparse.ArgumentParser(
        prog=f"{PROG} emulate {args.name}",
        description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None,
    )
    module.add_cli_arguments(parser)
    sub_args = parser.parse_args(args.rest)
    for key in ("log_level", "debug"):
        setattr(sub_args, key, getattr(args, key, None))
    code: int = module.run_cli(sub_args)
    return code


class CommandHelpers:
    """What a provider's ``add_commands(subparsers, helpers)`` gets from the command.

    A provider's command-line module (see :class:`voxsync.providers.ProviderSpec`)
    may add sub-commands of its own; these helpers give them the same options,
    output and error handling as ``transcribe``. A command function is
    ``run(args, out, err) -> int`` (exit status), set with
    ``parser.set_defaults(func=run)``; raising a
    :class:`~voxsync.errors.VoxsyncError` prints one line and exits with 1.
    """

    @staticmethod
    def provider_options(parser: argparse.ArgumentParser) -> None:
        """Add ``--provider``, ``--log-level``, ``--debug`` and every provider's options."""
        _add_provider_options(parser, suppress=True)

    @staticmethod
    def output_options(parser: argparse.ArgumentParser) -> None:
        """Add ``--format``, ``--no-partials`` and ``--timestamps``."""
        _output_options(parser)

    @staticmethod
    def connection(args: argparse.Namespace, provider: Optional[str] = None) -> Any:
        """A new, unconnected connection for ``provider`` (default ``args.provider``).

        Its options come from the parsed command line (the provider's
        ``options_from_args``).
        """
        import voxsync.providers

        if provider is not None:
            args.provider = provider
        return voxsync.providers.connection(args.provider, **_connection_options(args))

    @staticmethod
    def display(args: argparse.Namespace, out: IO[str], err: IO[str]) -> Display:
        """A :class:`Display` following ``--format`` / ``--timestamps``."""
        fmt = getattr(args, "format", "text")
        return Display(
            out,
            err,
            fmt=fmt,
            live=_isatty(out) and not getattr(args, "no_partials", False),
            timestamps=getattr(args, "timestamps", False),
        )

    @staticmethod
    def attach(conn: Any, display: Display) -> None:
        """Show every event of ``conn`` on ``display``."""
        _attach(conn, display)

    @staticmethod
    def device(value: Optional[str]) -> Any:
        """A ``--device`` value as :class:`~voxsync.audio.MicrophoneStream` takes it.

        An index when it is a number, otherwise a name; ``None`` for the default.
        """
        return _device(value)

    @staticmethod
    def listening(args: argparse.Namespace, err: IO[str]) -> None:
        """Tell a person at a terminal that the microphone runs (text output only)."""
        if getattr(args, "format", "text") == "text":
            err.write(LISTENING)
            err.flush()


def _add_provider_commands(sub: Any) -> None:
    helpers = CommandHelpers()
    for path, module in _cli_modules():
        add = getattr(module, "add_commands", None)
        if add is None:
            continue
        try:
            add(sub, helpers)
        except (argparse.ArgumentError, AttributeError, TypeError) as exc:
            log.warning("commands from %s unavailable: %s", path, exc)


class _UsageError(Exception):
    """A usage error found after parsing (exit status 2)."""


# ----------------------------------------------------------------- parser


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default) or one JSON object per event",
    )
    p.add_argument(
        "--no-partials",
        action="store_true",
        help="do not show partial results (text format)",
    )
    p.add_argument("--timestamps", action="store_true", help="show start and end times of finals")


def build_parser() -> argparse.ArgumentParser:
    """The ``voxsync`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s [options] COMMAND ...",
        description="Live speech-to-text from files and microphones (offline by default).",
        epilog="Run 'voxsync COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_provider_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    output_options = _output_options
    p = sub.add_parser(
        "transcribe",
        usage="%(prog)s [options] FILE [FILE ...]",
        help="transcribe audio files",
        description="Transcribe audio files (any rate, channels and format the audio "
        "layer reads). In a terminal the current partial is shown on one line and "
        "each final is printed.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio file(s)")
    output_options(p)
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        default=None,
        help="send the audio at real-time pace (default for cloud providers)",
    )
    pace.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="send as fast as the provider accepts (default for local)",
    )
    p.add_argument(
        "--chunk-ms", type=float, default=100.0, metavar="MS", help="audio per send (default 100)"
    )
    p.add_argument(  # batch mode: voxsync.batch
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="transcribe N files at a time; a failed file does not stop the others, "
        "and the exit status is the number of files that failed",
    )
    _add_provider_options(p, suppress=True)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser(
        "listen",
        usage="%(prog)s [options]",
        help="transcribe the microphone",
        description="Transcribe a microphone until Ctrl+C (the last words are printed).",
    )
    p.add_argument("--device", metavar="INDEX|NAME", help="input device (see 'voxsync devices')")
    p.add_argument(
        "--samplerate", type=int, default=16000, metavar="HZ", help="capture rate (default 16000)"
    )
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    output_options(p)
    _add_provider_options(p, suppress=True)
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser(
        "devices",
        help="list audio input devices",
        description="List audio input devices: index, name, channels, default rate (* = default).",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser(
        "emulate",
        help="run a local emulator of a provider",
        description="Run a local server that speaks a provider's protocol. "
        "'voxsync emulate NAME --help' lists its options.",
        add_help=True,
    )
    p.add_argument("name", metavar="NAME", help="emulator: " + ", ".join(_safe_emulator_names()))
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_emulate)
    _add_provider_commands(sub)
    return parser


def _safe_emulator_names() -> List[str]:
    try:
        return emulator_names()
    except Exception:  # help text only
        return []


# ------------------------------------------------------------------- main


def _setup_logging(level: Optional[str], debug: bool) -> Callable[[], None]:
    """Send voxsync's log records to stderr; return what undoes it.

    The command is an application, so it configures logging, but only for
    its own run: ``main()`` may be called in-process (tests, embedding).
    """
    name = level or ("debug" if debug else "warning")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("voxsync")
    saved = (list(root.handlers), root.level, root.propagate)
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, name.upper()))
    root.propagate = False

    def restore() -> None:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]

    return restore


def _error_message(exc: BaseException) -> Tuple[str, int]:
    from voxsync.audio import UnsupportedAudioError

    if isinstance(exc, CliError):
        return str(exc), 1
    if isinstance(exc, UnsupportedAudioError):
        return f"not an audio file voxsync can read: {exc}", 1
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file", 1
    if isinstance(exc, DeviceError):
        return f"audio device: {exc}", 1
    if isinstance(exc, VoxsyncError):
        return str(exc), 1
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 1
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``voxsync`` command; return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).
    """
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    restore_logging = _setup_logging(args.log_level, args.debug)
    try:
        code: int = args.func(args, out, err)
        return code
    except _UsageError as exc:
        parser.print_usage(err)
        err.write(f"{PROG}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        err.write(f"\n{PROG}: interrupted\n")
        return 130
    except SystemExit as exc:  # an emulator's own parser: usage error or --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except Exception as exc:
        if args.debug:
            traceback.print_exc(file=err)
        message, code = _error_message(exc)
        err.write(f"{PROG}: error: {message}\n")
        return code
    finally:
        err.flush()
        restore_logging()
