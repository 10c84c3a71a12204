"""Benchmarks: figures printed by `finance bench`, never timed assertions in the test suite."""
