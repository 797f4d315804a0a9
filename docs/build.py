"""Build the documentation with warnings as errors.

    python docs/build.py [OUTPUT_DIR]       # default: docs/_build/html

Exits with Sphinx's status: non-zero on any warning. The API reference pages
are generated into docs/reference/_autosummary on every build (not committed).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sphinx.cmd.build import build_main

DOCS = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DOCS / "_build" / "html"
    shutil.rmtree(DOCS / "reference" / "_autosummary", ignore_errors=True)
    return build_main(["-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
