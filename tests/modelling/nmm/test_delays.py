import numpy as np
import pytest

from neurotwin_db.modelling._kernels.delays import (
    block_input_numba,
    block_input_numpy,
    block_length,
    make_room_numba,
    make_room_numpy,
    new_history,
)


def test_block_input_twins_agree_and_read_the_delayed_columns():
    rng = np.random.default_rng(1)
    ptr = np.array([0, 2, 3, 5, 6])
    source = np.array([1, 2, 0, 3, 1, 2])
    weight = rng.uniform(size=6)
    delay = np.array([4, 9, 3, 7, 5, 6])
    history, position = new_history(4, delay)
    history[:] = rng.normal(size=history.shape)
    steps = block_length(delay)  # d_min + 1 = 4
    assert steps == 4
    expected = np.empty((steps, 4))
    block_input_numpy(history, position, steps, ptr, source, weight, delay, 0.5, expected)
    out = np.empty((steps, 4))
    block_input_numba(history, position, steps, ptr, source, weight, delay, 0.5, out)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    # by hand, target 0 at the block's step 2: w0 * h[1, q - 4 + 2] + w1 * h[2, q - 9 + 2]
    q = position
    assert expected[2, 0] == pytest.approx(
        0.5 * (weight[0] * history[1, q - 2] + weight[1] * history[2, q - 7]))


@pytest.mark.parametrize("make_room", [make_room_numpy, make_room_numba])
def test_the_history_shifts_its_last_columns_to_the_front_when_full(make_room):
    history = np.arange(2 * 20, dtype=float).reshape(2, 20)
    assert make_room(history, 10, 5, 3) == 10  # fits: nothing moves
    before = history.copy()
    assert make_room(history, 18, 5, 3) == 3  # 18 + 5 > 20: columns 15-17 move to 0-2
    np.testing.assert_array_equal(history[:, :3], before[:, 15:18])
    np.testing.assert_array_equal(history[:, 3:], before[:, 3:])


def test_block_length_is_the_shortest_delay_plus_one_at_most_64():
    assert block_length(np.array([16, 40, 17])) == 17
    assert block_length(np.array([0, 5])) == 1
    assert block_length(np.array([500])) == 64
    assert block_length(np.zeros(0, dtype=np.int64)) == 64


@pytest.mark.parametrize("model_name", ["jansen-rit", "lanmm"])
def test_twins_agree_across_chunks_and_history_shifts(model_name):
    # 12,000 steps: two kernel calls (10,000 + 2,000) and a shift of the numba history
    from neurotwin_db.modelling.nmm import JansenRit, LaNMM, Network, simulate

    rng = np.random.default_rng(2)
    n = 12
    weights = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.5)
    np.fill_diagonal(weights, 0)
    net = Network(weights, rng.uniform(5, 120, (n, n)), tuple(map(str, range(n))),
                  coupling=0.05)
    model = JansenRit() if model_name == "jansen-rit" else LaNMM()
    runs = [simulate(model, network=net, duration_s=1.1, transient_s=0.1, seed=4,
                     backend=backend) for backend in ("numba", "numpy")]
    np.testing.assert_allclose(runs[0].eeg, runs[1].eeg, rtol=0, atol=1e-10)
