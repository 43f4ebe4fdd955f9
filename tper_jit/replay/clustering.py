"""Cluster assignment of trajectories for cluster-balanced offline sampling (ALGORITHM §5).

Host-side (numpy + scikit-learn), run once at set-up:

1. ``trajectory_features``: per trajectory, 20 keyframes at ``linspace(b, e, 20)`` (integer
   indices), their observations flattened, and the norms of the 19 consecutive keyframe
   differences; feature = ``[L, mean(norms), std(norms), keyframe obs...]``.
2. ``assign_clusters``: standardise, optionally PCA, K-means with a fixed K or an automatic K
   (elbow on inertia, or value homogeneity of the returns).
3. ``plot_clusters``: PCA-2D scatter coloured by cluster (a legend entry per cluster) and by
   return.

The sampler then draws p(τ) = (1/K)·(1/|C(τ)|); ``cluster_sampling_stats`` summarises the
per-cluster draw counts for logging under ``cluster/offline/*``.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
from sklearn.cluster import KMeans

_AUTO_METHODS = ("elbow", "homogeneity")


@dataclasses.dataclass(frozen=True)
class ClusterResult:
    """Outcome of ``assign_clusters``.

    Attributes:
      ids: (n,) int32 cluster id of each trajectory, in ``0..k-1``; every id is used.
      k: number of clusters actually used (≤ requested K; see ``assign_clusters``).
      method: ``'fixed'``, ``'elbow'`` or ``'homogeneity'``.
      use_pca: whether K-means ran on PCA components instead of the standardised features.
      inertias: K → K-means inertia, for every K fitted (empty for ``'fixed'``).
      homogeneity_scores: K → homogeneity objective (only for ``'homogeneity'``).
      embedding_2d: (n, 2) float64 PCA-2D of the standardised features (for plots).
    """

    ids: np.ndarray
    k: int
    method: str
    use_pca: bool
    inertias: dict[int, float]
    homogeneity_scores: dict[int, float]
    embedding_2d: np.ndarray


def _check_episodes(observations: np.ndarray, starts: np.ndarray, lengths: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validates (N, D) observations and (n,) starts/lengths; returns them as arrays."""
    obs = np.asarray(observations)
    if obs.ndim != 2:
        raise ValueError(f"observations: expected a 2-D array (N, D), got shape {obs.shape}")
    if not np.issubdtype(obs.dtype, np.number) or not np.all(np.isfinite(obs)):
        raise ValueError("observations: expected finite numbers, found NaN/inf (or non-numeric)")
    starts = np.asarray(starts)
    lengths = np.asarray(lengths)
    for name, arr in (("starts", starts), ("lengths", lengths)):
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name}: expected a 1-D integer array (n,), got shape {arr.shape} "
                             f"dtype {arr.dtype}")
    if starts.shape != lengths.shape:
        raise ValueError(f"starts/lengths: expected the same shape (n,), got {starts.shape} "
                         f"and {lengths.shape}")
    if starts.size == 0:
        raise ValueError("starts/lengths: expected at least one trajectory, got zero")
    if np.any(lengths <= 0):
        raise ValueError("lengths: expected every length > 0")
    n_obs = obs.shape[0]
    if np.any(starts < 0) or np.any(starts.astype(np.int64) + lengths > n_obs):
        raise ValueError(f"starts/lengths: expected 0 <= start and start + length <= N = {n_obs}")
    return obs, starts.astype(np.int64), lengths.astype(np.int64)


def _keyframe_indices(starts: np.ndarray, lengths: np.ndarray, num: int) -> np.ndarray:
    """(n, num) int64 = ``np.linspace(b, e, num).astype(int)`` per row, vectorised.

    Rows of length 1 are handled apart: a zero step makes ``np.linspace`` switch formula for
    the whole array, which could round other rows differently from a per-row call.
    """
    ends = starts + lengths - 1
    idx = np.repeat(starts[:, None], num, axis=1)
    multi = lengths > 1
    if np.any(multi):
        grid = np.linspace(starts[multi], ends[multi], num, axis=1)
        idx[multi] = grid.astype(int)
    return idx


def trajectory_features(observations: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                        num_keyframes: int = 20) -> np.ndarray:
    """Per-trajectory feature vectors, (n, 3 + num_keyframes·D) float64.

    Args:
      observations: (N, D) observations of the whole dataset.
      starts: (n,) int first index b of each trajectory.
      lengths: (n,) int length L of each trajectory (inclusive end e = b + L − 1).
      num_keyframes: keyframes per trajectory (≥ 2), at ``linspace(b, e, num_keyframes)``.

    Returns:
      (n, 3 + num_keyframes·D) float64 rows ``[L, mean(norms), std(norms), obs[k_0], ...]``
      where norms are the (num_keyframes − 1) L2 norms of consecutive keyframe differences
      (std with ddof 0). O(n·num_keyframes·D), no Python loop over trajectories.
    """
    if isinstance(num_keyframes, bool) or not isinstance(num_keyframes, (int, np.integer)) \
            or num_keyframes < 2:
        raise ValueError(f"num_keyframes: expected an int >= 2, got {num_keyframes!r}")
    obs, starts, lengths = _check_episodes(observations, starts, lengths)
    idx = _keyframe_indices(starts, lengths, int(num_keyframes))  # (n, F)
    keyframes = obs[idx].astype(np.float64)  # (n, F, D)
    norms = np.linalg.norm(np.diff(keyframes, axis=1), axis=-1)  # (n, F-1)
    n = starts.shape[0]
    return np.concatenate([
        lengths.astype(np.float64)[:, None],
        norms.mean(axis=1)[:, None],
        norms.std(axis=1)[:, None],
        keyframes.reshape(n, -1),
    ], axis=1)


def _check_k(k: int | str) -> None:
    if isinstance(k, str):
        if k not in _AUTO_METHODS:
            raise ValueError(f"k: expected a positive int or one of {_AUTO_METHODS}, got {k!r}")
    elif isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k: expected a positive int or one of {_AUTO_METHODS}, got {k!r}")
    elif k < 1:
        raise ValueError(f"k: expected k >= 1, got {k}")


def _standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column; (numerically) constant columns become 0."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    constant = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
    z = (x - mean) / np.where(constant, 1.0, std)
    z[:, constant] = 0.0
    return z


def _pca(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA of centred (n, d) data → (projections (n, r), explained-variance ratios (r,)).

    Eigendecomposition of the smaller Gram matrix (d×d or n×n), r = min(n, d), components in
    decreasing variance; each projection column's largest-magnitude entry is made positive so
    the result is deterministic. O(n·d·min(n, d)).
    """
    n, d = z.shape
    if float(np.sum(z * z)) == 0.0:
        return np.zeros((n, 1)), np.ones(1)
    if n <= d:
        evals, u = np.linalg.eigh(z @ z.T)
        evals, u = evals[::-1], u[:, ::-1]
        proj = u * np.sqrt(np.maximum(evals, 0.0))
    else:
        evals, v = np.linalg.eigh(z.T @ z)
        evals, v = evals[::-1], v[:, ::-1]
        proj = z @ v
    evals = np.maximum(evals, 0.0)
    pivot = np.argmax(np.abs(proj), axis=0)
    proj = proj * np.where(proj[pivot, np.arange(proj.shape[1])] < 0, -1.0, 1.0)
    return proj, evals / evals.sum()


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float]:
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
    return km.labels_, float(km.inertia_)


def _homogeneity(labels: np.ndarray, returns: np.ndarray, k: int, lambda_small: float,
                 lambda_k: float, min_cluster_size: int) -> float:
    """Σ_c n_c Var(returns_c)/Σ n_c + λ_small·#(n_c < min size)/K + λ_k·K."""
    counts = np.bincount(labels, minlength=k)
    means = np.bincount(labels, weights=returns, minlength=k) / np.maximum(counts, 1)
    within = float(np.mean((returns - means[labels]) ** 2))  # Σ_c n_c·Var_c / Σ_c n_c
    small = int(np.sum(counts[counts > 0] < min_cluster_size))
    return within + lambda_small * small / k + lambda_k * k


def assign_clusters(features: np.ndarray, k: int | str, returns: np.ndarray | None = None,
                    use_pca: bool = False, pca_variance: float = 0.95,
                    k_range: tuple[int, int] = (2, 16), seed: int = 0,
                    lambda_small: float = 1.0, lambda_k: float = 0.02,
                    min_cluster_size: int = 30) -> ClusterResult:
    """K-means cluster ids for (n, d) trajectory features.

    Features are standardised (zero mean, unit variance; zero-variance columns set to 0).
    ``use_pca=False`` (default) runs K-means on the full standardised features, as the
    reference code did; ``use_pca=True`` first keeps the fewest principal components that
    explain ``pca_variance`` of the variance, as the T-PER report describes.

    K selection (``k``):
      * int: fixed K, clipped to ≤ n.
      * ``'elbow'``: inertia I[K] for K in ``k_range`` (inclusive); the knee is the K with the
        largest second difference I[K−1] − 2·I[K] + I[K+1]. To make every K of the range
        selectable, I[k_lo − 1] and I[k_hi + 1] are also fitted (I[1] is the total sum of
        squares). Not argmin (the reference defect, which picked ~K_max).
      * ``'homogeneity'``: argmin over K in ``k_range`` of
        Σ_c n_c Var(returns_c)/Σ n_c + lambda_small·#(clusters < min_cluster_size)/K
        + lambda_k·K. The variance term is in return units², so the penalties weigh
        relatively less for returns of large scale. Needs ``returns`` (n,).
      Ties go to the smallest K. ``k_range`` is clipped to ≤ n.

    K (fixed, or the range) is clipped to ≤ the number of distinct points (≤ n), so no
    cluster is empty; ids are numbered ``0..k-1`` and ``k`` is the number of clusters used.
    Deterministic given ``seed``.

    Args:
      features: (n, d) finite features (e.g. from ``trajectory_features``).
      returns: (n,) per-trajectory returns, used by ``'homogeneity'`` (optional otherwise).

    Returns:
      ClusterResult with ids (n,) int32 and a (n, 2) PCA embedding of the standardised
      features.
    """
    _check_k(k)
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"features: expected a non-empty 2-D array (n, d), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ValueError("features: expected finite numbers, found NaN/inf (or non-numeric)")
    n = x.shape[0]
    if returns is not None:
        returns = np.asarray(returns, dtype=np.float64)
        if returns.shape != (n,) or not np.all(np.isfinite(returns)):
            raise ValueError(f"returns: expected finite values of shape ({n},), got shape "
                             f"{returns.shape}")
    if k == "homogeneity" and returns is None:
        raise ValueError("returns: expected per-trajectory returns (n,) for k='homogeneity'")
    if not 0.0 < pca_variance <= 1.0:
        raise ValueError(f"pca_variance: expected a value in (0, 1], got {pca_variance}")
    if isinstance(k, str):
        lo, hi = (int(v) for v in k_range)
        if not 1 <= lo <= hi:
            raise ValueError(f"k_range: expected 1 <= k_lo <= k_hi, got {k_range}")
    if min_cluster_size < 0 or lambda_small < 0 or lambda_k < 0:
        raise ValueError("lambda_small/lambda_k/min_cluster_size: expected non-negative values")

    z = _standardise(x.astype(np.float64))
    proj, ratio = _pca(z)
    embedding = np.zeros((n, 2))
    embedding[:, : min(2, proj.shape[1])] = proj[:, :2]
    if use_pca:
        keep = int(np.searchsorted(np.cumsum(ratio), pca_variance - 1e-9) + 1)
        data = proj[:, : min(keep, proj.shape[1])]
    else:
        data = z
    # K beyond the number of distinct points would leave clusters empty.
    n_distinct = int(np.unique(data, axis=0).shape[0])

    inertias: dict[int, float] = {}
    scores: dict[int, float] = {}
    if not isinstance(k, str):
        method, chosen = "fixed", min(int(k), n_distinct)
        labels, _ = _kmeans(data, chosen, seed)
    else:
        method = k
        lo, hi = min(lo, n_distinct), min(hi, n_distinct)
        labels_by_k: dict[int, np.ndarray] = {}
        fit_lo, fit_hi = lo, hi
        if method == "elbow":  # neighbours so that every K in the range has I[K±1]
            fit_lo, fit_hi = max(1, lo - 1), min(hi + 1, n_distinct)
        for kk in range(fit_lo, fit_hi + 1):
            labels_by_k[kk], inertias[kk] = _kmeans(data, kk, seed)
        if method == "elbow":
            cand = [kk for kk in range(lo, hi + 1) if kk - 1 in inertias and kk + 1 in inertias]
            if cand:
                second = [inertias[kk - 1] - 2 * inertias[kk] + inertias[kk + 1] for kk in cand]
                chosen = cand[int(np.argmax(second))]
            else:  # n too small for any second difference
                chosen = lo
        else:
            for kk in range(lo, hi + 1):
                scores[kk] = _homogeneity(labels_by_k[kk], returns, kk, lambda_small, lambda_k,
                                          min_cluster_size)
            chosen = min(scores, key=lambda kk: (scores[kk], kk))
        labels = labels_by_k[chosen]

    used, ids = np.unique(labels, return_inverse=True)
    return ClusterResult(ids=ids.astype(np.int32).reshape(n), k=int(used.size), method=method,
                         use_pca=bool(use_pca), inertias=inertias, homogeneity_scores=scores,
                         embedding_2d=embedding)


def cluster_style(i: int, k: int) -> tuple[tuple[float, ...], str]:
    """Colour and marker of cluster ``i`` of ``k``: a qualitative map (tab10 for K <= 10, else
    tab20); past 20 clusters the colours repeat with another marker shape."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return tuple(cmap(i % cmap.N)), "osD^v<>ph*"[(i // cmap.N) % 10]


def cluster_figure(result: ClusterResult, returns: np.ndarray | None):
    """The figure ``plot_clusters`` saves: PCA-2D scatter coloured by cluster with one legend
    entry per cluster ("cluster i (n episodes)", outside the axes in columns when K > 12),
    and by return on the right.  A :class:`matplotlib.figure.Figure` on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    emb = result.embedding_2d
    n = emb.shape[0]
    if returns is not None:
        returns = np.asarray(returns, dtype=np.float64)
        if returns.shape != (n,):
            raise ValueError(f"returns: expected shape ({n},), got {returns.shape}")
    k = int(result.k)
    ids = np.asarray(result.ids)
    fig = Figure(figsize=(12 + (2.2 * (1 + (k - 1) // 24) if k > 12 else 0), 5), dpi=100)
    FigureCanvasAgg(fig)
    ax_c, ax_r = fig.subplots(1, 2)
    for i in range(k):
        color, marker = cluster_style(i, k)
        sel = ids == i
        ax_c.scatter(emb[sel, 0], emb[sel, 1], color=color, marker=marker, s=12,
                     label=f"cluster {i} ({int(sel.sum())} episodes)")
    ax_c.set_title(f"clusters: K={k} ({result.method}, pca={result.use_pca})")
    if k > 12:  # outside the axes, 24 entries per column
        ax_c.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small",
                    ncol=1 + (k - 1) // 24, markerscale=1.5, borderaxespad=0.0)
    else:
        ax_c.legend(loc="best", fontsize="small", markerscale=1.5)
    if returns is not None:
        sr = ax_r.scatter(emb[:, 0], emb[:, 1], c=returns, cmap="viridis", s=12)
        fig.colorbar(sr, ax=ax_r, label="return")
        ax_r.set_title(f"return (K={k}, {result.method})")
    else:
        ax_r.scatter(emb[:, 0], emb[:, 1], c="grey", s=12)
        ax_r.set_title(f"return not given (K={k}, {result.method})")
    for ax in (ax_c, ax_r):
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    fig.tight_layout()
    return fig


def plot_clusters(result: ClusterResult, returns: np.ndarray | None,
                  path: str | pathlib.Path) -> pathlib.Path:
    """Writes ``cluster_figure(result, returns)`` as a PNG (no pyplot, no global backend
    change). Creates parent directories. Returns the written path."""
    fig = cluster_figure(result, returns)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def cluster_episodes(observations: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                     returns: np.ndarray | None, k: int | str, *, use_pca: bool = False,
                     seed: int = 0, plot_path: str | pathlib.Path | None = None
                     ) -> ClusterResult:
    """Features → clusters (→ optional PNG): the trainer's one-call entry.

    Args:
      observations: (N, D); starts, lengths: (n,) int; returns: (n,) or None
      (required for ``k='homogeneity'``); k: int, ``'elbow'`` or ``'homogeneity'``.
    """
    _check_k(k)
    if k == "homogeneity" and returns is None:
        raise ValueError("returns: expected per-trajectory returns (n,) for k='homogeneity'")
    feats = trajectory_features(observations, starts, lengths)
    result = assign_clusters(feats, k, returns=returns, use_pca=use_pca, seed=seed)
    if plot_path is not None:
        plot_clusters(result, returns, plot_path)
    return result


def cluster_sampling_stats(counts: np.ndarray) -> dict[str, float]:
    """Summary of per-cluster draw counts (K,), keys for logging under ``cluster/offline/*``.

    Returns ``entropy`` (nats, of the draw fractions f), ``kl_to_uniform`` (KL(f ‖ 1/K) =
    log K − entropy), ``ess`` ((Σc)²/Σc², K for uniform draws), ``ess_fraction`` (ess/K),
    ``num_clusters``, ``total`` and ``fraction/<c>`` for each cluster c.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)) or np.any(c < 0) \
            or c.sum() <= 0:
        raise ValueError("counts: expected a non-empty 1-D array (K,) of non-negative counts "
                         "with a positive sum")
    k = c.size
    total = c.sum()
    f = c / total
    nz = f > 0
    entropy = float(-np.sum(f[nz] * np.log(f[nz])))
    stats = {
        "entropy": entropy,
        "kl_to_uniform": float(max(np.log(k) - entropy, 0.0)),
        "ess": float(total**2 / np.sum(c**2)),
        "num_clusters": float(k),
        "total": float(total),
    }
    stats["ess_fraction"] = stats["ess"] / k
    stats.update({f"fraction/{i}": float(v) for i, v in enumerate(f)})
    return stats
