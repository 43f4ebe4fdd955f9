"""Parity with ogbench's own env: same start state, same actions, per-step errors.

    python -m envs_mjx.ogbench.parity --env cube-single-singletask-task1 --steps 20 \
        [--backend jax|warp] [--actions oracle|random] [--seed 0] [--tol_obs 0.05]

ogbench's env is reset (seeded); its physics state (qpos, qvel, ctrl, mocap, warm start) is
loaded into the port; both then take the same actions — ogbench's scripted Markov oracle
acting on ogbench's observations (``--actions oracle``) or fixed uniform ones — and the
max abs errors of observation, reward and success are printed per step. Exit status 1 when
any error exceeds its tolerance (defaults: docs/envs.md, "OGBench manipspace port").
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from envs_mjx.core import State

TOL_OBS = 0.05
TOL_REWARD = 0.0
TOL_SUCCESS = 0.0


def load_ogbench_state(env, og_env) -> State:
    """The port's ``State`` at ogbench's current physics state (after ``og_env.reset``).

    Built under ``jax.jit`` so its arrays carry the same placement as ``step``'s outputs
    (an eagerly built state made ``jit(step)`` compile a second program)."""
    d = og_env.unwrapped._data
    f = lambda x: jnp.asarray(np.array(x), jnp.float32)  # noqa: E731
    info = env.task_info_from_ogbench(og_env)

    @jax.jit
    def build(qpos, qvel, mocap, ctrl, warm, info):
        data = env.make_data(qpos, qvel, mocap, ctrl).replace(qacc_warmstart=warm)
        return env.state_from(data, info)

    return build(f(d.qpos), f(d.qvel), f(d.mocap_pos), f(d.ctrl), f(d.qacc_warmstart), info)


class OracleDriver:
    """ogbench's ``CubeMarkovOracle`` on a singletask env: the oracle wants data-collection
    info keys (target block and its goal), filled in here from the task's goals (the first
    cube not yet at its goal is the target)."""

    def __init__(self, og_env, seed: int):
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        np.random.seed(seed)  # the oracle draws its final pose from np.random
        self.env = og_env
        self.oracle = CubeMarkovOracle(env=og_env, min_norm=0.4)
        self.target = None

    def _augment(self, info: dict) -> dict:
        u = self.env.unwrapped
        goals = u.cur_task_info["goal_xyzs"]
        succ = u._compute_successes()
        tgt = next((i for i, s in enumerate(succ) if not s), len(succ) - 1)
        if tgt != self.target:
            self.target = tgt
            self.oracle.reset(None, info)
        return {**info, "privileged/target_block": tgt,
                "privileged/target_block_pos": np.asarray(goals[tgt]),
                "privileged/target_block_yaw": np.zeros(1)}

    def __call__(self, ob: np.ndarray, info: dict) -> np.ndarray:
        return np.asarray(self.oracle.select_action(ob, self._augment(info)), np.float32)


def run(env_name: str, steps: int, backend: str = "jax", actions: str = "oracle",
        seed: int = 0, env=None, og_env=None, verbose: bool = True) -> dict[str, np.ndarray]:
    """Step ogbench's env and the port side by side; returns per-step (T,) arrays
    ``obs_err``, ``reward_err``, ``success_err`` (index 0 = the reset observation, rewards
    and successes from step 1 on) plus ``og_success`` / ``og_reward``."""
    from envs_mjx import ogbench as port

    og_env = og_env if og_env is not None else port.build_ogbench_env(env_name)
    env = env if env is not None else port.make(env_name, backend, og_env)
    ob, info = og_env.reset(seed=seed)
    state = load_ogbench_state(env, og_env)
    step = jax.jit(env.step)
    rng = np.random.default_rng(seed)
    driver = OracleDriver(og_env, seed) if actions == "oracle" else None
    out = {k: [] for k in ("obs_err", "reward_err", "success_err", "og_reward", "og_success")}
    out["obs_err"].append(float(np.max(np.abs(np.asarray(state.obs) - ob))))
    for k in ("reward_err", "success_err", "og_reward", "og_success"):
        out[k].append(0.0)
    t0 = time.time()
    for t in range(1, steps + 1):
        a = driver(ob, info) if driver else rng.uniform(-1, 1, 5).astype(np.float32)
        ob, r, term, trunc, info = og_env.step(a)
        state = step(state, jnp.asarray(a))
        out["obs_err"].append(float(np.max(np.abs(np.asarray(state.obs) - ob))))
        out["reward_err"].append(abs(float(state.reward) - float(r)))
        out["success_err"].append(abs(float(state.success) - float(info["success"])))
        out["og_reward"].append(float(r))
        out["og_success"].append(float(info["success"]))
        if verbose:
            print(f"step {t:4d}  obs {out['obs_err'][-1]:.3e}  reward {out['reward_err'][-1]:.0f}"
                  f"  success {out['success_err'][-1]:.0f}  (ogbench r={r:.0f} "
                  f"success={int(info['success'])}; {time.time() - t0:.0f} s)", flush=True)
        if term or trunc:
            break
    return {k: np.asarray(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="cube-single-singletask-task1")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--backend", default="jax", choices=("jax", "warp"))
    p.add_argument("--actions", default="oracle", choices=("oracle", "random"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol_obs", type=float, default=TOL_OBS)
    p.add_argument("--tol_reward", type=float, default=TOL_REWARD)
    p.add_argument("--tol_success", type=float, default=TOL_SUCCESS)
    a = p.parse_args(argv)
    res = run(a.env, a.steps, a.backend, a.actions, a.seed)
    worst = {k: float(res[k].max()) for k in ("obs_err", "reward_err", "success_err")}
    print(f"{a.env} backend={a.backend} actions={a.actions} steps={len(res['obs_err']) - 1}: "
          f"max abs obs {worst['obs_err']:.3e} reward {worst['reward_err']:.3g} "
          f"success {worst['success_err']:.3g}; ogbench success reached: "
          f"{bool(res['og_success'].max())}")
    ok = (worst["obs_err"] <= a.tol_obs and worst["reward_err"] <= a.tol_reward
          and worst["success_err"] <= a.tol_success)
    print("PASS" if ok else "FAIL (tolerances: obs %g reward %g success %g)"
          % (a.tol_obs, a.tol_reward, a.tol_success))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
