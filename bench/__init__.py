"""Offline benchmarks for the pure detection layer (NAB and labelled AI-spend scenarios).

Run from the repository root: ``python -m bench.detect``.
"""
