"""The fused offline trainer end to end through the CLI, on a small generated robomimic file."""

import json

import h5py
import jax
import numpy as np
import pytest

from tper_jit.cli import main, parse_args
from tper_jit.data import load_robomimic_hdf5
from tper_jit.loop.offline import make_offline_trainer

TINY = ["--agent.hidden_dims=32,32", "--agent.batch_size=32", "--agent.flow_steps=3"]


def write_robomimic(path, n_demos=24, seed=0):
    """Three movement modes (the structure cluster sampling is for), 19-D low-dim obs."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        names = []
        for i in range(n_demos):
            mode = i % 3
            t_len = 30 + 5 * mode
            s = np.linspace(0, 1, t_len)[:, None]
            direction = np.eye(3)[mode]
            pos = s * direction + rng.normal(scale=0.01, size=(t_len, 3))
            obs = {"robot0_eef_pos": pos, "robot0_eef_quat": np.tile([1, 0, 0, 0], (t_len, 1)),
                   "robot0_gripper_qpos": np.zeros((t_len, 2)),
                   "object": np.concatenate([pos, np.zeros((t_len, 7))], 1)}
            g = data.create_group(f"demo_{i}")
            for k, v in obs.items():
                g.create_dataset(f"obs/{k}", data=v.astype(np.float64))
                g.create_dataset(f"next_obs/{k}", data=np.roll(v, -1, 0).astype(np.float64))
            act = np.tile(np.concatenate([direction, [0, 0, 0, 0.5]]), (t_len, 1))
            g.create_dataset("actions", data=act + rng.normal(scale=0.05, size=act.shape))
            rew = np.zeros(t_len)
            rew[-1] = 1.0
            g.create_dataset("rewards", data=rew)
            g.create_dataset("dones", data=rew.astype(np.int64))
            g.create_dataset("states", data=np.zeros((t_len, 5)))
            g.attrs["num_samples"] = t_len
            names.append(f"demo_{i}")
        data.attrs["total"] = sum(30 + 5 * (i % 3) for i in range(n_demos))
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        mask = f.create_group("mask")
        mask.create_dataset("better", data=np.array([n.encode() for n in names[:8]]))


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "low_dim_v15.hdf5"
    write_robomimic(path)
    return path


def test_cli_offline_run_writes_metrics_and_cluster_png_and_bc_loss_falls(dataset_file,
                                                                          tmp_path, capsys):
    rc = main(["--env_name=lift-mh-low", f"--dataset_path={dataset_file}",
               "--offline_steps=300", "--online_steps=0", "--log_interval=50",
               "--cluster_sampler=True", "--cluster_k=3", f"--save_dir={tmp_path}",
               "--horizon_length=4", "--seed=1", "--agent.lr=1e-3", *TINY])
    out = capsys.readouterr()
    assert rc == 0, out.err
    run_dir = next((tmp_path / "Debug" / "lift-mh-low").iterdir())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250, 300]
    bc = [r["offline_agent/actor/bc_flow_loss"] for r in rows]
    assert bc[-1] < 0.8 * bc[0] and bc[-1] < bc[len(bc) // 2], bc
    assert all(np.isfinite(r["offline_agent/critic/critic_loss"]) for r in rows)
    # cluster-balanced sampling: 3 clusters drawn evenly
    assert rows[-1]["cluster/offline/num_clusters"] == 3
    assert rows[-1]["cluster/offline/kl_to_uniform"] < 0.01
    assert (run_dir / "clusters.png").stat().st_size > 1000
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "offline_agent/critic/critic_loss" in header and "step" in header
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["agent"]["hidden_dims"] == [32, 32] and cfg["sampler"]["kind"] == "cluster"
    assert cfg["dataset"]["content_hash"].startswith("sha256:")
    assert (run_dir / "wandb").is_dir()  # offline wandb run, no account
    assert "run folder" in out.out and "metrics" in out.out
    assert "steps/s" in out.err  # progress line


def test_scan_chunk_equals_single_steps(dataset_file):
    cfg = parse_args(["--env_name=lift-mh-low", *TINY, "--horizon_length=3"])
    ds = load_robomimic_hdf5(dataset_file, env_name="lift-mh-low")
    trainer = make_offline_trainer(cfg, ds)
    s0 = trainer.init_state
    s_chunk, m_chunk = trainer.chunk(jax.tree.map(lambda a: a.copy(), s0), 4)
    s_steps = s0
    losses = []
    for _ in range(4):
        s_steps, m = trainer.chunk(s_steps, 1)
        losses.append(float(m["offline_agent/critic/critic_loss"]))
    for a, b in zip(jax.tree.leaves(s_chunk.agent), jax.tree.leaves(s_steps.agent), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(float(m_chunk["offline_agent/critic/critic_loss"]),
                               np.mean(losses), rtol=1e-4)


def test_cli_rejects_bad_input_before_compiling(tmp_path, capsys):
    assert main(["--env_name=lift-mh-low", f"--dataset_path={tmp_path}/missing.hdf5",
                 f"--save_dir={tmp_path}"]) == 2
    assert "missing.hdf5" in capsys.readouterr().err
    assert main(["--agent.alpah=1"]) == 2
    assert "did you mean --agent.alpha" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing partial left behind


@pytest.mark.parametrize("fail_at_call", [1, 2])
def test_failed_run_removes_its_folder_only_before_the_first_row(dataset_file, tmp_path,
                                                                 fail_at_call):
    from tper_jit.run.train import train

    save = tmp_path / "runs"
    cfg = parse_args(["--env_name=lift-mh-low", *TINY, "--offline_steps=30", "--online_steps=0",
                      "--log_interval=10", "--eval_interval=10", f"--save_dir={save}",
                      "--run_group=crash", "--wandb=False", "--progress=False"])
    ds = load_robomimic_hdf5(dataset_file, env_name="lift-mh-low")
    calls = []

    def eval_fn(agent, step):
        calls.append(step)
        if len(calls) == fail_at_call:
            raise RuntimeError("eval crashed")
        return {"eval/success_rate": 0.0}

    with pytest.raises(RuntimeError, match="eval crashed"):
        train(cfg, ds, eval_fn=eval_fn)
    if fail_at_call == 1:  # failed before any metrics row: nothing left, not even run_group/
        assert save.is_dir() and not any(save.iterdir())
    else:  # the step-10 row was written: the folder and its metrics stay
        (run_dir,) = save.glob("crash/*/seed*")
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [10]


def test_eval_hook_runs_every_eval_interval(dataset_file, tmp_path):
    from tper_jit.run.train import train

    cfg = parse_args(["--env_name=lift-mh-low", *TINY, "--offline_steps=60", "--online_steps=0",
                      "--log_interval=10", "--eval_interval=25", f"--save_dir={tmp_path}",
                      "--wandb=False", "--progress=False"])
    ds = load_robomimic_hdf5(dataset_file, env_name="lift-mh-low")
    calls, curves = [], []

    def eval_fn(agent, step):
        calls.append(step)
        curves.append([p.stat().st_mtime_ns for p in tmp_path.glob("Debug/*/*/plots/curve.png")])
        return {"eval/success_rate": 0.5 + step / 1000}

    result = train(cfg, ds, eval_fn=eval_fn)
    assert calls == [30, 50, 60]  # first chunk boundary at or after 25 and 50, then the end
    # plots/curve.png: written after the first evaluation's row, rewritten after each one
    assert len(curves[0]) == 0 and len(curves[1]) == 1 and curves[2][0] >= curves[1][0]
    assert (result.run_dir / "plots" / "curve.png").stat().st_size > 5000
    assert [r["step"] for r in result.metrics if "eval/success_rate" in r] == calls
    # the trained agent is checkpointed (orbax) and restores bit-identically
    from tper_jit.agents import acfql
    from tper_jit.run import checkpoint

    assert checkpoint.latest_step(result.run_dir) == 60
    template = acfql.init(jax.random.PRNGKey(9), ds.obs_dim, ds.action_dim,
                          result.state.agent.config)
    restored = checkpoint.restore_agent(result.run_dir, template)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(result.state.agent), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_help_lists_flags(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--cluster_sampler=False" in out and "--agent.alpha=100.0" in out
