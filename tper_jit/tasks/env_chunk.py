"""The per-env chunk semantics of the host bridge, in one place for both execution paths.

``HostVecEnv`` (``host_env.py``) steps its envs either in its own process or in worker
processes (``env_workers.py``); both call ``build_envs``, ``reset_envs`` and ``step_envs`` of
this module on a contiguous group of envs (all N, or one worker's slice), so the two paths
give identical results by construction.

The functions are stateless over the bookkeeping: the caller passes each env's current
observation, its reset stream (``first_index + i``) and its reset count, and gets the new
ones back.  The parent ``HostVecEnv`` keeps these as its public attributes, so assigning
``venv.first_index`` or ``venv.resets`` (evaluation and resume do) takes effect either way.

This module imports no JAX (workers stay small): numpy here, gymnasium / ogbench /
robosuite only when envs are built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tper_jit.tasks import robosuite_env

FLAG_FIELDS = ("terminated", "truncated", "success", "valid")


def reset_seed(seed: int, env_index: int, count: int) -> int:
    """The gymnasium reset seed of env ``env_index``'s ``count``-th reset."""
    return int(np.random.SeedSequence([seed, env_index, count]).generate_state(1)[0])


def _ogbench_envs(env_id: str, num_envs: int, max_episode_steps: int | None
                  ) -> tuple[list, int, int, int]:
    """``(envs, time limit, obs dim, action dim)`` of ``num_envs`` ogbench envs."""
    import warnings

    import gymnasium
    import ogbench.manipspace  # noqa: F401  (registers the manipspace envs)

    kwargs = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's env-checker chatter
        envs = [gymnasium.make(env_id, **kwargs) for _ in range(num_envs)]
    env = envs[0]
    return (envs, int(env.spec.max_episode_steps),
            int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)))


def build_envs(simulator: str, env_name: str, env_id: str, num_envs: int,
               dataset_path: str | None = None, max_episode_steps: int | None = None
               ) -> tuple[str, list, int, int, int]:
    """``(env id, envs, time limit, obs dim D, action dim A)`` of ``num_envs`` host envs.

    ``simulator``: ``ogbench-host`` (gymnasium id ``env_id``) or ``robosuite-host`` (built
    from the hdf5 file's ``env_args``); ``max_episode_steps`` overrides the time limit."""
    if simulator == "robosuite-host":
        env_id, envs, limit = robosuite_env.make_envs(env_name, num_envs, dataset_path,
                                                      max_episode_steps)
        return env_id, envs, limit, envs[0].observation_size, envs[0].action_size
    envs, limit, obs_dim, act_dim = _ogbench_envs(env_id, num_envs, max_episode_steps)
    return env_id, envs, limit, obs_dim, act_dim


def _reset_one(env, seed: int, stream: int, count: int) -> tuple[np.ndarray, dict]:
    return env.reset(seed=reset_seed(seed, stream, count))


def reset_envs(envs: Sequence, seed: int, streams: np.ndarray, counts: np.ndarray
               ) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """Reset each env ``i`` with its ``counts[i]``-th seed of stream ``streams[i]``.

    Returns ``(obs (n, D) float32, infos (n,), counts + 1 (n,) int64)``."""
    counts = np.asarray(counts, np.int64).copy()
    obs, infos = [], []
    for i, env in enumerate(envs):
        ob, info = _reset_one(env, seed, int(streams[i]), int(counts[i]))
        counts[i] += 1
        obs.append(np.asarray(ob, np.float32).reshape(-1))
        infos.append(info)
    return np.stack(obs), infos, counts


def step_one_chunk(env, actions: np.ndarray, ob: np.ndarray, seed: int, stream: int,
                   count: int) -> tuple[dict[str, np.ndarray], np.ndarray, dict, int]:
    """One env executes ``actions`` ``(H, A)`` open-loop from observation ``ob`` ``(D,)``.

    Once the episode ends (terminated or time-limit truncated) the rest of the chunk is
    dropped (``valid`` False, zeros), ``next_obs`` of the ending sub-step is the terminal
    observation, and the env is reset with seed ``reset_seed(seed, stream, count)``.

    Returns ``(fields, obs (D,), info, count)``: ``fields`` ``obs`` / ``next_obs`` ``(H, D)``,
    ``reward`` ``(H,)`` float32 and the ``FLAG_FIELDS`` ``(H,)`` bool; the observation to act
    from next, the latest info dict and the updated reset count."""
    h, d = actions.shape[0], ob.shape[0]
    out = {"obs": np.zeros((h, d), np.float32), "next_obs": np.zeros((h, d), np.float32),
           "reward": np.zeros(h, np.float32)} | {k: np.zeros(h, bool) for k in FLAG_FIELDS}
    ob = np.asarray(ob, np.float32).copy()
    info: dict = {}
    for j in range(h):
        out["obs"][j] = ob
        # The env clips internally too; clipping here keeps the agent's stored action.
        nxt, r, term, trunc, info = env.step(np.clip(actions[j], -1.0, 1.0))
        ob = np.asarray(nxt, np.float32).reshape(-1)
        out["next_obs"][j] = ob
        out["reward"][j] = r
        out["valid"][j] = True
        out["terminated"][j] = bool(term)
        out["truncated"][j] = bool(trunc) and not term
        out["success"][j] = bool(info.get("success", False))
        if term or trunc:  # the rest of this chunk is dropped; a fresh episode next
            nxt, info = _reset_one(env, seed, stream, count)
            ob, count = np.asarray(nxt, np.float32).reshape(-1), count + 1
            break
    return out, ob, info, count


def step_envs(envs: Sequence, actions: np.ndarray, active: np.ndarray, obs: np.ndarray,
              seed: int, streams: np.ndarray, counts: np.ndarray
              ) -> tuple[dict[str, np.ndarray], np.ndarray, list[dict | None], np.ndarray]:
    """``step_one_chunk`` for each env ``i`` of a group with ``active[i]``; the others are
    untouched (no step, no reset, every sub-step invalid).

    ``actions`` ``(n, H, A)`` float32, ``active`` ``(n,)`` bool, ``obs`` ``(n, D)`` (each env's
    current observation), ``streams`` / ``counts`` ``(n,)``.  Returns ``(fields (n, H, ...),
    obs (n, D), infos (n,) — None where not stepped, counts (n,))``."""
    n, h = actions.shape[:2]
    d = obs.shape[1]
    fields = {"obs": np.zeros((n, h, d), np.float32), "next_obs": np.zeros((n, h, d), np.float32),
              "reward": np.zeros((n, h), np.float32)} | {
                  k: np.zeros((n, h), bool) for k in FLAG_FIELDS}
    obs = np.array(obs, np.float32)
    counts = np.asarray(counts, np.int64).copy()
    infos: list[dict | None] = [None] * n
    for i, env in enumerate(envs):
        if not active[i]:
            continue
        out, obs[i], infos[i], counts[i] = step_one_chunk(
            env, actions[i], obs[i], seed, int(streams[i]), int(counts[i]))
        for k, v in out.items():
            fields[k][i] = v
    return fields, obs, infos, counts


def map_envs(envs: Sequence, fn: Callable[..., Any], args_per_env: Sequence[tuple] | None,
             first: int = 0) -> list:
    """``[fn(env_i, *args_per_env[i]) for each env]``; ``first`` is the group's first env
    index (for the error message)."""
    out = []
    for i, env in enumerate(envs):
        args = () if args_per_env is None else args_per_env[i]
        try:
            out.append(fn(env, *args))
        except Exception as e:
            e.add_note(f"map_envs: {getattr(fn, '__name__', fn)} failed on env {first + i}")
            raise
    return out


def as_arg_tuples(args_per_env: Sequence | None, num_envs: int) -> list[tuple] | None:
    """``args_per_env`` as one tuple of positional args per env (a non-tuple entry is one
    argument); checks the length is ``num_envs``."""
    if args_per_env is None:
        return None
    args = [a if isinstance(a, tuple) else (a,) for a in args_per_env]
    if len(args) != num_envs:
        raise ValueError(f"map_envs: args_per_env has {len(args)} entries for {num_envs} envs")
    return args
