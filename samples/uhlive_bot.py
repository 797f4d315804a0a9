"""A tiny voicebot on the Uh!ive Recognition (H2B) API.

The bot asks yes/no questions; the caller's answers are recordings played
into the line once the bot listens. Settings come from the vendor's
environment variables::

    UHLIVE_API_CLIENT, UHLIVE_API_SECRET    credentials
    UHLIVE_AUTH_SERVER, UHLIVE_AUTH_REALM   token server (default id.uh.live, uhlive)
    UHLIVE_API_URL                          API (default wss://api.uh.live)

Against a local emulator, in one terminal::

    voxsync emulate uhlive --port 8765

and in another::

    UHLIVE_AUTH_SERVER=http://127.0.0.1:8765 UHLIVE_API_URL=ws://127.0.0.1:8765 \\
    UHLIVE_API_CLIENT=demo UHLIVE_API_SECRET=demo python samples/uhlive_bot.py

or let the sample start an emulator of its own: ``python samples/uhlive_bot.py --emulator``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional

from voxsync.audio import read_audio
from voxsync.events import Message
from voxsync.uhlive.bot import BotConnection, create_bot
from voxsync.uhlive.recognition import MethodFailedError, StartOfInput

AUDIO = Path(__file__).resolve().parent / "audio"


def answer_when_listening(bot: BotConnection, path: Path) -> None:
    """Play ``path`` into the line as soon as the next recognition listens."""
    pcm, _ = read_audio(path, bot.audio_format)  # 8 kHz, in the bot's codec
    played = threading.Event()

    def on_message(msg: Message) -> None:  # runs on the connection's dispatcher thread
        if msg.type == "RECOGNITION-IN-PROGRESS" and not played.is_set():
            played.set()
            bot.send(pcm)
            bot.off("message", on_message)

    bot.on("message", on_message)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "answers",
        nargs="*",
        type=Path,
        default=[AUDIO / "yes.wav", AUDIO / "no.wav"],
        help="recordings of the caller's answers (default: yes.wav no.wav)",
    )
    parser.add_argument("--codec", default="linear", choices=("linear", "g711a", "g711u"))
    parser.add_argument(
        "--emulator", action="store_true", help="run against an in-process emulator"
    )
    args = parser.parse_args(argv)

    emulator = None
    if args.emulator:
        from voxsync.emulators.uhlive import UhliveEmulator

        emulator = UhliveEmulator().start()
        os.environ.update(emulator.env())
        os.environ.setdefault("UHLIVE_API_CLIENT", "demo")
        os.environ.setdefault("UHLIVE_API_SECRET", "demo")
    try:
        with create_bot(custom_id="voxsync-sample", audio_codec=args.codec) as bot:

            @bot.on("start_of_input")
            def barge_in(event: StartOfInput) -> None:
                print("  (caller started speaking: stop the prompt here)")

            bot.set_params(speech_language="en", no_input_timeout=5000)
            for answer in args.answers:
                print(f"bot: Shall I call you back? (the caller answers with {answer.name})")
                answer_when_listening(bot, answer)
                result = bot.recognize("builtin:speech/boolean", timeout=30)
                if result is None:
                    print("  recognition stopped")
                elif result.success:
                    print(f"  heard {result.transcript!r} -> {result.value}")
                else:
                    print(f"  no answer understood ({result.completion_cause})")
            try:
                bot.recognize("builtin:speech/unknown", timeout=10)
            except MethodFailedError as exc:
                print(f"an unknown grammar is refused: {exc.code}: {exc.detail}")
    finally:
        if emulator is not None:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
