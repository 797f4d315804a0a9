#!/usr/bin/env bash
# The side-by-side benchmarks in one command, from a clean clone:
#
#     bash benchmarks/run.sh            # N = 1, 10, 50, 100, 3 repeats (about an hour)
#     bash benchmarks/run.sh --quick    # N = 1, 10, 50, one repeat (a few minutes)
#
# Creates .venv-bench (voxsync with its emulators, plus the vendors' official
# SDKs, which are never dependencies of voxsync), then runs compare.py (aiOla
# and Uh!ive), compare_palabra.py and startup.py. Each prints its table and
# writes JSON to benchmarks/results/. See docs/guide/benchmarks.rst.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
if [ "${1:-}" = "--quick" ]; then
    quick=(--quick)
fi
if [ ! -x .venv-bench/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv-bench
fi
.venv-bench/bin/pip install -q -e ".[emulators]" psutil aiola==0.4.0 uhlive==2.1.0 palabra-ai==2.2.1
.venv-bench/bin/python benchmarks/compare.py "${quick[@]}"
.venv-bench/bin/python benchmarks/compare_palabra.py "${quick[@]}"
.venv-bench/bin/python benchmarks/startup.py
