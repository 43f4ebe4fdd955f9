"""MJX vs C MuJoCo: step the same MJCF from the same state with the same actions.

``c_rollout`` is the reference (float64, one thread, ``mj_step`` x ``N_SUBSTEPS`` with the
same control law ``core.action_to_ctrl``); ``make_mjx_rollout`` is the env's own step under
``lax.scan``. Used by the parity tests (tolerances are stated there and in docs/envs.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from envs_mjx import core, scene


def c_rollout(env: core.MjxEnv, qpos0: np.ndarray, qvel0: np.ndarray,
              actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C MuJoCo states after each of the (T, 5) ``actions``: qpos (T, nq), qvel (T, nv)."""
    model = env.mj_model
    d = mujoco.MjData(model)
    d.qpos[:], d.qvel[:] = qpos0, qvel0
    qpos, qvel = [], []
    for a in np.asarray(actions, np.float64):
        d.ctrl[:] = core.action_to_ctrl(d.qpos.copy(), a)
        for _ in range(scene.N_SUBSTEPS):
            mujoco.mj_step(model, d)
        qpos.append(d.qpos.copy())
        qvel.append(d.qvel.copy())
    return np.array(qpos), np.array(qvel)


def make_mjx_rollout(env: core.MjxEnv):
    """Jitted ``(state0, actions (T, 5)) -> (qpos (T, nq), obs (T, O), reward (T,),
    success (T,))`` stepping ``env.step`` from ``state0`` (no episode wrapper)."""

    def run(state0: core.State, actions: jax.Array):
        def body(st, a):
            st = env.step(st, a)
            return st, (st.data.qpos, st.obs, st.reward, st.success)

        return jax.lax.scan(body, state0, actions)[1]

    return jax.jit(run)


def with_state(env: core.MjxEnv, state: core.State, qpos: jax.Array,
               qvel: jax.Array) -> core.State:
    """``state`` with its physics replaced by (qpos, qvel) (ctrl holding the hand)."""
    data = state.data.replace(qpos=jnp.asarray(qpos, state.data.qpos.dtype),
                              qvel=jnp.asarray(qvel, state.data.qvel.dtype),
                              ctrl=core.arm_ctrl_from_qpos(jnp.asarray(qpos,
                                                                       state.data.ctrl.dtype)))
    return state.replace(data=data)
