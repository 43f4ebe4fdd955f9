"""RLPD / RLPD-AC through the one trainer on the MJX reach task: no pretraining, symmetric
sampling, the agent's own UTD block per env step, deterministic evaluation."""

import json

import numpy as np

from tper_jit.cli import parse_args
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.run.train import train


def test_rlpd_ac_online_run(tmp_path):
    ds = make_synthetic_dataset(15, n=200, episode_length=20, env_name="reach")
    flags = {"env_name": "reach", "agent_type": "rlpd", "offline_steps": 0, "online_steps": 16,
             "log_interval": 8, "num_envs": 2, "horizon_length": 2, "eval_interval": 16,
             "eval_episodes": 2, "start_training": 4, "symmetric_sampling": True,
             "utd_ratio": 2, "buffer_size": 400, "save_dir": tmp_path, "wandb": False,
             "progress": False}
    argv = [f"--{k}={v}" for k, v in flags.items()]
    argv += ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.num_qs=4",
             "--agent.action_chunking=True", "--agent.bc_alpha=0.01"]
    cfg = parse_args(argv)  # the class follows --agent_type
    result = train(cfg, ds)
    conf = json.loads((result.run_dir / "config.json").read_text())
    assert conf["agent"]["utd_ratio"] == 2 and conf["agent"]["num_qs"] == 4
    rows = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [8, 16]
    last = rows[-1]
    for k in ("online_agent/critic/critic_loss", "online_agent/actor/bc_loss",
              "online_agent/temperature/temperature", "eval/success_rate"):
        assert np.isfinite(last[k]), k
    # 2 envs x H 2 = 4 updates per iteration, each 2 critic steps: the agent's step counter
    # counts critic steps.  4 iterations (16 env steps / 4); the first one already reaches
    # start_training = 4 env steps, so all 4 train: 4 · 4 · 2.
    assert int(result.state.agent.step) == 4 * 4 * 2
    assert int(result.state.step) == 4 * 4  # the loop counts updates
