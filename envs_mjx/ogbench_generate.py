"""OGBench manipspace datasets from ogbench's envs and oracles: ``tper-generate --source ogbench``.

``tper-generate --source ogbench --env cube-single --type play --episodes 1000 --out data``
writes ``data/cube-single-play-v0.npz`` and ``data/cube-single-play-v0-val.npz`` the way
OGBench's published data-collection procedure does (ogbench 1.2.2, ``generate_manipspace``):

- env ``gymnasium.make('<env>-v0', terminate_at_goal=False, mode='data_collection',
  max_episode_steps=1001)``: every episode has exactly ``max_steps`` rows and ends by time limit
  (``terminals`` = 1 on its last row only);
- ``play``: the non-Markovian plan oracles (``oracles/plan``, ``noise=0.1``,
  ``noise_smoothing=0.5``), no extra action noise, ``p_random_action = 0``;
- ``noisy``: the Markovian oracles (``oracles/markov``, ``min_norm=0.4``) plus Gaussian action
  noise with per-episode level ξ ~ U(0, noise), std ``(ξ, ξ, ξ, 3ξ, 10ξ)``, and a uniformly
  random action with probability ``p_random_action`` (0.1 cube/scene, 0.2 puzzle);
- every time the oracle reports ``done`` the env draws a new target
  (``set_new_target(p_stack)``, p_stack ~ U(0, 0.25) for cube-double, 0 for cube-single, …);
- rows store the observation *before* the action and the pre-step ``qpos``, ``qvel``
  (``button_states`` for scene / puzzle); scene episodes whose cube leaves the visible area
  are regenerated (the published health check);
- ``<name>-val.npz`` holds ``val_episodes`` further episodes (published: episodes // 10).

Schema: ``observations`` float32 ``(M, D)``, ``actions`` float32 ``(M, 5)``, ``terminals``
bool ``(M,)``, ``qpos`` float32 ``(M, nq)``, ``qvel`` float32 ``(M, nv)``, ``button_states``
int64 ``(M, n_buttons)``; M = episodes · max_steps, episodes concatenated.

Deterministic: episode i (train 0..N−1, then validation N..N+V−1) seeds the env, numpy's global
RNG (used by the oracles) and the action space from ``SeedSequence([seed, i, attempt])``, so the
files do not depend on ``--workers``. Workers are ``spawn`` processes, each running whole
episodes. Files are written to temporary names and renamed once both are complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np

# Short env name -> (gymnasium id, family).  The manipspace tasks with published datasets.
ENVS: dict[str, tuple[str, str]] = {
    "cube-single": ("cube-single-v0", "cube"),
    "cube-double": ("cube-double-v0", "cube"),
    "cube-triple": ("cube-triple-v0", "cube"),
    "cube-quadruple": ("cube-quadruple-v0", "cube"),
    "scene": ("scene-v0", "scene"),
    "puzzle-3x3": ("puzzle-3x3-v0", "puzzle"),
    "puzzle-4x4": ("puzzle-4x4-v0", "puzzle"),
    "puzzle-4x5": ("puzzle-4x5-v0", "puzzle"),
    "puzzle-4x6": ("puzzle-4x6-v0", "puzzle"),
}
DATASET_TYPES = ("play", "noisy")
# Per-episode stacking probability of the new targets (published script): a (low, high) range
# drawn once per episode, or a constant; envs not listed use 0.5 (unused by puzzle).
P_STACK: dict[str, float | tuple[float, float]] = {
    "cube-single": 0.0, "cube-double": (0.0, 0.25), "cube-triple": (0.05, 0.35),
    "cube-quadruple": (0.1, 0.5)}
# Published p_random_action of the 'noisy' datasets, per family ('play' uses 0).
NOISY_P_RANDOM_ACTION = {"cube": 0.1, "scene": 0.1, "puzzle": 0.2}
# Per-dimension scale of the 'noisy' Gaussian action noise, times ξ (dx, dy, dz, dyaw, grip).
NOISY_NOISE_SCALE = np.array([1.0, 1.0, 1.0, 3.0, 10.0])
QPOS_CUBE0_XYZ = slice(14, 17)
MAX_ATTEMPTS = 100  # scene health-check retries per episode before giving up


@dataclasses.dataclass(frozen=True)
class OGBenchGenConfig:
    """How to generate one OGBench dataset (frozen; validated by ``validate``)."""

    env: str  # short name, a key of ENVS, e.g. 'cube-single'
    dataset_type: str  # 'play' (plan oracles) or 'noisy' (Markov oracles + action noise)
    episodes: int  # training episodes (published: 1000 for single/double/scene/puzzle-3x3)
    val_episodes: int  # validation episodes (published: episodes // 10)
    seed: int = 0  # root seed; episode i uses SeedSequence([seed, i, attempt])
    max_steps: int = 1001  # rows per episode (gymnasium max_episode_steps; published 1001)
    noise: float = 0.1  # plan-noise level ('play') or max Gaussian noise level ξ ('noisy')
    noise_smoothing: float = 0.5  # temporal smoothing of the plan noise ('play')
    min_norm: float = 0.4  # minimum relative-position action norm of the Markov oracles
    p_random_action: float | None = None  # None: 0 for play, NOISY_P_RANDOM_ACTION for noisy

    @property
    def dataset_name(self) -> str:
        """``<env>-<type>-v0``, the OGBench dataset name (file stem)."""
        return f"{self.env}-{self.dataset_type}-v0"

    @property
    def family(self) -> str:
        return ENVS[self.env][1]

    @property
    def random_action_prob(self) -> float:
        if self.p_random_action is not None:
            return self.p_random_action
        return NOISY_P_RANDOM_ACTION[self.family] if self.dataset_type == "noisy" else 0.0


def validate(cfg: OGBenchGenConfig) -> None:
    """Raise ``ValueError`` naming the bad argument (checked before any work)."""
    if cfg.env not in ENVS:
        raise ValueError(f"--env: unknown OGBench env {cfg.env!r}; choose from "
                         f"{', '.join(ENVS)}")
    if cfg.dataset_type not in DATASET_TYPES:
        raise ValueError(f"--type: unknown dataset type {cfg.dataset_type!r}; choose from "
                         f"{', '.join(DATASET_TYPES)}")
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    if cfg.val_episodes < 1:
        raise ValueError(f"--val-episodes must be >= 1 (ogbench opens <name>-val.npz), got "
                         f"{cfg.val_episodes}")
    if cfg.max_steps < 2:
        raise ValueError(f"--max-steps must be >= 2 (one transition per episode), got "
                         f"{cfg.max_steps}")
    if not 0.0 <= cfg.random_action_prob <= 1.0:
        raise ValueError(f"--p-random-action must be in [0, 1], got {cfg.p_random_action}")
    if cfg.noise < 0 or cfg.noise_smoothing < 0 or cfg.min_norm < 0:
        raise ValueError("--noise, --noise-smoothing and --min-norm must be >= 0")


def make_env_and_oracles(cfg: OGBenchGenConfig) -> tuple[Any, dict[str, Any]]:
    """The data-collection env and its oracles keyed by ``info['privileged/target_task']``."""
    import gymnasium
    import ogbench.manipspace  # noqa: F401  (registers the manipspace envs)
    from ogbench.manipspace.oracles.markov import (
        button_markov,
        cube_markov,
        drawer_markov,
        window_markov,
    )
    from ogbench.manipspace.oracles.plan import button_plan, cube_plan, drawer_plan, window_plan

    env = gymnasium.make(ENVS[cfg.env][0], terminate_at_goal=False, mode="data_collection",
                         max_episode_steps=cfg.max_steps)
    if cfg.dataset_type == "noisy":
        kw = dict(env=env, min_norm=cfg.min_norm)
        cube = cube_markov.CubeMarkovOracle
        button, drawer, window = (button_markov.ButtonMarkovOracle,
                                  drawer_markov.DrawerMarkovOracle,
                                  window_markov.WindowMarkovOracle)
    else:
        kw = dict(env=env, noise=cfg.noise, noise_smoothing=cfg.noise_smoothing)
        cube = cube_plan.CubePlanOracle
        button, drawer, window = (button_plan.ButtonPlanOracle, drawer_plan.DrawerPlanOracle,
                                  window_plan.WindowPlanOracle)
    if cfg.family == "cube":
        return env, {"cube": cube(**kw)}
    if cfg.family == "puzzle":
        return env, {"button": button(gripper_always_closed=True, **kw)}
    cube_kw = dict(max_step=100) if cfg.dataset_type == "noisy" else {}
    return env, {"cube": cube(**cube_kw, **kw), "button": button(**kw), "drawer": drawer(**kw),
                 "window": window(**kw)}


def episode_seeds(seed: int, index: int,
                  attempt: int = 0) -> tuple[int, np.ndarray, np.random.Generator]:
    """``(env reset seed, numpy global-RNG seed (4,) uint32, random-action generator)``.

    The random actions get their own generator because the manipspace env builds a new,
    unseeded ``action_space`` Box on every access (``env.action_space.sample()`` would not be
    reproducible); uniform draws in the Box bounds are what ``Box.sample`` does."""
    ss = np.random.SeedSequence([seed, index, attempt])
    state = ss.generate_state(5)
    return int(state[0]), state[1:5], np.random.default_rng(ss.spawn(1)[0])


def _healthy_scene(qpos: np.ndarray) -> bool:
    """Published scene check: the cube stays visible (not too far right, and too far left
    only inside the drawer).  ``qpos``: ``(T, nq)``."""
    xyz = qpos[:, QPOS_CUBE0_XYZ]
    too_right = (xyz[:, 1] >= 0.29).any()
    left_outside = ((xyz[:, 1] <= -0.3) & ((xyz[:, 2] < 0.06) | (xyz[:, 2] > 0.08))).any()
    return not (too_right or left_outside)


def _rollout(env: Any, agents: dict[str, Any], cfg: OGBenchGenConfig, index: int,
             attempt: int) -> dict[str, Any]:
    """One episode of ``cfg.max_steps`` rows (see the module docstring for the procedure)."""
    env_seed, np_seed, action_rng = episode_seeds(cfg.seed, index, attempt)
    np.random.seed(np_seed)  # the ogbench oracles draw from numpy's global RNG
    space = env.action_space
    ob, info = env.reset(seed=env_seed)
    p_stack = P_STACK.get(cfg.env, 0.5)
    if isinstance(p_stack, tuple):
        p_stack = np.random.uniform(*p_stack)
    noisy = cfg.dataset_type == "noisy"
    xi = np.random.uniform(0, cfg.noise) if noisy else 0.0
    p_rand = cfg.random_action_prob
    agent = agents[info["privileged/target_task"]]
    agent.reset(ob, info)
    has_buttons = hasattr(env.unwrapped, "_cur_button_states")
    rows: dict[str, list] = {k: [] for k in ("observations", "actions", "qpos", "qvel")}
    if has_buttons:
        rows["button_states"] = []
    n_targets, n_successes, was_success, done = 1, 0, False, False
    while not done:
        if np.random.rand() < p_rand:
            action = action_rng.uniform(space.low, space.high)
        else:
            action = np.asarray(agent.select_action(ob, info))
            if noisy:
                action = action + np.random.normal(0, xi * NOISY_NOISE_SCALE, action.shape)
        action = np.clip(action, -1, 1)
        next_ob, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        n_successes += bool(info["success"]) and not was_success
        was_success = bool(info["success"])
        if agent.done:  # the oracle finished its task: draw a new target
            agent_ob, agent_info = env.unwrapped.set_new_target(p_stack=p_stack)
            agent = agents[agent_info["privileged/target_task"]]
            agent.reset(agent_ob, agent_info)
            n_targets += 1
        rows["observations"].append(ob)
        rows["actions"].append(action)
        rows["qpos"].append(info["prev_qpos"])
        rows["qvel"].append(info["prev_qvel"])
        if has_buttons:
            rows["button_states"].append(info["prev_button_states"])
        ob = next_ob
    n = len(rows["actions"])
    ep = {"observations": np.asarray(rows.pop("observations"), np.float32),
          "actions": np.asarray(rows.pop("actions"), np.float32),
          "terminals": np.arange(n) == n - 1}  # the published key order and dtypes
    ep.update({k: np.asarray(v, np.int64 if k == "button_states" else np.float32)
               for k, v in rows.items()})
    ep["stats"] = {"targets": n_targets, "successes": n_successes, "attempt": attempt}
    return ep


def run_episode(env: Any, agents: dict[str, Any], cfg: OGBenchGenConfig,
                index: int) -> dict[str, Any]:
    """Episode ``index`` with the scene health check (retries with the next ``attempt``).

    Returns ``{observations (T, D), actions (T, 5), terminals (T,), qpos (T, nq),
    qvel (T, nv), [button_states (T, n_buttons)], stats}`` with T = ``cfg.max_steps``.
    """
    for attempt in range(MAX_ATTEMPTS):
        ep = _rollout(env, agents, cfg, index, attempt)
        if cfg.family != "scene" or _healthy_scene(ep["qpos"]):
            return ep
    raise RuntimeError(f"episode {index}: no healthy scene episode in {MAX_ATTEMPTS} tries")


_WORKER: dict[str, Any] = {}


def _init_worker(cfg: OGBenchGenConfig) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    _WORKER["cfg"] = cfg
    _WORKER["env"], _WORKER["agents"] = make_env_and_oracles(cfg)


def _worker_episode(index: int) -> tuple[int, dict[str, Any]]:
    return index, run_episode(_WORKER["env"], _WORKER["agents"], _WORKER["cfg"], index)


def _progress(done: int, total: int, t0: float, stream=sys.stderr) -> None:
    rate = done / max(time.time() - t0, 1e-9)
    eta = (total - done) / max(rate, 1e-9)
    stream.write(f"\r{done}/{total} episodes  {rate:6.2f} ep/s  eta {eta:6.0f}s ")
    if done >= total:
        stream.write("\n")
    stream.flush()


def generate_episodes(cfg: OGBenchGenConfig, workers: int = 1,
                      progress: bool = True) -> list[dict[str, Any]]:
    """All ``episodes + val_episodes`` episodes in index order (``run_episode`` each).

    ``workers == 1`` runs in this process (numpy's global RNG state is restored afterwards);
    otherwise a ``spawn`` pool of ``workers`` processes takes episodes one at a time.
    Cost: ≈ (N + V) · max_steps / (≈ 500 steps/s · workers) on CPU.
    """
    validate(cfg)
    total = cfg.episodes + cfg.val_episodes
    out: list[dict[str, Any] | None] = [None] * total
    t0 = time.time()
    if workers <= 1:
        state = np.random.get_state()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env, agents = make_env_and_oracles(cfg)
                for i in range(total):
                    out[i] = run_episode(env, agents, cfg, i)
                    if progress:
                        _progress(i + 1, total, t0)
            env.close()
        finally:
            np.random.set_state(state)
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(min(workers, total), initializer=_init_worker, initargs=(cfg,)) as pool:
            for n, (i, ep) in enumerate(pool.imap_unordered(_worker_episode, range(total)), 1):
                out[i] = ep
                if progress:
                    _progress(n, total, t0)
    return out  # type: ignore[return-value]


def stack_episodes(episodes: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Concatenate episodes into the flat OGBench arrays (``stats`` dropped)."""
    keys = [k for k in episodes[0] if k != "stats"]
    return {k: np.concatenate([ep[k] for ep in episodes]) for k in keys}


def write_dataset(cfg: OGBenchGenConfig, out_dir: str,
                  episodes: list[dict[str, Any]]) -> dict[str, str]:
    """Write ``<out_dir>/<name>.npz`` (first ``cfg.episodes``) and ``<name>-val.npz`` (the rest).

    Both go to temporary files in ``out_dir`` first and are renamed only when both are
    written; on any error the temporary files are removed and no new file appears.
    """
    os.makedirs(out_dir, exist_ok=True)
    name = cfg.dataset_name
    paths = {"npz": os.path.join(out_dir, f"{name}.npz"),
             "val_npz": os.path.join(out_dir, f"{name}-val.npz")}
    parts = {"npz": episodes[:cfg.episodes], "val_npz": episodes[cfg.episodes:]}
    tmps: dict[str, str] = {}
    try:
        for key, eps in parts.items():
            fd, tmps[key] = tempfile.mkstemp(prefix=f".{name}.", suffix=".npz.tmp", dir=out_dir)
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **stack_episodes(eps))
        for key, tmp in tmps.items():
            os.replace(tmp, paths[key])
    finally:
        for tmp in tmps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
    return paths


def summarize(episodes: list[dict[str, Any]]) -> dict[str, float]:
    """Oracle statistics: targets drawn and reached (rising edges of the env's ``success``)."""
    targets = np.array([ep["stats"]["targets"] for ep in episodes])
    succ = np.array([ep["stats"]["successes"] for ep in episodes])
    return {"episodes": len(episodes),
            "rows": int(sum(len(ep["actions"]) for ep in episodes)),
            "targets_per_episode": float(targets.mean()),
            "successes_per_episode": float(succ.mean()),
            "episodes_with_success": float((succ > 0).mean()),
            "retried_episodes": int(sum(ep["stats"]["attempt"] > 0 for ep in episodes))}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tper-generate --source ogbench",
        description="OGBench manipspace datasets from ogbench's envs and scripted oracles.")
    p.add_argument("--env", required=True, choices=list(ENVS), metavar="ENV",
                   help=f"one of: {', '.join(ENVS)}")
    p.add_argument("--type", dest="dataset_type", default="play", choices=DATASET_TYPES,
                   help="play: plan oracles; noisy: Markov oracles + action noise")
    p.add_argument("--episodes", "--num_episodes", type=int, default=1000,
                   help="training episodes (published: 1000)")
    p.add_argument("--val-episodes", "--val_episodes", type=int, default=None,
                   help="validation episodes (default: max(1, episodes // 10))")
    p.add_argument("--out", default="data", help="output directory")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", "--max_steps", type=int, default=1001,
                   help="rows per episode (published: 1001; smaller for tests)")
    p.add_argument("--noise", type=float, default=0.1)
    p.add_argument("--noise-smoothing", type=float, default=0.5)
    p.add_argument("--min-norm", type=float, default=0.4)
    p.add_argument("--p-random-action", type=float, default=None,
                   help="default: 0 (play), 0.1 (noisy cube/scene), 0.2 (noisy puzzle)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def main(argv: list[str] | None = None) -> dict[str, str]:
    """CLI entry (``tper-generate --source ogbench ...``); prints paths and a JSON summary."""
    p = build_parser()
    args = p.parse_args(argv)
    val = args.val_episodes if args.val_episodes is not None else max(1, args.episodes // 10)
    cfg = OGBenchGenConfig(env=args.env, dataset_type=args.dataset_type, episodes=args.episodes,
                           val_episodes=val, seed=args.seed, max_steps=args.max_steps,
                           noise=args.noise, noise_smoothing=args.noise_smoothing,
                           min_norm=args.min_norm, p_random_action=args.p_random_action)
    try:
        validate(cfg)
    except ValueError as e:
        p.error(str(e))
    if args.workers < 1:
        p.error(f"--workers must be >= 1, got {args.workers}")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        p.error(f"--out: cannot create {args.out!r} ({e})")
    if not os.access(args.out, os.W_OK):
        p.error(f"--out: directory {args.out!r} is not writable")
    t0 = time.time()
    episodes = generate_episodes(cfg, args.workers, progress=not args.quiet)
    seconds = time.time() - t0
    paths = write_dataset(cfg, args.out, episodes)
    summary = summarize(episodes)
    summary.update(seconds=round(seconds, 1), episodes_per_s=round(len(episodes) / seconds, 3),
                   steps_per_s=round(summary["rows"] / seconds, 1), workers=args.workers)
    print(json.dumps({"dataset": cfg.dataset_name, "paths": paths, "config":
                      dataclasses.asdict(cfg), "summary": summary}, indent=1))
    return paths
