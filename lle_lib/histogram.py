"""Learned histogram preprocessing: predict a well-lit image's intensity percentiles from the dark image's, then
reshape the dark image's histogram to them.

A photo's histogram is summarised by its **percentiles** per channel, ``q_c(p)`` for ``p`` in :data:`PERCENTILES`
(0, 5, ..., 100). Over LOL's training pairs, some percentiles of the dark image predict those of its well-lit
target well (:func:`percentile_correlations`). A gradient-boosted regressor per target percentile learns the map
(:class:`HistogramRegressor`), trained with the **pinball loss** of quantile regression (:func:`pinball_loss`,
Koenker and Bassett 1978): with ``quantile=0.5`` it predicts the conditional *median* of the target percentile,
which a few badly exposed targets cannot drag around as they drag a mean. Finally :func:`match_percentiles` maps
every pixel through the dark image's own cumulative histogram onto the predicted percentiles (histogram
matching, Gonzalez and Woods), channel by channel.

The boosted trees are fitted by XGBoost (``objective="reg:quantileerror"``), then copied into the buffers of a
:class:`HistogramRegressor` module, so that they ship inside a network's ``state_dict``, load with
``torch.load(weights_only=True)`` (no pickle anywhere) and predict without XGBoost.

NumPy at the edges: images are float ``(H, W, 3)`` in [0, 1].
"""
from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

#: The percentile levels (in %) that summarise a channel's histogram.
PERCENTILES = np.arange(0, 101, 5, dtype=np.float64)
#: The seed's feature rule: keep the dark image's percentiles whose correlation with some target percentile
#: reaches this in absolute value.
CORRELATION_THRESHOLD = 0.6
CHANNELS = ("R", "G", "B")


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    return image


def channel_percentiles(image: np.ndarray, levels=PERCENTILES) -> np.ndarray:
    """The percentiles ``levels`` (in %) of each channel of an ``(H, W, 3)`` image: shape ``(3, len(levels))``."""
    image = _check_image(image)
    return np.percentile(image.reshape(-1, 3), levels, axis=0).T


def percentile_features(images, levels=PERCENTILES) -> np.ndarray:
    """One row per image: its :func:`channel_percentiles` flattened (R's levels, then G's, then B's)."""
    return np.stack([channel_percentiles(image, levels).ravel() for image in images])


def feature_names(levels=PERCENTILES) -> list[str]:
    """The column names of :func:`percentile_features`: ``"R p0"``, ``"R p5"``, ..."""
    return [f"{channel} p{level:g}" for channel in CHANNELS for level in levels]


def percentile_correlations(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Pearson's r between every column of ``low`` (dark percentiles, one row per image) and every column of
    ``high`` (well-lit percentiles): shape ``(low columns, high columns)``. A constant column (the 0th percentile
    of a channel that is 0 in every image) correlates with nothing: r = 0."""
    def standardised(table):
        table = np.asarray(table, dtype=np.float64)
        spread = table.std(axis=0)
        return (table - table.mean(axis=0)) / np.where(spread > 0, spread, np.inf)

    return standardised(low).T @ standardised(high) / len(low)


def correlated_features(correlations: np.ndarray, threshold: float = CORRELATION_THRESHOLD) -> np.ndarray:
    """The seed's rule: indices of the dark percentiles whose largest ``|r|`` with any target percentile is at
    least ``threshold``."""
    return np.flatnonzero(np.abs(correlations).max(axis=1) >= threshold)


def pinball_loss(prediction, target, quantile: float = 0.5) -> float:
    """The loss of quantile regression (Koenker and Bassett 1978), averaged over the values::

        L_tau(y, y_hat) = max(tau (y - y_hat), (tau - 1)(y - y_hat))

    Under-predicting costs ``tau`` per unit and over-predicting ``1 - tau``, so its minimiser over constants is
    the ``tau``-quantile of ``y``: the median for ``tau = 0.5`` (half the absolute error), where squared error
    would give the mean."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1, not {quantile!r}")
    error = np.asarray(target, dtype=np.float64) - np.asarray(prediction, dtype=np.float64)
    return float(np.mean(np.maximum(quantile * error, (quantile - 1) * error)))


def monotone_percentiles(values: np.ndarray) -> np.ndarray:
    """Predicted percentiles made a valid histogram description: clipped to [0, 1] and non-decreasing along the
    last axis (independent regressors may cross)."""
    return np.maximum.accumulate(np.clip(values, 0.0, 1.0), axis=-1)


def match_percentiles(image: np.ndarray, targets: np.ndarray, levels=PERCENTILES) -> np.ndarray:
    """Histogram matching to given percentiles: in each channel, every pixel's rank (its mid-rank among equal
    values, in %) is mapped through the piecewise-linear curve ``levels -> targets[c]``. The output's
    percentiles then equal ``targets`` up to the interpolation and the ties of the input, and the order of the
    pixels (which is brighter than which) is kept. ``targets``: ``(3, len(levels))``, non-decreasing."""
    image = _check_image(image)
    targets = np.asarray(targets, dtype=np.float64)
    if targets.shape != (3, len(levels)):
        raise ValueError(f"targets must have shape (3, {len(levels)}), not {targets.shape}")
    if np.any(np.diff(targets, axis=1) < 0):
        raise ValueError("targets must be non-decreasing along the levels (see monotone_percentiles)")
    output = np.empty(image.shape, dtype=np.float32)
    for channel in range(3):
        values, inverse, counts = np.unique(image[..., channel], return_inverse=True, return_counts=True)
        # the mid-rank of each distinct value, as a percentile of the n pixels: ties share one output value
        below = np.cumsum(counts) - counts
        rank = 100.0 * (below + (counts - 1) / 2) / max(image[..., channel].size - 1, 1)
        output[..., channel] = np.interp(rank, levels, targets[channel])[inverse.reshape(image.shape[:2])]
    return output


class HistogramRegressor(nn.Module):
    """Predicted well-lit percentiles: one boosted forest per target percentile (3 channels x ``len(levels)``
    targets), each of ``rounds`` trees of depth ``depth``, fitted by XGBoost with the pinball loss at ``quantile``
    (:meth:`fit`) on the dark percentiles the correlation rule selects.

    The forests are kept as buffers, so the regressor is part of a network's ``state_dict``. Each tree is stored
    complete to ``depth`` (a leaf reached early is a node that always goes left): per target and tree, the
    feature index and threshold of every inner node and the value of every leaf, with thresholds and values kept
    as the bit patterns of their float32 (int32 buffers), which no storage cast rounds. :meth:`predict` walks the
    trees in NumPy, so applying the shipped weights needs no XGBoost; only :meth:`fit` does.
    """

    def __init__(self, levels=PERCENTILES, rounds: int = 100, depth: int = 3, quantile: float = 0.5,
                 learning_rate: float = 0.1):
        super().__init__()
        if not 0 < quantile < 1:
            raise ValueError(f"quantile must be between 0 and 1, not {quantile!r}")
        self.rounds, self.depth, self.quantile, self.learning_rate = rounds, depth, quantile, learning_rate
        levels = torch.as_tensor(np.asarray(levels, dtype=np.float64))
        targets, inner = 3 * len(levels), 2 ** depth - 1
        self.register_buffer("levels", levels)
        self.register_buffer("selected", torch.zeros(targets, dtype=torch.bool))   # the dark percentiles used
        self.register_buffer("split_feature", torch.zeros(targets, rounds, inner, dtype=torch.int16))
        self.register_buffer("split_bits", torch.zeros(targets, rounds, inner, dtype=torch.int32))
        self.register_buffer("leaf_bits", torch.zeros(targets, rounds, inner + 1, dtype=torch.int32))
        self.register_buffer("base_bits", torch.zeros(targets, dtype=torch.int32))
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))

    @property
    def level_values(self) -> np.ndarray:
        return self.levels.cpu().numpy()

    def xgboost_parameters(self, seed: int = 0) -> dict:
        return {"objective": "reg:quantileerror", "quantile_alpha": self.quantile, "max_depth": self.depth,
                "eta": self.learning_rate, "tree_method": "exact", "seed": seed, "nthread": 1}

    def fit(self, low_images, high_images, *, threshold: float | None = None, seed: int = 0,
            return_boosters: bool = False):
        """Fit on the dark and well-lit images of the **training** pairs (two sequences of ``(H, W, 3)`` images in
        the same order): :meth:`fit_table` on their :func:`percentile_features`."""
        return self.fit_table(percentile_features(low_images, self.level_values),
                              percentile_features(high_images, self.level_values), threshold=threshold, seed=seed,
                              return_boosters=return_boosters)

    def fit_table(self, low: np.ndarray, high: np.ndarray, *, threshold: float | None = None, seed: int = 0,
                  return_boosters: bool = False):
        """Fit on percentile tables, one row per training pair (``low``: the dark images', ``high``: the targets').
        The inputs are all dark percentiles (``threshold=None``), or those of :func:`correlated_features` (the seed's
        rule, ``threshold=0.6``). Returns ``self`` (and XGBoost's boosters with ``return_boosters``)."""
        import xgboost

        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if len(low) != len(high) or len(low) < 2:
            raise ValueError(f"need at least 2 pairs of dark and well-lit images, got {len(low)} and {len(high)}")
        if high.shape[1] != 3 * len(self.level_values):
            raise ValueError(f"the tables need 3 x {len(self.level_values)} columns, not {high.shape[1]}")
        inputs = (np.arange(low.shape[1]) if threshold is None
                  else correlated_features(percentile_correlations(low, high), threshold))
        if not len(inputs):
            raise ValueError(f"no dark percentile reaches |r| >= {threshold} with a target percentile; lower the "
                             "threshold or pass threshold=None")
        boosters = []
        with torch.no_grad():
            self.selected.zero_()
            self.selected[torch.as_tensor(inputs)] = True
            for column in range(high.shape[1]):
                data = xgboost.DMatrix(low[:, inputs].astype(np.float32), label=high[:, column])
                booster = xgboost.train(self.xgboost_parameters(seed), data, num_boost_round=self.rounds)
                self._store(column, booster, inputs)
                boosters.append(booster)
            self.is_fitted.fill_(True)
        return (self, boosters) if return_boosters else self

    def _store(self, column: int, booster, inputs: np.ndarray) -> None:
        """Booster ``column``'s trees, from XGBoost's JSON model, as complete trees in the buffers."""
        model = json.loads(bytes(booster.save_raw("json")))["learner"]
        base = float(str(model["learner_model_param"]["base_score"]).strip("[]"))
        trees = model["gradient_booster"]["model"]["trees"]
        if len(trees) != self.rounds:
            raise RuntimeError(f"expected {self.rounds} trees, XGBoost made {len(trees)}")
        inner = 2 ** self.depth - 1
        feature = np.zeros((self.rounds, inner), np.int16)
        split = np.full((self.rounds, inner), np.inf, np.float32)
        leaf = np.zeros((self.rounds, inner + 1), np.float32)
        for t, tree in enumerate(trees):
            left, right = tree["left_children"], tree["right_children"]
            index, condition = tree["split_indices"], tree["split_conditions"]

            def fill(node: int, position: int, level: int) -> None:
                if left[node] == -1:                          # a leaf: its value is its "split condition"
                    if level == self.depth:
                        leaf[t, position - inner] = condition[node]
                    else:                                     # reached early: always left, both halves alike
                        fill(node, 2 * position + 1, level + 1)
                        fill(node, 2 * position + 2, level + 1)
                    return
                feature[t, position] = inputs[index[node]]
                split[t, position] = condition[node]
                fill(left[node], 2 * position + 1, level + 1)
                fill(right[node], 2 * position + 2, level + 1)

            fill(0, 0, 0)
        self.split_feature[column] = torch.from_numpy(feature)
        self.split_bits[column] = torch.from_numpy(split.view(np.int32))
        self.leaf_bits[column] = torch.from_numpy(leaf.view(np.int32))
        self.base_bits[column] = int(np.float32(base).view(np.int32))

    def predict_table(self, low: np.ndarray) -> np.ndarray:
        """Predicted well-lit percentiles for rows of :func:`percentile_features`: ``(n, 3, len(levels))``,
        clipped and made non-decreasing (:func:`monotone_percentiles`). XGBoost's rule: at each node go left
        when ``x < threshold`` (in float32); a forest predicts its base score plus the sum of its leaves."""
        if not bool(self.is_fitted):
            raise RuntimeError("the regressor is not fitted: call fit() or load fitted weights")
        x = np.asarray(low, dtype=np.float32)
        feature = self.split_feature.cpu().numpy().astype(np.int64)              # (K, T, inner)
        split = self.split_bits.cpu().numpy().view(np.float32)
        leaf = self.leaf_bits.cpu().numpy().view(np.float32)                     # (K, T, inner + 1)
        targets, rounds, inner = feature.shape
        k, t = np.arange(targets)[:, None], np.arange(rounds)[None, :]
        predictions = np.empty((len(x), targets), np.float32)
        for row, values in enumerate(x):
            position = np.zeros((targets, rounds), np.int64)
            for _ in range(self.depth):
                node_feature, node_split = feature[k, t, position], split[k, t, position]
                position = 2 * position + 1 + (~(values[node_feature] < node_split))
            predictions[row] = leaf[k, t, position - inner].sum(axis=1, dtype=np.float32)
        predictions += self.base_bits.cpu().numpy().view(np.float32)
        return monotone_percentiles(predictions.reshape(len(x), 3, -1).astype(np.float64))

    def predict(self, image: np.ndarray) -> np.ndarray:
        """The predicted percentiles of the well-lit version of ``image``: ``(3, len(levels))``."""
        return self.predict_table(percentile_features([image], self.level_values))[0]

    def enhance(self, image: np.ndarray) -> np.ndarray:
        """The whole preprocessing: ``image`` histogram-matched to its predicted well-lit percentiles."""
        return match_percentiles(image, self.predict(image), self.level_values)
