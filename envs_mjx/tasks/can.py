"""``can`` (robomimic-like): pick a tall "can" and place it into a bin; sparse reward.

The can is a tall box (3.6 x 3.6 x 7 cm; cylinders are not used in MJX here) starting at
(-0.10, 0) +- 3 cm with a random yaw; the bin is an open box of four walls (inner
11 x 11 cm, 5 cm high) centred at ``BIN_XY``. Observation (19) as ``cube-single`` with the
can in place of the cube: gripper (9), can position (3), quaternion (4), can minus ee (3).

Success: can centre inside the bin's inner square (``BIN_INNER`` half width) and below
``SUCCESS_Z`` (resting in the bin). Reward sparse {0, 1}; terminates on success; 300 steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx import core, scene
from envs_mjx.oracles import pick_place
from envs_mjx.tasks.cube import HAND_HOME

CAN_HALF = (0.018, 0.018, 0.035)
BIN_XY = (0.12, 0.0)
BIN_INNER = 0.055
WALL_HALF_T, WALL_HALF_H = 0.005, 0.025
SUCCESS_Z = CAN_HALF[2] + 0.02
INIT_XY, INIT_RANGE = (-0.10, 0.0), 0.03


def bin_walls() -> tuple[scene.Fixture, ...]:
    """Four static wall boxes around ``BIN_XY``."""
    bx, by = BIN_XY
    off = BIN_INNER + WALL_HALF_T
    long = BIN_INNER + 2 * WALL_HALF_T
    return (
        scene.Fixture("wall_xp", (WALL_HALF_T, long, WALL_HALF_H), (bx + off, by, WALL_HALF_H)),
        scene.Fixture("wall_xn", (WALL_HALF_T, long, WALL_HALF_H), (bx - off, by, WALL_HALF_H)),
        scene.Fixture("wall_yp", (long, WALL_HALF_T, WALL_HALF_H), (bx, by + off, WALL_HALF_H)),
        scene.Fixture("wall_yn", (long, WALL_HALF_T, WALL_HALF_H), (bx, by - off, WALL_HALF_H)),
    )


class CanEnv(core.MjxEnv):
    """Pick-and-place of a tall box into a bin; see the module docstring."""

    oracle = pick_place
    oracle_carry_extra = 0.04

    def __init__(self):
        can = scene.Box("can", CAN_HALF, rgba=(0.8, 0.1, 0.1, 1.0), mass=0.08,
                        pos=(*INIT_XY, CAN_HALF[2]))
        super().__init__(scene.SceneSpec(objects=(can,), fixtures=bin_walls()))
        self.name = "can"
        self.episode_length = 300
        self.n_cubes = 1

    def reset(self, key: jax.Array) -> core.State:
        k_xy, k_yaw, k_hand = jax.random.split(key, 3)
        xy = jnp.asarray(INIT_XY) + jax.random.uniform(k_xy, (2,), minval=-INIT_RANGE,
                                                       maxval=INIT_RANGE)
        yaw = jax.random.uniform(k_yaw, (), minval=-np.pi / 4, maxval=np.pi / 4)
        can_q = jnp.concatenate([xy, jnp.array([CAN_HALF[2]]), core.quat_from_yaw(yaw)])
        hand = jnp.asarray(HAND_HOME) + jax.random.uniform(k_hand, (3,), minval=-0.03,
                                                           maxval=0.03)
        qpos = jnp.concatenate([hand, jnp.zeros(3), can_q])
        goal = jnp.array([[BIN_XY[0], BIN_XY[1], CAN_HALF[2] + 0.01]])  # oracle place point
        return self._make_state(self.make_data(qpos), {"goal": goal})

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:
        p = self.object_pos(data, 0)
        inside = jnp.all(jnp.abs(p[:2] - jnp.asarray(BIN_XY)) < BIN_INNER)
        return inside & (p[2] < SUCCESS_Z)

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        return success.astype(jnp.float32)

    def _get_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        p = self.object_pos(data, 0)
        return jnp.concatenate([self.arm_obs(data), p, self.object_quat(data, 0),
                                p - data.qpos[:3]]).astype(jnp.float32)

    def obs_layout(self) -> list[tuple[str, int]]:
        return [*core.ARM_OBS_LAYOUT, ("can_pos", 3), ("can_quat", 4), ("can_to_ee", 3)]
