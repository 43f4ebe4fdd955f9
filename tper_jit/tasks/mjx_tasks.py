"""MJX tasks for the trainer: which names are MJX tasks, their reward convention, and their
default offline dataset (generated with the task's scripted oracle on first use, then cached).
"""

from __future__ import annotations

import os
import pathlib
import sys

from envs_mjx import registry

# robomimic-style tasks (and reach) give sparse {0, 1} rewards; the agent sees r − 1
# (ALGORITHM §3), in the offline data and online alike.  OGBench-style cube tasks already
# give n_success − n.
ROBOMIMIC_STYLE = ("lift", "can", "square", "reach")
DEFAULT_DATASET_EPISODES = 300


def reward_shift(env_name: str) -> float:
    return -1.0 if env_name.split("-")[0] in ROBOMIMIC_STYLE else 0.0


def cache_dir() -> pathlib.Path:
    """``$TPER_JIT_DATA`` or ``~/.cache/tper_jit/data``."""
    return pathlib.Path(os.environ.get("TPER_JIT_DATA", "~/.cache/tper_jit/data")).expanduser()


def default_dataset_path(env_name: str, num_episodes: int, seed: int = 0) -> pathlib.Path:
    return cache_dir() / f"{env_name}-oracle-n{num_episodes}-s{seed}.npz"


def ensure_dataset(env_name: str, num_episodes: int = DEFAULT_DATASET_EPISODES,
                   seed: int = 0, out=None) -> pathlib.Path:
    """The cached oracle dataset of an MJX task; generated (npz + hdf5 + PNG) if missing.

    Generation is deterministic given ``seed``, writes to a temporary name and renames, so an
    interrupted generation never leaves a partial file that looks complete.
    """
    from envs_mjx import generate

    out = out or sys.stderr
    path = default_dataset_path(env_name, num_episodes, seed)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating the default dataset for {env_name}: {num_episodes} oracle episodes "
          f"(cached at {path})", file=out)
    episodes, env = generate.generate_episodes(env_name, num_episodes, seed)
    tmp_name = f".tmp-{os.getpid()}-{path.stem}"
    paths = generate.write_all(str(path.parent), tmp_name, episodes, env, val_fraction=0.0,
                               seed=seed)
    for kind, p in paths.items():
        final = pathlib.Path(p.replace(tmp_name, path.stem))
        if kind == "npz":
            continue
        os.replace(p, final)
    os.replace(paths["npz"], path)
    return path


def make_vec_env(env_name: str, num_envs: int):
    """``ChunkedVecEnv`` of ``num_envs`` copies of the task (pure reset / chunk step)."""
    from envs_mjx.wrappers import ChunkedVecEnv

    return ChunkedVecEnv(registry.make(env_name), num_envs)
