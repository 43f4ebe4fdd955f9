"""The one learning step: sample → gather → agent update → priority update → metrics.

The offline chunk (``offline.py``), the MJX online iteration (``online.py``) and the host-env
bridge (``host.py``, through ``online.make_observe_and_learn``) all call :func:`learn_step`;
what differs between them is data in a :class:`LearnSpec` (static, built once per run), never
code.  Hooks, all static:

- OPER (``LearnSpec.oper``): per-sample loss weights from the replay's OPER state and, with
  ``two_sampler``, a second (OPER-resampled) actor batch;
- T-PER (``LearnSpec.update_mu``): the EMA of each sampled episode's μ from the per-sample |δ|
  (masked where the chunk's last step is padding), and the sampled-priority statistics
  (``LearnSpec.priority_stats``);
- cluster counts of the sampled episodes (``LearnSpec.num_clusters``) for the offline
  cluster-balance metrics.

Shapes: B = ``agent.rows_per_update(config)`` chunks of H steps per update.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
from flax import struct

from tper_jit.agents.spec import AgentSpec
from tper_jit.oper import reweight as oper_reweight
from tper_jit.oper.config import OPERConfig
from tper_jit.replay import gather, gather_seq, priorities, sample_stats, samplers


@struct.dataclass
class LearnCarry:
    """What one learning step reads and writes."""

    agent: Any  # the agent's state pytree (e.g. acfql.AgentState)
    replay: samplers.ReplayState


@dataclasses.dataclass(frozen=True)
class LearnSpec:
    """Static description of a run's learning step (see the module docstring)."""

    agent: AgentSpec
    agent_config: Any
    sampler: samplers.SamplerConfig
    prefix: str  # metric prefix: "offline_agent" | "online_agent"
    oper: OPERConfig | None = None
    num_clusters: int = 0  # > 0: log cluster counts of the sampled episodes
    priority_stats: bool = False  # T-PER sampled-priority statistics
    update_mu: bool = False  # T-PER: EMA of μ from |δ| after the update

    @property
    def batch_size(self) -> int:
        return self.agent.rows_per_update(self.agent_config)

    @property
    def two_samplers(self) -> bool:
        return self.oper is not None and self.oper.resample and self.oper.two_sampler


def make_learn_spec(agent: AgentSpec, agent_config: Any, sampler: samplers.SamplerConfig,
                    prefix: str, oper: OPERConfig | None = None, num_clusters: int = 0,
                    update_mu: bool = False) -> LearnSpec:
    """A ``LearnSpec``; refuses OPER on an agent whose update takes no loss weights."""
    if oper is not None and not agent.loss_weights:
        raise ValueError(f"--oper.* reweights the agent's losses; --agent_type={agent.name} "
                         "takes no loss weights (use --agent_type=acfql)")
    return LearnSpec(agent=agent, agent_config=agent_config, sampler=sampler, prefix=prefix,
                     oper=oper, num_clusters=num_clusters,
                     priority_stats=sampler.kind == "tper",
                     update_mu=update_mu and sampler.kind == "tper")


def gather_batch(spec: LearnSpec, replay: samplers.ReplayState,
                 s: samplers.Sample) -> gather.ChunkBatch:
    """The ``ChunkBatch`` of sampled (episode, start) pairs, with every ``s_{t+j}`` when the
    agent's critic reads the sequence."""
    acfg = spec.agent_config
    batch = gather.gather_chunks(replay.store, s.episode_ids, s.starts, acfg.horizon_length,
                                 acfg.discount)
    if spec.agent.needs_seq_observations(acfg):
        batch = gather_seq.add_seq_observations(replay.store, batch)
    return batch


def learn_step(spec: LearnSpec, carry: LearnCarry, keys: jax.Array
               ) -> tuple[LearnCarry, dict[str, jax.Array]]:
    """One gradient update.  ``keys``: ``(2, …)`` — the sampling key and the update key.

    Returns the new carry and scalar metrics ``{prefix}/<agent metric>``,
    ``{prefix}/td_abs_mean`` (+ ``ptr/sample_online/*`` with T-PER, + the ``(K,)``
    ``cluster/offline/counts`` with ``num_clusters``)."""
    k_sample, k_update = keys[0], keys[1]
    replay = carry.replay
    b = spec.batch_size
    s = samplers.make_sampler(spec.sampler)(replay, k_sample, b)
    chex.assert_shape([s.episode_ids, s.starts], (b,))
    batch = gather_batch(spec, replay, s)
    if spec.oper is None:
        agent, metrics, td_abs = spec.agent.update(carry.agent, batch, k_update)
    else:
        s_actor, actor_batch = None, None
        if spec.two_samplers:
            actor_sampler = dataclasses.replace(spec.sampler, kind="oper")
            s_actor = samplers.make_sampler(actor_sampler)(
                replay, jax.random.fold_in(k_sample, 1), b)
            actor_batch = gather_batch(spec, replay, s_actor)
        weights = oper_reweight.loss_weights(spec.oper, replay, s, s_actor)
        agent, metrics, td_abs = spec.agent.update(carry.agent, batch, k_update, weights,
                                                   actor_batch)
    chex.assert_shape(td_abs, (b,))
    out = {f"{spec.prefix}/{k}": v for k, v in metrics.items()}
    if spec.priority_stats:
        out.update(sample_stats.priority_sample_stats(replay, s))
    if spec.update_mu:
        # Padded chunks (valid_H = 0) carry no information about their episode's error.
        mask = batch.valid[:, -1] > 0
        prio, st = priorities.update_priorities(replay.priorities, replay.store, s.episode_ids,
                                                td_abs, spec.sampler.tper, mask)
        replay = replay.replace(priorities=prio, store=st)
    out[f"{spec.prefix}/td_abs_mean"] = td_abs.mean()
    if spec.num_clusters:
        out["cluster/offline/counts"] = sample_stats.cluster_counts(replay, s,
                                                                    spec.num_clusters)
    return LearnCarry(agent=agent, replay=replay), out
