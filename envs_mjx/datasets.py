"""Writers for the OGBench npz schema and the robomimic hdf5 schema (numpy / h5py only).

Input is a list of host-side episodes (dicts of numpy arrays, one per episode) as made by
``episodes_to_host``: ``obs (L+1, O)``, ``qpos (L+1, nq)``, ``qvel (L+1, nv)``,
``success (L+1,)``, ``actions (L, A)``, ``rewards (L,)``, ``terminated (L,)``,
``truncated (L,)``, and scalars ``strategy``, ``tier``, ``fail_mode``.

OGBench npz (flat rows, one block of L+1 rows per episode; ``ogbench.load_dataset`` reads
it): ``observations`` f32, ``actions`` f32 (last row of each episode zero: it has no
successor), ``terminals`` bool (1 on the last row), ``qpos``, ``qvel`` f32 (state at the
row), plus extra keys ignored by ogbench: ``rewards`` f32 and ``masks`` f32 (reward and
1 - terminated of the transition leaving the row, env convention), ``successes`` bool
(row state), ``episode_ids``, ``strategies``, ``tiers``, ``fail_modes`` int32.

robomimic hdf5: ``data/demo_i/{obs/<key>, next_obs/<key>, actions, rewards, dones,
states}`` with ``num_samples`` and ``model_file`` attrs (plus ``strategy``, ``tier``,
``fail_mode``, ``success``); ``data.attrs['total']``, ``data.attrs['env_args']`` (JSON);
``mask/{better,okay,worse,train,valid}`` byte-string arrays of demo names.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from envs_mjx.oracles.pick_place import STRATEGIES, TIERS

EPISODE_KEYS = ("obs", "qpos", "qvel", "success", "actions", "rewards", "terminated",
                "truncated")
STATE_KEYS = ("obs", "qpos", "qvel", "success")  # (T+1) rows; the rest have T rows


def episodes_to_host(eps) -> list[dict[str, np.ndarray]]:
    """Split a batched ``rollout.Episodes`` into per-episode numpy dicts cut to their length."""
    arr = {k: np.asarray(getattr(eps, k)) for k in EPISODE_KEYS}
    lengths = np.asarray(eps.length)
    out = []
    for i, n in enumerate(lengths):
        n = int(n)
        ep = {k: arr[k][i, : n + 1] if k in STATE_KEYS else arr[k][i, :n] for k in EPISODE_KEYS}
        ep.update(strategy=int(eps.strategy[i]), tier=int(eps.tier[i]),
                  fail_mode=int(eps.fail_mode[i]))
        out.append(ep)
    return out


def write_ogbench_npz(path: str, episodes: list[dict[str, np.ndarray]]) -> int:
    """Write episodes as an OGBench npz; returns the number of rows written."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "observations", "actions", "terminals", "qpos", "qvel", "rewards", "masks",
        "successes", "episode_ids", "strategies", "tiers", "fail_modes")}
    for i, ep in enumerate(episodes):
        n = len(ep["actions"])
        act = np.concatenate([ep["actions"], np.zeros((1, ep["actions"].shape[1]))], 0)
        term = np.zeros(n + 1, bool)
        term[-1] = True
        cols["observations"].append(ep["obs"].astype(np.float32))
        cols["actions"].append(act.astype(np.float32))
        cols["terminals"].append(term)
        cols["qpos"].append(ep["qpos"].astype(np.float32))
        cols["qvel"].append(ep["qvel"].astype(np.float32))
        cols["rewards"].append(np.append(ep["rewards"], 0.0).astype(np.float32))
        cols["masks"].append(np.append(1.0 - ep["terminated"], 0.0).astype(np.float32))
        cols["successes"].append(ep["success"].astype(bool))
        for key, val in (("episode_ids", i), ("strategies", ep["strategy"]),
                         ("tiers", ep["tier"]), ("fail_modes", ep["fail_mode"])):
            cols[key].append(np.full(n + 1, val, np.int32))
    flat = {k: np.concatenate(v, 0) for k, v in cols.items()}
    np.savez_compressed(path, **flat)
    return int(flat["terminals"].shape[0])


def _split_obs(obs: np.ndarray, layout: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, size in layout:
        out[name] = obs[:, start : start + size]
        start += size
    if start != obs.shape[1]:
        raise ValueError(f"obs layout covers {start} dims, observation has {obs.shape[1]}")
    return out


def write_robomimic_hdf5(path: str, episodes: list[dict[str, np.ndarray]],
                         layout: list[tuple[str, int]], env_meta: dict, model_xml: str,
                         valid_ids: set[int],
                         strategy_names: tuple[str, ...] = STRATEGIES) -> None:
    """Write episodes as a robomimic-style hdf5 (see the module docstring)."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        total = 0
        names: dict[str, list[str]] = {t: [] for t in TIERS}
        names.update(train=[], valid=[])
        for i, ep in enumerate(episodes):
            name = f"demo_{i}"
            g = data.create_group(name)
            n = len(ep["actions"])
            obs = _split_obs(ep["obs"].astype(np.float32), layout)
            for key, arr in obs.items():
                g.create_dataset(f"obs/{key}", data=arr[:n])
                g.create_dataset(f"next_obs/{key}", data=arr[1 : n + 1])
            g.create_dataset("actions", data=ep["actions"].astype(np.float32))
            g.create_dataset("rewards", data=ep["rewards"].astype(np.float32))
            dones = np.zeros(n, np.int64)
            dones[-1] = 1
            g.create_dataset("dones", data=dones)
            g.create_dataset("states", data=np.concatenate([ep["qpos"], ep["qvel"]], 1)[:n])
            g.attrs["num_samples"] = n
            g.attrs["model_file"] = model_xml
            g.attrs["strategy"] = strategy_names[ep["strategy"]]
            g.attrs["tier"] = TIERS[ep["tier"]]
            g.attrs["fail_mode"] = int(ep["fail_mode"])
            g.attrs["success"] = bool(ep["success"].any())
            total += n
            names[TIERS[ep["tier"]]].append(name)
            names["valid" if i in valid_ids else "train"].append(name)
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(env_meta)
        for key, vals in names.items():
            f.create_dataset(f"mask/{key}", data=np.array(vals, dtype="S"))
