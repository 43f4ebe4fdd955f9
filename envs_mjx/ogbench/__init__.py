"""JAX/MJX port of ogbench's manipspace singletask envs (cube-*, puzzle-*).

``make(env_name, backend='jax'|'warp')`` builds ogbench's own env once on the host (the MJCF
comes from the installed ``ogbench``), reads its model and constants, and returns an env in
the ``envs_mjx`` contract (pure ``reset(key)`` / ``step(state, action)``). See docs/envs.md,
"OGBench manipspace port".
"""

from __future__ import annotations

from envs_mjx.ogbench.setup import BACKENDS, build_ogbench_env, make_scene, parse_name

__all__ = ["BACKENDS", "ENV_NAMES", "make", "parse_name"]

ENV_NAMES = tuple(
    f"{fam}-singletask-task{i}"
    for fam in ("cube-single", "cube-double", "cube-triple", "cube-quadruple", "puzzle-3x3",
                "puzzle-4x4")
    for i in range(1, 6)
)


def make(env_name: str, backend: str = "jax", og_env=None):
    """The ported env for an ogbench singletask name (``-v0`` suffix optional).

    backend: ``'jax'`` (MJX JAX backend; mesh / cylinder geoms do not collide) or ``'warp'``
    (``mjx.put_model(..., impl='warp')`` on ogbench's unmodified model; needs
    ``pip install mujoco-warp``). ``og_env``: an ogbench env from ``build_ogbench_env`` to
    read from (built here otherwise).
    """
    family, _ = parse_name(env_name)
    og_env = og_env if og_env is not None else build_ogbench_env(env_name)
    scene = make_scene(env_name, backend, og_env)
    if family.startswith("cube"):
        from envs_mjx.ogbench.cube import CubeEnv

        return CubeEnv(scene, og_env)
    from envs_mjx.ogbench.puzzle import PuzzleEnv

    return PuzzleEnv(scene, og_env)
