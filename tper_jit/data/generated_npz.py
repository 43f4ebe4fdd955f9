"""OGBench-schema npz files written by ``envs_mjx.generate`` (rewards stored in the file).

Same row layout as OGBench (one block of L + 1 state rows per episode, ``terminals`` on the
last row), plus per-row ``rewards`` / ``masks`` (of the transition leaving the row, env
convention) and ``successes`` (of the row's state).  Transitions are built as
``ogbench.load_dataset`` builds them (each episode's last row dropped, next observation =
the following row); the transition's success is that of the state it leads to.  OGBench's
own relabelling cannot be used here: it would rebuild OGBench's UR5e scene, whose qpos
layout differs from the MJX tasks'.
"""

from __future__ import annotations

import os

import numpy as np

from tper_jit.data.common import (
    FlatDataset,
    check_finite,
    clip_actions,
    content_hash,
    make_dataset,
    read_npz_array,
    require_file,
    sparsify_rewards,
)
from tper_jit.data.ogbench_npz import _load_terminals, validate_npz

STORED_KEYS = ("rewards", "masks", "successes")


def load_generated_npz(path: str | os.PathLike, *, env_name: str = "",
                       reward_shift: float = 0.0, sparse: bool = False, clip: bool = True,
                       expected_obs_dim: int | None = None,
                       compute_hash: bool = True) -> FlatDataset:
    """Load a generated npz; rewards are ``stored + reward_shift`` (e.g. −1 for robomimic-style
    {0, 1} tasks), then ``sparse`` and action clipping as for every loader."""
    path = require_file(path, "generated dataset file")
    validate_npz(path, need=STORED_KEYS, expected_obs_dim=expected_obs_dim, env_name=env_name)
    with np.load(path) as f:
        terminals = _load_terminals(path, f)
        arr = {k: read_npz_array(path, f, k, np.float32)
               for k in ("observations", "actions", *STORED_KEYS)}
    for k, a in arr.items():
        if a.shape[0] != terminals.shape[0]:
            raise ValueError(f"{path}: `{k}` has {a.shape[0]} rows, `terminals` "
                             f"{terminals.shape[0]}")
        check_finite(path, k, a)
    keep = terminals == 0
    nxt = np.concatenate([[False], keep[:-1]])
    if not keep.any():
        raise ValueError(f"{path}: the dataset is empty (every episode has a single row)")
    rewards = arr["rewards"][keep] + np.float32(reward_shift)
    if sparse:
        rewards = sparsify_rewards(rewards)
    actions = arr["actions"][keep]
    if clip:
        actions = clip_actions(actions)
    return make_dataset(
        path, observations=arr["observations"][keep], actions=actions, rewards=rewards,
        terminals=np.concatenate([terminals[1:], [1.0]])[keep], masks=arr["masks"][keep],
        next_observations=arr["observations"][nxt], successes=arr["successes"][nxt],
        sources=(path,), env_name=env_name,
        content_hash=content_hash([path]) if compute_hash else None,
        options=dict(format="generated_npz", reward_shift=reward_shift, sparse=sparse,
                     clip_actions=clip), expected_obs_dim=expected_obs_dim)
