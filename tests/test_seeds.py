"""Vmapped multi-seed training: seeds differ, seed s equals a single run with seed s, the
offline block is held once, aggregation, and the sharded path on 4 host devices."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from learn_step_probe import probe
from tiny_run import TINY_AGENT, tiny_argv, tiny_dataset

from tper_jit.cli import parse_args
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.loop import seeds
from tper_jit.loop.offline import make_offline_trainer
from tper_jit.run.train import train

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = TINY_AGENT


def _cfg(tmp, **over):
    flags = {"online_steps": 16, "eval_interval": 16, "save_interval": 0, "save_dir": tmp,
             **over}
    return parse_args(tiny_argv(**flags))


def _rows(path):
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")}
            for line in pathlib.Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import chex

    ds = tiny_dataset()
    tmp = tmp_path_factory.mktemp("seeds")
    real = seeds.batch_chunk

    def counting(fn, num_seeds, mesh=None, num_static=0, **kw):
        # every chunk of a phase has the same length here (the offline scan takes it as a
        # static argument): one trace per chunk function and run
        TRACED.setdefault("max_traces", []).append(num_static)
        return real(chex.assert_max_traces(fn, n=1), num_seeds, mesh, num_static, **kw)

    with pytest.MonkeyPatch.context() as mp:
        TRACED["phases"] = probe(mp)
        mp.setattr(seeds, "batch_chunk", counting)
        # videos on in the multi-seed run only: seed 6 must still equal the single run
        multi = train(_cfg(tmp, num_seeds=3, seed=5, video_episodes=1, video_frame_skip=2), ds)
        chex.clear_trace_counter()  # chex counts per source footprint: the runs share code
        single = train(_cfg(tmp, seed=6), ds)
    chex.clear_trace_counter()
    return multi, single


TRACED: dict = {}


def test_offline_and_mjx_online_chunks_trace_the_one_learn_step(runs):
    # vmapped and single-seed programs, offline chunk and MJX iteration: one function
    assert sorted(set(TRACED["phases"])) == ["offline_agent", "online_agent"]


def test_video_of_the_first_seed_at_each_evaluation(runs):
    multi, single = runs
    videos = sorted((multi.run_dir / "videos").iterdir())
    evals = [r["step"] for r in multi.metrics if "eval/success_rate" in r]
    assert [v.stem for v in videos] == [f"eval_{s:08d}" for s in evals]
    assert all(v.suffix in (".mp4", ".gif") and v.stat().st_size > 1000 for v in videos)
    assert not (single.run_dir / "videos").exists()


def test_vmapped_seeds_differ(runs):
    multi, _ = runs
    params = jax.tree.leaves(multi.state.agent.params)
    assert all(x.shape[0] == 3 for x in params)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert any(not np.allclose(x[a], x[b]) for x in params)
    per_seed = [_rows(multi.run_dir / "seeds" / f"seed{s}" / "metrics.jsonl") for s in (5, 6, 7)]
    losses = [r[-1]["online_agent/critic/critic_loss"] for r in per_seed]
    assert len(set(losses)) == 3, losses
    # the seeds' MJX envs saw different episodes (vmapped reset keys and actions)
    obs = np.asarray(multi.state.replay.store.online.observations)
    written = np.asarray(multi.state.replay.store.online_row_episode) >= 0
    assert written.any(axis=1).all()
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert not np.allclose(obs[a][written[a]], obs[b][written[a]])


def test_seed_s_of_the_vmapped_run_equals_a_single_run(runs):
    multi, single = runs
    for x, y in zip(jax.tree.leaves(multi.state.agent.params),
                    jax.tree.leaves(single.state.agent.params), strict=True):
        np.testing.assert_allclose(np.asarray(x[1]), np.asarray(y), rtol=2e-4, atol=2e-5)
    a = _rows(multi.run_dir / "seeds" / "seed6" / "metrics.jsonl")
    b = _rows(single.run_dir / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [10, 20, 28, 36]
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            np.testing.assert_allclose(ra[k], rb[k], rtol=1e-3, atol=1e-4, err_msg=k)
    # the replay (episode table, online rings) of seed 6 is the single run's
    np.testing.assert_array_equal(np.asarray(multi.state.replay.store.streams.cursor[1]),
                                  np.asarray(single.state.replay.store.streams.cursor))


def test_main_log_is_the_mean_with_a_95_ci(runs):
    multi, _ = runs
    main = _rows(multi.run_dir / "metrics.jsonl")
    per_seed = [_rows(multi.run_dir / "seeds" / f"seed{s}" / "metrics.jsonl") for s in (5, 6, 7)]
    k = "offline_agent/critic/critic_loss"
    vals = np.array([r[0][k] for r in per_seed])
    assert main[0][k] == pytest.approx(vals.mean())
    half = 4.302653 * vals.std(ddof=1) / np.sqrt(3)  # t_{0.975, 2} = 4.302653 (tables)
    assert main[0][f"{k}/ci95"] == pytest.approx(half, rel=1e-5)
    assert "eval/success_rate/ci95" in main[-1]
    cfg = json.loads((multi.run_dir / "config.json").read_text())
    assert cfg["seeds"] == [5, 6, 7]


def test_offline_block_is_held_once(runs):
    multi, _ = runs
    off = multi.state.replay.store.offline
    assert off.observations.shape == (400, 15)  # no seed axis
    assert multi.state.replay.store.episodes.mu.shape[0] == 3  # per-seed priorities


def test_compiled_chunk_does_not_copy_the_offline_block_per_seed():
    ds = make_synthetic_dataset(15, n=20_000, episode_length=100, env_name="reach")
    cfg = parse_args(["--env_name=reach", "--online_steps=0", *TINY])
    tr = make_offline_trainer(cfg, ds, seeds=(0, 1, 2, 3))
    off = tr.init_state.replay.store.offline
    rest = seeds.stack([seeds.split_offline(s)[1] for s in tr.init_states])
    ma = seeds.batch_chunk(tr.scan, 4, num_static=1).lower(off, rest, 10).compile() \
        .memory_analysis()
    off_bytes = sum(x.nbytes for x in jax.tree.leaves(off))
    rest_bytes = sum(x.nbytes for x in jax.tree.leaves(rest))
    assert ma.argument_size_in_bytes <= off_bytes + rest_bytes  # offline counted once
    assert ma.temp_size_in_bytes < 0.25 * off_bytes  # and never materialised per seed


SHARDED = """
import jax, numpy as np, sys
from tper_jit.agents.acfql import ACFQLConfig
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.cli import parse_args
from tper_jit.run.train import train
assert jax.device_count() == 4, jax.devices()
ds = make_synthetic_dataset(15, n=400, episode_length=20, env_name="reach")
out = {}
for shard in (True, False):
    flags = ["--env_name=reach", "--offline_steps=20", "--online_steps=0", "--log_interval=10",
             "--eval_interval=0", "--num_seeds=4", "--wandb=False", "--progress=False",
             f"--shard_seeds={shard}", f"--save_dir={sys.argv[1]}", "--agent.hidden_dims=16",
             "--agent.batch_size=8", "--agent.flow_steps=2"]
    r = train(parse_args(flags), ds)
    leaves = jax.tree.leaves(r.state.agent.params)
    if shard:
        assert len(leaves[0].sharding.device_set) == 4, leaves[0].sharding
    out[shard] = [np.asarray(x) for x in leaves]
for a, b in zip(out[True], out[False]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
print("SHARDED_OK")
"""


def test_sharded_seeds_on_four_host_devices_match_unsharded(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, "-c", SHARDED, str(tmp_path)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "SHARDED_OK" in p.stdout and "4 seeds on 4 devices" in p.stdout


def test_tper_plot_draws_one_curve_per_seed_of_a_multi_seed_run(runs, tmp_path, capsys):
    from tper_jit.plots import load_curves, main

    multi, _ = runs
    curves = load_curves(multi.run_dir, "eval/success_rate")
    assert len(curves) == 3
    assert main([str(multi.run_dir), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert "  3  " in capsys.readouterr().out  # n = 3 curves in the group


def test_each_chunk_function_compiles_once(runs):
    """Over both runs of the fixture (two offline chunks, two online chunks, evaluations in
    both phases) the offline chunk and the online chunk are traced once each: nothing in the
    loop retraces per call (``chex.assert_max_traces(n=1)`` raises in the fixture otherwise).
    Both runs went through the counted chunks of both phases (one with the static length)."""
    multi, single = runs
    assert sorted(TRACED["max_traces"]) == [0, 0, 1, 1]
    for r in (multi, single):
        assert [m["step"] for m in r.metrics] == [10, 20, 28, 36]
