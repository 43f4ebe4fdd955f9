"""Flax (linen) networks of ACFQL (ALGORITHM §1).

- ``MLP``: Dense layers with Glorot-uniform kernels and zero biases; GELU (tanh approximation,
  flax's default) after every hidden layer, then LayerNorm when ``layer_norm``; last layer
  linear.  Parameter names: ``dense_i`` and ``ln_i``.
- ``Critic``: Q(s, a) for an ensemble of ``num_qs`` members, input concat(obs, a).  Members
  are ``nn.vmap``-ed copies of one MLP with split ``params`` RNGs, so every member is
  initialised independently; every parameter carries a leading ``(num_qs,)`` axis.  Output
  ``(num_qs, B)``.
- ``FlowActor``: the BC velocity field v(s, x, t), input concat(obs, x, t) → ``action_dim``.
- ``OneStepActor``: μ(s, z), input concat(obs, z) → ``action_dim`` (no clipping here).

Every network takes ``precision`` (``agents/precision.py``): ``f32``, or ``bf16`` matmul
inputs with float32 accumulation in all of its Dense layers (parameters stay float32).

``action_dim`` is the flat action the networks see: H·A with action chunking, A without.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from tper_jit.agents.precision import dot_general_for

glorot_uniform = nn.initializers.glorot_uniform()


def make_ensemble(member: type[nn.Module], size: int) -> type[nn.Module]:
    """``size`` copies of ``member`` initialised independently (every parameter gains a leading
    ``(size,)`` axis) applied to the same inputs; outputs stack on axis 0."""
    return nn.vmap(member, variable_axes={"params": 0}, split_rngs={"params": True},
                   in_axes=None, out_axes=0, axis_size=size)


class MLP(nn.Module):
    """``x (..., in) -> (..., dims[-1])``; hidden layers Dense → GELU → [LayerNorm]."""

    dims: Sequence[int]  # widths of every layer, the last one is the output width
    layer_norm: bool = False  # LayerNorm after each hidden activation
    precision: str = "f32"  # matmul inputs: f32 | bf16 (float32 accumulation)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n = len(self.dims)
        dot = dot_general_for(self.precision)
        for i, width in enumerate(self.dims):
            x = nn.Dense(width, kernel_init=glorot_uniform, bias_init=nn.initializers.zeros,
                         dot_general=dot, name=f"dense_{i}")(x)
            if i < n - 1:
                x = nn.gelu(x)
                if self.layer_norm:
                    x = nn.LayerNorm(name=f"ln_{i}")(x)
        return x


class _QMember(nn.Module):
    """One ensemble member: ``(obs (B, D), actions (B, K)) -> (B,)``."""

    hidden_dims: Sequence[int]
    layer_norm: bool
    precision: str = "f32"

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        x = jnp.concatenate([observations, actions], axis=-1)
        return MLP((*self.hidden_dims, 1), self.layer_norm, self.precision, name="mlp")(x)[
            ..., 0]


class Critic(nn.Module):
    """Ensemble critic: ``(obs (..., D), actions (..., K)) -> (num_qs, ...)``."""

    hidden_dims: Sequence[int]  # hidden widths of each member
    num_qs: int = 2  # ensemble size
    layer_norm: bool = True  # LayerNorm in every member
    precision: str = "f32"  # matmul inputs: f32 | bf16

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        ensemble = make_ensemble(_QMember, self.num_qs)
        return ensemble(self.hidden_dims, self.layer_norm, self.precision, name="ensemble")(
            observations, actions)


class FlowActor(nn.Module):
    """BC flow velocity field v(s, x, t): ``(obs (..., D), x (..., K), t (..., 1)) -> (..., K)``."""

    hidden_dims: Sequence[int]
    action_dim: int  # K = H·A (chunked) or A
    layer_norm: bool = False
    precision: str = "f32"  # matmul inputs: f32 | bf16

    @nn.compact
    def __call__(self, observations: jax.Array, x: jax.Array, t: jax.Array) -> jax.Array:
        inp = jnp.concatenate([observations, x, t], axis=-1)
        return MLP((*self.hidden_dims, self.action_dim), self.layer_norm, self.precision,
                   name="mlp")(inp)


class OneStepActor(nn.Module):
    """One-step policy μ(s, z): ``(obs (..., D), z (..., K)) -> (..., K)`` (unclipped)."""

    hidden_dims: Sequence[int]
    action_dim: int  # K = H·A (chunked) or A
    layer_norm: bool = False
    precision: str = "f32"  # matmul inputs: f32 | bf16

    @nn.compact
    def __call__(self, observations: jax.Array, z: jax.Array) -> jax.Array:
        inp = jnp.concatenate([observations, z], axis=-1)
        return MLP((*self.hidden_dims, self.action_dim), self.layer_norm, self.precision,
                   name="mlp")(inp)


def polyak(online, target, tau: float):
    """Target-network update θ̄ ← τθ + (1−τ)θ̄, leaf by leaf (ACFQL's and RLPD's critics)."""
    return jax.tree.map(lambda p, tp: tau * p + (1.0 - tau) * tp, online, target)
