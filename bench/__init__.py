"""Benchmarks: each script runs alone, prints a table and writes JSON beside it."""
