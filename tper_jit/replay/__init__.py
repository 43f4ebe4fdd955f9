"""Device-side replay: episode store, chunk gather, sum-tree, priorities and samplers.

Import the submodules directly, e.g. ``from tper_jit.replay import store, samplers``.
"""
