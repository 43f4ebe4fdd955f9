"""The online phase inside the jitted step: MJX chunk rollouts → replay → T-PER → updates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs_mjx import registry
from envs_mjx.wrappers import ChunkedVecEnv
from tper_jit.cli import parse_args
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.loop.offline import make_offline_trainer
from tper_jit.loop.online import init_online_state, make_iteration, online_sampler_config
from tper_jit.replay.store import ONLINE
from tper_jit.tasks.resolve import RewardRule

N, H, EP_LEN = 2, 2, 3
START = 3 * N * H  # --start_training (env steps): the 4th iteration is the first to learn


def _config(**over):
    flags = {"env_name": "reach", "num_envs": N, "horizon_length": H, "buffer_size": 64,
             "use_ptr_backward": True, "use_ptr_online_priority": True, "utd_ratio": 1,
             "ptr_warmup_steps": 0, "start_training": 0, "seed": 3}
    flags.update(over)
    argv = [f"--{k}={v}" for k, v in flags.items()]
    argv += ["--agent.hidden_dims=16,16", "--agent.batch_size=8", "--agent.flow_steps=2"]
    return parse_args(argv)


@pytest.fixture(scope="module")
def setup():
    venv = ChunkedVecEnv(registry.make("reach"), N, episode_length=EP_LEN)
    obs_dim = venv.episode.observation_size
    ds = make_synthetic_dataset(obs_dim, n=60, episode_length=10, env_name="reach")
    cfg = _config(start_training=START)
    store_kwargs = {"num_streams": N, "rows_per_stream": 32, "max_episode_length": EP_LEN}
    trainer = make_offline_trainer(cfg, ds, store_kwargs=store_kwargs)
    scfg = online_sampler_config(cfg, H)
    iteration = make_iteration(venv, trainer.agent_config, scfg, cfg, RewardRule(shift=-1.0))
    state = init_online_state(cfg, trainer.init_state, venv)
    return venv, trainer, jax.jit(iteration), state


@pytest.fixture(scope="module")
def four_iterations(setup):
    """Four jitted iterations from the fixture state, and what the env did in each: the
    (N, H) transitions of ``venv.step`` under the same keys and actions, computed outside."""
    from tper_jit.agents import acfql

    venv, _, it, state = setup
    step = jax.jit(venv.step)
    act = jax.jit(acfql.act)
    expected, states, metrics = [], [state], []
    s = state
    for _ in range(4):  # 8 sub-steps per env: two episodes of 3 steps, dropped chunk tails
        _, k_act, _ = jax.random.split(s.key, 3)
        actions = act(s.agent, s.env_state.obs, k_act).reshape(N, H, -1)
        _, tr = step(s.env_state, actions)
        expected.append(jax.tree.map(np.asarray, tr))
        s, m = it(s, None)
        states.append(s)
        metrics.append(m)
    return expected, states, metrics


def test_one_iteration_writes_exactly_the_env_transitions(four_iterations):
    expected, states, all_metrics = four_iterations
    s, metrics = states[-1], all_metrics[-1]
    valid = np.concatenate([e.valid for e in expected], axis=1)  # (N, 8)
    assert int(s.env_steps) == valid.sum() == N * 2 * EP_LEN
    st = s.replay.store
    valid = np.concatenate([e.valid for e in expected], axis=1)  # (N, 8)
    assert int(s.env_steps) == valid.sum() == N * 2 * EP_LEN
    for env in range(N):
        rows = env * st.rows_per_stream + np.arange(valid[env].sum())
        cat = {k: np.concatenate([getattr(e, k) for e in expected], 1)[env][valid[env]]
               for k in ("obs", "action", "reward", "next_obs", "success", "terminated",
                         "truncated")}
        np.testing.assert_allclose(np.asarray(st.online.observations)[rows], cat["obs"],
                                   atol=1e-5)
        np.testing.assert_allclose(np.asarray(st.online.actions)[rows], cat["action"],
                                   atol=1e-6)  # act outside vs inside jit: float rounding
        np.testing.assert_allclose(np.asarray(st.online.rewards)[rows], cat["reward"] - 1.0)
        np.testing.assert_allclose(np.asarray(st.online.next_observations)[rows],
                                   cat["next_obs"], atol=1e-5)
        ends = cat["terminated"] | cat["truncated"]
        np.testing.assert_array_equal(np.asarray(st.online.terminals)[rows], ends)
        np.testing.assert_array_equal(np.flatnonzero(ends), [2, 5])  # two episodes of 3
    t = st.episodes
    online = np.asarray(t.source) == ONLINE
    fin = online & np.asarray(t.finished) & np.asarray(t.valid)
    assert fin.sum() == 2 * N
    np.testing.assert_array_equal(np.asarray(t.length)[fin], EP_LEN)
    np.testing.assert_array_equal(np.asarray(t.start)[fin] % EP_LEN, 0)
    succ = np.concatenate([e.success & e.valid for e in expected], 1)
    assert np.asarray(t.success)[fin].sum() == sum(
        succ[e, a:b].any() for e in range(N) for a, b in ((0, 4), (4, 8)))
    # learning ran in the last iteration (start_training reached), T-PER updated mu for
    # some sampled episodes, never for ones that were not in the replay
    assert float(metrics["online_agent/training"]) == 1.0
    visits = np.asarray(t.visits)
    assert visits.sum() > 0
    assert np.all(np.asarray(t.mu)[visits == 0] == 0)


def test_start_training_gates_the_updates(four_iterations):
    _, states, metrics = four_iterations
    flags = [float(m["online_agent/training"]) for m in metrics]
    # valid env steps after each iteration: 4, 6 (the chunk tail after the episode end is
    # dropped), 10, 12 → training starts once 12 = start_training steps exist
    assert flags == [0.0, 0.0, 0.0, 1.0]
    assert int(states[-1].env_steps) == START
    # utd 1: N·H gradient steps per iteration, only in the one that trained
    assert int(states[-1].step) == int(states[0].step) + N * H
    assert [int(x.step) for x in states[:4]] == [int(states[0].step)] * 4


@pytest.mark.parametrize("sparse", [False, True])
def test_online_rewards_follow_the_offline_rows_convention(setup, sparse):
    """`--sparse` applies to online transitions exactly as to offline rows (QC's main.py):
    r <- r + shift, then r <- -1[r != 0]; the same rule the task's loader used.  The replay
    writes of observe_and_learn (the part before the gradient steps), on a real MJX chunk."""
    from tper_jit.loop.online import observe

    venv, trainer, _, state = setup
    rule = RewardRule(shift=-1.0, sparse=sparse)
    actions = jnp.zeros((N, H, venv.episode.action_size))
    env_state, tr = jax.jit(venv.step)(state.env_state, actions)
    raw = jnp.asarray([[0.0, 1.0], [-2.0, 3.0]])  # env rewards of the (N, H) sub-steps
    tr = tr.replace(reward=raw, valid=jnp.ones((N, H), bool),
                    terminated=jnp.zeros((N, H), bool), truncated=jnp.zeros((N, H), bool))
    new, ep_return, _, _ = jax.jit(observe, static_argnums=2)(state, tr, rule)
    st = new.replay.store
    written = np.asarray(st.online_row_episode) >= 0
    got = np.asarray(st.online.rewards)[written].reshape(N, H)
    want = np.asarray([[-1.0, 0.0], [-3.0, 2.0]])
    if sparse:
        want = -(want != 0).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.asarray(ep_return), want.sum(1))  # episode metrics too
    np.testing.assert_array_equal(np.asarray(rule(np.asarray(raw))), want)  # numpy too
