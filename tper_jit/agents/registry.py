"""The agent registry: ``--agent_type`` name → ``AgentSpec``, and the agent config of a run.

Every caller in the trainer goes through ``get`` (by name) or ``spec_of`` (by config instance,
a dict lookup on the config's class — never an ``isinstance`` chain, so an unregistered config
raises instead of silently running as another agent).  Adding an agent = its module with a
``SPEC`` plus one line in ``AGENTS``.

- ``acfql``: one gradient step on ``batch_size`` chunks per update; ``--utd_ratio`` updates per
  env step.
- ``rlpd``: one UTD block per update (``utd_ratio`` critic steps on ``batch_size`` chunks each,
  then one actor and one temperature step: ``batch_size · utd_ratio`` chunks); one update per
  env step.  Evaluation acts with the mean action (tanh μ).

Top-level flags set what the loop and the data share (``AgentSpec.flag_keys``):
``--horizon_length``, ``--discount``, ``--utd_ratio`` (RLPD), the SARSA target (ACFQL).
"""

from __future__ import annotations

from typing import Any

from tper_jit.agents import acfql, rlpd
from tper_jit.agents.spec import AgentSpec

AGENTS: dict[str, AgentSpec] = {
    "acfql": acfql.SPEC,
    "rlpd": rlpd.SPEC,
}
AGENT_TYPES = tuple(AGENTS)
_BY_CONFIG: dict[type, AgentSpec] = {spec.config_cls: spec for spec in AGENTS.values()}


def get(agent_type: str) -> AgentSpec:
    """The spec registered as ``agent_type`` (``--agent_type``); unknown names raise."""
    try:
        return AGENTS[agent_type]
    except KeyError:
        raise ValueError(f"--agent_type must be one of {AGENT_TYPES}, got {agent_type!r}"
                         ) from None


def spec_of(acfg: Any) -> AgentSpec:
    """The spec of a config instance (its exact class must be registered)."""
    try:
        return _BY_CONFIG[type(acfg)]
    except KeyError:
        raise TypeError(f"{type(acfg).__name__} is not the config of a registered agent "
                        f"({', '.join(AGENT_TYPES)}); add its SPEC to agents.registry.AGENTS"
                        ) from None


def config_class(agent_type: str) -> type:
    return get(agent_type).config_cls


def agent_config(cfg: Any) -> Any:
    """The agent config of a ``TrainConfig``: the spec's ``flag_keys`` from the top-level flags,
    ``--agent.*`` the rest."""
    spec = get(cfg.agent_type)
    for flag in spec.refused_flags:
        if getattr(cfg, flag):
            others = [n for n, s in AGENTS.items() if flag in s.flag_keys]
            raise ValueError(f"--{flag} is an option of --agent_type={'/'.join(others)}, "
                             f"not of {spec.name}")
    shared = {k: getattr(cfg, k) for k in spec.flag_keys}
    for k in shared:
        if k in cfg.agent:
            raise ValueError(f"--agent.{k} is set by the top-level flag --{k}; use that")
    return spec.config_cls(**{**cfg.agent, **shared})


# Config-level shortcuts used by the loop and the benchmarks.
def rows_per_update(acfg: Any) -> int:
    """Chunks one ``update`` consumes."""
    return spec_of(acfg).rows_per_update(acfg)


def updates_per_env_step(acfg: Any, utd_ratio: int) -> int:
    """``update`` calls per env step (RLPD's UTD happens inside its update)."""
    return spec_of(acfg).updates_per_env_step(acfg, utd_ratio)


def exec_horizon(acfg: Any) -> int:
    """Env steps executed per policy call: H with action chunking, else 1."""
    return spec_of(acfg).exec_horizon(acfg)


def act_fn(acfg: Any, evaluation: bool = False):
    """``act(state, obs, key) -> (B, K)``: the spec's collection or evaluation actor."""
    spec = spec_of(acfg)
    return spec.eval_act if evaluation else spec.act
