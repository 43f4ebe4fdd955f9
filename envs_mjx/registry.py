"""Name -> environment constructor. Names follow OGBench (``cube-single-singletask-task1``)."""

from __future__ import annotations

import re

from envs_mjx.core import MjxEnv


def _cube(n_cubes: int, task: str | None) -> MjxEnv:
    from envs_mjx.tasks.cube import CubeEnv

    return CubeEnv(n_cubes=n_cubes, task_id=int(task) if task else 0)


def _lift(task: str | None) -> MjxEnv:
    from envs_mjx.tasks.lift import LiftEnv

    return LiftEnv()


def _reach(task: str | None) -> MjxEnv:
    from envs_mjx.tasks.reach import ReachEnv

    return ReachEnv()


def _puzzle(task: str | None, n: int = 3) -> MjxEnv:
    from envs_mjx.tasks.puzzle import PuzzleEnv

    return PuzzleEnv(task_id=int(task) if task else 0, n=n)


def _can(task: str | None) -> MjxEnv:
    from envs_mjx.tasks.can import CanEnv

    return CanEnv()


def _square(task: str | None) -> MjxEnv:
    from envs_mjx.tasks.square import SquareEnv

    return SquareEnv()


def _ogbench_port(m: re.Match) -> MjxEnv:
    from envs_mjx import ogbench

    return ogbench.make(m.group(1), backend=m.group(2) or "jax")


PORT_PREFIX = "ogbench-mjx/"
"""Names ``ogbench-mjx/<ogbench singletask name>[:jax|:warp]`` build the JAX port of
ogbench's own env (``envs_mjx.ogbench``); they are not in ``ENV_NAMES`` (which names this
project's primitive-shape tasks and is what the trainer's resolver routes to MJX)."""

_PATTERNS = [
    (re.escape(PORT_PREFIX) + r"([a-z0-9-]+?)(?::(jax|warp))?", _ogbench_port),
    (r"square", lambda m: _square(None)),
    (r"can", lambda m: _can(None)),
    (r"puzzle-3x3(?:-singletask-task([1-5]))?", lambda m: _puzzle(m.group(1))),
    (r"puzzle-4x4(?:-singletask-task([1-5]))?", lambda m: _puzzle(m.group(1), 4)),
    (r"cube-single(?:-singletask-task([1-5]))?", lambda m: _cube(1, m.group(1))),
    (r"cube-double(?:-singletask-task([1-5]))?", lambda m: _cube(2, m.group(1))),
    (r"lift", lambda m: _lift(None)),
    (r"reach", lambda m: _reach(None)),
]

ENV_NAMES = (
    [f"cube-single-singletask-task{i}" for i in range(1, 6)]
    + [f"cube-double-singletask-task{i}" for i in range(1, 6)]
    + [f"puzzle-3x3-singletask-task{i}" for i in range(1, 6)]
    + [f"puzzle-4x4-singletask-task{i}" for i in range(1, 6)]
    + ["cube-single", "cube-double", "puzzle-3x3", "puzzle-4x4", "lift", "can", "square",
       "reach"]
)


def port_names() -> tuple[str, ...]:
    """The ``ogbench-mjx/...`` names of the ogbench port (default ``jax`` backend)."""
    from envs_mjx.ogbench import ENV_NAMES as OG

    return tuple(PORT_PREFIX + n for n in OG)


def make(name: str) -> MjxEnv:
    """Build the env called ``name`` (see ``ENV_NAMES``); raises ValueError for unknown names."""
    for pat, ctor in _PATTERNS:
        m = re.fullmatch(pat, name)
        if m:
            return ctor(m)
    raise ValueError(f"unknown env name {name!r}; known: {', '.join(ENV_NAMES)}")
