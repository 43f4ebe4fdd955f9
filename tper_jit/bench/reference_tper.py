"""Numpy re-implementation of the reference T-PER code's per-step host procedure (baseline).

What is reproduced (ALGORITHM §4 with the reference's behaviour, defects included), so that a
benchmark measures what the reference does on the host each online step:

* Trajectory boundaries come from scanning ``terminals`` (``np.nonzero``, O(N)) followed by a
  Python loop over the trajectories that records (b, e), success (any success flag in
  [b, e]) and mean reward. ``on_episode_end`` redoes this whole rescan after every finished
  episode. The unfinished segment after the last terminal is not a trajectory.
* ``sample``: every call recomputes all n trajectory scores in a Python loop (μ_τ for
  ``td_error_rank``, 2.0/0.1 for ``success_binary``, the mean reward for ``avg_reward``),
  ranks them with ``np.argsort`` of the negated scores (quicksort: unstable, ties get
  arbitrary distinct ranks), w = (rank + 1)^−α_rank, p = (1 − ε)·w/Σw + ε/n, draws
  trajectories with ``RandomState.choice(n, B, p=p)`` and then picks each start in a Python
  loop over the batch, uniform in [b, max(b, e − H + 1)].
* ``update_td``: Python loop, μ ← β·μ + (1 − β)·|δ| (the first visit sets μ = |δ|);
  duplicates in a batch are applied sequentially. Never-visited trajectories score 0.0, i.e.
  they start at the bottom of the ranking (a reference defect the project fixes).

Not an optimised version and not a strawman: the costs are O(n) Python work plus an
O(n log n) sort per step, and an O(N + n) rescan per finished episode.
"""

from __future__ import annotations

import numpy as np

METRICS = ("td_error_rank", "success_binary", "avg_reward")


class ReferenceTPERSampler:
    """Host-side T-PER sampler as the reference code runs it.

    The arrays are kept by reference (not copied), so a benchmark can write new transitions
    in place and call ``on_episode_end(size)``.

    Args:
      rewards: (N,) per-step rewards.
      terminals: (N,) per-step episode-end flags (nonzero = last step of an episode).
      successes: (N,) per-step success flags.
      horizon: chunk length H ≥ 1.
      metric: ``'td_error_rank'``, ``'success_binary'`` or ``'avg_reward'``.
      alpha_rank, eps, ema_beta: rank exponent, uniform mixing ε, TD EMA β.
      seed: seed of the ``np.random.RandomState`` used for all draws.
      size: number of valid transitions (default N).
    """

    def __init__(self, rewards: np.ndarray, terminals: np.ndarray, successes: np.ndarray,
                 horizon: int, metric: str = "td_error_rank", alpha_rank: float = 0.7,
                 eps: float = 0.05, ema_beta: float = 0.9, seed: int = 0,
                 size: int | None = None) -> None:
        rewards, terminals, successes = (np.asarray(a) for a in (rewards, terminals, successes))
        if rewards.ndim != 1 or terminals.shape != rewards.shape \
                or successes.shape != rewards.shape:
            raise ValueError("rewards/terminals/successes: expected 1-D arrays of one shape (N,),"
                             f" got {rewards.shape}, {terminals.shape}, {successes.shape}")
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon: expected an int >= 1, got {horizon!r}")
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
        if not 0.0 <= eps <= 1.0 or not 0.0 <= ema_beta <= 1.0:
            raise ValueError("eps/ema_beta: expected values in [0, 1]")
        self.rewards = rewards
        self.terminals = terminals
        self.successes = successes
        self.horizon = int(horizon)
        self.metric = metric
        self.alpha_rank = float(alpha_rank)
        self.eps = float(eps)
        self.ema_beta = float(ema_beta)
        self.rng = np.random.RandomState(seed)
        self.td_ema: dict[int, float] = {}  # trajectory id → μ_τ (visited ones only)
        self.traj_bounds: list[tuple[int, int]] = []
        self.traj_success: list[bool] = []
        self.traj_avg_reward: list[float] = []
        self.on_episode_end(size)
        if not self.traj_bounds:
            raise ValueError("terminals: expected at least one terminal (one finished episode)")

    @property
    def num_trajectories(self) -> int:
        return len(self.traj_bounds)

    def on_episode_end(self, size: int | None = None) -> None:
        """Rescans ``terminals[:size]`` for the trajectory boundaries, O(N + n)."""
        size = self.terminals.shape[0] if size is None else int(size)
        if not 0 <= size <= self.terminals.shape[0]:
            raise ValueError(f"size: expected 0 <= size <= {self.terminals.shape[0]}, got {size}")
        self.size = size
        ends = np.nonzero(self.terminals[:size])[0]
        bounds, success, avg_reward = [], [], []
        b = 0
        for e in ends:
            e = int(e)
            bounds.append((b, e))
            success.append(bool(np.any(self.successes[b:e + 1])))
            avg_reward.append(float(np.mean(self.rewards[b:e + 1])))
            b = e + 1
        self.traj_bounds = bounds
        self.traj_success = success
        self.traj_avg_reward = avg_reward

    def _scores(self) -> np.ndarray:
        """(n,) float64 scores, recomputed in a Python loop over the trajectories."""
        scores = []
        for i in range(len(self.traj_bounds)):
            if self.metric == "td_error_rank":
                scores.append(self.td_ema.get(i, 0.0))
            elif self.metric == "success_binary":
                scores.append(2.0 if self.traj_success[i] else 0.1)
            else:
                scores.append(self.traj_avg_reward[i])
        return np.asarray(scores, dtype=np.float64)

    def probabilities(self) -> np.ndarray:
        """(n,) sampling probabilities p(τ) = (1 − ε)·w/Σw + ε/n, w = (rank + 1)^−α_rank."""
        scores = self._scores()
        n = scores.shape[0]
        order = np.argsort(-scores)  # descending, unstable: ties get arbitrary ranks
        ranks = np.empty(n, dtype=np.int64)
        ranks[order] = np.arange(n)
        w = (ranks + 1.0) ** (-self.alpha_rank)
        return (1.0 - self.eps) * w / w.sum() + self.eps / n

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Draws B trajectories by rank priority and a start in each.

        Returns:
          traj_ids: (B,) int64 trajectory ids; starts: (B,) int64 start indices, each in
          [b, max(b, e − H + 1)] of its trajectory.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        p = self.probabilities()
        traj_ids = self.rng.choice(len(p), batch_size, p=p)
        starts = np.empty(batch_size, dtype=np.int64)
        for j, tid in enumerate(traj_ids):
            b, e = self.traj_bounds[tid]
            hi = max(b, e - self.horizon + 1)
            starts[j] = self.rng.randint(b, hi + 1)
        return traj_ids.astype(np.int64), starts

    def update_td(self, traj_ids: np.ndarray, td_abs: np.ndarray) -> None:
        """μ_τ ← β·μ_τ + (1 − β)·|δ| per (τ, δ) pair of the batch, sequentially.

        Args:
          traj_ids: (B,) trajectory ids; td_abs: (B,) TD errors (absolute value is taken).
        """
        traj_ids = np.asarray(traj_ids)
        td_abs = np.asarray(td_abs, dtype=np.float64)
        if traj_ids.ndim != 1 or td_abs.shape != traj_ids.shape:
            raise ValueError(f"traj_ids/td_abs: expected 1-D arrays of one shape (B,), got "
                             f"{traj_ids.shape} and {td_abs.shape}")
        n = len(self.traj_bounds)
        if traj_ids.size and (traj_ids.min() < 0 or traj_ids.max() >= n):
            raise ValueError(f"traj_ids: expected ids in [0, {n}), got {traj_ids.min()}.."
                             f"{traj_ids.max()}")
        beta = self.ema_beta
        for tid, delta in zip(traj_ids.tolist(), td_abs.tolist(), strict=True):
            delta = abs(delta)
            if tid in self.td_ema:
                self.td_ema[tid] = beta * self.td_ema[tid] + (1.0 - beta) * delta
            else:
                self.td_ema[tid] = delta
