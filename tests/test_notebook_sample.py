"""samples/notebook.ipynb, executed with nbclient on a real ipykernel.

Every IOPub message the kernel sends is recorded with the cell whose
request it answers (its parent message), so the test sees which cell each
output landed in, including output printed by a connection's handlers while
another cell runs (nbclient itself keeps only the running cell's output). The
microphone cell hears the virtual microphone (tests/pulse.py) and is stopped
with the kernel's interrupt, as a user would.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from pulse import PrivateMic, private_mic, virtual_mic  # noqa: F401
from speech import MAX_WER, TRANSCRIPTS, sample, wer

if os.environ.get("CI"):  # the test extra has them; under CI never skip
    import ipykernel  # noqa: F401
    import nbclient
    import nbformat
else:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "samples" / "notebook.ipynb"


class RecordingClient(nbclient.NotebookClient):  # type: ignore[misc]
    """A NotebookClient that records every IOPub message with its cell's index."""

    def __init__(self, nb: Any, on_cell: Any, **kw: Any) -> None:
        super().__init__(nb, on_notebook_start=self._wrap, on_cell_execute=self._cell, **kw)
        self.messages: List[Dict[str, Any]] = []
        self.cell_of: Dict[str, int] = {}
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._index = -1
        self._on_cell = on_cell

    def _wrap(self, notebook: Any) -> None:
        self.loop = asyncio.get_running_loop()
        kc = self.kc
        execute, get_msg = kc.execute, kc.iopub_channel.get_msg

        def recording_execute(*args: Any, **kwargs: Any) -> str:
            msg_id: str = execute(*args, **kwargs)
            self.cell_of[msg_id] = self._index
            return msg_id

        async def recording_get_msg(*args: Any, **kwargs: Any) -> Dict[str, Any]:
            msg: Dict[str, Any] = await nbclient.util.ensure_async(get_msg(*args, **kwargs))
            self.messages.append(msg)
            return msg

        kc.execute = recording_execute
        kc.iopub_channel.get_msg = recording_get_msg

    def _cell(self, cell: Any, cell_index: int) -> None:
        self._index = cell_index
        self._on_cell(self, cell, cell_index)

    def interrupt(self) -> None:
        """Press the interrupt button (from any thread)."""
        assert self.loop is not None and self.km is not None
        asyncio.run_coroutine_threadsafe(
            nbclient.util.ensure_async(self.km.interrupt_kernel()), self.loop
        ).result(10)

    def outputs(self, msg_types: tuple[str, ...] = ("stream",)) -> List[tuple[int, Dict[str, Any]]]:
        """(cell index, content) of every recorded message of these types."""
        return [
            (self.cell_of.get(m["parent_header"].get("msg_id", ""), -1), m["content"])
            for m in list(self.messages)
            if m["msg_type"] in msg_types
        ]

    def texts(self, cell: int) -> str:
        return "".join(c["text"] for i, c in self.outputs() if i == cell)

    def displays(self, cell: int) -> List[str]:
        kinds = ("display_data", "update_display_data")
        return [c["data"]["text/plain"] for i, c in self.outputs(kinds) if i == cell]


def index_of(nb: Any, text: str) -> int:
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    assert len(found) == 1, text
    return found[0]


def speak_then_interrupt(
    client: RecordingClient, mic: PrivateMic, cell: int, log: List[str]
) -> None:
    """Wait for the microphone to deliver audio, play a sentence, interrupt."""
    try:
        deadline = time.monotonic() + 60
        while not any(" audio" in d and "no audio" not in d for d in client.displays(cell)):
            assert time.monotonic() < deadline, "the microphone delivered no audio"
            time.sleep(0.1)
        time.sleep(1.0)  # the first blocks of a fresh capture can come out late
        mic.play(sample("meeting.wav")).wait(30)
        while "heard:" not in client.texts(cell) and time.monotonic() < deadline:
            time.sleep(0.1)
        log.append("heard" if "heard:" in client.texts(cell) else "timeout")
    finally:
        client.interrupt()


@pytest.mark.timeout(400)
def test_notebook_runs_with_output_under_the_right_cells(
    private_mic: PrivateMic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the kernel's default microphone is this test's own virtual one
    for key, value in private_mic.env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    local, other = index_of(nb, "def print_final"), index_of(nb, "another cell runs")
    view, cloud = index_of(nb, "view_conn.show()"), index_of(nb, "AiolaEmulator().start()")
    mic, last = index_of(nb, "MicrophoneStream() as mic"), index_of(nb, "threads left")
    helpers: List[threading.Thread] = []
    log: List[str] = []

    def on_cell(client: RecordingClient, cell: Any, index: int) -> None:
        if index == mic:
            helper = threading.Thread(
                target=speak_then_interrupt, args=(client, private_mic, index, log)
            )
            helpers.append(helper)
            helper.start()

    client = RecordingClient(
        nb,
        on_cell,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    for helper in helpers:
        helper.join(60)
    assert log == ["heard"]

    # local streaming: the handler's words land under the cell that connected,
    # although they were printed while the next cell ran
    finals = [c["text"] for i, c in client.outputs() if "local:" in c["text"]]
    assert finals and all(i == local for i, c in client.outputs() if "local:" in c["text"]), (
        client.outputs()
    )
    heard = " ".join(t.replace("local:", " ") for t in finals)
    assert wer(TRANSCRIPTS["two_utterances.wav"], heard) <= MAX_WER, heard
    assert client.texts(other) == "another cell runs meanwhile\nstream: closed\n"
    assert nb.cells[local].outputs == []  # nothing while the cell itself ran

    # the live view: one display, updated in place, under its own cell
    shown = client.displays(view)
    assert len(shown) > 2 and "closed" in shown[-1]
    final_view = shown[-1].splitlines()[1:]
    assert wer(TRANSCRIPTS["meeting.wav"], " ".join(final_view)) <= MAX_WER, shown[-1]
    assert any(line.startswith("… ") for d in shown for line in d.splitlines()), "partials"
    assert "final lines:" in client.texts(view)

    # the emulated cloud provider: translation beside its source
    rows = [r for r in client.displays(cloud)[-1].splitlines() if "→" in r]
    assert len(rows) == 1, client.displays(cloud)[-1]
    source, translation = rows[0].split("  →  ")
    assert wer(TRANSCRIPTS["call_at_three.wav"], source) <= MAX_WER
    assert translation == f"[fr] [fr] {source}"

    # microphone + events() + interrupt
    mic_text = client.texts(mic)
    heard_mic = " ".join(
        line[len("heard:") :] for line in mic_text.splitlines() if line.startswith("heard:")
    )
    assert wer(TRANSCRIPTS["meeting.wav"], heard_mic) <= MAX_WER, mic_text
    assert mic_text.endswith("interrupted; the connection is closed\n"), mic_text
    assert any("▰" in d for d in client.displays(mic)), "the level meter moved"

    # nothing of voxsync left running in the kernel
    assert client.texts(last) == "voxsync threads left: []\n"
    # every output belongs to a cell of this run
    assert all(i >= 0 for i, _ in client.outputs()), client.outputs()
