"""voxsync: live speech for synchronous Python code."""

__version__ = "0.1.0"
