"""Tests of tper_jit.replay.clustering (ALGORITHM §5)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from tper_jit.replay.clustering import (
    ClusterResult,
    assign_clusters,
    cluster_episodes,
    cluster_figure,
    cluster_sampling_stats,
    plot_clusters,
    trajectory_features,
)

D = 4
PER_GROUP = 40
BASE_LENGTHS = (50, 60, 70, 80)


def make_groups(seed: int = 0, per_group: int = PER_GROUP):
    """4 well-separated groups: group g starts at 5·e_g, moves 3·e_{g+1}, length ~50..80.

    The groups are about equidistant in the standardised feature space, so the inertia
    curve has its knee at K = 4. Returns (obs (N, D), starts, lengths, groups, returns).
    """
    rng = np.random.default_rng(seed)
    eye = np.eye(D)
    obs, starts, lengths, groups, returns = [], [], [], [], []
    pos = 0
    for i in range(4 * per_group):
        g = i % 4
        length = BASE_LENGTHS[g] + int(rng.integers(-3, 4))
        t = np.linspace(0.0, 1.0, length)[:, None]
        path = 5.0 * eye[g] + t * 3.0 * eye[(g + 1) % 4]
        obs.append(path + 0.1 * rng.standard_normal((length, D)))
        starts.append(pos)
        lengths.append(length)
        groups.append(g)
        returns.append(10.0 * g + 0.1 * rng.standard_normal())
        pos += length
    return (np.concatenate(obs), np.array(starts), np.array(lengths), np.array(groups),
            np.array(returns))


@pytest.fixture(scope="module")
def data():
    obs, starts, lengths, groups, returns = make_groups()
    return obs, starts, lengths, groups, returns, trajectory_features(obs, starts, lengths)


def test_features_by_hand():
    obs = np.arange(60, dtype=np.float32).reshape(30, 2) ** 1.5
    starts, lengths = np.array([0, 5, 29]), np.array([5, 24, 1])
    feats = trajectory_features(obs, starts, lengths)
    assert feats.shape == (3, 3 + 20 * 2) and feats.dtype == np.float64
    for row, b, length in zip(feats, starts, lengths, strict=True):
        idx = np.linspace(b, b + length - 1, 20).astype(int)
        kf = obs[idx].astype(np.float64)
        norms = [np.linalg.norm(kf[i + 1] - kf[i]) for i in range(19)]
        expected = [length, np.mean(norms), np.std(norms), *kf.ravel()]
        np.testing.assert_allclose(row, expected, rtol=1e-12, atol=1e-12)
    assert feats[2, 1] == 0.0 and feats[2, 2] == 0.0  # length-1 trajectory: one repeated frame


def test_fixed_k_recovers_groups(data):
    _, _, _, groups, returns, feats = data
    for use_pca in (False, True):
        res = assign_clusters(feats, 4, use_pca=use_pca)
        assert isinstance(res, ClusterResult)
        assert res.k == 4 and res.method == "fixed" and res.use_pca is use_pca
        assert res.ids.shape == (len(groups),) and res.ids.dtype == np.int32
        assert res.embedding_2d.shape == (len(groups), 2)
        assert adjusted_rand_score(groups, res.ids) == 1.0
    # The embedding is the PCA-2D of the standardised features (up to the sign of each axis).
    z = (feats - feats.mean(0)) / np.where(feats.std(0) > 0, feats.std(0), 1.0)
    expected = PCA(n_components=2, svd_solver="full").fit_transform(z)
    np.testing.assert_allclose(np.abs(res.embedding_2d), np.abs(expected), atol=1e-8)


def test_elbow_selects_four(data):
    _, _, _, groups, _, feats = data
    res = assign_clusters(feats, "elbow", k_range=(2, 8))
    assert res.method == "elbow" and res.k == 4
    assert set(res.inertias) == set(range(1, 10))
    assert adjusted_rand_score(groups, res.ids) == 1.0


def test_homogeneity_separates_returns(data):
    _, _, _, groups, returns, feats = data
    res = assign_clusters(feats, "homogeneity", returns=returns, k_range=(2, 7))
    assert res.method == "homogeneity" and res.k == 4
    assert set(res.homogeneity_scores) == set(range(2, 8))
    assert min(res.homogeneity_scores, key=res.homogeneity_scores.get) == 4
    assert adjusted_rand_score(groups, res.ids) == 1.0


def test_k_clipped_and_deterministic(data):
    _, _, _, _, _, feats = data
    a = assign_clusters(feats, 5, seed=3)
    b = assign_clusters(feats, 5, seed=3)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.embedding_2d, b.embedding_2d)
    small = assign_clusters(feats[:3], 10)
    assert small.k == 3 and sorted(small.ids.tolist()) == [0, 1, 2]
    same = assign_clusters(np.ones((5, 3)), 3)  # one distinct point: K clipped to 1
    assert same.k == 1 and np.all(same.ids == 0)


def test_plot_and_entry(data, tmp_path):
    obs, starts, lengths, groups, returns, _ = data
    path = tmp_path / "nested" / "dir" / "clusters.png"
    res = cluster_episodes(obs, starts, lengths, returns, 4, plot_path=path)
    assert res.k == 4 and adjusted_rand_score(groups, res.ids) == 1.0
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        width, height = img.size
    assert width >= 2 * height * 0.9  # two side-by-side panels
    out = plot_clusters(res, None, tmp_path / "no_returns.png")
    assert out.exists()


def _result(ids, k):
    ids = np.asarray(ids, np.int32)
    emb = np.random.default_rng(0).standard_normal((ids.size, 2))
    return ClusterResult(ids=ids, k=k, method="fixed", use_pca=False, inertias={},
                         homogeneity_scores={}, embedding_2d=emb)


@pytest.mark.parametrize("k", [1, 4, 12, 13, 25, 45])
def test_cluster_legend_has_one_entry_per_cluster(k, tmp_path):
    counts = [1 + (i * 7) % 5 for i in range(k)]
    ids = np.repeat(np.arange(k), counts)
    fig = cluster_figure(_result(ids, k), np.linspace(0.0, 1.0, ids.size))
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None and len(fig.legends) == 0
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [f"cluster {i} ({counts[i]} episodes)" for i in range(k)]
    assert not any(c.get_label() == "cluster" for c in fig.axes[1:])  # no cluster colorbar
    styles = {(tuple(np.round(h.get_facecolor()[0], 6)), h.get_paths()[0].vertices.tobytes())
              for h in legend.legend_handles}
    assert len(styles) == k  # every cluster looks different (colour or marker)
    if k > 12:  # outside the axes, so no point is hidden behind the legend
        fig.canvas.draw()
        box, axbox = legend.get_window_extent(), ax.get_window_extent()
        assert box.x0 >= axbox.x1 and box.y1 <= fig.bbox.y1 + 1
        assert box.x1 <= fig.bbox.x1 + 1  # the figure is wide enough for the columns
    out = tmp_path / "c.png"
    fig.savefig(out, format="png")
    with Image.open(out) as img:
        img.verify()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k: expected k >= 1"),
        (dict(k="knee"), "k: expected a positive int or one of"),
        (dict(k=2.5), "k: expected a positive int"),
        (dict(k="homogeneity", returns=None), "returns: expected per-trajectory returns"),
        (dict(obs="nan"), "observations: expected finite"),
        (dict(obs="inf"), "observations: expected finite"),
        (dict(lengths=[5, 0]), "lengths: expected every length > 0"),
        (dict(starts=[0, 100]), "starts/lengths: expected 0 <= start"),
        (dict(starts=[-1, 5]), "starts/lengths: expected 0 <= start"),
        (dict(starts=[0, 5, 8]), "starts/lengths: expected the same shape"),
        (dict(starts=[], lengths=[]), "expected at least one trajectory"),
        (dict(obs="1d"), "observations: expected a 2-D array"),
    ],
)
def test_bad_inputs(kwargs, match):
    obs = np.zeros((20, 3))
    if kwargs.get("obs") == "nan":
        obs[7, 1] = np.nan
    elif kwargs.get("obs") == "inf":
        obs[3, 0] = np.inf
    elif kwargs.get("obs") == "1d":
        obs = np.zeros(20)
    starts = np.asarray(kwargs.get("starts", [0, 5]), dtype=np.int64)
    lengths = np.asarray(kwargs.get("lengths", [5, 10]), dtype=np.int64)
    returns = kwargs.get("returns", np.zeros(len(starts)))
    with pytest.raises(ValueError, match=match):
        cluster_episodes(obs, starts, lengths, returns, kwargs.get("k", 2))


def test_assign_bad_inputs():
    feats = np.zeros((10, 4))
    with pytest.raises(ValueError, match="features: expected finite"):
        assign_clusters(np.full((10, 4), np.nan), 2)
    with pytest.raises(ValueError, match="features: expected a non-empty 2-D"):
        assign_clusters(np.zeros((0, 4)), 2)
    with pytest.raises(ValueError, match=r"returns: expected finite values of shape \(10,\)"):
        assign_clusters(feats, "homogeneity", returns=np.zeros(9))
    with pytest.raises(ValueError, match="k_range"):
        assign_clusters(feats, "elbow", k_range=(5, 2))
    with pytest.raises(ValueError, match="pca_variance"):
        assign_clusters(feats, 2, use_pca=True, pca_variance=0.0)
    with pytest.raises(ValueError, match="num_keyframes"):
        trajectory_features(np.zeros((10, 2)), np.array([0]), np.array([10]), num_keyframes=1)


def test_sampling_stats():
    uni = cluster_sampling_stats(np.array([25, 25, 25, 25]))
    assert uni["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert uni["entropy"] == pytest.approx(np.log(4))
    assert uni["ess"] == pytest.approx(4.0) and uni["ess_fraction"] == pytest.approx(1.0)
    assert [uni[f"fraction/{c}"] for c in range(4)] == [0.25] * 4
    skew = cluster_sampling_stats(np.array([3, 1, 0]))
    f = np.array([0.75, 0.25])
    assert skew["entropy"] == pytest.approx(-np.sum(f * np.log(f)))
    assert skew["kl_to_uniform"] == pytest.approx(np.sum(f * np.log(f * 3)))
    assert skew["ess"] == pytest.approx(16 / 10)
    assert skew["fraction/2"] == 0.0 and skew["num_clusters"] == 3.0
    with pytest.raises(ValueError, match="counts: expected"):
        cluster_sampling_stats(np.array([0, 0]))
    with pytest.raises(ValueError, match="counts: expected"):
        cluster_sampling_stats(np.array([1, -1, 2]))
