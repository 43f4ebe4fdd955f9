"""RLPD (SAC with prior data, ALGORITHM §8) and its action-chunked variants, as pure functions.

    init(key, obs_dim, action_dim, config)          -> RLPDState
    update(state, batch, key, weights=None)         -> (RLPDState, metrics, td_abs (B,))
    update_critic(state, minibatch, key, weights)   -> (RLPDState, metrics, td_abs (b,))
    update_actor(state, minibatch, key)             -> (RLPDState, metrics)
    act(state, observations, key, deterministic)    -> actions (B, K) or (K,)

Shapes: B rows per ``update``, b = B / ``utd_ratio`` rows per critic step, D observation dim,
H = ``horizon_length``, A per-step action dim, K = H·A with ``action_chunking`` (A without),
E = ``num_qs`` critics.

One ``update`` is one UTD block, as in the RLPD reference: the trainer samples
B = ``batch_size · utd_ratio`` rows (``config.rows_per_update``); they are split along the
batch axis into ``utd_ratio`` consecutive minibatches of b rows (minibatch i = rows
[i·b, (i+1)·b)) and ``lax.scan`` takes one critic step (+ Polyak target update) on each, with
subkey i of ``split(key_critic, utd_ratio)``; then ONE actor step on the LAST minibatch with
the updated critic, then ONE temperature step using the entropy measured in that actor step,
where ``key_critic, key_actor = split(key)``.  Each step has its own Adam state.

The config is static (a frozen, hashable dataclass stored as a non-pytree field of
``RLPDState``), as in ``acfql``: ``jax.jit(update)`` works directly and ``jax.vmap`` over seeds
maps only the arrays.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from tper_jit.agents.networks import polyak  # noqa: F401  (re-exported)
from tper_jit.agents.rlpd_config import PRESETS, RLPDConfig  # noqa: F401
from tper_jit.agents.rlpd_networks import (
    EnsembleCritic,
    TanhGaussianActor,
    sample_tanh_gaussian,
    tanh_gaussian_log_prob_terms,
)
from tper_jit.agents.spec import AgentSpec
from tper_jit.replay.gather import ChunkBatch, check_chunk_batch

Params = Any  # a pytree of arrays

BC_CLIP = 1.0 - 1e-6  # data actions are clipped into (−BC_CLIP, BC_CLIP) before atanh


class Networks(NamedTuple):
    critic: EnsembleCritic  # all E members
    target_subset: EnsembleCritic  # the same member architecture, num_min_qs members
    actor: TanhGaussianActor


def make_networks(config: RLPDConfig, action_dim: int) -> Networks:
    """The module definitions for per-step action dim ``action_dim`` (A)."""
    k = config.flat_action_dim(action_dim)
    return Networks(
        critic=EnsembleCritic(config.hidden_dims, config.num_qs, config.critic_layer_norm),
        target_subset=EnsembleCritic(config.hidden_dims, config.num_min_qs,
                                     config.critic_layer_norm),
        actor=TanhGaussianActor(config.hidden_dims, k, config.log_std_min, config.log_std_max),
    )


@struct.dataclass
class RLPDState:
    params: dict[str, Params]  # {"critic", "actor", "temperature": {"log_alpha": ()}}
    target_critic: Params  # Polyak copy of params["critic"]
    opt_state: dict[str, optax.OptState]  # one Adam state per entry of ``params``
    step: jax.Array  # int32 () critic gradient steps taken (utd_ratio per update)
    config: RLPDConfig = struct.field(pytree_node=False)  # static hyperparameters
    action_dim: int = struct.field(pytree_node=False)  # A, per-step action dim

    @property
    def networks(self) -> Networks:
        return make_networks(self.config, self.action_dim)


class CriticKeys(NamedTuple):
    """The named subkeys of one critic step: ``split_critic_key(key)``."""

    next_actions: jax.Array  # a' ~ π(·|s_{t+H}) for the target
    subset: jax.Array  # the num_min_qs target members


def split_critic_key(key: jax.Array) -> CriticKeys:
    return CriticKeys(*jax.random.split(key, 2))


def init(key: jax.Array, obs_dim: int, action_dim: int, config: RLPDConfig) -> RLPDState:
    """Fresh parameters; target critic = critic; log α = log ``init_temperature``.

    ``obs_dim`` D and ``action_dim`` A (per step) are static Python ints.
    """
    key_critic, key_actor = jax.random.split(key)
    nets = make_networks(config, action_dim)
    obs, act_ = jnp.zeros((1, obs_dim)), jnp.zeros((1, config.flat_action_dim(action_dim)))
    params = {
        "critic": nets.critic.init(key_critic, obs, act_)["params"],
        "actor": nets.actor.init(key_actor, obs)["params"],
        "temperature": {"log_alpha": jnp.asarray(math.log(config.init_temperature),
                                                 jnp.float32)},
    }
    opt = optax.adam(config.lr)
    return RLPDState(
        params=params,
        target_critic=jax.tree.map(jnp.copy, params["critic"]),
        opt_state={name: opt.init(p) for name, p in params.items()},
        step=jnp.zeros((), jnp.int32),
        config=config,
        action_dim=action_dim,
    )


# ---------------------------------------------------------------------------------------------
# Building blocks


def flat_actions(config: RLPDConfig, actions: jax.Array) -> jax.Array:
    """Data actions ``(B, H, A)`` → ``(B, K)``: the flattened chunk, or ``actions[:, 0]``."""
    if config.action_chunking:
        return actions.reshape(actions.shape[0], -1)
    return actions[:, 0]


def temperature(params: dict[str, Params]) -> jax.Array:
    """α = exp(log α), a scalar."""
    return jnp.exp(params["temperature"]["log_alpha"])


def target_subset(key: jax.Array, config: RLPDConfig) -> jax.Array:
    """``num_min_qs`` distinct member indices drawn uniformly from E (int32 ``(num_min_qs,)``)."""
    return jax.random.choice(key, config.num_qs, (config.num_min_qs,), replace=False)


# ---------------------------------------------------------------------------------------------
# Losses


def critic_target(nets: Networks, params: dict[str, Params], target_critic: Params,
                  batch: ChunkBatch, keys: CriticKeys,
                  config: RLPDConfig) -> tuple[jax.Array, jax.Array]:
    """y (B,) and the target member indices ``(num_min_qs,)``, without gradient.

        a' ~ π(·|s_{t+H}) (current actor, ``keys.next_actions``), idx = ``target_subset``,
        y = R_H + γ^H · m_H · (min_{e ∈ idx} Q̄_e(s_{t+H}, a') − [backup_entropy] α·log π(a'|·))

    i.e. the entropy bonus is discounted and masked exactly like the bootstrap value (the
    reference's γ·m·α·log π with γ → γ^H).  Only the drawn members' parameters are evaluated.
    """
    frozen = jax.lax.stop_gradient(params)
    mean, log_std = nets.actor.apply({"params": frozen["actor"]}, batch.next_observations)
    next_a, next_logp = sample_tanh_gaussian(mean, log_std, keys.next_actions)
    idx = target_subset(keys.subset, config)
    subset_params = jax.tree.map(lambda p: p[idx], target_critic)
    next_q = nets.target_subset.apply({"params": subset_params}, batch.next_observations,
                                      next_a).min(axis=0)
    if config.backup_entropy:
        next_q = next_q - temperature(frozen) * next_logp
    y = batch.rewards[:, -1] + config.discount ** config.horizon_length * batch.masks[:, -1] \
        * next_q
    return jax.lax.stop_gradient(y), idx


def critic_loss(critic_params: Params, params: dict[str, Params], target_critic: Params,
                batch: ChunkBatch, key: jax.Array, config: RLPDConfig, action_dim: int,
                weights: jax.Array) -> tuple[jax.Array, tuple[dict[str, jax.Array], jax.Array]]:
    """L_critic = mean_(e, b) w_b · valid_{b,H} · (Q_e(s_t, a) − y_b)² over all E members.

    ``critic_params`` is the differentiated argument; ``params`` supplies the actor and α of
    the target.  Returns ``(loss, (info, td_abs))`` with ``td_abs (b,) = |mean_e Q_e(s_t, a) −
    y|`` (ensemble mean, no gradient, not masked by ``valid``: consumers mask);
    ``critic/td_error_mean`` averages it over the valid rows.
    """
    nets = make_networks(config, action_dim)
    y, _ = critic_target(nets, params, target_critic, batch, split_critic_key(key), config)
    actions = flat_actions(config, batch.actions)
    qs = nets.critic.apply({"params": critic_params}, batch.observations, actions)  # (E, b)
    valid = batch.valid[:, -1]
    loss = jnp.mean(jnp.square(qs - y[None]) * (valid * weights)[None])
    td_abs = jax.lax.stop_gradient(jnp.abs(qs.mean(axis=0) - y))
    info = {
        "critic/critic_loss": loss,
        "critic/q_mean": qs.mean(),
        "critic/q_max": qs.max(),
        "critic/q_min": qs.min(),
        "critic/target_mean": y.mean(),
        "critic/td_error_mean": jnp.sum(td_abs * valid) / jnp.maximum(valid.sum(), 1.0),
    }
    return loss, (info, td_abs)


def actor_loss(actor_params: Params, params: dict[str, Params], batch: ChunkBatch,
               key: jax.Array, config: RLPDConfig,
               action_dim: int) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_actor = mean_b (α·log π(ã|s) − mean_e Q_e(s, ã)) + bc_alpha · L_bc, ã ~ π(·|s).

    ã is reparameterised with ε from ``key``; the critic and α (from ``params``) are frozen.
    L_bc = −mean_b Σ_{h,a} valid_{b,h} · log π_{h,a}(a_data | s): the tanh-Gaussian log density
    of the data chunk (clipped into ±``BC_CLIP`` before atanh), per dimension, with steps past
    an episode end (``valid`` 0) left out.  Without chunking it is the first action's density.
    ``actor/entropy`` = −mean_b log π(ã|s) feeds the temperature step.  Unweighted by T-PER.
    """
    nets = make_networks(config, action_dim)
    frozen = jax.lax.stop_gradient(params)
    obs = batch.observations
    mean, log_std = nets.actor.apply({"params": actor_params}, obs)
    actions, log_prob = sample_tanh_gaussian(mean, log_std, key)
    q = nets.critic.apply({"params": frozen["critic"]}, obs, actions).mean(axis=0)  # (b,)
    alpha = temperature(frozen)
    sac_loss = jnp.mean(alpha * log_prob - q)

    data = jnp.clip(flat_actions(config, batch.actions), -BC_CLIP, BC_CLIP)
    per_dim = tanh_gaussian_log_prob_terms(jnp.arctanh(data), mean, log_std)  # (b, K)
    if config.action_chunking:
        per_dim = per_dim.reshape(batch.actions.shape) * batch.valid[:, :, None]
    else:
        per_dim = per_dim * batch.valid[:, :1]
    bc_loss = -jnp.mean(per_dim.reshape(per_dim.shape[0], -1).sum(axis=-1))
    total = sac_loss + config.bc_alpha * bc_loss
    info = {
        "actor/actor_loss": total,
        "actor/sac_loss": sac_loss,
        "actor/bc_loss": bc_loss,
        "actor/entropy": -log_prob.mean(),
        "actor/q": q.mean(),
        "actor/std_mean": jnp.exp(log_std).mean(),
    }
    return total, info


def temperature_loss(temperature_params: Params, entropy: jax.Array,
                     target_entropy: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_α = α · (entropy − target_entropy), entropy frozen: α grows when entropy is low."""
    alpha = jnp.exp(temperature_params["log_alpha"])
    loss = alpha * (jax.lax.stop_gradient(entropy) - target_entropy)
    return loss, {"temperature/temperature": alpha, "temperature/temperature_loss": loss}


def _check_batch(batch: ChunkBatch, config: RLPDConfig, action_dim: int) -> None:
    """Trace-time shape guard of the batch against the config."""
    check_chunk_batch(batch, config.horizon_length, action_dim)


def _adam_step(config: RLPDConfig, grads: Params, opt_state: optax.OptState,
               params: Params) -> tuple[Params, optax.OptState]:
    updates, opt_state = optax.adam(config.lr).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


# ---------------------------------------------------------------------------------------------
# API


def update_critic(state: RLPDState, batch: ChunkBatch, key: jax.Array,
                  weights: jax.Array | None = None
                  ) -> tuple[RLPDState, dict[str, jax.Array], jax.Array]:
    """One critic gradient step on ``batch`` (b rows), then the Polyak target update.

    ``weights (b,)`` multiply the per-sample loss (ones when None).  Returns ``(state,
    metrics, td_abs (b,))``, metrics and td_abs from before the step.
    """
    config = state.config
    _check_batch(batch, config, state.action_dim)
    if weights is None:
        weights = jnp.ones(batch.observations.shape[:1], jnp.float32)
    grads, (metrics, td_abs) = jax.grad(critic_loss, has_aux=True)(
        state.params["critic"], state.params, state.target_critic, batch, key, config,
        state.action_dim, weights)
    critic, opt = _adam_step(config, grads, state.opt_state["critic"], state.params["critic"])
    new_state = state.replace(
        params={**state.params, "critic": critic},
        target_critic=polyak(critic, state.target_critic, config.tau),
        opt_state={**state.opt_state, "critic": opt},
        step=state.step + 1)
    return new_state, metrics, td_abs


def update_actor(state: RLPDState, batch: ChunkBatch,
                 key: jax.Array) -> tuple[RLPDState, dict[str, jax.Array]]:
    """One actor step (ε from ``key``), then one temperature step on that step's entropy.

    The temperature step uses α and the entropy from before the actor step, as the reference.
    """
    config = state.config
    grads, a_info = jax.grad(actor_loss, has_aux=True)(
        state.params["actor"], state.params, batch, key, config, state.action_dim)
    actor, a_opt = _adam_step(config, grads, state.opt_state["actor"], state.params["actor"])
    t_grads, t_info = jax.grad(temperature_loss, has_aux=True)(
        state.params["temperature"], a_info["actor/entropy"],
        config.entropy_target(state.action_dim))
    temp, t_opt = _adam_step(config, t_grads, state.opt_state["temperature"],
                             state.params["temperature"])
    new_state = state.replace(
        params={**state.params, "actor": actor, "temperature": temp},
        opt_state={**state.opt_state, "actor": a_opt, "temperature": t_opt})
    return new_state, {**a_info, **t_info}


def _critic_scan_body(state: RLPDState, xs: tuple[ChunkBatch, jax.Array, jax.Array]
                      ) -> tuple[RLPDState, tuple[dict[str, jax.Array], jax.Array]]:
    minibatch, weights, key = xs
    state, metrics, td_abs = update_critic(state, minibatch, key, weights)
    return state, (metrics, td_abs)


def update(state: RLPDState, batch: ChunkBatch, key: jax.Array,
           weights: jax.Array | None = None
           ) -> tuple[RLPDState, dict[str, jax.Array], jax.Array]:
    """One UTD block: ``utd_ratio`` critic steps, then one actor and one temperature step.

    ``batch`` has B rows, B divisible by ``utd_ratio``; minibatch i is rows [i·b, (i+1)·b).
    ``weights (B,)`` multiply the per-sample critic loss (default ones).  Returns ``(state,
    metrics, td_abs (B,))``: ``td_abs`` row r from the critic step that trained on row r,
    before that step; critic metrics are means over the ``utd_ratio`` steps, actor and
    temperature metrics come from their single step.  Pure; jit/scan/vmap-safe.
    """
    config = state.config
    n = config.utd_ratio
    rows = batch.observations.shape[0]
    if rows % n:
        raise ValueError(f"batch of {rows} rows is not divisible by --agent.utd_ratio={n}")
    if weights is None:
        weights = jnp.ones((rows,), jnp.float32)
    key_critic, key_actor = jax.random.split(key)
    split = lambda x: x.reshape(n, rows // n, *x.shape[1:])  # noqa: E731
    minibatches = jax.tree.map(split, batch)
    state, (c_metrics, td_abs) = jax.lax.scan(
        _critic_scan_body, state, (minibatches, split(weights), jax.random.split(key_critic, n)))
    last = jax.tree.map(lambda x: x[-1], minibatches)
    state, a_metrics = update_actor(state, last, key_actor)
    metrics = {**jax.tree.map(jnp.mean, c_metrics), **a_metrics}
    return state, metrics, td_abs.reshape(rows)


def act(state: RLPDState, observations: jax.Array, key: jax.Array,
        deterministic: bool | jax.Array = False) -> jax.Array:
    """Actions for ``observations (B, D)`` → ``(B, K)``, or ``(D,)`` → ``(K,)``, in (−1, 1).

    tanh(μ + σ·ε) with ε from ``key``; tanh(μ) when ``deterministic`` (a Python or traced
    bool).  K = H·A is one open-loop chunk with action chunking.
    """
    chex.assert_rank(observations, {1, 2})  # trace-time guard: (D,) or (B, D) floats
    chex.assert_type(observations, float)
    single = observations.ndim == 1
    obs = observations[None] if single else observations
    mean, log_std = state.networks.actor.apply({"params": state.params["actor"]}, obs)
    sampled, _ = sample_tanh_gaussian(mean, log_std, key)
    actions = jnp.where(deterministic, jnp.tanh(mean), sampled)
    return actions[0] if single else actions


def _eval_act(state: RLPDState, observations: jax.Array, key: jax.Array) -> jax.Array:
    """Evaluation acts with the mean action tanh(μ)."""
    return act(state, observations, key, deterministic=True)


SPEC = AgentSpec(
    name="rlpd", config_cls=RLPDConfig, init=init, update=update, act=act, eval_act=_eval_act,
    rows_per_update=lambda config: config.rows_per_update,
    updates_per_env_step=lambda config, utd_ratio: 1,  # the UTD loop is inside ``update``
    exec_horizon=lambda config: config.horizon_length if config.action_chunking else 1,
    flag_keys=("horizon_length", "discount", "utd_ratio"),
    refused_flags=("use_weighted_target",))
