"""Run voxsync's command as a lean install would: the server-only packages cannot be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent

#: The packages of the ``emulators`` extra, by import name.
SERVER_PACKAGES = ("websockets", "werkzeug", "simple_websocket")

_SCRIPT = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Block())
from voxsync.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_without_server_packages(
    argv: List[str], timeout: float = 120
) -> subprocess.CompletedProcess:
    """``voxsync ARGV`` in a subprocess where the server packages are missing."""
    script = _SCRIPT.format(blocked=set(SERVER_PACKAGES))
    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
