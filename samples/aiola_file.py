"""Transcribe an audio file with aiOla streaming (and once more over REST).

    AIOLA_API_KEY=... python samples/aiola_file.py [FILE]      # aiOla's service
    python samples/aiola_file.py --emulator [FILE]             # a local aiOla emulator

``AIOLA_BASE_URL`` / ``AIOLA_AUTH_BASE_URL`` point the client at another
host, e.g. a ``voxsync emulate aiola`` running elsewhere. Any audio file the
audio layer reads works: it is converted to 16 kHz mono 16-bit PCM.
"""

import argparse
import contextlib
import os
from pathlib import Path

from voxsync.aiola import AiolaClient
from voxsync.aiola.types import LiveEvents
from voxsync.audio import stream_file

parser = argparse.ArgumentParser(description="aiOla file transcription")
parser.add_argument(
    "file", nargs="?", default=Path(__file__).parent / "audio" / "two_utterances.wav"
)
parser.add_argument(
    "--emulator", action="store_true", help="start a local aiOla emulator and use it"
)
parser.add_argument("--lang", default="en")
args = parser.parse_args()

with contextlib.ExitStack() as stack:
    if args.emulator:
        from voxsync.emulators.aiola import AiolaEmulator

        emulator = stack.enter_context(AiolaEmulator())
        os.environ.update(AIOLA_BASE_URL=emulator.base_url, AIOLA_AUTH_BASE_URL=emulator.base_url)
        os.environ.setdefault("AIOLA_API_KEY", "emulator-key")

    # The client gets (and renews) its session token with the API key ($AIOLA_API_KEY)
    client = stack.enter_context(AiolaClient())
    connection = client.stt.stream(lang_code=args.lang)

    @connection.on(LiveEvents.Transcript)
    def on_transcript(data):
        print("Transcript:", data.get("transcript", data))

    @connection.on(LiveEvents.Error)
    def on_error(error):
        print("Streaming error:", error)

    # Connect, send the file paced like a live source, then finish: trailing
    # silence ends the last utterance and its transcript arrives before closing
    stream_file(connection, args.file, realtime=True, finish=True)

    # The same file in one REST request
    result = client.stt.transcribe_file(args.file, language=args.lang)
    print("File transcript:", result.transcript)
