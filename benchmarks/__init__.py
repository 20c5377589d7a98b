"""Seed-scale benchmarks of the leadscore pipeline (``python -m benchmarks.run``).

Not part of the installed package: timings and peak memory are recorded in ``BENCHMARKS.md``,
never asserted in unit tests.
"""
