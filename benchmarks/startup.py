"""Start-up times: ``import voxsync``, ``import voxsync.uhlive``, ``voxsync --help``, ...

Each figure is the median wall time of ``--repeats`` fresh interpreters
(``subprocess``, after one unmeasured warm-up run so the file cache is
warm and the bytecode written, as pip writes it at install), minus
nothing: it includes the interpreter's own start. The bare interpreter
(``python -c pass``) is measured the same way and shown, so the cost of
the import itself is ``figure - bare`` (the "import ms" column). The
commands take turns (one run of each, then the next round), so a change in
the machine's load reaches every command alike. Each run also times its
own code from inside (``time.perf_counter()`` around it, the "in-proc"
column, median; the JSON has the fastest run too): the interpreter's start
does not add its noise to that one, which makes it the steadier figure on
a loaded machine.

The modules each command leaves imported are counted too (and the heavy
packages among them: numpy, requests, python-socketio, ...): unlike times,
that figure does not move with the machine's load.

The vendors' imports are measured alongside when they are installed (the
benchmark environment, see docs/guide/benchmarks.rst): ``import uhlive.stream.
conversation`` (Uh!ive's sans-I/O codec, the counterpart of
``voxsync.uhlive``'s Conversation) and ``import aiola``.

Targets: ``import voxsync`` <= 40 ms and ``voxsync --help`` <= 120 ms
(import time, bare interpreter subtracted); ``import voxsync.uhlive``
within 2x of the vendor codec's import. The package's names load on first
use, so ``import voxsync.uhlive`` alone loads almost nothing; the codec's
counterpart is ``from voxsync.uhlive import Conversation`` (the codec and its
events, what the vendor's ``import uhlive.stream.conversation`` provides),
and that is the row the ratio uses.

Writes benchmarks/results/startup.json.

``--baseline DIR`` also times the voxsync commands with voxsync imported
from another checkout, for before/after figures from one run.

Usage::

    python benchmarks/startup.py [--repeats 15] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent

TARGETS_MS = {"import voxsync": 40.0, "voxsync --help": 120.0}


def cases(baseline: Optional[Path] = None) -> Dict[str, Optional[List[str]]]:
    py = [sys.executable, "-c"]

    def found(name: str) -> bool:
        # Asked in a child started from the repository root, as the timed
        # commands are: this script's own directory (benchmarks/aiola.py,
        # benchmarks/uhlive.py) must not pass for the vendor's package.
        probe = f"import importlib.util as u; raise SystemExit(u.find_spec({name!r}) is None)"
        return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=ENV).returncode == 0

    if baseline is not None:
        return {
            f"baseline: {name}": [*py, _from(baseline, argv[2])]
            for name, argv in cases().items()
            if argv is not None and "voxsync" in name and not name.startswith("vendor")
        }
    return {
        "python -c pass": [*py, "pass"],
        "import voxsync": [*py, "import voxsync"],
        "import voxsync.uhlive": [*py, "import voxsync.uhlive"],
        "from voxsync.uhlive import Conversation": [
            *py,
            "from voxsync.uhlive import Conversation",
        ],
        "import voxsync.aiola": [*py, "import voxsync.aiola"],
        "import voxsync.palabra": [*py, "import voxsync.palabra"],
        "voxsync.connection('local')": [
            *py,
            "import voxsync; voxsync.connection('local')",
        ],
        "voxsync --help": [*py, "from voxsync.cli import main; main(['--help'])"],
        "vendor: import uhlive.stream.conversation": (
            [*py, "import uhlive.stream.conversation"] if found("uhlive") else None
        ),
        "vendor: import aiola": [*py, "import aiola"] if found("aiola") else None,
    }


def _from(baseline: Path, code: str) -> str:
    """``code`` importing voxsync from the ``baseline`` checkout (over an editable install)."""
    return (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
        "if not type(f).__module__.startswith('__editable__')]; "
        f"sys.path.insert(0, {str(baseline.resolve())!r}); " + code
    )


HEAVY = ("numpy", "requests", "urllib3", "socketio", "engineio", "websocket", "pocketsphinx")


#: Installed packages come with their bytecode compiled (pip does it), and a
#: checkout gets it on first import; an environment that forbids writing it
#: would time the compiler instead. The warm-up runs write it.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def modules(argv: List[str]) -> Dict[str, Any]:
    """Modules the command leaves imported: a figure the machine's load cannot move."""
    code = argv[-1]
    probe = (
        "import contextlib, io, json, sys\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    exec({code!r})\n"
        f"print(len(sys.modules), json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [*argv[:-1], probe], check=True, capture_output=True, text=True, cwd=ROOT, env=ENV
    ).stdout.strip()
    count, _, heavy = out.partition(" ")
    return {"modules": int(count), "heavy": json.loads(heavy)}


def _timed(argv: List[str]) -> List[str]:
    """``argv`` whose code also reports its own duration (in-process) on stderr."""
    code = (
        "import sys, time\n"
        "_t0 = time.perf_counter()\n"
        f"{argv[-1]}\n"
        "sys.stderr.write(f'{time.perf_counter() - _t0}\\n')\n"
    )
    return [*argv[:-1], code]


def measure(
    commands: Dict[str, List[str]], repeats: int
) -> Dict[str, Tuple[List[float], List[float]]]:
    """(wall times, in-process times) of each command, ``repeats`` rounds of one run each."""
    for argv in commands.values():  # warm-up: file cache, bytecode
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    times: Dict[str, Tuple[List[float], List[float]]] = {name: ([], []) for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            start = time.perf_counter()
            done = subprocess.run(
                _timed(argv),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=ENV,
            )
            times[name][0].append(time.perf_counter() - start)
            times[name][1].append(float(done.stderr.strip().splitlines()[-1]))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="also time voxsync imported from this checkout (before/after in one run)",
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json"
    )
    args = parser.parse_args()
    rows: Dict[str, Any] = {}
    bare = 0.0
    print(
        f"{'':<44} {'median ms':>9} {'min ms':>7} {'import ms':>9} {'in-proc':>7}  {'modules':>7} "
        f"{'heavy packages loaded':<24} target"
    )
    table = cases()
    if args.baseline is not None:
        table.update(cases(args.baseline))
    runs = measure({k: v for k, v in table.items() if v is not None}, args.repeats)
    for name, argv in table.items():
        if argv is None:
            print(f"{name:<44} {'(not installed)':>9}")
            continue
        times, inside = runs[name]
        median = 1000 * statistics.median(times)
        in_process = 1000 * statistics.median(inside)
        if name == "python -c pass":
            bare = median
        net = median - bare
        target = TARGETS_MS.get(name)  # baseline rows have none
        verdict = (
            "" if target is None else f"<= {target:.0f}: {'met' if net <= target else 'NOT met'}"
        )
        loaded = modules(argv)
        rows[name] = {
            **loaded,
            "median_ms": round(median, 1),
            "min_ms": round(1000 * min(times), 1),
            "import_ms": round(net, 1),
            "in_process_ms": round(in_process, 1),
            "in_process_min_ms": round(1000 * min(inside), 1),
            "target_ms": target,
        }
        print(
            f"{name:<44} {median:>9.1f} {1000 * min(times):>7.1f} {net:>9.1f} {in_process:>7.1f}  "
            f"{loaded['modules']:>7} {','.join(loaded['heavy']) or '-':<24} {verdict}"
        )
    codec = rows.get("vendor: import uhlive.stream.conversation")
    if codec:
        ours = rows["from voxsync.uhlive import Conversation"]
        ratio = ours["import_ms"] / max(codec["import_ms"], 0.1)
        inside = ours["in_process_ms"] / max(codec["in_process_ms"], 0.1)
        fastest = ours["in_process_min_ms"] / max(codec["in_process_min_ms"], 0.1)
        rows["uhlive_import_ratio"] = round(ratio, 2)
        rows["uhlive_import_ratio_in_process"] = round(inside, 2)
        rows["uhlive_import_ratio_in_process_min"] = round(fastest, 2)
        print(
            f"from voxsync.uhlive import Conversation / vendor codec: {ratio:.2f}x import time, "
            f"{inside:.2f}x in-process (median), {fastest:.2f}x in-process (fastest run) "
            f"(target <= 2x: {'met' if ratio <= 2 else 'NOT met'})"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "startup",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "repeats": args.repeats,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    for name in TARGETS_MS:
        before = rows.get(f"baseline: {name}")
        if before and rows[name]["import_ms"] > 0:
            print(f"{name}: baseline / now = {before['import_ms'] / rows[name]['import_ms']:.2f}x")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
