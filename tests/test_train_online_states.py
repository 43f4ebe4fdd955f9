"""``--save_all_online_states`` through ``train()``: the MJX reach task's online transitions
land in ``<run>/data.npz`` (tiny sizes, as ``test_train_online``)."""

import numpy as np

from tper_jit.cli import parse_args
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.run.train import train


def test_online_phase_writes_its_transitions(tmp_path):
    ds = make_synthetic_dataset(15, n=80, episode_length=20, env_name="reach")  # reach obs
    flags = {"env_name": "reach", "offline_steps": 4, "online_steps": 16, "log_interval": 4,
             "num_envs": 2, "horizon_length": 2, "eval_interval": 0, "start_training": 8,
             "buffer_size": 400, "save_dir": tmp_path, "wandb": False, "progress": False,
             "save_all_online_states": True}
    argv = [f"--{k}={v}" for k, v in flags.items()]
    argv += ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]
    result = train(parse_args(argv), ds)
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
