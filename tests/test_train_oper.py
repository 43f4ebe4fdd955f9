"""OPER as options of the one trainer: the OPER-A pre-stage command, then resampling,
reweighting and two samplers through ``tper-train`` on a generated robomimic file."""

import json

import numpy as np
import pytest
from test_train_offline import write_robomimic

from tper_jit.cli import main
from tper_jit.oper.__main__ import main as oper_main

COMMON = ["--env_name=lift-mh-low", "--offline_steps=20", "--online_steps=0",
          "--log_interval=10", "--horizon_length=4", "--wandb=False", "--progress=False",
          "--agent.hidden_dims=16,16", "--agent.batch_size=16", "--agent.flow_steps=2"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("oper")
    write_robomimic(d / "low_dim_v15.hdf5")
    rc = oper_main([f"--out={d / 'w.npz'}", "--env_name=lift-mh-low",
                    f"--dataset_path={d / 'low_dim_v15.hdf5'}", "--horizon_length=4",
                    "--oper.iter=2", "--oper.first_eval_steps=50", "--oper.bc_eval_steps=20",
                    "--oper.num_seeds=2", "--oper.batch_size=32", "--oper.hidden_dims=16,16"])
    assert rc == 0
    return d


def test_oper_a_command_writes_one_weight_per_transition(files):
    with np.load(files / "w.npz") as f:
        w = f["weights"]
        assert int(f["num_seeds"]) == 2 and int(f["iter"]) == 2
    assert w.shape == (sum(30 + 5 * (i % 3) for i in range(24)),)
    assert np.all(w >= 0) and w.mean() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("flags, kind", [
    (["--oper.resample=True"], "oper"),
    (["--oper.reweight=True", "--oper.bc_eval=True", "--oper.weight_path={d}/w.npz"],
     "transition"),
    (["--oper.resample=True", "--oper.two_sampler=True", "--oper.reweight=True"], "transition"),
])
def test_trainer_runs_each_oper_mode(files, tmp_path, flags, kind, capsys):
    flags = [f.format(d=files) for f in flags]
    rc = main([*COMMON, f"--dataset_path={files / 'low_dim_v15.hdf5'}",
               f"--save_dir={tmp_path}", *flags])
    assert rc == 0, capsys.readouterr().err
    run_dir = next((tmp_path / "Debug" / "lift-mh-low").iterdir())
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["sampler"]["kind"] == kind
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20]
    assert all(np.isfinite(r["offline_agent/critic/critic_loss"]) for r in rows)


def test_bad_oper_flags_fail_before_loading(tmp_path, capsys):
    assert main([*COMMON, "--oper.two_sampler=True", f"--save_dir={tmp_path}"]) == 2
    assert "--oper." in capsys.readouterr().err
    assert main([*COMMON, "--oper.resampel=True", f"--save_dir={tmp_path}"]) == 2
    assert "did you mean --oper.resample" in capsys.readouterr().err
