"""seed_cond: exactly the per-seed cond, but one real branch when the vmapped seeds agree."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.seed_axis import SEED_AXIS, seed_cond


def _f(x, p, safe=False):
    return seed_cond(p, lambda v: v * 2.0 + 1.0, lambda v: v - 1.0, x, true_is_safe=safe)


def _vf(safe=False):
    return jax.jit(jax.vmap(lambda x, p: _f(x, p, safe), axis_name=SEED_AXIS))


def _top_level_prims(fn, *args):
    return [e.primitive.name for e in jax.make_jaxpr(fn)(*args).jaxpr.eqns]


@pytest.mark.parametrize("pred", [[True, True, True], [False, False, False],
                                  [True, False, True]])
def test_equals_the_per_seed_cond(pred):
    x = jnp.arange(3.0)
    p = jnp.asarray(pred)
    want = jax.vmap(lambda x, p: jax.lax.cond(p, lambda v: v * 2.0 + 1.0,
                                              lambda v: v - 1.0, x))(x, p)
    np.testing.assert_array_equal(np.asarray(_vf()(x, p)), np.asarray(want))


def test_outside_the_seed_vmap_it_is_a_plain_cond():
    assert float(_f(jnp.float32(3.0), jnp.bool_(True))) == 7.0
    assert float(_f(jnp.float32(3.0), jnp.bool_(False))) == 2.0
    # a vmap without the seed axis name: the ordinary (per-element) cond
    out = jax.vmap(_f)(jnp.arange(2.0), jnp.array([True, False]))
    np.testing.assert_array_equal(np.asarray(out), [1.0, 0.0])


def test_true_is_safe_runs_true_for_all_when_any_needs_it():
    # (deliberately unsafe branches, to see which one ran)
    out = _vf(safe=True)(jnp.arange(3.0), jnp.array([False, True, False]))
    np.testing.assert_array_equal(np.asarray(out), [1.0, 3.0, 5.0])
    out = _vf(safe=True)(jnp.arange(3.0), jnp.array([False, False, False]))
    np.testing.assert_array_equal(np.asarray(out), [-1.0, 0.0, 1.0])


def test_the_vmapped_branch_stays_a_cond():
    """A batched predicate turns lax.cond into select_n (both branches run); seed_cond keeps
    a top-level cond on an unbatched predicate."""
    x, p = jnp.arange(3.0), jnp.array([True, True, False])
    plain = jax.vmap(lambda x, p: jax.lax.cond(p, jnp.sin, jnp.cos, x))
    assert "cond" not in _top_level_prims(plain, x, p)
    for safe in (False, True):
        fn = jax.vmap(lambda x, p, s=safe: seed_cond(p, jnp.sin, jnp.cos, x, true_is_safe=s),
                      axis_name=SEED_AXIS)
        prims = _top_level_prims(fn, x, p)
        assert "cond" in prims and "select_n" not in prims, prims
