"""``python -m voxsync``: the ``voxsync`` command."""

import sys

from voxsync.cli import main

if __name__ == "__main__":
    sys.exit(main())
