"""The virtual-microphone fixture leaves the machine's PulseAudio as it found it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pulse
import pytest

TESTS = Path(__file__).resolve().parent

PROBE = f"""
import subprocess, sys
sys.path.insert(0, {str(TESTS)!r})
from pulse import virtual_mic, default_source, SOURCE, sink_loaded

def test_probe(virtual_mic):
    assert default_source() == SOURCE and sink_loaded()
"""


def test_session_restores_default_source_and_sink(tmp_path: Path) -> None:
    try:
        pulse._start_daemon()
        before = (pulse.default_source(), pulse.sink_loaded())
    except pulse.PulseUnavailable as exc:
        pytest.skip(f"PulseAudio unavailable: {exc}")
    (tmp_path / "test_probe.py").write_text(PROBE)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    # the session switched the default source to the sink's monitor, then put
    # back what was there; a sink it loaded is gone, one it found is kept
    assert (pulse.default_source(), pulse.sink_loaded()) == before
