"""OGBench names through the fused MJX loop (``--env_backend=mjx``, issue 15): the JAX port of
ogbench's cube-single env, two vmapped seeds, online episodes in the replay with the right
boundaries and success flags, and an exact resume on that path.

The training tests are ``slow``: compiling the online chunk around the port's MJX step takes
~6.5 minutes on the 2-core VM (the resume ~4 more), which does not fit the CI budget.  Run
them with ``python3 -m pytest -m slow tests/test_train_ogbench_mjx.py`` (4 passed in 636 s,
2026-12-04).  The resolver test runs in CI."""

from __future__ import annotations

import io
import json
import shutil

import jax
import numpy as np
import pytest

pytest.importorskip("ogbench")
pytest.importorskip("envs_mjx.ogbench")  # the port (envs_mjx/ogbench/)

from tper_jit.cli import parse_args  # noqa: E402
from tper_jit.replay.store import ONLINE  # noqa: E402
from tper_jit.run import resume  # noqa: E402
from tper_jit.run.train import train  # noqa: E402
from tper_jit.tasks.resolve import resolve  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

NAME = "cube-single-play-singletask-task1-v0"
EPISODE = 200  # ogbench's cube-single time limit
# N = 2, H = 3: 36 iterations (216 nominal env steps) per row, two online rows: 216 steps
# per env, so each env ends one episode at the time limit and starts another.
STEPS = [4, 220, 436]


def test_the_resolver_routes_ogbench_names_to_the_port_only_when_asked():
    assert resolve(NAME).simulator == "ogbench-host"
    spec = resolve(NAME, env_backend="mjx", physics="jax")
    assert spec.simulator == "mjx" and spec.loader == "ogbench-npz"
    assert spec.mjx_name == "ogbench-mjx/cube-single-singletask-task1:jax"
    assert spec.rewards.shift == 0.0  # ogbench's own Σ ok − n rewards
    with pytest.raises(ValueError, match="--env_backend=mjx.*scene"):
        resolve("scene-play-singletask-task1-v0", env_backend="mjx")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from envs_mjx.ogbench_generate import OGBenchGenConfig, generate_episodes, write_dataset

    tmp = tmp_path_factory.mktemp("ogmjx")
    gcfg = OGBenchGenConfig(env="cube-single", dataset_type="play", episodes=2, val_episodes=1,
                            max_steps=60)
    data = write_dataset(gcfg, str(tmp / "data"), generate_episodes(gcfg, progress=False))["npz"]
    flags = {"env_name": NAME, "env_backend": "mjx", "physics": "jax", "dataset_path": data,
             "num_seeds": 2, "offline_steps": 4, "log_interval": 216, "online_steps": 432,
             "num_envs": 2, "horizon_length": 3, "eval_interval": 0, "start_training": 12,
             "ptr_warmup_steps": 6, "use_ptr_backward": True, "use_ptr_online_priority": True,
             "buffer_size": 600, "save_interval": 216, "save_dir": tmp / "runs",
             "wandb": False, "progress": False}
    argv = [f"--{k}={v}" for k, v in flags.items()]
    argv += ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]
    return train(parse_args(argv))


def _rows(run_dir, seed):
    path = run_dir / "seeds" / f"seed{seed}" / "metrics.jsonl"
    return [{k: v for k, v in json.loads(x).items() if not k.startswith("time/")}
            for x in path.open()]


@pytest.mark.slow
def test_two_vmapped_seeds_train_online_in_the_port(run):
    cfg = json.loads((run.run_dir / "config.json").read_text())
    assert cfg["task"]["simulator"] == "mjx"
    assert cfg["task"]["mjx_env"] == "ogbench-mjx/cube-single-singletask-task1:jax"
    for s in (0, 1):
        rows = _rows(run.run_dir, s)
        assert [r["step"] for r in rows] == STEPS
        assert rows[-1]["env/episodes_ended"] == 2.0  # one time-limit end per env
        assert rows[-1]["env/episode.length"] == EPISODE
        assert rows[-1]["env/episode.return"] <= 0.0  # ogbench rewards: Σ ok − n per step
        assert "online_agent/critic/critic_loss" in rows[-1]
    obs = np.asarray(run.state.replay.store.online.observations)
    assert obs.shape[0] == 2 and not np.allclose(obs[0], obs[1])  # the seeds' own episodes


@pytest.mark.slow
def test_online_episodes_have_the_right_boundaries_and_success(run):
    st = run.state.replay.store
    for s in (0, 1):
        t = jax.tree.map(lambda x, s=s: np.asarray(x)[s], st.episodes)
        online = (t.source == ONLINE) & t.valid
        fin = online & t.finished
        assert sorted(t.length[fin].tolist()) == [EPISODE, EPISODE]
        # 72 chunks of 3 per env; the one ending at 200 drops its last sub-step: 15 left
        assert sorted(t.length[online & ~fin].tolist()) == [15, 15]
        rows = jax.tree.map(lambda x, s=s: np.asarray(x)[s], st.online)
        term = rows.terminals.reshape(2, -1)
        assert term.sum() == 2 and term[:, EPISODE - 1].all()  # the last row of each episode
        assert rows.masks.reshape(2, -1)[:, :215].all()  # a time limit: bootstrap
        succ = rows.successes.reshape(2, -1)[:, :EPISODE].any(1)
        by_stream = dict(zip(t.stream[fin], t.success[fin], strict=True))
        assert [by_stream[0], by_stream[1]] == succ.tolist()


@pytest.mark.slow
def test_resume_on_the_port_is_exact(run):
    before = [_rows(run.run_dir, s) for s in (0, 1)]
    shutil.rmtree(run.run_dir / "resume" / str(STEPS[-1]))
    shutil.rmtree(run.run_dir / "checkpoints" / str(STEPS[-1]))
    out = io.StringIO()
    res = train(resume.config_from_run(run.run_dir), out=out)
    assert f"at step {STEPS[1]}" in out.getvalue()
    assert [_rows(run.run_dir, s) for s in (0, 1)] == before
    for x, y in zip(jax.tree.leaves(res.state.agent.params),
                    jax.tree.leaves(run.state.agent.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
