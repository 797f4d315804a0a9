#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for the test suite and run it:
# system packages (PortAudio, PulseAudio for the virtual microphone, flite for
# generated speech), a virtual environment with voxsync and its test extras,
# the linters, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/system-packages.sh

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,test-dask,lint,emulators,docs]"

.venv/bin/ruff check voxsync tests samples benchmarks
.venv/bin/ruff format --check voxsync
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
