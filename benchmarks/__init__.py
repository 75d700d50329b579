"""Benchmarks of helios, and the fault campaign that they and the tests share."""
