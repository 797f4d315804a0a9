"""Command-line plumbing shared by every emulator (``voxsync emulate NAME``)."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from types import FrameType
from typing import Any, Dict, List, Optional, Protocol

__all__ = [
    "add_server_arguments",
    "engine_options_from_args",
    "export_lines",
    "serve_until_stopped",
]


class _Emulator(Protocol):
    @property
    def base_url(self) -> str: ...

    def env(self) -> Dict[str, str]: ...

    def start(self) -> Any: ...

    def stop(self) -> Any: ...


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--port`` and the recognition engine options."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port; 0 picks a free one (default)"
    )
    parser.add_argument(
        "--engine",
        choices=("pocketsphinx", "scripted"),
        default="pocketsphinx",
        help="recognition: real (pocketsphinx, default) or canned transcripts (scripted)",
    )
    parser.add_argument(
        "--transcript",
        action="append",
        dest="transcripts",
        metavar="TEXT",
        help="scripted engine: transcript of the next utterance (repeatable, cycles)",
    )
    parser.add_argument(
        "--vocabulary",
        help="pocketsphinx: restrict recognition to these words (comma-separated)",
    )


def engine_options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments for ``make_engine`` from :func:`add_server_arguments` options."""
    options: Dict[str, Any] = {}
    if args.engine == "scripted" and args.transcripts:
        options["transcripts"] = list(args.transcripts)
    if args.engine == "pocketsphinx" and args.vocabulary:
        options["vocabulary"] = [w.strip() for w in args.vocabulary.split(",") if w.strip()]
    return options


def export_lines(env: Dict[str, str]) -> List[str]:
    """``export NAME=value`` shell lines for ``env`` (values quoted for POSIX shells)."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def serve_until_stopped(emulator: _Emulator) -> int:
    """Start ``emulator``, print its base URL, serve until Ctrl+C or SIGTERM, stop.

    The base URL is the one line on stdout (for scripts); the ``export``
    lines that point a client at the emulator (:meth:`env`) go to stderr,
    ready to paste into a shell.

    This is the command line's job, so it installs a SIGTERM handler while
    it runs (on the main thread only) and restores the previous one.
    """
    done = threading.Event()
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: Optional[FrameType]) -> None:
        done.set()

    if in_main:
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        emulator.start()
        try:
            print(emulator.base_url, flush=True)  # noqa: T201 - the command's one line of output
            lines = export_lines(emulator.env())
            if lines:
                sys.stderr.write(
                    "# point clients at this emulator (paste into a shell):\n"
                    + "".join(f"{line}\n" for line in lines)
                )
                sys.stderr.flush()
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return 0
