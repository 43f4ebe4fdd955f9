"""End to end: K-means clusters of a store's offline episodes drive the cluster sampler."""

import jax
import numpy as np
from PIL import Image

from tper_jit.replay import cluster_setup, samplers, store


def _multimodal_dataset(rng, counts=(40, 10, 5)):
    """Three behaviour modes with very different episode counts (the imbalance that
    cluster-balanced sampling exists for)."""
    obs, term, rew = [], [], []
    for mode, count in enumerate(counts):
        for _ in range(count):
            ln = 30 + 10 * mode
            t = np.linspace(0, 1, ln)[:, None]
            direction = np.eye(3)[mode]
            obs.append(t * direction * 5 + rng.normal(scale=0.05, size=(ln, 3)))
            e = np.zeros(ln)
            e[-1] = 1
            term.append(e)
            rew.append(np.full(ln, -1.0 + 0.3 * mode))
    obs = np.concatenate(obs).astype(np.float32)
    return obs, np.concatenate(term), np.concatenate(rew).astype(np.float32)


def test_clusters_recover_modes_and_balance_sampling(tmp_path):
    rng = np.random.default_rng(0)
    obs, term, rew = _multimodal_dataset(rng)
    st = store.build(obs, np.zeros((len(obs), 1), np.float32), rew, term, obs)
    png = tmp_path / "clusters.png"
    st, result = cluster_setup.cluster_offline_episodes(st, 3, plot_path=png)
    ids = np.asarray(st.episodes.cluster)[: st.num_offline_episodes]
    assert result.k == 3
    # each mode is one cluster
    modes = np.repeat([0, 1, 2], [40, 10, 5])
    for m in range(3):
        assert len(set(ids[modes == m])) == 1
    assert len(set(ids)) == 3
    with Image.open(png) as im:
        assert im.size[0] > im.size[1] > 100
    cfg = samplers.SamplerConfig(kind="cluster", horizon=5)
    state = samplers.init_replay(st, cfg)
    out = jax.jit(lambda k: samplers.make_sampler(cfg)(state, k, 30_000))(jax.random.PRNGKey(0))
    mode_freq = np.bincount(modes[np.asarray(out.episode_ids)], minlength=3) / 30_000
    np.testing.assert_allclose(mode_freq, [1 / 3] * 3, atol=0.01)  # vs 0.73/0.18/0.09 uniform
