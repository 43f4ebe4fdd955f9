"""TrajectoryStore construction, online ring writes and chunk gather, checked by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.replay import gather, store

H, GAMMA = 3, 0.5


def tiny_dataset():
    """Episode A rows 0-3 (terminated), B rows 4-5 (truncated, shorter than H), C rows 6-8
    (trailing, unfinished)."""
    r = np.arange(1, 10, dtype=np.float32)
    obs = np.stack([np.arange(9), -np.arange(9)], 1).astype(np.float32)
    act = (np.arange(9, dtype=np.float32) / 10)[:, None]
    term = np.array([0, 0, 0, 1, 0, 1, 0, 0, 0], np.float32)
    masks = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1], np.float32)
    succ = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0], np.float32)
    return dict(observations=obs, actions=act, rewards=r, terminals=term,
                next_observations=obs + 100, masks=masks, successes=succ)


@pytest.fixture(scope="module")
def offline_store():
    return store.build(**tiny_dataset())


def test_episode_boundaries_keep_trailing_episode():
    starts, lengths = store.episode_bounds(np.array([0, 0, 0, 1, 0, 1, 0, 0, 0]))
    np.testing.assert_array_equal(starts, [0, 4, 6])
    np.testing.assert_array_equal(lengths, [4, 2, 3])


def test_table_from_flat_arrays(offline_store):
    t = offline_store.episodes
    assert offline_store.num_offline_episodes == 3
    np.testing.assert_array_equal(t.length[:3], [4, 2, 3])
    np.testing.assert_array_equal(t.success[:3], [True, False, False])
    np.testing.assert_allclose(t.ret_sum[:3], [10, 11, 24])
    np.testing.assert_allclose(t.ret_mean[:3], [2.5, 5.5, 8])
    np.testing.assert_allclose(t.ret_min[:3], [1, 5, 7])
    np.testing.assert_allclose(t.ret_uqm[:3], [4, 6, 9])  # top ceil(L/4) rewards
    np.testing.assert_allclose(t.ret_uhm[:3], [3.5, 6, 8.5])  # top ceil(L/2)
    assert float(offline_store.length_tree.total) == 9
    assert float(offline_store.traj_tree.total) == 3


def _chunk(st, ep, start):
    b = gather.gather_chunks(st, jnp.array([ep]), jnp.array([start]), H, GAMMA)
    return jax.tree.map(lambda a: np.asarray(a[0]), b)


def test_chunk_inside_episode(offline_store):
    c = _chunk(offline_store, 0, 0)
    np.testing.assert_allclose(c.rewards, [1, 2, 2.75])
    np.testing.assert_allclose(c.masks, [1, 1, 1])
    np.testing.assert_allclose(c.terminals, [0, 0, 0])
    np.testing.assert_allclose(c.valid, [1, 1, 1])
    np.testing.assert_allclose(c.observations, [0, 0])
    np.testing.assert_allclose(c.next_observations, [102, 98])  # next obs of row 2
    np.testing.assert_allclose(c.actions[:, 0], [0, 0.1, 0.2])
    np.testing.assert_allclose(c.next_actions[:, 0], [0.3, 0.3, 0.3])  # clamped to row 3
    assert c.next_actions_valid == 1


def test_chunk_over_a_termination(offline_store):
    c = _chunk(offline_store, 0, 2)  # rows 2, 3, then past the end
    np.testing.assert_allclose(c.rewards, [3, 5, 5])
    np.testing.assert_allclose(c.masks, [1, 0, 0])
    np.testing.assert_allclose(c.terminals, [0, 1, 1])
    np.testing.assert_allclose(c.valid, [1, 1, 0])
    np.testing.assert_allclose(c.successes, [0, 1, 0])
    assert c.next_actions_valid == 0


def test_truncation_keeps_mask_and_short_episode_is_padded(offline_store):
    c = _chunk(offline_store, 1, 0)  # episode B has 2 < H rows, ends by truncation
    np.testing.assert_allclose(c.rewards, [5, 8, 8])
    np.testing.assert_allclose(c.masks, [1, 1, 1])
    np.testing.assert_allclose(c.terminals, [0, 1, 1])
    np.testing.assert_allclose(c.valid, [1, 1, 0])
    np.testing.assert_allclose(c.observations, [4, -4])  # never reads episode C
    np.testing.assert_allclose(c.next_observations, [105, 95])


def test_trailing_episode_is_not_merged(offline_store):
    c = _chunk(offline_store, 2, 1)  # rows 7, 8, then the end of the data
    np.testing.assert_allclose(c.rewards, [8, 12.5, 12.5])
    np.testing.assert_allclose(c.valid, [1, 1, 0])
    np.testing.assert_allclose(c.terminals, [0, 0, 0])


def _write(st, t, obs_val, done_trunc, stream_mask=None):
    s = st.num_streams
    return store.add_step(
        st, jnp.full((s, 2), obs_val, jnp.float32), jnp.full((s, 1), obs_val / 10, jnp.float32),
        jnp.full((s,), obs_val, jnp.float32), jnp.zeros((s,), bool),
        jnp.full((s,), done_trunc), jnp.full((s, 2), obs_val + 100, jnp.float32),
        jnp.zeros((s,)), stream_mask)


def test_ring_wrap_invalidates_overwritten_episode_and_gathers_across_the_wrap():
    st = store.build(**tiny_dataset(), num_streams=1, rows_per_stream=6, episodes_per_stream=4,
                     max_episode_length=4)
    add = jax.jit(_write)
    for i in range(4):  # episode 1: values 10..13, ring rows 0-3
        st = add(st, i, 10.0 + i, i == 3)
    e1 = 3
    assert bool(st.episodes.valid[e1]) and bool(st.episodes.finished[e1])
    for i in range(4):  # episode 2: values 20..23, ring rows 4,5,0,1 → wraps over episode 1
        st = add(st, i, 20.0 + i, i == 3)
    e2 = 4
    assert not bool(st.episodes.valid[e1])
    assert bool(st.episodes.valid[e2]) and int(st.episodes.start[e2]) == 4
    assert float(st.length_tree.total) == 9 + 4  # offline rows + the live online episode
    assert float(st.traj_tree.total) == 3 + 1
    c = _chunk(st, e2, 1)  # rows 21, 22, 23: ring positions 5, 0, 1
    np.testing.assert_allclose(c.observations, [21, 21])
    np.testing.assert_allclose(c.rewards, [21, 21 + 0.5 * 22, 21 + 11 + 0.25 * 23])
    np.testing.assert_allclose(c.next_observations, [123, 123])
    np.testing.assert_allclose(c.valid, [1, 1, 1])
    np.testing.assert_allclose(c.terminals, [0, 0, 1])
    np.testing.assert_allclose(c.masks, [1, 1, 1])  # truncation: bootstrap continues


def test_open_episode_rows_are_sampleable_but_padded_past_the_write_head():
    st = store.build(**tiny_dataset(), num_streams=2, rows_per_stream=8, episodes_per_stream=2,
                     max_episode_length=8)
    st = _write(st, 0, 1.0, False)
    st = _write(st, 1, 2.0, False, jnp.array([True, False]))  # stream 1 skips this step
    t = st.episodes
    np.testing.assert_array_equal(t.length[3:], [2, 0, 1, 0])
    assert not bool(t.finished[3]) and bool(t.valid[3])
    assert float(st.length_tree.total) == 9 + 3
    assert float(st.traj_tree.total) == 3  # unfinished episodes are not trajectories yet
    c = _chunk(st, 3, 0)
    np.testing.assert_allclose(c.valid, [1, 1, 0])
    np.testing.assert_allclose(c.rewards, [1, 2, 2])


def test_episode_stats_online_match_offline_formula():
    rewards = [3.0, -1.0, 4.0, 1.0, 5.0]
    st = store.build(**tiny_dataset(), num_streams=1, rows_per_stream=8, max_episode_length=8)
    for i, r in enumerate(rewards):
        st = _write(st, i, r, i == len(rewards) - 1)
    t = st.episodes
    s = 3
    np.testing.assert_allclose(float(t.ret_sum[s]), 12.0)
    np.testing.assert_allclose(float(t.ret_min[s]), -1.0)
    np.testing.assert_allclose(float(t.ret_mean[s]), 2.4)
    np.testing.assert_allclose(float(t.ret_uqm[s]), 4.5)  # top ceil(5/4)=2 → (5+4)/2
    np.testing.assert_allclose(float(t.ret_uhm[s]), 4.0)  # top 3 → (5+4+3)/3


@pytest.mark.parametrize("field,bad,msg", [
    ("rewards", np.ones(5), "rewards"),
    ("observations", np.full((9, 2), np.nan, np.float32), "NaN"),
])
def test_bad_input_is_rejected(field, bad, msg):
    data = tiny_dataset()
    data[field] = bad
    with pytest.raises(ValueError, match=msg):
        store.build(**data)


def test_episode_must_fit_the_ring():
    with pytest.raises(ValueError, match="max_episode_length"):
        store.build(**tiny_dataset(), rows_per_stream=4, max_episode_length=10)
