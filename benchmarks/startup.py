"""Start-up times: ``import voxsync``, ``import voxsync.uhlive``, ``voxsync --help``, ...

Each figure is the median wall time of ``--repeats`` fresh interpreters
(``subprocess``, after one unmeasured warm-up run so the file cache is
warm), minus nothing: it includes the interpreter's own start. The bare
interpreter (``python -c pass``) is measured the same way and shown, so
the cost of the import itself is ``figure - bare``.

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
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent

TARGETS_MS = {"import voxsync": 40.0, "voxsync --help": 120.0}


def cases(baseline: Optional[Path] = None) -> Dict[str, Optional[List[str]]]:
    py = [sys.executable, "-c"]
    found = importlib.util.find_spec
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
        "voxsync --help": [
            *py,
            "import sys; from voxsync.cli import main; sys.exit(main(['--help']))",
        ],
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


def modules(argv: List[str]) -> Dict[str, Any]:
    """Modules the command leaves imported: a figure the machine's load cannot move."""
    code = argv[-1].replace("sys.exit(main(['--help']))", "main(['--help'])")
    probe = (
        "import contextlib, io, json, sys\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    exec({code!r})\n"
        f"print(len(sys.modules), json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [*argv[:-1], probe], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    count, _, heavy = out.partition(" ")
    return {"modules": int(count), "heavy": json.loads(heavy)}


def measure(argv: List[str], repeats: int) -> List[float]:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
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
        f"{'':<44} {'median ms':>9} {'min ms':>7} {'import ms':>9}  {'modules':>7} "
        f"{'heavy packages loaded':<24} target"
    )
    table = cases()
    if args.baseline is not None:
        table.update(cases(args.baseline))
    for name, argv in table.items():
        if argv is None:
            print(f"{name:<44} {'(not installed)':>9}")
            continue
        times = measure(argv, args.repeats)
        median = 1000 * statistics.median(times)
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
            "target_ms": target,
        }
        print(
            f"{name:<44} {median:>9.1f} {1000 * min(times):>7.1f} {net:>9.1f}  "
            f"{loaded['modules']:>7} {','.join(loaded['heavy']) or '-':<24} {verdict}"
        )
    codec = rows.get("vendor: import uhlive.stream.conversation")
    if codec:
        ratio = rows["from voxsync.uhlive import Conversation"]["import_ms"] / max(
            codec["import_ms"], 0.1
        )
        rows["uhlive_import_ratio"] = round(ratio, 2)
        print(
            f"from voxsync.uhlive import Conversation / vendor codec (import time): "
            f"{ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'NOT met'})"
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
