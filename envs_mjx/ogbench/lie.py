"""Quaternion / rigid-transform helpers in JAX (wxyz quaternions, like ogbench's ``lie``).

Every function works on single values; ``jax.vmap`` them for batches. Conventions follow
``ogbench.manipspace.lie`` and MuJoCo's ``mju_*`` routines so results can be compared
entry by entry.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def quat_mul(a: jax.Array, b: jax.Array) -> jax.Array:
    """Hamilton product ``a ⊗ b`` of two (4,) wxyz quaternions (``mju_mulQuat``)."""
    w0, x0, y0, z0 = a[0], a[1], a[2], a[3]
    w1, x1, y1, z1 = b[0], b[1], b[2], b[3]
    return jnp.stack([
        w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1,
        w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
        w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1,
        w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1,
    ])


def quat_conj(q: jax.Array) -> jax.Array:
    """(4,) conjugate = inverse of a unit quaternion (``mju_negQuat``)."""
    return q * jnp.array([1.0, -1.0, -1.0, -1.0], q.dtype)


def quat_from_z(theta: jax.Array) -> jax.Array:
    """(4,) rotation by ``theta`` rad about world z (``SO3.from_z_radians``)."""
    half = 0.5 * theta
    zero = jnp.zeros_like(theta)
    return jnp.stack([jnp.cos(half), zero, zero, jnp.sin(half)])


def quat_from_axis_angle(axis: jax.Array, angle: jax.Array) -> jax.Array:
    """(4,) rotation by ``angle`` about the unit (3,) ``axis`` (``mju_axisAngle2Quat``)."""
    half = 0.5 * angle
    return jnp.concatenate([jnp.cos(half)[None], jnp.sin(half) * axis])


def quat_rotate(q: jax.Array, v: jax.Array) -> jax.Array:
    """(3,) vector ``v`` rotated by the unit quaternion ``q`` (``mju_rotVecQuat``)."""
    u, w = q[1:], q[0]
    t = 2.0 * jnp.cross(u, v)
    return v + w * t + jnp.cross(u, t)


def quat_to_mat(q: jax.Array) -> jax.Array:
    """(3, 3) rotation matrix of a unit (4,) quaternion (``mju_quat2Mat``)."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    return jnp.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def quat_yaw(q: jax.Array) -> jax.Array:
    """() yaw of a wxyz quaternion: ``atan2(2(wz + xy), 1 - 2(y² + z²))``
    (``SO3.compute_yaw_radians``)."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    return jnp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def mat_yaw(mat: jax.Array) -> jax.Array:
    """() yaw of a (3, 3) or (9,) rotation matrix, ``atan2(R10, R00)``; equals
    ``SO3.from_matrix(mat).compute_yaw_radians()`` (same formula on the matrix entries)."""
    r = mat.reshape(3, 3)
    return jnp.arctan2(r[1, 0], r[0, 0])


def quat_to_rotvec(q: jax.Array) -> jax.Array:
    """(3,) rotation vector of a unit quaternion, angle wrapped to [-π, π]
    (``mju_quat2Vel(res, q, dt=1)``)."""
    v = q[1:]
    sin_half = jnp.linalg.norm(v)
    speed = 2.0 * jnp.arctan2(sin_half, q[0])
    speed = jnp.where(speed > jnp.pi, speed - 2.0 * jnp.pi, speed)
    safe = jnp.where(sin_half > 0, sin_half, 1.0)
    return jnp.where(sin_half > 0, v * (speed / safe), jnp.zeros_like(v))


def se3_mul(a: tuple[jax.Array, jax.Array],
            b: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Compose rigid transforms ``a @ b`` given as (quat (4,), translation (3,))."""
    qa, ta = a
    qb, tb = b
    return quat_mul(qa, qb), ta + quat_rotate(qa, tb)
