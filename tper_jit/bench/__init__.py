"""Benchmarks: ``python -m tper_jit.bench {sampler}`` (see docs/benchmarks.md).

Every benchmark compiles first (compile time reported apart), times steady state with
``block_until_ready``, and prints ratios against a baseline measured in the same run.
"""
