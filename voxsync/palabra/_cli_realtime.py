"""``--provider palabra-stt`` / ``palabra-tts`` options and ``voxsync speak`` (light imports)."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any, Dict, List, Optional

from voxsync.errors import ConfigurationError

__all__ = ["add_cli_arguments", "add_commands", "options_from_args", "run_speak"]


def add_cli_arguments(group: argparse._ArgumentGroup) -> None:
    """Add the realtime STT/TTS options to ``group``."""
    group.add_argument(
        "--palabra-language",
        dest="palabra_language",
        default=None,
        metavar="LANG",
        help="palabra-stt: source language or 'auto' (default en); "
        "palabra-tts: language spoken (default en)",
    )
    group.add_argument(
        "--palabra-translate",
        dest="palabra_translate",
        action="append",
        default=None,
        metavar="LANG",
        help="palabra-stt: also translate the finals to LANG (repeatable)",
    )
    group.add_argument(
        "--palabra-voice",
        dest="palabra_voice",
        default=None,
        metavar="VOICE",
        help="palabra-tts: voice id (default default_low)",
    )


def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments of the ``palabra-stt`` / ``palabra-tts`` factories."""
    options: Dict[str, Any] = {}
    provider = getattr(args, "provider", None)
    options["language"] = getattr(args, "palabra_language", None) or "en"
    if provider == "palabra-stt" and getattr(args, "palabra_translate", None):
        options["translate"] = list(args.palabra_translate)
    if provider == "palabra-tts" and getattr(args, "palabra_voice", None):
        options["voice_id"] = args.palabra_voice
    if getattr(args, "palabra_api_url", None):
        options["api_url"] = args.palabra_api_url
    return options


def add_commands(subparsers: Any, helpers: Any) -> None:
    """Add ``voxsync speak``."""
    p = subparsers.add_parser(
        "speak",
        help="speak text with Palabra's realtime text-to-speech",
        description="Synthesize TEXT (or standard input with '-', streamed sentence by "
        "sentence as it arrives) to a WAV file and/or the speakers.",
    )
    p.add_argument("text", metavar="TEXT", help="the text, or '-' to read standard input")
    p.add_argument("-o", "--output", metavar="OUT.wav", help="write the speech to a WAV file")
    p.add_argument("--play", action="store_true", help="play the speech on the speakers")
    p.add_argument("--language", default="en", metavar="LANG", help="language (default en)")
    p.add_argument(
        "--voice", default="default_low", metavar="VOICE", help="voice id (default default_low)"
    )
    p.add_argument(
        "--sample-rate", type=int, default=24000, metavar="HZ", help="output rate (default 24000)"
    )
    p.add_argument(
        "--api-url", dest="speak_api_url", metavar="URL", help="default $PALABRA_API_URL"
    )
    p.set_defaults(func=run_speak)


def run_speak(
    args: argparse.Namespace, out: IO[str], err: IO[str], stdin: Optional[IO[str]] = None
) -> int:
    """Run ``voxsync speak``; returns the exit status."""
    from voxsync.palabra import Palabra

    if not args.output and not args.play:
        raise ConfigurationError("speak: give -o OUT.wav and/or --play")
    if args.text != "-" and not args.text.strip():
        raise ConfigurationError("speak: TEXT is empty")
    tts = Palabra(api_url=args.speak_api_url).tts(
        args.language, args.voice, sample_rate=args.sample_rate
    )
    audio: List[bytes] = []
    speaker: Optional[Any] = None
    if args.output:
        tts.on("audio", lambda chunk: audio.append(chunk.pcm))
    tts.on("error", lambda error: err.write(f"voxsync: error: {error}\n"))
    if args.play:
        from voxsync.audio.speaker import SpeakerStream

        speaker = SpeakerStream(samplerate=args.sample_rate, channels=1)
        speaker.start()
        tts.on("audio", speaker.play)
    try:
        with tts:
            source = iter(stdin or sys.stdin) if args.text == "-" else iter([args.text])
            tts.speak_stream(source)
    finally:
        if speaker is not None:
            speaker.stop(timeout=30)
            speaker.close()
    if args.output:
        import numpy as np
        import soundfile as sf

        samples = np.frombuffer(b"".join(audio), dtype="<i2")
        sf.write(args.output, samples, args.sample_rate, subtype="PCM_16")
        seconds = len(samples) / args.sample_rate
        err.write(f"voxsync: wrote {seconds:.1f} s of speech to {args.output}\n")
    return 0
