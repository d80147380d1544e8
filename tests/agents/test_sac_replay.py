"""The SAC replay buffer: ring order, terminated vs truncated, exact save/restore."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.tf_sac.replay import Batch, ReplayBuffer

OBS, ACT = 3, 2


def transitions(start: int, n: int) -> dict[str, np.ndarray]:
    """``n`` transitions whose every field encodes its index ``start + i``."""
    i = np.arange(start, start + n, dtype=np.float64)
    return {
        "obs": np.repeat(i[:, None], OBS, axis=1),
        "action": np.repeat(-i[:, None], ACT, axis=1),
        "reward": 10 * i,
        "next_obs": np.repeat(i[:, None] + 0.5, OBS, axis=1),
        "terminated": (i % 2 == 0),
        "truncated": (i % 3 == 0),
    }


def stored_indices(buf: ReplayBuffer) -> list[int]:
    """The indices of the stored transitions, oldest first."""
    order = [(buf.pos - buf.size + j) % buf.capacity for j in range(buf.size)]
    return [int(buf.obs[k, 0]) for k in order]


def test_add_and_sample_give_float32_fields_of_the_right_shape():
    buf = ReplayBuffer(10, OBS, ACT, seed=0)
    buf.add_batch(**transitions(0, 4))
    assert len(buf) == 4
    batch = buf.sample(7)
    assert isinstance(batch, Batch)
    shapes = [(7, OBS), (7, ACT), (7,), (7, OBS), (7,), (7,)]
    for field, shape in zip(batch, shapes, strict=True):
        assert field.dtype == np.float32
        assert field.shape == shape
    # every sampled row is one stored transition, fields kept together
    i = batch.obs[:, 0]
    np.testing.assert_array_equal(batch.reward, 10 * i)
    np.testing.assert_array_equal(batch.action[:, 0], -i)
    np.testing.assert_array_equal(batch.next_obs[:, 0], i + 0.5)


def test_terminated_and_truncated_are_stored_apart_and_only_termination_masks():
    buf = ReplayBuffer(8, OBS, ACT, seed=0)
    buf.add_batch(**transitions(0, 6))
    batch = buf.sample(200)
    i = batch.obs[:, 0].astype(int)
    np.testing.assert_array_equal(batch.terminated, (i % 2 == 0).astype(np.float32))
    np.testing.assert_array_equal(batch.truncated, (i % 3 == 0).astype(np.float32))
    np.testing.assert_array_equal(batch.discount_mask, 1.0 - batch.terminated)
    # a truncated but not terminated transition (i = 3) still bootstraps
    assert np.all(batch.discount_mask[i == 3] == 1.0)
    assert np.all(batch.discount_mask[i == 0] == 0.0)


def test_ring_overwrites_the_oldest():
    buf = ReplayBuffer(5, OBS, ACT, seed=0)
    buf.add_batch(**transitions(0, 3))
    buf.add_batch(**transitions(3, 4))
    assert len(buf) == 5 and buf.pos == 2
    assert stored_indices(buf) == [2, 3, 4, 5, 6]
    assert set(buf.sample(500).obs[:, 0].astype(int)) == {2, 3, 4, 5, 6}


def test_a_batch_larger_than_the_capacity_keeps_its_last_transitions():
    buf = ReplayBuffer(4, OBS, ACT, seed=0)
    buf.add_batch(**transitions(0, 1))
    buf.add_batch(**transitions(1, 10))
    assert stored_indices(buf) == [7, 8, 9, 10]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.lists(st.integers(0, 9), min_size=1, max_size=8))
def test_ring_matches_a_bounded_deque(capacity, batch_sizes):
    buf = ReplayBuffer(capacity, OBS, ACT, seed=0)
    model: deque[int] = deque(maxlen=capacity)
    start = 0
    for n in batch_sizes:
        buf.add_batch(**transitions(start, n))
        model.extend(range(start, start + n))
        start += n
        assert len(buf) == len(model)
        assert stored_indices(buf) == list(model)


def test_state_dict_restores_contents_position_and_sampling_stream():
    buf = ReplayBuffer(6, OBS, ACT, seed=3)
    buf.add_batch(**transitions(0, 4))
    buf.sample(5)  # advance the generator
    state = buf.state_dict()
    expected = [buf.sample(8) for _ in range(3)]
    buf.add_batch(**transitions(4, 5))
    expected_after_add = (stored_indices(buf), buf.sample(8))

    restored = ReplayBuffer(6, OBS, ACT, seed=999)
    restored.load_state_dict(state)
    assert len(restored) == 4 and restored.pos == 4
    for want in expected:
        for a, b in zip(restored.sample(8), want, strict=True):
            np.testing.assert_array_equal(a, b)
    restored.add_batch(**transitions(4, 5))
    assert stored_indices(restored) == expected_after_add[0]
    for a, b in zip(restored.sample(8), expected_after_add[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_samples_different_seed_different_samples():
    def draws(seed):
        buf = ReplayBuffer(100, OBS, ACT, seed=seed)
        buf.add_batch(**transitions(0, 100))
        return buf.sample(32).obs[:, 0]

    np.testing.assert_array_equal(draws(1), draws(1))
    assert not np.array_equal(draws(1), draws(2))


def test_bad_input_raises():
    buf = ReplayBuffer(4, OBS, ACT, seed=0)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1)
    bad = transitions(0, 3)
    bad["reward"] = np.zeros(2)
    with pytest.raises(ValueError, match="inconsistent"):
        buf.add_batch(**bad)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, OBS, ACT)
    with pytest.raises(ValueError, match="capacity mismatch"):
        ReplayBuffer(5, OBS, ACT).load_state_dict(buf.state_dict())
