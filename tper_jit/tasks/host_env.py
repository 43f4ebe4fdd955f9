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
(ogbench's reset info ``goal`` / ``control`` are not determined by it: the task reset walks
the scene to its goal with an unseeded ``action_space.sample()``; the observations are.)

Execution: the envs step in this process or in ``workers`` processes (``env_workers.py``,
``--env_workers``); the per-env code is ``env_chunk.py``'s in both, so results are identical.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from flax import struct

from envs_mjx.wrappers import Transition
from tper_jit.tasks import env_chunk
from tper_jit.tasks.env_chunk import reset_seed
from tper_jit.tasks.env_workers import EnvWorkerPool, gather
from tper_jit.tasks.resolve import env_id_of, resolve

__all__ = ["EpisodeSpec", "HostObs", "HostVecEnv", "evaluate_host", "reset_seed"]


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


class HostVecEnv:
    """N host envs (ogbench or robosuite): ``reset(seed=None) -> (N, D)``,
    ``step_chunk((N, H, A)) -> Transition`` of numpy arrays ``(N, H, ...)``.  ``infos[i]`` is
    env i's latest info dict (host policies such as the scripted oracles read it).

    ``workers`` W > 0 steps the envs in W worker processes (``env_workers.py``; contiguous
    groups, built there, never in this process) instead of one after another here; the
    per-env code is ``env_chunk``'s either way, so both give identical results.  ``obs``,
    ``infos``, ``resets``, ``seed`` and ``first_index`` live in this object in both cases
    and are what the next call uses; ``envs`` (the env objects) exists only with W = 0 —
    ``map_envs`` reaches the envs in both."""

    is_host = True

    def __init__(self, env_name: str, num_envs: int, seed: int = 0,
                 dataset_path: str | None = None, max_episode_steps: int | None = None,
                 simulator: str | None = None, workers: int = 0):
        """``simulator`` (default: ``resolve(env_name, dataset_path).simulator``):
        ``ogbench-host`` → gymnasium envs of OGBench; ``robosuite-host`` →
        ``robosuite_env.RobosuiteEnv`` (built from the hdf5 file's ``env_args``).
        ``max_episode_steps`` overrides the time limit of either.  ``workers``: env worker
        processes (0 = step in this process; capped at ``num_envs``)."""
        simulator = simulator or resolve(env_name, dataset_path, robosuite_ok=True).simulator
        if simulator not in ("ogbench-host", "robosuite-host"):
            raise ValueError(f"{env_name!r} has no host environment (task kind {simulator})")
        if int(workers) < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.num_envs = int(num_envs)
        self.workers = min(int(workers), self.num_envs)
        build = {"simulator": simulator, "env_name": env_name, "env_id": env_id_of(env_name),
                 "dataset_path": dataset_path, "max_episode_steps": max_episode_steps}
        self._pool: EnvWorkerPool | None = None
        self._envs: list | None = None
        if self.workers:
            self._pool = EnvWorkerPool(self.num_envs, self.workers, build)
            self.env_id, limit, obs_dim, act_dim = self._pool.episode
        else:
            self.env_id, self._envs, limit, obs_dim, act_dim = env_chunk.build_envs(
                num_envs=self.num_envs, **build)
        self.episode = EpisodeSpec(limit, obs_dim, act_dim, self.env_id)
        self.seed = int(seed)
        self.resets = np.zeros(self.num_envs, np.int64)
        self.first_index = 0  # env i draws its reset seeds as episode stream first_index + i
        self.obs = np.zeros((self.num_envs, obs_dim), np.float32)
        self.infos: list[dict] = [{} for _ in range(self.num_envs)]
        self._closed = False

    @property
    def envs(self) -> list:
        """The env objects (in-process venvs only; with workers use ``map_envs``)."""
        if self._envs is None:
            raise AttributeError(f"the {self.env_id} envs live in {self.workers} worker "
                                 "processes; reach them with venv.map_envs(fn)")
        return self._envs

    @property
    def worker_pool(self) -> EnvWorkerPool | None:
        """The worker pool (start-up time, pids, RSS), None in-process."""
        return self._pool

    def _streams(self) -> np.ndarray:
        return self.first_index + np.arange(self.num_envs)

    def reset(self, seed: int | None = None, first_index: int = 0) -> np.ndarray:
        """Reset every env (counting resets from 0 again when ``seed`` is given); returns a
        copy of the observations ``(N, D)`` float32.  ``first_index`` shifts the envs' reset
        streams (env i resets like env ``first_index + i`` of a larger venv), so evaluation
        in rounds of N envs starts the same episodes as one venv of all of them."""
        self.first_index = int(first_index)
        if seed is not None:
            self.seed = int(seed)
            self.resets[:] = 0
        streams = self._streams()
        if self._pool is not None:
            parts = self._pool.call("reset", [(self.seed, streams[lo:hi], self.resets[lo:hi])
                                              for lo, hi in self._pool.ranges])
            obs = np.concatenate([p[0] for p in parts])
            infos = [info for p in parts for info in p[1]]
            counts = np.concatenate([p[2] for p in parts])
        else:
            obs, infos, counts = env_chunk.reset_envs(self.envs, self.seed, streams,
                                                      self.resets)
        self.obs[:] = obs
        self.infos[:] = infos
        self.resets[:] = counts
        return self.obs.copy()

    def step_chunk(self, actions: np.ndarray, active: np.ndarray | None = None) -> Transition:
        """Execute ``actions`` ``(N, H, A)`` open-loop; ``active`` ``(N,)`` bool (default all)
        leaves the other envs untouched (no step, no reset; all their sub-steps invalid) —
        evaluation uses it so every env plays exactly one episode."""
        return self.finish_step(self.start_step(actions, active))

    def start_step(self, actions: np.ndarray, active: np.ndarray | None = None) -> Any:
        """``step_chunk`` in two halves: with workers this one only sends the actions (the
        venvs of several seeds then step at the same time); ``finish_step`` of the returned
        handle waits and returns the ``Transition``.  In-process it steps right away."""
        actions = np.asarray(actions, np.float32)
        if actions.ndim != 3 or actions.shape[0] != self.num_envs:
            raise ValueError(f"actions must be (num_envs={self.num_envs}, H, A), "
                             f"got {actions.shape}")
        active = (np.ones(self.num_envs, bool) if active is None
                  else np.asarray(active, bool).reshape(self.num_envs))
        streams = self._streams()
        if self._pool is not None:
            payloads = [(actions[lo:hi], active[lo:hi], self.obs[lo:hi], self.seed,
                         streams[lo:hi], self.resets[lo:hi]) for lo, hi in self._pool.ranges]
            self._pool.send("step", payloads)
            return actions, None
        return actions, env_chunk.step_envs(self.envs, actions, active, self.obs, self.seed,
                                            streams, self.resets)

    def finish_step(self, pending: Any) -> Transition:
        """The second half of ``step_chunk`` (see ``start_step``)."""
        actions, done = pending
        if done is None:
            done = gather(self._pool.collect("step"))
        fields, obs, infos, counts = done
        self.obs[:] = obs
        for i, info in enumerate(infos):
            if info is not None:
                self.infos[i] = info
        self.resets[:] = counts
        return Transition(obs=fields["obs"], action=actions, reward=fields["reward"],
                          next_obs=fields["next_obs"], terminated=fields["terminated"],
                          truncated=fields["truncated"], success=fields["success"],
                          valid=fields["valid"])

    def map_envs(self, fn: Callable[..., Any], args_per_env: Sequence | None = None) -> list:
        """``[fn(env_i, *args_per_env[i]) for i in range(N)]``, run where env i lives (its
        worker when W > 0, so ``fn``, the args and the results must pickle: a module-level
        function).  ``args_per_env[i]``: a tuple of positional args (any other value is one
        argument); None: ``fn(env_i)``."""
        args = env_chunk.as_arg_tuples(args_per_env, self.num_envs)
        if self._pool is not None:
            return self._pool.map(fn, args)
        return env_chunk.map_envs(self.envs, fn, args)

    def close(self) -> None:
        """Close the envs (and stop the workers); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.close()
        else:
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
