"""Parity with ogbench's own env: same start state, same actions, per-step errors.

    python -m envs_mjx.ogbench.parity --env cube-single-singletask-task1 --steps 20 \
        [--backend jax|warp] [--actions oracle|random] [--reference ogbench|variant]

ogbench's env is reset (seeded); its physics state (qpos, qvel, ctrl, mocap, warm start) is
loaded into the port; both then take the same actions (ogbench's scripted Markov oracle
acting on ogbench's state, ``--actions oracle``, see ``oracles.py``, or fixed uniform ones)
and the max abs errors of observation (all entries but the gripper-contact feature, which is a
normalised contact force and is reported on its own), reward and success are printed per
step. Exit status 1 when any error exceeds its tolerance (defaults below; docs/envs.md,
"OGBench manipspace port").
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from envs_mjx.core import State
from envs_mjx.ogbench import oracles

TOL_OBS = 0.1  # max over entries and steps (joint velocities, rad/s, dominate)
TOL_OBS_PUZZLE = 0.2  # button joint positions are scaled by 120: 0.2 is 1.7 mm
TOL_CONTACT_MAX = 0.6
TOL_CONTACT_MEAN = 0.05
TOL_REWARD = 0.0
TOL_SUCCESS = 0.0
CONTACT_INDEX = 18  # the gripper-contact feature clip(‖cfrc_ext(right_pad)‖ / 50, 0, 1)


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


def use_variant_collisions(og_env, env) -> None:
    """Give ogbench's own C MuJoCo model the port's geoms (for the ``jax`` backend:
    ``setup.jax_variant``'s collision bits and cylinder boxes), in place: separates MJX
    numerics from the effect of the changed contacts."""
    m = og_env.unwrapped._model
    for f in ("geom_contype", "geom_conaffinity", "geom_type", "geom_size"):
        getattr(m, f)[:] = getattr(env.mj_model, f)


def run(env_name: str, steps: int, backend: str = "jax", actions: str = "oracle",
        seed: int = 0, env=None, og_env=None, verbose: bool = True,
        reference: str = "ogbench", per_index: bool = False) -> dict[str, np.ndarray]:
    """Step ogbench's env and the port side by side; returns per-step (T,) arrays
    ``obs_err``, ``reward_err``, ``success_err`` (index 0 = the reset observation, rewards
    and successes from step 1 on) plus ``og_success`` / ``og_reward`` and, with
    ``per_index``, ``obs_err_idx`` (T, O). ``reference='variant'``: ogbench's env with the
    port's collision set (``use_variant_collisions``)."""
    from envs_mjx import ogbench as port

    og_env = og_env if og_env is not None else port.build_ogbench_env(env_name)
    env = env if env is not None else port.make(env_name, backend, og_env)
    if reference == "variant":
        use_variant_collisions(og_env, env)
    ob, info = og_env.reset(seed=seed)
    state = load_ogbench_state(env, og_env)
    step = jax.jit(env.step)
    rng = np.random.default_rng(seed)
    driver = (oracles.Driver(env.scene.family, og_env, seed) if actions == "oracle"
              else None)
    out = {k: [] for k in ("obs_err", "contact_err", "reward_err", "success_err", "og_reward",
                           "og_success", "obs_err_idx")}

    def record_obs(obs):
        err = np.abs(np.asarray(obs) - ob)
        out["obs_err_idx"].append(err)
        out["contact_err"].append(float(err[CONTACT_INDEX]))
        out["obs_err"].append(float(np.delete(err, CONTACT_INDEX).max()))

    record_obs(state.obs)
    for k in ("reward_err", "success_err", "og_reward", "og_success"):
        out[k].append(0.0)
    t0 = time.time()
    for t in range(1, steps + 1):
        a = (driver.act(oracles.og_view(env, og_env)) if driver
             else rng.uniform(-1, 1, 5).astype(np.float32))
        ob, r, term, trunc, info = og_env.step(a)
        state = step(state, jnp.asarray(a))
        record_obs(state.obs)
        out["reward_err"].append(abs(float(state.reward) - float(r)))
        out["success_err"].append(abs(float(state.success) - float(info["success"])))
        out["og_reward"].append(float(r))
        out["og_success"].append(float(info["success"]))
        if verbose:
            print(f"step {t:4d}  obs {out['obs_err'][-1]:.3e}  contact "
                  f"{out['contact_err'][-1]:.3f}  reward {out['reward_err'][-1]:.0f}"
                  f"  success {out['success_err'][-1]:.0f}  (ogbench r={r:.0f} "
                  f"success={int(info['success'])}; {time.time() - t0:.0f} s)", flush=True)
        if term or trunc:
            break
    if not per_index:
        out.pop("obs_err_idx")
    return {k: np.asarray(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="cube-single-singletask-task1")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--backend", default="jax", choices=("jax", "warp"))
    p.add_argument("--actions", default="oracle", choices=("oracle", "random"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", default="ogbench", choices=("ogbench", "variant"),
                   help="variant: ogbench's C env with the port's collision set")
    p.add_argument("--tol_obs", type=float, default=None,
                   help=f"default {TOL_OBS} (cube), {TOL_OBS_PUZZLE} (puzzle)")
    p.add_argument("--tol_contact_max", type=float, default=TOL_CONTACT_MAX)
    p.add_argument("--tol_contact_mean", type=float, default=TOL_CONTACT_MEAN)
    p.add_argument("--tol_reward", type=float, default=TOL_REWARD)
    p.add_argument("--tol_success", type=float, default=TOL_SUCCESS)
    a = p.parse_args(argv)
    if a.tol_obs is None:
        a.tol_obs = TOL_OBS_PUZZLE if a.env.startswith("puzzle") else TOL_OBS
    res = run(a.env, a.steps, a.backend, a.actions, a.seed, reference=a.reference)
    worst = {k: float(res[k].max()) for k in ("obs_err", "contact_err", "reward_err",
                                              "success_err")}
    mean_contact = float(res["contact_err"].mean())
    print(f"{a.env} backend={a.backend} actions={a.actions} steps={len(res['obs_err']) - 1}: "
          f"max abs obs {worst['obs_err']:.3e} (contact feature: max {worst['contact_err']:.3f}"
          f" mean {mean_contact:.3f}) reward {worst['reward_err']:.3g} "
          f"success {worst['success_err']:.3g}; ogbench success reached: "
          f"{bool(res['og_success'].max())}")
    ok = (worst["obs_err"] <= a.tol_obs and worst["reward_err"] <= a.tol_reward
          and worst["success_err"] <= a.tol_success
          and worst["contact_err"] <= a.tol_contact_max and mean_contact <= a.tol_contact_mean)
    print("PASS" if ok else f"FAIL (tolerances: obs {a.tol_obs:g} contact max "
          f"{a.tol_contact_max:g} mean {a.tol_contact_mean:g} reward {a.tol_reward:g} "
          f"success {a.tol_success:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
