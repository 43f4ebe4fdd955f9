"""OPER-A: the iterated-advantage priority pre-stage (ALGORITHM §7) as one jitted program.

For K = ``iter`` rounds, starting from w_0 = 1 (N transitions):

1. fit a double value net V_1, V_2 (MLP ``hidden_dims`` → 1) by TD on minibatches drawn
   ∝ w_{k−1} (a sum-tree over the rows, O(B log N) per draw), target
   y_i = Σ_{j<n'} γ^j r_{i+j} + γ^{n'} · m · min_e V̄_e(s'_{i+n'−1}), n' = min(n, rows left in
   the episode), m = 0 if the window crosses a true termination; Polyak targets V̄.
   Round 1 trains ``first_eval_steps`` from scratch, later rounds continue the same nets for
   ``bc_eval_steps`` (the seed's two step flags; warm-starting is our reading of them).
2. advantages over the whole dataset (``lax.map`` in vectorised chunks):
   A_i = y_i − min_e V_e(s_i).
3. u = A − min A;  ũ = N·u / Σu;  w_k = N·(w_{k−1} ⊙ ũ) / Σ(w_{k−1} ⊙ ũ).

The whole pre-stage of one seed is a function of its key; ``compute_oper_a_weights`` vmaps
it over ``num_seeds`` keys and averages w_K over seeds.  ``save_weights``/``load_weights``
keep the result in a ``.npz`` with its provenance; the trainer loads it via ``weight_path``.
Raw w_K still goes through ``weights.normalize_priorities`` before use.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from tper_jit.agents.networks import MLP
from tper_jit.data.common import FlatDataset
from tper_jit.oper.config import OPERConfig
from tper_jit.replay import sum_tree
from tper_jit.replay.store import episode_bounds


class NStepData(NamedTuple):
    """Device arrays of the n-step value targets; N rows, D observation dims."""

    observations: jax.Array  # (N, D) s_i
    next_observations: jax.Array  # (N, D) s'_i
    returns: jax.Array  # (N,) Σ_{j<n'} γ^j r_{i+j}, inside the episode
    discounts: jax.Array  # (N,) γ^{n'} · m_i (0 after a true termination)
    boot_rows: jax.Array  # (N,) int32 i + n' − 1: bootstrap from next_observations there


def n_step_targets(rewards: np.ndarray, masks: np.ndarray, terminals: np.ndarray, n: int,
                   discount: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(returns, discounts, boot_rows)``, each ``(N,)``, of the n-step target (host).

    The window of row i stops at its episode's last row (n' = min(n, e − i + 1)), so no
    target reads into the next episode; ``discounts`` = γ^{n'} · min(masks over the window).
    """
    rewards = np.asarray(rewards, np.float64)
    masks = np.asarray(masks, np.float64)
    n_rows = len(rewards)
    starts, lengths = episode_bounds(np.asarray(terminals))
    end = np.repeat(starts + lengths - 1, lengths).astype(np.int64)  # (N,) episode's last row
    i = np.arange(n_rows)
    last = np.minimum(i + n - 1, end)
    returns = np.zeros(n_rows)
    mask = np.ones(n_rows)
    for j in range(n):  # n is small (1 or H): a loop over offsets, vectorised over rows
        inside = i + j <= last
        row = np.minimum(i + j, n_rows - 1)
        returns += np.where(inside, discount ** j * rewards[row], 0.0)
        mask = np.where(inside, np.minimum(mask, masks[row]), mask)
    discounts = discount ** (last - i + 1) * mask
    return returns, discounts, last.astype(np.int32)


def make_data(dataset: FlatDataset, cfg: OPERConfig) -> NStepData:
    """``NStepData`` of ``dataset`` with ``cfg.n_step`` and ``cfg.discount`` (host, once)."""
    returns, discounts, boot = n_step_targets(dataset.rewards, dataset.masks, dataset.terminals,
                                              cfg.n_step, cfg.discount)
    return NStepData(observations=jnp.asarray(dataset.observations, jnp.float32),
                     next_observations=jnp.asarray(dataset.next_observations, jnp.float32),
                     returns=jnp.asarray(returns, jnp.float32),
                     discounts=jnp.asarray(discounts, jnp.float32),
                     boot_rows=jnp.asarray(boot, jnp.int32))


@struct.dataclass
class ValueState:
    params: dict  # two value nets, every leaf with a leading (2,) axis
    target: dict  # Polyak copy of params
    opt_state: optax.OptState


def _net(cfg: OPERConfig) -> MLP:
    return MLP((*cfg.hidden_dims, 1))


def _values(cfg: OPERConfig, params: dict, obs: jax.Array) -> jax.Array:
    """``obs (..., D)`` → ``(2, ...)`` values of both nets."""
    return jax.vmap(lambda p: _net(cfg).apply({"params": p}, obs)[..., 0])(params)


def init_value(key: jax.Array, obs_dim: int, cfg: OPERConfig) -> ValueState:
    """Two independently initialised value nets, their targets and the Adam state."""
    x = jnp.zeros((1, obs_dim))
    params = jax.vmap(lambda k: _net(cfg).init(k, x)["params"])(jax.random.split(key, 2))
    return ValueState(params=params, target=jax.tree.map(jnp.copy, params),
                      opt_state=optax.adam(cfg.lr).init(params))


def targets(cfg: OPERConfig, target_params: dict, data: NStepData, rows: jax.Array
            ) -> jax.Array:
    """y ``(B,)`` for ``rows (B,)``: n-step return + γ^{n'}·m·min_e V̄_e(s'_{boot})."""
    boot_obs = data.next_observations[data.boot_rows[rows]]
    v_next = _values(cfg, target_params, boot_obs).min(axis=0)
    return data.returns[rows] + data.discounts[rows] * v_next


def _fit_step(vs: ValueState, key: jax.Array, *, cfg: OPERConfig, data: NStepData,
              tree: sum_tree.SumTree) -> tuple[ValueState, jax.Array]:
    """One TD step of both value nets on a minibatch drawn ∝ the current weights."""
    rows, _ = sum_tree.sample(tree, key, cfg.batch_size)
    y = jax.lax.stop_gradient(targets(cfg, vs.target, data, rows))
    obs = data.observations[rows]

    def loss_fn(params):
        return jnp.mean(jnp.square(_values(cfg, params, obs) - y[None]))

    loss, grads = jax.value_and_grad(loss_fn)(vs.params)
    updates, opt_state = optax.adam(cfg.lr).update(grads, vs.opt_state, vs.params)
    params = optax.apply_updates(vs.params, updates)
    target = jax.tree.map(lambda p, t: cfg.tau * p + (1.0 - cfg.tau) * t, params, vs.target)
    return ValueState(params=params, target=target, opt_state=opt_state), loss


def advantages(cfg: OPERConfig, vs: ValueState, data: NStepData) -> jax.Array:
    """A ``(N,)`` = y_i − min_e V_e(s_i) over every row, ``cfg.adv_batch`` rows at a time."""

    def one(row):
        y = targets(cfg, vs.target, data, row[None])[0]
        return y - _values(cfg, vs.params, data.observations[row]).min()

    rows = jnp.arange(data.returns.shape[0])
    return jax.lax.map(one, rows, batch_size=min(cfg.adv_batch, data.returns.shape[0]))


def reweight(w: jax.Array, adv: jax.Array) -> jax.Array:
    """w_k ``(N,)`` from w_{k−1} and A: u = A − min A, ũ = N u/Σu, w_k = N w ũ / Σ(w ũ).

    A constant advantage (Σu = 0) leaves w unchanged.
    """
    n = w.shape[0]
    u = adv - adv.min()
    u_tilde = jnp.where(u.sum() > 0, n * u / jnp.maximum(u.sum(), 1e-30), 1.0)
    wu = w * u_tilde
    return jnp.where(wu.sum() > 0, n * wu / jnp.maximum(wu.sum(), 1e-30), w)


def _round(vs: ValueState, w: jax.Array, key: jax.Array, steps: int, cfg: OPERConfig,
           data: NStepData) -> tuple[ValueState, jax.Array, jax.Array]:
    """One OPER-A round: fit ``steps`` on draws ∝ w, then (w_k, mean fit loss)."""
    tree = sum_tree.create(w.shape[0], w)
    step = functools.partial(_fit_step, cfg=cfg, data=data, tree=tree)
    vs, losses = jax.lax.scan(step, vs, jax.random.split(key, steps))
    return vs, reweight(w, advantages(cfg, vs, data)), losses.mean()


def oper_a_single(key: jax.Array, data: NStepData, cfg: OPERConfig
                  ) -> tuple[jax.Array, jax.Array]:
    """The pre-stage of one seed: ``(w_K (N,), fit loss per round (K,))``."""
    k_init, k_first, k_rest = jax.random.split(key, 3)
    n = data.returns.shape[0]
    vs = init_value(k_init, data.observations.shape[-1], cfg)
    vs, w, loss0 = _round(vs, jnp.ones((n,), jnp.float32), k_first, cfg.first_eval_steps, cfg,
                          data)

    def later(carry, k):
        vs, w = carry
        vs, w, loss = _round(vs, w, k, cfg.bc_eval_steps, cfg, data)
        return (vs, w), loss

    (vs, w), losses = jax.lax.scan(later, (vs, w), jax.random.split(k_rest, cfg.iter - 1))
    return w, jnp.concatenate([loss0[None], losses])


@functools.partial(jax.jit, static_argnums=2)
def _oper_a_seeds(keys: jax.Array, data: NStepData, cfg: OPERConfig
                  ) -> tuple[jax.Array, jax.Array]:
    return jax.vmap(oper_a_single, in_axes=(0, None, None))(keys, data, cfg)


def compute_oper_a_weights(dataset: FlatDataset, key: jax.Array, cfg: OPERConfig
                           ) -> np.ndarray:
    """Raw OPER-A weights ``(N,)`` float64 (mean 1): w_K averaged over ``cfg.num_seeds``."""
    data = make_data(dataset, cfg)
    w, _ = _oper_a_seeds(jax.random.split(key, cfg.num_seeds), data, cfg)
    return np.asarray(w, np.float64).mean(axis=0)


# ---------------------------------------------------------------------------- files


def save_weights(path: str | os.PathLike, weights: np.ndarray, dataset: FlatDataset,
                 cfg: OPERConfig) -> str:
    """Write ``weights (N,)`` and their provenance to ``path`` (.npz); returns the path."""
    weights = np.asarray(weights, np.float32)
    if weights.shape != (len(dataset),):
        raise ValueError(f"OPER-A weights must have shape ({len(dataset)},), got {weights.shape}")
    path = os.fspath(path)
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a bare name
        np.savez(f, weights=weights, num_transitions=np.int64(len(dataset)),
                 content_hash=np.str_(dataset.content_hash or ""),
                 env_name=np.str_(dataset.env_name), iter=np.int64(cfg.iter),
                 n_step=np.int64(cfg.n_step), num_seeds=np.int64(cfg.num_seeds))
    return path


def load_weights(path: str | os.PathLike, dataset: FlatDataset) -> np.ndarray:
    """OPER-A weights ``(N,)`` float64 from ``path``, checked against ``dataset``.

    Raises ``FileNotFoundError``/``ValueError`` naming the file when it is missing, lacks
    ``weights``, or was computed on a dataset of another size or content hash.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: OPER-A weight file (--oper.weight_path) not found")
    with np.load(path) as f:
        if "weights" not in f.files:
            raise ValueError(f"{path}: not an OPER-A weight file (no `weights` array)")
        weights = np.asarray(f["weights"], np.float64)
        saved_hash = str(f["content_hash"]) if "content_hash" in f.files else ""
    if weights.shape != (len(dataset),):
        raise ValueError(f"{path}: holds {weights.shape[0] if weights.ndim else 0} OPER-A "
                         f"weights but the dataset has {len(dataset)} transitions; recompute "
                         "the weights for this dataset")
    if saved_hash and dataset.content_hash and saved_hash != dataset.content_hash:
        raise ValueError(f"{path}: OPER-A weights were computed on dataset {saved_hash}, "
                         f"not on this one ({dataset.content_hash})")
    return weights
