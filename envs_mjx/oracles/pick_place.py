"""Scripted pick-and-place oracle in JAX (phase machine over privileged state).

Multimodal, mixed-quality by construction:

- **strategies** (``STRATEGIES``; the cluster structure of the data): ``direct`` (grasp
  across the cube's x faces, carry in a straight line, low), ``arc-left`` (grasp rotated by
  90 degrees, carry high through a via point left of the straight line) and ``arc-right``
  (x-face grasp, carry through a via point right of the line). For several cubes the
  ordering is an extra random choice (stored as ``order``).
- **tiers** (``TIERS``: better / okay / worse): Gaussian action noise, random hesitation
  pauses, and a per-episode chance of an injected failure.
- **failures** (``FAIL_MODES``): ``drop`` (opens the gripper while carrying and wanders off)
  and ``miss`` (grasps with a large offset, usually missing the cube, then carries on).

Everything is per-env scalar state, so ``jax.vmap`` over envs (and over tiers) works.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs_mjx import core

STRATEGIES = ("direct", "arc-left", "arc-right")
TIERS = ("better", "okay", "worse")
FAIL_MODES = ("none", "drop", "miss")

# per tier: action noise std, hesitation start prob per step, failure prob per episode
TIER_NOISE = np.array([0.05, 0.2, 0.4], np.float32)
TIER_HESITATE = np.array([0.0, 0.03, 0.08], np.float32)
TIER_FAIL = np.array([0.02, 0.12, 0.4], np.float32)
# per strategy: grasp yaw offset (rad), via-point lateral offset (m), carry height (m)
STRAT_YAW = np.array([0.0, np.pi / 2, 0.0], np.float32)
STRAT_VIA = np.array([0.0, 0.12, -0.12], np.float32)
STRAT_CARRY = np.array([0.09, 0.16, 0.13], np.float32)

(APPROACH, DESCEND, GRASP, LIFT, VIA, OVER_GOAL, PLACE, RELEASE, RETREAT, HOLD,
 FAILED) = range(11)
N_PHASES = 11
HOVER = 0.07
GAIN = 0.8


@struct.dataclass
class OracleState:
    """Per-episode oracle state (vmapped: leading axis N on every field)."""

    phase: jax.Array  # () int32
    k: jax.Array  # () int32, index into ``order`` of the cube being handled
    counter: jax.Array  # () int32, steps spent in timed phases
    pause: jax.Array  # () int32, hesitation steps left
    order: jax.Array  # (n_cubes,) int32
    start_xy: jax.Array  # (n_cubes, 2) cube positions at reset (for via points)
    strategy: jax.Array  # () int32
    tier: jax.Array  # () int32
    fail_mode: jax.Array  # () int32
    wander: jax.Array  # (3,) target used after a drop failure


def _wrap(a: jax.Array) -> jax.Array:
    return (a + jnp.pi) % (2 * jnp.pi) - jnp.pi


def init(env, state: core.State, key: jax.Array, tier: jax.Array,
         strategy: jax.Array | None = None) -> OracleState:
    """Sample strategy (uniform unless given), ordering, failure mode for one episode."""
    k_strat, k_order, k_fail, k_mode, k_wander = jax.random.split(key, 5)
    n = env.n_objects
    tier = jnp.asarray(tier, jnp.int32)
    if strategy is None:
        strategy = jax.random.randint(k_strat, (), 0, len(STRATEGIES))
    fails = jax.random.uniform(k_fail) < jnp.asarray(TIER_FAIL)[tier]
    mode = jnp.where(fails, jax.random.randint(k_mode, (), 1, len(FAIL_MODES)), 0)
    start = jnp.stack([env.object_pos(state.data, i)[:2] for i in range(n)])
    wander = jax.random.uniform(k_wander, (3,), minval=jnp.array([-0.25, -0.25, 0.1]),
                                maxval=jnp.array([0.25, 0.25, 0.25]))
    return OracleState(
        phase=jnp.zeros((), jnp.int32), k=jnp.zeros((), jnp.int32),
        counter=jnp.zeros((), jnp.int32), pause=jnp.zeros((), jnp.int32),
        order=jax.random.permutation(k_order, n).astype(jnp.int32), start_xy=start,
        strategy=jnp.asarray(strategy, jnp.int32), tier=tier, fail_mode=mode.astype(jnp.int32),
        wander=wander,
    )


def _targets(env, os: OracleState, state: core.State, lift_only: bool):
    """Target ee position (3,), yaw (), gripper (), and the phase-completion flag."""
    q = state.data.qpos
    ee, yaw = q[:3], q[3]
    i = os.order[jnp.minimum(os.k, env.n_objects - 1)]
    poss = jnp.stack([env.object_pos(state.data, j) for j in range(env.n_objects)])
    quats = jnp.stack([env.object_quat(state.data, j) for j in range(env.n_objects)])
    p, cyaw = poss[i], core.yaw_from_quat(quats[i])
    goal = state.info["goal"][i]
    carry = jnp.asarray(STRAT_CARRY)[os.strategy] + env.oracle_carry_extra
    # grasp yaw: object yaw + strategy offset, folded by the object's grasp symmetry
    sym = env.oracle_grasp_symmetry
    gyaw = cyaw + jnp.asarray(STRAT_YAW)[os.strategy]
    gyaw = gyaw - jnp.round((gyaw - jnp.asarray(STRAT_YAW)[os.strategy]) / sym) * sym
    # grasp point in the object frame (a handle for the nut), rotated by the object yaw
    c, s_ = jnp.cos(cyaw), jnp.sin(cyaw)
    off_obj = jnp.asarray(env.oracle_grasp_offset, jnp.float32)
    off = jnp.array([c * off_obj[0] - s_ * off_obj[1], s_ * off_obj[0] + c * off_obj[1],
                     off_obj[2]])
    miss = jnp.where(os.fail_mode == 2, 0.035, 0.0)
    grasp = p + off + jnp.array([miss, 0.0, 0.0]) * jnp.array([c, s_, 0.0])
    d = goal[:2] - os.start_xy[i]
    perp = jnp.array([-d[1], d[0]]) / (jnp.linalg.norm(d) + 1e-6)
    via_xy = 0.5 * (os.start_xy[i] + goal[:2]) + perp * jnp.asarray(STRAT_VIA)[os.strategy]

    # where the ee must go for the object to reach the goal: from the nominal grasp offset,
    # or (``oracle_object_relative``) from the held object's measured position
    place = goal + off
    if env.oracle_object_relative:
        held = jnp.linalg.norm(p + off - ee) < 0.03  # else (missed / dropped): nominal goal
        place = jnp.where(held, ee + goal - p, place)

    tab = jnp.stack([
        jnp.concatenate([grasp[:2], grasp[2:] + HOVER]),  # APPROACH
        grasp,  # DESCEND
        grasp,  # GRASP
        jnp.concatenate([ee[:2], carry[None]]),  # LIFT
        jnp.concatenate([via_xy, carry[None]]),  # VIA
        jnp.concatenate([place[:2], carry[None]]),  # OVER_GOAL
        place + jnp.array([0.0, 0.0, 0.005]),  # PLACE
        ee,  # RELEASE
        jnp.concatenate([ee[:2], goal[2:] + HOVER]),  # RETREAT
        ee,  # HOLD
        os.wander,  # FAILED
    ])
    target = tab[os.phase]
    err = target - ee
    xy_ok = jnp.linalg.norm(err[:2]) < 0.012
    place_ok = jnp.linalg.norm(err[:2]) < env.oracle_place_tol
    near = jnp.linalg.norm(err) < 0.012
    yaw_ok = jnp.abs(_wrap(gyaw - yaw)) < 0.1
    done_tab = jnp.stack([
        xy_ok & (jnp.abs(err[2]) < 0.02) & yaw_ok,
        near,
        os.counter >= 4,
        err[2] < 0.015,
        jnp.linalg.norm(err[:2]) < 0.03,
        place_ok,
        near,
        os.counter >= 3,
        err[2] < 0.015,
        jnp.zeros((), bool),
        jnp.zeros((), bool),
    ])
    grip = jnp.where((os.phase >= GRASP) & (os.phase <= PLACE), 1.0, -1.0)
    if lift_only:
        grip = jnp.where(os.phase >= GRASP, 1.0, -1.0)
        grip = jnp.where(os.phase == FAILED, -1.0, grip)
    yaw_target = jnp.where(os.phase <= GRASP, gyaw, yaw)
    return target, yaw_target, grip, done_tab[os.phase]


def act(env, os: OracleState, state: core.State,
        key: jax.Array) -> tuple[jax.Array, OracleState]:
    """One (5,) action in [-1, 1] and the advanced oracle state (``env.oracle_lift_only``
    selects the lift variant: stop after lifting the first cube and hold)."""
    lift_only = env.oracle_lift_only
    k_noise, k_hes, k_len, k_drop = jax.random.split(key, 4)
    target, yaw_t, grip, done = _targets(env, os, state, lift_only)
    q = state.data.qpos
    move = jnp.clip(GAIN * (target - q[:3]) / core.POS_SCALE, -1.0, 1.0)
    turn = jnp.clip(_wrap(yaw_t - q[3]) / core.YAW_SCALE, -1.0, 1.0)
    paused = os.pause > 0
    move = jnp.where(paused, 0.0, move)
    turn = jnp.where(paused, 0.0, turn)
    action = jnp.concatenate([move, turn[None], grip[None]])
    noise = jax.random.normal(k_noise, (5,)) * jnp.asarray(TIER_NOISE)[os.tier]
    action = jnp.clip(action + noise.at[4].multiply(0.3), -1.0, 1.0)

    # phase machine
    advance = done & ~paused
    nxt = os.phase + 1
    if lift_only:
        nxt = jnp.where(os.phase == LIFT, HOLD, nxt)
    more = os.k + 1 < env.n_objects
    nxt = jnp.where((os.phase == RETREAT) & more, APPROACH, nxt)
    k = jnp.where(advance & (os.phase == RETREAT) & more, os.k + 1, os.k)
    phase = jnp.where(advance & (os.phase < HOLD), nxt, os.phase)
    carrying = (os.phase == VIA) | (os.phase == OVER_GOAL) | (lift_only & (os.phase == HOLD))
    drop = (os.fail_mode == 1) & carrying & (jax.random.uniform(k_drop) < 0.15)
    phase = jnp.where(drop | (os.phase == FAILED), FAILED, phase)
    counter = jnp.where(phase == os.phase, os.counter + 1, 0)
    start_pause = jax.random.uniform(k_hes) < jnp.asarray(TIER_HESITATE)[os.tier]
    pause = jnp.where(paused, os.pause - 1,
                      jnp.where(start_pause, jax.random.randint(k_len, (), 2, 9), 0))
    return action, os.replace(phase=phase.astype(jnp.int32), k=k.astype(jnp.int32),
                              counter=counter.astype(jnp.int32), pause=pause.astype(jnp.int32))
