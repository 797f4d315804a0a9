"""tests/system-packages.sh runs apt only for what is missing (no root needed otherwise)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

import pytest

SCRIPT = Path(__file__).resolve().parent / "system-packages.sh"


def _run(tmp_path: Path, installed: List[str]) -> List[str]:
    """Run the script with stand-in dpkg-query, apt-get and sudo; return apt-get's calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "dpkg-query").write_text(
        "#!/bin/sh\n"
        "for pkg; do :; done\n"  # the last argument
        f"for p in {' '.join(installed)}; do\n"
        '  [ "$p" = "$pkg" ] && { printf "install ok installed"; exit 0; }\n'
        "done\n"
        "exit 1\n"
    )
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "sudo").write_text('#!/bin/sh\n"$@"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, timeout=30)
    return log.read_text().splitlines() if log.exists() else []


def _packages() -> List[str]:
    for line in SCRIPT.read_text().splitlines():
        if line.startswith("packages="):
            return line.split("=", 1)[1].strip('"').split()
    raise AssertionError("no packages= line in system-packages.sh")


def test_nothing_missing_runs_no_apt(tmp_path: Path) -> None:
    assert _run(tmp_path, _packages()) == []


@pytest.mark.parametrize("missing", ["flite", "pocketsphinx-testdata"])
def test_only_the_missing_package_is_installed(tmp_path: Path, missing: str) -> None:
    calls = _run(tmp_path, [p for p in _packages() if p != missing])
    assert calls[0] == "update -qq"
    assert calls[1].split()[-1] == missing and len(calls) == 2
    assert [w for w in calls[1].split() if not w.startswith("-")] == ["install", missing]
