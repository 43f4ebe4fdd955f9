"""``reach``: bring the end-effector to a random goal point; the suite's fastest task.

The scene is the gripper alone (no objects, no fixtures), so MJX runs no collision code:
``jit(step)`` compiles in about half the time of ``lift`` and runs several times faster on
CPU. It is the task of the trainer's own end-to-end tests and of a quick end-to-end check of
an install (docs/envs.md); it is not a benchmark anyone reports on.

Reset: hand at ``HAND_HOME`` +- 3 cm, goal uniform in the box ``GOAL_LO``..``GOAL_HI``.
Observation (15): gripper block (``MjxEnv.arm_obs``, 9), goal position (3), goal minus
ee position (3). Success: ee within ``SUCCESS_RADIUS`` of the goal. Reward sparse {0, 1} =
success (the trainer applies its -1 shift); the episode terminates on success and is
truncated at 50 steps (2.5 s at 20 Hz).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx import core, scene
from envs_mjx.oracles import reach as reach_oracle
from envs_mjx.tasks.cube import HAND_HOME

SUCCESS_RADIUS = 0.02
GOAL_LO = (-0.15, -0.15, 0.05)
GOAL_HI = (0.15, 0.15, 0.25)


class ReachEnv(core.MjxEnv):
    """Reach a goal point with the gripper; see the module docstring."""

    oracle = reach_oracle

    def __init__(self):
        super().__init__(scene.SceneSpec())
        self.name = "reach"
        self.episode_length = 50

    def reset(self, key: jax.Array) -> core.State:
        k_goal, k_hand = jax.random.split(key)
        goal = jax.random.uniform(k_goal, (3,), minval=jnp.asarray(GOAL_LO),
                                  maxval=jnp.asarray(GOAL_HI))
        hand = jnp.asarray(HAND_HOME) + jax.random.uniform(k_hand, (3,), minval=-0.03,
                                                           maxval=0.03)
        qpos = jnp.concatenate([hand, jnp.zeros(3)])
        return self._make_state(self.make_data(qpos), {"goal": goal})

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.linalg.norm(data.qpos[:3] - info["goal"]) <= SUCCESS_RADIUS

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        return success.astype(jnp.float32)

    def obs_layout(self) -> list[tuple[str, int]]:
        """Named observation blocks in order (robomimic ``obs/<key>`` names)."""
        return list(core.ARM_OBS_LAYOUT) + [("goal_pos", 3), ("goal_to_ee", 3)]

    def _get_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        goal = info["goal"]
        return jnp.concatenate([self.arm_obs(data), goal, goal - data.qpos[:3]]).astype(
            jnp.float32)

    def plot_points(self, qpos: np.ndarray) -> np.ndarray:
        """No objects: nothing to mark (the goal is not in ``qpos``)."""
        return np.zeros((0, 2))
