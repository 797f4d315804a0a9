"""Speak in an Uh!ive conversation: stream a file (or the microphone), print the transcripts.

    python samples/uhlive_conversation.py --emulator             # a local Uh!ive server
    python samples/uhlive_conversation.py [FILE] [--mic] [--conversation ID] [--speaker NAME]

Against the real service, set UHLIVE_API_CLIENT and UHLIVE_API_SECRET. Against
an emulator started with ``voxsync emulate uhlive`` (it prints its URL), also
set UHLIVE_AUTH_SERVER and UHLIVE_API_URL to that URL; any client id and
secret are accepted. ``--emulator`` starts one inside this script instead.

The service takes 8 kHz audio; the file (or the 16 kHz microphone) is
converted automatically.
"""

import argparse
import json
import os
from pathlib import Path

from voxsync.audio import MicrophoneStream, stream_file
from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.uhlive import ConversationConnection

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("file", nargs="?", default=Path(__file__).parent / "audio" / "meeting.wav")
parser.add_argument(
    "--mic", action="store_true", help="stream the microphone instead (Ctrl+C stops)"
)
parser.add_argument("--conversation", default="my-conversation")
parser.add_argument("--speaker", default="Alice")
parser.add_argument("--model", default="en", help="ASR model: en, fr, es, ...")
parser.add_argument("--country", default="us")
parser.add_argument("--codec", choices=("linear", "g711a", "g711u"), default="linear")
parser.add_argument("--emulator", action="store_true", help="start a local Uh!ive emulator first")
args = parser.parse_args()

emulator = None
if args.emulator:
    # Real recognition (pocketsphinx). Its model is made for 16 kHz and the
    # service takes 8 kHz telephone audio, so for the sample recordings the
    # emulator listens for their words only (see "Recognition at 8 kHz" in the
    # Uh!ive guide); with the full vocabulary it mishears some of them.
    vocabulary = None
    if not args.mic:
        transcripts = json.loads((Path(__file__).parent / "audio" / "transcripts.json").read_text())
        vocabulary = sorted({word for text in transcripts.values() for word in text.split()})
    emulator = UhliveEmulator(vocabulary=vocabulary).start()
    os.environ.update(emulator.env())
    os.environ.setdefault("UHLIVE_API_CLIENT", "demo-client")
    os.environ.setdefault("UHLIVE_API_SECRET", "demo-secret")
    print("Emulator at", emulator.base_url)

# Credentials and servers come from the UHLIVE_* environment variables.
connection = ConversationConnection(
    args.conversation,
    args.speaker,
    model=args.model,
    country=args.country,
    audio_codec=args.codec,
)


@connection.on("connect")
def on_connect():
    print(f"Joined {connection.topic} as {connection.speaker} ({connection.audio_format})")


@connection.on("transcript")
def on_transcript(event):
    if event.is_final:
        print(f"[{event.speaker} {event.start:6.2f}s] {event.text}")
    else:
        print(f"  ... {event.text}")


@connection.on("normalized")
def on_normalized(event):
    print(f"[{event.speaker} formatted] {event.text}")


@connection.on("entity")
def on_entity(event):
    print(f"[{event.speaker}] {event.entity_name}: '{event.canonical}' replaces '{event.original}'")


@connection.on("speaker_joined")
def on_joined(event):
    print(f"--> {event.speaker} joined")


@connection.on("speaker_left")
def on_left(event):
    print(f"<-- {event.speaker} left")


@connection.on("error")
def on_error(error):
    print("Error:", error)


try:
    # finish() on leaving the block: send the queued audio, leave, and wait
    # for our own speaker_left so that no final transcript is lost.
    with connection:
        if args.mic:
            with MicrophoneStream(channels=1, samplerate=16000, blocksize=1600) as mic:
                mic.stream_to(connection)
                print("Listening... Ctrl+C to stop")
                try:
                    connection.wait()
                except KeyboardInterrupt:
                    pass
        else:
            stream_file(connection, args.file)  # paced to real time, as the service expects
finally:
    if emulator is not None:
        emulator.stop()
