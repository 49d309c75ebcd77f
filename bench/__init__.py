"""Benchmarks: ``python -m bench`` (or ``make bench``) prints throughput/memory tables.

Speed lives here, never in tests. See docs/benchmarks.md for results and the machines.
"""
