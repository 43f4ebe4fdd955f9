"""Per-episode reward statistics used by the reward-based priority metrics (ALGORITHM §4).

``uqm`` is the mean of the top quarter of an episode's rewards and ``uhm`` the mean of its top
half; the top fraction holds ``max(1, ceil(f * L))`` rewards.  The numpy version runs once on
the offline data at set-up; the JAX version runs inside the jitted online writer when an
episode ends.  Both compute the same numbers (tested).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

STAT_FIELDS = ("ret_sum", "ret_mean", "ret_min", "ret_uqm", "ret_uhm")


def _top_count(length, frac):
    return np.maximum(1, np.ceil(frac * length - 1e-9).astype(np.int64))


def episode_stats_np(rewards: np.ndarray, starts: np.ndarray, lengths: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """Statistics of each episode ``[starts[i], starts[i] + lengths[i])`` of ``rewards`` ``(N,)``.

    Vectorised over episodes (one lexsort), O(N log N).  Returns ``(n,)`` float32 arrays keyed
    by ``STAT_FIELDS``.
    """
    n = len(starts)
    lengths = lengths.astype(np.int64)
    ep = np.repeat(np.arange(n), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    idx = np.arange(int(lengths.sum())) - np.repeat(first, lengths) + np.repeat(starts, lengths)
    r = rewards[idx].astype(np.float64)
    sums = np.bincount(ep, weights=r, minlength=n)
    mins = np.full(n, np.inf)
    np.minimum.at(mins, ep, r)
    # Sort rewards descending inside each episode, then keep the first k of each.
    order = np.lexsort((-r, ep))
    rank = np.arange(len(r)) - np.repeat(first, lengths)
    out = {}
    for name, frac in (("ret_uqm", 0.25), ("ret_uhm", 0.5)):
        k = _top_count(lengths, frac)
        keep = rank < np.repeat(k, lengths)
        top = np.bincount(ep[order][keep], weights=r[order][keep], minlength=n)
        out[name] = (top / k).astype(np.float32)
    out["ret_sum"] = sums.astype(np.float32)
    out["ret_mean"] = (sums / np.maximum(lengths, 1)).astype(np.float32)
    out["ret_min"] = mins.astype(np.float32)
    return out


def top_means_jax(rewards: jax.Array, length: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(uqm, uhm)`` of padded reward rows ``(..., L_max)`` whose first ``length`` are real."""
    l_max = rewards.shape[-1]
    valid = jnp.arange(l_max) < length[..., None]
    desc = -jnp.sort(jnp.where(valid, -rewards, jnp.inf), axis=-1)  # descending, pads = -inf
    rank = jnp.arange(l_max)
    outs = []
    for frac in (0.25, 0.5):
        k = jnp.maximum(1, jnp.ceil(frac * length - 1e-6).astype(jnp.int32))
        keep = rank < k[..., None]
        outs.append(jnp.sum(jnp.where(keep, desc, 0.0), axis=-1) / k)
    return outs[0], outs[1]
