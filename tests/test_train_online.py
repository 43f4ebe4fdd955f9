"""Offline → online end to end through ``train()`` on the MJX reach task (tiny sizes), with
``--save_all_online_states`` (the online transitions in ``<run>/data.npz``)."""

import json

import numpy as np
import pytest
from tiny_run import tiny_argv, tiny_dataset

from tper_jit.cli import parse_args
from tper_jit.run import checkpoint
from tper_jit.run.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    argv = tiny_argv(online_steps=32, eval_interval=20, save_all_online_states=True,
                     save_dir=tmp_path_factory.mktemp("online"))
    return train(parse_args(argv), tiny_dataset())


def test_phase_switch_metrics_plots_and_checkpoints(run):
    result = run
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    offline = [r for r in rows if "offline_agent/critic/critic_loss" in r]
    online = [r for r in rows if "env/env_steps" in r]
    assert [r["step"] for r in offline] == [10, 20]
    # logged step = offline steps + nominal env steps (iterations · N · H: 2 · 2 · 2 per chunk)
    assert [r["step"] for r in online] == [28, 36, 44, 52]
    assert all(0 < r["env/env_steps"] <= r["step"] - 20 for r in online)
    assert "online_agent/critic/critic_loss" in online[-1]
    assert "ptr/sample_online/priority_mean" in online[-1]
    # evaluations: at the first boundary at/after each 20 steps and at each phase's end
    assert ["eval/success_rate" in r for r in offline + online] == [False, True, False, False,
                                                                   True, True]
    assert list((result.run_dir / "plots").glob("priorities_*.png"))
    assert (result.run_dir / "plots" / "curve.png").stat().st_size > 5000  # offline + online
    assert checkpoint.latest_step(result.run_dir) == 52
    assert checkpoint.RunCheckpointer(result.run_dir).latest_step() == 52
    # the online phase wrote its episodes into the replay
    st = result.state.replay.store
    assert int(result.state.env_steps) == int(np.asarray(st.streams.cursor).sum())


def test_save_all_online_states_writes_the_online_transitions(run):
    # --save_all_online_states: the online replay rows land in <run>/data.npz
    result = run
    with np.load(result.run_dir / "data.npz") as f:
        data = dict(f)
    st = result.state.replay.store
    written = np.asarray(st.streams.cursor)
    assert len(data["observations"]) == written.sum() == int(result.state.env_steps) > 0
    np.testing.assert_array_equal(np.bincount(data["stream"], minlength=2), written)
    assert data["observations"].shape[1] == data["next_observations"].shape[1] == 15
    # consecutive rows of one stream chain: s' of a row is s of the next unless an episode ended
    for s in range(2):
        rows = data["stream"] == s
        nxt, obs, end = (data[k][rows] for k in ("next_observations", "observations",
                                                  "terminals"))
        chained = end[:-1] == 0
        np.testing.assert_allclose(nxt[:-1][chained], obs[1:][chained])
