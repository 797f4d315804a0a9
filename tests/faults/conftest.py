"""Collects each fault-matrix cell's outcome and prints the matrix at the end of the run."""

from __future__ import annotations

from typing import Any, Dict, Generator, Tuple

import pytest

_SYMBOLS = {
    "passed": "ok",
    "failed": "FAIL",
    "skipped": "n/a",
    "xfailed": "xfail",
    "xpassed": "XPASS",
    "error": "ERROR",
}
_results: Dict[Tuple[str, str], str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "case_name" not in params or "provider" not in params:
        return
    key = (params["case_name"], params["provider"])
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if hasattr(report, "wasxfail"):
            state = "xfailed" if report.outcome == "skipped" else "xpassed"
        else:
            state = report.outcome
        _results[key] = state
    elif report.when == "teardown" and report.outcome == "failed":
        _results[key] = "error"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results:
        return
    from faults.providers import PROVIDERS
    from faults.test_fault_matrix import CASES

    providers = list(PROVIDERS)
    width = max(len(c) for c in CASES) + 2
    col = max(max(len(p) for p in providers), 6) + 2
    tr = terminalreporter
    tr.section("fault matrix (cases x providers)")
    tr.write_line("".ljust(width) + "".join(p.ljust(col) for p in providers))
    counts: Dict[str, int] = {}
    for name in CASES:
        cells = []
        for provider in providers:
            state = _results.get((name, provider), "")
            counts[state] = counts.get(state, 0) + 1 if state else counts.get(state, 0)
            cells.append(_SYMBOLS.get(state, "-").ljust(col))
        tr.write_line(name.ljust(width) + "".join(cells))
    summary = ", ".join(f"{n} {_SYMBOLS[s]}" for s, n in sorted(counts.items()) if s)
    tr.write_line(f"{len(CASES)} cases x {len(providers)} providers: {summary}")
