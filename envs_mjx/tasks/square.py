"""``square`` (robomimic NutAssemblySquare-like): put a square nut over a square peg.

The nut is a ring of four boxes (inner half width ``NUT_INNER`` = 2.2 cm, 2.4 cm tall)
with a handle along its +x axis; the peg is a fixed 3 x 3 x 10 cm post at ``PEG_XY``, so the
nut must arrive within ~7 mm of the peg axis (any yaw fits). The oracle grasps the handle,
carries the nut above the peg top and lowers it around the peg (long-horizon, precision).

Reset: nut centre at (-0.10, 0) +- 2 cm, yaw uniform in [-30, 30] degrees. Observation
(19): gripper (9), nut position (3), quaternion (4), nut minus ee (3).
Success: nut centre within ``SUCCESS_XY`` of the peg axis (each axis) and below
``SUCCESS_Z`` (i.e. around the peg). Reward sparse {0, 1}; terminates on success; 400 steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx import core, scene
from envs_mjx.oracles import pick_place
from envs_mjx.tasks.cube import HAND_HOME

NUT_INNER, NUT_WALL, NUT_HALF_H = 0.022, 0.008, 0.012
HANDLE_HALF = (0.016, 0.016, NUT_HALF_H)
HANDLE_X = NUT_INNER + 2 * NUT_WALL + HANDLE_HALF[0]
PEG_XY, PEG_HALF = (0.10, 0.05), (0.015, 0.015, 0.05)
SUCCESS_XY, SUCCESS_Z = 0.015, 0.04
INIT_XY, INIT_RANGE = (-0.10, 0.0), 0.02


def nut() -> scene.Compound:
    """The square nut: four ring walls and a handle (body frame at the ring centre)."""
    a, t, h = NUT_INNER, NUT_WALL, NUT_HALF_H
    parts = (
        ((t, a + 2 * t, h), (a + t, 0.0, 0.0)),
        ((t, a + 2 * t, h), (-(a + t), 0.0, 0.0)),
        ((a, t, h), (0.0, a + t, 0.0)),
        ((a, t, h), (0.0, -(a + t), 0.0)),
        (HANDLE_HALF, (HANDLE_X, 0.0, 0.0)),
    )
    return scene.Compound("nut", parts, mass=0.03, pos=(*INIT_XY, h))


class SquareEnv(core.MjxEnv):
    """Nut-on-peg assembly; see the module docstring."""

    oracle = pick_place
    oracle_carry_extra = 0.06
    oracle_grasp_offset = (HANDLE_X, 0.0, 0.002)
    oracle_grasp_symmetry = float(np.pi)
    oracle_place_tol = 0.004
    oracle_object_relative = True

    def __init__(self):
        peg = scene.Fixture("peg", PEG_HALF, (*PEG_XY, PEG_HALF[2]))
        super().__init__(scene.SceneSpec(objects=(nut(),), fixtures=(peg,)))
        self.name = "square"
        self.episode_length = 400
        self.n_cubes = 1

    def reset(self, key: jax.Array) -> core.State:
        k_xy, k_yaw, k_hand = jax.random.split(key, 3)
        xy = jnp.asarray(INIT_XY) + jax.random.uniform(k_xy, (2,), minval=-INIT_RANGE,
                                                       maxval=INIT_RANGE)
        yaw = jax.random.uniform(k_yaw, (), minval=-np.pi / 6, maxval=np.pi / 6)
        nut_q = jnp.concatenate([xy, jnp.array([NUT_HALF_H]), core.quat_from_yaw(yaw)])
        hand = jnp.asarray(HAND_HOME) + jax.random.uniform(k_hand, (3,), minval=-0.03,
                                                           maxval=0.03)
        qpos = jnp.concatenate([hand, jnp.zeros(3), nut_q])
        # oracle target for the nut centre: around the peg, just above the table
        goal = jnp.array([[PEG_XY[0], PEG_XY[1], NUT_HALF_H + 0.008]])
        return self._make_state(self.make_data(qpos), {"goal": goal})

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:
        p = self.object_pos(data, 0)
        around = jnp.all(jnp.abs(p[:2] - jnp.asarray(PEG_XY)) < SUCCESS_XY)
        return around & (p[2] < SUCCESS_Z)

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        return success.astype(jnp.float32)

    def _get_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        p = self.object_pos(data, 0)
        return jnp.concatenate([self.arm_obs(data), p, self.object_quat(data, 0),
                                p - data.qpos[:3]]).astype(jnp.float32)

    def obs_layout(self) -> list[tuple[str, int]]:
        return [*core.ARM_OBS_LAYOUT, ("nut_pos", 3), ("nut_quat", 4), ("nut_to_ee", 3)]
