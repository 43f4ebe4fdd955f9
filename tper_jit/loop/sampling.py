"""Sampler settings from the flags: which sampler each phase uses, with which T-PER and OPER
options (shared by both phases and the benchmarks)."""

from __future__ import annotations

from tper_jit.agents import registry
from tper_jit.config.flags import TrainConfig
from tper_jit.oper import reweight as oper_reweight
from tper_jit.oper.config import OPERConfig
from tper_jit.replay import priorities, samplers


def tper_config(cfg: TrainConfig) -> priorities.TPERConfig:
    """The T-PER settings named by the seed's flags (shared by both phases)."""
    return priorities.TPERConfig(metric=cfg.metric, include_online=cfg.use_ptr_online_priority,
                                 warmup_steps=cfg.ptr_warmup_steps, backward=cfg.backward,
                                 refresh_fraction=cfg.ptr_refresh_fraction)


def oper_config(cfg: TrainConfig) -> OPERConfig | None:
    """The OPER settings of ``--oper.*``, or None when OPER is off (no resample/reweight)."""
    ocfg = OPERConfig(**cfg.oper)
    return ocfg if (ocfg.resample or ocfg.reweight) else None


def offline_sampler_config(cfg: TrainConfig) -> samplers.SamplerConfig:
    """Transition-uniform, cluster-balanced (``--cluster_sampler``) or OPER resampling
    (``--oper.resample``; with ``--oper.two_sampler`` only the actor batch is resampled)."""
    kind = "cluster" if cfg.cluster_sampler else "transition"
    ocfg = oper_config(cfg)
    if ocfg is not None and not registry.get(cfg.agent_type).loss_weights:
        raise ValueError(f"--oper.* reweights the agent's losses; --agent_type="
                         f"{cfg.agent_type} takes no loss weights (use --agent_type=acfql)")
    if ocfg is not None and ocfg.resample:
        if cfg.cluster_sampler:
            raise ValueError("--oper.resample and --cluster_sampler both choose the offline "
                             "sampler; use one of them")
        kind = oper_reweight.sampler_kinds(ocfg, kind)[0]
    return samplers.SamplerConfig(kind=kind, horizon=cfg.horizon_length, tper=tper_config(cfg))


def online_sampler_config(cfg, horizon: int) -> samplers.SamplerConfig:
    """``--use_ptr_backward`` → T-PER (transition-uniform during warmup);
    ``--symmetric_sampling`` → RLPD's offline/online mixture; else transition-uniform."""
    kind = ("tper" if cfg.use_ptr_backward else
            "mixture" if cfg.symmetric_sampling else "transition")
    return samplers.SamplerConfig(kind=kind, horizon=horizon, tper=tper_config(cfg),
                                  offline_fraction=cfg.offline_fraction)
