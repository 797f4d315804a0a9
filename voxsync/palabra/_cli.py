"""``--provider palabra`` options and the ``voxsync translate`` command (light imports only)."""

from __future__ import annotations

import argparse
import time
from typing import IO, Any, Dict, List, Optional

from voxsync.errors import ConfigurationError

__all__ = ["add_cli_arguments", "add_commands", "options_from_args", "run_translate"]


def add_cli_arguments(group: argparse._ArgumentGroup) -> None:
    """Add the Palabra options to ``group``."""
    group.add_argument(
        "--palabra-from",
        dest="palabra_source",
        default=None,
        metavar="LANG",
        help="Palabra source language (default en)",
    )
    group.add_argument(
        "--palabra-to",
        dest="palabra_targets",
        action="append",
        default=None,
        metavar="LANG",
        help="Palabra target language (repeatable; default es)",
    )
    group.add_argument(
        "--palabra-api-url",
        dest="palabra_api_url",
        default=None,
        metavar="URL",
        help="Palabra REST base URL, e.g. an emulator's (default: $PALABRA_API_URL)",
    )


def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments of :func:`voxsync.palabra.create_connection` from parsed options."""
    options: Dict[str, Any] = {}
    if getattr(args, "palabra_source", None):
        options["source"] = args.palabra_source
    if getattr(args, "palabra_targets", None):
        options["targets"] = list(args.palabra_targets)
    if getattr(args, "palabra_api_url", None):
        options["api_url"] = args.palabra_api_url
    return options


def add_commands(subparsers: Any, helpers: Any) -> None:
    """Add ``voxsync translate``."""
    p = subparsers.add_parser(
        "translate",
        help="translate speech with Palabra (files or the microphone)",
        description="Speech-to-speech translation: source and translated lines as they "
        "arrive, translated speech to a WAV file and/or the speakers.",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="audio files (any format)")
    p.add_argument("--from", dest="source", default="en", metavar="LANG", help="source language")
    p.add_argument(
        "--to", dest="targets", action="append", metavar="LANG", help="target (repeatable)"
    )
    p.add_argument("-o", "--output", metavar="OUT.wav", help="write the translated speech")
    p.add_argument("--play", action="store_true", help="play the translated speech")
    p.add_argument("--mic", action="store_true", help="translate the microphone (Ctrl+C ends)")
    p.add_argument(
        "--device", metavar="INDEX|NAME", help="input device for --mic (see 'voxsync devices')"
    )
    p.add_argument(
        "--api-url", dest="translate_api_url", metavar="URL", help="default $PALABRA_API_URL"
    )
    p.add_argument(
        "--eos-timeout", type=float, default=4.0, help="seconds of trailing silence (default 4)"
    )
    helpers.output_options(p)
    p.set_defaults(func=run_translate, helpers=helpers)


def run_translate(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Run ``voxsync translate``; returns the exit status."""
    from voxsync.palabra import Palabra

    if bool(args.files) == bool(args.mic):
        raise ConfigurationError("translate: give audio FILEs or --mic (not both)")
    if args.output and len(args.files) > 1:
        raise ConfigurationError("translate: -o takes one input; translate the files one by one")
    if args.device is not None and not args.mic:
        raise ConfigurationError("translate: --device is the microphone for --mic")
    targets: List[str] = args.targets or ["es"]
    helpers = args.helpers
    display = helpers.display(args, out, err)
    client = Palabra(api_url=args.translate_api_url)
    sources = args.files or [None]
    for path in sources:
        session = client.translation(source=args.source, targets=targets)
        display.source = path
        helpers.attach(session, display)
        audio: List[bytes] = []
        if args.output:
            session.on("audio", _collector(audio))
        speaker: Optional[Any] = None
        if args.play:
            from voxsync.audio.speaker import SpeakerStream

            speaker = SpeakerStream(samplerate=24000, channels=1)
            speaker.start()
            session.on("audio", speaker.play)
        try:
            with session:
                if path is None:
                    _from_microphone(session, speaker, args, err)
                else:
                    session.send_file(path)
                session.end(eos_timeout=args.eos_timeout)
        finally:
            if speaker is not None:
                speaker.stop(timeout=10)
                speaker.close()
            display.end()
        if args.output:
            _write_wav(args.output, b"".join(audio))
    return 0


def _collector(buf: List[bytes]) -> Any:
    def collect(event: Any) -> None:
        buf.append(event.pcm)

    return collect


def _from_microphone(
    session: Any, speaker: Optional[Any], args: argparse.Namespace, err: IO[str]
) -> None:
    from voxsync.audio import MicrophoneStream

    helpers = args.helpers
    mic = MicrophoneStream(
        samplerate=session.input_format.sample_rate,
        channels=1,
        device=helpers.device(args.device),
    )
    if speaker is not None:
        speaker.mute_while_playing(mic)
    try:
        mic.stream_to(session)
        helpers.listening(args, err)
        while session.connected:  # until Ctrl+C or the session ends
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        mic.close()


def _write_wav(path: str, pcm: bytes) -> None:
    import numpy as np
    import soundfile

    soundfile.write(path, np.frombuffer(pcm, dtype="<i2"), 24000, subtype="PCM_16")
