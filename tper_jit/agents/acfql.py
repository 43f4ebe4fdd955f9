"""ACFQL: action-chunked flow Q-learning (ALGORITHM §1, §6) as pure functions.

    init(key, obs_dim, action_dim, config)  -> AgentState
    update(state, batch, key, weights=None, actor_batch=None)
                                            -> (AgentState, metrics, td_abs (B,))
    act(state, observations, key)           -> actions (B, K) or (K,)

Shapes: B batch, D observation dim, H = ``horizon_length``, A per-step action dim, and
K = H·A the flat action the networks see (K = A with ``action_chunking=False``, which gives FQL
with an H-step return; H = 1 is plain FQL).

The config is static (a frozen, hashable dataclass stored as a non-pytree field of
``AgentState``), so ``jax.jit(update)`` works directly, the state can be a ``lax.scan`` carry
and ``jax.vmap`` over seeds maps only the arrays.  Changing any hyperparameter recompiles.

One ``update`` is one gradient step of one optimiser over all trainable parameters on
L_critic + L_actor (the actor terms never reach the critic's parameters and vice versa: the
critic is frozen in the Q loss and the flow in the distillation target), then the Polyak
target update θ̄ ← τθ + (1−τ)θ̄ with the new critic parameters.

``critic="transformer"`` swaps the MLP critic for the sequence critic of ALGORITHM §9
(``transformer_critic``); its batches need ``seq_observations`` (``replay.gather_seq``), and the
actor's Q and best-of-n scores use its whole-chunk value Q_H.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from tper_jit.agents import transformer_critic as tcritic
from tper_jit.agents.acfql_config import ACTOR_TYPES, Q_AGGS, ACFQLConfig  # noqa: F401
from tper_jit.agents.networks import (
    Critic,
    FlowActor,
    OneStepActor,
    polyak,  # noqa: F401  (re-exported)
)
from tper_jit.agents.spec import AgentSpec
from tper_jit.replay.gather import ChunkBatch, check_chunk_batch

Params = Any  # a pytree of arrays

class Networks(NamedTuple):
    critic: Critic | tcritic.TransformerCritic
    actor_bc_flow: FlowActor
    actor_onestep: OneStepActor


def make_networks(config: ACFQLConfig, action_dim: int) -> Networks:
    """The three module definitions for per-step action dim ``action_dim`` (A)."""
    k = config.flat_action_dim(action_dim)
    if config.critic == "transformer":
        critic = tcritic.from_config(config)
    else:
        critic = Critic(config.hidden_dims, config.num_qs, config.layer_norm, config.precision)
    return Networks(
        critic=critic,
        actor_bc_flow=FlowActor(config.hidden_dims, k, precision=config.precision),
        actor_onestep=OneStepActor(config.hidden_dims, k, precision=config.precision),
    )


def make_optimizer(config: ACFQLConfig) -> optax.GradientTransformation:
    """Adam(lr), or AdamW(lr, weight_decay) when ``weight_decay > 0``."""
    if config.weight_decay > 0:
        return optax.adamw(config.lr, weight_decay=config.weight_decay)
    return optax.adam(config.lr)


@struct.dataclass
class AgentState:
    params: dict[str, Params]  # trainable: {"critic", "actor_bc_flow", "actor_onestep"}
    target_critic: Params  # Polyak copy of params["critic"]
    opt_state: optax.OptState  # one optimiser state over ``params``
    step: jax.Array  # int32 () gradient steps taken
    config: ACFQLConfig = struct.field(pytree_node=False)  # static hyperparameters
    action_dim: int = struct.field(pytree_node=False)  # A, per-step action dim

    @property
    def networks(self) -> Networks:
        return make_networks(self.config, self.action_dim)


class UpdateKeys(NamedTuple):
    """The named subkeys of one ``update``: ``split_update_key(key)``."""

    next_actions: jax.Array  # π(s_{t+H}) for the critic target
    flow_noise: jax.Array  # x0 ~ N(0, I) of the BC flow-matching loss
    flow_time: jax.Array  # t ~ U[0, 1) of the BC flow-matching loss
    distill_noise: jax.Array  # z ~ N(0, I) of the distillation and Q losses


def split_update_key(key: jax.Array) -> UpdateKeys:
    return UpdateKeys(*jax.random.split(key, 4))


def init(key: jax.Array, obs_dim: int, action_dim: int, config: ACFQLConfig) -> AgentState:
    """Fresh parameters and optimiser state; the target critic starts as a copy of the critic.

    ``obs_dim`` D and ``action_dim`` A (per step) are static Python ints.
    """
    key_critic, key_bc_flow, key_onestep = jax.random.split(key, 3)
    nets = make_networks(config, action_dim)
    k = config.flat_action_dim(action_dim)
    obs, act, t = jnp.zeros((1, obs_dim)), jnp.zeros((1, k)), jnp.zeros((1, 1))
    params = {
        "critic": nets.critic.init(key_critic, obs, act)["params"],
        "actor_bc_flow": nets.actor_bc_flow.init(key_bc_flow, obs, act, t)["params"],
        "actor_onestep": nets.actor_onestep.init(key_onestep, obs, act)["params"],
    }
    return AgentState(
        params=params,
        target_critic=jax.tree.map(jnp.copy, params["critic"]),
        opt_state=make_optimizer(config).init(params),
        step=jnp.zeros((), jnp.int32),
        config=config,
        action_dim=action_dim,
    )


# ---------------------------------------------------------------------------------------------
# Building blocks


def aggregate(qs: jax.Array, q_agg: str) -> jax.Array:
    """Ensemble aggregation ``(E, ...) -> (...)``: mean or min over the members."""
    if q_agg == "mean":
        return qs.mean(axis=0)
    if q_agg == "min":
        return qs.min(axis=0)
    raise ValueError(f"--agent.q_agg must be one of {Q_AGGS}, got {q_agg!r}")


def chunk_q(nets: Networks, critic_params: Params, observations: jax.Array,
            actions: jax.Array) -> jax.Array:
    """Q(s, a) of whole chunks ``(..., D), (..., K) -> (E, ...)``: the MLP critic's output, or
    the transformer critic's last token Q_H."""
    if isinstance(nets.critic, tcritic.TransformerCritic):
        return tcritic.chunk_q(nets.critic, critic_params, observations, actions)
    return nets.critic.apply({"params": critic_params}, observations, actions)


def flat_actions(config: ACFQLConfig, actions: jax.Array) -> jax.Array:
    """Data actions ``(B, H, A)`` → ``(B, K)``: the flattened chunk, or ``actions[:, 0]``."""
    if config.action_chunking:
        return actions.reshape(actions.shape[0], -1)
    return actions[:, 0]


def flow_actions(nets: Networks, bc_params: Params, observations: jax.Array, noises: jax.Array,
                 flow_steps: int) -> jax.Array:
    """Euler-integrate v(s, x, t) from x = ``noises`` at t_i = i/flow_steps; clip to [−1, 1].

    ``observations (..., D)``, ``noises (..., K)`` → ``(..., K)``.  Cost ``flow_steps``
    forward passes.
    """
    dt = 1.0 / flow_steps

    def euler_step(i, x):
        t = jnp.full((*x.shape[:-1], 1), i * dt, x.dtype)
        return x + dt * nets.actor_bc_flow.apply({"params": bc_params}, observations, x, t)

    x = jax.lax.fori_loop(0, flow_steps, euler_step, noises)
    return jnp.clip(x, -1.0, 1.0)


def sample_actions(nets: Networks, params: dict[str, Params], observations: jax.Array,
                   key: jax.Array, config: ACFQLConfig) -> jax.Array:
    """π(s): ``observations (B, D)`` → clipped actions ``(B, K)``.

    distill-ddpg: clip(μ(s, z)), z ~ N(0, I).  best-of-n: ``actor_num_samples`` N flow
    samples per state, scored by ``agg_ens Q(s, ·)`` with ``params["critic"]``; the argmax.
    """
    b = observations.shape[0]
    k = nets.actor_bc_flow.action_dim
    if config.actor_type == "distill-ddpg":
        z = jax.random.normal(key, (b, k))
        mu = nets.actor_onestep.apply({"params": params["actor_onestep"]}, observations, z)
        return jnp.clip(mu, -1.0, 1.0)
    n = config.actor_num_samples
    noises = jax.random.normal(key, (b, n, k))
    obs_n = jnp.broadcast_to(observations[:, None, :], (b, n, observations.shape[-1]))
    cands = flow_actions(nets, params["actor_bc_flow"], obs_n, noises, config.flow_steps)
    qs = chunk_q(nets, params["critic"], obs_n, cands)  # (E, B, N)
    best = jnp.argmax(aggregate(qs, config.q_agg), axis=-1)  # (B,)
    return jnp.take_along_axis(cands, best[:, None, None], axis=1)[:, 0]


class LossWeights(NamedTuple):
    """Per-sample loss weights ``(B,)`` per term (OPER reweighting); None = unweighted.

    ``update``/``total_loss`` accept one in place of the critic's ``(B,)`` weights array.
    """

    critic: jax.Array | None = None  # L_critic (policy evaluation)
    actor_q: jax.Array | None = None  # L_q (policy improvement)
    bc: jax.Array | None = None  # L_bc (flow matching, the policy constraint)
    distill: jax.Array | None = None  # L_distill


def _scale(x: jax.Array, w: jax.Array | None) -> jax.Array:
    """``x (B, ...)`` times ``w (B,)`` broadcast over the trailing axes; ``x`` if w is None."""
    return x if w is None else x * w.reshape(w.shape + (1,) * (x.ndim - 1))


# ---------------------------------------------------------------------------------------------
# Losses


def critic_loss(nets: Networks, params: dict[str, Params], target_critic: Params,
                batch: ChunkBatch, key: jax.Array, config: ACFQLConfig,
                weights: jax.Array) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
    """L_critic = mean_(e, b) w_b · valid_{b,H} · (Q_e(s_t, a) − y_b)², ALGORITHM §1.

    y = R_H + γ^H · m_H · agg_ens Q̄(s_{t+H}, a'), a' = π(s_{t+H}) from the current actor
    (no gradient, drawn with ``key``; with best-of-n the candidates are scored by the current
    critic, the chosen a' by the target critic).  With ``use_weighted_target`` the next value is
    (1−β)·agg Q̄(s_{t+H}, a_{t+H:t+2H} data) + β·agg Q̄(s_{t+H}, a') where
    ``next_actions_valid``, the policy term alone elsewhere (ALGORITHM §6).

    Returns ``(loss, info, td_abs)`` with ``td_abs (B,) = |agg_ens Q(s_t, a) − y|`` (no
    gradient, not masked by ``valid``: consumers mask rows with ``valid[:, -1] == 0``);
    ``critic/td_error_mean`` averages it over the valid rows.

    With ``critic="transformer"`` the loss is ALGORITHM §9's instead
    (``transformer_critic.sequence_critic_loss``; ``key`` draws â = π(s_t)), same contract.
    """
    frozen = jax.lax.stop_gradient(params)
    if config.critic == "transformer":
        # §9: the sequence critic's targets need â = π(s_t), not π(s_{t+H}).
        pi = sample_actions(nets, frozen, batch.observations, key, config)
        return tcritic.sequence_critic_loss(
            nets.critic, params["critic"], target_critic, batch, pi, config.discount,
            lambda qs: aggregate(qs, config.q_agg), weights)
    h = config.horizon_length
    next_pi = sample_actions(nets, frozen, batch.next_observations, key, config)
    next_q = aggregate(
        nets.critic.apply({"params": target_critic}, batch.next_observations, next_pi),
        config.q_agg)
    if config.use_weighted_target:
        next_data = flat_actions(config, batch.next_actions)
        next_q_data = aggregate(
            nets.critic.apply({"params": target_critic}, batch.next_observations, next_data),
            config.q_agg)
        mixed = (1.0 - config.beta) * next_q_data + config.beta * next_q
        next_q = jnp.where(batch.next_actions_valid > 0, mixed, next_q)
    y = batch.rewards[:, -1] + config.discount ** h * batch.masks[:, -1] * next_q
    y = jax.lax.stop_gradient(y)

    actions = flat_actions(config, batch.actions)
    qs = nets.critic.apply({"params": params["critic"]}, batch.observations, actions)  # (E, B)
    sample_w = batch.valid[:, -1] * weights
    loss = jnp.mean(jnp.square(qs - y[None]) * sample_w[None])
    td_abs = jax.lax.stop_gradient(jnp.abs(aggregate(qs, config.q_agg) - y))
    valid = batch.valid[:, -1]
    info = {
        "critic/critic_loss": loss,
        "critic/q_mean": qs.mean(),
        "critic/q_max": qs.max(),
        "critic/q_min": qs.min(),
        "critic/td_error_mean": jnp.sum(td_abs * valid) / jnp.maximum(valid.sum(), 1.0),
    }
    return loss, info, td_abs


def actor_loss(nets: Networks, params: dict[str, Params], batch: ChunkBatch, keys: UpdateKeys,
               config: ACFQLConfig, weights: LossWeights | None = None
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_actor = L_bc + alpha·L_distill + L_q (distill-ddpg) or L_bc (best-of-n), ALGORITHM §1.

    - L_bc = mean_(B, H, A) valid_h · (v(s, x_t, t) − (a − x0))², x_t = (1−t)·x0 + t·a,
      x0 ~ N(0, I) from ``keys.flow_noise``, t ~ U[0, 1) ``(B, 1)`` from ``keys.flow_time``
      (without chunking the mean is over (B, A) and valid_0 = 1).
    - L_distill = mean (μ(s, z) − a_flow(s, z))², a_flow = clipped Euler flow with frozen
      parameters, z ~ N(0, I) from ``keys.distill_noise``.
    - L_q = −mean_b mean_ens Q(s, clip μ(s, z)) with the critic frozen.

    With best-of-n the distill/Q/mse metrics are reported as 0 (not computed).  ``weights``
    (``bc``, ``distill``, ``actor_q`` fields, each ``(B,)``) multiply the per-sample terms
    inside the same means; ``actor/q`` stays the unweighted mean.
    """
    w = LossWeights() if weights is None else weights
    obs = batch.observations
    a = flat_actions(config, batch.actions)  # (B, K)
    b, k = a.shape
    x0 = jax.random.normal(keys.flow_noise, (b, k))
    t = jax.random.uniform(keys.flow_time, (b, 1))
    x_t = (1.0 - t) * x0 + t * a
    pred = nets.actor_bc_flow.apply({"params": params["actor_bc_flow"]}, obs, x_t, t)
    sq = jnp.square(pred - (a - x0))
    if config.action_chunking:
        valid = batch.valid[:, :, None]  # (B, H, 1)
        bc_loss = jnp.mean(_scale(sq.reshape(batch.actions.shape) * valid, w.bc))
    else:
        bc_loss = jnp.mean(_scale(sq * batch.valid[:, :1], w.bc))

    zero = jnp.zeros((), bc_loss.dtype)
    if config.actor_type == "best-of-n":
        info = {"actor/bc_flow_loss": bc_loss, "actor/distill_loss": zero, "actor/q_loss": zero,
                "actor/actor_loss": bc_loss, "actor/q": zero, "actor/mse": zero}
        return bc_loss, info

    z = jax.random.normal(keys.distill_noise, (b, k))
    target = flow_actions(nets, jax.lax.stop_gradient(params["actor_bc_flow"]), obs, z,
                          config.flow_steps)
    mu = nets.actor_onestep.apply({"params": params["actor_onestep"]}, obs, z)
    distill_loss = jnp.mean(_scale(jnp.square(mu - target), w.distill))
    mu_c = jnp.clip(mu, -1.0, 1.0)
    q = chunk_q(nets, jax.lax.stop_gradient(params["critic"]), obs, mu_c)
    q = q.mean(axis=0)  # (B,)
    q_loss = -_scale(q, w.actor_q).mean()
    total = bc_loss + config.alpha * distill_loss + q_loss
    info = {
        "actor/bc_flow_loss": bc_loss,
        "actor/distill_loss": distill_loss,
        "actor/q_loss": q_loss,
        "actor/actor_loss": total,
        "actor/q": q.mean(),
        "actor/mse": jnp.mean(jnp.square(mu_c - a)),
    }
    return total, info


def total_loss(params: dict[str, Params], target_critic: Params, batch: ChunkBatch,
               key: jax.Array, config: ACFQLConfig, action_dim: int,
               weights: jax.Array | LossWeights | None = None,
               actor_batch: ChunkBatch | None = None
               ) -> tuple[jax.Array, tuple[dict[str, jax.Array], jax.Array]]:
    """L_critic + L_actor for ``params`` with the keys of ``split_update_key(key)``.

    Returns ``(loss, (metrics, td_abs (B,)))``; ``weights (B,)`` scale the per-sample critic
    loss (ones when None); a ``LossWeights`` weights each term separately.  ``actor_batch``
    (default ``batch``) feeds the actor losses, e.g. OPER's two-sampler mode.
    """
    _check_batch(batch, config, action_dim)
    nets = make_networks(config, action_dim)
    keys = split_update_key(key)
    lw = weights if isinstance(weights, LossWeights) else LossWeights(critic=weights)
    critic_w = lw.critic
    if critic_w is None:
        critic_w = jnp.ones(batch.observations.shape[:1], jnp.float32)
    c_loss, c_info, td_abs = critic_loss(nets, params, target_critic, batch, keys.next_actions,
                                         config, critic_w)
    if actor_batch is None:
        actor_batch = batch
    else:
        _check_batch(actor_batch, config, action_dim)
    a_loss, a_info = actor_loss(nets, params, actor_batch, keys, config, lw)
    return c_loss + a_loss, ({**c_info, **a_info}, td_abs)


def _check_batch(batch: ChunkBatch, config: ACFQLConfig, action_dim: int) -> None:
    """Trace-time shape guard of the batch against the config."""
    check_chunk_batch(batch, config.horizon_length, action_dim)
    b, h, a = batch.actions.shape
    if batch.next_actions.shape != (b, h, a) or batch.next_actions_valid.shape != (b,):
        raise ValueError("batch next_actions must be (B, H, A) and next_actions_valid (B,), got "
                         f"{batch.next_actions.shape} and {batch.next_actions_valid.shape}")


# ---------------------------------------------------------------------------------------------
# API


def update(state: AgentState, batch: ChunkBatch, key: jax.Array,
           weights: jax.Array | LossWeights | None = None,
           actor_batch: ChunkBatch | None = None
           ) -> tuple[AgentState, dict[str, jax.Array], jax.Array]:
    """One gradient step on critic + actor, then the Polyak target update.

    ``batch``: a ``ChunkBatch`` with B chunks of H = ``horizon_length`` steps.  ``weights``
    ``(B,)`` multiply the per-sample critic loss (default ones); a ``LossWeights`` sets the
    critic, actor-Q, BC and distillation weights separately (OPER reweighting).
    ``actor_batch`` (default ``batch``) is the batch of the actor losses.  Returns
    ``(state, metrics, td_abs)`` with scalar ``metrics`` and ``td_abs (B,)`` =
    |agg_ens Q(s_t, a) − y| before the step (no gradient).  Pure; jit/scan/vmap-safe.
    """
    config = state.config
    grads, (metrics, td_abs) = jax.grad(total_loss, has_aux=True)(
        state.params, state.target_critic, batch, key, config, state.action_dim, weights,
        actor_batch)
    updates, opt_state = make_optimizer(config).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    target_critic = polyak(params["critic"], state.target_critic, config.tau)
    new_state = state.replace(params=params, target_critic=target_critic, opt_state=opt_state,
                              step=state.step + 1)
    return new_state, metrics, td_abs


def act(state: AgentState, observations: jax.Array, key: jax.Array) -> jax.Array:
    """Actions for ``observations (B, D)`` → ``(B, K)``, or ``(D,)`` → ``(K,)``, in [−1, 1].

    K = H·A (one open-loop chunk) with action chunking, A without.  distill-ddpg: clip μ(s, z);
    best-of-n: the argmax-Q of ``actor_num_samples`` flow samples.
    """
    chex.assert_rank(observations, {1, 2})  # trace-time guard: (D,) or (B, D) floats
    chex.assert_type(observations, float)
    single = observations.ndim == 1
    obs = observations[None] if single else observations
    actions = sample_actions(state.networks, state.params, obs, key, state.config)
    return actions[0] if single else actions


def _exec_horizon(config: ACFQLConfig) -> int:
    return config.horizon_length if config.action_chunking else 1


SPEC = AgentSpec(
    name="acfql", config_cls=ACFQLConfig, init=init, update=update, act=act, eval_act=act,
    rows_per_update=lambda config: config.batch_size,
    updates_per_env_step=lambda config, utd_ratio: utd_ratio,
    exec_horizon=_exec_horizon,
    needs_seq_observations=lambda config: config.critic == "transformer",  # §9: every s_{t+j}
    loss_weights=True,
    flag_keys=("horizon_length", "discount", "use_weighted_target", "beta"))
