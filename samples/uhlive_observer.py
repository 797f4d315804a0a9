"""Watch an Uh!ive conversation as a readonly observer: everyone's events, no audio.

    python samples/uhlive_observer.py --emulator             # with a demo speaker
    python samples/uhlive_observer.py --conversation ID [--seconds N]

Observers join silently (no speaker_joined / speaker_left for them) and
receive every speaker's transcripts. The connection pings the server while
idle, so a quiet conversation does not hit the service's 60 s idle timeout.
Credentials and servers come from the UHLIVE_* environment variables (see
samples/uhlive_conversation.py); ``--emulator`` starts a local server and a
demo speaker who reads a sample file, and stops when the speaker has left.
"""

import argparse
import os
import threading
from pathlib import Path

from voxsync.audio import stream_file
from voxsync.emulators.uhlive import UhliveEmulator
from voxsync.uhlive import ConversationConnection

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--conversation", default="my-conversation")
parser.add_argument(
    "--seconds", type=float, default=None, help="stop after N seconds (default: Ctrl+C)"
)
parser.add_argument(
    "--emulator", action="store_true", help="start a local emulator and a demo speaker"
)
args = parser.parse_args()

emulator = None
demo = None
if args.emulator:
    emulator = UhliveEmulator().start()
    os.environ.update(emulator.env())
    os.environ.setdefault("UHLIVE_API_CLIENT", "demo-client")
    os.environ.setdefault("UHLIVE_API_SECRET", "demo-secret")

observer = ConversationConnection(args.conversation, "observer", readonly=True)


@observer.on("transcript")
def on_transcript(event):
    if event.is_final:
        print(f"[{event.speaker}] {event.text}")


@observer.on("entity")
def on_entity(event):
    print(f"[{event.speaker}] {event.entity_name}: {event.canonical}")


@observer.on("speaker_joined")
def on_joined(event):
    print(f"--> {event.speaker} joined ({event.lang})")


@observer.on("speaker_left")
def on_left(event):
    print(f"<-- {event.speaker} left")


@observer.on("error")
def on_error(error):
    print("Error:", error)


def demo_speaker():
    speaker = ConversationConnection(args.conversation, "Bob", model="en", country="us")
    with speaker:
        stream_file(speaker, Path(__file__).parent / "audio" / "two_utterances.wav")


try:
    with observer:
        print(f"Observing {observer.topic}")
        try:
            if emulator is not None:
                demo = threading.Thread(target=demo_speaker, name="demo-speaker")
                demo.start()
                demo.join()  # the demo speaker has left: its last words were delivered
            else:
                observer.wait(args.seconds)
        except KeyboardInterrupt:
            pass
finally:
    if demo is not None:
        demo.join()
    if emulator is not None:
        emulator.stop()
