"""The live transcript view (voxsync.notebook.LiveView) outside a kernel.

The view runs in a real kernel in test_notebook_sample.py; here its content
is checked against real streams: the local provider and the aiOla emulator
(real recognition, emulated translation).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest
from speech import SAMPLES, TRANSCRIPTS, pcm16, wer

import voxsync
from voxsync.aiola import AiolaClient
from voxsync.audio import level, stream_file
from voxsync.emulators.aiola import AiolaEmulator
from voxsync.notebook import LiveView, level_bar


@pytest.fixture(scope="module")
def aiola() -> Iterator[AiolaEmulator]:
    with AiolaEmulator(api_keys=["key"]) as emu:
        yield emu


def test_finals_appended_partials_cleared_local() -> None:
    conn = voxsync.connection()
    view = LiveView(conn)
    partials = []
    conn.on("transcript", lambda ev: partials.append(view.partial) if not ev.is_final else None)
    with conn:
        stream_file(conn, SAMPLES / "two_utterances.wav", realtime=False)
    assert len(view.lines) == 2
    assert wer(TRANSCRIPTS["two_utterances.wav"], " ".join(view.lines)) <= 0.15
    assert any(partials), "partials were shown while speaking"
    assert view.partial == ""
    text = str(view)
    assert text.splitlines()[0].startswith(f"{conn.name} · closed")
    assert all(line in text for line in view.lines)
    html = view._repr_html_()
    assert "voxsync-live" in html and view.lines[0] in html
    view.close()
    assert conn.listeners("transcript")  # only the view's own handlers went


def test_close_removes_only_the_view_handlers() -> None:
    conn = voxsync.connection()
    mine = conn.on("transcript", lambda ev: None)
    view = LiveView(conn)
    assert len(conn.listeners("transcript")) == 2
    view.close()
    assert conn.listeners("transcript") == [mine]


def test_translations_beside_their_source_aiola(aiola: AiolaEmulator) -> None:
    with AiolaClient(api_key="key", base_url=aiola.base_url) as client:
        conn = client.stt.stream(
            lang_code="en",
            tasks_config={"TRANSLATION": {"src_lang_code": "en", "dst_lang_code": "fr"}},
        )
        view = LiveView(conn)
        with conn:
            conn.send(pcm16("meeting.wav"))
    assert len(view.lines) == 1
    assert wer(TRANSCRIPTS["meeting.wav"], view.lines[0]) <= 0.15
    row = next(r for r in str(view).splitlines() if "→" in r)
    source, translation = row.split("  →  ")
    assert source == view.lines[0] and view.lines[0] in translation
    assert "<td" in view._repr_html_()


def test_level_meter_moves_with_sent_audio() -> None:
    conn = voxsync.connection()
    view = LiveView(conn)
    assert level(conn.last_chunk, conn.input_format) == 0.0
    with conn:
        conn.send(b"\0\0" * 1600)
        assert level(conn.last_chunk, conn.input_format) == 0.0
        assert "▱▱▱▱▱▱▱▱▱▱ audio" in str(view)
        samples = np.frombuffer(pcm16("yes.wav"), np.int16)
        loudest = int(np.argmax(np.abs(samples)))
        conn.send(samples[max(0, loudest - 800) : loudest + 800].tobytes())
        now = level(conn.last_chunk, conn.input_format)
        assert now > 0.01
        assert level_bar(now) in str(view) and "▰" in str(view)
    assert "no audio" in str(view) or "▰" in str(view)
    view.close()


def test_level_bar_scale() -> None:
    assert level_bar(0.0) == "▱" * 10
    assert level_bar(1.0) == "▰" * 10
    assert level_bar(10 ** (-30 / 20)) == "▰" * 5 + "▱" * 5
    assert level_bar(10 ** (-70 / 20)) == "▱" * 10


def test_show_outside_a_kernel_says_what_to_do() -> None:
    conn = voxsync.connection()
    with pytest.raises(voxsync.ConfigurationError, match="Jupyter kernel"):
        conn.show()


def test_max_lines_keeps_the_last_lines() -> None:
    conn = voxsync.connection()
    view = LiveView(conn, max_lines=1)
    with conn:
        stream_file(conn, SAMPLES / "two_utterances.wav", realtime=False)
    assert len(view.lines) == 1 and "… 1 earlier lines" in str(view)
    with pytest.raises(voxsync.ConfigurationError):
        LiveView(conn, max_lines=0)
