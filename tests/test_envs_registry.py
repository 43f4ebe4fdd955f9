"""Every registered task: shapes of reset/step (traced with eval_shape, no compile), the
documented observation layout, and a C MuJoCo smoke run of its MJCF (finite, no blow-up)."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from envs_mjx import core, registry, scene

NAMES = ["cube-single-singletask-task2", "cube-double-singletask-task4", "cube-single",
         "puzzle-3x3-singletask-task5", "puzzle-3x3", "lift", "can", "square", "reach"]
OBS = {"cube-single": 19, "cube-double": 29, "puzzle-3x3": 27, "lift": 19, "can": 19,
       "square": 19, "reach": 15}
LENGTH = {"cube-single": 200, "cube-double": 500, "puzzle-3x3": 500, "lift": 200, "can": 300,
          "square": 400, "reach": 50}


@pytest.mark.parametrize("name", NAMES)
def test_task_shapes_layout_and_c_smoke(name):
    env = registry.make(name)
    kind = next(k for k in OBS if name.startswith(k))
    assert env.name == name and env.episode_length == LENGTH[kind]
    st = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    assert st.obs.shape == (OBS[kind],) and st.obs.dtype == jnp.float32
    assert sum(n for _, n in env.obs_layout()) == OBS[kind] == env.observation_size
    nxt = jax.eval_shape(env.step, st, jax.ShapeDtypeStruct((5,), jnp.float32))
    assert nxt.obs.shape == st.obs.shape and nxt.reward.shape == () and nxt.done.dtype == bool
    assert jax.tree.structure(nxt) == jax.tree.structure(st)
    # the same MJCF in C MuJoCo: 100 env steps of random actions stay finite and in bounds
    m = env.mj_model
    assert m.ngeom > 0 and all(t != mujoco.mjtGeom.mjGEOM_MESH for t in m.geom_type)
    assert all(t != mujoco.mjtGeom.mjGEOM_CYLINDER for t in m.geom_type)
    d = mujoco.MjData(m)
    d.qpos[2] = 0.15
    rng = np.random.default_rng(0)
    for _ in range(100):
        d.ctrl[:] = core.action_to_ctrl(d.qpos.copy(), rng.uniform(-1, 1, 5))
        for _ in range(scene.N_SUBSTEPS):
            mujoco.mj_step(m, d)
    assert np.isfinite(d.qpos).all() and np.abs(d.qpos).max() < 5.0


def test_unknown_names_rejected():
    for bad in ["cube-triple", "cube-single-singletask-task6", "puzzle-5x5", "lift2"]:
        with pytest.raises(ValueError, match="unknown env name"):
            registry.make(bad)
