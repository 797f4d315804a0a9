"""Palabra AI: speech-to-speech translation, realtime speech-to-text and text-to-speech."""
