"""Packaging: a lean client install, the emulators extra, build system, license."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from blocked import run_without_server_packages

ROOT = Path(__file__).resolve().parent.parent
SERVER_ONLY = {"websockets", "werkzeug"}  # simple-websocket also comes with python-engineio
#: The Palabra emulator's speech synthesizer (eSpeak NG and its voices), emulators only.
SYNTHESIZER = {"espeakng-loader"}


def _read_setup_cfg() -> dict:
    from setuptools.config.setupcfg import read_configuration

    return read_configuration(str(ROOT / "setup.cfg"))


def _names(requirements: list) -> set:
    import re

    return {re.split(r"[\s<>=!\[;~]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def test_server_packages_are_in_the_emulators_extra_only() -> None:
    options = _read_setup_cfg()["options"]
    required = _names(options["install_requires"])
    emulators = _names(options["extras_require"]["emulators"])
    assert not (required & (SERVER_ONLY | SYNTHESIZER | {"simple-websocket"}))
    assert emulators == SERVER_ONLY | SYNTHESIZER | {"simple-websocket"}


def test_build_system_and_license() -> None:
    tomllib = pytest.importorskip("tomllib")

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert any(r.startswith("setuptools") for r in pyproject["build-system"]["requires"])
    metadata = _read_setup_cfg()["metadata"]
    assert metadata["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "setup.py").exists()  # kept as a shim
    run_sh = (ROOT / "tests" / "run.sh").read_text()
    extras = re.search(r'pip install -q -e "\.\[([a-z,-]+)\]"', run_sh)
    assert extras is not None and "emulators" in extras.group(1).split(",")


def test_the_main_job_runs_without_the_server_packages() -> None:
    """What a lean install has is enough for the README's first command."""
    sample = ROOT / "samples" / "audio" / "quick_brown_fox.wav"
    result = run_without_server_packages(["transcribe", "--no-partials", str(sample)])
    assert result.returncode == 0, result.stderr
    assert "brown fox" in result.stdout.lower()


@pytest.mark.timeout(300)
def test_pip_resolves_a_lean_install(tmp_path: Path) -> None:
    """``pip install .`` (resolved for a fresh environment) brings no server package."""
    report = tmp_path / "report.json"
    base = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"]
    for target, expect_server in ((".", False), (".[emulators]", True)):
        subprocess.run(
            [*base, "--report", str(report), target],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=280,
        )
        names = {
            item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]
        }
        assert "voxsync" in names
        assert (names >= SERVER_ONLY) is expect_server, sorted(names)
        assert (SERVER_ONLY & names) == (SERVER_ONLY if expect_server else set())
