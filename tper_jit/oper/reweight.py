"""Glue between OPERConfig and the trainer: priorities of a dataset, batch plans, loss weights.

- ``dataset_priorities``: normalised p ``(N,)`` — OPER-R from the dataset's returns, or
  OPER-A from ``weight_path`` — ready for ``samplers.init_replay(..., oper_probs=p)``.
- ``sampler_kinds``: which sampler draws the critic batch and which the actor batch.
- ``loss_weights``: the per-term ``acfql.LossWeights`` of a batch (N·p of every sampled
  pair on the switched-on terms, None elsewhere), or None when reweighting is off.
"""

from __future__ import annotations

import jax
import numpy as np

from tper_jit.agents.acfql import LossWeights
from tper_jit.data.common import FlatDataset
from tper_jit.oper import advantage, weights
from tper_jit.oper.config import OPERConfig
from tper_jit.replay.oper_tree import pair_loss_weights
from tper_jit.replay.samplers import ReplayState, Sample


def dataset_priorities(dataset: FlatDataset, cfg: OPERConfig) -> np.ndarray:
    """Normalised OPER priorities ``(N,)`` float64 (Σ = 1) of ``dataset`` under ``cfg``."""
    if cfg.kind == "A":
        raw = advantage.load_weights(cfg.weight_path, dataset)
    else:
        raw = weights.oper_r_weights(dataset.rewards, dataset.terminals, cfg.base_prob)
    return weights.normalize_priorities(raw, std=cfg.std, eps=cfg.eps)


def sampler_kinds(cfg: OPERConfig, base_kind: str = "transition") -> tuple[str, str | None]:
    """``(critic_kind, actor_kind)``; ``actor_kind`` None means the actor shares the batch.

    resample without two_sampler: one prioritized batch for both; with two_sampler the critic
    keeps ``base_kind`` and the actor gets its own prioritized batch.
    """
    if not cfg.resample:
        return base_kind, None
    if cfg.two_sampler:
        return base_kind, "oper"
    return "oper", None


def loss_weights(cfg: OPERConfig, replay: ReplayState, critic_sample: Sample,
                 actor_sample: Sample | None = None) -> LossWeights | None:
    """Per-term weights ``(B,)`` = N·p of the sampled pairs on the switched-on terms.

    ``actor_sample`` is the actor batch's draw under ``two_sampler`` (default: the critic's).
    None when ``cfg.reweight`` is off, so ``acfql.update`` runs exactly as unweighted.
    """
    if not cfg.reweight:
        return None
    if replay.oper is None:
        raise ValueError("OPER reweighting needs a ReplayState built with oper_probs")
    actor_sample = critic_sample if actor_sample is None else actor_sample

    def factors(s: Sample) -> jax.Array:
        return pair_loss_weights(replay.oper, replay.store, s.episode_ids, s.starts)

    f_critic = factors(critic_sample)
    f_actor = f_critic if actor_sample is critic_sample else factors(actor_sample)
    return LossWeights(critic=f_critic if cfg.reweight_eval else None,
                       actor_q=f_actor if cfg.reweight_actor_q else None,
                       bc=f_actor if cfg.reweight_bc else None,
                       distill=f_actor if cfg.reweight_distill else None)
