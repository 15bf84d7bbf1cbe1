"""Benchmarks run from the CLI (`voxloop bench ...`): latency, word error rate."""
