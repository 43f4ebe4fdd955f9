"""``lift`` (robomimic-like): grasp a cube and lift it; sparse reward.

Reset: cube centre uniform in a 6 cm square around the table centre, yaw uniform in
[-pi/4, pi/4]; hand at (0, 0, 0.15) +- 3 cm. Observation (19) as ``cube-single``: gripper
block (9), cube position (3), wxyz quaternion (4), cube minus ee position (3).

Success: cube centre higher than ``LIFT_HEIGHT`` (4 cm above its resting height, as in
robomimic). Reward sparse {0, 1} = success (the trainer applies its -1 shift); the episode
terminates on success and is truncated at 200 steps (10 s at 20 Hz).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx import core
from envs_mjx.tasks.cube import CUBE_HALF, HAND_HOME, CubeEnv

LIFT_HEIGHT = CUBE_HALF + 0.04
INIT_RANGE = 0.03


class LiftEnv(CubeEnv):
    """One cube, lift it above ``LIFT_HEIGHT``; see the module docstring."""

    oracle_lift_only = True

    def __init__(self):
        super().__init__(n_cubes=1, task_id=1)
        self.name = "lift"
        self.episode_length = 200

    def reset(self, key: jax.Array) -> core.State:
        k_xy, k_yaw, k_hand = jax.random.split(key, 3)
        xy = jax.random.uniform(k_xy, (2,), minval=-INIT_RANGE, maxval=INIT_RANGE)
        yaw = jax.random.uniform(k_yaw, (), minval=-np.pi / 4, maxval=np.pi / 4)
        cube_q = jnp.concatenate([xy, jnp.array([CUBE_HALF]), core.quat_from_yaw(yaw)])
        hand = jnp.asarray(HAND_HOME) + jax.random.uniform(k_hand, (3,), minval=-0.03,
                                                           maxval=0.03)
        qpos = jnp.concatenate([hand, jnp.zeros(3), cube_q])
        # the oracle reads a goal: the lift target above the start
        goal = jnp.concatenate([xy, jnp.array([LIFT_HEIGHT + 0.05])])[None]
        return self._make_state(self.make_data(qpos), {"goal": goal})

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:
        return self.object_pos(data, 0)[2] > LIFT_HEIGHT

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        return success.astype(jnp.float32)
