"""Compute precision of the ACFQL networks' matmuls (``--agent.precision``).

- ``f32`` (default): everything in float32.
- ``bf16``: the inputs of every Dense matmul — forward ``x @ W`` and both backward products
  ``g @ Wᵀ`` and ``xᵀ @ g`` — are rounded to bfloat16 and multiplied with float32
  accumulation and a float32 result.  Parameters, optimiser state, biases, activations,
  LayerNorm statistics, targets, losses and the replay stay float32; only the products see
  8-bit mantissas (relative error ~2⁻⁸ per input).

The backward pass is written out (``custom_vjp``) instead of left to autodiff for two
measured reasons on XLA's CPU backend: autodiff of a bf16-input dot multiplies the float32
cotangent in float32, and a bf16 dot whose operand XLA reads transposed (``xᵀ @ g``
contracting over the batch) takes a path ~5× slower than the row-major one; ``_physical_t``
materialises that transpose (an optimisation barrier keeps XLA from folding it back into the
dot), which makes the weight gradient as fast as the forward product.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

PRECISIONS = ("f32", "bf16")
_BF16, _F32 = jnp.bfloat16, jnp.float32


def _physical_t(a: jax.Array) -> jax.Array:
    """``a.T`` for a 2-D ``a`` as a row-major copy (not a transposed view of ``a``)."""
    flat = lax.optimization_barrier(a.T.reshape(-1))
    return flat.reshape(a.shape[1], a.shape[0])


def _unbatched(dot):
    """``dot(a, b)`` of 2-D bf16 operands, kept 2-D under ``vmap``: XLA CPU (jax 0.9) aborts
    compiling some *batched* bf16 × bf16 → f32 dots (``ynn_emitter.cc: Check failed:
    lhs element type == instr element type``, seen with 3 vmapped seeds at B = 128), so a
    batched ``a`` with a shared ``b`` becomes one taller 2-D product and anything else a
    ``lax.map`` of 2-D products (seeds and ensemble members run one after another)."""
    f = jax.custom_batching.custom_vmap(dot)

    @f.def_vmap
    def rule(axis_size, in_batched, a, b):
        a_batched, b_batched = in_batched
        if a_batched and not b_batched and dot is _nn:
            y = f(a.reshape(-1, a.shape[-1]), b)
            return y.reshape(axis_size, -1, y.shape[-1]), True
        a = a if a_batched else jnp.broadcast_to(a, (axis_size, *a.shape))
        b = b if b_batched else jnp.broadcast_to(b, (axis_size, *b.shape))
        return lax.map(lambda ab: f(*ab), (a, b)), True

    return f


def _nn(a, b):  # (M, K) @ (K, N)
    return jnp.dot(a, b, preferred_element_type=_F32)


def _nt(a, b):  # (M, K) @ (N, K)ᵀ
    return lax.dot_general(a, b, (((1,), (1,)), ((), ())), preferred_element_type=_F32)


_dot_nn, _dot_nt = _unbatched(_nn), _unbatched(_nt)


@jax.custom_vjp
def bf16_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x (B, I) @ w (I, O) -> (B, O)`` float32, from bfloat16-rounded inputs."""
    return _dot_nn(x.astype(_BF16), w.astype(_BF16))


def _fwd(x, w):
    xb, wb = x.astype(_BF16), w.astype(_BF16)
    return _dot_nn(xb, wb), (xb, wb)


def _bwd(res, g):
    xb, wb = res
    gb = g.astype(_BF16)
    return _dot_nt(gb, wb), _dot_nn(_physical_t(xb), gb)


bf16_matmul.defvjp(_fwd, _bwd)


def bf16_dot_general(lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None,
                     preferred_element_type=None) -> jax.Array:
    """A ``flax.linen.Dense`` ``dot_general``: ``lhs (..., I)`` times the kernel ``(I, O)``
    through ``bf16_matmul`` (leading axes flattened into one batch axis)."""
    (lc, rc), (lb, rb) = dimension_numbers
    if tuple(lc) != (lhs.ndim - 1,) or tuple(rc) != (0,) or lb or rb or rhs.ndim != 2:
        raise ValueError(f"bf16_dot_general supports Dense contractions only, got "
                         f"{dimension_numbers} for {lhs.shape} x {rhs.shape}")
    y = bf16_matmul(lhs.reshape(-1, lhs.shape[-1]), rhs)
    return y.reshape(*lhs.shape[:-1], rhs.shape[1])


def dot_general_for(precision: str):
    """The ``dot_general`` a Dense layer uses under ``precision`` (``PRECISIONS``)."""
    if precision == "f32":
        return lax.dot_general
    if precision == "bf16":
        return bf16_dot_general
    raise ValueError(f"--agent.precision must be one of {PRECISIONS}, got {precision!r}")
