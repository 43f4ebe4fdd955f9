"""ogbench ``PuzzleEnv`` (lights out, 3x3 / 4x4) singletask logic in JAX.

Task state outside physics: ``info['buttons']`` (n,) int32 in {0, 1}. After each env
step, button i counts as pressed when its joint crosses −0.02 m downwards (before the
step > −0.02, after ≤ −0.02); every press toggles the button and its 4-neighbours
(``PuzzleEnv.post_step``; toggles commute, so ``buttons ← (buttons + N · pressed) mod 2``
with the (n, n) neighbourhood matrix N). ogbench then calls ``mj_forward`` (colour update),
so site poses are refreshed after the physics here too. Success of button i: state =
goal state; reward: n_success − n. Observation: arm block (19) then per button one-hot
state (2), joint position · 120 (1), joint velocity (1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx.ogbench.env import ManipEnv
from envs_mjx.ogbench.setup import Scene

PRESS_DEPTH = -0.02
BUTTON_SCALE = 120.0


def neighbourhood(rows: int, cols: int) -> np.ndarray:
    """(n, n) 0/1 matrix: column i marks the buttons that pressing i toggles."""
    n = rows * cols
    m = np.zeros((n, n), np.int32)
    for i in range(n):
        x, y = divmod(i, cols)
        for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
            if 0 <= x + dx < rows and 0 <= y + dy < cols:
                m[(x + dx) * cols + y + dy, i] = 1
    return m


class PuzzleEnv(ManipEnv):
    """ogbench lights-out task ``scene.name``."""

    def __init__(self, scene: Scene, og_env):
        super().__init__(scene)
        u = og_env.unwrapped
        self.rows, self.cols = int(u._num_rows), int(u._num_cols)
        self.n_buttons = self.rows * self.cols
        task = u.task_infos[scene.task_id - 1]
        self.init_states = np.asarray(task["init_button_states"], np.int32)
        self.goal_states = np.asarray(task["goal_button_states"], np.int32)
        self.toggle = neighbourhood(self.rows, self.cols)
        m = scene.model
        joints = [m.joint(f"buttonbox_joint_{i}").id for i in range(self.n_buttons)]
        self.btn_qadr = np.array([int(m.jnt_qposadr[j]) for j in joints])
        self.btn_dofadr = np.array([int(m.jnt_dofadr[j]) for j in joints])
        self.top_sites = np.array([int(s) for s in u._button_site_ids])

    def _task_reset(self, key: jax.Array, qpos: jax.Array):
        mocap = jnp.zeros((self.mj_model.nmocap, 3))
        info = {"buttons": jnp.asarray(self.init_states),
                "goal_buttons": jnp.asarray(self.goal_states)}
        return qpos, mocap, info

    def _after_physics(self, data: mjx.Data) -> mjx.Data:
        return self.kinematics(data)

    def _update_info(self, prev: mjx.Data, data: mjx.Data, info: dict) -> dict:
        before, after = prev.qpos[self.btn_qadr], data.qpos[self.btn_qadr]
        pressed = ((before > PRESS_DEPTH) & (after <= PRESS_DEPTH)).astype(jnp.int32)
        buttons = (info["buttons"] + jnp.asarray(self.toggle) @ pressed) % 2
        return {**info, "buttons": buttons.astype(jnp.int32)}

    def _object_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        onehot = jax.nn.one_hot(info["buttons"], 2, dtype=jnp.float32)
        pos = data.qpos[self.btn_qadr] * BUTTON_SCALE
        vel = data.qvel[self.btn_dofadr]
        return jnp.concatenate([onehot, pos[:, None], vel[:, None]], axis=1).reshape(-1)

    def _successes(self, data: mjx.Data, info: dict) -> jax.Array:
        return info["buttons"] == info["goal_buttons"]

    def task_info_from_ogbench(self, og_env) -> dict:
        """Button states of ogbench's current episode, for parity runs."""
        u = og_env.unwrapped
        return {"buttons": jnp.asarray(np.array(u._cur_button_states), jnp.int32),
                "goal_buttons": jnp.asarray(np.array(u._target_button_states), jnp.int32)}
