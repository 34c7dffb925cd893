"""Which gradient-boosting library fits chapter 7's percentile regressor: XGBoost against scikit-learn.

    LLE_DATA=../shared/data python benchmarks/quantile_fit.py
    PYTHONPATH=/tmp/sk python benchmarks/quantile_fit.py     # with scikit-learn installed somewhere aside

Fits the same 63 quantile regressions (median, 100 trees of depth 3, learning rate 0.1) on the percentile table of
the training split with XGBoost (``reg:quantileerror``, what the book uses) and, when scikit-learn can be imported
(it is not a dependency of the book), with its ``HistGradientBoostingRegressor`` and ``GradientBoostingRegressor``
(``loss="quantile"``). Prints the fit time of each and its mean pinball loss on the training and validation tables.
Timings depend on the machine; they are printed, never asserted.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from lle_lib.data import load_paired
from lle_lib.histogram import HistogramRegressor, percentile_features, pinball_loss


def table(split: str, data_dir):
    pairs = load_paired(split, data_dir)
    items = [pairs[index] for index in range(len(pairs))]
    low = percentile_features([item["low"].permute(1, 2, 0).numpy() for item in items])
    high = percentile_features([item["high"].permute(1, 2, 0).numpy() for item in items])
    return low, high, pairs.source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    train_low, train_high, source = table("train", args.data_dir)
    val_low, val_high, _ = table("val", args.data_dir)
    print(f"{source}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")

    def report(name, fit, predict):
        start = time.perf_counter()
        models = fit()
        seconds = time.perf_counter() - start
        train_loss = pinball_loss(predict(models, train_low), train_high)
        val_loss = pinball_loss(predict(models, val_low), val_high)
        print(f"{name:42s} fit {seconds:7.1f} s   pinball train {train_loss:.4f}   val {val_loss:.4f}")

    report("xgboost reg:quantileerror (the book's)",
           lambda: HistogramRegressor().fit_table(train_low, train_high),
           lambda model, low: model.predict_table(low).reshape(len(low), -1))
    try:
        from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
    except ImportError:
        print("scikit-learn is not installed here: only XGBoost was measured")
        return
    columns = range(train_high.shape[1])
    report("scikit-learn HistGradientBoostingRegressor",
           lambda: [HistGradientBoostingRegressor(loss="quantile", quantile=0.5, max_iter=100, max_depth=3,
                                                  learning_rate=0.1, early_stopping=False).fit(train_low,
                                                                                               train_high[:, j])
                    for j in columns],
           lambda models, low: np.stack([model.predict(low) for model in models], axis=1))
    report("scikit-learn GradientBoostingRegressor",
           lambda: [GradientBoostingRegressor(loss="quantile", alpha=0.5, n_estimators=100, max_depth=3,
                                              learning_rate=0.1).fit(train_low, train_high[:, j]) for j in columns],
           lambda models, low: np.stack([model.predict(low) for model in models], axis=1))


if __name__ == "__main__":
    main()
