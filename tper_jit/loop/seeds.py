"""Many seeds in one program: the shared offline block, the per-seed rest, vmap and sharding.

A training state (``TrainState`` or ``OnlineState``) holds the offline dataset rows in
``replay.store.offline``: identical for every seed and by far the largest array.  The driver
therefore carries a run as two parts:

- ``offline``: the ``Transitions`` block, stored once and passed to every compiled chunk as an
  unbatched argument (``vmap`` ``in_axes=None``: broadcast, never copied S times);
- ``rest``: everything else (agent, episode table, trees, priorities, online rings, env states,
  keys, counters), with a leading seed axis ``(S, ...)`` when S > 1.

``batch_chunk`` turns a one-seed chunk ``f(state, *static) -> (state, metrics)`` into the
jitted ``g(offline, rest, *static) -> (rest, metrics)`` (vmapped when S > 1, ``rest`` donated).
With several devices the seed axis is split over a 1-D ``Mesh`` named ``"seeds"`` (the offline
block replicated); the same command runs on 1 CPU, 1 GPU or N devices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tper_jit.seed_axis import SEED_AXIS


def seed_values(base: int, num_seeds: int) -> tuple[int, ...]:
    """The seeds of a run: ``base, base + 1, …, base + S − 1``."""
    return tuple(base + i for i in range(num_seeds))


def split_offline(state: Any) -> tuple[Any, Any]:
    """``state → (offline Transitions, state with replay.store.offline = None)``."""
    st = state.replay.store
    rest = state.replace(replay=state.replay.replace(store=st.replace(offline=None)))
    return st.offline, rest


def join_offline(offline: Any, rest: Any) -> Any:
    """Inverse of ``split_offline``."""
    st = rest.replay.store
    return rest.replace(replay=rest.replay.replace(store=st.replace(offline=offline)))


def stack(trees: Sequence[Any]) -> Any:
    """S pytrees of the same structure → one pytree with a leading ``(S,)`` axis."""
    if len(trees) == 1:
        return trees[0]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def index(tree: Any, s: int, num_seeds: int) -> Any:
    """Seed ``s`` of a (possibly stacked) pytree."""
    return tree if num_seeds == 1 else jax.tree.map(lambda x: x[s], tree)


def params_finite(agent: Any) -> jax.Array:
    """1.0 if every trainable parameter is finite, else 0.0 (one reduction per chunk)."""
    leaves = jax.tree.leaves(agent.params)
    ok = jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]).all()
    return ok.astype(jnp.float32)


def make_mesh(num_seeds: int, enabled: bool = True) -> Mesh | None:
    """A 1-D ``("seeds",)`` mesh over the largest divisor of S that fits the devices, or
    None (one device, S = 1, or sharding disabled)."""
    n = jax.device_count()
    if not enabled or n == 1 or num_seeds == 1:
        return None
    d = max(k for k in range(1, min(n, num_seeds) + 1) if num_seeds % k == 0)
    if d == 1:
        return None
    return Mesh(np.asarray(jax.devices()[:d]), ("seeds",))


def place(offline: Any, rest: Any, mesh: Mesh | None) -> tuple[Any, Any]:
    """Put the offline block (replicated) and the seed-stacked rest (split) on the mesh."""
    if mesh is None:
        return offline, rest
    return (jax.device_put(offline, NamedSharding(mesh, PartitionSpec())),
            jax.device_put(rest, NamedSharding(mesh, PartitionSpec("seeds"))))


def batch_chunk(fn: Callable, num_seeds: int, mesh: Mesh | None = None,
                num_static: int = 0, with_health: bool = True) -> Callable:
    """``fn(state, *static) -> (state, metrics)`` of one seed → jitted
    ``g(offline, rest, *static) -> (rest, metrics)`` over S seeds (metrics ``(S, ...)`` when
    S > 1).  ``rest`` is donated; ``static`` arguments are compile-time constants.  With
    ``with_health`` the metrics gain ``health/params_finite`` (1.0 / 0.0)."""

    def one(offline, rest, *static):
        state, metrics = fn(join_offline(offline, rest), *static)
        if with_health:
            metrics = {**metrics, "health/params_finite": params_finite(state.agent)}
        return split_offline(state)[1], metrics

    if num_seeds > 1:
        def many(offline, rest, *static):
            return jax.vmap(lambda r: one(offline, r, *static), axis_name=SEED_AXIS)(rest)
    else:
        many = one
    static_argnums = tuple(range(2, 2 + num_static))
    kwargs: dict[str, Any] = {}
    if mesh is not None:
        kwargs["in_shardings"] = (NamedSharding(mesh, PartitionSpec()),
                                  NamedSharding(mesh, PartitionSpec("seeds")))
        kwargs["out_shardings"] = NamedSharding(mesh, PartitionSpec("seeds"))
    return jax.jit(many, static_argnums=static_argnums, donate_argnums=1, **kwargs)


def per_seed(metrics: dict[str, Any], num_seeds: int) -> list[dict[str, np.ndarray]]:
    """Device metrics with a leading seed axis (S > 1) → one host dict per seed."""
    host = {k: np.asarray(v) for k, v in metrics.items()}
    if num_seeds == 1:
        return [host]
    return [{k: v[s] for k, v in host.items()} for s in range(num_seeds)]
