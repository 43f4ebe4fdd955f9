"""Set-up on the host: build ogbench's own env once and read everything the port needs.

``build_ogbench_env(name)`` instantiates ogbench's gymnasium env (the MJCF comes from the
installed ogbench package: its XML descriptions, meshes, its ``build_mjcf_model`` and its
actuator-gain edits in ``post_compilation``). ``Scene`` keeps the compiled ``MjModel`` and
the ids / constants the JAX code indexes with. Nothing here is traced.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import mujoco
import numpy as np

from envs_mjx.ogbench import ik

BACKENDS = ("jax", "warp")
_NAME = re.compile(r"(cube-(?:single|double|triple|quadruple)|puzzle-(?:3x3|4x4))"
                   r"(?:-(?:play|noisy))?(?:-singletask)?(?:-task([1-5]))?(?:-v0)?")


def parse_name(env_name: str) -> tuple[str, int]:
    """``'cube-single-singletask-task3'`` -> (``'cube-single'``, 3); OGBench dataset names
    (``cube-single-play-singletask-task3-v0``) parse the same. A name without a task
    number gets ogbench's default single task (2 for cube, 4 for puzzle; ``reward_task_id=0``
    in ogbench resolves to these)."""
    m = _NAME.fullmatch(env_name)
    if not m:
        raise ValueError(f"not an ogbench manipspace singletask name: {env_name!r} "
                         "(expected e.g. cube-single-singletask-task1)")
    family = m.group(1)
    default = 4 if family.startswith("puzzle") else 2
    return family, int(m.group(2) or default)


def build_ogbench_env(env_name: str):
    """ogbench's own env for ``env_name`` (a gymnasium ``TimeLimit`` wrapper), reset once so
    its ``MjModel`` exists. ``env.unwrapped`` is the ``ManipSpaceEnv``."""
    import gymnasium as gym
    import ogbench  # noqa: F401  (registers the envs)

    family, task = parse_name(env_name)
    env = gym.make(f"{family}-singletask-task{task}-v0")
    env.reset(seed=0)
    return env


def jax_variant(model: mujoco.MjModel) -> tuple[mujoco.MjModel, list[str]]:
    """Copy of ``model`` that MJX's JAX backend can load (it has no cylinder-mesh or
    cylinder-box collision functions): mesh geoms and the robot's cylinder (the UR5e wrist)
    collide with nothing (contype = conaffinity = 0); the other cylinders (the puzzle
    buttons) become boxes of half size (r, r, h) in the same frame, the circumscribed square
    prism, so a closed gripper can still press them. (Turning the wrist cylinder into a box
    as well changed the grasp: obs error 0.10 instead of 0.025 on cube-single.) Returns it
    with a list of the colliding geoms changed."""
    m = copy.deepcopy(model)
    changed = []
    mesh, cyl = int(mujoco.mjtGeom.mjGEOM_MESH), int(mujoco.mjtGeom.mjGEOM_CYLINDER)
    for g in range(m.ngeom):
        t = int(m.geom_type[g])
        collides = bool(m.geom_contype[g] or m.geom_conaffinity[g])
        body = m.body(m.geom_bodyid[g]).name
        label = f"{m.geom(g).name or g} ({body})"
        if t == mesh or (t == cyl and body.startswith("ur5e/")):
            m.geom_contype[g] = 0
            m.geom_conaffinity[g] = 0
            if collides:
                changed.append(f"off: {label}")
        elif t == cyl and collides:
            r, h = m.geom_size[g, :2]
            m.geom_type[g] = int(mujoco.mjtGeom.mjGEOM_BOX)
            m.geom_size[g] = (r, r, h)
            changed.append(f"cylinder->box: {label}")
    _buttons_touch_robot_only(m, changed)
    return m, changed


def _buttons_touch_robot_only(m: mujoco.MjModel, changed: list[str]) -> None:
    """Puzzle scenes, in place: MJX has no broadphase, so every geom pair that the
    contype / conaffinity bits allow is computed at every physics step (2.2k pairs for
    3x3, almost all between parts that cannot meet; the step compiled for > 10 min).
    Here the moving button geoms and the static housing boxes collide only with the
    gripper's geoms (not with each other, the floor, the walls or the UR5e link capsules;
    the button joints are range-limited)."""
    buttons = [b for b in range(m.nbody) if m.body(b).name.startswith("button_")]
    if not buttons:
        return
    housings = [b for b in range(m.nbody) if m.body(b).name.startswith("buttonbox_")]
    for g in range(m.ngeom):
        if not (m.geom_contype[g] or m.geom_conaffinity[g]):
            continue
        body = int(m.geom_bodyid[g])
        name = m.body(body).name
        if body in buttons:
            m.geom_contype[g], m.geom_conaffinity[g] = 4, 0
        elif body in housings:
            m.geom_contype[g], m.geom_conaffinity[g] = 8, 0
        elif name.startswith("ur5e/robotiq/"):
            m.geom_conaffinity[g] |= 4 | 8
    changed.append(f"buttons and housings collide with the gripper only ({len(buttons)} "
                   "buttons)")


@dataclass(frozen=True)
class Scene:
    """Static description of one ogbench manipspace task (host side, numpy).

    model: the physics model (ogbench's, or the collision-reduced copy for ``jax``).
    n_substeps: physics steps per env step (control_timestep / physics_timestep = 25).
    arm_qadr / arm_dofadr / arm_act (6,): UR5e joints' qpos / qvel indices and actuators.
    grip_act: the gripper actuator; opening_qadr / opening_dofadr: ``right_driver_joint``.
    pinch_site: the ``pinch`` site id; pad_body: ``right_pad`` body id (contact feature).
    t_pa: (quat (4,), pos (3,)) pinch-to-attachment transform (ogbench's ``_T_pa``).
    chain: the IK chain of ogbench's arm-only model (``attachment_site``).
    home_qpos (6,), workspace (2, 3), arm_bounds (2, 3), down_quat (4,).
    episode_length: ogbench's ``max_episode_steps``. task_id: 1..5.
    switched_off: the colliding geoms the ``jax`` backend changes (``jax_variant``).
    """

    name: str
    family: str
    task_id: int
    backend: str
    model: mujoco.MjModel
    n_substeps: int
    arm_qadr: np.ndarray
    arm_dofadr: np.ndarray
    arm_act: np.ndarray
    grip_act: int
    opening_qadr: int
    opening_dofadr: int
    pinch_site: int
    pad_body: int
    t_pa: tuple[np.ndarray, np.ndarray]
    chain: ik.Chain
    home_qpos: np.ndarray
    workspace: np.ndarray
    arm_bounds: np.ndarray
    down_quat: np.ndarray
    episode_length: int
    switched_off: tuple[str, ...]


def make_scene(env_name: str, backend: str = "jax", og_env=None) -> Scene:
    """Read a ``Scene`` from ogbench's env for ``env_name`` (built here unless ``og_env``,
    an env from ``build_ogbench_env``, is given)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    family, task = parse_name(env_name)
    env = og_env if og_env is not None else build_ogbench_env(env_name)
    u = env.unwrapped
    model = u._model
    off: list[str] = []
    if backend == "jax":
        model, off = jax_variant(model)
    arm_j = np.asarray(u._arm_joint_ids)
    t_pa = u._T_pa
    return Scene(
        name=f"{family}-singletask-task{task}", family=family, task_id=task, backend=backend,
        model=model, n_substeps=int(u._n_steps),
        arm_qadr=np.asarray(model.jnt_qposadr[arm_j]), arm_dofadr=np.asarray(
            model.jnt_dofadr[arm_j]), arm_act=np.asarray(u._arm_actuator_ids),
        grip_act=int(u._gripper_actuator_ids[0]),
        opening_qadr=int(model.jnt_qposadr[u._gripper_opening_joint_id]),
        opening_dofadr=int(model.jnt_dofadr[u._gripper_opening_joint_id]),
        pinch_site=int(u._pinch_site_id), pad_body=int(model.body("ur5e/robotiq/right_pad").id),
        t_pa=(np.asarray(t_pa.rotation().wxyz), np.asarray(t_pa.translation())),
        chain=ik.chain_from_model(u._ik._model, "attachment_site"),
        home_qpos=np.asarray(u._home_qpos), workspace=np.asarray(u._workspace_bounds),
        arm_bounds=np.asarray(u._arm_sampling_bounds),
        down_quat=np.asarray(u._effector_down_rotation.wxyz),
        episode_length=int(env.spec.max_episode_steps), switched_off=tuple(off),
    )
