"""Offline speech-to-text with pocketsphinx: the default provider.

No account, no network: the en-us acoustic model, language model and
dictionary ship inside the pocketsphinx wheel.

::

    import voxsync

    conn = voxsync.connection("local")

    @conn.on("transcript")
    def show(ev):
        if ev.is_final:
            print(ev.text)

    with conn:
        voxsync.audio.stream_file(conn, "speech.wav", realtime=False)

:class:`Recognizer` is the streaming recognizer underneath, usable on its
own (it is also what the emulators' ``pocketsphinx`` engine runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voxsync._lazy import lazy_exports

# Names are imported on first use: 'voxsync --help' needs only the
# provider's options (voxsync.local._cli), not pocketsphinx or numpy.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "voxsync.local.connection": ("AUDIO_FORMAT", "LocalConnection", "segment_to_transcript"),
        "voxsync.local.recognizer": ("DecoderOptions", "Recognizer", "Segment"),
    },
)

if TYPE_CHECKING:
    from voxsync.local.connection import AUDIO_FORMAT, LocalConnection, segment_to_transcript
    from voxsync.local.recognizer import DecoderOptions, Recognizer, Segment

__all__ = [
    "AUDIO_FORMAT",
    "DecoderOptions",
    "LocalConnection",
    "Recognizer",
    "Segment",
    "create_connection",
    "segment_to_transcript",
]


def create_connection(**options: Any) -> LocalConnection:
    """Create a :class:`LocalConnection`, not connected yet (``voxsync.connection("local")``).

    Parameters
    ----------
    **options
        Keyword arguments of :class:`LocalConnection`.

    Raises
    ------
    ConfigurationError
        Unknown or invalid option.
    """
    from voxsync.local.connection import LocalConnection

    try:
        return LocalConnection(**options)
    except TypeError as exc:
        from voxsync.errors import ConfigurationError

        raise ConfigurationError(f"invalid option for the local provider: {exc}") from exc
