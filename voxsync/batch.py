"""Transcribe many files at once, on threads, processes or a cluster.

:func:`transcribe_many` streams each file through its own connection and
returns one :class:`FileResult` per file, in the order of the input. The
work runs on any :class:`concurrent.futures.Executor`: a thread pool of
``jobs`` workers by default, or one you pass (a process pool, or a cluster's
executor such as ``dask.distributed.Client.get_executor()``), so voxsync
carries no scheduler of its own. A failing file gives a result with its
error; it never stops the others.

::

    import voxsync

    for result in voxsync.transcribe_many(["a.wav", "b.flac"], jobs=2):
        print(result.path, result.text if result.ok else result.error)

The ``voxsync transcribe --jobs N FILES...`` command is built on it
(:func:`run_batch_command`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from voxsync.errors import ConfigurationError

__all__ = ["FileResult", "run_batch_command", "transcribe_file", "transcribe_many"]

#: Workers of the default thread pool when ``jobs`` is not given.
DEFAULT_JOBS = 4
#: Seconds added to a file's duration to bound the wait for its last results.
FINISH_TIMEOUT = 10.0
#: The command's exit status is the number of failed files, at most this.
MAX_EXIT_STATUS = 100

PathLike = Union[str, "os.PathLike[str]"]


class _Tracker:
    """The connections of one call running in this process, closed on Ctrl+C."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cancelled = False
        self.conns: Set[Any] = set()

    def add(self, conn: Any) -> bool:
        """Track ``conn``; False when the call was already interrupted."""
        with self.lock:
            if self.cancelled:
                return False
            self.conns.add(conn)
            return True

    def discard(self, conn: Any) -> None:
        with self.lock:
            self.conns.discard(conn)

    def cancel(self) -> None:
        """Close every tracked connection, in parallel (each close is bounded)."""
        with self.lock:
            self.cancelled = True
            conns = list(self.conns)
        closers = [
            threading.Thread(target=_close_quietly, args=(c,), name="voxsync-batch-close")
            for c in conns
        ]
        for t in closers:
            t.start()
        for t in closers:
            t.join()


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # close never raises by contract; a broken one must not stop the others
        pass


@dataclass(frozen=True)
class FileResult:
    """The outcome of transcribing one file.

    Plain data (strings and numbers), so it crosses process and machine
    boundaries unchanged.

    Attributes
    ----------
    path : str
        The file, as given.
    text : str
        The final transcripts joined with spaces ("" when nothing was heard
        or the file failed).
    finals : tuple of str
        Each final transcript, in order.
    seconds : float
        Seconds of audio sent.
    elapsed : float
        Wall-clock seconds the file took (connect to close).
    error : str or None
        What went wrong (one line), or None when the file succeeded.
    error_type : str or None
        The exception's class name (e.g. ``"UnsupportedAudioError"``).
    """

    path: str
    text: str = ""
    finals: Tuple[str, ...] = ()
    seconds: float = 0.0
    elapsed: float = 0.0
    error: Optional[str] = None
    error_type: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True when the file was transcribed without an error."""
        return self.error is None

    def to_json(self) -> Dict[str, Any]:
        """The result as a JSON-ready dict."""
        return {
            "file": self.path,
            "ok": self.ok,
            "text": self.text,
            "finals": list(self.finals),
            "seconds": round(self.seconds, 3),
            "elapsed": round(self.elapsed, 3),
            "error": self.error,
            "error_type": self.error_type,
        }


def _describe(exc: BaseException) -> str:
    from voxsync.audio import UnsupportedAudioError

    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not an audio file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnsupportedAudioError):
        return "not an audio file voxsync can read (convert it to WAV or FLAC)"
    return str(exc) or type(exc).__name__


def _failed(path: str, exc: BaseException, started: float, seconds: float = 0.0) -> FileResult:
    return FileResult(
        path=path,
        seconds=seconds,
        elapsed=time.monotonic() - started,
        error=_describe(exc),
        error_type=type(exc).__name__,
    )


def transcribe_file(
    path: PathLike,
    provider: str = "local",
    *,
    realtime: Optional[bool] = None,
    chunk_ms: float = 100.0,
    finish_timeout: Optional[float] = None,
    **options: Any,
) -> FileResult:
    """Transcribe one file through a new connection; never raises for a bad file.

    Runs in the calling thread (or process): connects, streams the file,
    finishes the stream and closes the connection.

    Parameters
    ----------
    path : str or path-like
        The audio file (any format the audio layer reads).
    provider : str, optional
        Provider name (default ``"local"``, offline).
    realtime : bool, optional
        Pace the audio to the wall clock. Default: False for ``"local"``,
        True for cloud providers (their services expect live pace).
    chunk_ms : float, optional
        Audio per ``send()`` in milliseconds (default 100).
    finish_timeout : float, optional
        Seconds ``finish()`` waits for the last results. Default:
        :data:`FINISH_TIMEOUT` plus the file's duration (a recogniser fed
        faster than real time may have most of the file still to work
        through).
    **options
        Passed to :func:`voxsync.connection` (credentials, URLs, ...).

    Returns
    -------
    FileResult
        With the text, or with ``error`` set when anything failed (a
        missing or unreadable file, a refused connection, a dropped stream).

    Raises
    ------
    KeyboardInterrupt
        After closing the connection (bounded).
    """
    return _transcribe(
        path,
        provider,
        None,
        realtime=realtime,
        chunk_ms=chunk_ms,
        finish_timeout=finish_timeout,
        **options,
    )


def _transcribe(
    path: PathLike,
    provider: str,
    tracker: Optional[_Tracker],
    *,
    realtime: Optional[bool],
    chunk_ms: float,
    finish_timeout: Optional[float],
    **options: Any,
) -> FileResult:
    from voxsync.audio import AudioFile, stream_file
    from voxsync.providers import connection

    name = str(path)
    started = time.monotonic()
    if realtime is None:
        realtime = provider != "local"
    finals: List[str] = []
    seconds = 0.0
    try:
        conn = connection(provider, **options)
    except Exception as exc:
        return _failed(name, exc, started)

    def on_transcript(event: Any) -> None:
        if event.is_final and event.text.strip():
            finals.append(event.text.strip())

    conn.on("transcript", on_transcript)
    if tracker is not None and not tracker.add(conn):
        conn.close()
        return _failed(name, KeyboardInterrupt("interrupted before it started"), started)
    try:
        try:
            audio = AudioFile(name, conn.audio_format)
        except Exception as exc:
            return _failed(name, exc, started)
        if finish_timeout is None:
            # the recogniser may still be working through most of the file
            finish_timeout = FINISH_TIMEOUT + audio.duration
        try:
            conn.connect()
            if tracker is not None and tracker.cancelled:  # a close before connect() is no stop
                return _failed(name, KeyboardInterrupt("interrupted"), started)
            seconds = stream_file(
                conn,
                audio,
                realtime=realtime,
                chunk_ms=chunk_ms,
                finish=True,
                finish_timeout=finish_timeout,
            )
        except Exception as exc:
            return _failed(name, conn.error or exc, started, seconds)
        finally:
            audio.close()
        conn.close()
        if conn.error is not None:
            return _failed(name, conn.error, started, seconds)
        return FileResult(
            path=name,
            text=" ".join(finals),
            finals=tuple(finals),
            seconds=seconds,
            elapsed=time.monotonic() - started,
        )
    finally:
        conn.close()
        if tracker is not None:
            tracker.discard(conn)


def transcribe_many(
    paths: Iterable[PathLike],
    provider: str = "local",
    *,
    jobs: Optional[int] = None,
    executor: Optional[concurrent.futures.Executor] = None,
    on_result: Optional[Callable[[int, FileResult], None]] = None,
    realtime: Optional[bool] = None,
    chunk_ms: float = 100.0,
    finish_timeout: Optional[float] = None,
    **options: Any,
) -> List[FileResult]:
    """Transcribe files concurrently; one result per file, in input order.

    Parameters
    ----------
    paths : iterable of str or path-like
        The audio files.
    provider : str, optional
        Provider name (default ``"local"``).
    jobs : int, optional
        Files streamed at the same time. Without ``executor``: the size of
        the thread pool created for the call (default 4). With ``executor``:
        the most files submitted to it at once (default: all), e.g. to stay
        under a service's limit of concurrent streams.
    executor : concurrent.futures.Executor, optional
        Where the files run: a ``ProcessPoolExecutor``, a cluster's executor
        (``dask.distributed.Client.get_executor()``, Ray's), ... The caller
        owns it (it is not shut down). Its workers need voxsync installed
        and, for ``"local"``, the files at the same paths; ``options`` must
        pickle.
    on_result : callable, optional
        ``on_result(index, result)`` runs in the calling thread as each file
        completes (in completion order), e.g. for a progress display.
    realtime, chunk_ms, finish_timeout, **options
        As for :func:`transcribe_file`.

    Returns
    -------
    list of FileResult
        ``results[i]`` is the result of ``paths[i]``. A file that failed,
        even a worker that died, has ``error`` set; the others are unaffected.

    Raises
    ------
    ConfigurationError
        ``jobs`` is less than 1.
    KeyboardInterrupt
        Files not yet started are cancelled and the connections running in
        this process are closed (each close is bounded) before it propagates.

    Examples
    --------
    ::

        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(4) as pool:
            results = voxsync.transcribe_many(files, executor=pool)
        failed = [r for r in results if not r.ok]
    """
    names = [str(p) for p in paths]
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ConfigurationError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if not names:
        return []
    kwargs: Dict[str, Any] = dict(
        realtime=realtime, chunk_ms=chunk_ms, finish_timeout=finish_timeout, **options
    )
    own = executor is None
    if executor is None:
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(jobs or DEFAULT_JOBS, len(names)),
            thread_name_prefix="voxsync-batch",
        )
    # in this process, the running streams can be closed on Ctrl+C
    tracker = _Tracker() if isinstance(executor, concurrent.futures.ThreadPoolExecutor) else None
    task: Callable[..., FileResult] = (
        transcribe_file if tracker is None else functools.partial(_transcribe, tracker=tracker)
    )
    limit = len(names) if own or jobs is None else jobs
    results: List[Optional[FileResult]] = [None] * len(names)
    pending: Dict[concurrent.futures.Future[FileResult], int] = {}
    next_index = 0
    try:
        while next_index < len(names) or pending:
            while next_index < len(names) and len(pending) < limit:
                started = time.monotonic()
                try:
                    future = executor.submit(task, names[next_index], provider, **kwargs)
                except Exception as exc:  # e.g. a broken pool: this file fails, go on
                    results[next_index] = _failed(names[next_index], exc, started)
                    _notify(on_result, next_index, results[next_index])
                    next_index += 1
                    continue
                pending[future] = next_index
                next_index += 1
            if not pending:
                continue
            done, _ = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                index = pending.pop(future)
                results[index] = _outcome(names[index], future)
                _notify(on_result, index, results[index])
    except BaseException:
        for future in pending:
            future.cancel()
        if tracker is not None:
            tracker.cancel()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
        raise
    if own:
        executor.shutdown(wait=True)
    return [r for r in results if r is not None]


def _outcome(path: str, future: concurrent.futures.Future[FileResult]) -> FileResult:
    try:
        result = future.result()
    except Exception as exc:  # the worker itself failed (died, could not unpickle, ...)
        return FileResult(path=path, error=_describe(exc), error_type=type(exc).__name__)
    if not isinstance(result, FileResult):
        return FileResult(
            path=path,
            error=f"the executor returned {type(result).__name__}, not a FileResult",
            error_type="TypeError",
        )
    return result


def _notify(
    on_result: Optional[Callable[[int, FileResult], None]],
    index: int,
    result: Optional[FileResult],
) -> None:
    if on_result is not None and result is not None:
        on_result(index, result)


# ------------------------------------------------------------------ command


def run_batch_command(
    files: Sequence[str],
    *,
    provider: str,
    jobs: int,
    out: IO[str],
    err: IO[str],
    fmt: str = "text",
    progress: bool = False,
    realtime: Optional[bool] = None,
    chunk_ms: float = 100.0,
    options: Optional[Dict[str, Any]] = None,
) -> int:
    """``voxsync transcribe --jobs N FILES...``: run the batch, print, return the exit status.

    Text format prints each file's transcript under a ``==> FILE <==``
    header, in the order given (a file waits for the ones before it);
    a failed file prints ``voxsync: FILE: error`` on ``err``. JSON format
    prints one object per file as soon as it completes (``"file"``,
    ``"index"``, ``"ok"``, ``"text"``, ``"finals"``, ``"seconds"``,
    ``"elapsed"``, ``"error"``, ``"error_type"``). With ``progress``, one
    line on ``err`` counts the files done and failed.

    Returns
    -------
    int
        The number of failed files, at most :data:`MAX_EXIT_STATUS`
        (0: all succeeded).
    """
    total = len(files)
    results: List[Optional[FileResult]] = [None] * total
    state = {"printed": 0, "done": 0, "failed": 0, "line": False}

    def clear() -> None:
        if state["line"]:
            err.write("\r\x1b[K")
            state["line"] = False

    def show_progress() -> None:
        if progress:
            err.write(
                f"\r\x1b[Kfiles: {state['done']}/{total} done"
                + (f", {state['failed']} failed" if state["failed"] else "")
            )
            err.flush()
            state["line"] = True

    def on_result(index: int, result: FileResult) -> None:
        results[index] = result
        state["done"] += 1
        state["failed"] += not result.ok
        clear()
        if fmt == "json":
            out.write(json.dumps({"index": index, **result.to_json()}) + "\n")
            out.flush()
        while state["printed"] < total and results[state["printed"]] is not None:
            if fmt != "json":
                _print_text(results[state["printed"]], out, err)  # type: ignore[arg-type]
            state["printed"] += 1
        if fmt == "json" and not result.ok:
            err.write(f"voxsync: {result.path}: {result.error}\n")
        err.flush()
        show_progress()

    show_progress()
    try:
        transcribe_many(
            files,
            provider,
            jobs=jobs,
            on_result=on_result,
            realtime=realtime,
            chunk_ms=chunk_ms,
            **(options or {}),
        )
    finally:
        clear()
        err.flush()
    return min(state["failed"], MAX_EXIT_STATUS)


def _print_text(result: FileResult, out: IO[str], err: IO[str]) -> None:
    out.write(f"==> {result.path} <==\n")
    for line in result.finals:
        out.write(line + "\n")
    out.flush()
    if not result.ok:
        err.write(f"voxsync: {result.path}: {result.error}\n")
