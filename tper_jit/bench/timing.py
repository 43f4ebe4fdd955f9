"""The benchmarks' one timing pattern: compile once, then time repeated calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax


def time_calls(fn: Callable[[Any], tuple[Any, Any]], carry: Any, repeats: int
               ) -> tuple[Any, float, list[float]]:
    """``carry, out = fn(carry)``: the first call (compile + run) is timed apart, then
    ``repeats`` calls, each waited for.  Returns ``(carry, compile_s, [seconds per call])``."""
    t0 = time.perf_counter()
    carry, out = fn(carry)
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        carry, out = fn(carry)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
    return carry, compile_s, times
