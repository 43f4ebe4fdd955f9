"""On-device statistics of a sampled batch, for the seed's logging namespaces.

Computed inside the jitted step and averaged over a chunk of steps by the trainer:
``ptr/sample_online/*`` (what T-PER drew) and ``cluster/offline/*`` (how evenly clusters were
drawn; the host turns the accumulated counts into entropy / KL / ESS with
``clustering.cluster_sampling_stats``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tper_jit.replay import priorities
from tper_jit.replay.samplers import ReplayState, Sample
from tper_jit.replay.store import ONLINE


def priority_sample_stats(state: ReplayState, sample: Sample) -> dict[str, jax.Array]:
    """Scalars describing a T-PER batch: sampled p(τ) mean/std, relative start position
    (0 = episode start, 1 = last chunk start), success share, online share, mean μ."""
    t = state.store.episodes
    ids = sample.episode_ids
    p_ep = priorities.slot_probability(state.priorities, ids)
    length = jnp.maximum(t.length[ids], 1)
    rel = sample.starts / jnp.maximum(length - 1, 1)
    return {
        "ptr/sample_online/priority_mean": p_ep.mean(),
        "ptr/sample_online/priority_std": p_ep.std(),
        "ptr/sample_online/start_rel_mean": rel.mean(),
        "ptr/sample_online/success_share": t.success[ids].mean(),
        "ptr/sample_online/online_share": (t.source[ids] == ONLINE).mean(),
        "ptr/sample_online/mu_mean": t.mu[ids].mean(),
        "ptr/sample_online/unique_episodes": _num_unique(ids).astype(jnp.float32),
    }


def cluster_counts(state: ReplayState, sample: Sample, num_clusters: int) -> jax.Array:
    """``(num_clusters,)`` float32 draws per cluster in this batch (unclustered ignored)."""
    c = state.store.episodes.cluster[sample.episode_ids]
    return jnp.zeros((num_clusters,), jnp.float32).at[c].add(1.0, mode="drop")


def _num_unique(ids: jax.Array) -> jax.Array:
    s = jnp.sort(ids)
    return 1 + jnp.sum(s[1:] != s[:-1])
