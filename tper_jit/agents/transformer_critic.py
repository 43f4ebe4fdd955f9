"""Transformer action-sequence critic (ALGORITHM §9, the TOP-ERL idea) for ACFQL.

The critic reads one token per step of the chunk and predicts a value on every token:

    tokens  = [W_s·s_t, W_a·a_t, …, W_a·a_{t+H−1}] + learned positional embeddings
    blocks  = ``num_layers`` × pre-LN causal block: x += MHA(LN x), x += MLP_GELU(LN x)
    out     = head(LN x) ∈ R^{H+1}: out_0 = V(s_t), out_j = Q_j(s_t, a_{t:t+j}), j = 1..H

Causal attention makes out_j a function of (s_t, a_t, …, a_{t+j−1}) only, so the value of
every prefix of the chunk comes out of one forward pass, and V(s) is the same network run on
the state token alone (``actions=None``).  Dropout is not used.

Members of the ensemble are ``nn.vmap``-ed copies (independent initialisation, a leading
``(num_qs,)`` axis on every parameter), as in ``networks.Critic``, so the ensemble
aggregation (``q_agg``) of ACFQL applies unchanged.

``sequence_critic_loss`` is the loss of §9 on a ``ChunkBatch`` that carries
``seq_observations`` (see ``replay.gather_seq``):

    G_0 = agg_ens Q̄_H(s_t, â),  â = π(s_t) (current actor, no gradient)
    G_j = R_j + γ^j · m_j · agg_ens V̄(s_{t+j}),  j = 1..H
          (R_j = rewards[:, j−1] = Σ_{i<j} γ^i r_{t+i}, m_j = masks[:, j−1])
    L   = mean_(e, b) w_b · [(V_e − G_0)² + Σ_j valid_j · (Q_{e,j} − G_j)²]
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from tper_jit.agents.networks import glorot_uniform, make_ensemble
from tper_jit.replay.gather import ChunkBatch

Params = dict
CRITICS = ("mlp", "transformer")  # values of ACFQLConfig.critic


def _dense(width: int, name: str) -> nn.Dense:
    return nn.Dense(width, kernel_init=glorot_uniform, bias_init=nn.initializers.zeros,
                    name=name)


class _Block(nn.Module):
    """Pre-LN causal transformer block on ``x (..., T, d)`` with a ``(T, T)`` boolean mask."""

    num_heads: int
    mlp_ratio: int

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        d = x.shape[-1]
        y = nn.LayerNorm(name="ln_attn")(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, kernel_init=glorot_uniform, deterministic=True,
            name="attn")(y, y, mask=mask)
        x = x + y
        y = nn.LayerNorm(name="ln_mlp")(x)
        y = nn.gelu(_dense(self.mlp_ratio * d, "mlp_in")(y))
        return x + _dense(d, "mlp_out")(y)


class _SequenceMember(nn.Module):
    """One member: ``(obs (..., D), actions (..., H·A) | None) -> (..., T)``.

    T = H + 1 with actions, T = 1 (the state token only, i.e. V(s)) with ``actions=None``.
    """

    horizon: int
    d_model: int
    num_heads: int
    num_layers: int
    mlp_ratio: int

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array | None = None) -> jax.Array:
        tokens = _dense(self.d_model, "embed_obs")(observations)[..., None, :]  # (..., 1, d)
        if actions is not None:
            # The networks see flat chunks (..., H·A); one token per chunk step.
            steps = actions.reshape(*actions.shape[:-1], self.horizon, -1)  # (..., H, A)
            tokens = jnp.concatenate([tokens, _dense(self.d_model, "embed_action")(steps)], -2)
        n = tokens.shape[-2]
        pos = self.param("pos_embedding", nn.initializers.normal(0.02),
                         (self.horizon + 1, self.d_model))
        x = tokens + pos[:n]
        mask = jnp.tril(jnp.ones((n, n), bool))  # token i attends to tokens 0..i
        for i in range(self.num_layers):
            x = _Block(self.num_heads, self.mlp_ratio, name=f"block_{i}")(x, mask)
        x = nn.LayerNorm(name="ln_final")(x)
        return _dense(1, "head")(x)[..., 0]


class TransformerCritic(nn.Module):
    """Ensemble sequence critic: ``(obs (..., D), actions (..., H·A)) -> (num_qs, ..., H+1)``.

    ``actions=None`` gives the values alone, ``(num_qs, ..., 1)``.  Parameters must be
    initialised with actions (the action embedding is created on first use).
    """

    horizon: int  # H, tokens per chunk
    num_qs: int = 2  # ensemble size
    d_model: int = 128  # token width
    num_heads: int = 8  # attention heads (d_model must be divisible by it)
    num_layers: int = 2  # causal pre-LN blocks
    mlp_ratio: int = 4  # width of the block MLP as a multiple of d_model

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array | None = None) -> jax.Array:
        ensemble = make_ensemble(_SequenceMember, self.num_qs)
        return ensemble(self.horizon, self.d_model, self.num_heads, self.num_layers,
                        self.mlp_ratio, name="ensemble")(observations, actions)


def from_config(config) -> TransformerCritic:
    """The critic of an ``ACFQLConfig`` with ``critic="transformer"``."""
    return TransformerCritic(config.horizon_length, config.num_qs, config.critic_d_model,
                             config.critic_num_heads, config.critic_num_layers,
                             config.critic_mlp_ratio)


def config_checks(config) -> list[tuple[str, bool, str]]:
    """``(field, ok, why)`` checks of an ``ACFQLConfig``'s critic fields.

    The sequence critic needs one token per chunk step (so ``action_chunking``), and the
    SARSA-weighted H-step target (§6) has no meaning for its per-step targets.
    """
    seq = config.critic == "transformer"
    checks = [("critic", config.critic in CRITICS, f"must be one of {CRITICS}"),
              ("action_chunking", not seq or config.action_chunking,
               "must be True with --agent.critic=transformer (one token per chunk step)"),
              ("use_weighted_target", not seq or not config.use_weighted_target,
               "is not supported with --agent.critic=transformer")]
    sizes = ("critic_d_model", "critic_num_heads", "critic_num_layers", "critic_mlp_ratio")
    ok = {n: isinstance(getattr(config, n), int) and not isinstance(getattr(config, n), bool)
          and getattr(config, n) >= 1 for n in sizes}
    checks += [(n, ok[n], "must be an integer >= 1") for n in sizes]
    heads_ok = (not (ok["critic_d_model"] and ok["critic_num_heads"])
                or config.critic_d_model % config.critic_num_heads == 0)
    checks.append(("critic_num_heads", heads_ok, "must divide --agent.critic_d_model"))
    return checks


def chunk_q(critic: TransformerCritic, params: Params, observations: jax.Array,
            actions: jax.Array) -> jax.Array:
    """Q_H(s, a_{t:t+H}) of the whole chunk (the last token): ``(num_qs, ...)``."""
    return critic.apply({"params": params}, observations, actions)[..., -1]


def values(critic: TransformerCritic, params: Params, observations: jax.Array) -> jax.Array:
    """V(s) (the state token, no action read): ``obs (..., D) -> (num_qs, ...)``."""
    return critic.apply({"params": params}, observations)[..., 0]


def sequence_critic_loss(critic: TransformerCritic, params: Params, target_params: Params,
                         batch: ChunkBatch, policy_actions: jax.Array, discount: float,
                         aggregate: Callable[[jax.Array], jax.Array], weights: jax.Array
                         ) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
    """The §9 loss (module docstring) for ``params``; ``target_params`` give V̄ and Q̄.

    ``batch`` needs ``seq_observations (B, H, D)`` = s_{t+1..t+H}; ``policy_actions (B, H·A)``
    is â = π(s_t) drawn by the caller; ``aggregate`` reduces the ensemble axis ``(E, ...) ->
    (...)``; ``weights (B,)`` scale the per-sample loss.  Returns ``(loss, info, td_abs)`` with
    ``td_abs (B,) = |agg_ens Q_H(s_t, a) − G_H|`` (no gradient, not masked by ``valid``, the
    same contract as the MLP critic's).
    """
    if batch.seq_observations is None:
        raise ValueError("--agent.critic=transformer needs batch.seq_observations (B, H, D); "
                         "attach them with replay.gather_seq.add_seq_observations")
    b, h, _ = batch.actions.shape
    obs = batch.observations
    if batch.seq_observations.shape != (b, h, obs.shape[-1]):
        raise ValueError(f"batch seq_observations has shape {batch.seq_observations.shape}, "
                         f"expected (B, H, D) = {(b, h, obs.shape[-1])}")
    # Targets: every term from the target critic, aggregated over its ensemble, no gradient.
    g0 = aggregate(chunk_q(critic, target_params, obs, policy_actions))  # (B,)
    v_next = aggregate(values(critic, target_params, batch.seq_observations))  # (B, H)
    gammas = discount ** jnp.arange(1, h + 1, dtype=jnp.float32)  # γ^j, j = 1..H
    g = batch.rewards + gammas * batch.masks * v_next  # (B, H)
    g0, g = jax.lax.stop_gradient(g0), jax.lax.stop_gradient(g)

    out = critic.apply({"params": params}, obs, batch.actions.reshape(b, -1))  # (E, B, H+1)
    v, q = out[..., 0], out[..., 1:]
    v_sq = jnp.square(v - g0[None])  # (E, B)
    q_sq = jnp.sum(jnp.square(q - g[None]) * batch.valid[None], axis=-1)  # (E, B)
    loss = jnp.mean((v_sq + q_sq) * weights[None])
    q_h = q[..., -1]
    td_abs = jax.lax.stop_gradient(jnp.abs(aggregate(q_h) - g[:, -1]))
    valid = batch.valid[:, -1]
    info = {
        "critic/critic_loss": loss,
        "critic/v_loss": jnp.mean(v_sq * weights[None]),
        "critic/q_seq_loss": jnp.mean(q_sq * weights[None]),
        "critic/v_mean": v.mean(),
        "critic/q_mean": q_h.mean(),
        "critic/q_max": q_h.max(),
        "critic/q_min": q_h.min(),
        "critic/td_error_mean": jnp.sum(td_abs * valid) / jnp.maximum(valid.sum(), 1.0),
    }
    return loss, info, td_abs
