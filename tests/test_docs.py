"""The documentation: the Sphinx site builds with warnings as errors, and every
code block of README.rst and docs/ runs.

Python blocks of one page run in order, in one namespace, in a child process
started in a scratch directory that links to the repository's files (so
files a block writes land there), with the vendors' environment variables
pointing at emulators this test starts (aiOla, Uh!ive, Palabra); ``test_*``
functions a block defines are called. Console blocks run their
``$ voxsync ...`` lines the same way and compare the output shown. A block
preceded by ``.. snippet-test: skip, REASON`` is skipped (hardware, real
accounts, a Jupyter kernel, a server that runs until Ctrl+C); see
docs/guide/development.rst.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from voxsync.emulators.aiola import AiolaEmulator
from voxsync.emulators.palabra import PalabraEmulator
from voxsync.emulators.uhlive import UhliveEmulator

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.rst", *sorted(DOCS.rglob("*.rst"))]
PAGES = [p for p in PAGES if "_autosummary" not in p.parts and "_build" not in p.parts]
SKIP = re.compile(r"^\.\. snippet-test: skip, (?P<reason>\S.*)$")
BLOCK_TIMEOUT = 120.0


@dataclass
class Block:
    page: str
    line: int
    language: str
    code: str
    skip: str  # the reason, or ""


def blocks_of(path: Path) -> List[Block]:
    lines = path.read_text("utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)\.\. code-block:: (\w+)\s*$", line)
        if not m:
            continue
        indent = len(m.group(1))
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith(":"):  # directive options
            j += 1
        body: List[str] = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            body.append(lines[j])
            j += 1
        while body and not body[-1].strip():
            body.pop()
        code = "\n".join(body)
        margin = min(len(b) - len(b.lstrip()) for b in body if b.strip())
        code = "\n".join(b[margin:] for b in body).strip("\n") + "\n"
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        skip = SKIP.match(lines[k].strip()) if k >= 0 else None
        found.append(
            Block(
                str(path.relative_to(ROOT)),
                i + 1,
                m.group(2),
                code,
                skip.group("reason") if skip else "",
            )
        )
    return found


ALL = [b for page in PAGES for b in blocks_of(page)]


def test_every_code_block_is_runnable_or_says_why_not() -> None:
    languages = {b.language for b in ALL}
    assert languages <= {"python", "console", "text"}, languages
    assert sum(b.language == "python" and not b.skip for b in ALL) >= 15
    skipped = [b for b in ALL if b.skip]
    for b in skipped:
        assert re.search(
            r"microphone|account|Jupyter kernel|until Ctrl\+C|telephone|audio device", b.skip
        ), (b.page, b.line, b.skip)


# ------------------------------------------------------------ python blocks

RUNNER = r"""
import json, re, sys, tempfile, threading, time, traceback
from pathlib import Path
import pytest

blocks = json.loads(sys.stdin.read())
ns = {"__name__": "__docs__"}
results = []
for block in blocks:
    try:
        if re.search(r"^def test_", block["code"], re.M):
            # an example for the user's own test suite: run it with pytest
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"test_snippet_{block['line']}.py"
                path.write_text(block["code"])
                code = pytest.main([str(path), "-q", "-p", "no:cacheprovider"])
            if code != 0:
                raise AssertionError(f"pytest exit status {code}")
        else:
            exec(compile(block["code"], f"{block['page']}:{block['line']}", "exec"), ns)
        results.append({"line": block["line"], "ok": True})
    except BaseException:
        results.append({"line": block["line"], "ok": False, "error": traceback.format_exc()})
        break
deadline = time.monotonic() + 5
def left():
    return [t.name for t in threading.enumerate()
            if t.name.startswith("voxsync-") and not t.name.startswith("voxsync-emulator-")]
while left() and time.monotonic() < deadline:
    time.sleep(0.05)
print("\n@@RESULTS@@" + json.dumps({"results": results, "threads": left()}))
"""


@pytest.fixture(scope="module")
def emulators() -> Iterator[Dict[str, str]]:
    with AiolaEmulator() as aiola, UhliveEmulator() as uhlive, PalabraEmulator() as palabra:
        env = dict(uhlive.env())
        env.update(palabra.env())
        env.setdefault("UHLIVE_API_CLIENT", "docs-client")
        env.setdefault("UHLIVE_API_SECRET", "docs-secret")
        env.update(
            AIOLA_BASE_URL=aiola.base_url,
            AIOLA_AUTH_BASE_URL=aiola.base_url,
            AIOLA_API_KEY="docs-key",
        )
        yield env


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A working directory that shows the repository's files (samples, README.rst,
    ...) through symbolic links, so the files a block writes land here."""
    for entry in ROOT.iterdir():
        if not entry.name.startswith((".", "_")):
            (tmp_path / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return tmp_path


PY_PAGES = sorted({b.page for b in ALL if b.language == "python" and not b.skip})


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", PY_PAGES)
def test_python_blocks_run(page: str, emulators: Dict[str, str], scratch: Path) -> None:
    blocks = [b for b in ALL if b.page == page and b.language == "python" and not b.skip]
    payload = json.dumps([{"page": b.page, "line": b.line, "code": b.code} for b in blocks])
    env = {**os.environ, **emulators, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_CURRENT_TEST", None)
    run = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=payload,
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT * len(blocks),
        check=False,
    )
    assert "@@RESULTS@@" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    out, _, tail = run.stdout.rpartition("@@RESULTS@@")
    report = json.loads(tail)
    failed = [r for r in report["results"] if not r["ok"]]
    assert not failed, f"{page}:{failed[0]['line']}\n{failed[0]['error']}\n{out[-2000:]}"
    assert len(report["results"]) == len(blocks)
    assert report["threads"] == [], report["threads"]


# ----------------------------------------------------------- console blocks


def commands_of(block: Block) -> List[Tuple[str, List[str]]]:
    """(command, expected output lines) for each ``$`` line of a console block."""
    out: List[Tuple[str, List[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


CONSOLE = [b for b in ALL if b.language == "console" and not b.skip]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("block", CONSOLE, ids=[f"{b.page}:{b.line}" for b in CONSOLE])
def test_console_blocks_run(block: Block, emulators: Dict[str, str], scratch: Path) -> None:
    commands = commands_of(block)
    assert commands, "a console block shows at least one command"
    for command, expected in commands:
        argv = shlex.split(command.split("  #", 1)[0])
        assert argv[0] == "voxsync", f"only voxsync commands run here: {command}"
        run = subprocess.run(
            [sys.executable, "-m", "voxsync", *argv[1:]],
            cwd=scratch,
            env={**os.environ, **emulators, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        got = (run.stdout + run.stderr).strip().splitlines()
        pattern = "\n".join(re.escape(line).replace(r"\.\.\.", ".*") for line in expected)
        assert re.fullmatch(pattern, "\n".join(got), re.DOTALL), (command, got)


# ------------------------------------------------------------------- build


@pytest.mark.timeout(900)
def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    if not os.environ.get("CI"):  # under CI a missing Sphinx fails the test
        pytest.importorskip("sphinx", reason='install the docs extra: pip install -e ".[docs]"')
    run = subprocess.run(
        [sys.executable, str(DOCS / "build.py"), str(tmp_path / "html")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    html = (tmp_path / "html" / "index.html").read_text("utf-8")
    for page in (
        "guide/connection.html",
        "guide/runtime.html",
        "guide/jupyter.html",
        "guide/palabra.html",
        "guide/palabra-stt.html",
        "guide/palabra-tts.html",
        "reference/api.html",
    ):
        assert page in html, page
    api = (tmp_path / "html" / "reference" / "_autosummary").glob("voxsync.*.html")
    modules = {p.stem for p in api}
    assert {
        "voxsync.connection",
        "voxsync.notebook",
        "voxsync.audio.files",
        "voxsync.palabra",
        "voxsync.wsconnection",
        "voxsync.request",
        "voxsync.batch",
        "voxsync.transport.http",
        "voxsync.transport.socketio",
        "voxsync.emulators.palabra",
    } <= modules
    assert not any(".__" in m or "._" in m for m in modules), modules
