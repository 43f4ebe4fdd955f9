"""``ACFQLConfig``: the ACFQL hyperparameters (the seed's defaults), every field an
``--agent.<field>`` flag, validated when built.  The agent's functions are in ``acfql.py``."""

from __future__ import annotations

import dataclasses

from tper_jit.agents import config_checks as checks
from tper_jit.agents import transformer_critic as tcritic
from tper_jit.agents.precision import PRECISIONS

Q_AGGS = ("mean", "min")
ACTOR_TYPES = ("distill-ddpg", "best-of-n")


@dataclasses.dataclass(frozen=True)
class ACFQLConfig:
    """ACFQL hyperparameters (the seed's defaults); every field is ``--agent.<field>``."""

    lr: float = 3e-4  # learning rate of the single Adam/AdamW optimiser
    batch_size: int = 256  # B, chunks per gradient step (used by the trainer's sampler)
    discount: float = 0.99  # γ; the critic bootstraps with γ^H
    tau: float = 0.005  # Polyak rate of the target critic
    hidden_dims: tuple[int, ...] = (512, 512, 512, 512)  # hidden widths of every network
    layer_norm: bool = True  # LayerNorm in the critic (the actors never use it)
    num_qs: int = 2  # critic ensemble size
    q_agg: str = "mean"  # ensemble aggregation of the target / td / best-of-n: mean | min
    alpha: float = 100.0  # weight of the distillation loss
    flow_steps: int = 10  # Euler steps integrating the BC flow
    actor_type: str = "distill-ddpg"  # distill-ddpg (one-step actor) | best-of-n (flow + argmax Q)
    actor_num_samples: int = 32  # flow samples scored by the critic with best-of-n
    action_chunking: bool = True  # act on H·A chunks; False: single actions, H-step return
    horizon_length: int = 5  # H, chunk length / n of the n-step return
    weight_decay: float = 0.0  # AdamW weight decay when > 0 (Adam otherwise)
    use_weighted_target: bool = False  # SARSA-weighted next value (ALGORITHM §6)
    beta: float = 0.5  # weight of the policy term in the SARSA-weighted target
    critic: str = "mlp"  # mlp (Q of the whole chunk) | transformer (sequence critic, §9)
    critic_d_model: int = 128  # transformer critic: token width
    critic_num_heads: int = 8  # transformer critic: attention heads (divide d_model)
    critic_num_layers: int = 2  # transformer critic: causal pre-LN blocks
    critic_mlp_ratio: int = 4  # transformer critic: block MLP width / d_model
    precision: str = "f32"  # matmul inputs of the MLP networks: f32 | bf16 (f32 accumulation)

    def __post_init__(self):
        checks.normalise_tuples(self, "hidden_dims")
        checks.enforce(self, [
            *checks.common(self),
            ("q_agg", self.q_agg in Q_AGGS, f"must be one of {Q_AGGS}"),
            ("alpha", self.alpha >= 0, "must be >= 0"),
            ("flow_steps", checks.is_int(self.flow_steps) and self.flow_steps >= 1,
             "must be an integer >= 1"),
            ("actor_type", self.actor_type in ACTOR_TYPES, f"must be one of {ACTOR_TYPES}"),
            ("actor_num_samples",
             checks.is_int(self.actor_num_samples) and self.actor_num_samples >= 1,
             "must be an integer >= 1"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("beta", 0.0 <= self.beta <= 1.0, "must be in [0, 1]"),
            *tcritic.config_checks(self),
            ("precision", self.precision in PRECISIONS, f"must be one of {PRECISIONS}"),
            ("precision", self.precision == "f32" or self.critic == "mlp",
             "bf16 applies to the MLP networks; the transformer critic runs in f32 only"),
        ], bools=("layer_norm", "action_chunking", "use_weighted_target"))

    def flat_action_dim(self, action_dim: int) -> int:
        """K: H·A with action chunking, A without."""
        return self.horizon_length * action_dim if self.action_chunking else action_dim
