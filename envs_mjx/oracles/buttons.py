"""Scripted lights-out oracle in JAX for ``puzzle-3x3`` and ``puzzle-4x4``.

At reset it solves the puzzle over GF(2) (``presses = (start xor goal) @ env.toggle_inv``, a
true inverse for 3x3, Gaussian elimination with free variables 0 for the singular 4x4), then
takes the minimum-weight solution over the toggle matrix's null space, and presses the
needed buttons one by one (above -> press -> up) with the gripper closed.

- **strategies** (press ordering): ``row-major``, ``column-major``, ``reverse`` (row-major
  backwards) — distinct gripper paths over the same buttons;
- **tiers** better / okay / worse: the same noise / hesitation / failure probabilities as
  the pick-and-place oracle (``pick_place.TIER_*``);
- **failures**: ``skip`` (leaves out the last needed press) and ``extra`` (also presses the
  first unneeded button); both end in a wrong pattern.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from envs_mjx import core
from envs_mjx.oracles.pick_place import TIER_FAIL, TIER_HESITATE, TIER_NOISE, TIERS

STRATEGIES = ("row-major", "column-major", "reverse")
FAIL_MODES = ("none", "skip", "extra")
__all__ = ["STRATEGIES", "TIERS", "FAIL_MODES", "OracleState", "init", "act"]

ABOVE, PRESS, UP, HOLD = range(4)
HOVER_Z = 0.075
PRESS_Z = 0.022
GAIN = 0.8


@struct.dataclass
class OracleState:
    """Per-episode state (leading axis N under vmap)."""

    phase: jax.Array  # () int32
    k: jax.Array  # () int32, index into ``order``
    counter: jax.Array  # () int32
    pause: jax.Array  # () int32
    order: jax.Array  # (n*n,) int32 button ids, needed ones first
    n_press: jax.Array  # () int32 presses to do
    strategy: jax.Array  # () int32
    tier: jax.Array  # () int32
    fail_mode: jax.Array  # () int32


def init(env, state: core.State, key: jax.Array, tier: jax.Array,
         strategy: jax.Array | None = None) -> OracleState:
    """Solve the puzzle and fix the press order for one episode."""
    k_strat, k_fail, k_mode = jax.random.split(key, 3)
    tier = jnp.asarray(tier, jnp.int32)
    if strategy is None:
        strategy = jax.random.randint(k_strat, (), 0, len(STRATEGIES))
    diff = (state.info["lights"] ^ state.info["goal_lights"]).astype(jnp.int32)
    x0 = (diff @ env.toggle_inv) % 2
    ns = env.null_space  # (k, n*n); all solutions are x0 + c @ ns
    k = ns.shape[0]
    combos = (jnp.arange(2 ** k)[:, None] >> jnp.arange(k)[None, :]) & 1
    cands = (x0[None, :] + combos @ ns) % 2
    needed = cands[jnp.argmin(cands.sum(1))]
    n_side = getattr(env, "n", 3)
    i = jnp.arange(env.n_buttons)
    keys = jnp.stack([i, (i % n_side) * n_side + i // n_side, env.n_buttons - 1 - i])[strategy]
    order = jnp.argsort(jnp.where(needed > 0, keys, keys + 100)).astype(jnp.int32)
    fails = jax.random.uniform(k_fail) < jnp.asarray(TIER_FAIL)[tier]
    mode = jnp.where(fails, jax.random.randint(k_mode, (), 1, len(FAIL_MODES)), 0)
    n = needed.sum()
    n = jnp.where(mode == 1, jnp.maximum(n - 1, 0), jnp.where(mode == 2, n + 1, n))
    z = jnp.zeros((), jnp.int32)
    return OracleState(phase=z, k=z, counter=z, pause=z, order=order,
                       n_press=n.astype(jnp.int32), strategy=jnp.asarray(strategy, jnp.int32),
                       tier=tier, fail_mode=mode.astype(jnp.int32))


def act(env, os: OracleState, state: core.State,
        key: jax.Array) -> tuple[jax.Array, OracleState]:
    """One (5,) action and the advanced oracle state."""
    k_noise, k_hes, k_len = jax.random.split(key, 3)
    q = state.data.qpos
    ee = q[:3]
    b = os.order[jnp.minimum(os.k, env.n_buttons - 1)]
    bxy = env.button_xy[b]
    z_t = jnp.stack([HOVER_Z, PRESS_Z, HOVER_Z, ee[2]])[os.phase]
    xy_t = jnp.where(os.phase == HOLD, ee[:2], bxy)
    target = jnp.concatenate([xy_t, z_t[None]])
    err = target - ee
    pressed = env.button_q(state.data)[b] < -0.011
    done = jnp.stack([
        (jnp.linalg.norm(err[:2]) < 0.008) & (jnp.abs(err[2]) < 0.02),
        pressed | (os.counter >= 12),
        err[2] < 0.01,
        jnp.zeros((), bool),
    ])[os.phase]
    paused = os.pause > 0
    move = jnp.where(paused, 0.0, jnp.clip(GAIN * err / core.POS_SCALE, -1.0, 1.0))
    turn = jnp.clip(-q[3] / core.YAW_SCALE, -1.0, 1.0)
    action = jnp.concatenate([move, turn[None], jnp.ones(1)])
    noise = jax.random.normal(k_noise, (5,)) * jnp.asarray(TIER_NOISE)[os.tier]
    action = jnp.clip(action + noise.at[4].multiply(0.3), -1.0, 1.0)

    advance = done & ~paused
    last = os.k + 1 >= os.n_press
    nxt = jnp.where(os.phase == UP, jnp.where(last, HOLD, ABOVE), os.phase + 1)
    phase = jnp.where(advance & (os.phase < HOLD), nxt, os.phase)
    phase = jnp.where(os.n_press == 0, HOLD, phase)
    k = jnp.where(advance & (os.phase == UP), os.k + 1, os.k)
    counter = jnp.where(phase == os.phase, os.counter + 1, 0)
    start_pause = jax.random.uniform(k_hes) < jnp.asarray(TIER_HESITATE)[os.tier]
    pause = jnp.where(paused, os.pause - 1,
                      jnp.where(start_pause, jax.random.randint(k_len, (), 2, 9), 0))
    return action, os.replace(phase=phase.astype(jnp.int32), k=k.astype(jnp.int32),
                              counter=counter.astype(jnp.int32), pause=pause.astype(jnp.int32))
