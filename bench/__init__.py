"""Benchmarks with targets (`make bench`): speed and memory of the poll path, measured, not asserted in tests."""
