"""The fault matrix (see test_fault_matrix.py)."""
