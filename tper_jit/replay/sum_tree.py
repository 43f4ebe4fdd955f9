"""A batched sum-tree over episode slots, as a pure-JAX pytree.

Layout: a complete binary tree stored in one flat array ``nodes`` of length ``2 * P`` where
``P`` (a power of two, ``P >= num_leaves``) is static.  Node 1 is the root, node ``i`` has
children ``2i`` and ``2i + 1``, leaf ``j`` lives at ``P + j``; node 0 is unused.  Leaves past
``num_leaves`` are always zero.

Costs (n = num_leaves, B = batch size):
- ``sample``: O(B log n) — a vectorised descent of B stratified draws.
- ``set_leaves``: O(B log n) — the B leaves are written, then each level's touched parents are
  recomputed *from their children* (not by adding deltas), so duplicate indices are harmless
  (duplicates must carry the same value, see ``set_leaves``) and float32 round-off cannot
  accumulate across updates: every internal node is always the float32 sum of its two
  children.  ``rebuild`` recomputes every node from the leaves in O(n) for wholesale changes.
- ``prefix_sum``: O(log n), used to sample inside a slot range (offline-only / online-only).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


@struct.dataclass
class SumTree:
    """Sum-tree state.

    Attributes:
        nodes: ``(2P,)`` float32; ``nodes[1]`` is the total, ``nodes[P:P+num_leaves]`` the leaves.
        num_leaves: static number of usable leaves n.
    """

    nodes: jax.Array
    num_leaves: int = struct.field(pytree_node=False)

    @property
    def capacity(self) -> int:
        """Static power-of-two leaf capacity P."""
        return self.nodes.shape[-1] // 2

    @property
    def depth(self) -> int:
        return self.capacity.bit_length() - 1

    @property
    def total(self) -> jax.Array:
        """Sum of all leaves (the root), scalar."""
        return self.nodes[..., 1]

    @property
    def leaves(self) -> jax.Array:
        """``(n,)`` leaf values."""
        p = self.capacity
        return self.nodes[..., p : p + self.num_leaves]


def create(num_leaves: int, leaves: jax.Array | None = None) -> SumTree:
    """A tree over ``num_leaves`` slots, all zero or initialised from ``leaves`` ``(n,)``."""
    if num_leaves < 1:
        raise ValueError(f"num_leaves must be >= 1, got {num_leaves}")
    p = _next_pow2(num_leaves)
    tree = SumTree(nodes=jnp.zeros((2 * p,), jnp.float32), num_leaves=num_leaves)
    if leaves is not None:
        tree = rebuild(tree, leaves)
    return tree


def rebuild(tree: SumTree, leaves: jax.Array) -> SumTree:
    """Replace every leaf by ``leaves`` ``(n,)`` (non-negative) and recompute all nodes, O(n)."""
    p = tree.capacity
    if leaves.shape != (tree.num_leaves,):
        raise ValueError(f"leaves must have shape ({tree.num_leaves},), got {leaves.shape}")
    level = jnp.zeros((p,), jnp.float32).at[: tree.num_leaves].set(leaves.astype(jnp.float32))
    levels = [level]
    while level.shape[0] > 1:
        level = level.reshape(-1, 2).sum(axis=-1)
        levels.append(level)
    # levels[-1] is the root (size 1); node layout is [unused, root, level1(2), level2(4), ...].
    nodes = jnp.concatenate([jnp.zeros((1,), jnp.float32)] + levels[::-1])
    return tree.replace(nodes=nodes)


def set_leaves(tree: SumTree, idx: jax.Array, values: jax.Array, mask: jax.Array | None = None
               ) -> SumTree:
    """Set leaves ``idx`` ``(B,)`` to ``values`` ``(B,)``; O(B log n).

    Entries with ``mask == False`` are ignored.  Duplicate indices must carry the same value
    (callers aggregate duplicates first); with differing values one of them wins, and the
    tree still stays consistent with its leaves because parents are recomputed from children.
    """
    p = tree.capacity
    idx = idx.astype(jnp.int32)
    if mask is None:
        mask = jnp.ones(idx.shape, bool)
    # Masked-out entries are pointed past the end and dropped by the scatter.
    oob = jnp.int32(2 * p)
    node = jnp.where(mask, idx + p, oob)
    nodes = tree.nodes.at[node].set(values.astype(jnp.float32), mode="drop")
    for _ in range(tree.depth):
        node = jnp.where(mask, node // 2, oob)
        left = nodes[jnp.minimum(2 * node, 2 * p - 2)]
        right = nodes[jnp.minimum(2 * node + 1, 2 * p - 1)]
        nodes = nodes.at[node].set(left + right, mode="drop")
    return tree.replace(nodes=nodes)


def get_leaves(tree: SumTree, idx: jax.Array) -> jax.Array:
    """Leaf values at ``idx`` ``(B,)``."""
    return tree.nodes[idx.astype(jnp.int32) + tree.capacity]


def prefix_sum(tree: SumTree, end: jax.Array | int) -> jax.Array:
    """Sum of leaves ``[0, end)``, O(log n).  ``end`` may be traced."""
    p = tree.capacity
    end = jnp.clip(jnp.asarray(end, jnp.int32), 0, p)

    # Walk from the root towards leaf `end`; every time we go right, the left sibling's
    # subtree lies entirely before `end` and is added.
    def body(level, carry):
        node, acc = carry
        shift = tree.depth - 1 - level
        go_right = ((end >> shift) & 1).astype(bool)
        acc = acc + jnp.where(go_right, tree.nodes[2 * node], 0.0)
        node = 2 * node + go_right.astype(jnp.int32)
        return node, acc

    _, acc = jax.lax.fori_loop(0, tree.depth, body, (jnp.int32(1), jnp.float32(0.0)))
    return jnp.where(end >= p, tree.total, acc)


def find(tree: SumTree, u: jax.Array) -> jax.Array:
    """Leaf index whose cumulative interval contains mass ``u`` ``(B,)``; O(B log n).

    Descends with ``u`` in ``[0, total)``.  Round-off can leave ``u`` beyond the left child's
    mass at a node whose right child is empty (or vice versa): the descent never enters an
    empty child when a non-empty sibling exists, so a zero-weight leaf is returned only when
    the whole tree is empty.
    """
    u = u.astype(jnp.float32)

    def body(_, carry):
        node, u = carry
        left = tree.nodes[2 * node]
        right = tree.nodes[2 * node + 1]
        go_right = ((u >= left) & (right > 0)) | (left <= 0)
        u = jnp.where(go_right, u - left, u)
        node = 2 * node + go_right.astype(jnp.int32)
        return node, u

    node0 = jnp.ones(u.shape, jnp.int32)
    # Unrolled: log2(P) levels of B-wide gathers, no per-level loop overhead.
    node, _ = jax.lax.fori_loop(0, tree.depth, body, (node0, u), unroll=True)
    return jnp.minimum(node - tree.capacity, tree.num_leaves - 1)


def sample(tree: SumTree, key: jax.Array, batch_size: int, *, lo: jax.Array | float = 0.0,
           hi: jax.Array | float | None = None, stratified: bool = True
           ) -> tuple[jax.Array, jax.Array]:
    """Draw ``batch_size`` leaves with probability ∝ leaf value; O(B log n).

    Args:
        key: PRNG key.
        batch_size: static B.
        lo, hi: restrict draws to the mass interval ``[lo, hi)`` (default the whole tree);
            with ``lo = prefix_sum(a)``, ``hi = prefix_sum(b)`` this samples leaves in
            ``[a, b)`` proportionally to their values.
        stratified: split ``[lo, hi)`` into B equal strata and draw one point in each (lower
            variance; each single draw is still exactly ∝ leaf value in expectation over the
            stratum position, and the batch is shuffled so positions carry no information).

    Returns:
        ``(idx (B,) int32, prob (B,) float32)`` where ``prob`` = leaf / (hi − lo), the
        probability of that leaf under the sampled distribution.
    """
    hi = tree.total if hi is None else hi
    lo = jnp.asarray(lo, jnp.float32)
    mass = jnp.asarray(hi, jnp.float32) - lo
    k_u, k_perm = jax.random.split(key)
    r = jax.random.uniform(k_u, (batch_size,))
    if stratified:
        r = (jnp.arange(batch_size) + r) / batch_size
        r = jax.random.permutation(k_perm, r)
    # Keep u strictly inside the interval so round-off cannot step past the last leaf.
    u = lo + jnp.minimum(r * mass, jnp.maximum(mass * (1.0 - 1e-6), 0.0))
    idx = find(tree, u)
    prob = get_leaves(tree, idx) / jnp.where(mass > 0, mass, 1.0)
    return idx, prob
