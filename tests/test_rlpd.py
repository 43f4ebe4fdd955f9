"""RLPD agent: losses against numpy hand computations, the min-of-subset target, the UTD block.

The hand computations re-implement the networks in numpy (float64) from the parameter
dictionaries (Dense → LayerNorm (ε 1e-6) → ReLU, linear heads, log-std clip) and redo the
target/loss maths independently; the random draws are reproduced from the documented key
splits.  Every jitted function is compiled once per shape for the whole module.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.agents import rlpd, rlpd_networks
from tper_jit.replay.gather import ChunkBatch

B, D, A, H = 8, 3, 2, 3
K = H * A
E = 4
# Chunked, backup entropy on, BC term on: every term of both losses is live.
SMALL = rlpd.RLPDConfig(hidden_dims=(8, 8), num_qs=E, utd_ratio=2, batch_size=B, lr=1e-3,
                        action_chunking=True, horizon_length=H, bc_alpha=0.1)
# Plain RLPD (H = 1, single actions) with the backup-entropy switch off.
PLAIN = dataclasses.replace(SMALL, action_chunking=False, horizon_length=1, backup_entropy=False)
TOL = dict(rtol=2e-4, atol=2e-5)
KEY = jax.random.PRNGKey(7)

_init = jax.jit(rlpd.init, static_argnums=(1, 2, 3))
_update_critic = jax.jit(rlpd.update_critic)
_update_actor = jax.jit(rlpd.update_actor)
_act = jax.jit(rlpd.act)


# --------------------------------------------------------------------------- numpy networks


def np_mlp(p, x, layer_norm):
    x = np.asarray(x, np.float64)
    for i in range(len([k for k in p if k.startswith("dense_")])):
        x = x @ np.asarray(p[f"dense_{i}"]["kernel"], np.float64) + p[f"dense_{i}"]["bias"]
        if layer_norm:
            mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
            x = (x - mu) / np.sqrt(var + 1e-6) * p[f"ln_{i}"]["scale"] + p[f"ln_{i}"]["bias"]
        x = np.maximum(x, 0.0)
    return x


def np_dense(p, x):
    return x @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def np_critic(p, obs, act, layer_norm=True):
    """(E, ...) Q-values of every member."""
    ens = jax.tree.map(np.asarray, p["ensemble"])
    x = np.concatenate([np.asarray(obs), np.asarray(act)], -1)
    members = []
    for e in range(ens["head"]["kernel"].shape[0]):
        pe = jax.tree.map(lambda a, e=e: a[e], ens)
        members.append(np_dense(pe["head"], np_mlp(pe["mlp"], x, layer_norm))[..., 0])
    return np.stack(members)


def np_actor(p, obs):
    p = jax.tree.map(np.asarray, p)
    h = np_mlp(p["mlp"], obs, False)
    return np_dense(p["mean"], h), np.clip(np_dense(p["log_std"], h), -20.0, 2.0)


def np_log_prob_terms(u, mean, log_std):
    """Per-dim log density of tanh(u), u ~ N(mean, σ²): the textbook change of variables."""
    sigma = np.exp(log_std)
    log_normal = -0.5 * ((u - mean) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    return log_normal - np.log(1.0 - np.tanh(u) ** 2)


# --------------------------------------------------------------------------- fixtures


def make_batch(seed=0, h=H, rows=B):
    rng = np.random.default_rng(seed)
    valid = np.ones((rows, h), np.float32)
    masks = np.ones((rows, h), np.float32)
    if h > 1:
        valid[1, 1:] = 0  # termination at the first step: the critic row is invalid
        valid[2, h - 1] = 0
        masks[3, 1:] = 0  # terminated: no bootstrap
    else:
        valid[1] = 0  # a padded row
        masks[3] = 0
    return ChunkBatch(
        observations=jnp.asarray(rng.normal(size=(rows, D)), jnp.float32),
        actions=jnp.asarray(rng.uniform(-1, 1, (rows, h, A)), jnp.float32),
        rewards=jnp.asarray(rng.normal(size=(rows, h)), jnp.float32),
        masks=jnp.asarray(masks), terminals=jnp.asarray(1.0 - masks), valid=jnp.asarray(valid),
        next_observations=jnp.asarray(rng.normal(size=(rows, D)), jnp.float32),
        next_actions=jnp.zeros((rows, h, A)), next_actions_valid=jnp.zeros(rows),
        successes=jnp.zeros((rows, h)), episode_ids=jnp.zeros(rows, jnp.int32),
        starts=jnp.zeros(rows, jnp.int32))


def make_state(config, seed=0):
    """A state whose every parameter (biases, LayerNorm, target, log α) is perturbed in numpy,
    so the hand computations see every parameter take part."""
    state = _init(jax.random.PRNGKey(seed), D, A, config)
    rng = np.random.default_rng(100 + seed)
    noisy = lambda x: jnp.asarray(x + 0.2 * rng.normal(size=x.shape), x.dtype)  # noqa: E731
    params = jax.tree.map(noisy, jax.device_get(state.params))
    params["temperature"] = {"log_alpha": jnp.asarray(math.log(0.3), jnp.float32)}
    return state.replace(params=params, target_critic=jax.tree.map(noisy, params["critic"]))


@pytest.fixture(scope="module")
def batch():
    return make_batch()


@pytest.fixture(scope="module")
def state():
    return make_state(SMALL)


def concat(a, b):
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)


# --------------------------------------------------------------------------- hand computations


def hand_critic(state, batch, key, weights):
    """(loss, td_abs, y) for one critic step, keys split as ``split_critic_key``."""
    cfg = state.config
    k_next, k_subset = jax.random.split(key)
    p = jax.device_get(state.params)
    s, s2 = np.asarray(batch.observations), np.asarray(batch.next_observations)
    k = cfg.flat_action_dim(A)
    mean, log_std = np_actor(p["actor"], s2)
    u = mean + np.exp(log_std) * np.asarray(jax.random.normal(k_next, (B, k)))
    logp = np_log_prob_terms(u, mean, log_std).sum(-1)
    idx = np.asarray(jax.random.choice(k_subset, cfg.num_qs, (2,), replace=False))
    next_q = np_critic(jax.device_get(state.target_critic), s2, np.tanh(u))[idx].min(0)
    if cfg.backup_entropy:
        next_q = next_q - 0.3 * logp
    h = cfg.horizon_length
    y = np.asarray(batch.rewards)[:, -1] + cfg.discount ** h * np.asarray(batch.masks)[:, -1] \
        * next_q
    acts = np.asarray(batch.actions)
    acts = acts.reshape(B, -1) if cfg.action_chunking else acts[:, 0]
    qs = np_critic(p["critic"], s, acts)
    w = np.asarray(batch.valid)[:, -1] * np.asarray(weights)
    return np.mean((qs - y) ** 2 * w), np.abs(qs.mean(0) - y), y


@pytest.mark.parametrize("config", [SMALL, PLAIN], ids=["chunked", "plain"])
def test_critic_loss_and_td_abs_by_hand(config):
    state = make_state(config)
    batch = make_batch(h=config.horizon_length)
    weights = jnp.linspace(0.5, 2.0, B)
    _, m, td = _update_critic(state, batch, KEY, weights)
    loss, td_hand, y = hand_critic(state, batch, KEY, weights)
    np.testing.assert_allclose(m["critic/critic_loss"], loss, **TOL)
    assert td.shape == (B,)
    np.testing.assert_allclose(td, td_hand, **TOL)  # unmasked, ensemble mean
    np.testing.assert_allclose(m["critic/target_mean"], y.mean(), **TOL)
    valid = np.asarray(batch.valid)[:, -1]
    np.testing.assert_allclose(m["critic/td_error_mean"], (td_hand * valid).sum() / valid.sum(),
                               **TOL)
    # the invalid row carries no loss: changing its target leaves the loss unchanged
    b2 = batch.replace(rewards=batch.rewards.at[1].add(100.0))
    np.testing.assert_allclose(_update_critic(state, b2, KEY, weights)[1]["critic/critic_loss"],
                               m["critic/critic_loss"], **TOL)
    b3 = batch.replace(rewards=batch.rewards.at[0].add(100.0))
    assert _update_critic(state, b3, KEY, weights)[1]["critic/critic_loss"] > 10 * loss


def test_weights_multiply_per_sample_critic_loss(state, batch):
    row_losses = []
    for j in (0, 4):
        onehot = jnp.zeros(B).at[j].set(float(B))
        _, m, td = _update_critic(state, batch, KEY, onehot)
        loss, _, y = hand_critic(state, batch, KEY, np.ones(B))
        qs = np_critic(jax.device_get(state.params["critic"]), np.asarray(batch.observations),
                       np.asarray(batch.actions).reshape(B, -1))
        np.testing.assert_allclose(m["critic/critic_loss"], np.mean((qs[:, j] - y[j]) ** 2),
                                   **TOL)
        row_losses.append(float(m["critic/critic_loss"]))
    assert row_losses[0] != row_losses[1]
    # zero weights: zero loss, zero gradient, the critic does not move
    new, m, _ = _update_critic(state, batch, KEY, jnp.zeros(B))
    assert float(m["critic/critic_loss"]) == 0.0
    jax.tree.map(np.testing.assert_array_equal, new.params["critic"], state.params["critic"])


def test_polyak_target_update_after_each_critic_step(state, batch):
    new, _, _ = _update_critic(state, batch, KEY, jnp.ones(B))
    expect = jax.tree.map(lambda p, t: SMALL.tau * p + (1 - SMALL.tau) * t,
                          new.params["critic"], state.target_critic)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 new.target_critic, expect)
    assert int(new.step) == int(state.step) + 1
    # a critic step leaves the actor, α and their optimiser states alone
    for name in ("actor", "temperature"):
        jax.tree.map(np.testing.assert_array_equal, new.params[name], state.params[name])
        jax.tree.map(np.testing.assert_array_equal, new.opt_state[name], state.opt_state[name])


def test_target_is_min_over_two_distinct_random_members(batch):
    """Target members output the constants c_e; y must be R_H + γ^H·m_H·min(c[idx])."""
    cfg = dataclasses.replace(SMALL, backup_entropy=False)
    state = make_state(SMALL).replace(config=cfg)  # same shapes: no new init compile
    c = np.array([3.0, -1.0, 4.0, 2.0], np.float32)
    head = {"kernel": jnp.zeros_like(state.target_critic["ensemble"]["head"]["kernel"]),
            "bias": jnp.asarray(c[:, None])}
    target = {"ensemble": {**state.target_critic["ensemble"], "head": head}}
    nets = rlpd.make_networks(cfg, A)
    keys = jax.random.split(KEY, 300)

    @jax.jit
    def targets(keys):
        return jax.vmap(lambda k: rlpd.critic_target(nets, state.params, target, batch,
                                                     rlpd.split_critic_key(k), cfg))(keys)

    ys, idx = jax.device_get(targets(keys))
    assert idx.shape == (300, 2)
    assert np.all(idx[:, 0] != idx[:, 1])
    assert set(idx.ravel().tolist()) == set(range(E))
    assert {tuple(sorted(p)) for p in idx.tolist()} == {(i, j) for i in range(E)
                                                        for j in range(i + 1, E)}
    r, m = np.asarray(batch.rewards)[:, -1], np.asarray(batch.masks)[:, -1]
    expect = r[None] + cfg.discount ** H * m[None] * c[idx].min(-1)[:, None]
    np.testing.assert_allclose(ys, expect, **TOL)
    assert m[3] == 0 and np.allclose(ys[:, 3], r[3])  # termination: no bootstrap


def hand_actor(state, batch, key):
    p = jax.device_get(state.params)
    s = np.asarray(batch.observations)
    mean, log_std = np_actor(p["actor"], s)
    u = mean + np.exp(log_std) * np.asarray(jax.random.normal(key, (B, K)))
    logp = np_log_prob_terms(u, mean, log_std).sum(-1)
    q = np_critic(p["critic"], s, np.tanh(u)).mean(0)
    sac = np.mean(0.3 * logp - q)
    data = np.clip(np.asarray(batch.actions, np.float64).reshape(B, K), -1 + 1e-6, 1 - 1e-6)
    per_dim = np_log_prob_terms(np.arctanh(data), mean, log_std).reshape(B, H, A)
    bc = -np.mean((per_dim * np.asarray(batch.valid)[:, :, None]).sum((1, 2)))
    return sac, bc, -logp.mean()


def test_actor_and_temperature_losses_by_hand(state, batch):
    new, m = _update_actor(state, batch, KEY)
    sac, bc, entropy = hand_actor(state, batch, KEY)
    np.testing.assert_allclose(m["actor/sac_loss"], sac, **TOL)
    np.testing.assert_allclose(m["actor/bc_loss"], bc, **TOL)
    np.testing.assert_allclose(m["actor/actor_loss"], sac + SMALL.bc_alpha * bc, **TOL)
    np.testing.assert_allclose(m["actor/entropy"], entropy, **TOL)
    np.testing.assert_allclose(m["temperature/temperature"], 0.3, rtol=1e-6)
    assert SMALL.entropy_target(A) == -K / 2
    np.testing.assert_allclose(m["temperature/temperature_loss"], 0.3 * (entropy + K / 2), **TOL)
    # Adam's first step moves log α by lr against the sign of dL/dlog α = α·(entropy − target)
    step = float(new.params["temperature"]["log_alpha"]) - math.log(0.3)
    np.testing.assert_allclose(step, -SMALL.lr * np.sign(entropy + K / 2), rtol=1e-3)
    assert not np.allclose(new.params["actor"]["mean"]["kernel"],
                           state.params["actor"]["mean"]["kernel"])
    jax.tree.map(np.testing.assert_array_equal, new.params["critic"], state.params["critic"])


def test_tanh_gaussian_log_prob_matches_formula():
    rng = np.random.default_rng(3)
    u = np.concatenate([rng.normal(size=(5, 4)) * 3, np.full((1, 4), 8.0)])
    mean, log_std = rng.normal(size=(6, 4)), rng.uniform(-3, 1, (6, 4))
    got = rlpd_networks.tanh_gaussian_log_prob_terms(jnp.asarray(u), jnp.asarray(mean),
                                            jnp.asarray(log_std))
    np.testing.assert_allclose(got, np_log_prob_terms(u, mean, log_std), rtol=1e-4, atol=1e-3)
    a, logp = rlpd_networks.sample_tanh_gaussian(jnp.asarray(mean), jnp.asarray(log_std), KEY)
    u_s = mean + np.exp(log_std) * np.asarray(jax.random.normal(KEY, (6, 4)))
    np.testing.assert_allclose(a, np.tanh(u_s), **TOL)
    np.testing.assert_allclose(logp, np_log_prob_terms(u_s, mean, log_std).sum(-1), **TOL)


# --------------------------------------------------------------------------- the UTD block


SEEDS = 3


@pytest.fixture(scope="module")
def seeded_run():
    """``jit(vmap(init → update))`` over 3 seeds on a 2·B-row batch (two critic minibatches):
    one compile serves the vmap test and the UTD-equals-loop test."""
    big = concat(make_batch(0), make_batch(1))
    weights = jnp.linspace(0.5, 1.5, 2 * B)
    seeds = jax.random.split(KEY, SEEDS)

    def run(key):
        state = rlpd.init(key, D, A, SMALL)
        return (state, *rlpd.update(state, big, key, weights))

    return (big, weights, seeds, *jax.jit(jax.vmap(run))(seeds))


def test_utd_block_equals_loop_of_single_steps(seeded_run):
    big, weights, seeds, states, finals, metrics, td = seeded_run
    seed = 1
    pick = lambda tree: jax.tree.map(lambda x: x[seed], tree)  # noqa: E731
    state, new = pick(states), pick(finals)
    key_critic, key_actor = jax.random.split(seeds[seed])
    loop, tds, losses = state, [], []
    for i, k in enumerate(jax.random.split(key_critic, SMALL.utd_ratio)):
        rows = slice(i * B, (i + 1) * B)
        mb = jax.tree.map(lambda x, rows=rows: x[rows], big)
        loop, m, t = _update_critic(loop, mb, k, weights[rows])
        tds.append(t)
        losses.append(m["critic/critic_loss"])
    loop, a_metrics = _update_actor(loop, mb, key_actor)  # the last minibatch
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # noqa: E731
    jax.tree.map(close, new.params, loop.params)
    jax.tree.map(close, new.target_critic, loop.target_critic)
    jax.tree.map(close, new.opt_state, loop.opt_state)
    close(td[seed], np.concatenate(tds))
    close(metrics["critic/critic_loss"][seed], np.mean(losses))
    for name in ("actor/actor_loss", "actor/entropy", "temperature/temperature_loss"):
        close(metrics[name][seed], a_metrics[name])
    assert int(new.step) == SMALL.utd_ratio
    # the target critic moved (once per critic step)
    assert not np.allclose(new.target_critic["ensemble"]["head"]["kernel"],
                           state.target_critic["ensemble"]["head"]["kernel"])


def test_vmap_over_seeds_gives_different_params(seeded_run):
    _, _, _, states, finals, metrics, td = seeded_run
    assert td.shape == (SEEDS, 2 * B)
    for name, value in metrics.items():
        assert value.shape == (SEEDS,) and np.all(np.isfinite(value)), name
    for tree in (states.params, finals.params):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            if "kernel" in jax.tree_util.keystr(path):
                assert not np.allclose(leaf[0], leaf[1]) and not np.allclose(leaf[1], leaf[2])
    assert len(set(np.asarray(metrics["critic/critic_loss"]).round(6).tolist())) == SEEDS


def test_update_rejects_rows_not_divisible_by_utd(state):
    with pytest.raises(ValueError, match="utd_ratio"):
        rlpd.update(state, make_batch(rows=7), KEY)


# --------------------------------------------------------------------------- acting, config


def test_act_is_squashed_gaussian(state, batch):
    obs = batch.observations
    mean, log_std = np_actor(jax.device_get(state.params["actor"]), np.asarray(obs))
    det = _act(state, obs, KEY, True)
    np.testing.assert_allclose(det, np.tanh(mean), **TOL)
    sto = _act(state, obs, KEY, False)
    eps = np.asarray(jax.random.normal(KEY, (B, K)))
    np.testing.assert_allclose(sto, np.tanh(mean + np.exp(log_std) * eps), **TOL)
    assert sto.shape == (B, K) and np.all(np.abs(sto) <= 1)
    assert rlpd.act(state, obs[0], KEY).shape == (K,)


def test_networks_and_init_shapes():
    state = jax.eval_shape(lambda: rlpd.init(KEY, D, A, SMALL))
    critic = state.params["critic"]["ensemble"]
    assert critic["mlp"]["dense_0"]["kernel"].shape == (E, D + K, 8)
    assert "ln_0" in critic["mlp"] and "ln_1" in critic["mlp"]
    assert state.params["actor"]["mean"]["kernel"].shape == (8, K)
    assert state.params["temperature"]["log_alpha"].shape == ()
    no_ln = jax.eval_shape(lambda: rlpd.init(KEY, D, A, dataclasses.replace(
        PLAIN, critic_layer_norm=False)))
    assert not any(k.startswith("ln") for k in no_ln.params["critic"]["ensemble"]["mlp"])
    assert no_ln.params["actor"]["mean"]["kernel"].shape == (8, A)
    real = _init(KEY, D, A, SMALL)
    kernels = real.params["critic"]["ensemble"]["mlp"]["dense_0"]["kernel"]
    assert not np.allclose(kernels[0], kernels[1])  # members initialised independently
    np.testing.assert_allclose(float(rlpd.temperature(real.params)), 1.0, rtol=1e-6)
    jax.tree.map(np.testing.assert_array_equal, real.target_critic, real.params["critic"])


def test_presets_and_defaults():
    p = rlpd.PRESETS
    assert p["rlpd"].horizon_length == 1 and not p["rlpd"].action_chunking
    assert p["rlpd-ac"].horizon_length == 5 and p["rlpd-ac"].action_chunking
    assert p["rlpd-ac"].bc_alpha == 0.0 and p["qc-rlpd"].bc_alpha == 0.01
    d = rlpd.RLPDConfig()
    assert (d.num_qs, d.num_min_qs, d.utd_ratio, d.hidden_dims) == (10, 2, 20, (256, 256))
    assert d.backup_entropy and d.critic_layer_norm and d.rows_per_update == 256 * 20
    assert p["rlpd-ac"].entropy_target(4) == -10.0
    assert hash(rlpd.RLPDConfig(hidden_dims=[8, 8])) == hash(rlpd.RLPDConfig(hidden_dims=(8, 8)))


@pytest.mark.parametrize("field,value", [
    ("num_min_qs", 11), ("utd_ratio", 0), ("horizon_length", 0), ("discount", 1.5),
    ("init_temperature", 0.0), ("bc_alpha", -1.0), ("backup_entropy", "yes"),
    ("hidden_dims", ()), ("log_std_min", 3.0),
])
def test_bad_config_names_the_flag(field, value):
    with pytest.raises(ValueError, match=rf"--agent\.{field}\b"):
        rlpd.RLPDConfig(**{field: value})
