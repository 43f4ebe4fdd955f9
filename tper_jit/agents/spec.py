"""``AgentSpec``: everything the training loop needs to know about an agent.

The loop never asks which agent it runs: it reads the spec that ``agents.registry`` holds
under the ``--agent_type`` name.  An agent module defines its config dataclass, the pure
functions ``init / update / act`` and one ``SPEC = AgentSpec(...)`` beside them; adding an
agent is that module plus one line in ``registry.AGENTS``.

Shapes: B chunks of H steps, D observation dims, A action dims, K = H·A (or A without action
chunking) flat action dims.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """One agent as the trainer drives it.

    Attributes:
        name: the ``--agent_type`` value.
        config_cls: the frozen config dataclass (``--agent.<key>`` fields).
        init: ``(key, obs_dim D, action_dim A, config) -> state``.
        update: ``(state, batch, key, weights=None[, actor_batch]) -> (state, metrics,
            td_abs (B,))``; ``batch`` is a ``ChunkBatch`` of ``rows_per_update(config)`` rows.
        act: ``(state, obs (B, D), key) -> (B, K)`` for data collection.
        eval_act: the same signature for evaluation (e.g. RLPD's mean action).
        rows_per_update: ``config -> int``, the rows one ``update`` consumes.
        updates_per_env_step: ``(config, utd_ratio flag) -> int`` ``update`` calls per online
            env step (an agent whose update holds the UTD loop returns 1).
        exec_horizon: ``config -> int``, env steps executed per policy call (H or 1).
        needs_seq_observations: ``config -> bool``: the batch must carry every ``s_{t+j}``
            (``gather_seq.add_seq_observations``; the transformer critic).
        loss_weights: ``update`` takes OPER's ``LossWeights`` and a second ``actor_batch``.
        flag_keys: top-level flags copied into the agent config (``--horizon_length`` sets
            ``config.horizon_length``); ``--agent.<key>`` of these is refused.
        refused_flags: top-level boolean flags this agent cannot honour (an error if set).
    """

    name: str
    config_cls: type
    init: Callable[..., Any]
    update: Callable[..., Any]
    act: Callable[..., Any]
    eval_act: Callable[..., Any]
    rows_per_update: Callable[[Any], int]
    updates_per_env_step: Callable[[Any, int], int]
    exec_horizon: Callable[[Any], int]
    needs_seq_observations: Callable[[Any], bool] = lambda config: False
    loss_weights: bool = False
    flag_keys: tuple[str, ...] = ("horizon_length", "discount")
    refused_flags: tuple[str, ...] = ()
