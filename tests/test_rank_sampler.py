"""T-PER's rank-position sampler against the exact law of ALGORITHM §4 (chi-square).

The exact law ("today's exact sampler", a full sort of the current scores): average ranks of
the descending scores (scipy ``rankdata``), w = (r + 1)^-0.7, p = 0.95 w / Σw + 0.05 / n.
Every test draws ``DRAWS`` episodes with the trainer's sampler (``make_sampler`` kind
``tper``, fixed seeds) and requires a chi-square p-value > 1e-3; deliberately wrong variants
(positional weights without the tie correction, a stale law) must give p < 1e-6, which shows
the test can tell them apart.  Large tie groups are included: hundreds of unseen episodes
(score +inf) and a block of equal μ.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tper_jit.replay import priorities, ranking, samplers, store, sum_tree

DRAWS, BATCH = 200_000, 1000
N_OFF = 400  # offline episodes


def _store(n_off=N_OFF, episodes_per_stream=64):
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 9, n_off)
    term = np.concatenate([np.eye(1, ln, ln - 1, dtype=np.float32)[0] for ln in lengths])
    n = len(term)
    obs = np.zeros((n, 1), np.float32)
    return store.build(obs, np.zeros((n, 1), np.float32), np.zeros(n, np.float32), term, obs,
                       num_streams=1, rows_per_stream=512, episodes_per_stream=episodes_per_stream,
                       max_episode_length=16)


def _set_mu(st, seen_mu: dict[int, float]):
    """Mark the slots in ``seen_mu`` seen with those μ; every other slot unseen."""
    t = st.episodes
    mu, seen = np.zeros(st.num_slots, np.float32), np.zeros(st.num_slots, bool)
    for slot, m in seen_mu.items():
        mu[slot], seen[slot] = m, True
    return st.replace(episodes=t.replace(mu=jnp.asarray(mu), seen=jnp.asarray(seen)))


def _tie_heavy_mu():
    """150 seen episodes: 100 distinct μ and a tie group of 50 at μ = 0.5; 250 unseen."""
    rng = np.random.default_rng(1)
    seen = rng.choice(N_OFF, 150, replace=False)
    mu = {int(s): float(v) for s, v in zip(seen[:100], rng.uniform(0, 2, 100), strict=True)}
    mu.update({int(s): 0.5 for s in seen[100:]})
    return mu


def exact_law(st, cfg) -> np.ndarray:
    """``(E,)`` float64 p(τ) of ALGORITHM §4 from a full sort of the current scores."""
    s = np.asarray(priorities.scores(st, cfg), np.float64)
    incl = s > -np.inf
    p = np.zeros(len(s))
    r = stats.rankdata(-s[incl], method="average") - 1
    w = (r + 1) ** -cfg.alpha_rank
    p[incl] = (1 - cfg.eps) * w / w.sum() + cfg.eps / incl.sum()
    return p


def _counts(state, cfg, seed=0, prio=None):
    state = state if prio is None else state.replace(priorities=prio)
    sample = samplers.make_sampler(cfg)
    keys = jax.random.split(jax.random.PRNGKey(seed), DRAWS // BATCH)
    ids = jax.jit(jax.vmap(lambda k: sample(state, k, BATCH).episode_ids))(keys)
    return np.bincount(np.asarray(ids).ravel(), minlength=state.store.num_slots)


def chi2_pvalue(counts, p) -> float:
    keep = p > 0
    assert counts[~keep].sum() == 0, "drew an excluded slot"
    expected = p[keep] / p[keep].sum() * counts.sum()
    assert expected.min() >= 5
    return stats.chisquare(counts[keep], expected).pvalue


def _replay(st, **tper_kw):
    tper = priorities.TPERConfig(metric="td_error_rank", warmup_steps=0, **tper_kw)
    cfg = samplers.SamplerConfig(kind="tper", horizon=3, tper=tper)
    return samplers.init_replay(st, cfg), cfg


def test_law_with_large_tie_groups_and_wrong_variants_fail():
    st = _set_mu(_store(), _tie_heavy_mu())
    state, cfg = _replay(st)
    p = exact_law(st, cfg.tper)
    np.testing.assert_allclose(np.asarray(priorities.slot_probabilities(state.priorities)), p,
                               rtol=2e-5, atol=1e-9)
    assert chi2_pvalue(_counts(state, cfg), p) > 1e-3
    # Wrong 1: positional weights (i+1)^-α with a uniform draw inside each tie group — the
    # group gets the mean of its positional weights, not the weight of its mean rank.
    prio = state.priorities
    n = int((np.asarray(prio.index.sorted_scores) > -np.inf).sum())
    w = np.zeros(st.num_slots)
    w[:n] = (np.arange(n) + 1.0) ** -0.7
    leaves = 0.95 * w / w.sum() + np.where(np.arange(st.num_slots) < n, 0.05 / n, 0)
    wrong = prio.replace(tree=sum_tree.create(st.num_slots, jnp.asarray(leaves, jnp.float32)))
    assert chi2_pvalue(_counts(state, cfg, seed=1, prio=wrong), p) < 1e-6
    # Wrong 2: ties share their first (min) rank instead of the average one.
    r = stats.rankdata(-np.asarray(priorities.scores(st, cfg.tper))[:N_OFF], "min") - 1
    q = np.zeros(st.num_slots)
    w = (r + 1) ** -0.7
    q[:N_OFF] = 0.95 * w / w.sum() + 0.05 / N_OFF
    assert chi2_pvalue(_counts(state, cfg), q) < 1e-6


def test_uniform_metric_is_one_tie_group():
    st = _store()
    tper = priorities.TPERConfig(metric="uniform", warmup_steps=0)
    cfg = samplers.SamplerConfig(kind="tper", horizon=3, tper=tper)
    state = samplers.init_replay(st, cfg)
    p = exact_law(st, tper)
    np.testing.assert_allclose(p[:N_OFF], 1 / N_OFF)
    assert chi2_pvalue(_counts(state, cfg), p) > 1e-3


def _learn_steps(state, cfg, steps, batch, seed):
    sample = samplers.make_sampler(cfg)

    @jax.jit
    def run(state, key):
        def step(state, k):
            k_s, k_td = jax.random.split(k)
            s = sample(state, k_s, batch)
            td = jax.random.exponential(k_td, (batch,))
            prio, st = priorities.update_priorities(state.priorities, state.store,
                                                    s.episode_ids, td, cfg.tper)
            return state.replace(priorities=prio, store=st), None
        return jax.lax.scan(step, state, jax.random.split(key, steps))[0]

    return run(state, jax.random.PRNGKey(seed))


def test_exact_every_step_after_mu_updates():
    st = _set_mu(_store(), _tie_heavy_mu())
    state, cfg = _replay(st, refresh_fraction=0.0)
    assert state.priorities.pending.shape == (0,)
    state = _learn_steps(state, cfg, steps=7, batch=64, seed=3)
    assert int(state.store.episodes.seen.sum()) > 150  # some unseen ones got a μ
    p = exact_law(state.store, cfg.tper)
    np.testing.assert_allclose(np.asarray(priorities.slot_probabilities(state.priorities)), p,
                               rtol=2e-5, atol=1e-9)
    assert chi2_pvalue(_counts(state, cfg, seed=4), p) > 1e-3


def test_buffered_refresh_law_is_the_last_refresh_law():
    """P = ⌊E / 16⌋ = 29 pending μ updates at B = 8: a refresh every 3 steps.  Between
    refreshes the law is exactly that of the μ values at the last refresh (stated staleness);
    after ``sync`` it is exact for the current μ; a stale law fails against the current one."""
    st = _set_mu(_store(episodes_per_stream=64), _tie_heavy_mu())
    state, cfg = _replay(st)
    e, b = st.num_slots, 8
    assert state.priorities.pending.shape == (e // 16,) and e // 16 // b == 3
    snapshots = []
    for step in range(7):
        state = _learn_steps(state, cfg, steps=1, batch=b, seed=10 + step)
        # 8, 16, then 24 + 8 > 29: the whole buffer is merged at the μ after this step
        assert int(state.priorities.num_pending) == b * ((step + 1) % 3)
        if step % 3 == 2:
            snapshots.append(state.store)
    p_last = exact_law(snapshots[-1], cfg.tper)
    np.testing.assert_allclose(np.asarray(priorities.slot_probabilities(state.priorities)),
                               p_last, rtol=2e-5, atol=1e-9)
    assert chi2_pvalue(_counts(state, cfg, seed=5), p_last) > 1e-3
    # Make the pending changes large, so the stale law differs visibly from the current one.
    t = state.store.episodes
    pend = np.asarray(state.priorities.pending)[: int(state.priorities.num_pending)]
    mu = np.asarray(t.mu).copy()
    mu[pend] = 10.0 + np.arange(len(pend))
    cur = state.store.replace(episodes=t.replace(mu=jnp.asarray(mu)))
    assert chi2_pvalue(_counts(state, cfg, seed=6), exact_law(cur, cfg.tper)) < 1e-6
    prio, cur = priorities.sync(state.priorities, cur, cfg.tper)
    state = state.replace(priorities=prio, store=cur)
    assert chi2_pvalue(_counts(state, cfg, seed=7), exact_law(cur, cfg.tper)) > 1e-3


def test_growing_n_new_unseen_episodes_join_the_top_tie_group():
    st = _set_mu(_store(), {i: 0.01 * (i + 1) for i in range(N_OFF)})  # all offline seen
    state, cfg = _replay(st)
    n_before = int((np.asarray(state.priorities.index.sorted_scores) > -np.inf).sum())
    sync = jax.jit(lambda p, s: priorities.sync_if_changed(p, s, cfg.tper))
    add = jax.jit(store.add_step)
    rng = np.random.default_rng(2)
    st = state.store
    prio = state.priorities
    skipped = 0
    for _ in range(40):  # 40 online episodes of 2-5 steps, synced after every write
        ln = int(rng.integers(2, 6))
        for i in range(ln):
            st = add(st, jnp.zeros((1, 1)), jnp.zeros((1, 1)), jnp.zeros(1), jnp.zeros(1, bool),
                     jnp.array([i == ln - 1]), jnp.zeros((1, 1)), jnp.zeros(1))
            before, clean = prio, int(st.num_dirty) == 0
            prio, st = sync(prio, st)
            if clean:  # nothing finished or overwritten: the index and tree are left alone
                skipped += 1
                np.testing.assert_array_equal(np.asarray(prio.tree.nodes),
                                              np.asarray(before.tree.nodes))
    assert skipped > 0
    state = state.replace(store=st, priorities=prio)
    n_after = int((np.asarray(prio.index.sorted_scores) > -np.inf).sum())
    assert n_after == n_before + 40
    p = exact_law(st, cfg.tper)
    assert np.allclose(p[N_OFF:N_OFF + 40], p.max())  # the 40 unseen share the top rank
    assert chi2_pvalue(_counts(state, cfg, seed=8), p) > 1e-3


def test_merge_with_nan_key_sort_matches_full_sort_on_ties():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 5, 500).astype(np.float32)
    scores[:50] = np.inf
    scores[50:80] = -np.inf
    index = ranking.build_index(jnp.asarray(scores))
    slots = rng.choice(500, 100, replace=False)
    new = rng.integers(0, 5, 100).astype(np.float32)
    new[:10], new[10:20] = np.inf, -np.inf
    mask = rng.uniform(size=100) < 0.7
    scores[slots[mask]] = new[mask]
    index = ranking.merge_update(index, jnp.asarray(slots), jnp.asarray(new), jnp.asarray(mask))
    np.testing.assert_array_equal(np.asarray(index.sorted_scores), np.sort(scores)[::-1])
    np.testing.assert_array_equal(scores[np.asarray(index.order)], np.sort(scores)[::-1])


@pytest.mark.parametrize("frac", [-0.1, 1.5])
def test_config_rejects_bad_refresh_fraction(frac):
    with pytest.raises(ValueError, match="refresh_fraction"):
        priorities.TPERConfig(refresh_fraction=frac)


@pytest.mark.parametrize("largest_finite_group", [1, 2, 8, 9, 40])
def test_doubled_average_ranks_both_paths_match_scipy(largest_finite_group):
    rng = np.random.default_rng(largest_finite_group)
    sizes = list(rng.integers(1, min(largest_finite_group, 8) + 1, 300)) + [largest_finite_group]
    vals = np.repeat(rng.permutation(len(sizes)).astype(np.float32), sizes)
    s = np.concatenate([np.full(37, np.inf), vals, np.full(21, -np.inf)]).astype(np.float32)
    s = np.sort(s)[::-1].copy()
    got = np.asarray(jax.jit(ranking.doubled_average_ranks)(jnp.asarray(s)))
    want = 2 * (stats.rankdata(-s.astype(np.float64), method="average") - 1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.asarray(ranking._group_bounds_by_scan(jnp.asarray(s))), want)
