"""ogbench ``CubeEnv`` (single / double / triple / quadruple) singletask logic in JAX.

Reset (``CubeEnv.initialize_episode``, task mode, ``permute_blocks=False`` as in ogbench's
singletask registration): cube i starts at the task's ``init_xyzs[i]`` plus U(-0.01, 0.01)
in x and y, with yaw U(0, 2π); its goal (the mocap target) is ``goal_xyzs[i]``. Success of
cube i: ‖pos_i − goal_i‖ ≤ 0.04; task success: all cubes. Observation: the arm block (19)
then per cube (pos − (0.425, 0, 0)) · 10, wxyz quat, cos yaw, sin yaw (9 each).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx.ogbench import lie
from envs_mjx.ogbench.env import ManipEnv, object_obs
from envs_mjx.ogbench.setup import Scene

SUCCESS_RADIUS = 0.04
XY_NOISE = 0.01


class CubeEnv(ManipEnv):
    """ogbench cube task ``scene.name`` (n cubes, 5 singletask goals each)."""

    def __init__(self, scene: Scene, og_env):
        super().__init__(scene)
        u = og_env.unwrapped
        self.n_cubes = int(u._num_cubes)
        task = u.task_infos[scene.task_id - 1]
        self.init_xyzs = np.asarray(task["init_xyzs"], np.float32)  # (n, 3)
        self.goal_xyzs = np.asarray(task["goal_xyzs"], np.float32)  # (n, 3)
        m = scene.model
        joints = [m.joint(f"object_joint_{i}") for i in range(self.n_cubes)]
        self.obj_qadr = np.array([int(m.jnt_qposadr[j.id]) for j in joints])
        self.mocap_ids = np.array([int(u._cube_target_mocap_ids[i])
                                   for i in range(self.n_cubes)])

    def cube_pos(self, qpos: jax.Array) -> jax.Array:
        """(n, 3) cube positions in ``qpos``."""
        return jnp.stack([qpos[a:a + 3] for a in self.obj_qadr])

    def cube_quat(self, qpos: jax.Array) -> jax.Array:
        """(n, 4) cube wxyz orientations in ``qpos``."""
        return jnp.stack([qpos[a + 3:a + 7] for a in self.obj_qadr])

    def _task_reset(self, key: jax.Array, qpos: jax.Array):
        k_xy, k_yaw = jax.random.split(key)
        xy = jax.random.uniform(k_xy, (self.n_cubes, 2), minval=-XY_NOISE, maxval=XY_NOISE)
        yaw = jax.random.uniform(k_yaw, (self.n_cubes,), minval=0.0, maxval=2 * jnp.pi)
        pos = jnp.asarray(self.init_xyzs).at[:, :2].add(xy)
        quat = jax.vmap(lie.quat_from_z)(yaw)
        for i, a in enumerate(self.obj_qadr):
            qpos = qpos.at[a:a + 3].set(pos[i]).at[a + 3:a + 7].set(quat[i])
        mocap = jnp.zeros((self.mj_model.nmocap, 3)).at[self.mocap_ids].set(
            jnp.asarray(self.goal_xyzs))
        return qpos, mocap, {"goal": jnp.asarray(self.goal_xyzs)}

    def _object_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        pos, quat = self.cube_pos(data.qpos), self.cube_quat(data.qpos)
        return jax.vmap(object_obs)(pos, quat).reshape(-1)

    def _successes(self, data: mjx.Data, info: dict) -> jax.Array:
        d = jnp.linalg.norm(self.cube_pos(data.qpos) - info["goal"], axis=-1)
        return d <= SUCCESS_RADIUS

    def task_info_from_ogbench(self, og_env) -> dict:
        """Task constants of ogbench's current episode (its mocap goals), for parity runs."""
        d = og_env.unwrapped._data
        return {"goal": jnp.asarray(np.array(d.mocap_pos[self.mocap_ids]), jnp.float32)}
