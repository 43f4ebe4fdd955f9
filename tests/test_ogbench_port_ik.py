"""ogbench port, no physics: IK, control law, observation, reward and success against
ogbench's own code on states recorded from ogbench's C MuJoCo env (oracle-driven), plus
the reset distribution. Compiles only small programs (IK, reset)."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from ogbench.manipspace import lie as og_lie

from envs_mjx import ogbench as port
from envs_mjx.ogbench import env as penv
from envs_mjx.ogbench import ik, oracles

NAME = "cube-single-singletask-task1"


@pytest.fixture(scope="module")
def og():
    return port.build_ogbench_env(NAME)


@pytest.fixture(scope="module")
def env(og):
    return port.make(NAME, "jax", og)


@pytest.fixture(scope="module")
def recorded(og, env):
    """80 oracle steps of ogbench's env: per step the pre-step data, the action, and the
    post-step data / observation / reward / success (ogbench's values)."""
    u = og.unwrapped
    ob, info = og.reset(seed=3)
    drv = oracles.Driver("cube", og, 3)
    rows = []
    for _ in range(80):
        d = u._data
        pre = dict(qpos=d.qpos.copy(), xpos=d.site_xpos[u._pinch_site_id].copy(),
                   xmat=d.site_xmat[u._pinch_site_id].copy(), ctrl=d.ctrl.copy())
        a = drv.act(oracles.og_view(env, og))
        ob, r, term, trunc, info = og.step(a)
        rows.append(dict(pre=pre, action=a, ctrl=d.ctrl.copy(), qpos=d.qpos.copy(),
                         qvel=d.qvel.copy(), xpos=d.site_xpos[u._pinch_site_id].copy(),
                         xmat=d.site_xmat[u._pinch_site_id].copy(),
                         cfrc=d.cfrc_ext[env.scene.pad_body].copy(), ob=ob.copy(),
                         succ=np.array(u._compute_successes()), reward=u.compute_reward()))
    return rows


def test_forward_kinematics_and_jacobian_match_mujoco(og):
    ikm = og.unwrapped._ik._model
    chain = ik.chain_from_model(ikm, "attachment_site")
    d = mujoco.MjData(ikm)
    sid = ikm.site("attachment_site").id
    fk = jax.jit(lambda q: ik.forward_kinematics(chain, q))
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(-3, 3, 6)
        d.qpos[:] = q
        mujoco.mj_kinematics(ikm, d)
        mujoco.mj_comPos(ikm, d)
        jp, jr = np.zeros((3, 6)), np.zeros((3, 6))
        mujoco.mj_jacSite(ikm, d, jp, jr, sid)
        p, quat, anchors, axes = fk(jnp.asarray(q, jnp.float32))
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, np.asarray(quat, np.float64))
        np.testing.assert_allclose(p, d.site_xpos[sid], atol=2e-6)
        np.testing.assert_allclose(mat, d.site_xmat[sid], atol=2e-6)
        np.testing.assert_allclose(ik.site_jacobian(p, anchors, axes), np.vstack([jp, jr]),
                                   atol=2e-6)


def test_chain_matches_full_scene(og, env):
    """The arm-only IK model's attachment site is where the full scene puts it."""
    u = og.unwrapped
    m, d = u._model, u._data
    p, quat, _, _ = ik.forward_kinematics(env.scene.chain,
                                          jnp.asarray(d.qpos[env.scene.arm_qadr], jnp.float32))
    np.testing.assert_allclose(p, d.site_xpos[m.site("ur5e/attachment_site").id], atol=2e-6)


@pytest.mark.parametrize("far", [False, True])
def test_ik_matches_ogbench(og, env, far):
    """Reachable targets (converge, early stop) and far ones (20 iterations, step cap)."""
    u = og.unwrapped
    rng = np.random.default_rng(1 + far)
    solve = jax.jit(lambda pos, quat, q0: ik.solve(env.scene.chain, pos, quat, q0))
    for _ in range(6):
        lo, hi = (([0.25, -0.35, 0.2], [0.6, 0.35, 0.35]) if not far
                  else ([0.9, -1.0, 0.6], [1.2, 1.0, 1.0]))
        pos = rng.uniform(lo, hi)
        ori = og_lie.SO3.from_z_radians(rng.uniform(-np.pi, np.pi)) @ u._effector_down_rotation
        t = og_lie.SE3.from_rotation_and_translation(ori, pos) @ u._T_pa
        q0 = u._home_qpos + rng.normal(0, 0.3, 6)
        want = u._ik.solve(pos=t.translation(), quat=t.rotation().wxyz, curr_qpos=q0)
        got = solve(jnp.asarray(t.translation(), jnp.float32),
                    jnp.asarray(t.rotation().wxyz, jnp.float32), jnp.asarray(q0, jnp.float32))
        np.testing.assert_allclose(got, want, atol=(2e-4 if far else 2e-5))


def test_control_matches_ogbench(env, recorded):
    fn = jax.jit(lambda q, x, m, c, a: penv.control(env.scene, q, x, m, c, a))
    for row in recorded[::4]:
        pre = row["pre"]
        got = fn(*(jnp.asarray(pre[k], jnp.float32) for k in ("qpos", "xpos", "xmat", "ctrl")),
                 jnp.asarray(row["action"], jnp.float32))
        np.testing.assert_allclose(got, row["ctrl"], atol=1e-4)


def test_observation_reward_success_match_ogbench(env, recorded):
    s = env.scene

    @jax.jit
    def fn(qpos, qvel, xpos, xmat, cfrc, goal):
        data = env._data0.replace(qpos=qpos)
        info = {"goal": goal}
        obs = jnp.concatenate([penv.arm_obs(s, qpos, qvel, xpos, xmat, cfrc),
                               env._object_obs(data, info)])
        return obs, env._successes(data, info), env._reward(data, info)

    goal = jnp.asarray(env.goal_xyzs)
    contacts = []
    for row in recorded:
        obs, succ, rew = fn(*(jnp.asarray(row[k], jnp.float32)
                              for k in ("qpos", "qvel", "xpos", "xmat", "cfrc")), goal)
        np.testing.assert_allclose(obs, row["ob"], atol=2e-5)
        np.testing.assert_array_equal(succ, row["succ"])
        assert float(rew) == row["reward"]
        contacts.append(row["ob"][18])
    assert max(contacts) > 0.1, "the recorded oracle run never touched the cube"


def test_reset_distribution(og, env):
    """Arm start: pinch in the sampling box, pointing down, joints = ogbench's IK of that
    pose from home; cube at the task start ± 1 cm, on the table; goal = the task goal."""
    u = og.unwrapped
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 16))
    obs = np.asarray(states.obs)
    assert obs.shape == (16, 28) and np.isfinite(obs).all()
    pinch = obs[:, 12:15] / 10 + np.array([0.425, 0, 0])
    lo, hi = env.scene.arm_bounds
    assert (pinch >= lo - 1e-4).all() and (pinch <= hi + 1e-4).all()
    cube = obs[:, 19:22] / 10 + np.array([0.425, 0, 0])
    init = u.task_infos[0]["init_xyzs"][0]
    assert (np.abs(cube[:, :2] - init[:2]) <= 0.01 + 1e-6).all()
    np.testing.assert_allclose(cube[:, 2], 0.02, atol=1e-6)
    assert np.ptp(cube[:, 0]) > 0.005  # noise is really drawn
    goal = np.broadcast_to(u.task_infos[0]["goal_xyzs"][0], (16, 3))
    np.testing.assert_allclose(states.info["goal"][:, 0, :], goal, atol=1e-6)
    for i in range(4):
        yaw = np.arctan2(obs[i, 16], obs[i, 15])
        ori = og_lie.SO3.from_z_radians(yaw) @ u._effector_down_rotation
        t = og_lie.SE3.from_rotation_and_translation(ori, pinch[i].astype(np.float64)) @ u._T_pa
        want = u._ik.solve(pos=t.translation(), quat=t.rotation().wxyz, curr_qpos=u._home_qpos)
        np.testing.assert_allclose(obs[i, :6], want, atol=1e-3)
    assert not np.asarray(states.success).any() and (np.asarray(states.reward) == 0).all()


def test_registry_names():
    """The port is reachable by ``ogbench-mjx/<name>`` and does not change what the
    existing names build."""
    from envs_mjx import registry
    from envs_mjx.ogbench.cube import CubeEnv
    from envs_mjx.tasks.cube import CubeEnv as PrimitiveCube

    env = registry.make("ogbench-mjx/cube-single-singletask-task2")
    assert isinstance(env, CubeEnv) and env.scene.backend == "jax" and env.scene.task_id == 2
    assert isinstance(registry.make("cube-single-singletask-task2"), PrimitiveCube)
    assert not any(n.startswith(registry.PORT_PREFIX) for n in registry.ENV_NAMES)
    assert "ogbench-mjx/puzzle-3x3-singletask-task1" in registry.port_names()
    with pytest.raises(ValueError):
        port.parse_name("cube-sextuple-singletask-task1")
