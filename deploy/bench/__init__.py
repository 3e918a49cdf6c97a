"""Benchmarks behind `make bench-*`: each prints its figures and writes a results file in .local/bench/."""
