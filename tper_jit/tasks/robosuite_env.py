"""robosuite environments for the host-env bridge, built without robomimic (no torch, no
``mujoco_py``): the env of a robomimic low-dim dataset is ``robosuite.make(env_name,
**env_kwargs)`` from the JSON ``data.attrs['env_args']`` of its hdf5 file.

Set-up (an optional extra, in its own virtual environment: robosuite 1.4.1 — the version
robomimic 0.3.0 datasets were made with — asserts at reset under mujoco 4, so it needs
mujoco 3.3.7, and mujoco-mjx must then be 3.3.7 too)::

    python3 -m venv ~/venvs/tper-rs
    ~/venvs/tper-rs/bin/pip install -e '.[robosuite,dev]'
    # = robosuite==1.4.1 mujoco==3.3.7 mujoco-mjx==3.3.7 beside jax<0.10 and the rest

robosuite 1.4.1 imports neither robomimic nor ``mujoco_py``, so no stub is needed; it prints
"No private macro file found!" warnings at import (harmless).  Rendering is off, so no
display or ``MUJOCO_GL`` is needed.

Conventions (those of ``tper_jit.data.robomimic_hdf5``, so online rows look like offline ones):

- observation = concat of ``DEFAULT_LOW_DIM_KEYS`` in that order (``robot0_eef_pos``,
  ``robot0_eef_quat``, ``robot0_gripper_qpos``, ``object``; robomimic's ``object`` is
  robosuite's ``object-state``), float32;
- reward = ``float(env._check_success())`` after the step ({0, 1}, robomimic's sparse reward;
  the trainer adds the loader's −1 shift, ``REWARD_SHIFT``), ``info['success']`` the same;
- a success terminates the episode (robomimic rollouts stop at success; the datasets' demos
  end there, ``dones`` = 1); the time limit truncates it: ``ROBOMIMIC_EPISODE_LIMITS`` of the
  loader (lift 300, can 300, square 400, transport 800, tool_hang 1000 env steps);
- ``reset(seed)`` seeds numpy's global generator for the reset only (robosuite 1.4.1 draws
  object placements and robot init noise from ``np.random``) and restores it afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tper_jit.data.robomimic_hdf5 import (
    DEFAULT_LOW_DIM_KEYS,
    ROBOMIMIC_EPISODE_LIMITS,
    default_robomimic_path,
    is_robomimic_env,
    parse_robomimic_env_name,
)

# robomimic's EnvType.ROBOSUITE_TYPE (the "type" field of env_args).
ROBOSUITE_ENV_TYPE = 1
# robosuite env name (env_args["env_name"]) → robomimic task (ROBOMIMIC_EPISODE_LIMITS key).
ROBOSUITE_TASKS = {"Lift": "lift", "PickPlaceCan": "can", "NutAssemblySquare": "square",
                   "TwoArmTransport": "transport", "ToolHang": "tool_hang"}
# The robomimic loader's reward shift: the agent sees r − 1 online as offline.
REWARD_SHIFT = -1.0
HDF5_SUFFIXES = (".hdf5", ".h5")
INSTALL_NOTE = (
    "its online phase needs the optional robosuite extra, which is not installed here; in a "
    "separate virtual environment: `pip install -e '.[robosuite]'` (robosuite==1.4.1, "
    "mujoco==3.3.7, mujoco-mjx==3.3.7; see the README, 'robomimic tasks through the host "
    "bridge')")


def robosuite_available() -> bool:
    """Whether ``import robosuite`` can work (checked without importing it)."""
    return importlib.util.find_spec("robosuite") is not None


def read_env_args(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON ``data.attrs['env_args']`` of a robomimic hdf5 file (``{}`` if absent)."""
    import h5py

    with h5py.File(path, "r") as f:
        raw = f["data"].attrs.get("env_args") if "data" in f else None
    if raw is None:
        return {}
    return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))


def is_robosuite_env_args(env_args: Mapping[str, Any]) -> bool:
    """robomimic's robosuite env type, or a known robosuite task name."""
    return (env_args.get("type") == ROBOSUITE_ENV_TYPE
            or env_args.get("env_name") in ROBOSUITE_TASKS)


def dataset_path_of(env_name: str, dataset_path: str | None) -> str | None:
    """The hdf5 file whose ``env_args`` describe the env: ``dataset_path``, else the default
    path of a robomimic name (``~/.robomimic/<task>/<type>/low_dim_v15.hdf5``), else None."""
    if dataset_path:
        return str(dataset_path)
    if is_robomimic_env(env_name) and parse_robomimic_env_name(env_name).obs_type == "low_dim":
        return default_robomimic_path(env_name)
    return None


def is_robosuite_task(env_name: str, dataset_path: str | None = None) -> bool:
    """robomimic low-dim names (``lift-mh-low_dim``, ``square-ph-low``) and ``.hdf5`` datasets
    whose ``env_args`` name a robosuite env.  Pure but for reading that one attribute: a
    robomimic name whose (readable) file describes another env (e.g. an ``envs_mjx`` file) is
    not a robosuite task; a missing file is, for a robomimic name (the loader reports it), and
    is not, for any other name."""
    robomimic = (is_robomimic_env(env_name)
                 and parse_robomimic_env_name(env_name).obs_type == "low_dim")
    path = dataset_path_of(env_name, dataset_path) if robomimic else dataset_path
    if not (path and str(path).endswith(HDF5_SUFFIXES)):
        return False
    try:
        return is_robosuite_env_args(read_env_args(path))
    except (OSError, ValueError, KeyError):
        return robomimic and not os.path.exists(path)


def episode_limit_of(env_name: str, env_args: Mapping[str, Any]) -> int:
    """The time limit: the loader's table by robomimic name, else by the env_args task, else
    env_kwargs ``horizon`` (robosuite's default 1000)."""
    if is_robomimic_env(env_name):
        return ROBOMIMIC_EPISODE_LIMITS[parse_robomimic_env_name(env_name).task]
    task = ROBOSUITE_TASKS.get(str(env_args.get("env_name")))
    if task is not None:
        return ROBOMIMIC_EPISODE_LIMITS[task]
    return int(env_args.get("env_kwargs", {}).get("horizon", 1000))


def robosuite_kwargs(env_args: Mapping[str, Any]) -> dict[str, Any]:
    """``env_kwargs`` with rendering and cameras off, object observations on, and robosuite's
    own ``done`` ignored (the bridge applies the time limit)."""
    kw = dict(env_args.get("env_kwargs", {}))
    kw.update(has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
              use_object_obs=True, ignore_done=True)
    return kw


def flat_obs(obs: Mapping[str, np.ndarray], obs_keys: Sequence[str]) -> np.ndarray:
    """robosuite obs dict → ``(D,)`` float32, the keys in ``obs_keys`` order (``object`` ←
    ``object-state``, robomimic's renaming)."""
    parts = [np.asarray(obs["object-state" if k == "object" else k], np.float32).ravel()
             for k in obs_keys]
    return np.concatenate(parts)


class RobosuiteEnv:
    """One robosuite env behind a gymnasium-style API: ``reset(seed) -> (obs (D,), info)``,
    ``step(action (A,)) -> (obs (D,), reward, terminated, truncated, info)``."""

    def __init__(self, env_args: Mapping[str, Any], max_episode_steps: int,
                 obs_keys: Sequence[str] = DEFAULT_LOW_DIM_KEYS):
        import robosuite

        self.env = robosuite.make(env_args["env_name"], **robosuite_kwargs(env_args))
        self.obs_keys = tuple(obs_keys)
        self.max_episode_steps = int(max_episode_steps)
        self.action_size = int(self.env.action_spec[0].shape[0])
        self.observation_size = int(flat_obs(self.env.observation_spec(), self.obs_keys).size)
        self.t = 0

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        state = np.random.get_state()
        try:
            if seed is not None:
                np.random.seed(int(seed) % 2**32)
            obs = self.env.reset()
        finally:
            if seed is not None:
                np.random.set_state(state)
        self.t = 0
        return flat_obs(obs, self.obs_keys), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, _, _, info = self.env.step(np.asarray(action, np.float64))
        self.t += 1
        success = bool(self.env._check_success())
        truncated = self.t >= self.max_episode_steps and not success
        info = dict(info, success=success)
        return flat_obs(obs, self.obs_keys), float(success), success, truncated, info

    def close(self) -> None:
        self.env.close()


def make_envs(env_name: str, num_envs: int, dataset_path: str | None = None,
              max_episode_steps: int | None = None,
              obs_keys: Sequence[str] = DEFAULT_LOW_DIM_KEYS
              ) -> tuple[str, list[RobosuiteEnv], int]:
    """``(env id, envs, time limit)``: ``num_envs`` robosuite envs from the ``env_args`` of the
    dataset file (``dataset_path_of``); ``max_episode_steps`` overrides the time limit."""
    path = dataset_path_of(env_name, dataset_path)
    if path is None:
        raise ValueError(f"{env_name!r}: no robomimic hdf5 file to read env_args from")
    env_args = read_env_args(path)
    if not is_robosuite_env_args(env_args):
        raise ValueError(f"{path}: data.attrs['env_args'] does not describe a robosuite env "
                         f"({env_args.get('env_name')!r}, type {env_args.get('type')!r})")
    limit = int(max_episode_steps or episode_limit_of(env_name, env_args))
    envs = [RobosuiteEnv(env_args, limit, obs_keys) for _ in range(int(num_envs))]
    return f"robosuite:{env_args['env_name']}", envs, limit
