"""The fused offline trainer: one jitted ``lax.scan`` of K gradient steps per chunk.

One step = sample (transition-uniform, or cluster-balanced with ``--cluster_sampler``) →
chunk gather → ACFQL update → metrics, all on device.  Metrics are averaged over the chunk
on device; the host sees one dict per chunk.  The state is donated, so the replay arrays are
updated in place.

``make_offline_trainer(cfg, dataset)`` does all host set-up once (store, clustering, agent
init) and returns an ``OfflineTrainer`` whose ``chunk(state, length)`` is the compiled chunk;
``run_offline`` is the outer loop with logging, progress and the evaluation hook.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tper_jit.agents import registry
from tper_jit.config.flags import TrainConfig
from tper_jit.data.common import FlatDataset
from tper_jit.loop.learn_step import LearnCarry, learn_step, make_learn_spec
from tper_jit.loop.sampling import offline_sampler_config, oper_config
from tper_jit.oper import reweight as oper_reweight
from tper_jit.oper.config import OPERConfig
from tper_jit.replay import cluster_setup, clustering, samplers, store


@struct.dataclass
class TrainState:
    agent: Any  # acfql.AgentState
    replay: samplers.ReplayState
    key: jax.Array  # training key (sampling and update noise), independent of the init key
    step: jax.Array  # int32 gradient steps done


@dataclasses.dataclass(frozen=True)
class OfflineTrainer:
    config: TrainConfig
    agent_config: Any  # acfql.ACFQLConfig | rlpd.RLPDConfig
    sampler_config: samplers.SamplerConfig
    num_clusters: int
    cluster_result: clustering.ClusterResult | None
    chunk: Callable  # jitted (TrainState, length: static int) -> (TrainState, metrics dict)
    init_state: TrainState  # the state of ``--seed``
    scan: Callable  # ``chunk`` before jit (the multi-seed driver vmaps it)
    init_states: tuple[TrainState, ...] = ()  # one per seed of ``seeds`` (shared replay arrays)


def build_replay(cfg: TrainConfig, dataset: FlatDataset, scfg: samplers.SamplerConfig,
                 plot_path: pathlib.Path | None = None, store_kwargs: dict | None = None
                 ) -> tuple[samplers.ReplayState, clustering.ClusterResult | None]:
    """Store + (optional) clustering + sampler states, on the host, once.  ``store_kwargs``
    size the online rings (``num_streams``, ``rows_per_stream``, ``max_episode_length``)."""
    st = store.build(**dataset.store_arrays(), **(store_kwargs or {}))
    ocfg = oper_config(cfg)
    oper_probs = None if ocfg is None else oper_reweight.dataset_priorities(dataset, ocfg)
    result = None
    if scfg.kind == "cluster":
        st, result = cluster_setup.cluster_offline_episodes(
            st, cfg.cluster_k_value, use_pca=cfg.cluster_pca, seed=cfg.cluster_seed,
            plot_path=plot_path)
    return samplers.init_replay(st, scfg, oper_probs=oper_probs), result


def make_step(acfg: Any, scfg: samplers.SamplerConfig, num_clusters: int,
              ocfg: OPERConfig | None = None):
    """The scan body: one offline gradient step (``learn_step`` with OPER reweighting / two
    samplers when ``ocfg`` says so, and the sampled cluster counts)."""
    spec = make_learn_spec(registry.spec_of(acfg), acfg, scfg, "offline_agent", oper=ocfg,
                           num_clusters=num_clusters)

    def step(state: TrainState, _):
        key, k_sample, k_update = jax.random.split(state.key, 3)
        carry, metrics = learn_step(spec, LearnCarry(agent=state.agent, replay=state.replay),
                                    jnp.stack([k_sample, k_update]))
        return state.replace(agent=carry.agent, replay=carry.replay, key=key,
                             step=state.step + 1), metrics

    return step


@functools.cache
def _jitted_init(init: Any) -> Any:
    # one compiled program instead of ~150 op-by-op compiles of flax's eager init (~10 s
    # of start-up on CPU); sizes and the frozen agent config are static
    return jax.jit(init, static_argnums=(1, 2, 3))


def init_train_state(seed: int, replay: samplers.ReplayState, obs_dim: int, action_dim: int,
                     acfg: Any) -> TrainState:
    """The step-0 state of one seed: agent from ``fold_in(PRNGKey(seed), 0)``, training key
    ``fold_in(PRNGKey(seed), 1)``; ``replay`` is shared (arrays are not copied)."""
    root = jax.random.PRNGKey(seed)
    k_init, k_train = jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)
    agent = _jitted_init(registry.spec_of(acfg).init)(k_init, obs_dim, action_dim, acfg)
    return TrainState(agent=agent, replay=replay, key=k_train, step=jnp.zeros((), jnp.int32))


def make_offline_trainer(cfg: TrainConfig, dataset: FlatDataset,
                         plot_path: pathlib.Path | None = None,
                         store_kwargs: dict | None = None,
                         seeds: tuple[int, ...] | None = None) -> OfflineTrainer:
    """Host set-up once (store, clustering with ``--cluster_seed``, agent init per seed in
    ``seeds``, default ``(cfg.seed,)``) and the compiled chunk of one seed."""
    acfg = registry.agent_config(cfg)
    scfg = offline_sampler_config(cfg)
    replay, result = build_replay(cfg, dataset, scfg, plot_path, store_kwargs)
    num_clusters = int(result.k) if result is not None else 0
    seeds = tuple(seeds) if seeds is not None else (cfg.seed,)
    states = tuple(init_train_state(s, replay, dataset.obs_dim, dataset.action_dim, acfg)
                   for s in seeds)
    state = states[0]
    step = make_step(acfg, scfg, num_clusters, oper_config(cfg))

    def chunk(state: TrainState, length: int):
        state, metrics = jax.lax.scan(step, state, None, length=length)
        out = {k: v.mean(0) for k, v in metrics.items() if k != "cluster/offline/counts"}
        if num_clusters:
            out["cluster/offline/counts"] = metrics["cluster/offline/counts"].sum(0)
        return state, out

    jitted = jax.jit(chunk, static_argnums=1, donate_argnums=0)
    return OfflineTrainer(config=cfg, agent_config=acfg, sampler_config=scfg,
                          num_clusters=num_clusters, cluster_result=result, chunk=jitted,
                          init_state=state, scan=chunk, init_states=states)


def host_metrics(metrics: dict[str, jax.Array]) -> dict[str, float]:
    """Device chunk metrics → flat floats; cluster counts → entropy / KL / ESS / fractions."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if k == "cluster/offline/counts":
            stats = clustering.cluster_sampling_stats(np.asarray(v))
            out.update({f"cluster/offline/{name}": float(x) for name, x in stats.items()})
        else:
            out[k] = float(v)
    return out
