"""Flax (linen) networks of RLPD (ALGORITHM §8), following the RLPD reference's layout.

- ``ReluMLP``: hidden layers Dense → [LayerNorm] → ReLU (LayerNorm *before* the activation,
  unlike ACFQL's MLP); kernels orthogonal(√2), zero biases.  Parameter names ``dense_i`` and
  ``ln_i``.
- ``EnsembleCritic``: Q(s, a) for ``num_qs`` independently initialised members (``nn.vmap``
  with split ``params`` RNGs, every parameter has a leading ``(num_qs,)`` axis); each member is
  ``ReluMLP(hidden_dims)`` on concat(obs, a) then a linear Dense(1).  Output ``(num_qs, ...)``.
  The same module with ``num_qs = n`` applies a gathered subset of ``n`` members' parameters.
- ``TanhGaussianActor``: ``ReluMLP(hidden_dims)`` (no LayerNorm) → linear heads for the mean
  and the log-std of a diagonal Gaussian over the pre-tanh action; log-std clipped to
  ``[log_std_min, log_std_max]``.  ``sample_tanh_gaussian`` / ``tanh_gaussian_log_prob_terms``
  squash its samples and give their log-densities.

``action_dim`` is the flat action the networks see: K = H·A with action chunking, A without.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from tper_jit.agents.networks import make_ensemble

# The reference initialises every Dense kernel orthogonally with gain √2 (ReLU gain).
orthogonal = nn.initializers.orthogonal(jnp.sqrt(2.0))
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class ReluMLP(nn.Module):
    """``x (..., in) -> (..., hidden_dims[-1])``: every layer Dense → [LayerNorm] → ReLU."""

    hidden_dims: Sequence[int]  # widths of the hidden layers (all are activated)
    layer_norm: bool = False  # LayerNorm between each Dense and its ReLU

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, width in enumerate(self.hidden_dims):
            x = nn.Dense(width, kernel_init=orthogonal, bias_init=nn.initializers.zeros,
                         name=f"dense_{i}")(x)
            if self.layer_norm:
                x = nn.LayerNorm(name=f"ln_{i}")(x)
            x = nn.relu(x)
        return x


class _QMember(nn.Module):
    """One member: ``(obs (..., D), actions (..., K)) -> (...)``."""

    hidden_dims: Sequence[int]
    layer_norm: bool

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        x = jnp.concatenate([observations, actions], axis=-1)
        x = ReluMLP(self.hidden_dims, self.layer_norm, name="mlp")(x)
        return nn.Dense(1, kernel_init=orthogonal, bias_init=nn.initializers.zeros,
                        name="head")(x)[..., 0]


class EnsembleCritic(nn.Module):
    """``(obs (..., D), actions (..., K)) -> (num_qs, ...)``."""

    hidden_dims: Sequence[int]  # hidden widths of each member
    num_qs: int = 10  # ensemble size (or the subset size when applying gathered params)
    layer_norm: bool = True  # LayerNorm in every member (RLPD's key stabiliser)

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        ensemble = make_ensemble(_QMember, self.num_qs)
        return ensemble(self.hidden_dims, self.layer_norm, name="ensemble")(
            observations, actions)


class TanhGaussianActor(nn.Module):
    """``obs (..., D) -> (mean (..., K), log_std (..., K))`` of the pre-tanh Gaussian."""

    hidden_dims: Sequence[int]
    action_dim: int  # K = H·A (chunked) or A
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, observations: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = ReluMLP(self.hidden_dims, name="mlp")(observations)
        mean = nn.Dense(self.action_dim, kernel_init=orthogonal,
                        bias_init=nn.initializers.zeros, name="mean")(x)
        log_std = nn.Dense(self.action_dim, kernel_init=orthogonal,
                           bias_init=nn.initializers.zeros, name="log_std")(x)
        # A hard clip as in the reference: bounds σ to [e^-20, e^2] so log-probs stay finite.
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


def tanh_gaussian_log_prob_terms(pre_tanh: jax.Array, mean: jax.Array,
                                 log_std: jax.Array) -> jax.Array:
    """Per-dimension log density of a = tanh(u), u ~ N(mean, σ²), at u = ``pre_tanh``.

    log N(u; μ, σ) − log(1 − tanh²u), with the stable form
    log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u)).  All ``(..., K)``; sum the last axis for
    the log-prob of the whole action.
    """
    z = (pre_tanh - mean) * jnp.exp(-log_std)
    log_normal = -0.5 * jnp.square(z) - log_std - HALF_LOG_2PI
    log_det = 2.0 * (math.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return log_normal - log_det


def sample_tanh_gaussian(mean: jax.Array, log_std: jax.Array,
                         key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised a = tanh(μ + σ·ε), ε ~ N(0, I) from ``key``.

    ``mean, log_std (..., K)`` → ``(a (..., K), log π(a) (...))``.
    """
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(u), tanh_gaussian_log_prob_terms(u, mean, log_std).sum(axis=-1)
