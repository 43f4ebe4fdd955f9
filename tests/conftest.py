"""Shared test set-up: CPU JAX, quiet logs, one persistent compilation cache per session.

Many tests compile the same MJX programs (same env, same shapes) from different closures;
the persistent cache keys on the compiled program, so later compiles of an identical program
(in this process or in the subprocess tests, which inherit the variable) load it instead.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="tper_jit_xla_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1.0")
