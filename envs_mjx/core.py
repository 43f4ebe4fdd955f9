"""Env contract (MuJoCo Playground / Brax style): pure ``reset(key)`` and ``step(state, a)``.

An ``Env`` instance is static configuration (model, sizes, task constants); everything that
changes lives in the ``State`` pytree, so ``jax.jit`` / ``jax.vmap`` / ``lax.scan`` apply
directly. Base envs never end an episode by time: ``EpisodeWrapper`` adds the step counter
and truncation (see ``wrappers.py``).

Actions are 5-D in [-1, 1] like OGBench: end-effector ``dx, dy, dz`` (scaled by
``POS_SCALE`` m per env step), ``dyaw`` (``YAW_SCALE`` rad per step) and an absolute gripper
command (-1 open, +1 closed).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx

from envs_mjx import scene

POS_SCALE = 0.03
YAW_SCALE = 0.3
ACTION_SIZE = 5
ARM_OBS_LAYOUT = (("ee_pos", 3), ("ee_yaw_cos_sin", 2), ("gripper_closure", 1), ("ee_vel", 3))


@struct.dataclass
class State:
    """One environment's state (add a leading axis ``(N, ...)`` under vmap).

    Attributes:
      data: MJX physics data (qpos, qvel, ctrl, ...).
      obs: (obs_size,) float32 observation.
      reward: () float32 reward of the transition that produced this state.
      done: () bool, ``terminated | truncated`` (only set by wrappers for truncation).
      success: () bool, task success in this state.
      info: dict of per-env arrays; base envs write ``terminated`` (bool), task constants
        (e.g. ``goal``); wrappers add ``steps`` (int32) and ``truncated`` (bool).
      metrics: dict of float32 scalars for logging.
    """

    data: mjx.Data
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    success: jax.Array
    info: dict[str, Any] = struct.field(default_factory=dict)
    metrics: dict[str, Any] = struct.field(default_factory=dict)


class MjxEnv:
    """Base class: owns the MuJoCo model (C and MJX copies) and the shared gripper control.

    Subclasses implement ``reset(key)``, ``_get_obs(data, info)``, ``_success(data, info)``,
    ``_reward(success, data, info)`` and set ``name``, ``episode_length``.
    """

    name: str = "base"
    episode_length: int = 200
    terminate_on_success: bool = True
    oracle_lift_only: bool = False  # pick_place oracle variant: stop after lifting
    oracle_carry_extra: float = 0.0  # pick_place oracle: added carry height (m)
    oracle_grasp_offset: tuple = (0.0, 0.0, 0.0)  # pick_place: grasp point, object frame
    oracle_grasp_symmetry: float = float(np.pi / 2)  # pick_place: grasp yaw period (rad)
    oracle_place_tol: float = 0.012  # pick_place: xy error (m) to start lowering at the goal
    oracle_object_relative: bool = False  # pick_place: place by the held object's position

    def __init__(self, spec: scene.SceneSpec):
        self.spec = spec
        self.xml = scene.build_xml(spec)
        self.mj_model = mujoco.MjModel.from_xml_string(self.xml)
        self.mjx_model = mjx.put_model(self.mj_model)
        self._data0 = mjx.make_data(self.mjx_model)
        self.n_objects = len(spec.objects)

    # ----- sizes -------------------------------------------------------------------------
    @property
    def action_size(self) -> int:
        return ACTION_SIZE

    @functools.cached_property
    def observation_size(self) -> int:
        st = jax.eval_shape(self.reset, jax.random.PRNGKey(0))
        return int(st.obs.shape[-1])

    # ----- helpers shared by tasks -------------------------------------------------------
    def make_data(self, qpos: jax.Array, qvel: jax.Array | None = None) -> mjx.Data:
        """Physics data at ``qpos`` (nq,) with ctrl holding the gripper pose; runs forward."""
        qvel = jnp.zeros(self.mj_model.nv) if qvel is None else qvel
        ctrl = arm_ctrl_from_qpos(qpos)
        data = self._data0.replace(qpos=qpos, qvel=qvel, ctrl=ctrl)
        return mjx.forward(self.mjx_model, data)

    def object_pos(self, data: mjx.Data, i: int) -> jax.Array:
        """(3,) position of object ``i`` (free-joint translation)."""
        a = scene.ARM_NQ + 7 * i
        return data.qpos[a : a + 3]

    def object_quat(self, data: mjx.Data, i: int) -> jax.Array:
        """(4,) wxyz orientation of object ``i``."""
        a = scene.ARM_NQ + 7 * i + 3
        return data.qpos[a : a + 4]

    def arm_obs(self, data: mjx.Data) -> jax.Array:
        """(9,) gripper part of every observation.

        Layout: ee_pos (3), cos yaw, sin yaw (2), gripper closure in [0, 1] (1),
        ee linear velocity (3).
        """
        q, v = data.qpos, data.qvel
        closure = 0.5 * (q[4] + q[5]) / scene.FINGER_CLOSED_Q
        return jnp.concatenate(
            [q[:3], jnp.stack([jnp.cos(q[3]), jnp.sin(q[3]), closure]), v[:3]]
        )

    def plot_points(self, qpos: np.ndarray) -> np.ndarray:
        """(k, 2) xy points to mark in trajectory plots: object positions in ``qpos``."""
        starts = [scene.ARM_NQ + 7 * i for i in range(self.n_objects)]
        return np.array([qpos[a : a + 2] for a in starts]).reshape(-1, 2)

    # ----- videos (envs_mjx/render.py) ---------------------------------------------------
    def frame_extras(self, state: State) -> jax.Array:
        """(E,) float32 task state that the physics does not show (E = 0 here); recorded per
        frame of a video and handed to ``paint``."""
        return jnp.zeros((0,), jnp.float32)

    def paint(self, model: mujoco.MjModel, extras: np.ndarray) -> None:
        """Recolour ``model``'s geoms (a copy) for one frame from ``frame_extras``."""

    # ----- the contract ------------------------------------------------------------------
    def reset(self, key: jax.Array) -> State:  # pragma: no cover - abstract
        raise NotImplementedError

    def _get_obs(self, data: mjx.Data, info: dict) -> jax.Array:  # pragma: no cover
        raise NotImplementedError

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:  # pragma: no cover
        raise NotImplementedError

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        raise NotImplementedError  # pragma: no cover

    def _update_info(self, data: mjx.Data, info: dict) -> dict:
        """Task state kept outside physics (e.g. puzzle lights), updated after each step."""
        return info

    def _make_state(self, data: mjx.Data, info: dict) -> State:
        success = self._success(data, info)
        info = {**info, "terminated": jnp.zeros((), bool)}
        return State(
            data=data,
            obs=self._get_obs(data, info),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), bool),
            success=success,
            info=info,
            metrics={"success": success.astype(jnp.float32)},
        )

    def step(self, state: State, action: jax.Array) -> State:
        """Apply a (5,) action for ``N_SUBSTEPS`` physics steps; O(N_SUBSTEPS) mjx.step."""
        data = apply_action(state.data, action)
        data = physics_substeps(self.mjx_model, data)
        info = self._update_info(data, state.info)
        success = self._success(data, info)
        reward = self._reward(success, data, info).astype(jnp.float32)
        terminated = success if self.terminate_on_success else jnp.zeros((), bool)
        info = {**info, "terminated": terminated}
        return state.replace(
            data=data,
            obs=self._get_obs(data, info),
            reward=reward,
            done=terminated,
            success=success,
            info=info,
            metrics={**state.metrics, "success": success.astype(jnp.float32)},
        )


def arm_ctrl_from_qpos(qpos: jax.Array) -> jax.Array:
    """(6,) actuator targets that hold the gripper where ``qpos`` puts it."""
    return qpos[: scene.ARM_NQ]


def action_to_ctrl(qpos: jax.Array, action: jax.Array) -> jax.Array:
    """(6,) actuator targets from a (5,) action, relative to the current gripper pose.

    Works for numpy and jax inputs alike (used by the C MuJoCo parity path too).
    """
    xp = jnp if isinstance(qpos, jax.Array) or isinstance(action, jax.Array) else np
    a = xp.clip(action, -1.0, 1.0)
    pos = xp.clip(qpos[:3] + a[:3] * POS_SCALE, xp.asarray(scene.WORKSPACE_LO),
                  xp.asarray(scene.WORKSPACE_HI))
    yaw = xp.clip(qpos[3:4] + a[3:4] * YAW_SCALE, -3.1, 3.1)
    grip = scene.FINGER_OPEN_Q + 0.5 * (a[4:5] + 1.0) * (scene.FINGER_CLOSED_Q
                                                       - scene.FINGER_OPEN_Q)
    return xp.concatenate([pos, yaw, grip, grip])


def apply_action(data: mjx.Data, action: jax.Array) -> mjx.Data:
    """Write the actuator targets for ``action`` (5,) into ``data.ctrl``."""
    return data.replace(ctrl=action_to_ctrl(data.qpos, action).astype(data.ctrl.dtype))


def physics_substeps(model: mjx.Model, data: mjx.Data) -> mjx.Data:
    """``N_SUBSTEPS`` calls of ``mjx.step`` under ``lax.scan``."""

    def body(d, _):
        return mjx.step(model, d), None

    data, _ = jax.lax.scan(body, data, None, length=scene.N_SUBSTEPS)
    return data


def yaw_from_quat(quat: jax.Array) -> jax.Array:
    """Yaw (rad) of a wxyz quaternion, shape (..., 4) -> (...)."""
    w, x, y, z = quat[..., 0], quat[..., 1], quat[..., 2], quat[..., 3]
    return jnp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quat_from_yaw(yaw: jax.Array) -> jax.Array:
    """wxyz quaternion (..., 4) of a rotation by ``yaw`` (...) about z."""
    return jnp.stack(
        [jnp.cos(yaw / 2), jnp.zeros_like(yaw), jnp.zeros_like(yaw), jnp.sin(yaw / 2)], -1
    )


def make_obs_fn(env: MjxEnv):
    """Jitted ``(qpos (nq,), qvel (nv,), info) -> (obs, success, reward)`` for a given state.

    Observations, success and reward depend only on qpos/qvel (and task constants in
    ``info``), so C MuJoCo states can be scored with the exact MJX code (parity tests).
    """

    def fn(qpos, qvel, info):
        data = env.make_data(jnp.asarray(qpos, jnp.float32), jnp.asarray(qvel, jnp.float32))
        success = env._success(data, info)
        return env._get_obs(data, info), success, env._reward(success, data, info)

    return jax.jit(fn)
