"""Live transcription of the microphone with aiOla, in aiOla's own style.

    AIOLA_API_KEY=... python samples/aiola_mic.py     # aiOla's service
    python samples/aiola_mic.py --emulator            # a local aiOla emulator

Speak; a transcript line appears after each pause. Ctrl+C stops: the
microphone's buffered audio is sent and the last words are still transcribed.
``AIOLA_BASE_URL`` / ``AIOLA_AUTH_BASE_URL`` point the client at another host.
"""

import argparse
import contextlib
import os
import time

from voxsync.aiola import AiolaClient, MicrophoneStream
from voxsync.aiola.types import LiveEvents

parser = argparse.ArgumentParser(description="aiOla microphone transcription")
parser.add_argument(
    "--emulator", action="store_true", help="start a local aiOla emulator and use it"
)
parser.add_argument("--lang", default="en")
parser.add_argument("--device", default=None, help="input device (index or part of its name)")
args = parser.parse_args()

with contextlib.ExitStack() as stack:
    if args.emulator:
        from voxsync.emulators.aiola import AiolaEmulator

        emulator = stack.enter_context(AiolaEmulator())
        os.environ.update(AIOLA_BASE_URL=emulator.base_url, AIOLA_AUTH_BASE_URL=emulator.base_url)
        os.environ.setdefault("AIOLA_API_KEY", "emulator-key")

    # Step 1: generate an access token (a session) from the API key
    result = AiolaClient.grant_token(api_key=os.environ["AIOLA_API_KEY"])
    stack.callback(AiolaClient.close_session, result["accessToken"])  # free the session slot

    # Step 2: create a client with the access token, and a stream
    client = AiolaClient(access_token=result["accessToken"])
    connection = client.stt.stream(lang_code=args.lang)

    @connection.on(LiveEvents.Transcript)
    def on_transcript(data):
        print("Transcript:", data.get("transcript", data))

    @connection.on(LiveEvents.Connect)
    def on_connect():
        print("Connected to streaming service")

    @connection.on(LiveEvents.Reconnecting)
    def on_reconnecting(event):
        print(f"Connection lost, reconnecting (attempt {event.attempt})")

    @connection.on(LiveEvents.Disconnect)
    def on_disconnect():
        print("Disconnected from streaming service")

    @connection.on(LiveEvents.Error)
    def on_error(error):
        print("Streaming error:", error)

    # Step 3: stream the microphone
    connection.connect()
    try:
        with MicrophoneStream(
            channels=1, samplerate=16000, blocksize=4096, device=args.device
        ) as mic:
            print("Listening... speak into your microphone, Ctrl+C to stop")
            mic.stream_to(connection)
            while connection.connected:
                try:
                    time.sleep(0.1)
                except KeyboardInterrupt:
                    print("Stopping")
                    break
        # the microphone is stopped and its buffered audio queued: get the last words
        if connection.connected:
            connection.finish()
    finally:
        connection.disconnect()
