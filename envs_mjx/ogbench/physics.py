"""Physics steps for the two backends.

``jax``: MJX's JAX backend, with one correction of its ``implicitfast`` integrator so that
it matches C MuJoCo on ogbench's arm: C MuJoCo drops the velocity derivative of an
actuator whose force is clamped by ``forcerange`` (its force then does not depend on the
velocity; ``mjd_actuator_vel``), MJX 3.17's ``deriv_smooth_vel`` keeps it. ogbench's UR5e
actuators (kp 4500 / 2000 / 500, force limits 150 / 28 N·m) saturate on every sizeable
action, so without the correction joint velocities differ by ~0.2 rad/s after one env step.
``step_jax`` is ``mjx.step`` with that mask (same forward pass, same ``_advance``).

``warp``: ``mjx.step`` of the Warp backend unchanged (MuJoCo Warp follows C MuJoCo).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx
from mujoco.mjx._src import forward as mjx_forward  # _advance: pinned mujoco-mjx 3.17
from mujoco.mjx._src import support
from mujoco.mjx._src.types import BiasType, GainType


def step_jax(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """One physics step (timestep 2 ms) with C MuJoCo's ``implicitfast`` velocity
    derivative (clamped actuators contribute none). Requires ``m.opt.integrator ==
    implicitfast`` and no actuator dynamics (both hold for ogbench's scenes)."""
    d = mjx.forward(m, d)
    impl = d._impl
    affine_bias = np.asarray(m.actuator_biastype) == BiasType.AFFINE
    affine_gain = np.asarray(m.actuator_gaintype) == GainType.AFFINE
    vel = (m.actuator_biasprm[:, 2] * affine_bias
           + m.actuator_gainprm[:, 2] * affine_gain * d.ctrl)
    lo, hi = m.actuator_forcerange[:, 0], m.actuator_forcerange[:, 1]
    clamped = jnp.asarray(np.asarray(m.actuator_forcelimited, bool)) & (
        (d.actuator_force <= lo) | (d.actuator_force >= hi))
    vel = jnp.where(clamped, 0.0, vel)
    moment = impl.actuator_moment
    qderiv = moment.T @ (moment * vel[:, None])
    qderiv = qderiv - jnp.diag(m.dof_damping)
    if m.ntendon:
        qderiv = qderiv - impl.ten_J.T @ jnp.diag(m.tendon_damping) @ impl.ten_J
    qm = support.full_m(m, d) if support.is_sparse(m) else impl.M
    qm = qm - m.opt.timestep * qderiv
    qh, _ = jax.scipy.linalg.cho_factor(qm)
    qacc = jax.scipy.linalg.cho_solve((qh, False), d.qfrc_smooth + d.qfrc_constraint)
    return mjx_forward._advance(m, d, d.act_dot, qacc)


def make_step(backend: str):
    """The physics step ``(mjx.Model, mjx.Data) -> mjx.Data`` for ``backend``."""
    return step_jax if backend == "jax" else mjx.step
