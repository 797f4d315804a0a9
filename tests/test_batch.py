"""transcribe_many and ``voxsync transcribe --jobs``: real files, real recognizer, real pools."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import threading
import time
import wave
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest
from speech import MAX_WER, TRANSCRIPTS, sample, wer

import voxsync
from voxsync.batch import FileResult, transcribe_file, transcribe_many
from voxsync.cli import main
from voxsync.errors import ConfigurationError


def files(tmp_path: Path) -> Tuple[List[str], str, str]:
    missing = str(tmp_path / "missing.wav")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio at all")
    paths = [str(sample("yes.wav")), missing, str(not_audio), str(sample("no.wav"))]
    return paths, missing, str(not_audio)


def test_results_in_input_order_and_failures_do_not_stop_the_others(tmp_path: Path) -> None:
    paths, _, _ = files(tmp_path)
    seen: List[Tuple[int, str, str]] = []

    def on_result(index: int, result: FileResult) -> None:
        seen.append((index, result.path, threading.current_thread().name))

    results = voxsync.transcribe_many(paths, jobs=2, on_result=on_result)
    assert [r.path for r in results] == paths
    assert [r.ok for r in results] == [True, False, False, True]
    assert (results[0].text, results[3].text) == ("yes", "no")
    assert results[0].finals == ("yes",) and results[0].seconds > 0.3
    assert (results[1].error_type, results[1].error) == ("MissingAudioFileError", "no such file")
    assert results[2].error_type == "UnsupportedAudioError"
    assert "convert it to WAV or FLAC" in str(results[2].error)
    # once per file, in the calling thread, each index with its own path
    assert sorted(i for i, _, _ in seen) == [0, 1, 2, 3]
    assert all(paths[i] == p for i, p, _ in seen)
    assert {name for _, _, name in seen} == {threading.current_thread().name}


def test_files_really_run_concurrently() -> None:
    active = [0]
    most = [0]
    lock = threading.Lock()

    class Counting(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            def counted() -> Any:
                with lock:
                    active[0] += 1
                    most[0] = max(most[0], active[0])
                try:
                    return fn(*args, **kwargs)
                finally:
                    with lock:
                        active[0] -= 1

            return super().submit(counted)

    names = ["two_utterances.wav", "meeting.wav", "phone_number.wav", "yes.wav"]
    with Counting(max_workers=4, thread_name_prefix="voxsync-test-pool") as pool:
        # jobs caps the files submitted at once even though the pool has 4 workers
        results = transcribe_many([sample(n) for n in names], executor=pool, jobs=2)
    assert most[0] == 2
    for name, result in zip(names, results):
        assert result.ok, result.error
        assert wer(TRANSCRIPTS[name], result.text) <= MAX_WER, result.text


def test_process_pool(tmp_path: Path) -> None:
    paths, _, _ = files(tmp_path)
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = transcribe_many(paths, executor=pool)
    assert [r.path for r in results] == paths
    assert [r.text for r in results] == ["yes", "", "", "no"]
    assert results[1].error == "no such file"


def test_a_broken_executor_fails_each_file_with_the_reason() -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.shutdown()
    results = transcribe_many([sample("yes.wav"), sample("no.wav")], executor=pool)
    assert [r.error_type for r in results] == ["RuntimeError", "RuntimeError"]
    assert all("shutdown" in str(r.error) for r in results)


def test_unknown_provider_and_bad_jobs() -> None:
    results = transcribe_many([sample("yes.wav")], provider="nonesuch")
    assert results[0].error_type == "ConfigurationError"
    assert "unknown provider 'nonesuch'" in str(results[0].error)
    with pytest.raises(ConfigurationError, match="jobs must be"):
        transcribe_many([sample("yes.wav")], jobs=0)
    assert transcribe_many([]) == []


def test_interrupt_closes_the_running_streams_quickly(tmp_path: Path) -> None:
    fmt = voxsync.AudioFormat(16000, 1, "pcm_s16le")
    pcm, _ = voxsync.audio.read_audio(sample("two_utterances.wav"), fmt)
    long_file = tmp_path / "long.wav"
    with wave.open(str(long_file), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm * 6)
    duration = fmt.duration(len(pcm) * 6)
    assert duration > 30.0

    def on_result(index: int, result: FileResult) -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        # the missing file fails at once; the real-time streams of the long
        # file are then closed rather than waited for
        transcribe_many(
            [tmp_path / "missing.wav", long_file, long_file],
            jobs=2,
            on_result=on_result,
            realtime=True,
        )
    assert time.monotonic() - started < duration / 2


def test_transcribe_file_directly() -> None:
    result = transcribe_file(sample("no.wav"), vocabulary=["yes", "no"])
    assert (result.ok, result.text, result.path) == (True, "no", str(sample("no.wav")))
    assert result.to_json()["text"] == "no" and result.to_json()["ok"] is True


def test_dask_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip(
        "dask.distributed", reason="dask[distributed] is an optional test dependency"
    )
    paths, _, _ = files(tmp_path)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        results = transcribe_many(paths, executor=client.get_executor(), jobs=2)
    assert [r.text for r in results] == ["yes", "", "", "no"]
    errors = [r.error_type for r in results][1:3]
    assert errors == ["MissingAudioFileError", "UnsupportedAudioError"]


# ------------------------------------------------------------------ command


def test_command_text_in_order_exit_status_counts_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, missing, not_audio = files(tmp_path)
    code = main(["transcribe", "--jobs", "3", *paths])
    out, err = capsys.readouterr()
    assert code == 2  # two files failed
    assert out.splitlines() == [
        f"==> {paths[0]} <==",
        "yes",
        f"==> {missing} <==",
        f"==> {not_audio} <==",
        f"==> {paths[3]} <==",
        "no",
    ]
    assert f"voxsync: {missing}: no such file" in err
    assert f"voxsync: {not_audio}: not an audio file" in err


def test_command_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths, missing, _ = files(tmp_path)
    code = main(["transcribe", "--jobs", "2", "--format", "json", paths[0], missing, paths[3]])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"voxsync: {missing}: no such file" in err
    rows = sorted((json.loads(line) for line in out.splitlines()), key=lambda r: r["index"])
    assert [(r["file"], r["ok"], r["text"]) for r in rows] == [
        (paths[0], True, "yes"),
        (missing, False, ""),
        (paths[3], True, "no"),
    ]
    assert rows[1]["error_type"] == "MissingAudioFileError"


def test_command_all_good_and_bad_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transcribe", "--jobs", "1", str(sample("yes.wav"))]) == 0
    assert capsys.readouterr().out.splitlines() == [f"==> {sample('yes.wav')} <==", "yes"]
    assert main(["transcribe", "--jobs", "0", str(sample("yes.wav"))]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
