"""Benchmarks: scripts that print a table and write JSON (`python -m bench.<name> --help`).

Not tests: nothing here asserts a speed. docs/performance.md holds the figures and the
commands that produced them.
"""
