"""``puzzle-3x3``: lights-out with physical push buttons (OGBench-like puzzle).

A 3 x 3 grid of buttons (8 cm pitch, button i = row * 3 + col, row 0 at +y). Pressing a
button (joint pushed below -8 mm; released above -4 mm) toggles its light and the lights of
its 4-neighbours. Lights live in ``info['lights']`` (not in physics). Five evaluation tasks
(``puzzle-3x3-singletask-task{1..5}``) start from a light pattern that needs 1..5 presses to
reach the goal "all lights off"; ``puzzle-3x3`` (play) draws random start and goal patterns.

Observation (27): gripper block (9), button displacements / travel (9, in [-1, 0]), lights
(9, {0, 1}). Reward (OGBench singletask): number of lights equal to the goal minus 9; success
= all equal; terminates on success; 500 steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx import core, scene
from envs_mjx.oracles import buttons as buttons_oracle

N = 3
PITCH = 0.08
PRESS_DOWN, RELEASE_UP = -0.008, -0.004
BUTTON_XY = np.array([[(c - 1) * PITCH, (1 - r) * PITCH] for r in range(N) for c in range(N)])


def toggle_matrix(n: int = N) -> np.ndarray:
    """(n*n, n*n) 0/1 matrix: row i = lights toggled by pressing button i."""
    a = np.zeros((n * n, n * n), np.int32)
    for r in range(n):
        for c in range(n):
            i = r * n + c
            for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= r + dr < n and 0 <= c + dc < n:
                    a[i, (r + dr) * n + c + dc] = 1
    return a


def gf2_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a 0/1 matrix over GF(2) (Gauss-Jordan); raises if singular."""
    n = a.shape[0]
    m = np.concatenate([a % 2, np.eye(n, dtype=np.int32)], 1)
    for col in range(n):
        piv = next((r for r in range(col, n) if m[r, col]), None)
        if piv is None:
            raise ValueError("matrix is singular over GF(2)")
        m[[col, piv]] = m[[piv, col]]
        for r in range(n):
            if r != col and m[r, col]:
                m[r] ^= m[col]
    return m[:, n:]


TOGGLE = toggle_matrix()
TOGGLE_INV = gf2_inverse(TOGGLE)
# presses that solve each evaluation task (start = TOGGLE^T s, goal = all off)
TASK_PRESSES = ((4,), (0, 8), (1, 3, 8), (0, 2, 6, 8), (1, 3, 4, 5, 7))


def task_start(task_id: int) -> np.ndarray:
    """(9,) bool start lights of evaluation task ``task_id`` (1..5)."""
    s = np.zeros(N * N, np.int32)
    s[list(TASK_PRESSES[task_id - 1])] = 1
    return (s @ TOGGLE % 2).astype(bool)


class PuzzleEnv(core.MjxEnv):
    """Lights-out 3 x 3 with push buttons; see the module docstring."""

    oracle = buttons_oracle

    def __init__(self, task_id: int = 1):
        if not 0 <= task_id <= 5:
            raise ValueError(f"task_id must be in 0..5 (0 = play), got {task_id}")
        super().__init__(scene.SceneSpec(buttons=tuple(map(tuple, BUTTON_XY))))
        self.task_id = task_id
        self.name = "puzzle-3x3" if task_id == 0 else f"puzzle-3x3-singletask-task{task_id}"
        self.episode_length = 500
        self.n_buttons = N * N
        self.button_xy = jnp.asarray(BUTTON_XY, jnp.float32)
        self.toggle = jnp.asarray(TOGGLE)
        self.toggle_inv = jnp.asarray(TOGGLE_INV)
        self._start = jnp.asarray(task_start(max(task_id, 1)))

    def button_q(self, data: mjx.Data) -> jax.Array:
        """(9,) button joint displacements (m, <= 0)."""
        return data.qpos[scene.ARM_NQ : scene.ARM_NQ + self.n_buttons]

    def reset(self, key: jax.Array) -> core.State:
        k_start, k_goal, k_hand = jax.random.split(key, 3)
        start, goal = self._start, jnp.zeros(self.n_buttons, bool)
        if self.task_id == 0:
            start = jax.random.bernoulli(k_start, 0.5, (self.n_buttons,))
            goal = jax.random.bernoulli(k_goal, 0.5, (self.n_buttons,))
        hand = jnp.asarray((0.0, 0.0, 0.15)) + jax.random.uniform(
            k_hand, (3,), minval=-0.03, maxval=0.03)
        qpos = jnp.concatenate([hand, jnp.zeros(3 + self.n_buttons)])
        info = {"lights": start, "goal_lights": goal,
                "pressed": jnp.zeros(self.n_buttons, bool)}
        return self._make_state(self.make_data(qpos), info)

    def _update_info(self, data: mjx.Data, info: dict) -> dict:
        q = self.button_q(data)
        pressed = jnp.where(info["pressed"], q < RELEASE_UP, q < PRESS_DOWN)
        edge = (pressed & ~info["pressed"]).astype(jnp.int32)
        flips = (edge @ self.toggle) % 2
        return {**info, "pressed": pressed, "lights": info["lights"] ^ flips.astype(bool)}

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.all(info["lights"] == info["goal_lights"])

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.sum(info["lights"] == info["goal_lights"]) - float(self.n_buttons)

    def _get_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.concatenate([
            self.arm_obs(data), self.button_q(data) / scene.BUTTON_TRAVEL,
            info["lights"].astype(jnp.float32)]).astype(jnp.float32)

    def obs_layout(self) -> list[tuple[str, int]]:
        return [*core.ARM_OBS_LAYOUT, ("button_pos", 9), ("lights", 9)]

    def plot_points(self, qpos: np.ndarray) -> np.ndarray:
        return BUTTON_XY
