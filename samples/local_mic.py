"""Live transcription of the microphone, offline, with event handlers.

    python samples/local_mic.py

Speak; partial results appear while you talk and a final line after each
pause. Press Ctrl+C to stop: what you said last is still transcribed.
"""

import time

import voxsync
from voxsync.audio import MicrophoneStream

# Create the connection (offline by default: no account, no network)
connection = voxsync.connection("local")


# Set up event handlers
@connection.on("transcript")
def on_transcript(data):
    if data.is_final:
        print("Transcript:", data.text)
    else:
        print("  ...", data.text)


@connection.on("connect")
def on_connect():
    print("Connected to the offline recognizer")


@connection.on("disconnect")
def on_disconnect():
    print("Disconnected")


@connection.on("error")
def on_error(error):
    print("Error:", error)


# Connect, then capture the microphone (converted to what the connection expects)
connection.connect()
try:
    with MicrophoneStream(channels=1, samplerate=16000, blocksize=4096) as mic:
        print("Listening... speak into your microphone, Ctrl+C to stop")
        mic.stream_to(connection)
        # Keep the main thread alive
        while connection.connected:
            try:
                time.sleep(0.1)
            except KeyboardInterrupt:
                print("Stopping")
                break
    # The microphone is stopped and its buffered audio sent: get the last words
    connection.finish()
finally:
    connection.disconnect()
