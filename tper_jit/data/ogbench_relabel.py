"""OGBench singletask relabelling: rewards, masks and success flags for one fixed task.

OGBench datasets carry no rewards.  ``<env>-singletask[-taskK]-v0`` variants get them from the
state: the environment's task K fixes targets (cube goal positions, button states, drawer and
window positions, a maze goal), and each row is scored from the dataset's ``qpos`` (and
``button_states``) of its *observation* ``s_t`` — exactly what
``ogbench.relabel_utils.relabel_dataset`` computes (ogbench 1.2.2):

- manipulation (cube / scene / puzzle): per-subtask successes ``ok_j`` (cube j within 0.04 of
  its target; button j in its target state; drawer/window within 0.04 of the target),
  ``reward = Σ_j ok_j − n_subtasks`` (0 when solved, otherwise negative),
  ``mask = 1 − all_j ok_j``;
- locomotion (maze / soccer): ``ok = ‖xy − goal‖ ≤ goal_tol``, ``reward = ok − 1``,
  ``mask = 1 − ok``.

The success flag is ``1 − mask`` (the whole task solved).  The targets need the environment:
``singletask_targets(env)`` resets the given ogbench env (as ``relabel_dataset`` does) and copies
them into a small ``SingletaskTargets`` record; ``make_singletask_targets(env_name)`` builds the
ogbench env on CPU MuJoCo for that (about a second) and closes it.  ``relabel`` itself is pure
numpy, so a directory of shards is relabelled with one set of targets.  For the manipulation
suites the targets are deterministic (singletask envs do not permute blocks); for mazes ogbench
may add noise to the goal at reset, so pass the very env whose reset you want to reproduce.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

# qpos layout of the manipspace scenes (ogbench.relabel_utils): 14 arm/gripper entries, then a
# free joint (xyz + quaternion) per cube, then buttons, drawer, window.
QPOS_OBJ_START = 14
QPOS_CUBE_LEN = 7
QPOS_MAZE_XY = 0
QPOS_SOCCER_BALL_XY = 15
MANIP_TOL = 0.04


@dataclasses.dataclass(frozen=True)
class OGBenchName:
    """An OGBench environment name, split the way ``ogbench.make_env_and_datasets`` splits it.

    Attributes:
        name: the name as given, e.g. ``cube-double-play-singletask-task2-v0``.
        env_id: the gymnasium id of the environment (``cube-double-singletask-task2-v0``).
        dataset_name: the dataset file stem (``cube-double-play-v0``).
        singletask: whether rewards are relabelled for a fixed task.
        task_id: K of ``-taskK`` (1..5); ``None`` for the env's default task or no task.
    """

    name: str
    env_id: str
    dataset_name: str
    singletask: bool
    task_id: int | None


def parse_ogbench_env_name(name: str) -> OGBenchName:
    """Split ``<suite>-<dataset type>[-singletask[-taskK]]-v<k>`` (see ``OGBenchName``)."""
    splits = name.split("-")
    if len(splits) < 3 or not re.fullmatch(r"v\d+", splits[-1]):
        raise ValueError(f"{name!r} is not an OGBench dataset name like "
                         "'cube-double-play-singletask-task2-v0'")
    if "singletask" in splits:
        pos = splits.index("singletask")
        if pos < 2:
            raise ValueError(f"{name!r}: expected '<env>-<dataset type>-singletask...'")
        env_id = "-".join(splits[:pos - 1] + splits[pos:])
        dataset_name = "-".join(splits[:pos] + splits[-1:])
        m = re.fullmatch(r"task(\d+)", splits[-2])
        task_id = int(m.group(1)) if m else None
        return OGBenchName(name, env_id, dataset_name, True, task_id)
    env_id = "-".join(splits[:-2] + splits[-1:])
    return OGBenchName(name, env_id, name, False, None)


@dataclasses.dataclass(frozen=True)
class SingletaskTargets:
    """The targets of one task, copied out of a reset ogbench env.

    Attributes:
        family: ``"cube"``, ``"scene"``, ``"puzzle"``, ``"maze"`` or ``"soccer"``.
        cube_xyzs: ``(n_cubes, 3)`` target cube positions (cube, scene).
        button_states: ``(n_buttons,)`` target button states (scene, puzzle).
        drawer_pos, window_pos: target joint positions (scene).
        num_cubes, num_buttons: counts that fix the qpos layout (scene).
        goal_xy: ``(2,)`` goal and ``goal_tol`` its radius (maze, soccer).
    """

    family: str
    cube_xyzs: np.ndarray | None = None
    button_states: np.ndarray | None = None
    drawer_pos: float | None = None
    window_pos: float | None = None
    num_cubes: int = 0
    num_buttons: int = 0
    goal_xy: np.ndarray | None = None
    goal_tol: float | None = None

    @property
    def needs_button_states(self) -> bool:
        return self.family in ("scene", "puzzle")


def env_family(env_name: str) -> str:
    """Which relabelling rule applies, with ogbench's own substring tests and order."""
    for fam in ("maze", "soccer", "cube", "scene", "puzzle"):
        if fam in env_name:
            return fam
    raise ValueError(f"{env_name!r}: no singletask relabelling (not maze/soccer/cube/scene/puzzle)")


def singletask_targets(env_name: str, env) -> SingletaskTargets:
    """Reset ``env`` (an ogbench singletask env) and copy its task targets.

    Args:
        env_name: the env id (``OGBenchName.env_id``) or full name; picks the family.
        env: the ogbench environment, e.g. ``gymnasium.make('cube-double-singletask-task2-v0')``.
    """
    u = env.unwrapped
    if getattr(u, "_reward_task_id", None) is None:
        raise ValueError(f"{env_name!r}: the environment is not in single-task mode")
    env.reset()  # sets the task, as ogbench.relabel_utils.relabel_dataset does
    fam = env_family(env_name)
    if fam in ("maze", "soccer"):
        return SingletaskTargets(fam, goal_xy=np.array(u.cur_goal_xy, np.float64),
                                 goal_tol=float(u._goal_tol))
    if fam == "cube":
        return SingletaskTargets(fam, cube_xyzs=np.array(u._data.mocap_pos, np.float64),
                                 num_cubes=int(u._num_cubes))
    if fam == "scene":
        return SingletaskTargets(fam, cube_xyzs=np.array(u._data.mocap_pos, np.float64),
                                 button_states=np.array(u._target_button_states),
                                 drawer_pos=float(u._target_drawer_pos),
                                 window_pos=float(u._target_window_pos),
                                 num_cubes=int(u._num_cubes), num_buttons=int(u._num_buttons))
    return SingletaskTargets(fam, button_states=np.array(u._target_button_states),
                             num_buttons=int(u._num_buttons))


def make_singletask_targets(env_name: str) -> SingletaskTargets:
    """Build the ogbench singletask env for ``env_name`` on CPU MuJoCo, read its targets, close it.

    ``env_name`` may be the dataset-style name (``cube-double-play-singletask-task2-v0``) or the
    env id (``cube-double-singletask-task2-v0``).
    """
    import gymnasium
    import ogbench  # noqa: F401  (registers the ogbench envs with gymnasium)

    if env_name in gymnasium.envs.registry:
        env_id = env_name
    else:
        parsed = parse_ogbench_env_name(env_name)
        if not parsed.singletask:
            raise ValueError(f"{env_name!r} is not a singletask OGBench name")
        env_id = parsed.env_id
        if env_id not in gymnasium.envs.registry:
            raise ValueError(f"{env_name!r}: ogbench has no environment {env_id!r}")
    env = gymnasium.make(env_id)
    try:
        return singletask_targets(env_id, env)
    finally:
        env.close()


def _cube_xyzs(qpos: np.ndarray, num_cubes: int) -> np.ndarray:
    """``(N, n_cubes, 3)`` cube positions from ``(N, nq)`` qpos."""
    idx = [QPOS_OBJ_START + i * QPOS_CUBE_LEN + j for i in range(num_cubes) for j in range(3)]
    return qpos[:, idx].reshape(len(qpos), num_cubes, 3)


def relabel(targets: SingletaskTargets, qpos: np.ndarray,
            button_states: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewards, masks and success flags of rows with observation states ``qpos``.

    Args:
        targets: from ``singletask_targets`` / ``make_singletask_targets``.
        qpos: ``(N, nq)`` the MuJoCo qpos of each row's observation.
        button_states: ``(N, n_buttons)``, needed for scene and puzzle.

    Returns:
        ``(rewards, masks, successes)``, each ``(N,)`` float32; see the module docstring.
    """
    fam = targets.family
    if fam in ("maze", "soccer"):
        start = QPOS_MAZE_XY if fam == "maze" else QPOS_SOCCER_BALL_XY
        dists = np.linalg.norm(qpos[:, start:start + 2] - targets.goal_xy, axis=-1)
        ok = (dists <= targets.goal_tol).astype(np.float32)
        return ok - 1.0, 1.0 - ok, ok
    if targets.needs_button_states and button_states is None:
        raise ValueError(f"singletask relabelling of {fam!r} needs `button_states`")
    if fam == "cube":
        oks = np.linalg.norm(targets.cube_xyzs - _cube_xyzs(qpos, targets.num_cubes),
                             axis=-1) <= MANIP_TOL
    elif fam == "scene":
        drawer = QPOS_OBJ_START + targets.num_cubes * QPOS_CUBE_LEN + targets.num_buttons
        window = drawer + 1
        cube_ok = np.linalg.norm(targets.cube_xyzs - _cube_xyzs(qpos, targets.num_cubes),
                                 axis=-1) <= MANIP_TOL
        button_ok = button_states == targets.button_states
        drawer_ok = np.abs(qpos[:, drawer] - targets.drawer_pos) <= MANIP_TOL
        window_ok = np.abs(qpos[:, window] - targets.window_pos) <= MANIP_TOL
        oks = np.concatenate([cube_ok, button_ok, drawer_ok[:, None], window_ok[:, None]], -1)
    else:  # puzzle
        oks = button_states == targets.button_states
    rewards = (oks.sum(axis=-1) - oks.shape[-1]).astype(np.float32)
    solved = np.all(oks, axis=-1).astype(np.float32)
    return rewards, 1.0 - solved, solved
