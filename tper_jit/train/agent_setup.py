"""Which agent the trainer runs (``--agent_type``) and how the loop drives it.

Every agent module has ``init(key, obs_dim, action_dim, config)``, ``update(state, batch, key,
weights=None) -> (state, metrics, td_abs (B,))`` and ``act(state, obs, key)``; they differ in
how much data one ``update`` eats and in how many updates an env step earns:

- ``acfql``: one gradient step on ``batch_size`` chunks per update; ``utd_ratio`` updates per
  env step.
- ``rlpd``: one UTD block per update (``utd_ratio`` critic steps on ``batch_size`` chunks each,
  then one actor and one temperature step: ``batch_size · utd_ratio`` chunks); one update per
  env step.  Evaluation acts with the mean action (tanh μ).

Top-level flags set what the loop and the data share: ``--horizon_length``, ``--discount``,
``--utd_ratio`` (RLPD), the SARSA target (ACFQL).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tper_jit.agents import acfql, rlpd

AGENT_TYPES = ("acfql", "rlpd")


def module(agent_type: str) -> ModuleType:
    if agent_type not in AGENT_TYPES:
        raise ValueError(f"--agent_type must be one of {AGENT_TYPES}, got {agent_type!r}")
    return acfql if agent_type == "acfql" else rlpd


def module_of(acfg: Any) -> ModuleType:
    """The agent module of a config instance."""
    return rlpd if isinstance(acfg, rlpd.RLPDConfig) else acfql


def config_class(agent_type: str) -> type:
    return module(agent_type).ACFQLConfig if agent_type == "acfql" else rlpd.RLPDConfig


def agent_config(cfg) -> Any:
    """The agent config: top-level flags set H, γ (and the SARSA target for ACFQL, the UTD
    ratio for RLPD); ``--agent.*`` the rest."""
    shared = {"horizon_length": cfg.horizon_length, "discount": cfg.discount}
    if cfg.agent_type == "acfql":
        shared |= {"use_weighted_target": cfg.use_weighted_target, "beta": cfg.beta}
    else:
        shared |= {"utd_ratio": cfg.utd_ratio}
        if cfg.use_weighted_target:
            raise ValueError("--use_weighted_target is an ACFQL option (--agent_type=acfql)")
    for k in shared:
        if k in cfg.agent:
            raise ValueError(f"--agent.{k} is set by the top-level flag --{k}; use that")
    return config_class(cfg.agent_type)(**{**cfg.agent, **shared})


def rows_per_update(acfg: Any) -> int:
    """Chunks one ``update`` consumes."""
    return acfg.rows_per_update if isinstance(acfg, rlpd.RLPDConfig) else acfg.batch_size


def updates_per_env_step(acfg: Any, utd_ratio: int) -> int:
    """``update`` calls per env step (RLPD's UTD happens inside its update)."""
    return 1 if isinstance(acfg, rlpd.RLPDConfig) else utd_ratio


def exec_horizon(acfg: Any) -> int:
    """Env steps executed per policy call: H with action chunking, else 1."""
    return acfg.horizon_length if acfg.action_chunking else 1


def act_fn(acfg: Any, evaluation: bool = False):
    """``act(state, obs, key) -> (B, K)``; RLPD evaluates its mean action."""
    if isinstance(acfg, rlpd.RLPDConfig):
        return lambda state, obs, key: rlpd.act(state, obs, key, deterministic=evaluation)
    return acfql.act
