"""Branches that stay branches when S seeds are vmapped together.

Under ``jax.vmap`` a ``lax.cond`` whose predicate differs per seed becomes a ``select``:
*both* branches run for every seed.  In the online loop that meant, every iteration, a full
re-sort of the priority index (the rare overflow branch of ``priorities.sync``), both
samplers during T-PER warm-up, and the episode-finish statistics whether or not an episode
ended — the measured 2.1–2.3× per-seed slowdown of vmapped online T-PER on CPU.

``seeds.batch_chunk`` vmaps with ``axis_name=SEED_AXIS``; :func:`seed_cond` then counts the
seeds whose predicate holds (``psum`` over that axis gives an unbatched scalar) and

* when all seeds agree — the usual case: warm-up, training start and overflow are
  functions of step counts — runs one real ``cond`` (one branch executes);
* when they disagree, falls back to the per-seed ``cond`` (the select), so the result is
  exactly what each seed computes alone;
* with ``true_is_safe=True`` (the caller guarantees that ``true_fn`` returns the
  ``false_fn`` result for a seed whose predicate is False, e.g. a masked update or an
  exact recomputation) runs ``true_fn`` for all seeds as soon as any seed needs it.

Outside such a vmap (one seed, unit tests) it is a plain ``lax.cond``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["SEED_AXIS", "seed_cond"]

SEED_AXIS = "seed_vmap"  # the vmap axis name of seeds.batch_chunk (not the mesh axis)


def seed_cond(pred: jax.Array, true_fn: Callable, false_fn: Callable, *operands: Any,
              true_is_safe: bool = False) -> Any:
    """``lax.cond(pred, true_fn, false_fn, *operands)`` that keeps one branch per call when
    the seeds of a vmapped run agree (see the module docstring)."""
    try:
        n_true = jax.lax.psum(jnp.asarray(pred).astype(jnp.int32), SEED_AXIS)
        n = jax.lax.psum(1, SEED_AXIS)
    except NameError:  # not inside the seed vmap: nothing to merge
        return jax.lax.cond(pred, true_fn, false_fn, *operands)
    if true_is_safe:
        return jax.lax.cond(n_true > 0, true_fn, false_fn, *operands)

    def agreed(*ops):
        return jax.lax.cond(n_true > 0, true_fn, false_fn, *ops)

    def per_seed(*ops):
        return jax.lax.cond(pred, true_fn, false_fn, *ops)

    return jax.lax.cond((n_true == 0) | (n_true == n), agreed, per_seed, *operands)
