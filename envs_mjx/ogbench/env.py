"""ogbench manipspace env logic in JAX: the UR5e + Robotiq arm, its control and its
proprioceptive observation; task subclasses (``cube.py``, ``puzzle.py``) add objects.

Contract (``envs_mjx.core``): ``reset(key) -> State`` and ``step(state, action) -> State``,
pure, so ``EpisodeWrapper`` / ``ChunkedVecEnv`` apply unchanged. Timing follows ogbench's
singletask envs (``success_timing='pre'``, ``terminate_at_goal=True``): the transition out
of state s reports ``reward(s)``, ``success(s)`` and ``terminated = success(s)``, where
``success`` of the reset state is False (ogbench clears it at reset); ``State.obs`` is the
observation after the action. ``info['goal_reached']`` is the post-step success flag that the
next step reports.

One env step (``ManipSpaceEnv.set_control`` + 25 × ``mj_step`` + ``mj_rnePostConstraint``):
action a ∈ [-1, 1]⁵ → a · (0.05, 0.05, 0.05, 0.3, 1) → target pinch pose (position clipped
to the workspace, yaw wrapped to [-π, π], gripper opening clipped to [0, 1]) → DLS IK
(``ik.solve``) → arm position targets, gripper target 255 · opening → physics.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from mujoco import mjx

from envs_mjx.core import State
from envs_mjx.ogbench import ik, lie, physics
from envs_mjx.ogbench.setup import Scene

ACTION_RANGE = (0.05, 0.05, 0.05, 0.3, 1.0)
XYZ_CENTER = (0.425, 0.0, 0.0)
XYZ_SCALE = 10.0
GRIPPER_SCALE = 3.0
OPENING_FULL = 0.8  # right_driver_joint angle (rad) read as "closed" (opening 1)
CONTACT_FULL = 50.0  # ‖cfrc_ext(right_pad)‖ (N, N·m) read as contact 1


def arm_obs(scene: Scene, qpos: jax.Array, qvel: jax.Array, pinch_xpos: jax.Array,
            pinch_xmat: jax.Array, pad_cfrc: jax.Array) -> jax.Array:
    """(19,) ogbench's proprioceptive block (``ManipSpaceEnv.compute_observation``).

    Layout: joint_pos (6), joint_vel (6), (pinch_pos − (0.425, 0, 0)) · 10 (3), cos yaw,
    sin yaw (2), 3 · clip(q_driver / 0.8, 0, 1) (1), clip(‖cfrc_ext(right_pad)‖ / 50, 0, 1)
    (1). Inputs: qpos (nq,), qvel (nv,), pinch_xpos (3,), pinch_xmat (9,) or (3, 3),
    pad_cfrc (6,).
    """
    yaw = lie.mat_yaw(pinch_xmat)
    opening = jnp.clip(qpos[scene.opening_qadr] / OPENING_FULL, 0.0, 1.0)
    contact = jnp.clip(jnp.linalg.norm(pad_cfrc) / CONTACT_FULL, 0.0, 1.0)
    return jnp.concatenate([
        qpos[scene.arm_qadr], qvel[scene.arm_dofadr],
        (pinch_xpos - jnp.asarray(XYZ_CENTER)) * XYZ_SCALE,
        jnp.stack([jnp.cos(yaw), jnp.sin(yaw), opening * GRIPPER_SCALE, contact]),
    ])


def object_obs(pos: jax.Array, quat: jax.Array) -> jax.Array:
    """(9,) one cube's block: (pos − center) · 10 (3), wxyz quat (4), cos yaw, sin yaw (2)."""
    yaw = lie.quat_yaw(quat)
    return jnp.concatenate([(pos - jnp.asarray(XYZ_CENTER)) * XYZ_SCALE, quat,
                            jnp.stack([jnp.cos(yaw), jnp.sin(yaw)])])


def target_arm_qpos(scene: Scene, pinch_pos: jax.Array, pinch_quat: jax.Array,
                    q0: jax.Array) -> jax.Array:
    """(6,) arm joints putting the pinch site at (pinch_pos (3,), pinch_quat (4,)), solved
    by ``ik.solve`` from ``q0`` on the attachment site (pinch pose ∘ ``T_pa``)."""
    t_pa = (jnp.asarray(scene.t_pa[0], jnp.float32), jnp.asarray(scene.t_pa[1], jnp.float32))
    quat, pos = lie.se3_mul((pinch_quat, pinch_pos), t_pa)
    return ik.solve(scene.chain, pos, quat, q0)


def control(scene: Scene, qpos: jax.Array, pinch_xpos: jax.Array, pinch_xmat: jax.Array,
            ctrl: jax.Array, action: jax.Array) -> jax.Array:
    """(nu,) actuator targets for a (5,) action (``ManipSpaceEnv.set_control``; the action
    is not clipped, like ogbench; the targets are)."""
    a = action * jnp.asarray(ACTION_RANGE, action.dtype)
    yaw = lie.mat_yaw(pinch_xmat)
    opening = jnp.clip(qpos[scene.opening_qadr] / OPENING_FULL, 0.0, 1.0)
    lo, hi = jnp.asarray(scene.workspace[0]), jnp.asarray(scene.workspace[1])
    pos = jnp.clip(pinch_xpos + a[:3], lo, hi)
    down = jnp.asarray(scene.down_quat, jnp.float32)
    ori = lie.quat_mul(lie.quat_mul(lie.quat_from_z(a[3]), lie.quat_from_z(yaw)),
                       lie.quat_conj(down))
    yaw_t = jnp.clip(lie.quat_yaw(ori), -jnp.pi, jnp.pi)
    quat = lie.quat_mul(lie.quat_from_z(yaw_t), down)
    q = target_arm_qpos(scene, pos, quat, qpos[scene.arm_qadr])
    grip = 255.0 * jnp.clip(opening + a[4], 0.0, 1.0)
    return ctrl.at[scene.arm_act].set(q.astype(ctrl.dtype)).at[scene.grip_act].set(grip)


def sample_arm_qpos(scene: Scene, key: jax.Array) -> jax.Array:
    """(6,) random start joints (``ManipSpaceEnv.initialize_arm``): pinch position uniform
    in the arm sampling box, yaw uniform in [-π, π), pointing down; IK from home."""
    k_pos, k_yaw = jax.random.split(key)
    lo, hi = scene.arm_bounds
    pos = jax.random.uniform(k_pos, (3,), minval=jnp.asarray(lo, jnp.float32),
                             maxval=jnp.asarray(hi, jnp.float32))
    yaw = jax.random.uniform(k_yaw, (), minval=-jnp.pi, maxval=jnp.pi)
    quat = lie.quat_mul(lie.quat_from_z(yaw), jnp.asarray(scene.down_quat, jnp.float32))
    return target_arm_qpos(scene, pos, quat, jnp.asarray(scene.home_qpos, jnp.float32))


class ManipEnv:
    """Base of the ported tasks. Subclasses set ``n_objects`` info and implement
    ``_task_reset(key, qpos) -> (qpos, mocap_pos, info)``, ``_object_obs(data, info)``,
    ``_successes(data, info) -> (k,) bool`` and may override ``_reward``."""

    terminate_on_success = True
    action_size = 5

    def __init__(self, scene: Scene):
        self.scene = scene
        self.name = scene.name
        self.episode_length = scene.episode_length
        self.mj_model = scene.model
        impl = "warp" if scene.backend == "warp" else "jax"
        self.mjx_model = mjx.put_model(scene.model, impl=impl)
        if impl == "warp":  # fill cfrc_ext in every step, as mj_rnePostConstraint does
            opt = self.mjx_model.opt
            self.mjx_model = self.mjx_model.replace(opt=opt.replace(
                _impl=opt._impl.replace(run_rne_postconstraint=True)))
        self._data0 = mjx.make_data(scene.model, impl=impl)
        self._qpos0 = jnp.asarray(scene.model.qpos0, jnp.float32)
        self._physics_step = physics.make_step(scene.backend)

    @functools.cached_property
    def observation_size(self) -> int:
        st = jax.eval_shape(self.reset, jax.random.PRNGKey(0))
        return int(st.obs.shape[-1])

    # ----- physics -------------------------------------------------------------------------
    def _impl(self, data: mjx.Data):
        return data._impl

    def pad_cfrc(self, data: mjx.Data) -> jax.Array:
        """(6,) ``cfrc_ext`` of the right finger pad (valid after ``physics``)."""
        return self._impl(data).cfrc_ext[self.scene.pad_body]

    def physics(self, data: mjx.Data) -> mjx.Data:
        """``n_substeps`` (25) physics steps (``physics.make_step``) under ``lax.scan``, then
        the post-constraint RNE that fills ``cfrc_ext``. O(25) physics steps."""
        def body(d, _):
            return self._physics_step(self.mjx_model, d), None

        data, _ = jax.lax.scan(body, data, None, length=self.scene.n_substeps)
        if self.scene.backend == "jax":
            data = mjx.rne_postconstraint(self.mjx_model, data)
        return data

    def kinematics(self, data: mjx.Data) -> mjx.Data:
        """Positions-only forward pass (site poses for the reset observation)."""
        if self.scene.backend == "jax":
            return mjx.kinematics(self.mjx_model, data)
        return mjx.forward(self.mjx_model, data)

    def make_data(self, qpos: jax.Array, qvel: jax.Array, mocap_pos: jax.Array,
                  ctrl: jax.Array | None = None) -> mjx.Data:
        """Data at (qpos (nq,), qvel (nv,), mocap_pos (nmocap, 3)) with kinematics run."""
        d0 = self._data0
        ctrl = jnp.zeros_like(d0.ctrl) if ctrl is None else ctrl
        data = d0.replace(qpos=qpos.astype(d0.qpos.dtype), qvel=qvel.astype(d0.qvel.dtype),
                          ctrl=ctrl.astype(d0.ctrl.dtype),
                          mocap_pos=mocap_pos.astype(d0.mocap_pos.dtype))
        return self.kinematics(data)

    # ----- observation / task --------------------------------------------------------------
    def _arm_obs(self, data: mjx.Data, contact: bool = True) -> jax.Array:
        s = self.scene
        cfrc = self.pad_cfrc(data) if contact else jnp.zeros(6)
        return arm_obs(s, data.qpos, data.qvel, data.site_xpos[s.pinch_site],
                       data.site_xmat[s.pinch_site], cfrc)

    def get_obs(self, data: mjx.Data, info: dict, contact: bool = True) -> jax.Array:
        """(O,) ogbench's observation: arm block then the task's object block."""
        return jnp.concatenate([self._arm_obs(data, contact), self._object_obs(data, info)])

    def _reward(self, data: mjx.Data, info: dict) -> jax.Array:
        """ogbench singletask reward: n_success − n (0 when every sub-goal holds)."""
        s = self._successes(data, info)
        return (jnp.sum(s) - s.shape[0]).astype(jnp.float32)

    def _task_reset(self, key, qpos):  # pragma: no cover - abstract
        raise NotImplementedError

    def _object_obs(self, data, info):  # pragma: no cover - abstract
        raise NotImplementedError

    def _successes(self, data, info):  # pragma: no cover - abstract
        raise NotImplementedError

    def _update_info(self, prev: mjx.Data, data: mjx.Data, info: dict) -> dict:
        """Task state kept outside physics (puzzle buttons), updated after each step from
        the data before (``prev``) and after (``data``) the physics."""
        return info

    def _after_physics(self, data: mjx.Data) -> mjx.Data:
        """Hook run after the physics (puzzle: ogbench's extra ``mj_forward``)."""
        return data

    # ----- the contract --------------------------------------------------------------------
    def state_from(self, data: mjx.Data, info: dict) -> State:
        """Reset-style ``State`` at ``data`` (kinematics done): success False, reward 0,
        contact feature 0 (the arm starts in the air)."""
        info = {**info, "terminated": jnp.zeros((), bool), "goal_reached": jnp.zeros((), bool)}
        zero = jnp.zeros((), bool)
        return State(data=data, obs=self.get_obs(data, info, contact=False),
                     reward=jnp.zeros((), jnp.float32), done=zero, success=zero, info=info,
                     metrics={"success": jnp.zeros((), jnp.float32)})

    def reset(self, key: jax.Array) -> State:
        """Random initial state of the task (arm pose through IK, objects, goal)."""
        k_arm, k_task = jax.random.split(key)
        qpos = self._qpos0.at[self.scene.arm_qadr].set(sample_arm_qpos(self.scene, k_arm))
        qpos, mocap_pos, info = self._task_reset(k_task, qpos)
        data = self.make_data(qpos, jnp.zeros(self.mj_model.nv), mocap_pos)
        return self.state_from(data, info)

    def step(self, state: State, action: jax.Array) -> State:
        """One env step from ``state`` with a (5,) action (25 physics steps)."""
        s = self.scene
        data, info = state.data, state.info
        success = info["goal_reached"]
        reward = self._reward(data, info)
        ctrl = control(s, data.qpos, data.site_xpos[s.pinch_site], data.site_xmat[s.pinch_site],
                       data.ctrl, action.astype(jnp.float32))
        new = self._after_physics(self.physics(data.replace(ctrl=ctrl)))
        info = self._update_info(data, new, info)
        data = new
        reached = jnp.all(self._successes(data, info))
        terminated = success if self.terminate_on_success else jnp.zeros((), bool)
        info = {**info, "terminated": terminated, "goal_reached": reached}
        return state.replace(data=data, obs=self.get_obs(data, info), reward=reward,
                             done=terminated, success=success, info=info,
                             metrics={**state.metrics, "success": success.astype(jnp.float32)})
