"""Where does the shipped KinD lose PSNR? Measured on LOL's validation split only (never the test pairs).

    LLE_DATA=../shared/data python tools/kind_diagnosis.py        # about 10 min on 2 CPU cores

The diagnosis scores the shipped chain ``R_hat * adjust(I_low, ratio)`` under the authors' protocol (the ratio read
from the target, :func:`lle_lib.recipes.kind.evaluate_target_ratio`), then the same chain with one part swapped for
the answer: the target's reflectance ``R_high ** 1.2`` (the restoration's training target) instead of ``R_hat``; the
target's illumination ``I_high`` instead of the adjusted one; and, for each image, the best ratio of a grid instead
of the one read from the target. It also prints the adjusted against the target illumination on the darkest pairs,
and the shipped chain under three ways of setting the ratio (:func:`protocols`): the authors' (from the target), a
fixed ratio chosen on the same pairs, and a fixed *level* (the ratio of each image set to ``level / mean(I_low)``,
read from the low image alone); for the last two, plain and GT-mean PSNR, at the setting best for plain PSNR and at
the one best for GT-mean PSNR.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from lle_lib import metrics
from lle_lib.data import load_paired
from lle_lib.methods import load_shipped
from lle_lib.models.kind import KinD, illumination_ratio
from lle_lib.recipes.kind import RATIO_GRID, RESTORATION_TARGET_POWER

LEVELS = (0.6, 0.8, 1.0, 1.2, 1.5, 1.8, 2.1, 2.5)


@torch.no_grad()
def decompose_pairs(model: KinD, pairs, *, progress: bool = True) -> list[dict]:
    """Run the frozen decomposition and restoration once per pair (full images); one dict of tensors ``(1, C, H, W)``
    per pair: ``illumination`` and ``restored`` of the low image, ``high_illumination``, ``high_reflectance``,
    ``high`` (the target image)."""
    items = []
    for index in tqdm(range(len(pairs)), desc="decomposing", disable=not progress):
        item = pairs[index]
        low, high = torch.as_tensor(item["low"])[None], torch.as_tensor(item["high"])[None]
        reflectance, illumination = model.decomposition(low)
        high_reflectance, high_illumination = model.decomposition(high)
        items.append({"illumination": illumination, "restored": model.restoration(reflectance, illumination),
                      "high_illumination": high_illumination, "high_reflectance": high_reflectance, "high": high})
    return items


def _psnr(image: torch.Tensor, target: torch.Tensor) -> float:
    return float(metrics.psnr(image.clamp(0, 1), target))


@torch.no_grad()
def diagnose(adjustment: torch.nn.Module, items: list[dict], ratios=RATIO_GRID) -> pd.DataFrame:
    """One row per pair: the authors' ``ratio``; the PSNR of the ``chain`` under the authors' protocol, with the
    ``oracle_reflectance`` (``R_high^1.2 * I_adjusted``), with the ``oracle_illumination`` (``R_hat * I_high``), and
    at this image's best ratio of ``ratios`` (``best_ratio``, ``best_ratio_psnr``); the mean values of the
    ``adjusted`` and of the target's illumination (``high_illumination``)."""
    rows = []
    for item in items:
        illumination, restored, high = item["illumination"], item["restored"], item["high"]
        ratio = illumination_ratio(illumination, item["high_illumination"])
        adjusted = adjustment(illumination, ratio)
        per_ratio = {r: _psnr(restored * adjustment(illumination, r), high) for r in ratios}
        best = max(per_ratio, key=per_ratio.get)
        rows.append({"ratio": float(ratio), "chain": _psnr(restored * adjusted, high),
                     "oracle_reflectance": _psnr(item["high_reflectance"] ** RESTORATION_TARGET_POWER * adjusted, high),
                     "oracle_illumination": _psnr(restored * item["high_illumination"], high),
                     "best_ratio_psnr": per_ratio[best], "best_ratio": best,
                     "adjusted": float(adjusted.mean()), "high_illumination": float(item["high_illumination"].mean())})
    return pd.DataFrame(rows)


@torch.no_grad()
def protocols(adjustment: torch.nn.Module, items: list[dict], ratios=RATIO_GRID, levels=LEVELS) -> dict[str, float]:
    """Mean validation PSNR (dB) of ``R_hat * adjust(I_low, r)`` under three ways of setting ``r``: the authors'
    (from the target); the best single ratio of ``ratios`` by plain PSNR, with its GT-mean PSNR; the best single
    level of ``levels`` by plain PSNR, with ``r = level / mean(I_low)`` per image (from the low image alone), with its
    GT-mean PSNR. Then, as the book treats gamma, the setting of each grid that maximises GT-mean PSNR, and that
    PSNR."""
    def mean_psnr(ratio_of, gt_mean=False):
        values = []
        for item in items:
            output = (item["restored"] * adjustment(item["illumination"], ratio_of(item))).clamp(0, 1)
            values.append(metrics.psnr_gt_mean(output, item["high"]) if gt_mean else metrics.psnr(output, item["high"]))
        return float(np.mean([float(v) for v in values]))

    def fixed(r):
        return lambda item: r

    def level(v):
        return lambda item: v / item["illumination"].mean()

    target = mean_psnr(lambda item: illumination_ratio(item["illumination"], item["high_illumination"]))
    scores = {"authors' protocol": target}
    for name, grid, ratio_of in (("fixed ratio", ratios, fixed), ("fixed level", levels, level)):
        plain = {setting: mean_psnr(ratio_of(setting)) for setting in grid}
        gt_mean = {setting: mean_psnr(ratio_of(setting), gt_mean=True) for setting in grid}
        best, best_gt_mean = max(plain, key=plain.get), max(gt_mean, key=gt_mean.get)
        scores.update({name: best, f"{name}, plain": plain[best], f"{name}, GT-mean": gt_mean[best],
                       f"{name} for GT-mean": best_gt_mean, f"{name} for GT-mean, GT-mean": gt_mean[best_gt_mean]})
    return scores


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder that holds lol/ (default: $LLE_DATA)")
    args = parser.parse_args(argv)
    model, _ = load_shipped("kind")
    val = load_paired("val", args.data_dir)
    print("validation:", val.source)
    val_items = decompose_pairs(model, val)
    table = diagnose(model.adjustment, val_items)
    print("\nmean PSNR (dB) on the validation pairs, authors' protocol unless said otherwise")
    print(table[["chain", "oracle_reflectance", "oracle_illumination", "best_ratio_psnr"]].mean().round(2).to_string())
    print("\nthe darkest validation pairs (largest ratio): mean illumination, adjusted vs target")
    print(table.nlargest(5, "ratio")[["ratio", "adjusted", "high_illumination", "chain", "best_ratio"]]
          .round(3).to_string())
    print("\nmean PSNR (dB) on the validation pairs by the way the ratio is set (fixed settings chosen on them)")
    print(pd.Series(protocols(model.adjustment, val_items)).round(2).to_string())


if __name__ == "__main__":
    main()
