"""Benchmarks: ``python -m tper_jit.bench {sampler,update,online,seeds,bridge,all}``
(see docs/benchmarks.md; ``all`` runs every one within a time budget, ``suite.py``).

Every benchmark compiles first (compile time reported apart), times steady state with
``block_until_ready``, and prints ratios against a baseline measured in the same run.
"""
