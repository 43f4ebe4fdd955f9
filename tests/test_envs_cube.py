"""cube-single end to end: oracle tiers, generated files (ogbench / h5py), determinism, CLI.

One compiled oracle rollout (batch 96) is shared by the whole module; 192 episodes = 64 per
tier. Real MJX physics, real files.
"""

import json

import h5py
import numpy as np
import ogbench
import pytest

from envs_mjx import generate
from envs_mjx.oracles.pick_place import FAIL_MODES, STRATEGIES, TIERS

ENV = "cube-single-singletask-task1"
BATCH = 96
N_EPISODES = 192


@pytest.fixture(scope="module")
def episodes():
    eps, env = generate.generate_episodes(ENV, N_EPISODES, seed=0, batch=BATCH, progress=False)
    return eps, env


def _success_by_tier(eps):
    succ = np.array([e["success"].any() for e in eps])
    tier = np.array([e["tier"] for e in eps])
    return {name: (succ[tier == k].mean(), int((tier == k).sum())) for k, name in
            enumerate(TIERS)}


def test_oracle_tiers_reach_documented_success(episodes):
    eps, env = episodes
    rates = _success_by_tier(eps)
    for name in TIERS:
        assert rates[name][1] >= 64, rates
    assert rates["better"][0] >= 0.9, rates
    assert rates["okay"][0] >= 0.75, rates
    assert rates["worse"][0] <= rates["better"][0] - 0.15, rates
    assert rates["worse"][0] >= 0.3, rates
    # all strategies and failure modes occur; obs are finite; lengths within the limit
    assert {e["strategy"] for e in eps} == set(range(len(STRATEGIES)))
    assert {e["fail_mode"] for e in eps} == set(range(len(FAIL_MODES)))
    for e in eps:
        assert np.isfinite(e["obs"]).all()
        assert 1 <= len(e["actions"]) <= env.episode_length
        assert e["obs"].shape == (len(e["actions"]) + 1, env.observation_size)
    # worse operators are slower on the episodes they finish
    length = {k: np.mean([len(e["actions"]) for e in eps if e["tier"] == k and
                          e["success"].any()]) for k in range(3)}
    assert length[0] < length[1] < length[2], length


def test_rewards_and_success_follow_ogbench_convention(episodes):
    eps, _ = episodes
    for e in eps[:40]:
        # reward of step t is n_success(s_{t+1}) - n_cubes; success ends the episode
        np.testing.assert_allclose(e["rewards"], e["success"][1:].astype(np.float32) - 1.0)
        if e["success"].any():
            assert e["success"][-1] and e["terminated"][-1] and not e["success"][:-1].any()
        else:
            assert e["truncated"][-1] and len(e["actions"]) == 200


def test_files_load_with_ogbench_and_h5py(episodes, tmp_path):
    eps, env = episodes
    paths = generate.write_all(str(tmp_path), "cube", eps, env, val_fraction=0.1, seed=0)
    n_val = round(0.1 * len(eps))
    train = eps[: len(eps) - n_val]
    rows = sum(len(e["actions"]) + 1 for e in train)

    ds = ogbench.load_dataset(paths["npz"])
    assert ds["observations"].shape == (rows - len(train), env.observation_size)
    assert ds["actions"].shape == (rows - len(train), 5)
    assert ds["terminals"].sum() == len(train)
    # next_observations is the shifted observation within the first episode
    n0 = len(train[0]["actions"])
    np.testing.assert_allclose(ds["next_observations"][: n0], train[0]["obs"][1:], rtol=1e-6)
    np.testing.assert_allclose(ds["actions"][: n0], train[0]["actions"], rtol=1e-6)
    compact = ogbench.load_dataset(paths["npz"], compact_dataset=True, add_info=True)
    assert compact["observations"].shape[0] == rows
    assert compact["valids"].sum() == rows - len(train)
    assert compact["qpos"].shape == (rows, env.mj_model.nq)
    val = ogbench.load_dataset(paths["val_npz"])
    assert val["terminals"].sum() == n_val
    raw = np.load(paths["npz"])
    assert raw["terminals"].dtype == bool and raw["observations"].dtype == np.float32
    np.testing.assert_array_equal(raw["tiers"][raw["terminals"]], [e["tier"] for e in train])

    with h5py.File(paths["hdf5"], "r") as f:
        meta = json.loads(f["data"].attrs["env_args"])
        assert meta["env_name"] == ENV
        keys = meta["obs_keys"]
        assert f["data"].attrs["total"] == sum(len(e["actions"]) for e in eps)
        masks = {k: [x.decode() for x in f[f"mask/{k}"][:]] for k in f["mask"]}
        assert set(masks) == {"better", "okay", "worse", "train", "valid"}
        assert len(masks["valid"]) == n_val and len(masks["train"]) == len(train)
        assert sorted(masks["better"] + masks["okay"] + masks["worse"]) == sorted(
            masks["train"] + masks["valid"])
        for name in masks["better"][:3] + masks["worse"][:3]:
            i = int(name.split("_")[1])
            g = f[f"data/{name}"]
            assert TIERS[eps[i]["tier"]] == g.attrs["tier"]
            obs = np.concatenate([g[f"obs/{k}"][:] for k in keys], 1)
            nxt = np.concatenate([g[f"next_obs/{k}"][:] for k in keys], 1)
            np.testing.assert_allclose(obs, eps[i]["obs"][:-1], rtol=1e-6)
            np.testing.assert_allclose(nxt, eps[i]["obs"][1:], rtol=1e-6)
            assert g["actions"].shape == (g.attrs["num_samples"], 5)
            assert g["dones"][-1] == 1 and g["dones"][:-1].sum() == 0
            assert g["states"].shape == (g.attrs["num_samples"],
                                         env.mj_model.nq + env.mj_model.nv)
    assert (tmp_path / "cube-trajectories.png").stat().st_size > 10_000


def test_generation_is_deterministic_given_seed(episodes):
    eps, _ = episodes
    again, _ = generate.generate_episodes(ENV, N_EPISODES, seed=0, batch=BATCH,
                                          progress=False)
    for a, b in zip(eps, again, strict=True):
        np.testing.assert_array_equal(a["actions"], b["actions"])
        np.testing.assert_array_equal(a["obs"], b["obs"])
    other, _ = generate.generate_episodes(ENV, BATCH, seed=1, batch=BATCH, progress=False)
    assert not np.array_equal(other[0]["actions"][:5], eps[0]["actions"][:5])


def test_cli_writes_all_outputs(episodes, tmp_path, capsys):
    paths = generate.main(["--env", ENV, "--num_episodes", "10", "--batch", str(BATCH),
                           "--out", str(tmp_path), "--seed", "3"])
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["episodes"] == 10
    for p in paths.values():
        assert (tmp_path / p.split("/")[-1]).exists()
    assert ogbench.load_dataset(paths["val_npz"])["terminals"].sum() == 1



def test_ensure_dataset_generates_once(episodes, tmp_path):
    paths = generate.ensure_dataset(ENV, str(tmp_path), num_episodes=12, batch=BATCH,
                                    progress=False)
    stamp = {k: (tmp_path / p.split("/")[-1]).stat().st_mtime_ns for k, p in paths.items()}
    meta = json.loads((tmp_path / f"{ENV}-oracle.meta.json").read_text())
    assert meta["num_episodes"] == 12 and "tier/better/success" in meta["summary"]
    again = generate.ensure_dataset(ENV, str(tmp_path), num_episodes=12, batch=BATCH)
    assert again == {k: paths[k] for k in ("npz", "val_npz", "hdf5")}
    for k in again:
        assert (tmp_path / again[k].split("/")[-1]).stat().st_mtime_ns == stamp[k]
