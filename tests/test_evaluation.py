"""MJX evaluation: the scripted oracle plugged in as the actor reproduces its success rate."""

import jax
import jax.numpy as jnp
import numpy as np

from envs_mjx import registry
from envs_mjx.rollout import episode_success, make_oracle_rollout
from envs_mjx.wrappers import ChunkedVecEnv, EpisodeWrapper
from tper_jit.tasks.evaluation import make_evaluate

# reach (the fastest task; the evaluator is task-agnostic), the okay tier: a success rate
# away from 1 (0.91 in docs/envs.md) with a small binomial spread
M, TIER = 64, 1


def oracle_policy(env, tier):
    def init(_, env_state, key):
        keys = jax.random.split(key, env_state.obs.shape[0])
        return jax.vmap(lambda s, k: env.oracle.init(env, s, k, jnp.int32(tier)))(env_state, keys)

    def step(_, ostate, env_state, key):
        keys = jax.random.split(key, env_state.obs.shape[0])
        action, ostate = jax.vmap(lambda o, s, k: env.oracle.act(env, o, s, k))(
            ostate, env_state, keys)
        return ostate, action[:, None, :]  # chunks of H = 1

    return init, step


def test_oracle_as_actor_matches_oracle_success_rate():
    base = registry.make("reach")
    venv = ChunkedVecEnv(base, M)
    evaluate = make_evaluate(venv, 1, policy=oracle_policy(base, TIER))
    res = evaluate(None, jax.random.PRNGKey(0))
    rollout = make_oracle_rollout(EpisodeWrapper(base))
    keys = jax.random.split(jax.random.PRNGKey(1), M)
    eps = rollout(keys, jnp.full((M,), TIER, jnp.int32))
    reference = float(np.mean(np.asarray(episode_success(eps))))
    rate = float(res["eval/success_rate"])
    # two independent samples of 64 Bernoulli(p ≈ 0.91): |diff| < 0.15 is ~3 sigma
    assert abs(rate - reference) < 0.15, (rate, reference)
    assert 0.7 < rate < 1.0
    assert 0 < float(res["eval/episode.length"]) <= venv.episode.episode_length
    # deterministic given the key
    again = evaluate(None, jax.random.PRNGKey(0))
    assert float(again["eval/success_rate"]) == rate
