"""ogbench's damped-least-squares differential IK (``controllers/diff_ik.py``) in JAX.

The UR5e arm is a serial chain of 6 hinge joints, so forward kinematics and the site
Jacobian are written out directly from the arm-only model's body / joint / site constants
(read from the ``MjModel`` ogbench's controller itself builds). One IK iteration:

    e   = [p* − p(q), rotvec(q* ⊗ q(q)⁻¹)]              (6,)
    stop if ‖e_pos‖ ≤ pos_thresh and ‖e_rot‖ ≤ ori_thresh
    u   = Jᵀ (J Jᵀ + λI)⁻¹ e,  λ = 1e-12                 (6,)
    u  *= min(1, max_angle / max|u|)                       (45° step cap)
    q  += u

repeated at most ``max_iters`` (20) times under ``lax.while_loop`` with the same early stop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct

from envs_mjx.ogbench import lie

MAX_ITERS = 20
POS_THRESH = 1e-4
ORI_THRESH = 1e-4
DAMPING = 1e-12
MAX_ANGLE_CHANGE = float(np.radians(45))


@struct.dataclass
class Chain:
    """Constants of a serial hinge chain ending in a site, one row per joint (J = 6).

    body_pos (J, 3), body_quat (J, 4): each moving body's frame in its parent's frame.
    jnt_pos (J, 3), jnt_axis (J, 3): joint anchor and unit axis in the body frame.
    site_pos (3,), site_quat (4,): the target site in the last body's frame.
    base_pos (3,), base_quat (4,): the chain root's parent frame in the world.
    """

    body_pos: jax.Array
    body_quat: jax.Array
    jnt_pos: jax.Array
    jnt_axis: jax.Array
    site_pos: jax.Array
    site_quat: jax.Array
    base_pos: jax.Array
    base_quat: jax.Array


def chain_from_model(model: mujoco.MjModel, site: str) -> Chain:
    """Read the hinge chain leading to ``site`` from ``model`` (world → … → site's body).

    Requires every body on the path to carry exactly one hinge joint, except bodies without
    joints, which are folded into their child's fixed offset (the UR5e's ``base``).
    """
    sid = model.site(site).id
    path = []
    b = int(model.site_bodyid[sid])
    while b != 0:
        path.append(b)
        b = int(model.body_parentid[b])
    path.reverse()
    base_q, base_p = np.array([1.0, 0, 0, 0]), np.zeros(3)
    rows = []
    for b in path:
        bq = model.body_quat[b] / np.linalg.norm(model.body_quat[b])
        bp = model.body_pos[b]
        if model.body_jntnum[b] == 0:
            if rows:
                raise ValueError(f"body {model.body(b).name} without a joint inside the chain")
            base_q, base_p = _np_quat_mul(base_q, bq), base_p + _np_rot(base_q, bp)
            continue
        if model.body_jntnum[b] != 1:
            raise ValueError(f"body {model.body(b).name} has {model.body_jntnum[b]} joints")
        j = int(model.body_jntadr[b])
        if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
            raise ValueError(f"joint {model.joint(j).name} is not a hinge")
        rows.append((bp, bq, model.jnt_pos[j], model.jnt_axis[j]))
    sq = model.site_quat[sid] / np.linalg.norm(model.site_quat[sid])
    f = lambda x: jnp.asarray(np.array(x), jnp.float32)  # noqa: E731
    return Chain(
        body_pos=f([r[0] for r in rows]), body_quat=f([r[1] for r in rows]),
        jnt_pos=f([r[2] for r in rows]), jnt_axis=f([r[3] for r in rows]),
        site_pos=f(model.site_pos[sid]), site_quat=f(sq), base_pos=f(base_p),
        base_quat=f(base_q),
    )


def _np_quat_mul(a, b):
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, np.asarray(a, np.float64), np.asarray(b, np.float64))
    return out


def _np_rot(q, v):
    out = np.zeros(3)
    mujoco.mju_rotVecQuat(out, np.asarray(v, np.float64), np.asarray(q, np.float64))
    return out


def forward_kinematics(chain: Chain, q: jax.Array):
    """Site pose and joint frames for joint angles ``q`` (J,).

    Returns (site_pos (3,), site_quat (4,), anchors (J, 3), axes (J, 3)), all in the world
    frame, computed like ``mj_kinematics`` (parent pose ∘ body offset ∘ joint rotation about
    its anchor). O(J).
    """
    def body(carry, x):
        quat, pos = carry
        bp, bq, jp, ja, qi = x
        pos = pos + lie.quat_rotate(quat, bp)
        quat = lie.quat_mul(quat, bq)
        anchor = pos + lie.quat_rotate(quat, jp)
        axis = lie.quat_rotate(quat, ja)
        quat = lie.quat_mul(quat, lie.quat_from_axis_angle(ja, qi))
        quat = quat / jnp.linalg.norm(quat)
        pos = anchor - lie.quat_rotate(quat, jp)
        return (quat, pos), (anchor, axis)

    (quat, pos), (anchors, axes) = jax.lax.scan(
        body, (chain.base_quat, chain.base_pos),
        (chain.body_pos, chain.body_quat, chain.jnt_pos, chain.jnt_axis, q))
    site_pos = pos + lie.quat_rotate(quat, chain.site_pos)
    site_quat = lie.quat_mul(quat, chain.site_quat)
    return site_pos, site_quat, anchors, axes


def site_jacobian(site_pos: jax.Array, anchors: jax.Array, axes: jax.Array) -> jax.Array:
    """(6, J) site Jacobian of a hinge chain: rows ``[axis × (p − anchor); axis]``
    (what ``mj_jacSite`` returns for hinge joints)."""
    jacp = jnp.cross(axes, site_pos[None, :] - anchors)
    return jnp.concatenate([jacp.T, axes.T], axis=0)


def pose_error(chain: Chain, q: jax.Array, pos: jax.Array, quat: jax.Array):
    """(6,) error ``[p* − p, rotvec(q* ⊗ q⁻¹)]`` and the (6, J) Jacobian at ``q``."""
    p, qs, anchors, axes = forward_kinematics(chain, q)
    err = jnp.concatenate([pos - p, lie.quat_to_rotvec(lie.quat_mul(quat, lie.quat_conj(qs)))])
    return err, site_jacobian(p, anchors, axes)


def solve(chain: Chain, pos: jax.Array, quat: jax.Array, q0: jax.Array,
          max_iters: int = MAX_ITERS, pos_thresh: float = POS_THRESH,
          ori_thresh: float = ORI_THRESH) -> jax.Array:
    """Joint angles (J,) bringing the site to (pos (3,), quat (4,)) from ``q0`` (J,).

    Same loop as ``DiffIKController.solve``: at most ``max_iters`` updates, stopping before
    an update once both error norms are within the thresholds. Under ``vmap`` the loop runs
    until every env has stopped; stopped envs keep their result.
    """
    eye = jnp.eye(6, dtype=q0.dtype) * DAMPING

    def cond(carry):
        i, _, done = carry
        return (i < max_iters) & ~done

    def body(carry):
        i, q, _ = carry
        err, jac = pose_error(chain, q, pos, quat)
        done = (jnp.linalg.norm(err[:3]) <= pos_thresh) & (jnp.linalg.norm(err[3:])
                                                            <= ori_thresh)
        upd = jac.T @ jnp.linalg.solve(jac @ jac.T + eye, err)
        umax = jnp.max(jnp.abs(upd))
        upd = jnp.where(umax > MAX_ANGLE_CHANGE, upd * (MAX_ANGLE_CHANGE / umax), upd)
        q = jnp.where(done, q, q + upd)
        return i + 1, q, done

    _, q, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), q0,
                                              jnp.zeros((), bool)))
    return q
