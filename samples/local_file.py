"""Transcribe an audio file offline, with event handlers.

    python samples/local_file.py [FILE]

No account and no network: the ``local`` provider runs pocketsphinx on this
machine. Any rate, channel count and format the audio layer reads works; it
is converted to what the connection expects.
"""

import sys
from pathlib import Path

import voxsync
from voxsync.audio import stream_file

path = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "audio" / "two_utterances.wav"

# Create the connection (offline by default)
connection = voxsync.connection("local")


# Set up event handlers
@connection.on("transcript")
def on_transcript(data):
    if data.is_final:
        print(f"[{data.start:5.2f}-{data.end:5.2f}] {data.text}")
    else:
        print("  ...", data.get("transcript", data))


@connection.on("connect")
def on_connect():
    print("Connected to the offline recognizer")


@connection.on("disconnect")
def on_disconnect():
    print("Disconnected")


@connection.on("error")
def on_error(error):
    print("Error:", error)


# Connect, send the file as fast as it is decoded, then finish: the last
# words are delivered before the connection closes.
connection.connect()
try:
    stream_file(connection, path, realtime=False)
    connection.finish()
finally:
    connection.disconnect()
