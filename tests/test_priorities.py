"""Rank index, average ranks, T-PER probabilities and the EMA update of μ."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tper_jit.replay import priorities, ranking, store


def test_average_ranks_match_scipy_with_ties():
    s = np.array([5, 3, 3, 3, 2, 2, 1, -np.inf, -np.inf], np.float32)
    got = np.asarray(ranking.average_ranks(jnp.asarray(s)))
    np.testing.assert_allclose(got, stats.rankdata(-s, method="average") - 1)


def test_merge_update_equals_full_sort_after_random_batches():
    e, m = 3000, 40
    rng = np.random.default_rng(0)
    # integer-valued scores make many ties; some slots excluded (-inf) or unseen (+inf)
    scores = rng.integers(0, 50, e).astype(np.float32)
    scores[rng.uniform(size=e) < 0.1] = -np.inf
    scores[rng.uniform(size=e) < 0.05] = np.inf
    index = ranking.build_index(jnp.asarray(scores))
    merge = jax.jit(ranking.merge_update)
    for _ in range(30):
        slots = rng.choice(e, m, replace=False)
        new = rng.integers(0, 50, m).astype(np.float32)
        new[rng.uniform(size=m) < 0.1] = -np.inf
        mask = rng.uniform(size=m) < 0.8
        scores[slots[mask]] = new[mask]
        index = merge(index, jnp.asarray(slots), jnp.asarray(new), jnp.asarray(mask))
        order = np.asarray(index.order)
        assert sorted(order.tolist()) == list(range(e))  # a permutation
        np.testing.assert_array_equal(np.asarray(index.sorted_scores), scores[order])
        np.testing.assert_array_equal(scores[order], np.sort(scores)[::-1])


def _store_with_returns(returns_per_ep, lengths=None, successes=None):
    n_ep = len(returns_per_ep)
    lengths = lengths or [4] * n_ep
    rew, term, succ = [], [], []
    for i, (ret, ln) in enumerate(zip(returns_per_ep, lengths, strict=True)):
        r = np.full(ln, ret / ln, np.float32)
        rew.append(r)
        t = np.zeros(ln, np.float32)
        t[-1] = 1
        term.append(t)
        s = np.zeros(ln, np.float32)
        if successes is not None and successes[i]:
            s[-1] = 1
        succ.append(s)
    rew, term, succ = map(np.concatenate, (rew, term, succ))
    n = len(rew)
    obs = np.zeros((n, 2), np.float32)
    return store.build(obs, np.zeros((n, 1), np.float32), rew, term, obs, successes=succ,
                       num_streams=1, rows_per_stream=16, max_episode_length=8)


def _expected_p(score, alpha=0.7, eps=0.05):
    r = stats.rankdata(-np.asarray(score, np.float64), method="average") - 1
    w = (r + 1) ** -alpha
    return (1 - eps) * w / w.sum() + eps / len(score)


@pytest.mark.parametrize("metric,key", [("avg_reward", "ret"), ("success_binary", "succ"),
                                        ("uniform", "none"), ("min_reward", "ret")])
def test_rank_probabilities_with_ties(metric, key):
    rets = [4.0, 8.0, 8.0, 0.0, 8.0, 2.0]
    succ = [True, False, True, True, False, False]
    st = _store_with_returns(rets, successes=succ)
    cfg = priorities.TPERConfig(metric=metric)
    prio, st = priorities.init_priorities(st, cfg)
    p = np.asarray(priorities.slot_probabilities(prio))[:6]
    score = {"ret": np.array(rets) / 4, "succ": np.where(succ, 2.0, 0.1),
             "none": np.zeros(6)}[key]
    np.testing.assert_allclose(p, _expected_p(score), rtol=1e-5)
    np.testing.assert_allclose(float(prio.tree.total), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p[1], p[2], rtol=1e-6) if key == "ret" else None


def test_normalized_metric_is_not_ranked():
    rets = [0.0, 1.0, 3.0]
    st = _store_with_returns(rets)
    prio, _ = priorities.init_priorities(st, priorities.TPERConfig(metric="normalized",
                                                                   eps=0.0))
    np.testing.assert_allclose(np.asarray(priorities.slot_probabilities(prio))[:3],
                               [0, 0.25, 0.75], rtol=1e-6)


def test_ema_touches_exactly_the_sampled_episodes_and_averages_duplicates():
    st = _store_with_returns([1.0] * 6)
    cfg = priorities.TPERConfig(metric="td_error_rank", ema_beta=0.9)
    prio, st = priorities.init_priorities(st, cfg)
    upd = jax.jit(priorities.update_priorities, static_argnums=4)
    # batch 1: episode 2 twice (|δ| 1 and 3 → averaged to 2, first visit sets μ), episode 4 once
    ids = jnp.array([2, 4, 2], jnp.int32)
    prio, st = upd(prio, st, ids, jnp.array([1.0, 0.5, -3.0]), cfg)
    t = st.episodes
    np.testing.assert_allclose(np.asarray(t.mu)[:6], [0, 0, 2.0, 0, 0.5, 0])
    np.testing.assert_array_equal(np.asarray(t.seen)[:6], [0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(t.visits)[:6], [0, 0, 2, 0, 1, 0])
    # batch 2: EMA on episode 4 only
    prio, st = upd(prio, st, jnp.array([4, 4], jnp.int32), jnp.array([1.5, 2.5]), cfg)
    np.testing.assert_allclose(np.asarray(st.episodes.mu)[:6], [0, 0, 2.0, 0, 0.9 * 0.5 + 0.2, 0],
                               rtol=1e-6)
    # unseen episodes share the top rank; seen ones follow by μ (2.0 > 0.65)
    score = np.array([np.inf, np.inf, 2.0, np.inf, 0.65, np.inf])
    np.testing.assert_allclose(np.asarray(priorities.slot_probabilities(prio))[:6],
                               _expected_p(score), rtol=1e-5)


def test_new_online_episode_is_not_starved_and_overwritten_one_disappears():
    st = _store_with_returns([1.0] * 3)
    cfg = priorities.TPERConfig(metric="td_error_rank")
    prio, st = priorities.init_priorities(st, cfg)
    prio, st = priorities.update_priorities(prio, st, jnp.arange(3), jnp.array([1.0, 2.0, 3.0]),
                                            cfg)
    for i in range(3):  # one online episode of 3 steps
        st = store.add_step(st, jnp.zeros((1, 2)), jnp.zeros((1, 1)), jnp.ones(1),
                            jnp.zeros(1, bool), jnp.array([i == 2]), jnp.zeros((1, 2)),
                            jnp.zeros(1))
    prio, st = priorities.sync(prio, st, cfg)
    leaves = np.asarray(priorities.slot_probabilities(prio))
    new = 3
    assert leaves[new] == leaves.max()  # unseen → top rank
    np.testing.assert_allclose(leaves[:4], _expected_p([1.0, 2.0, 3.0, np.inf]), rtol=1e-5)
    cfg_off = priorities.TPERConfig(metric="td_error_rank", include_online=False)
    prio2, _ = priorities.init_priorities(st, cfg_off)
    assert float(priorities.slot_probabilities(prio2)[new]) == 0.0


def test_config_rejects_unknown_metric():
    with pytest.raises(ValueError, match="--metric"):
        priorities.TPERConfig(metric="td_error")
