"""Scripted oracle for ``reach``: fly the end-effector to the goal, by one of three routes.

- **strategies** (the cluster structure of the data): ``direct`` (a straight line),
  ``over`` (up to ``OVER_Z`` first, then across and down) and ``side`` (through a via point
  ``SIDE_OFFSET`` m to the left of the straight line, at mid height).
- **tiers**: the pick-and-place oracle's noise, hesitation and failure rates per tier.
- **failures** (``FAIL_MODES``): ``drift`` (heads for a random point instead of the goal) and
  ``short`` (stops ``SHORT_GAP`` m before the goal and holds).

Everything is per-env scalar state, so ``jax.vmap`` over envs (and over tiers) works.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from envs_mjx import core
from envs_mjx.oracles.pick_place import TIER_FAIL, TIER_HESITATE, TIER_NOISE, TIERS

STRATEGIES = ("direct", "over", "side")
FAIL_MODES = ("none", "drift", "short")
__all__ = ["STRATEGIES", "TIERS", "FAIL_MODES", "OracleState", "init", "act"]

VIA, GOAL, FAILED = range(3)
OVER_Z = 0.28
SIDE_OFFSET = 0.1
SHORT_GAP = 0.05
GAIN = 0.8
VIA_TOL = 0.02  # m: the via point counts as reached


@struct.dataclass
class OracleState:
    """Per-episode state (leading axis N under vmap)."""

    phase: jax.Array  # () int32: VIA, GOAL or FAILED
    pause: jax.Array  # () int32, hesitation steps left
    via: jax.Array  # (3,) via point of the strategy
    target: jax.Array  # (3,) final target: the goal, or the failure's point
    strategy: jax.Array  # () int32
    tier: jax.Array  # () int32
    fail_mode: jax.Array  # () int32


def init(env, state: core.State, key: jax.Array, tier: jax.Array,
         strategy: jax.Array | None = None) -> OracleState:
    """Sample the strategy (uniform unless given) and the failure mode of one episode."""
    k_strat, k_fail, k_mode, k_drift = jax.random.split(key, 4)
    tier = jnp.asarray(tier, jnp.int32)
    if strategy is None:
        strategy = jax.random.randint(k_strat, (), 0, len(STRATEGIES))
    strategy = jnp.asarray(strategy, jnp.int32)
    fails = jax.random.uniform(k_fail) < jnp.asarray(TIER_FAIL)[tier]
    mode = jnp.where(fails, jax.random.randint(k_mode, (), 1, len(FAIL_MODES)), 0)
    ee, goal = state.data.qpos[:3], state.info["goal"]
    d = goal[:2] - ee[:2]
    left = jnp.array([-d[1], d[0]]) / (jnp.linalg.norm(d) + 1e-6)
    mid = 0.5 * (ee + goal)
    via = jnp.stack([
        ee,  # direct: already there
        jnp.concatenate([ee[:2], jnp.array([OVER_Z])]),
        jnp.concatenate([mid[:2] + SIDE_OFFSET * left, mid[2:]]),
    ])[strategy]
    drift = jax.random.uniform(k_drift, (3,), minval=jnp.array([-0.25, -0.25, 0.05]),
                               maxval=jnp.array([0.25, 0.25, 0.3]))
    to_goal = goal - via
    short = goal - SHORT_GAP * to_goal / (jnp.linalg.norm(to_goal) + 1e-6)
    target = jnp.stack([goal, drift, short])[mode]
    return OracleState(phase=jnp.zeros((), jnp.int32), pause=jnp.zeros((), jnp.int32),
                       via=via, target=target, strategy=strategy, tier=tier,
                       fail_mode=mode.astype(jnp.int32))


def act(env, os: OracleState, state: core.State,
        key: jax.Array) -> tuple[jax.Array, OracleState]:
    """One (5,) action in [-1, 1] (gripper open, yaw held) and the advanced oracle state."""
    k_noise, k_hes, k_len = jax.random.split(key, 3)
    ee = state.data.qpos[:3]
    aim = jnp.where(os.phase == VIA, os.via, os.target)
    move = jnp.clip(GAIN * (aim - ee) / core.POS_SCALE, -1.0, 1.0)
    paused = os.pause > 0
    move = jnp.where(paused, 0.0, move)
    action = jnp.concatenate([move, jnp.zeros(1), -jnp.ones(1)])
    noise = jax.random.normal(k_noise, (5,)) * jnp.asarray(TIER_NOISE)[os.tier]
    action = jnp.clip(action + noise.at[4].multiply(0.3), -1.0, 1.0)
    reached = jnp.linalg.norm(os.via - ee) < VIA_TOL
    phase = jnp.where((os.phase == VIA) & reached & ~paused, GOAL, os.phase)
    phase = jnp.where((phase == GOAL) & (os.fail_mode > 0), FAILED, phase)
    start_pause = jax.random.uniform(k_hes) < jnp.asarray(TIER_HESITATE)[os.tier]
    pause = jnp.where(paused, os.pause - 1,
                      jnp.where(start_pause, jax.random.randint(k_len, (), 2, 9), 0))
    return action, os.replace(phase=phase.astype(jnp.int32), pause=pause.astype(jnp.int32))
