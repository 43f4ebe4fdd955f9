"""ACFQL agent: every loss term against a hand computation, update/scan/vmap behaviour.

The hand computations re-implement the networks in numpy (float64) from the parameter
dictionaries: Dense → GELU (tanh form) → LayerNorm (ε 1e-6) and a linear last layer.  The
random draws (x0, t, z) are reproduced from the same named key splits as ``update``.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.agents import acfql, registry
from tper_jit.replay.gather import ChunkBatch

B, D, A, H = 8, 3, 2, 3
K = H * A
SMALL = acfql.ACFQLConfig(hidden_dims=(16, 16), horizon_length=H, alpha=10.0, lr=1e-3)
# q_agg min and the SARSA-weighted target share one config (one compile fewer); the hand
# computation covers both features term by term.
MIN_SARSA = dataclasses.replace(SMALL, q_agg="min", use_weighted_target=True, beta=0.3)
TOL = dict(rtol=2e-4, atol=2e-5)


# --------------------------------------------------------------------------- numpy networks


def np_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def np_mlp(p, x, layer_norm):
    x = np.asarray(x, np.float64)
    n = len([k for k in p if k.startswith("dense_")])
    for i in range(n):
        x = x @ np.asarray(p[f"dense_{i}"]["kernel"], np.float64) + np.asarray(
            p[f"dense_{i}"]["bias"], np.float64)
        if i < n - 1:
            x = np_gelu(x)
            if layer_norm:
                mu = x.mean(-1, keepdims=True)
                var = x.var(-1, keepdims=True)
                x = (x - mu) / np.sqrt(var + 1e-6) * np.asarray(p[f"ln_{i}"]["scale"]) + \
                    np.asarray(p[f"ln_{i}"]["bias"])
    return x


def np_critic(p, obs, act, layer_norm=True):
    """(E, ...) Q-values."""
    mlp = p["ensemble"]["mlp"]
    num = mlp["dense_0"]["kernel"].shape[0]
    x = np.concatenate([np.asarray(obs), np.asarray(act)], -1)
    return np.stack([np_mlp(jax.tree.map(lambda a, e=e: np.asarray(a)[e], mlp), x,
                            layer_norm)[..., 0] for e in range(num)])


def np_flow(p, obs, x, t):
    return np_mlp(p["mlp"], np.concatenate([obs, x, t], -1), False)


def np_onestep(p, obs, z):
    return np_mlp(p["mlp"], np.concatenate([obs, z], -1), False)


def np_euler(p, obs, noise, steps):
    x = np.asarray(noise, np.float64)
    for i in range(steps):
        t = np.full((*x.shape[:-1], 1), i / steps)
        x = x + np_flow(p, obs, x, t) / steps
    return np.clip(x, -1, 1)


def np_agg(qs, how):
    return qs.mean(0) if how == "mean" else qs.min(0)


# --------------------------------------------------------------------------- fixtures


def make_batch(seed=0, h=H):
    rng = np.random.default_rng(seed)
    valid = np.ones((B, h), np.float32)
    valid[1, 1:] = 0  # a termination at the chunk's first step: critic row invalid
    valid[2, h - 1] = 0
    masks = np.ones((B, h), np.float32)
    masks[3, 1:] = 0  # terminated: no bootstrap
    masks[4, -1] = 0
    return ChunkBatch(
        observations=jnp.asarray(rng.normal(size=(B, D)), jnp.float32),
        actions=jnp.asarray(rng.uniform(-1, 1, (B, h, A)), jnp.float32),
        rewards=jnp.asarray(rng.normal(size=(B, h)), jnp.float32),
        masks=jnp.asarray(masks),
        terminals=jnp.asarray(1.0 - masks),
        valid=jnp.asarray(valid),
        next_observations=jnp.asarray(rng.normal(size=(B, D)), jnp.float32),
        next_actions=jnp.asarray(rng.uniform(-1, 1, (B, h, A)), jnp.float32),
        next_actions_valid=jnp.asarray([1, 0, 1, 1, 0, 1, 1, 0], jnp.float32),
        successes=jnp.zeros((B, h)),
        episode_ids=jnp.zeros(B, jnp.int32),
        starts=jnp.zeros(B, jnp.int32),
    )


_init = jax.jit(acfql.init, static_argnums=(1, 2, 3))
_update = jax.jit(acfql.update)
_act = jax.jit(acfql.act)


def make_state(config, seed=0):
    """A fresh state for ``config`` whose target critic differs from the critic.

    Parameters are initialised under the shape-defining fields only (chunking, H), then the
    config is swapped in: configs that differ in static non-shape fields share one compiled
    init.  The target is perturbed in numpy so no compile is needed.
    """
    # without chunking the shapes do not depend on H
    shape_cfg = dataclasses.replace(
        SMALL, action_chunking=config.action_chunking,
        horizon_length=config.horizon_length if config.action_chunking else 1)
    state = _init(jax.random.PRNGKey(seed), D, A, shape_cfg).replace(config=config)
    rng = np.random.default_rng(100 + seed)
    target = jax.tree.map(lambda x: jnp.asarray(x + 0.1 * rng.normal(size=x.shape), x.dtype),
                          jax.device_get(state.target_critic))
    return state.replace(target_critic=target)


def losses(state, batch, key, weights=None):
    """(total loss, metrics, td_abs) before the step, read from ``update`` (one compile per
    config: weights are always passed)."""
    if weights is None:
        weights = jnp.ones(B, jnp.float32)
    _, metrics, td_abs = _update(state, batch, key, weights)
    return metrics["critic/critic_loss"] + metrics["actor/actor_loss"], metrics, td_abs


@pytest.fixture(scope="module")
def batch():
    return make_batch()


KEY = jax.random.PRNGKey(7)


# --------------------------------------------------------------------------- hand computations


def hand_critic(state, batch, key, weights, h=H):
    """(loss, td_abs, y) of ALGORITHM §1 (and §6 with use_weighted_target)."""
    cfg = state.config
    keys = acfql.split_update_key(key)
    p = jax.device_get(state.params)
    tgt = jax.device_get(state.target_critic)
    s, s2 = np.asarray(batch.observations), np.asarray(batch.next_observations)
    k = cfg.flat_action_dim(A)
    z = np.asarray(jax.random.normal(keys.next_actions, (B, k)))
    a2 = np.clip(np_onestep(p["actor_onestep"], s2, z), -1, 1)
    next_q = np_agg(np_critic(tgt, s2, a2), cfg.q_agg)
    if cfg.use_weighted_target:
        na = np.asarray(batch.next_actions)
        na = na.reshape(B, -1) if cfg.action_chunking else na[:, 0]
        q_data = np_agg(np_critic(tgt, s2, na), cfg.q_agg)
        mixed = (1 - cfg.beta) * q_data + cfg.beta * next_q
        next_q = np.where(np.asarray(batch.next_actions_valid) > 0, mixed, next_q)
    y = np.asarray(batch.rewards)[:, -1] + cfg.discount ** h * np.asarray(batch.masks)[:, -1] \
        * next_q
    acts = np.asarray(batch.actions)
    acts = acts.reshape(B, -1) if cfg.action_chunking else acts[:, 0]
    qs = np_critic(p["critic"], s, acts)
    w = np.asarray(batch.valid)[:, -1] * (np.ones(B) if weights is None else np.asarray(weights))
    loss = np.mean((qs - y) ** 2 * w)
    td = np.abs(np_agg(qs, cfg.q_agg) - y)
    return loss, td, y


@pytest.mark.parametrize("config", [SMALL, MIN_SARSA], ids=["mean", "min-sarsa"])
def test_critic_loss_and_td_abs_by_hand(batch, config):
    state = make_state(config)
    weights = jnp.linspace(0.5, 2.0, B)
    _, m, td = losses(state, batch, KEY, weights)
    loss, td_hand, _ = hand_critic(state, batch, KEY, weights)
    np.testing.assert_allclose(m["critic/critic_loss"], loss, **TOL)
    assert td.shape == (B,)
    np.testing.assert_allclose(td, td_hand, **TOL)
    valid = np.asarray(batch.valid)[:, -1]
    np.testing.assert_allclose(m["critic/td_error_mean"], (td_hand * valid).sum() / valid.sum(),
                               **TOL)
    # invalid rows carry no loss: changing their targets leaves the loss unchanged
    b2 = batch.replace(rewards=batch.rewards.at[1].add(100.0))
    np.testing.assert_allclose(losses(state, b2, KEY, weights)[1]["critic/critic_loss"],
                               m["critic/critic_loss"], **TOL)


def test_actor_losses_by_hand(batch):
    state = make_state(SMALL)
    cfg = state.config
    _, m, _ = losses(state, batch, KEY)
    keys = acfql.split_update_key(KEY)
    p = jax.device_get(state.params)
    s = np.asarray(batch.observations)
    a = np.asarray(batch.actions).reshape(B, K)
    x0 = np.asarray(jax.random.normal(keys.flow_noise, (B, K)))
    t = np.asarray(jax.random.uniform(keys.flow_time, (B, 1)))
    pred = np_flow(p["actor_bc_flow"], s, (1 - t) * x0 + t * a, t)
    sq = ((pred - (a - x0)) ** 2).reshape(B, H, A) * np.asarray(batch.valid)[:, :, None]
    bc = sq.mean()
    np.testing.assert_allclose(m["actor/bc_flow_loss"], bc, **TOL)

    z = np.asarray(jax.random.normal(keys.distill_noise, (B, K)))
    target = np_euler(p["actor_bc_flow"], s, z, cfg.flow_steps)
    mu = np_onestep(p["actor_onestep"], s, z)
    distill = np.mean((mu - target) ** 2)
    np.testing.assert_allclose(m["actor/distill_loss"], distill, **TOL)
    q = np_critic(p["critic"], s, np.clip(mu, -1, 1)).mean(0)
    np.testing.assert_allclose(m["actor/q_loss"], -q.mean(), **TOL)
    np.testing.assert_allclose(m["actor/actor_loss"], bc + cfg.alpha * distill - q.mean(), **TOL)
    np.testing.assert_allclose(m["actor/mse"], np.mean((np.clip(mu, -1, 1) - a) ** 2), **TOL)


def test_sarsa_weighted_target_uses_next_actions_and_falls_back(batch):
    state = make_state(MIN_SARSA)
    _, m, td = losses(state, batch, KEY)
    loss, td_hand, y = hand_critic(state, batch, KEY, None)
    np.testing.assert_allclose(m["critic/critic_loss"], loss, **TOL)
    np.testing.assert_allclose(td, td_hand, **TOL)
    # rows without a next data chunk equal the plain policy target
    plain = dataclasses.replace(MIN_SARSA, use_weighted_target=False)
    _, _, y_plain = hand_critic(make_state(plain), batch, KEY, None)
    invalid = np.asarray(batch.next_actions_valid) == 0
    np.testing.assert_allclose(y[invalid], y_plain[invalid], **TOL)
    assert not np.allclose(y[~invalid], y_plain[~invalid])
    # garbage in the missing next chunks changes nothing
    b2 = batch.replace(next_actions=jnp.where(batch.next_actions_valid[:, None, None] > 0,
                                              batch.next_actions, 1e3))
    np.testing.assert_allclose(losses(state, b2, KEY)[2], td, **TOL)


def test_no_chunking_uses_first_action_and_h_step_return(batch):
    cfg = dataclasses.replace(SMALL, action_chunking=False)
    state = make_state(cfg)
    assert state.params["actor_onestep"]["mlp"]["dense_2"]["kernel"].shape[-1] == A
    _, m, td = losses(state, batch, KEY)
    loss, td_hand, _ = hand_critic(state, batch, KEY, None)
    np.testing.assert_allclose(m["critic/critic_loss"], loss, **TOL)
    np.testing.assert_allclose(td, td_hand, **TOL)
    assert _act(state, batch.observations, KEY).shape == (B, A)
    # H = 1 is FQL: one-step batches work end to end
    fql = make_state(dataclasses.replace(cfg, horizon_length=1))
    b1 = make_batch(h=1)
    _, metrics, td1 = losses(fql, b1, KEY)
    assert td1.shape == (B,) and np.isfinite(metrics["critic/critic_loss"])


# --------------------------------------------------------------------------- update behaviour


def test_gradient_routing(batch):
    """Critic params get only L_critic's gradient (critic frozen in L_q); the flow gets only
    L_bc's (frozen in the distillation target); L_actor never reaches the critic."""
    state = make_state(SMALL)
    bc_only = dataclasses.replace(SMALL, actor_type="best-of-n")

    @jax.jit
    def grads(params, target, batch, key):
        keys = acfql.split_update_key(key)
        nets = acfql.make_networks(SMALL, A)
        ones = jnp.ones(B)
        g_total = jax.grad(lambda p: acfql.total_loss(p, target, batch, key, SMALL, A)[0])(params)
        g_critic = jax.grad(lambda p: acfql.critic_loss(nets, p, target, batch,
                                                        keys.next_actions, SMALL, ones)[0])(params)
        g_bc = jax.grad(lambda p: acfql.actor_loss(nets, p, batch, keys, bc_only)[0])(params)
        return g_total, g_critic, g_bc

    g_total, g_critic, g_bc = grads(state.params, state.target_critic, batch, KEY)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # noqa: E731
    # total = critic + actor; the actor part adds nothing to the critic's gradient
    jax.tree.map(close, g_total["critic"], g_critic["critic"])
    for net in ("actor_bc_flow", "actor_onestep"):
        jax.tree.map(lambda g: np.testing.assert_array_equal(g, 0), g_critic[net])
    # the flow's gradient is L_bc's alone: the distillation target is frozen
    jax.tree.map(close, g_total["actor_bc_flow"], g_bc["actor_bc_flow"])
    assert all(np.abs(g).max() > 0 for g in jax.tree.leaves(g_total["actor_onestep"]))


def test_update_lowers_total_loss(batch):
    state = make_state(SMALL)
    before = losses(state, batch, KEY)[0]
    for i in range(30):
        state, _, _ = _update(state, batch, jax.random.fold_in(KEY, i), jnp.ones(B))
    after = losses(state, batch, KEY)[0]
    assert after < 0.8 * before, (before, after)


def test_polyak_target_update(batch):
    state = make_state(SMALL)
    new, _, _ = _update(state, batch, KEY, jnp.ones(B))
    expect = jax.tree.map(lambda p, t: SMALL.tau * p + (1 - SMALL.tau) * t,
                          new.params["critic"], state.target_critic)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 new.target_critic, expect)
    assert int(new.step) == 1


def test_update_metrics_are_scalars_and_params_move(batch):
    state = make_state(SMALL)
    new, metrics, td = _update(state, batch, KEY, jnp.ones(B))
    assert td.shape == (B,)
    for name in ("critic/critic_loss", "critic/q_mean", "critic/q_max", "critic/q_min",
                 "critic/td_error_mean", "actor/bc_flow_loss", "actor/distill_loss",
                 "actor/q_loss", "actor/actor_loss", "actor/mse"):
        assert metrics[name].shape == () and np.isfinite(metrics[name])
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), new.params, state.params)
    for net in ("critic", "actor_bc_flow", "actor_onestep"):
        assert all(jax.tree.leaves(changed[net])), net


SEEDS = 3
STEPS = 3


@pytest.fixture(scope="module")
def seeded_run(batch):
    """``jit(vmap(init))`` over 3 seeds, then ``jit(vmap(scan(update)))`` for 3 steps: the
    whole-run-as-a-function-of-a-key pattern, compiled once for both tests below."""
    seeds = jax.random.split(KEY, SEEDS)
    states = jax.jit(jax.vmap(lambda k: acfql.init(k, D, A, SMALL)))(seeds)
    step_keys = jax.vmap(lambda k: jax.random.split(k, STEPS))(seeds)  # (SEEDS, STEPS, 2)

    def run(state, keys):
        def body(s, k):
            s, m, td = acfql.update(s, batch, k, jnp.ones(B))
            return s, (m["critic/critic_loss"], td)
        return jax.lax.scan(body, state, keys)

    finals, (losses_scan, tds) = jax.jit(jax.vmap(run))(states, step_keys)
    return seeds, step_keys, states, finals, losses_scan, tds


def test_scan_equals_single_steps(seeded_run, batch):
    seeds, step_keys, states, finals, losses_scan, tds = seeded_run
    seed = 1
    single = _init(seeds[seed], D, A, SMALL)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[seed], b), states, single)
    for i in range(STEPS):
        single, m, td = _update(single, batch, step_keys[seed, i], jnp.ones(B))
        np.testing.assert_allclose(losses_scan[seed, i], m["critic/critic_loss"], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(tds[seed, i], td, rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[seed], b, rtol=1e-5, atol=1e-6),
                 finals, single)
    assert int(single.step) == STEPS


def test_vmap_over_seeds_gives_different_params(seeded_run):
    _, _, states, finals, losses_scan, tds = seeded_run
    assert tds.shape == (SEEDS, STEPS, B) and losses_scan.shape == (SEEDS, STEPS)
    for tree in (states.params, finals.params):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            if "kernel" in jax.tree_util.keystr(path):  # biases and LN start equal
                assert not np.allclose(leaf[0], leaf[1]) and not np.allclose(leaf[1], leaf[2])
    assert len(set(np.asarray(losses_scan[:, 0]).round(6).tolist())) == SEEDS


# --------------------------------------------------------------------------- acting, networks


def test_act_distill_ddpg_is_clipped_one_step_policy(batch):
    state = make_state(SMALL)
    out = _act(state, batch.observations, KEY)
    assert out.shape == (B, K)
    z = np.asarray(jax.random.normal(KEY, (B, K)))
    mu = np_onestep(jax.device_get(state.params["actor_onestep"]), np.asarray(batch.observations),
                    z)
    np.testing.assert_allclose(out, np.clip(mu, -1, 1), **TOL)
    single = _act(state, batch.observations[0], KEY)
    assert single.shape == (K,)


@pytest.fixture(scope="module")
def bon_state():
    return make_state(dataclasses.replace(SMALL, actor_type="best-of-n", actor_num_samples=5))


def test_best_of_n_picks_argmax_q(batch, bon_state):
    cfg = bon_state.config
    p = jax.device_get(bon_state.params)
    obs = np.asarray(batch.observations)
    out = np.asarray(_act(bon_state, batch.observations, KEY))
    assert out.shape == (B, K) and np.all(np.abs(out) <= 1)
    noises = np.asarray(jax.random.normal(KEY, (B, cfg.actor_num_samples, K)))
    obs_n = np.repeat(obs[:, None], cfg.actor_num_samples, 1)
    cands = np_euler(p["actor_bc_flow"], obs_n, noises, cfg.flow_steps)
    scores = np_critic(p["critic"], obs_n, cands).mean(0)  # (B, N)
    np.testing.assert_allclose(out, cands[np.arange(B), scores.argmax(-1)], rtol=1e-4, atol=1e-4)
    assert len(set(scores.argmax(-1).tolist())) > 1  # the choice is not trivially index 0


def test_best_of_n_trains_only_bc(batch, bon_state):
    new, m, _ = _update(bon_state, batch, KEY, jnp.ones(B))
    np.testing.assert_allclose(m["actor/actor_loss"], m["actor/bc_flow_loss"], **TOL)
    assert float(m["actor/distill_loss"]) == 0.0 and float(m["actor/q_loss"]) == 0.0
    jax.tree.map(np.testing.assert_array_equal, new.params["actor_onestep"],
                 bon_state.params["actor_onestep"])
    assert not np.allclose(new.params["actor_bc_flow"]["mlp"]["dense_0"]["kernel"],
                           bon_state.params["actor_bc_flow"]["mlp"]["dense_0"]["kernel"])


def test_network_init_and_structure():
    state = _init(KEY, D, A, SMALL)
    p = state.params
    critic = p["critic"]["ensemble"]["mlp"]
    assert critic["dense_0"]["kernel"].shape == (SMALL.num_qs, D + K, 16)
    assert "ln_0" in critic and "ln_1" in critic and "ln_2" not in critic
    assert not np.allclose(critic["dense_0"]["kernel"][0], critic["dense_0"]["kernel"][1])
    assert p["actor_bc_flow"]["mlp"]["dense_0"]["kernel"].shape == (D + K + 1, 16)
    assert p["actor_onestep"]["mlp"]["dense_0"]["kernel"].shape == (D + K, 16)
    assert not any(k.startswith("ln") for k in p["actor_bc_flow"]["mlp"])
    for leaf_path, leaf in jax.tree_util.tree_leaves_with_path(p):
        if "bias" in jax.tree_util.keystr(leaf_path) and "ln_" not in jax.tree_util.keystr(
                leaf_path):
            assert np.all(np.asarray(leaf) == 0)
    # Glorot uniform: |w| <= sqrt(6 / (fan_in + fan_out))
    w = np.asarray(p["actor_onestep"]["mlp"]["dense_0"]["kernel"])
    assert np.abs(w).max() <= np.sqrt(6 / (D + K + 16))
    jax.tree.map(np.testing.assert_array_equal, state.target_critic, p["critic"])


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("field,value", [
    ("q_agg", "mena"), ("actor_type", "best_of_n"), ("horizon_length", 0), ("discount", 1.5),
    ("tau", -0.1), ("hidden_dims", ()), ("num_qs", 0), ("flow_steps", 0), ("lr", 0.0),
    ("beta", 2.0), ("weight_decay", -1.0), ("action_chunking", "yes"), ("batch_size", 2.5),
])
def test_bad_config_names_the_flag(field, value):
    with pytest.raises(ValueError, match=rf"--agent\.{field}\b"):
        acfql.ACFQLConfig(**{field: value})


def test_config_is_hashable_and_registry():
    cfg = acfql.ACFQLConfig(hidden_dims=[8, 8])
    assert cfg.hidden_dims == (8, 8) and hash(cfg) == hash(acfql.ACFQLConfig(hidden_dims=(8, 8)))
    assert registry.AGENTS["acfql"] is acfql.SPEC and registry.get("acfql").update is acfql.update
    with pytest.raises(ValueError, match="--agent_type must be one of"):
        registry.get("acfq")
    with pytest.raises(TypeError, match="not the config of a registered agent"):
        registry.spec_of(object())
    assert acfql.ACFQLConfig(weight_decay=0.1).weight_decay == 0.1


def test_weight_decay_uses_adamw():
    params = {"w": jnp.array([1.0, 2.0, -3.0])}
    grads = {"w": jnp.array([0.5, 0.1, -0.3])}
    wd = dataclasses.replace(SMALL, weight_decay=0.5)
    adam, adamw = acfql.make_optimizer(SMALL), acfql.make_optimizer(wd)
    up_a, _ = adam.update(grads, adam.init(params), params)
    up_w, _ = adamw.update(grads, adamw.init(params), params)
    # AdamW = the Adam step minus lr · weight_decay · θ (decoupled decay)
    np.testing.assert_allclose(up_w["w"], up_a["w"] - SMALL.lr * 0.5 * params["w"], rtol=1e-5)
