"""Audio files as sources: read, convert, cut into chunks, stream.

Files are decoded with soundfile (libsndfile): WAV, FLAC, OGG/Vorbis,
OGG/Opus, AIFF and more, and MP3 where the installed libsndfile supports it
(1.1 and later). Everything is converted to the format you ask for, usually
``conn.input_format``, so you never resample by hand.

Examples
--------
Send a file to a connection at real-time speed and wait for the last
results::

    from voxsync.audio import stream_file

    seconds = stream_file(conn, "call.wav", finish=True)

Read a whole file as 8 kHz mu-law::

    data, fmt = read_audio("call.flac", AudioFormat(8000, 1, "mulaw"))
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import IO, Any, Iterator, Optional, Tuple, Union

import numpy as np

from voxsync.audio.convert import Converter
from voxsync.audio.pacing import Pacer
from voxsync.audio.sink import AudioSink, sink_format
from voxsync.errors import ConfigurationError
from voxsync.format import AudioFormat

__all__ = [
    "AudioFile",
    "AudioSource",
    "UnsupportedAudioError",
    "iter_chunks",
    "read_audio",
    "stream_file",
]

logger = logging.getLogger(__name__)

#: What the file functions accept: a path or a binary file object.
AudioSource = Union[str, "os.PathLike[str]", IO[bytes]]

# libsndfile subtypes that fit in 16 bits without loss; anything else is read as float.
_INT16_SUBTYPES = {"PCM_16", "PCM_S8", "PCM_U8", "ULAW", "ALAW", "DWVW_12", "DWVW_16"}

#: Frames read from the file per step when converting a whole file.
_READ_FRAMES = 65536


class UnsupportedAudioError(ConfigurationError):
    """A file could not be decoded as audio (unknown or unsupported format).

    The message names the file and the formats that can be read. Convert
    the file (e.g. to WAV) or install a libsndfile with support for its
    format.
    """


def _describe_source(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(os.fspath(source))
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return name
    return f"<{type(source).__name__}>"


class MissingAudioFileError(FileNotFoundError):
    """A FileNotFoundError whose message is one sentence (``errno`` and
    ``filename`` stay set): not ``[Errno 2] ...: 'x.wav': 'x.wav'``."""

    def __str__(self) -> str:
        return str(self.strerror)


def _open(source: AudioSource) -> Any:
    """Open ``source`` with soundfile, translating its errors."""
    import soundfile

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            where = "" if path.is_absolute() else f" (relative paths start in {Path.cwd()})"
            raise MissingAudioFileError(
                errno.ENOENT, f"audio file not found: {str(path)!r}{where}", str(path)
            )
        if path.is_dir():
            raise IsADirectoryError(
                21, f"expected an audio file, got a directory: {str(path)!r}", str(path)
            )
    try:
        return soundfile.SoundFile(source)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise UnsupportedAudioError(
            f"cannot read {_describe_source(source)!r} as audio ({exc}); readable formats: "
            f"{', '.join(sorted(soundfile.available_formats()))}. Convert it to WAV or FLAC"
        ) from exc


class AudioFile:
    """An audio file opened for reading, converted on the fly.

    Parameters
    ----------
    source : str, path-like or binary file object
        The file. A file object is read from its current position and not
        closed by :meth:`close`.
    target : AudioFormat, optional
        Format of the audio this object returns; default: :attr:`format`.

    Attributes
    ----------
    format : AudioFormat
        The file's own format as decoded: ``pcm_s16le`` for files of 16 bits
        or less (including G.711 WAV files), ``pcm_f32le`` otherwise,
        at the file's rate and channel count.
    target : AudioFormat
        Format of the returned audio.
    frames : int
        Frames in the file (at the file's rate).

    Raises
    ------
    FileNotFoundError
        If the path does not exist.
    UnsupportedAudioError
        If the file is not audio libsndfile can decode.

    Examples
    --------
    ::

        with AudioFile("speech.wav", conn.input_format) as f:
            for chunk in f.chunks(chunk_ms=20, realtime=True):
                conn.send(chunk)
    """

    def __init__(self, source: AudioSource, target: Optional[AudioFormat] = None) -> None:
        if target is not None and not isinstance(target, AudioFormat):
            raise ConfigurationError(
                f"target must be an AudioFormat or None, got {type(target).__name__}"
            )
        self.name = _describe_source(source)
        self._sf = _open(source)
        subtype = str(self._sf.subtype)
        self._dtype = "int16" if subtype in _INT16_SUBTYPES else "float32"
        encoding = "pcm_s16le" if self._dtype == "int16" else "pcm_f32le"
        try:
            self.format = AudioFormat(int(self._sf.samplerate), int(self._sf.channels), encoding)
        except ConfigurationError as exc:
            self._sf.close()
            raise UnsupportedAudioError(f"{self.name!r}: {exc}") from exc
        self.target = target if target is not None else self.format
        self.frames = int(self._sf.frames)

    def __repr__(self) -> str:
        return f"<AudioFile {self.name!r} {self.format} -> {self.target}>"

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def duration(self) -> float:
        """Length of the file in seconds."""
        return self.frames / self.format.sample_rate

    def close(self) -> None:
        """Release the file (idempotent)."""
        self._sf.close()

    def _blocks(self, frames: int) -> Iterator[bytes]:
        """Native-format blocks of up to ``frames`` frames until the end of the file."""
        while True:
            block = self._sf.read(frames, dtype=self._dtype, always_2d=True)
            if not len(block):
                return
            yield np.ascontiguousarray(block).tobytes()

    def read(self) -> bytes:
        """The rest of the file, converted to :attr:`target`."""
        conv = Converter(self.format, self.target)
        parts = [conv.process(block) for block in self._blocks(_READ_FRAMES)]
        parts.append(conv.flush())
        return b"".join(parts)

    def chunks(
        self, chunk_ms: float = 100, realtime: bool = False, *, speed: float = 1.0
    ) -> Iterator[bytes]:
        """Yield the rest of the file in chunks of ``chunk_ms`` of :attr:`target` audio.

        Every chunk but the last holds exactly ``target.nbytes(chunk_ms / 1000)``
        bytes; the last one holds what is left (never empty).

        Parameters
        ----------
        chunk_ms : float, optional
            Duration of one chunk in milliseconds (default 100).
        realtime : bool, optional
            If True, pace the chunks to the wall clock: the first at once,
            each next one when the audio before it has had time to play
            (``speed`` times real time). The generator sleeps in the
            consuming thread.
        speed : float, optional
            Pace factor when ``realtime`` is True.

        Raises
        ------
        ConfigurationError
            If ``chunk_ms`` is shorter than one frame of :attr:`target`.
        """
        return self._chunks(self.target, chunk_ms, realtime, speed)

    def _chunks(
        self, target: AudioFormat, chunk_ms: float, realtime: bool, speed: float
    ) -> Iterator[bytes]:
        size = _chunk_size(target, chunk_ms)
        pacer = Pacer(speed) if realtime else None
        conv = Converter(self.format, target)
        read_frames = max(1, int(self.format.sample_rate * chunk_ms / 1000))

        def converted() -> Iterator[bytes]:
            for block in self._blocks(read_frames):
                yield conv.process(block)
            yield conv.flush()

        buf = bytearray()
        for data in converted():
            buf += data
            while len(buf) >= size:
                chunk = bytes(buf[:size])
                del buf[:size]
                if pacer is not None:
                    pacer.pace(target.duration(len(chunk)))
                yield chunk
        if buf:
            if pacer is not None:
                pacer.wait()
            yield bytes(buf)


def _chunk_size(fmt: AudioFormat, chunk_ms: float) -> int:
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, (int, float)) or chunk_ms <= 0:
        raise ConfigurationError(f"chunk_ms must be a positive number, got {chunk_ms!r}")
    size = fmt.nbytes(chunk_ms / 1000)
    if size <= 0:
        raise ConfigurationError(
            f"chunk_ms={chunk_ms} is shorter than one frame of {fmt.describe()}"
        )
    return size


def read_audio(
    path_or_file: AudioSource, target: Optional[AudioFormat] = None
) -> Tuple[bytes, AudioFormat]:
    """Read a whole audio file.

    Parameters
    ----------
    path_or_file : str, path-like or binary file object
        The file (WAV, FLAC, OGG, MP3 where supported, ...).
    target : AudioFormat, optional
        Convert to this format. Default: the file's own format
        (``pcm_s16le`` for 16-bit or smaller files, ``pcm_f32le`` otherwise).

    Returns
    -------
    (bytes, AudioFormat)
        The audio and its format (``target`` if given).

    Raises
    ------
    FileNotFoundError
        If the path does not exist.
    UnsupportedAudioError
        If the file is not audio that libsndfile can decode.

    Examples
    --------
    ::

        pcm, fmt = read_audio("hello.wav", AudioFormat(16000, 1, "pcm_s16le"))
    """
    with AudioFile(path_or_file, target) as f:
        return f.read(), f.target


def iter_chunks(
    source: Union[AudioSource, AudioFile],
    target: Optional[AudioFormat] = None,
    chunk_ms: float = 100,
    realtime: bool = False,
    *,
    speed: float = 1.0,
) -> Iterator[bytes]:
    """Yield an audio file as chunks of ``chunk_ms`` milliseconds in ``target``.

    Parameters
    ----------
    source : path, binary file object or AudioFile
        The audio. A path is opened and closed by the iterator; an
        :class:`AudioFile` is read from its current position (its own
        ``target`` is ignored in favour of ``target`` when one is given).
    target : AudioFormat, optional
        Format of the chunks; default: the file's own format.
    chunk_ms : float, optional
        Chunk duration in milliseconds (default 100). Every chunk but the last
        has exactly this duration.
    realtime : bool, optional
        Pace the chunks to the wall clock (see :meth:`AudioFile.chunks`).
    speed : float, optional
        Pace factor when ``realtime`` is True.

    Raises
    ------
    FileNotFoundError, UnsupportedAudioError
        When the file is opened (on the first ``next()``).

    Examples
    --------
    ::

        for chunk in iter_chunks("speech.wav", conn.input_format, chunk_ms=20, realtime=True):
            conn.send(chunk)
    """
    if isinstance(source, AudioFile):
        yield from source._chunks(target or source.target, chunk_ms, realtime, speed)
        return
    with AudioFile(source, target) as f:
        yield from f.chunks(chunk_ms, realtime, speed=speed)


def stream_file(
    conn: AudioSink,
    path: Union[AudioSource, AudioFile],
    *,
    realtime: bool = True,
    chunk_ms: float = 100,
    finish: bool = False,
    finish_timeout: Optional[float] = None,
) -> float:
    """Send an audio file to a connection, converted to ``conn.input_format``.

    Runs in the calling thread (sleeping between chunks when ``realtime``).
    If the connection is still idle it is connected first.

    Parameters
    ----------
    conn : AudioSink
        Any voxsync connection (or another :class:`~voxsync.audio.AudioSink`).
    path : path, binary file object or AudioFile
        The audio file.
    realtime : bool, optional
        Pace the audio to the wall clock (default True), as a live source
        would. False sends as fast as ``conn.send()`` accepts.
    chunk_ms : float, optional
        Duration of each ``send()`` in milliseconds (default 100).
    finish : bool, optional
        Call ``conn.finish(finish_timeout)`` after the last chunk: flush the
        queue, end the stream and wait (bounded) for the last results.
    finish_timeout : float, optional
        Passed to ``conn.finish()``; None uses the connection's default.

    Returns
    -------
    float
        Seconds of audio sent.

    Raises
    ------
    FileNotFoundError, UnsupportedAudioError
        For a missing or unreadable file (before anything is sent).
    ConfigurationError
        ``conn`` is not an audio sink, or takes text, not audio.
    voxsync.VoxsyncError
        Whatever ``conn.connect()``, ``conn.send()`` or ``conn.finish()``
        raise (e.g. :class:`~voxsync.errors.DisconnectedError`).

    Examples
    --------
    ::

        with voxsync.connect("local") as conn:
            conn.on("transcript", print)
            stream_file(conn, "speech.wav", finish=True)
    """
    fmt = sink_format(conn, "stream_file()")
    if isinstance(path, AudioFile):
        audio = path
        owned = False
    else:
        audio = AudioFile(path, fmt)
        owned = True
    try:
        if conn.state == "idle":
            conn.connect()
        sent = 0
        for chunk in iter_chunks(audio, fmt, chunk_ms, realtime):
            conn.send(chunk)
            sent += len(chunk)
        if finish:
            conn.finish(timeout=finish_timeout)
    finally:
        if owned:
            audio.close()
    seconds = fmt.duration(sent)
    logger.debug("sent %.3f s of %s to %r", seconds, audio.name, conn)
    return seconds
