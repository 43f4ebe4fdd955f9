"""The host envs of an S-seed bridge run: one ``HostVecEnv`` of N envs per seed.

Seed s's envs are built and reset exactly as a single run with ``--seed=seed_s`` would build
them (``HostVecEnv(env, N, seed=seed_s)``: reset k of env i uses ``SeedSequence([seed_s, i,
k])``), so seed s of an S-seed run sees the episodes of that single run.  The jitted act and
observe-and-learn are vmapped over the seed axis (``loop/host.py``); only the env stepping
is per seed: in-process one venv after another; with ``--env_workers`` (the run's worker
count split evenly over the seeds' venvs) every venv's workers step at the same time.

``get_state()`` / ``set_state()`` carry every env's complete state (``env_state.py``) plus
the venvs' reset counters and current observations through a checkpoint, for an exact
``--resume``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tper_jit.tasks import env_state
from tper_jit.tasks.host_env import HostVecEnv, Transition


class HostSeedEnvs:
    """S ``HostVecEnv`` s of N envs each (S = 1 for a single-seed run)."""

    is_host = True

    def __init__(self, venvs: Sequence[HostVecEnv]):
        if not venvs:
            raise ValueError("HostSeedEnvs needs at least one venv")
        self.venvs = list(venvs)
        first = self.venvs[0]
        self.num_envs = first.num_envs  # per seed
        self.episode = first.episode
        self.env_id = first.env_id

    @classmethod
    def make(cls, env_name: str, num_envs: int, seeds: Sequence[int], **kwargs: Any
             ) -> HostSeedEnvs:
        """One venv per seed; ``kwargs`` go to every ``HostVecEnv``."""
        venvs: list[HostVecEnv] = []
        try:
            for s in seeds:
                venvs.append(HostVecEnv(env_name, num_envs, seed=int(s), **kwargs))
        except BaseException:
            for v in venvs:
                v.close()
            raise
        return cls(venvs)

    @property
    def num_seeds(self) -> int:
        return len(self.venvs)

    def obs(self) -> np.ndarray:
        """Current observations, ``(N, D)`` for one seed, ``(S, N, D)`` for several."""
        got = np.stack([v.obs for v in self.venvs])
        return got[0] if self.num_seeds == 1 else got

    def reset(self) -> np.ndarray:
        """Reset every seed's envs from that seed (the start of the online phase)."""
        for v in self.venvs:
            v.reset(v.seed)
        return self.obs()

    def step_chunk(self, actions: np.ndarray) -> Transition:
        """``actions`` ``(N, H, A)`` (one seed) or ``(S, N, H, A)``; the Transition's fields get
        the same leading axes."""
        actions = np.asarray(actions)
        if self.num_seeds == 1:
            return self.venvs[0].step_chunk(actions)
        if actions.shape[0] != self.num_seeds:
            raise ValueError(f"actions must be (S={self.num_seeds}, N, H, A), got "
                             f"{actions.shape}")
        # start every venv (workers step in parallel across seeds), then collect in order
        pending = [v.start_step(a) for v, a in zip(self.venvs, actions, strict=True)]
        trs = [v.finish_step(p) for v, p in zip(self.venvs, pending, strict=True)]
        return Transition(**{f: np.stack([getattr(t, f) for t in trs])
                             for f in Transition.__dataclass_fields__})

    # -- exact resume ----------------------------------------------------------------------
    def exact(self) -> tuple[bool, str]:
        """Whether ``get_state`` / ``set_state`` continue the envs exactly (and why not)."""
        return self.venvs[0].map_envs(env_state.exact)[0]

    def get_state(self) -> dict[str, Any]:
        """Every env's state, the reset counters and observations of every venv."""
        return {"env_id": self.env_id, "num_envs": self.num_envs, "venvs": [
            {"seed": v.seed, "first_index": v.first_index, "resets": v.resets.copy(),
             "obs": v.obs.copy(), "infos": v.infos,
             "envs": v.map_envs(env_state.capture)}  # in its worker, if any
            for v in self.venvs]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Inverse of ``get_state`` into venvs built with the same env, N and seeds."""
        got = (state.get("env_id"), state.get("num_envs"), len(state.get("venvs", ())))
        want = (self.env_id, self.num_envs, self.num_seeds)
        if got != want:
            raise ValueError(f"saved host envs are (env, N, seeds) = {got}, this run's are "
                             f"{want}")
        for v, s in zip(self.venvs, state["venvs"], strict=True):
            if s["seed"] != v.seed:
                raise ValueError(f"saved host envs were seeded {s['seed']}, this venv {v.seed}")
            if len(s["envs"]) != v.num_envs:
                raise ValueError(f"{len(s['envs'])} saved envs, this venv has {v.num_envs}")
            v.map_envs(env_state.restore, [(snap,) for snap in s["envs"]])
            v.first_index = int(s["first_index"])
            v.resets[:] = s["resets"]
            v.obs[:] = s["obs"]
            v.infos = list(s["infos"])

    def close(self) -> None:
        for v in self.venvs:
            v.close()
