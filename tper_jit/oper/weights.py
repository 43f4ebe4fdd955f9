"""OPER priorities as plain numpy (ALGORITHM §7): OPER-R weights and the normalisation.

Both run once on the host at set-up, over N transitions (rows of a flat dataset), so numpy in
float64 is the right tool: exact sums over millions of rows, no compile.

- ``oper_r_weights``: w_i = (R(τ) − R_min)/(R_max − R_min) + base_prob for every row i of
  trajectory τ, R(τ) = Σ r over τ (trajectory-constant).
- ``normalize_priorities``: the seed's normalisation of raw weights w (OPER-R or OPER-A)
  into sampling probabilities p, Σ p = 1:

      v = w − min w;  p = v / Σ v;  x = N·p (mean 1)
      x ← 1 + (x − 1) · std / std(x)          (mean 1, std ``std``)
      p = max(x / N, eps / N);  p ← p / Σ p

  Degenerate inputs (all w equal, so Σ v = 0 or std(x) = 0) give the uniform p = 1/N.
- ``loss_weights_from_probs``: the reweighting factors N·p (mean 1 over the dataset).
"""

from __future__ import annotations

import numpy as np

from tper_jit.replay.store import episode_bounds


def episode_returns(rewards: np.ndarray, terminals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(returns (n,), episode_of_row (N,))``: R(τ) = Σ r per episode, and each row's episode.

    Episodes end at rows with ``terminals != 0`` (rows after the last terminal form one more
    episode, as in ``store.episode_bounds``).
    """
    starts, lengths = episode_bounds(np.asarray(terminals))
    episode_of_row = np.repeat(np.arange(len(starts)), lengths)
    returns = np.bincount(episode_of_row, weights=np.asarray(rewards, np.float64),
                          minlength=len(starts))
    return returns, episode_of_row


def oper_r_weights(rewards: np.ndarray, terminals: np.ndarray, base_prob: float = 0.0
                   ) -> np.ndarray:
    """Raw OPER-R weights ``(N,)`` float64: min-max normalised episode return + ``base_prob``.

    ``rewards``, ``terminals``: ``(N,)``.  When every episode has the same return the
    normalised part is 0 for all rows (uniform after ``normalize_priorities``).
    """
    if base_prob < 0:
        raise ValueError(f"--oper.base_prob must be >= 0, got {base_prob}")
    returns, episode_of_row = episode_returns(rewards, terminals)
    span = returns.max() - returns.min()
    norm = (returns - returns.min()) / span if span > 0 else np.zeros_like(returns)
    return norm[episode_of_row] + base_prob


def normalize_priorities(w: np.ndarray, std: float = 2.0, eps: float = 0.1) -> np.ndarray:
    """Sampling probabilities ``p (N,)`` float64 (Σ p = 1) from raw weights ``w (N,)``.

    See the module docstring for the equations; ``std`` is the target standard deviation of
    N·p before the floor, ``eps`` the floor in units of the uniform probability 1/N.
    """
    w = np.asarray(w, np.float64)
    if w.ndim != 1 or len(w) == 0:
        raise ValueError(f"priority weights must be a non-empty (N,) array, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("priority weights contain NaN or inf")
    if std <= 0:
        raise ValueError(f"--oper.std must be > 0, got {std}")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"--oper.eps must be in [0, 1], got {eps}")
    n = len(w)
    v = w - w.min()
    total = v.sum()
    if total <= 0:
        return np.full(n, 1.0 / n)
    x = n * (v / total)  # mean exactly 1 up to round-off
    sd = x.std()
    if sd <= 0:
        return np.full(n, 1.0 / n)
    x = 1.0 + (x - 1.0) * (std / sd)
    # The rescale pushes low weights below zero; the floor keeps every transition drawable.
    p = np.maximum(x / n, eps / n)
    return p / p.sum()


def loss_weights_from_probs(p: np.ndarray) -> np.ndarray:
    """Reweighting factors ``N · p`` ``(N,)`` float32 (mean 1 when Σ p = 1)."""
    p = np.asarray(p, np.float64)
    return (len(p) * p).astype(np.float32)
