"""Benchmarks (not part of the default test run): ``python -m benchmarks.bench`` or ``edge bench``."""
