"""Mutation testing of voxsync's core modules with mutmut, one module at a time.

Usage (from the repository root, with the test extras and ``mutmut`` installed)::

    python benchmarks/mutation.py                      # every core module
    python benchmarks/mutation.py redact format  # some of them
    python benchmarks/mutation.py --jobs 2 --list      # jobs; list the modules
    python benchmarks/mutation.py cli --sample 300 --seed 1   # a random sample
    python benchmarks/mutation.py cli --sample 300 --seed 1 --rerun-survivors

For each module the script copies the project into a scratch directory,
writes a ``[mutmut]`` section that mutates only that module and runs only
the tests that exercise it, runs ``mutmut run``, and prints the kill rate:
killed / (killed + survived + no tests + timeout + suspicious), skipped
mutants left out. Results go to ``benchmarks/results/mutation.json`` (one
entry per module, merged with earlier runs) and each survivor is printed
as a diff, to be killed with a test. It takes minutes per module; it is not
part of CI.

With ``--sample N --seed S`` the script lets mutmut generate every mutant
of the module and record which tests reach which function, then draws N
mutant names uniformly at random without replacement (``random.Random(S)``
over the sorted names) and runs only those: the kill rate of the sample
estimates the module's, quoted with its 95 % Wilson score interval. A drawn
mutant whose function no test reaches counts as "no tests" (not killed).
``--rerun-survivors`` runs again only the mutants of the same sample that
the last recorded run of the module left alive (after tests were added):
the others keep their verdict, since adding tests cannot revive a mutant
they already killed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

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
        "tests/test_socketio_transport_details.py",
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


#: Modules whose tests open sound devices: PortAudio cannot be initialised
#: again in a process forked from one that used it, so each mutant's tests run
#: in a child of a fork server that never touched a device (it only collected
#: the tests, which opens none).
FRESH_PROCESS = {"audio/microphone.py", "audio/speaker.py"}


def _module_key(name: str) -> str:
    name = name.removeprefix("voxsync/")
    return name if name.endswith(".py") else name + ".py"


def _config(module: str, tests: List[str]) -> str:
    isolation = (
        [
            "process_isolation = forkserver",
            "forkserver_warmup = collect",
            # a mutant that makes stop() wait forever is killed after three
            # times its tests' clean duration plus 10 s, not mutmut's 15 times
            "timeout_multiplier = 3.0",
            "timeout_constant = 10.0",
        ]
        if module in FRESH_PROCESS
        else []
    )
    lines = [
        "",
        "[mutmut]",
        "source_paths = voxsync",
        f"only_mutate = voxsync/{module}",
        *isolation,
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


#: mutmut statuses that count as killed, and the ones that count against
KILLED = ("killed", "timeout")
COUNTED = ("killed", "timeout", "survived", "no tests", "suspicious", "segfault")


def wilson(killed: int, n: int, z: float = 1.96) -> Tuple[float, float]:
    """95 % Wilson score interval of a proportion ``killed / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _mutmut(work: Path, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    mutmut = Path(sys.executable).with_name("mutmut")
    return subprocess.run(
        [str(mutmut), *args],
        cwd=work,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
        text=True,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def _statuses(work: Path) -> Dict[str, str]:
    """Every mutant name of the run with its mutmut status."""
    listing = _mutmut(work, "results", "--all", "true", quiet=True).stdout
    found: Dict[str, str] = {}
    for line in listing.splitlines():
        name, sep, status = line.strip().partition(": ")
        if sep and name.startswith("voxsync."):
            found[name] = status.strip()
    return found


def _untested(work: Path, names: Sequence[str]) -> List[str]:
    """The mutants among ``names`` whose function no selected test reaches.

    Read from the test map mutmut recorded (``mutmut print-time-estimates``
    would rebuild that map without the mutants and lose it).
    """
    stats = json.loads((work / "mutants" / "mutmut-stats.json").read_text())
    reached = {k for k, v in stats["tests_by_mangled_function_name"].items() if v}
    return [n for n in names if n.partition("__mutmut_")[0] not in reached]


def _show_survivors(work: Path, survivors: Sequence[str]) -> None:
    for name in survivors:
        shown = _mutmut(work, "show", name, quiet=True).stdout
        diff = [ln for ln in shown.splitlines() if ln[:1] in "+-" and ln[:3] not in "+++---"]
        print(f"  survivor {name}:")
        for ln in diff:
            print(f"      {ln}")


def run_module(
    module: str,
    jobs: int,
    keep: bool,
    sample: Optional[int] = None,
    seed: int = 0,
    rerun: Optional[Dict[str, str]] = None,
) -> Dict[str, object]:
    """Run mutmut on ``module``: every mutant, a random ``sample`` of them,
    or (``rerun``: earlier statuses of a sample) that sample's survivors."""
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
        started = time.monotonic()
        result: Dict[str, object] = {"module": f"voxsync/{module}", "tests": tests}
        if sample is None and rerun is None:
            _mutmut(work, "run", "--max-children", str(jobs), quiet=True)
            statuses = _statuses(work)
            chosen = sorted(statuses)
        else:
            # generate the mutants and record which tests reach them; the
            # filter matches no mutant, so mutmut stops before running any
            for attempt in (1, 2):
                prepared = _mutmut(
                    work, "run", "--max-children", str(jobs), "voxsync.no-such-mutant", quiet=True
                )
                if (work / "mutants" / "mutmut-stats.json").exists():
                    break
                # the test run that maps tests to functions failed (a flaky
                # test on a busy machine): show why, and try once more
                print("\n".join(prepared.stdout.replace("\r", "\n").splitlines()[-30:]))
                if attempt == 2:
                    raise SystemExit("mutmut could not map the tests to the module's functions")
            every = sorted(_statuses(work))
            if rerun is not None:
                chosen = sorted(rerun)
                missing = [n for n in chosen if n not in every]
                if missing:
                    raise SystemExit(f"the code changed since the sample was drawn: {missing[:3]}")
                todo = [n for n, st in rerun.items() if st not in KILLED]
            else:
                assert sample is not None
                chosen = sorted(random.Random(seed).sample(every, min(sample, len(every))))
                todo = chosen
            untested = set(_untested(work, todo))
            to_run = [n for n in todo if n not in untested]
            print(f"  {len(every)} mutants; running {len(to_run)} of a sample of {len(chosen)}")
            for attempt in (1, 2):
                if not to_run:
                    break
                ran = _mutmut(work, "run", "--max-children", str(jobs), *to_run, quiet=True)
                if any(_statuses(work).get(n) != "not checked" for n in to_run):
                    break
                # mutmut stopped before the first mutant (its clean run of
                # the tests failed: a flaky test on a busy machine)
                print("\n".join(ran.stdout.replace("\r", "\n").splitlines()[-30:]))
                if attempt == 2:
                    raise SystemExit("mutmut ran none of the mutants")
            fresh = _statuses(work)
            statuses = dict(rerun or fresh)  # a mutant not run again keeps its verdict
            statuses.update({n: fresh.get(n, "not checked") for n in to_run})
            for name in untested.intersection(todo):
                statuses[name] = "no tests"
            result["sample"] = {"size": len(chosen), "of": len(every), "seed": seed}
        counts: Dict[str, int] = {}
        for name in chosen:
            status = statuses.get(name, "not checked")
            counts[status] = counts.get(status, 0) + 1
        survivors = [n for n in chosen if statuses.get(n) not in KILLED]
        _show_survivors(work, survivors)
        counted = sum(counts.get(k, 0) for k in COUNTED)
        killed = sum(counts.get(k, 0) for k in KILLED)
        result.update(
            {
                "stats": counts,
                "killed": killed,
                "counted": counted,
                "kill_rate": round(killed / counted, 3) if counted else None,
                "interval95": [round(x, 3) for x in wilson(killed, counted)] if counted else None,
                "seconds": round(time.monotonic() - started, 1),
                "survivors": survivors,
                "statuses": {n: statuses.get(n, "not checked") for n in chosen},
                "date": time.strftime("%Y-%m-%d"),
            }
        )
        return result
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
    parser.add_argument("--sample", type=int, help="run only N mutants drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="run again the survivors of the module's last recorded sample",
    )
    args = parser.parse_args()
    # tests that press Ctrl+C need SIGINT, which a shell ignores in a job it
    # starts in the background; a handler (unlike SIG_IGN) is not inherited
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
        rerun = None
        if args.rerun_survivors:
            earlier = results.get(f"voxsync/{module}", {})
            rerun = earlier.get("statuses")
            if not rerun:
                print(f"voxsync/{module}: no earlier run recorded", file=sys.stderr)
                return 2
        result = run_module(module, args.jobs, args.keep, args.sample, args.seed, rerun)
        if rerun is not None:
            result["sample"] = results[f"voxsync/{module}"].get("sample")
        results[result["module"]] = result
        rate = result["kill_rate"]
        interval = result["interval95"]
        low, high = interval if isinstance(interval, list) else (0.0, 1.0)
        print(
            f"voxsync/{module}: kill rate {rate:.1%} ({result['killed']} of {result['counted']}, "
            f"95 % interval {low:.1%} to {high:.1%}; {result['stats']}) in {result['seconds']} s"
            if rate is not None
            else f"voxsync/{module}: no mutants"
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
