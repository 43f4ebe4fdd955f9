"""``cube-single`` / ``cube-double``: pick-and-place cubes to goal positions (OGBench-like).

Each variant has five fixed evaluation tasks (``<env>-singletask-task{1..5}``): fixed
initial cube positions (plus uniform noise of ``init_noise`` m and a random yaw in
[-pi/4, pi/4]) and fixed goal positions. ``task_id=0`` is "play" mode: random initial
positions and random goals, for goal-diverse data.

Observation (``9 + 10 * n_cubes``): gripper block (``MjxEnv.arm_obs``: ee_pos 3, cos/sin yaw
2, closure 1, ee_vel 3), then per cube: position (3), wxyz quaternion (4), position minus
ee_pos (3). Goals are not observed (single-task, as in OGBench singletask).

Reward (OGBench singletask): ``n_success - n_cubes`` in {-n, ..., 0}; a cube succeeds when
its centre is within ``SUCCESS_RADIUS`` of its goal. Success = all cubes succeed; the
episode terminates on success and is truncated at ``episode_length`` (200 single, 500 double).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx import core, scene
from envs_mjx.oracles import pick_place

CUBE_HALF = 0.02
SUCCESS_RADIUS = 0.04
HAND_HOME = (0.0, 0.0, 0.15)

# (task, cube, [x, y]) initial centres and (task, cube, [x, y, z]) goals.
SINGLE_INIT = np.array([[[-0.10, 0.00]], [[0.00, -0.10]], [[0.10, 0.10]],
                        [[-0.10, -0.10]], [[0.12, -0.08]]])
SINGLE_GOAL = np.array([[[0.10, 0.00, 0.02]], [[0.00, 0.10, 0.02]], [[-0.10, -0.10, 0.02]],
                        [[0.10, 0.10, 0.02]], [[-0.12, 0.08, 0.02]]])
DOUBLE_INIT = np.array([
    [[-0.10, -0.06], [-0.10, 0.06]],
    [[0.00, -0.12], [0.12, 0.00]],
    [[-0.10, -0.10], [0.10, -0.10]],
    [[0.00, 0.00], [0.00, 0.12]],
    [[-0.12, 0.10], [-0.12, -0.10]],
])
DOUBLE_GOAL = np.array([
    [[0.10, -0.06, 0.02], [0.10, 0.06, 0.02]],
    [[0.00, 0.12, 0.02], [-0.12, 0.00, 0.02]],
    [[0.10, 0.10, 0.02], [-0.10, 0.10, 0.02]],
    [[0.15, 0.00, 0.02], [-0.15, 0.00, 0.02]],
    [[0.12, -0.10, 0.02], [0.12, 0.10, 0.02]],
])
CUBE_COLORS = ((0.9, 0.3, 0.2, 1.0), (0.2, 0.4, 0.9, 1.0))


class CubeEnv(core.MjxEnv):
    """Pick-and-place of ``n_cubes`` (1 or 2) cubes; see the module docstring."""

    oracle = pick_place

    def __init__(self, n_cubes: int = 1, task_id: int = 1, init_noise: float = 0.02):
        if n_cubes not in (1, 2):
            raise ValueError(f"n_cubes must be 1 or 2, got {n_cubes}")
        if not 0 <= task_id <= 5:
            raise ValueError(f"task_id must be in 0..5 (0 = play), got {task_id}")
        objects = tuple(
            scene.Box(f"cube{i}", (CUBE_HALF,) * 3, rgba=CUBE_COLORS[i],
                      pos=(0.0, 0.1 * i, CUBE_HALF))
            for i in range(n_cubes)
        )
        super().__init__(scene.SceneSpec(objects=objects))
        self.n_cubes = n_cubes
        self.task_id = task_id
        self.init_noise = init_noise
        base = "cube-single" if n_cubes == 1 else "cube-double"
        self.name = base if task_id == 0 else f"{base}-singletask-task{task_id}"
        self.episode_length = 200 if n_cubes == 1 else 500
        inits, goals = (SINGLE_INIT, SINGLE_GOAL) if n_cubes == 1 else (DOUBLE_INIT, DOUBLE_GOAL)
        self._task_init = jnp.asarray(inits[max(task_id, 1) - 1], jnp.float32)
        self._task_goal = jnp.asarray(goals[max(task_id, 1) - 1], jnp.float32)

    def _sample_play(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Random non-overlapping (n, 2) initial xy and (n, 3) goals for play mode."""
        k_init, k_goal = jax.random.split(key)
        # cubes on a coarse grid of slots so they never start or end overlapping
        slots = jnp.array([[x, y] for x in (-0.14, -0.05, 0.05, 0.14) for y in (-0.12, 0.0, 0.12)])
        init_ix = jax.random.choice(k_init, slots.shape[0], (self.n_cubes,), replace=False)
        goal_ix = jax.random.choice(k_goal, slots.shape[0], (self.n_cubes,), replace=False)
        goal = jnp.concatenate([slots[goal_ix], jnp.full((self.n_cubes, 1), CUBE_HALF)], -1)
        return slots[init_ix], goal

    def reset(self, key: jax.Array) -> core.State:
        """Sample initial cube poses (noise + yaw) and the hand pose; goals are fixed per task."""
        k_play, k_xy, k_yaw, k_hand = jax.random.split(key, 4)
        init_xy, goal = self._task_init, self._task_goal
        if self.task_id == 0:
            init_xy, goal = self._sample_play(k_play)
        noise = jax.random.uniform(k_xy, init_xy.shape, minval=-1, maxval=1)
        xy = init_xy + noise * self.init_noise
        yaw = jax.random.uniform(k_yaw, (self.n_cubes,), minval=-np.pi / 4, maxval=np.pi / 4)
        cube_q = jnp.concatenate(
            [xy, jnp.full((self.n_cubes, 1), CUBE_HALF), core.quat_from_yaw(yaw)], -1
        )
        hand = jnp.asarray(HAND_HOME) + jax.random.uniform(k_hand, (3,), minval=-0.03, maxval=0.03)
        qpos = jnp.concatenate([hand, jnp.zeros(3), cube_q.reshape(-1)])
        data = self.make_data(qpos)
        return self._make_state(data, {"goal": goal})

    def cube_success(self, data: mjx.Data, goal: jax.Array) -> jax.Array:
        """(n_cubes,) bool: cube centre within ``SUCCESS_RADIUS`` of its goal."""
        pos = jnp.stack([self.object_pos(data, i) for i in range(self.n_cubes)])
        return jnp.linalg.norm(pos - goal, axis=-1) <= SUCCESS_RADIUS

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.all(self.cube_success(data, info["goal"]))

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.sum(self.cube_success(data, info["goal"])) - float(self.n_cubes)

    def obs_layout(self) -> list[tuple[str, int]]:
        """Named observation blocks in order (robomimic ``obs/<key>`` names)."""
        out = list(core.ARM_OBS_LAYOUT)
        for i in range(self.n_cubes):
            out += [(f"cube{i}_pos", 3), (f"cube{i}_quat", 4), (f"cube{i}_to_ee", 3)]
        return out

    def _get_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        arm = self.arm_obs(data)
        ee = data.qpos[:3]
        parts = [arm]
        for i in range(self.n_cubes):
            p = self.object_pos(data, i)
            parts += [p, self.object_quat(data, i), p - ee]
        return jnp.concatenate(parts).astype(jnp.float32)
