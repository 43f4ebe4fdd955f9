"""Slow envs tests (deselected by default; run with ``pytest -m slow tests/test_envs_slow.py``):
cube-double, can and square oracle tiers on 64 episodes each, MJX-vs-C parity for
cube-double, puzzle-3x3, can and square (cube-single's parity runs in the default suite)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs_mjx import generate, parity
from envs_mjx.oracles.pick_place import TIERS
from envs_mjx.tasks.puzzle import PRESS_DOWN, RELEASE_UP, TOGGLE

pytestmark = pytest.mark.slow


# documented minimum success of the okay tier (square is a precision task: lower)
OKAY_MIN = {"cube-double-singletask-task1": 0.7, "can": 0.7, "square": 0.4}


@pytest.mark.parametrize("name", list(OKAY_MIN))
def test_oracle_tiers(name):
    eps, env = generate.generate_episodes(name, 192, seed=0, batch=96, progress=False)
    succ = np.array([e["success"].any() for e in eps])
    tier = np.array([e["tier"] for e in eps])
    rate = {t: succ[tier == k].mean() for k, t in enumerate(TIERS)}
    assert rate["better"] >= 0.9 and rate["okay"] >= OKAY_MIN[name], rate
    assert rate["worse"] <= rate["better"] - 0.2, rate
    allowed = {-2.0, -1.0, 0.0} if name.startswith("cube") else {0.0, 1.0}
    for e in eps:
        assert set(np.unique(e["rewards"])) <= allowed


# square: the nut sliding down around the peg is a contact-rich event where float32 MJX and
# float64 C MuJoCo drift apart by up to ~3e-2 (quaternion units) before settling
QPOS_ATOL = {"square": 5e-2}


def _oracle_actions(name: str, n_eps: int = 96):
    base, _, rollout = generate.get_rollout(name)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(0), i))(jnp.arange(n_eps))
    return base, rollout(keys, jnp.zeros(n_eps, jnp.int32))


@pytest.mark.parametrize("name", ["cube-double-singletask-task1", "puzzle-3x3-singletask-task3",
                                  "can", "square"])
def test_mjx_matches_c_mujoco(name):
    """Open-loop 150 steps from an oracle episode's start with its actions (then holding):
    qpos within 5e-3 (square 5e-2) and identical success flags (puzzle: lights replayed from
    C states)."""
    base, eps = _oracle_actions(name)
    run = parity.make_mjx_rollout(base)
    state0 = jax.jit(base.reset)(jax.random.PRNGKey(0))
    succ = np.asarray(eps.success).any(1)
    for i in np.flatnonzero(succ)[:2]:  # two successful better-tier episodes
        n = int(eps.length[i])
        hold = np.zeros((max(0, 150 - n), 5))
        hold[:, 4] = 1 if name.startswith("puzzle") else -1
        actions = np.concatenate([np.asarray(eps.actions[i, :n]), hold])[:150]
        st = parity.with_state(base, state0, eps.qpos[i, 0], eps.qvel[i, 0])
        qpos_j, _, _, succ_j = map(np.asarray, run(st, jnp.asarray(actions, jnp.float32)))
        qpos_c, _ = parity.c_rollout(base, np.asarray(eps.qpos[i, 0], np.float64),
                                     np.asarray(eps.qvel[i, 0], np.float64), actions)
        np.testing.assert_allclose(qpos_j, qpos_c, atol=QPOS_ATOL.get(name, 5e-3),
                                   err_msg=f"{name} episode {i}")
        if name.startswith("puzzle"):
            lights = np.asarray(state0.info["lights"]).astype(int)
            pressed = np.zeros(9, bool)
            succ_c = []
            for q in qpos_c[:, 6:15]:
                now = np.where(pressed, q < RELEASE_UP, q < PRESS_DOWN)
                lights = (lights + (now & ~pressed).astype(int) @ TOGGLE) % 2
                pressed = now
                succ_c.append(lights.sum() == 0)
            np.testing.assert_array_equal(succ_j, succ_c)
        assert succ_j.any()
