"""Mutation testing of voxsync's core modules with mutmut, one module at a time.

Usage (from the repository root, with the test extras and ``mutmut`` installed)::

    python benchmarks/mutation.py                      # every core module
    python benchmarks/mutation.py redact format  # some of them
    python benchmarks/mutation.py --jobs 2 --list      # jobs; list the modules

For each module the script copies the project into a scratch directory,
writes a ``[mutmut]`` section that mutates only that module and runs only
the tests that exercise it, runs ``mutmut run``, and prints the kill rate:
killed / (killed + survived + no tests + timeout + suspicious), skipped
mutants left out. Results go to ``benchmarks/results/mutation.json`` (one
entry per module, merged with earlier runs) and each survivor is printed
as a diff, to be killed with a test. It takes minutes per module; it is not
part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"

#: module (relative to voxsync/) -> the test files that exercise it
MODULES: Dict[str, List[str]] = {
    "redact.py": ["tests/test_events_errors.py", "tests/test_guards.py"],
    "format.py": [
        "tests/test_audio_format.py",
        "tests/test_audio_convert.py",
        "tests/test_connection.py",
        "tests/test_format_details.py",
    ],
    "audio/g711.py": ["tests/test_audio_convert.py"],
    "audio/convert.py": [
        "tests/test_audio_convert.py",
        "tests/test_convert_details.py",
        "tests/test_guards.py",
    ],
    "audio/pacing.py": ["tests/test_audio_files.py"],
    "audio/files.py": ["tests/test_audio_files.py"],
    "audio/microphone.py": [
        "tests/test_audio_microphone.py",
        "tests/test_microphone_details.py",
        "tests/test_guards.py",
    ],
    "audio/speaker.py": ["tests/test_speaker.py", "tests/test_speaker_details.py"],
    "audio/sink.py": ["tests/test_connection_contract.py", "tests/test_audio_files.py"],
    "uhlive/conversation.py": [
        "tests/test_uhlive_codec.py",
        "tests/test_conversation_details.py",
        "tests/test_codec_properties.py",
        "tests/test_guards.py",
    ],
    "uhlive/recognition.py": ["tests/test_uhlive_bot_codec.py", "tests/test_codec_properties.py"],
    "aiola/protocol.py": ["tests/test_aiola_protocol.py", "tests/test_codec_properties.py"],
    "aiola/stream.py": [
        "tests/test_aiola_client.py",
        "tests/test_codec_properties.py",
        "tests/test_guards.py",
    ],
    "palabra/codec.py": ["tests/test_palabra_codec.py", "tests/test_codec_properties.py"],
    "palabra/realtime.py": [
        "tests/test_palabra_realtime_codec.py",
        "tests/test_codec_properties.py",
    ],
    "connection.py": [
        "tests/test_connection.py",
        "tests/test_connection_contract.py",
        "tests/test_connection_details.py",
        "tests/test_guards.py",
    ],
    "pool.py": ["tests/test_pool.py", "tests/test_pool_details.py", "tests/test_connection.py"],
    "cli.py": [
        "tests/test_cli.py",
        "tests/test_cli_details.py",
        "tests/test_providers.py",
        "tests/test_batch.py",
    ],
}


def _module_key(name: str) -> str:
    name = name.removeprefix("voxsync/")
    return name if name.endswith(".py") else name + ".py"


def _config(module: str, tests: List[str]) -> str:
    lines = [
        "",
        "[mutmut]",
        "source_paths = voxsync",
        f"only_mutate = voxsync/{module}",
        "also_copy =",
        "    samples",
        "pytest_add_cli_args_test_selection =",
        *(f"    {t}" for t in tests),
        "pytest_add_cli_args =",
        "    -p",
        "    no:cacheprovider",
        "    -q",
        "    -x",
        "    -k",
        "    not test_listen_exits",
        "",
    ]
    return "\n".join(lines)


def run_module(module: str, jobs: int, keep: bool) -> Dict[str, object]:
    tests = MODULES[module]
    work = Path(tempfile.mkdtemp(prefix="voxsync-mutation-"))
    try:
        for name in ("voxsync", "tests", "samples"):
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("setup.py", "ruff.toml"):
            shutil.copy2(ROOT / name, work / name)
        # the project's [mutmut] section is replaced by this module's
        cfg = re.sub(r"(?ms)^\[mutmut\]$.*?(?=^\[|\Z)", "", (ROOT / "setup.cfg").read_text())
        (work / "setup.cfg").write_text(cfg + _config(module, tests))
        mutmut = Path(sys.executable).with_name("mutmut")
        started = time.monotonic()
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(jobs)],
            cwd=work,
            stdout=subprocess.DEVNULL,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        subprocess.run(
            [str(mutmut), "export-cicd-stats"], cwd=work, capture_output=True, check=True
        )
        stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
        listing = subprocess.run(
            [str(mutmut), "results"], cwd=work, capture_output=True, text=True, check=False
        ).stdout
        survivors = [
            line.strip().split(":")[0] for line in listing.splitlines() if line.strip()
        ]
        for name in survivors:
            shown = subprocess.run(
                [str(mutmut), "show", name], cwd=work, capture_output=True, text=True, check=False
            ).stdout
            diff = [ln for ln in shown.splitlines() if ln[:1] in "+-" and ln[:3] not in "+++---"]
            print(f"  survivor {name}:")
            for ln in diff:
                print(f"      {ln}")
        counted = sum(
            int(stats.get(k, 0))
            for k in ("killed", "survived", "no_tests", "timeout", "suspicious", "segfault")
        )
        killed = int(stats.get("killed", 0)) + int(stats.get("timeout", 0))
        return {
            "module": f"voxsync/{module}",
            "tests": tests,
            "stats": stats,
            "kill_rate": round(killed / counted, 3) if counted else None,
            "seconds": round(time.monotonic() - started, 1),
            "survivors": survivors,
            "date": time.strftime("%Y-%m-%d"),
        }
    finally:
        if keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="e.g. redact format (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel mutants (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    args = parser.parse_args()
    if args.list:
        for module, tests in MODULES.items():
            print(f"voxsync/{module}: {' '.join(tests)}")
        return 0
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        print("mutmut is not installed: pip install mutmut", file=sys.stderr)
        return 1
    modules = [_module_key(m) for m in args.modules] or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"unknown module(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for module in modules:
        print(f"voxsync/{module} ...", flush=True)
        result = run_module(module, args.jobs, args.keep)
        results[result["module"]] = result
        rate = result["kill_rate"]
        print(
            f"voxsync/{module}: kill rate {rate:.0%} ({result['stats']}) "
            f"in {result['seconds']} s"
            if rate is not None
            else f"voxsync/{module}: no mutants"
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
