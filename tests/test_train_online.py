"""Offline → online end to end through ``train()`` on the MJX reach task (tiny sizes)."""

import json

import numpy as np

from tper_jit.cli import parse_args
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.run import checkpoint
from tper_jit.run.train import train


def test_phase_switch_metrics_plots_and_checkpoints(tmp_path):
    ds = make_synthetic_dataset(15, n=80, episode_length=20, env_name="reach")  # reach obs
    flags = {"env_name": "reach", "offline_steps": 20, "online_steps": 30, "log_interval": 20,
             "num_envs": 2, "horizon_length": 2, "eval_interval": 20, "eval_episodes": 2,
             "start_training": 8, "ptr_warmup_steps": 10, "use_ptr_backward": True,
             "use_ptr_online_priority": True, "buffer_size": 400, "save_dir": tmp_path,
             "wandb": False, "progress": False}
    argv = [f"--{k}={v}" for k, v in flags.items()]
    argv += ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]
    cfg = parse_args(argv)
    result = train(cfg, ds)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    offline = [r for r in rows if "offline_agent/critic/critic_loss" in r]
    online = [r for r in rows if "env/env_steps" in r]
    assert [r["step"] for r in offline] == [20]
    # logged step = offline steps + nominal env steps (iterations · N · H: 5 · 2 · 2 per chunk)
    assert [r["step"] for r in online] == [40, 60]
    assert all(0 < r["env/env_steps"] <= r["step"] - 20 for r in online)
    assert "online_agent/critic/critic_loss" in online[-1]
    assert "ptr/sample_online/priority_mean" in online[-1]
    assert all("eval/success_rate" in r for r in (offline[0], online[-1]))
    assert list((result.run_dir / "plots").glob("priorities_*.png"))
    assert (result.run_dir / "plots" / "curve.png").stat().st_size > 5000  # offline + online
    assert checkpoint.latest_step(result.run_dir) == 50
    assert checkpoint.RunCheckpointer(result.run_dir).latest_step() == 60
    # the online phase wrote its episodes into the replay
    st = result.state.replay.store
    assert int(result.state.env_steps) == int(np.asarray(st.streams.cursor).sum())
