"""robomimic low-dim hdf5 datasets, read with h5py alone (no robomimic / torch import).

File layout (robomimic v0.1 / v1.5 low_dim files)::

    data/                      attrs: total, env_args (JSON: env_name, env_kwargs, ...)
      demo_<i>/                attrs: num_samples (T_i), model_file
        actions   (T_i, A)     rewards (T_i,) in {0, 1}     dones (T_i,) in {0, 1}
        obs/<key> (T_i, d_k)   next_obs/<key> (T_i, d_k)    states (T_i, S)
    mask/<filter>              (n,) byte strings b"demo_<i>" (MH: better, okay, worse, ...)

Output (ALGORITHM §3): observations = concat of ``obs_keys`` in the given order (default
``robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos, object``), next_observations likewise
from ``next_obs``; rewards = r − 1 (so {−1, 0}) for every robomimic name spelling
(``square-mh-low`` and ``square-mh-low_dim`` alike — the reference shifted only the second, a
defect); terminals = 1 on each demo's last row (the episode boundary); masks = 1 − dones;
successes = [r > 0] of the unshifted reward.  Demos are read in numeric order (demo_0, demo_1,
demo_2, …, demo_10), all of them or those listed under ``mask/<filter_key>``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import NamedTuple

import h5py
import numpy as np

from tper_jit.data.common import (
    FlatDataset,
    check_finite,
    check_obs_dim,
    clip_actions,
    content_hash,
    make_dataset,
    read_h5_array,
    require_file,
    sparsify_rewards,
)

DEFAULT_LOW_DIM_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
DEFAULT_ROBOMIMIC_DIR = "~/.robomimic"
# Evaluation episode limits (env steps) of the robomimic tasks.
ROBOMIMIC_EPISODE_LIMITS = {"lift": 300, "can": 300, "square": 400, "transport": 800,
                            "tool_hang": 1000}
DATASET_TYPES = ("ph", "mh", "mg", "paired")
_OBS_TYPES = {"low": "low_dim", "low_dim": "low_dim", "lowdim": "low_dim", "image": "image"}
OBS_TYPE_NAMES = tuple(_OBS_TYPES)  # the spellings of the name's last part


class RobomimicName(NamedTuple):
    """``(task, dataset_type, obs_type)``, e.g. ``('square', 'mh', 'low_dim')``."""

    task: str
    dataset_type: str
    obs_type: str


def parse_robomimic_env_name(name: str) -> RobomimicName:
    """``'square-mh-low'`` or ``'square-mh-low_dim'`` → ``('square', 'mh', 'low_dim')``.

    Raises ``ValueError`` for a name that is not ``<task>-<ph|mh|mg|paired>-<low|low_dim|image>``
    with a known task (lift, can, square, transport, tool_hang).
    """
    parts = name.split("-")
    if len(parts) != 3:
        raise ValueError(f"{name!r} is not a robomimic name like 'square-mh-low'")
    task, dtype, obs = parts
    if task not in ROBOMIMIC_EPISODE_LIMITS:
        raise ValueError(f"{name!r}: unknown robomimic task {task!r} "
                         f"(known: {sorted(ROBOMIMIC_EPISODE_LIMITS)})")
    if dtype not in DATASET_TYPES:
        raise ValueError(f"{name!r}: unknown dataset type {dtype!r} (known: {DATASET_TYPES})")
    if obs not in _OBS_TYPES:
        raise ValueError(f"{name!r}: unknown observation type {obs!r} "
                         f"(known: {sorted(_OBS_TYPES)})")
    return RobomimicName(task, dtype, _OBS_TYPES[obs])


def is_robomimic_env(name: str) -> bool:
    """Whether ``name`` parses as a robomimic env name (either spelling)."""
    try:
        parse_robomimic_env_name(name)
    except ValueError:
        return False
    return True


def episode_limit(name: str) -> int:
    """Evaluation episode length of a robomimic env name (lift 300 … tool_hang 1000)."""
    return ROBOMIMIC_EPISODE_LIMITS[parse_robomimic_env_name(name).task]


def default_robomimic_path(name: str, root: str = DEFAULT_ROBOMIMIC_DIR) -> str:
    """``~/.robomimic/{task}/{dataset_type}/low_dim_v15.hdf5`` (expanded)."""
    task, dtype, obs = parse_robomimic_env_name(name)
    if obs != "low_dim":
        raise ValueError(f"{name!r}: only low_dim robomimic datasets are supported")
    return os.path.join(os.path.expanduser(root), task, dtype, "low_dim_v15.hdf5")


def _demo_index(path: str, name: str) -> int:
    m = re.fullmatch(r"demo_(\d+)", name)
    if m is None:
        raise ValueError(f"{path}: unexpected group data/{name} (expected demo_<i>)")
    return int(m.group(1))


def _decode(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def list_demos(f: h5py.File, path: str, filter_key: str | None = None) -> list[str]:
    """Demo names in numeric order: all of ``data/``, or those of ``mask/<filter_key>``."""
    if "data" not in f:
        raise ValueError(f"{path}: missing group 'data' (not a robomimic dataset)")
    all_demos = sorted(f["data"].keys(), key=lambda n: _demo_index(path, n))
    if filter_key is None:
        demos = all_demos
    else:
        available = sorted(f["mask"].keys()) if "mask" in f else []
        if filter_key not in available:
            raise ValueError(f"{path}: unknown filter key {filter_key!r} "
                             f"(available: {available or 'none, the file has no mask group'})")
        demos = sorted({_decode(x) for x in f["mask"][filter_key][()]},
                       key=lambda n: _demo_index(path, n))
        missing = sorted(set(demos) - set(all_demos))
        if missing:
            raise ValueError(f"{path}: mask/{filter_key} lists demos not in data/: {missing[:5]}")
    if not demos:
        what = "data/" if filter_key is None else f"mask/{filter_key}"
        raise ValueError(f"{path}: the dataset is empty (no demos in {what})")
    return demos


def _require(path: str, group: h5py.Group, key: str) -> h5py.Dataset:
    if key not in group:
        raise ValueError(f"{path}: missing key {group.name}/{key}")
    d = group[key]
    if not isinstance(d, h5py.Dataset):
        raise ValueError(f"{path}: {group.name}/{key} is not an array")
    return d


def _validate_demo(path: str, demo: h5py.Group, obs_keys: Sequence[str]
                   ) -> tuple[int, int, int]:
    """Check one demo's keys and shapes from metadata only; returns ``(T, obs_dim, act_dim)``."""
    act = _require(path, demo, "actions")
    if act.ndim != 2:
        raise ValueError(f"{path}: {act.name} must be (T, A), got shape {act.shape}")
    t = act.shape[0]
    if t == 0:
        raise ValueError(f"{path}: {demo.name} is empty (0 steps)")
    for k in ("rewards", "dones"):
        d = _require(path, demo, k)
        if d.shape != (t,):
            raise ValueError(f"{path}: {d.name} must have shape ({t},) like actions, "
                             f"got {d.shape}")
    widths: dict[str, int] = {}
    for grp in ("obs", "next_obs"):
        if grp not in demo:
            raise ValueError(f"{path}: missing key {demo.name}/{grp}")
        for k in obs_keys:
            d = _require(path, demo[grp], k)
            if d.ndim != 2 or d.shape[0] != t:
                raise ValueError(f"{path}: {d.name} must have shape ({t}, d) like actions, "
                                 f"got {d.shape}")
            if widths.setdefault(k, d.shape[1]) != d.shape[1]:
                raise ValueError(f"{path}: {d.name} has width {d.shape[1]} but obs/{k} has "
                                 f"{widths[k]}")
    return t, sum(widths.values()), act.shape[1]


def _file_obs_keys(f: h5py.File) -> tuple[str, ...]:
    """The file's own observation keys (``env_args['obs_keys']``), else robomimic's."""
    try:
        keys = json.loads(f["data"].attrs.get("env_args", "{}")).get("obs_keys")
    except (KeyError, TypeError, ValueError, AttributeError):
        keys = None
    if isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
        return tuple(keys)
    return DEFAULT_LOW_DIM_KEYS


def load_robomimic_hdf5(path: str | os.PathLike, *, env_name: str = "",
                        filter_key: str | None = None,
                        obs_keys: Sequence[str] | None = None, sparse: bool = False,
                        clip: bool = True, expected_obs_dim: int | None = None,
                        compute_hash: bool = True) -> FlatDataset:
    """Load a robomimic low-dim hdf5 file (see the module docstring for the transforms).

    Every demo's keys and shapes are checked from the hdf5 metadata before any array is read;
    arrays are then read straight into preallocated ``(N, ·)`` outputs.

    Args:
        path: the ``.hdf5`` file.
        env_name: recorded in the metadata and messages (e.g. ``square-mh-low``).
        filter_key: ``mask/<filter_key>`` subset (e.g. ``better``); ``None`` = all demos.
        obs_keys: low-dim observation keys, concatenated in this order; ``None`` = the
            ``obs_keys`` list in the file's ``data.attrs['env_args']`` when it has one (files
            ``tper-generate`` writes), else ``DEFAULT_LOW_DIM_KEYS``.
        sparse: r ← −1·[r ≠ 0] after the −1 shift (a no-op for {0, 1} rewards).
        clip: clip actions to ±(1 − 1e−5).
        expected_obs_dim: the environment's observation dim; a mismatch is a ``ValueError``.
        compute_hash: store the file's sha256 in ``meta.content_hash``.

    Returns:
        ``FlatDataset`` with N = Σ_i T_i rows over the selected demos.
    """
    path = require_file(path, "robomimic dataset file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable hdf5 file ({e})") from e
    with f:
        obs_keys = tuple(_file_obs_keys(f) if obs_keys is None else obs_keys)
        if not obs_keys:
            raise ValueError(f"{path}: obs_keys is empty")
        demos = list_demos(f, path, filter_key)
        lengths = []
        dims = None
        for name in demos:
            t, od, ad = _validate_demo(path, f["data"][name], obs_keys)
            if dims is not None and (od, ad) != dims:
                raise ValueError(f"{path}: data/{name} has (obs, action) dims {(od, ad)}, "
                                 f"data/{demos[0]} has {dims}")
            dims = dims or (od, ad)
            lengths.append(t)
        obs_dim, act_dim = dims
        check_obs_dim(path, obs_dim, expected_obs_dim, env_name)
        n = int(sum(lengths))
        observations = np.empty((n, obs_dim), np.float32)
        next_observations = np.empty((n, obs_dim), np.float32)
        actions = np.empty((n, act_dim), np.float32)
        raw_rewards = np.empty(n, np.float32)
        dones = np.empty(n, np.float32)
        terminals = np.zeros(n, np.float32)
        row = 0
        for name, t in zip(demos, lengths, strict=True):
            demo = f["data"][name]
            rows = slice(row, row + t)
            actions[rows] = read_h5_array(path, demo["actions"])
            raw_rewards[rows] = read_h5_array(path, demo["rewards"])
            dones[rows] = read_h5_array(path, demo["dones"])
            for grp, out in (("obs", observations), ("next_obs", next_observations)):
                col = 0
                for k in obs_keys:
                    a = read_h5_array(path, demo[grp][k])
                    out[rows, col:col + a.shape[1]] = a
                    col += a.shape[1]
            terminals[row + t - 1] = 1.0
            row += t
        env_args = f["data"].attrs.get("env_args")
    for k, a in (("rewards", raw_rewards), ("dones", dones), ("obs", observations),
                 ("next_obs", next_observations), ("actions", actions)):
        check_finite(path, k, a)

    rewards = raw_rewards - 1.0
    if sparse:
        rewards = sparsify_rewards(rewards)
    if clip:
        actions = clip_actions(actions)
    options = dict(format="robomimic_hdf5", filter_key=filter_key, obs_keys=obs_keys,
                   sparse=sparse, clip_actions=clip, reward_shift=-1.0,
                   num_demos=len(demos), robomimic_env=_env_args_name(env_args))
    return make_dataset(path, observations=observations, actions=actions, rewards=rewards,
                        terminals=terminals, masks=1.0 - dones,
                        next_observations=next_observations,
                        successes=(raw_rewards > 0).astype(np.float32), sources=(path,),
                        env_name=env_name,
                        content_hash=content_hash([path]) if compute_hash else None,
                        options=options, expected_obs_dim=expected_obs_dim)


def _env_args_name(env_args: str | bytes | None) -> str | None:
    """The simulator env name in ``data.attrs['env_args']`` (JSON), if readable."""
    if env_args is None:
        return None
    try:
        return json.loads(_decode(env_args)).get("env_name")
    except (ValueError, AttributeError):
        return None


def load_robomimic(env_name: str, *, dataset_path: str | None = None,
                   **kwargs) -> FlatDataset:
    """Load the dataset of a robomimic env name (either spelling; default path
    ``~/.robomimic/{task}/{dataset_type}/low_dim_v15.hdf5``); ``kwargs`` as for
    ``load_robomimic_hdf5``."""
    path = dataset_path or default_robomimic_path(env_name)
    return load_robomimic_hdf5(path, env_name=env_name, **kwargs)
