"""The online phase through the host-env bridge: jitted act → host chunk step → jitted learn.

The MJX path scans whole iterations on the device.  Environments that are not JAX (OGBench's
manipspace envs, robosuite envs of robomimic datasets; ``host_env.HostVecEnv``) cannot be
traced, so one iteration is split at the env step, and everything else is the MJX path's own
code:

1. ``act`` (jitted): the same key split and actor call as ``online.make_iteration``;
2. ``HostVecEnv.step_chunk`` on the host: N envs, H actions each, tails dropped, auto-reset;
3. ``observe_and_learn`` (jitted, state donated): ``online.make_observe_and_learn`` — replay
   writes, T-PER sync, episode metrics, ``utd_ratio · N · H`` gradient steps.

A logged row is K = ``log_interval // (N · H)`` such iterations; their per-iteration metrics
are stacked to ``(K, ...)`` and reduced by the driver exactly like an MJX chunk.

With S seeds (``--num_seeds``) there is one venv of N envs per seed
(``host_seeds.HostSeedEnvs``), seeded as the single run of that seed would be; ``act`` and
``observe_and_learn`` are vmapped over the seed axis (the offline block shared, unbatched);
only the env stepping is per seed (the venvs' workers, with ``--env_workers``, step at once).

``OnlineState.env_state`` is a ``HostObs`` (the observations to act from); the simulators
live on the host.  Checkpoints carry their complete state (``host_seeds.get_state``:
MjData's fixed-size arrays, the envs' own variables and random generators, reset counters),
so a resumed OGBench run continues its episodes exactly; env kinds that cannot be restored
(robosuite) restart their episodes at a resume and say so (``restart_episodes``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tper_jit.agents import registry
from tper_jit.loop import seeds
from tper_jit.loop.online import (
    OnlineState,
    init_online_state,
    make_observe_and_learn,
    online_sampler_config,
)
from tper_jit.tasks.env_workers import workers_for
from tper_jit.tasks.host_env import HostObs, HostVecEnv, evaluate_host
from tper_jit.tasks.host_seeds import HostSeedEnvs
from tper_jit.tasks.resolve import RewardRule


def init_host_state(cfg, offline_state, venv: HostVecEnv, seed: int) -> OnlineState:
    """Like ``online.init_online_state`` (same keys from ``seed``), with the host envs
    reset from ``seed`` and their observations as the env state."""
    obs = venv.reset(seed)
    return init_online_state(cfg, offline_state, venv, seed=seed,
                             reset=lambda key: HostObs(obs=jnp.asarray(obs)))


def init_host_states(cfg, rest, venvs: HostSeedEnvs, seed_list) -> OnlineState:
    """``init_host_state`` for every seed of ``rest`` (``(S, ...)`` when S > 1), stacked."""
    num = len(seed_list)
    states = [init_host_state(cfg, seeds.index(rest, s, num), v, seed)
              for s, (v, seed) in enumerate(zip(venvs.venvs, seed_list, strict=True))]
    return seeds.stack(states)


def restart_episodes(rest: OnlineState, venvs: HostSeedEnvs, why: str, out=None
                     ) -> OnlineState:
    """After a resume without the simulators' state: the host envs were reset (by
    ``init_host_states``, building the template), so the running episodes start over; the
    replay's open episodes are detached (kept as unfinished fragments, never continued)."""
    print(f"note: {why}: the online episodes restart from fresh resets (the open episodes in "
          "the replay are closed as unfinished fragments)", file=out, flush=True)
    st = rest.replay.store
    streams = st.streams.replace(slot=jnp.full_like(st.streams.slot, -1))
    replay = rest.replay.replace(store=st.replace(streams=streams))
    return rest.replace(replay=replay, env_state=HostObs(obs=jnp.asarray(venvs.obs())),
                        ep_return=jnp.zeros_like(rest.ep_return),
                        ep_length=jnp.zeros_like(rest.ep_length))


class HostOnlineRows:
    """``rows(offline, rest) -> (rest, metrics)``: one logged row of host iterations, the
    drop-in for the MJX ``seeds.batch_chunk(scan)``: metrics ``(K, ...)`` for one seed,
    ``(S, K, ...)`` for S."""

    def __init__(self, cfg, acfg: Any, venvs: HostSeedEnvs, rewards: RewardRule):
        self.venvs = venvs
        n = venvs.num_envs
        num = self.num_seeds = venvs.num_seeds
        h = registry.exec_horizon(acfg)
        self.scfg = online_sampler_config(cfg, acfg.horizon_length)
        self.per_iter = n * h
        self.k = max(1, cfg.log_interval // self.per_iter)
        observe = make_observe_and_learn(n, acfg, self.scfg, cfg, rewards)
        act = registry.act_fn(acfg)

        def act_step(agent, obs, key):
            # The MJX iteration's key split: (next key, act key, learn key).
            key, k_act, k_learn = jax.random.split(key, 3)
            return act(agent, obs, k_act).reshape(n, h, -1), key, k_learn

        def observe_step(offline, rest, tr, next_obs, key, k_learn):
            state = seeds.join_offline(offline, rest).replace(key=key)
            state, metrics = observe(state, tr, HostObs(obs=next_obs), k_learn)
            return seeds.split_offline(state)[1], metrics

        health = seeds.params_finite
        if num > 1:  # the seed axis leads every argument but the shared offline block
            act_step = jax.vmap(act_step)
            observe_step = jax.vmap(observe_step, in_axes=(None, 0, 0, 0, 0, 0))
            health = jax.vmap(health)
        self._act = jax.jit(act_step)
        self._observe = jax.jit(observe_step, donate_argnums=1)
        self._health = jax.jit(health)

    def __call__(self, offline, rest: OnlineState) -> tuple[OnlineState, dict[str, np.ndarray]]:
        per_iter = []
        for _ in range(self.k):
            actions, key, k_learn = self._act(rest.agent, rest.env_state.obs, rest.key)
            tr = self.venvs.step_chunk(np.asarray(actions))
            rest, metrics = self._observe(offline, rest, tr, jnp.asarray(self.venvs.obs()),
                                          key, k_learn)
            per_iter.append(metrics)
        host = jax.device_get(per_iter)
        axis = 1 if self.num_seeds > 1 else 0  # (S, K, ...) like a vmapped MJX chunk
        stacked = {k: np.stack([m[k] for m in host], axis=axis) for k in host[0]}
        finite = np.asarray(self._health(rest.agent), np.float32)
        stacked["health/params_finite"] = finite.reshape(-1, 1) if self.num_seeds > 1 \
            else finite.reshape(1)
        return rest, stacked


def eval_seed(seed: int, step: int) -> int:
    """The env reset seed of an evaluation at ``step`` (its own stream: tag 3, like the MJX
    evaluation key ``fold_in(fold_in(PRNGKey(seed), 3), step)``)."""
    return int(np.random.SeedSequence([seed, 3, step]).generate_state(1)[0])


def make_host_eval_venv(cfg, seed: int = 0) -> HostVecEnv:
    """The evaluation venv: ``min(--eval_envs, --eval_episodes)`` host envs (all when 0),
    stepped in ``--env_workers`` processes (``env_workers.workers_for`` of its env count)."""
    n_envs = min(cfg.eval_envs, cfg.eval_episodes) if cfg.eval_envs else cfg.eval_episodes
    return HostVecEnv(cfg.env_name, n_envs, seed=seed, dataset_path=cfg.dataset_path or None,
                      workers=workers_for(getattr(cfg, "env_workers", 0), n_envs))


def make_host_eval(cfg, acfg: Any, seed: int, venv: HostVecEnv | None = None):
    """``eval_fn(agent, step, seed_index) -> dict``: ``--eval_episodes`` episodes on their own
    ``HostVecEnv`` of ``--eval_envs`` envs (rounds when fewer; each host env holds its own
    simulator, ~200 MB for an ogbench manipspace env) with the agent's evaluation actor (keys
    ``fold_in(fold_in(PRNGKey(seed), 3), step)`` folded with the call index).  ``venv``: an
    evaluation venv to share (the seeds of a run evaluate one after another on it)."""
    if venv is None:
        venv = make_host_eval_venv(cfg, seed)
    h = registry.exec_horizon(acfg)
    act = jax.jit(registry.act_fn(acfg, evaluation=True))
    base = jax.random.fold_in(jax.random.PRNGKey(seed), 3)

    def eval_fn(agent, step: int, seed_index: int = 0) -> dict[str, float]:
        key = jax.random.fold_in(base, step)

        def policy(obs, call):
            return np.asarray(act(agent, jnp.asarray(obs), jax.random.fold_in(key, call)))

        return evaluate_host(venv, policy, eval_seed(seed, step), h, cfg.eval_episodes)

    return eval_fn
