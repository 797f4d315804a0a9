"""Lazy package exports: light imports, every public name still there, unchanged.

The packages' ``__init__`` modules import their names on first use
(``voxsync._lazy``). These tests check, in fresh interpreters, what the
light imports leave out, and that the lazy names are the same objects the
eager imports gave (also when a submodule shares an exported name).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "voxsync",
    "voxsync.aiola",
    "voxsync.audio",
    "voxsync.local",
    "voxsync.palabra",
    "voxsync.uhlive",
]
HEAVY = ("numpy", "requests", "socketio", "engineio", "websocket", "pyee", "pocketsphinx")


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _loaded_after(code: str) -> Set[str]:
    probe = (
        "import contextlib, io, sys\n"
        "before = set(sys.modules)\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    exec({code!r})\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    return set(_run(probe).split())


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_loads_none_of_its_modules(package: str) -> None:
    loaded = _loaded_after(f"import {package}")
    ours = {m for m in loaded if m.split(".")[0] == "voxsync"}
    parents = {".".join(package.split(".")[:n]) for n in range(1, package.count(".") + 2)}
    assert ours == parents | {"voxsync._lazy"}
    assert not loaded & set(HEAVY)


def test_help_and_the_uhlive_codec_load_no_runtime() -> None:
    helped = _loaded_after("from voxsync.cli import main; main(['--help'])")
    assert not helped & {*HEAVY, "voxsync.connection", "voxsync.audio.convert"}
    codec = _loaded_after("from voxsync.uhlive import Conversation")
    assert "voxsync.uhlive.conversation" in codec
    assert not codec & {*HEAVY, "voxsync.connection", "voxsync.uhlive.connection"}


def _type_checking_names(package: str) -> Set[str]:
    """Names the package binds under ``if TYPE_CHECKING:`` (what type checkers see)."""
    module = importlib.import_module(package)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in stmt.names)
                elif isinstance(stmt, ast.Assign):
                    names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_and_type_checkers_see_it(package: str) -> None:
    module = importlib.import_module(package)
    table: Dict[str, str] = vars(module)["_lazy_exports"]
    public = set(module.__all__)
    assert set(table) <= public
    assert public <= set(dir(module))
    # every lazy name is imported for type checkers too, and nothing else is
    assert _type_checking_names(package) - {"raise_on_error"} == set(table)
    for name in sorted(public):
        value = getattr(module, name)
        if name in table:
            assert value is getattr(importlib.import_module(table[name]), name), name
    with pytest.raises(AttributeError, match="no attribute"):
        getattr(module, "no_such_name")  # noqa: B009


def test_a_submodule_never_replaces_an_export_of_the_same_name() -> None:
    out = _run(
        "import voxsync.connection, voxsync.audio.convert\n"  # the submodules first
        "import voxsync, voxsync.audio, voxsync.providers\n"
        "from voxsync.audio.convert import convert\n"
        "assert voxsync.connection is voxsync.providers.connection\n"
        "assert voxsync.audio.convert is convert\n"
        "from voxsync.connection import Connection\n"
        "assert voxsync.Connection is Connection\n"
        "assert callable(voxsync.connection)\n"
        "import voxsync.local\n"  # a provider importing the runtime after the name resolved
        "assert voxsync.connection is voxsync.providers.connection\n"
        "assert voxsync.errors.VoxsyncError is voxsync.VoxsyncError\n"  # as when imported eagerly
        "print('ok')\n"
    )
    assert out.strip() == "ok"
