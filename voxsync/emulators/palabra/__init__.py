"""Local emulator of Palabra AI: REST sessions, translation, realtime STT and TTS sockets."""
