"""The host-env bridge: OGBench envs stepped on the host with the MJX path's chunk semantics,
an offline → online cycle through ``train()``, and oracle-driven evaluation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("ogbench")
pytest.importorskip("gymnasium")

from learn_step_probe import probe  # noqa: E402

from tper_jit.cli import parse_args  # noqa: E402
from tper_jit.replay.store import ONLINE  # noqa: E402
from tper_jit.run.train import train  # noqa: E402
from tper_jit.tasks import (
    host_env,  # noqa: E402
    resolve,  # noqa: E402
)
from tper_jit.tasks.host_env import HostVecEnv, evaluate_host, reset_seed  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

NAME = "cube-single-play-singletask-task1-v0"
EPISODE = 200  # cube-single singletask time limit


def _direct_env(seed: int, i: int, count: int = 0):
    """A plain ogbench env reset the way env i's ``count``-th bridge reset is."""
    import gymnasium

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gymnasium.make(host_env.env_id_of(NAME))
    ob, info = env.reset(seed=reset_seed(seed, i, count))
    return env, ob, info


def _rollout(seed: int, n: int = 2, h: int = 3, chunks: int = 68):
    """``chunks`` chunks of random actions (fixed generator); returns (venv, Transitions)."""
    venv = HostVecEnv(NAME, n, seed=seed)
    venv.reset()
    rng = np.random.default_rng(0)
    trs = [venv.step_chunk(rng.uniform(-1, 1, (n, h, 5))) for _ in range(chunks)]
    return venv, trs


@pytest.fixture(scope="module")
def rollout():
    return _rollout(seed=5)


def test_names():
    assert resolve.is_host_task(NAME) and resolve.is_host_task("puzzle-3x3-play-singletask-v0")
    assert not resolve.is_host_task("cube-single-singletask-task1")  # the MJX task
    assert not resolve.is_host_task("lift")
    assert host_env.env_id_of(NAME) == "cube-single-singletask-task1-v0"


def test_chunks_drop_tails_keep_terminal_obs_and_auto_reset(rollout):
    venv, trs = rollout
    valid = np.stack([t.valid for t in trs], 1)  # (N, C, H)
    n, c, h = valid.shape
    assert venv.episode.episode_length == EPISODE
    # 200 = 66 · 3 + 2: chunk 66 ends the episode at sub-step 1 and drops sub-step 2.
    assert valid.reshape(n, -1).sum(1).tolist() == [c * h - 1] * n
    assert not valid[:, 66, 2].any() and valid[:, 66, :2].all() and valid[:, 67].all()
    ends = np.stack([t.truncated for t in trs], 1)
    assert ends.sum() == n and ends[:, 66, 1].all()
    assert not np.stack([t.terminated for t in trs]).any()  # a random actor: time limit only
    rng = np.random.default_rng(0)
    acts = [rng.uniform(-1, 1, (n, h, 5)) for _ in range(c)]
    for i in range(n):
        # A plain env with the same reset seed and actions reaches the same terminal obs.
        env, ob, _ = _direct_env(venv.seed, i)
        np.testing.assert_allclose(trs[0].obs[i, 0], ob, atol=1e-6)
        steps = [acts[k][i, j] for k in range(c) for j in range(h)][:EPISODE]
        for a in steps:
            ob, *_ = env.step(np.clip(a.astype(np.float32), -1, 1))  # the bridge's dtype
        np.testing.assert_allclose(trs[66].next_obs[i, 1], ob, atol=1e-5)
        # ... and the next chunk starts from the fresh (second) reset, not the terminal obs.
        _, ob_reset, _ = _direct_env(venv.seed, i, count=1)
        np.testing.assert_allclose(trs[67].obs[i, 0], ob_reset, atol=1e-6)
        assert not np.allclose(trs[67].obs[i, 0], trs[66].next_obs[i, 1])
        # rows within a chunk chain: obs[j + 1] == next_obs[j]
        np.testing.assert_array_equal(trs[3].obs[i, 1:], trs[3].next_obs[i, :-1])
    assert (trs[66].next_obs[:, 2] == 0).all()  # dropped rows are zeros


def test_deterministic_given_the_seed(rollout):
    _, a = rollout
    _, b = _rollout(seed=5, chunks=4)
    _, c = _rollout(seed=6, chunks=4)
    for x, y in zip(a[:4], b, strict=True):
        np.testing.assert_array_equal(x.next_obs, y.next_obs)
        np.testing.assert_array_equal(x.reward, y.reward)
    assert not np.array_equal(a[0].obs, c[0].obs)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from envs_mjx.ogbench_generate import OGBenchGenConfig, generate_episodes, write_dataset

    tmp = tmp_path_factory.mktemp("bridge")
    gcfg = OGBenchGenConfig(env="cube-single", dataset_type="play", episodes=2, val_episodes=1,
                            max_steps=60)
    paths = write_dataset(gcfg, str(tmp / "data"), generate_episodes(gcfg, progress=False))
    # N = 2, H = 3: 37 iterations (222 nominal env steps) per row, two rows.
    flags = {"env_name": NAME, "dataset_path": paths["npz"], "offline_steps": 10,
             "online_steps": 444, "log_interval": 222, "num_envs": 2, "horizon_length": 3,
             "eval_interval": 444, "eval_episodes": 2, "start_training": 24,
             "ptr_warmup_steps": 10, "use_ptr_backward": True, "use_ptr_online_priority": True,
             "buffer_size": 600, "save_dir": tmp / "runs", "save_interval": 200,
             "wandb": False, "progress": False}
    argv = [f"--{k}={v}" for k, v in flags.items()]
    argv += ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]
    with pytest.MonkeyPatch.context() as mp:
        TRACED["phases"] = probe(mp)
        return train(parse_args(argv))


TRACED: dict = {}


def test_both_phases_of_the_bridge_trace_the_one_learn_step(run):
    assert sorted(set(TRACED["phases"])) == ["offline_agent", "online_agent"]


def test_train_offline_then_online_through_the_bridge(run):
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").open()]
    offline = [r for r in rows if "offline_agent/critic/critic_loss" in r]
    online = [r for r in rows if "env/env_steps" in r]
    assert [r["step"] for r in offline] == [10]
    assert [r["step"] for r in online] == [232, 454]
    # 74 chunks of 3 per env, one time-limit end at 200 drops one sub-step: 221 per env.
    assert [r["env/env_steps"] for r in online] == [222.0, 442.0]
    assert online[1]["env/episodes_ended"] == 2.0 and "env/success_rate" in online[1]
    assert online[1]["env/episode.length"] == EPISODE
    assert "online_agent/critic/critic_loss" in online[-1]
    assert "ptr/sample_online/priority_mean" in online[-1]
    for r in (offline[0], online[-1]):
        assert {"eval/success_rate", "eval/success", "eval/episode.return",
                "eval/episode.length"} <= set(r)


def test_online_episodes_in_the_replay(run):
    state = run.state
    st = state.replay.store
    t = st.episodes
    online = (np.asarray(t.source) == ONLINE) & np.asarray(t.valid)
    fin = online & np.asarray(t.finished)
    assert int(state.env_steps) == 442 == int(np.asarray(st.streams.cursor).sum())
    # Each stream: one episode ended by the time limit (200 rows), one open (21 rows).
    assert sorted(np.asarray(t.length)[fin].tolist()) == [EPISODE, EPISODE]
    assert sorted(np.asarray(t.length)[online & ~fin].tolist()) == [21, 21]
    assert sorted(np.asarray(t.stream)[fin].tolist()) == [0, 1]
    rows = st.online
    term = np.asarray(rows.terminals).reshape(2, -1)
    assert term.sum() == 2 and term[:, EPISODE - 1].all()  # the last row of each episode
    assert np.asarray(rows.masks).reshape(2, -1)[:, :221].all()  # time limit: bootstrap
    succ = np.asarray(rows.successes).reshape(2, -1)[:, :EPISODE].any(1)
    by_stream = dict(zip(np.asarray(t.stream)[fin], np.asarray(t.success)[fin], strict=True))
    assert [by_stream[0], by_stream[1]] == succ.tolist()
    np.testing.assert_array_equal(np.asarray(state.ep_length), [21, 21])


def _drop_last_checkpoint(run_dir):
    import shutil

    # Checkpoints at 232 (mid-online) and 454 (end): drop the last one (and the final agent
    # checkpoint), as if the run had been killed after 232.
    shutil.rmtree(run_dir / "resume" / "454")
    shutil.rmtree(run_dir / "checkpoints" / "454")


def _no_time(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def test_resume_mid_online_continues_the_host_episodes_exactly(run):
    import io

    import jax

    from tper_jit.run import resume

    before = _no_time(json.loads(line) for line in (run.run_dir / "metrics.jsonl").open())
    _drop_last_checkpoint(run.run_dir)
    out = io.StringIO()
    res = train(resume.config_from_run(run.run_dir), out=out)
    text = out.getvalue()
    assert "resumed" in text and "at step 232" in text and "episodes continue" in text
    after = _no_time(json.loads(line) for line in (run.run_dir / "metrics.jsonl").open())
    assert after == before  # the row at 454 (and its evaluation) exactly as uninterrupted
    for x, y in zip(jax.tree.leaves(res.state.agent.params),
                    jax.tree.leaves(run.state.agent.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    t0, t1 = run.state.replay.store.episodes, res.state.replay.store.episodes
    for f in ("length", "finished", "success", "valid"):
        np.testing.assert_array_equal(np.asarray(getattr(t0, f)), np.asarray(getattr(t1, f)))


def test_resume_without_host_env_state_restarts_the_episodes_and_says_so(run, monkeypatch):
    import io

    from tper_jit.run import checkpoint, resume

    # A checkpoint written before host env states were saved (or of an env kind that cannot
    # be restored) continues with fresh episodes.
    _drop_last_checkpoint(run.run_dir)
    monkeypatch.setattr(checkpoint.RunCheckpointer, "restore_host", lambda self, step: None)
    out = io.StringIO()
    res = train(resume.config_from_run(run.run_dir), out=out)
    text = out.getvalue()
    assert "at step 232" in text and "episodes restart" in text and "no host env state" in text
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [10, 232, 454]
    st = res.state.replay.store
    t = st.episodes
    live = (np.asarray(t.source) == ONLINE) & np.asarray(t.valid)
    # per env: the fragment cut at the resume and the new open episode, 37 chunks of 3 each
    assert int(res.state.env_steps) == int(np.asarray(st.streams.cursor).sum()) == 444
    assert sorted(np.asarray(t.length)[live].tolist()) == [111] * 4
    assert not np.asarray(t.finished)[live].any()


def _oracle_policy(venv: HostVecEnv, h: int):
    """ogbench's Markov cube oracle on the host, one action per chunk repeated H times; the
    task-mode info lacks the target block, so it is read from the env's goal mocap."""
    from ogbench.manipspace import lie
    from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

    oracles = [CubeMarkovOracle(env=e, min_norm=0.4) for e in venv.envs]

    def info_of(env, info):
        u = env.unwrapped
        mid = u._cube_target_mocap_ids[0]
        yaw = lie.SO3(wxyz=u._data.mocap_quat[mid]).compute_yaw_radians()
        return {**info, "privileged/target_block": 0,
                "privileged/target_block_pos": u._data.mocap_pos[mid].copy(),
                "privileged/target_block_yaw": np.array([yaw])}

    def act(i, ob, info, first):
        info = info_of(venv.envs[i], info)
        if first:
            np.random.seed(100 + i)  # the oracle draws its final arm pose from numpy
            oracles[i].reset(ob, info)
        return np.asarray(oracles[i].select_action(ob, info))

    def policy(obs, call):
        return np.stack([np.repeat(act(i, obs[i], venv.infos[i], call == 0)[None], h, 0)
                         for i in range(venv.num_envs)])

    return policy, act


def test_oracle_eval_matches_the_oracle_on_plain_envs():
    m, h, seed = 3, 2, 11
    venv = HostVecEnv(NAME, m)
    policy, act = _oracle_policy(venv, h)
    res = evaluate_host(venv, policy, seed, h)
    succ, lengths, terminated = [], [], []
    for i in range(m):  # the same episodes, run directly on ogbench envs
        env, ob, info = _direct_env(seed, i)
        venv.envs[i] = env  # the oracle reads the env it drives
        t, done, success, term = 0, False, False, False
        while not done:
            if t % h == 0:
                a = act(i, ob, info, t == 0)
            ob, _, term, trunc, info = env.step(a)
            success |= bool(info["success"])
            done, t = term or trunc, t + 1
        succ.append(success)
        lengths.append(t)
        terminated.append(term)
    assert res["eval/success_rate"] == np.mean(succ) and sum(succ) >= 2
    assert res["eval/episode.length"] == np.mean(lengths)
    # success terminates the episode (terminate_at_goal), so successful episodes end early
    assert all(t for t, s in zip(terminated, succ, strict=True) if s)


def test_eval_in_rounds_plays_the_episodes_of_one_large_venv():
    """``--eval_envs``: 5 episodes on 2 envs (rounds of 2, 2, 1) start from the same resets and,
    under a policy that depends only on the observation, give the statistics of 5 envs at
    once."""
    seed, h = 23, 5
    starts = {}

    def policy_of(venv):
        def policy(obs, call):
            if call not in starts.setdefault(venv.num_envs, {}):
                starts[venv.num_envs][call] = obs.copy()
            a = np.tanh(obs[:, :5] * 3.0 + np.sin(obs[:, 5:10]))  # a function of the obs only
            return np.repeat(a[:, None], h, axis=1)
        return policy

    big, small = HostVecEnv(NAME, 5), HostVecEnv(NAME, 2)
    want = evaluate_host(big, policy_of(big), seed, h)
    got = evaluate_host(small, policy_of(small), seed, h, episodes=5)
    assert got == want
    first_big = starts[5][0]
    first_small = [v for _, v in sorted(starts[2].items())]
    # round r's first observations are rows 2r, 2r+1 of the one-venv reset
    round_starts = [o for o in first_small if any(np.array_equal(o[0], row) for row in first_big)]
    assert len(round_starts) == 3
    np.testing.assert_array_equal(np.concatenate([round_starts[0], round_starts[1],
                                                  round_starts[2][:1]]), first_big)
    assert small.first_index == 0  # training-style resets see the usual streams again


def _tiny_argv(**flags):
    base = {"offline_steps": 4, "log_interval": 2, "num_envs": 2, "horizon_length": 2,
            "eval_episodes": 2, "eval_envs": 2, "start_training": 10**6, "buffer_size": 400,
            "save_interval": 0, "wandb": False, "progress": False}
    base.update(flags)
    argv = [f"--{k}={v}" for k, v in base.items()]
    return argv + ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]


def test_offline_only_host_run_evaluates(tmp_path):
    """--online_steps=0 on an OGBench task builds no training envs but still evaluates, at
    --eval_interval and at the end of the offline phase (QC evaluates offline-only runs)."""
    from tper_jit.data.common import make_synthetic_dataset

    ds = make_synthetic_dataset(28, n=120, episode_length=20, env_name=NAME)
    res = train(parse_args(_tiny_argv(env_name=NAME, online_steps=0, eval_interval=2,
                                      offline_steps=3, save_dir=tmp_path)), ds)
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [2, 3]
    for r in rows:  # a random-ish actor on cube-single: 200-step episodes, no success
        assert r["eval/episode.length"] == EPISODE and r["eval/success_rate"] == 0.0
        assert r["eval/episode.return"] == -EPISODE  # Σ ok − 1 = −1 per step


def test_sparse_online_rewards_through_the_bridge(tmp_path):
    """puzzle-3x3 rewards are Σ ok − 9; with --sparse the online rows hold −1 / 0 like the
    offline rows, while the same envs' raw rewards go below −1 (so the check can fail)."""
    from tper_jit.data.common import make_synthetic_dataset

    name = "puzzle-3x3-play-singletask-task1-v0"
    raw_env = HostVecEnv(name, 2)
    obs_dim = raw_env.episode.observation_size
    raw_env.reset(seed=0)
    tr = raw_env.step_chunk(np.zeros((2, 2, raw_env.episode.action_size), np.float32))
    raw_env.close()
    assert np.asarray(tr.reward).min() < -1.0  # e.g. −5: some of the 9 buttons are off
    ds = make_synthetic_dataset(obs_dim, n=120, episode_length=20, env_name=name)
    res = train(parse_args(_tiny_argv(env_name=name, online_steps=8, eval_interval=0,
                                      sparse=True, save_dir=tmp_path)), ds)
    st = res.state.replay.store
    written = np.asarray(st.online_row_episode) >= 0
    assert written.sum() > 0
    assert set(np.unique(np.asarray(st.online.rewards)[written]).tolist()) <= {-1.0, 0.0}
