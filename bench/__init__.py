"""Benchmarks that print JSON and a short table (see each module's docstring)."""
