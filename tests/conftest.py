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
