"""lle_lib.histogram: the pinball loss, percentiles and their correlations, histogram matching to given
percentiles, and the boosted regressor (its NumPy tree walk against XGBoost's own predictions, its storage)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from lle_lib.histogram import (PERCENTILES, HistogramRegressor, channel_percentiles, correlated_features,
                               feature_names, match_percentiles, monotone_percentiles, percentile_correlations,
                               percentile_features, pinball_loss)
from lle_lib.weights import stored_state


def test_pinball_loss_on_hand_made_values():
    assert pinball_loss([1, 2], [2, 2], 0.5) == pytest.approx(0.25)      # |1| * 0.5 / 2
    assert pinball_loss([0], [1], 0.9) == pytest.approx(0.9)             # under-prediction costs tau
    assert pinball_loss([1], [0], 0.9) == pytest.approx(0.1)             # over-prediction costs 1 - tau
    assert pinball_loss([3, 3], [3, 3], 0.3) == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        pinball_loss([0], [0], 1.0)


@pytest.mark.parametrize("quantile", [0.1, 0.5, 0.9])
def test_the_constant_that_minimises_the_pinball_loss_is_the_quantile(quantile):
    sample = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0])
    grid = np.linspace(0, 100, 100_001)
    losses = [pinball_loss(np.full_like(sample, c), sample, quantile) for c in grid[::100]]
    best = grid[::100][int(np.argmin(losses))]
    lower, upper = np.quantile(sample, quantile, method="lower"), np.quantile(sample, quantile, method="higher")
    assert lower - 0.1 <= best <= upper + 0.1
    if quantile == 0.5:
        assert best < 10 < sample.mean()        # the median ignores the outlier that drags the mean to 14.5


def test_channel_percentiles_and_features():
    image = np.zeros((2, 50, 3))
    image[..., 0] = np.linspace(0, 1, 100).reshape(2, 50)
    image[..., 2] = 0.25
    table = channel_percentiles(image)
    assert table.shape == (3, len(PERCENTILES))
    np.testing.assert_allclose(table[0], PERCENTILES / 100, atol=1e-12)
    assert (table[1] == 0).all() and (table[2] == 0.25).all()
    features = percentile_features([image, image])
    assert features.shape == (2, 3 * len(PERCENTILES))
    assert feature_names()[:2] == ["R p0", "R p5"] and feature_names()[-1] == "B p100"
    with pytest.raises(ValueError, match="RGB"):
        channel_percentiles(np.zeros((4, 4)))


def test_percentile_correlations_match_numpy_and_ignore_constant_columns():
    rng = np.random.default_rng(0)
    low = rng.random((30, 4))
    low[:, 3] = 0.5                                   # a constant column
    high = np.column_stack([2 * low[:, 0] + 1, -low[:, 1], rng.random(30)])
    r = percentile_correlations(low, high)
    assert r.shape == (4, 3)
    assert r[0, 0] == pytest.approx(1) and r[1, 1] == pytest.approx(-1)
    assert r[2, 2] == pytest.approx(np.corrcoef(low[:, 2], high[:, 2])[0, 1])
    assert (r[3] == 0).all()
    assert correlated_features(r, 0.6).tolist() == [0, 1]       # |r| counts: the -1 is kept
    assert correlated_features(r, 1.01).tolist() == []


def test_matching_reaches_the_given_percentiles_and_keeps_the_pixel_order():
    rng = np.random.default_rng(1)
    image = rng.random((60, 80, 3)) ** 3                        # dark, continuous
    targets = np.sort(rng.random((3, len(PERCENTILES))), axis=1)
    output = match_percentiles(image, targets)
    assert output.dtype == np.float32 and output.shape == image.shape
    np.testing.assert_allclose(channel_percentiles(output), targets, atol=2e-3)
    for channel in range(3):                                    # brighter stays brighter
        order = np.argsort(image[..., channel], axis=None)
        assert (np.diff(output[..., channel].ravel()[order]) >= 0).all()


def test_matching_gives_tied_pixels_one_value_and_refuses_bad_targets():
    image = np.zeros((10, 10, 3))
    image[5:] = 0.2
    output = match_percentiles(image, np.tile(PERCENTILES / 100, (3, 1)))
    assert len(np.unique(output[:5])) == 1 and len(np.unique(output[5:])) == 1
    assert output[:5].max() < output[5:].min()
    with pytest.raises(ValueError, match="non-decreasing"):
        match_percentiles(image, np.tile(PERCENTILES[::-1] / 100, (3, 1)))
    with pytest.raises(ValueError, match="shape"):
        match_percentiles(image, np.zeros((3, 4)))


def test_monotone_percentiles_clips_and_uncrosses():
    np.testing.assert_array_equal(monotone_percentiles(np.array([-0.1, 0.3, 0.2, 1.4])), [0, 0.3, 0.3, 1])


def pairs(count: int, seed: int = 0):
    """Dark images and their "well-lit" versions: a known gain and lift per image, so percentiles map simply."""
    rng = np.random.default_rng(seed)
    lows, highs = [], []
    for _ in range(count):
        low = rng.random((24, 24, 3)) * rng.uniform(0.05, 0.3)
        lows.append(low)
        highs.append(np.clip(3 * low + 0.1, 0, 1))
    return lows, highs


@pytest.fixture(scope="module")
def fitted():
    lows, highs = pairs(60)
    regressor, boosters = HistogramRegressor(rounds=30).fit(lows, highs, return_boosters=True)
    return regressor, boosters


def test_the_numpy_tree_walk_predicts_what_xgboost_predicts(fitted):
    import xgboost

    regressor, boosters = fitted
    lows, _ = pairs(8, seed=5)
    table = percentile_features(lows)
    inputs = table[:, regressor.selected.numpy()].astype(np.float32)
    theirs = np.stack([booster.predict(xgboost.DMatrix(inputs)) for booster in boosters], axis=1)
    ours = regressor.predict_table(table).reshape(len(lows), -1)
    np.testing.assert_allclose(ours, monotone_percentiles(theirs.reshape(len(lows), 3, -1)).reshape(len(lows), -1),
                               atol=1e-5)


def test_the_regressor_learns_the_percentile_map_on_unseen_images(fitted):
    regressor, _ = fitted
    train_lows, train_highs = pairs(60)
    constant = np.median(percentile_features(train_highs), axis=0).reshape(3, -1)   # the best guess without inputs
    lows, highs = pairs(10, seed=7)
    errors = [np.abs(regressor.predict(low) - channel_percentiles(high)).mean() for low, high in zip(lows, highs)]
    blind = [np.abs(constant - channel_percentiles(high)).mean() for high in highs]
    assert np.mean(errors) < 0.5 * np.mean(blind)
    gaps = [(abs(regressor.enhance(low).mean() - high.mean()), abs(low.mean() - high.mean()))
            for low, high in zip(lows, highs)]
    assert all(after < 0.3 * before for after, before in gaps)      # most of the brightness gap is closed


def test_the_trees_survive_a_float16_state_dict_and_weights_only_loading(fitted):
    regressor, _ = fitted
    buffer = io.BytesIO()
    torch.save(stored_state(regressor, torch.float16), buffer)
    buffer.seek(0)
    loaded = HistogramRegressor(rounds=30)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    lows, _ = pairs(3, seed=9)
    table = percentile_features(lows)
    np.testing.assert_array_equal(loaded.predict_table(table), regressor.predict_table(table))


def test_an_unfitted_regressor_refuses_to_predict():
    with pytest.raises(RuntimeError, match="not fitted"):
        HistogramRegressor().predict(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        HistogramRegressor().fit(*pairs(1))
