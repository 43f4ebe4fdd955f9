"""Sum-tree invariants: root = Σ leaves, duplicates, drift, sampling law, range sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tper_jit.replay import sum_tree


def _internal_consistent(tree: sum_tree.SumTree) -> bool:
    nodes = np.asarray(tree.nodes)
    p = tree.capacity
    parents = np.arange(1, p)
    return np.allclose(nodes[parents], nodes[2 * parents] + nodes[2 * parents + 1], rtol=1e-6,
                       atol=1e-6)


@pytest.mark.parametrize("n", [1, 5, 1000, 1023, 1025])
def test_rebuild_and_root_equal_sum_of_leaves(n):
    leaves = jax.random.uniform(jax.random.PRNGKey(n), (n,))
    tree = sum_tree.create(n, leaves)
    np.testing.assert_allclose(float(tree.total), float(np.asarray(leaves, np.float64).sum()),
                               rtol=1e-5)
    assert _internal_consistent(tree)
    np.testing.assert_array_equal(np.asarray(tree.leaves), np.asarray(leaves))


def test_batched_updates_with_duplicates_keep_tree_consistent():
    n = 777  # not a power of two
    tree = sum_tree.create(n, jnp.ones((n,)))
    ref = np.ones(n, np.float64)
    rng = np.random.default_rng(0)
    upd = jax.jit(sum_tree.set_leaves)
    for _ in range(50):
        idx = rng.integers(0, n, 64)
        idx[:8] = idx[0]  # force duplicates
        vals = rng.uniform(0, 5, 64)
        # duplicates carry one value (the documented contract): the last write per index
        last = {i: v for i, v in zip(idx, vals, strict=True)}
        vals = np.array([last[i] for i in idx])
        ref[idx] = vals
        mask = rng.uniform(size=64) < 0.9
        ref_masked_out = ~mask
        # masked entries must not be written: restore them in the reference
        for i, m in zip(idx, ref_masked_out, strict=True):
            if m and not np.any(mask[idx == i]):
                ref[i] = float(tree.leaves[i])
        tree = upd(tree, jnp.asarray(idx), jnp.asarray(vals, jnp.float32), jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(tree.leaves), ref, rtol=1e-6)
    np.testing.assert_allclose(float(tree.total), ref.sum(), rtol=1e-5)
    assert _internal_consistent(tree)


def test_float32_drift_after_a_million_updates():
    n, b, steps = 4096, 1000, 1000  # 10^6 leaf updates
    tree = sum_tree.create(n, jnp.ones((n,)))

    def body(tree, key):
        k1, k2 = jax.random.split(key)
        idx = jax.random.randint(k1, (b,), 0, n)
        vals = jax.random.uniform(k2, (b,), minval=0.0, maxval=10.0)
        # one value per index (duplicates must agree): take each index's last write
        order = jnp.arange(b)
        winner = jnp.zeros((n,), jnp.int32).at[idx].max(order)
        vals = vals[winner[idx]]
        return sum_tree.set_leaves(tree, idx, vals), None

    tree, _ = jax.jit(lambda t, ks: jax.lax.scan(body, t, ks))(
        tree, jax.random.split(jax.random.PRNGKey(0), steps))
    exact = np.asarray(tree.leaves, np.float64).sum()
    drift = abs(float(tree.total) - exact) / exact
    assert drift < 1e-5, drift


def test_sampling_frequencies_match_leaves_chi_square():
    n = 50
    leaves = np.random.default_rng(1).uniform(0, 1, n).astype(np.float32)
    leaves[[3, 17]] = 0.0  # zero-weight leaves are never drawn
    tree = sum_tree.create(n, jnp.asarray(leaves))
    draw = jax.jit(lambda k: sum_tree.sample(tree, k, 1000))
    counts = np.zeros(n)
    for k in jax.random.split(jax.random.PRNGKey(2), 200):
        idx, prob = draw(k)
        counts += np.bincount(np.asarray(idx), minlength=n)
        np.testing.assert_allclose(np.asarray(prob), leaves[np.asarray(idx)] / leaves.sum(),
                                   rtol=1e-5)
    assert counts[3] == 0 and counts[17] == 0
    p = leaves / leaves.sum()
    nz = p > 0
    _, pval = stats.chisquare(counts[nz], counts.sum() * p[nz])
    assert pval > 1e-3, pval


def test_prefix_sum_and_range_sampling():
    n = 100
    leaves = jnp.arange(n, dtype=jnp.float32) + 1.0
    tree = sum_tree.create(n, leaves)
    for end in [0, 1, 37, 64, 99, 100]:
        np.testing.assert_allclose(float(sum_tree.prefix_sum(tree, end)),
                                   float(leaves[:end].sum()), rtol=1e-6)
    lo, hi = sum_tree.prefix_sum(tree, 40), sum_tree.prefix_sum(tree, 60)
    idx, prob = jax.jit(lambda k: sum_tree.sample(tree, k, 20000, lo=lo, hi=hi))(
        jax.random.PRNGKey(0))
    idx = np.asarray(idx)
    assert idx.min() >= 40 and idx.max() < 60
    w = np.arange(40, 60) + 1.0
    counts = np.bincount(idx - 40, minlength=20)
    _, pval = stats.chisquare(counts, 20000 * w / w.sum())
    assert pval > 1e-3
    np.testing.assert_allclose(np.asarray(prob), (idx + 1.0) / w.sum(), rtol=1e-5)


def test_bad_leaf_shape_raises():
    tree = sum_tree.create(10)
    with pytest.raises(ValueError, match="leaves must have shape"):
        sum_tree.rebuild(tree, jnp.ones((11,)))
    with pytest.raises(ValueError, match="num_leaves"):
        sum_tree.create(0)
