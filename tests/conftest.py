"""Shared test set-up: CPU JAX, quiet logs, one persistent compilation cache per session.

Many tests compile the same MJX programs (same env, same shapes) from different closures;
the persistent cache keys on the compiled program, so later compiles of an identical program
(in this process, in the other pytest-xdist worker, or in the subprocess tests, which inherit
the variable) load it instead.  With ``-n 2`` both workers share one cache folder per run
(named after xdist's run id).
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if _run:
        _cache = os.path.join(tempfile.gettempdir(), f"tper_jit_xla_{_run}")
        os.makedirs(_cache, exist_ok=True)
    else:
        _cache = tempfile.mkdtemp(prefix="tper_jit_xla_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1.0")

# The inner tier (`python3 -m pytest -q -m fast`, a few minutes on two cores): the replay
# core, samplers, priorities, config / flags / presets, the task resolver, data loaders,
# statistics, plots, the layering test.  No MJX compilation and no training run is in it;
# run the whole suite (the README's command) before pushing.
FAST_FILES = {
    "test_bad_input.py", "test_cluster_sampling.py", "test_clustering.py", "test_cpu_suite.py",
    "test_data_generated.py", "test_data_ogbench.py", "test_data_robomimic.py",
    "test_layers.py", "test_lint.py", "test_quiet_start.py", "test_plots.py", "test_presets.py",
    "test_priorities.py", "test_progress.py", "test_qc_flags.py",
    "test_reference_tper.py", "test_run_curve.py", "test_sample_stats.py", "test_samplers.py",
    "test_seed_axis.py",
    "test_stats.py", "test_store_gather.py", "test_sum_tree.py", "test_tasks.py",
    "test_train_config.py",
}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.path.name in FAST_FILES:
            item.add_marker(pytest.mark.fast)
