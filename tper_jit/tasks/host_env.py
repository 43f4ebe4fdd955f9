"""The host-env bridge: N CPU (non-JAX) environments stepped by action chunks on the host.

``HostVecEnv`` holds N gymnasium environments of OGBench's manipspace singletask suite
(``cube-single-play-singletask-task1-v0`` → env id ``cube-single-singletask-task1-v0``) or N
robosuite envs of a robomimic dataset (``robosuite_env.py``, the optional extra) and
executes one ``(N, H, A)`` chunk per call with exactly the semantics of the MJX
``ChunkedVecEnv.step`` (``envs_mjx/wrappers.py``):

- the H actions of an env run open-loop; once its episode ends inside the chunk the rest of
  the chunk is dropped (``valid`` False, every other field zeros there);
- ``terminated`` (the env's goal termination) and ``truncated`` (the time limit, and only
  when not terminated) are kept apart, so the replay bootstraps on ``1 - terminated``;
- ``next_obs`` of the ending sub-step is the terminal observation, never the reset one;
- after an end the env is reset with a fresh seed before the next chunk (auto-reset).

Reward and success convention (ogbench 1.2.2 singletask envs use ``success_timing='pre'``):
the reward of step t is ``Σ_j ok_j(s_t) − n`` and ``info['success']`` is the success of
``s_t``; the episode terminates at the step taken from a solved state.  Our offline
relabelling (``tper_jit.data.ogbench_relabel``) scores each row from the ``qpos`` of its
observation ``s_t`` with the same rule, so online and offline rewards, masks and success
flags agree and no reward shift applies (``TaskSpec.rewards.shift`` is 0 for them).

Determinism: reset k of env i uses the seed ``SeedSequence([seed, i, k])``; ``reset(seed)``
restarts that count with a new base seed (the evaluation does this per evaluation step).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from flax import struct

from envs_mjx.wrappers import Transition
from tper_jit.tasks import robosuite_env
from tper_jit.tasks.resolve import env_id_of, resolve


@struct.dataclass
class HostObs:
    """What the jitted online code keeps of a host env: the observations to act from."""

    obs: Any  # (N, D) float32


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """The fields of ``ChunkedVecEnv.episode`` the trainer reads."""

    episode_length: int  # the time limit (gymnasium max_episode_steps)
    observation_size: int
    action_size: int
    name: str


def reset_seed(seed: int, env_index: int, count: int) -> int:
    """The gymnasium reset seed of env ``env_index``'s ``count``-th reset."""
    return int(np.random.SeedSequence([seed, env_index, count]).generate_state(1)[0])


def _ogbench_envs(env_name: str, num_envs: int) -> tuple[str, list, int, int, int]:
    """``(env id, envs, time limit, obs dim, action dim)`` of ``num_envs`` ogbench envs."""
    import warnings

    import gymnasium
    import ogbench.manipspace  # noqa: F401  (registers the manipspace envs)

    env_id = env_id_of(env_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's env-checker chatter
        envs = [gymnasium.make(env_id) for _ in range(num_envs)]
    env = envs[0]
    return (env_id, envs, int(env.spec.max_episode_steps),
            int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)))


class HostVecEnv:
    """N host envs (ogbench or robosuite): ``reset(seed=None) -> (N, D)``,
    ``step_chunk((N, H, A)) -> Transition`` of numpy arrays ``(N, H, ...)``.  ``infos[i]`` is
    env i's latest info dict (host policies such as the scripted oracles read it)."""

    is_host = True

    def __init__(self, env_name: str, num_envs: int, seed: int = 0,
                 dataset_path: str | None = None, max_episode_steps: int | None = None,
                 simulator: str | None = None):
        """``simulator`` (default: ``resolve(env_name, dataset_path).simulator``):
        ``ogbench-host`` → gymnasium envs of OGBench; ``robosuite-host`` →
        ``robosuite_env.RobosuiteEnv`` (built from the hdf5 file's ``env_args``;
        ``max_episode_steps`` overrides its time limit)."""
        simulator = simulator or resolve(env_name, dataset_path, robosuite_ok=True).simulator
        if simulator not in ("ogbench-host", "robosuite-host"):
            raise ValueError(f"{env_name!r} has no host environment (task kind {simulator})")
        self.num_envs = int(num_envs)
        if simulator == "robosuite-host":
            self.env_id, self.envs, limit = robosuite_env.make_envs(
                env_name, self.num_envs, dataset_path, max_episode_steps)
            obs_dim, act_dim = self.envs[0].observation_size, self.envs[0].action_size
        else:
            self.env_id, self.envs, limit, obs_dim, act_dim = _ogbench_envs(env_name,
                                                                            self.num_envs)
        self.episode = EpisodeSpec(limit, obs_dim, act_dim, self.env_id)
        self.seed = int(seed)
        self.resets = np.zeros(self.num_envs, np.int64)
        self.first_index = 0  # env i draws its reset seeds as episode stream first_index + i
        self.obs = np.zeros((self.num_envs, obs_dim), np.float32)
        self.infos: list[dict] = [{} for _ in range(self.num_envs)]

    def _reset_one(self, i: int) -> None:
        ob, info = self.envs[i].reset(
            seed=reset_seed(self.seed, self.first_index + i, int(self.resets[i])))
        self.resets[i] += 1
        self.obs[i] = ob
        self.infos[i] = info

    def reset(self, seed: int | None = None, first_index: int = 0) -> np.ndarray:
        """Reset every env (counting resets from 0 again when ``seed`` is given); returns a
        copy of the observations ``(N, D)`` float32.  ``first_index`` shifts the envs' reset
        streams (env i resets like env ``first_index + i`` of a larger venv), so evaluation
        in rounds of N envs starts the same episodes as one venv of all of them."""
        self.first_index = int(first_index)
        if seed is not None:
            self.seed = int(seed)
            self.resets[:] = 0
        for i in range(self.num_envs):
            self._reset_one(i)
        return self.obs.copy()

    def step_chunk(self, actions: np.ndarray, active: np.ndarray | None = None) -> Transition:
        """Execute ``actions`` ``(N, H, A)`` open-loop; ``active`` ``(N,)`` bool (default all)
        leaves the other envs untouched (no step, no reset; all their sub-steps invalid) —
        evaluation uses it so every env plays exactly one episode."""
        actions = np.asarray(actions, np.float32)
        n, h = actions.shape[:2]
        if n != self.num_envs or actions.ndim != 3:
            raise ValueError(f"actions must be (num_envs={self.num_envs}, H, A), "
                             f"got {actions.shape}")
        d = self.obs.shape[1]
        obs = np.zeros((n, h, d), np.float32)
        next_obs = np.zeros((n, h, d), np.float32)
        reward = np.zeros((n, h), np.float32)
        flags = {k: np.zeros((n, h), bool)
                 for k in ("terminated", "truncated", "success", "valid")}
        for i in range(n):
            if active is not None and not active[i]:
                continue
            for j in range(h):
                obs[i, j] = self.obs[i]
                # The env clips internally too; clipping here keeps the agent's stored action.
                ob, r, term, trunc, info = self.envs[i].step(np.clip(actions[i, j], -1.0, 1.0))
                self.obs[i] = ob
                self.infos[i] = info
                next_obs[i, j] = ob
                reward[i, j] = r
                flags["valid"][i, j] = True
                flags["terminated"][i, j] = bool(term)
                flags["truncated"][i, j] = bool(trunc) and not term
                flags["success"][i, j] = bool(info.get("success", False))
                if term or trunc:  # the rest of this chunk is dropped; a fresh episode next
                    self._reset_one(i)
                    break
        return Transition(obs=obs, action=actions, reward=reward, next_obs=next_obs,
                          terminated=flags["terminated"], truncated=flags["truncated"],
                          success=flags["success"], valid=flags["valid"])

    def close(self) -> None:
        for env in self.envs:
            env.close()


def evaluate_host(venv: HostVecEnv, policy, seed: int, horizon_exec: int,
                  episodes: int | None = None) -> dict[str, float]:
    """``episodes`` episodes (default: one per env of ``venv``), played in rounds of
    ``venv.num_envs``; episode k starts from the reset of env k of one large venv reset with
    ``seed``, whatever the round size.  ``policy(obs (M, D), call index) -> actions (M, H, A)``
    is called once per chunk on all M envs (it may read ``venv.infos``); envs without an
    episode left in the last round are stepped by no one.

    Returns ``eval/success_rate`` (alias ``eval/success``), ``eval/episode.return``,
    ``eval/episode.length`` like the MJX ``make_evaluate``: success = the episode had a success
    flag at any valid step; returns are the env's own rewards."""
    m = venv.num_envs
    episodes = m if episodes is None else int(episodes)
    ret, length = np.zeros(episodes), np.zeros(episodes)
    succ = np.zeros(episodes, bool)
    call = 0
    for first in range(0, episodes, m):
        n = min(m, episodes - first)
        obs = venv.reset(seed, first_index=first)
        alive = np.arange(m) < n
        r, ln, sc = np.zeros(m), np.zeros(m), np.zeros(m, bool)
        while alive.any():
            actions = np.asarray(policy(obs, call)).reshape(m, horizon_exec, -1)
            tr = venv.step_chunk(actions, active=alive)
            r += np.where(tr.valid, tr.reward, 0.0).sum(1)
            ln += tr.valid.sum(1)
            sc |= (tr.success & tr.valid).any(1)
            alive &= ~((tr.terminated | tr.truncated) & tr.valid).any(1)
            obs = venv.obs.copy()
            call += 1
        ret[first:first + n], length[first:first + n], succ[first:first + n] = r[:n], ln[:n], sc[:n]
    venv.first_index = 0
    rate = float(succ.mean())
    return {"eval/success_rate": rate, "eval/success": rate,
            "eval/episode.return": float(ret.mean()), "eval/episode.length": float(length.mean())}
