"""Set-up glue: cluster a store's offline episodes and write the ids into its episode table."""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np

from tper_jit.replay import clustering
from tper_jit.replay.store import TrajectoryStore


def cluster_offline_episodes(store: TrajectoryStore, k: int | str, *, use_pca: bool = False,
                             seed: int = 0, plot_path: str | pathlib.Path | None = None
                             ) -> tuple[TrajectoryStore, clustering.ClusterResult]:
    """Run ``clustering.cluster_episodes`` on the offline block (host, once).

    Returns the store with ``episodes.cluster`` set for offline slots (online slots keep -1)
    and the clustering result (ids, K, inertias, 2-D embedding).  With ``plot_path`` a PNG
    of the clusters in PCA-2D (coloured by cluster and by return) is written.
    """
    n_off = store.num_offline_episodes
    t = store.episodes
    result = clustering.cluster_episodes(
        np.asarray(store.offline.observations), np.asarray(t.start[:n_off]),
        np.asarray(t.length[:n_off]), np.asarray(t.ret_sum[:n_off]), k, use_pca=use_pca,
        seed=seed, plot_path=plot_path)
    cluster = t.cluster.at[:n_off].set(jnp.asarray(result.ids, jnp.int32))
    return store.replace(episodes=t.replace(cluster=cluster)), result
