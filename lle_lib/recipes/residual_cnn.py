"""Training the residual CNN with learned histogram preprocessing through the book's trainer.

Two fits, both on the training split only. First the histogram regressor
(:class:`~lle_lib.histogram.HistogramRegressor`): dark percentiles to well-lit percentiles, on the training
pairs' full images (:func:`fit_histogram`). Then every dark image of the training and validation splits is
histogram-matched once (:class:`PreparedPairs`), and the network (:class:`~lle_lib.models.residual_cnn.ResidualCNN`)
learns to refine the matched image with MSE + MAE (:mod:`lle_lib.losses.residual_cnn`), AdamW, a learning rate
halved when validation PSNR stalls and early stopping (the trainer's ``plateau_patience`` and ``early_stopping``),
and mixed precision on a GPU (the trainer's ``amp``). Validation PSNR selects the epoch; the test split (LOL
eval15) is scored once, at export. Registered as the method ``residual_cnn``. Command line::

    lle train residual_cnn --preset quick --out runs/residual_cnn
    lle enhance residual_cnn dark.jpg -o out.png
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .. import metrics
from ..config import RunContext
from ..data import PairedBatches, load_paired
from ..evaluate import PROTOCOL, evaluate
from ..histogram import HistogramRegressor, feature_names
from ..images import to_image, to_tensor
from ..losses.residual_cnn import mse_mae_loss
from ..methods import LearnedMethod, register
from ..tiling import Prepared, Tiling
from ..models.residual_cnn import ResidualCNN, enhance, refine
from ..train import Task, Trainer
from ..weights import save_weights
from . import card_scores, selected_network, single_phase, single_run_card, training_and_validation, training_curves


@dataclass(frozen=True)
class ResidualCNNRecipe:
    """Everything that defines a run besides the data and the seed.

    The network: ``width`` channels, ``blocks`` dual-path blocks, ``batchnorm``; ``preprocess`` switches the
    histogram preprocessing on (its regressor: percentiles every ``percentile_step`` %, ``rounds`` trees of
    ``depth`` per target percentile; its inputs are every dark percentile, or with ``threshold`` those the seed's
    rule ``|r| >= threshold`` keeps, none of them on LOL). The loss: ``mse_weight * MSE +
    mae_weight * MAE``. AdamW with ``learning_rate`` and ``weight_decay``; the rate is multiplied by
    ``plateau_factor`` after more than ``plateau_patience`` validations without a better PSNR, and training stops
    once the best PSNR is ``early_stopping`` validations old.

    The seed publishes the ingredients (MSE + MAE, AdamW, ReduceLROnPlateau, a gradient scaler, early stopping on
    validation loss), not their constants; ``full`` is our reading at the defaults of PyTorch where the seed is
    silent (AdamW's weight decay 0.01, ReduceLROnPlateau's factor 0.1 and patience 10), with whole-image
    validation every epoch.
    """

    width: int = 32
    blocks: int = 4
    batchnorm: bool = True
    preprocess: bool = True
    percentile_step: int = 5
    rounds: int = 100
    depth: int = 3
    threshold: float | None = None
    mse_weight: float = 1.0
    mae_weight: float = 1.0
    epochs: int = 100
    batch_size: int = 8
    crop: int | None = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    plateau_patience: int | None = 10
    plateau_factor: float = 0.1
    early_stopping: int | None = 20
    val_every: int = 1
    train_items: int | None = None
    val_items: int | None = None

    @property
    def levels(self) -> np.ndarray:
        return np.arange(0, 100 + self.percentile_step, self.percentile_step, dtype=np.float64)

    def build(self) -> ResidualCNN:
        return ResidualCNN(self.width, self.blocks, batchnorm=self.batchnorm, preprocess=self.preprocess,
                           levels=self.levels, rounds=self.rounds, depth=self.depth)


PRESETS = {
    # about a minute on two CPU cores: a narrow network on 64x64 crops of 96 synthetic pairs, a small regressor
    "quick": ResidualCNNRecipe(width=16, blocks=2, rounds=20, percentile_step=10, epochs=4, batch_size=8, crop=64,
                               plateau_patience=1, plateau_factor=0.5, early_stopping=3, train_items=96,
                               val_items=8),
    "full": ResidualCNNRecipe(),
}


# ----------------------------------------------------------------------------------------------------------------
# Preprocessing: fit on the training split, match every dark image once
# ----------------------------------------------------------------------------------------------------------------


def numpy_pairs(pairs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The dark images and the targets of ``pairs`` (items ``{"low", "high"}``) as two lists of NumPy images."""
    items = [pairs[index] for index in range(len(pairs))]
    return [to_image(item["low"]) for item in items], [to_image(item["high"]) for item in items]


def fit_histogram(regressor: HistogramRegressor, pairs, *, threshold: float | None = None,
                  seed: int = 0) -> HistogramRegressor:
    """Fit ``regressor`` on every pair of ``pairs`` (items ``{"low", "high"}`` of ``(3, H, W)`` tensors, whole
    images): pass the **training** split, never the validation or test split. Returns the regressor."""
    return regressor.fit(*numpy_pairs(pairs), threshold=threshold, seed=seed)


class PreparedPairs(Dataset):
    """The pairs of ``base`` with each dark image replaced by what the network sees: ``prepare(low)`` (a NumPy
    function, :meth:`ResidualCNN.prepare`), computed on access; :class:`~lle_lib.data.PairedBatches` keeps the
    results, so each image is matched once."""

    def __init__(self, base, prepare):
        self.base, self.prepare = base, prepare
        self.source = getattr(base, "source", type(base).__name__) + ", dark images histogram-matched"

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.base[index])
        item["low"] = to_tensor(self.prepare(to_image(item["low"])))[0]
        return item


def _prepared(batches: PairedBatches, network: ResidualCNN) -> PairedBatches:
    """``batches`` (from :func:`~lle_lib.recipes.training_and_validation`) over :class:`PreparedPairs`."""
    return PairedBatches(PreparedPairs(batches.base, network.prepare), crop=batches.crop, flip=batches.flip,
                         memory_mb=batches.memory_limit / 2**20)


# ----------------------------------------------------------------------------------------------------------------
# The task and the trainer
# ----------------------------------------------------------------------------------------------------------------


class ResidualCNNTask(Task):
    """One network, AdamW, MSE + MAE on the prepared dark images; ``histogram`` is the fitted regressor's state,
    copied into every new network so that it travels in the checkpoints and the shipped weights."""

    def __init__(self, recipe: ResidualCNNRecipe, histogram: dict[str, torch.Tensor] | None = None):
        self.recipe, self.histogram = recipe, histogram

    def modules(self):
        network = self.recipe.build()
        if self.histogram is not None:
            network.histogram.load_state_dict(self.histogram)
        return {"net": network}

    def configure_optimizers(self, modules):
        return {"net": torch.optim.AdamW(modules["net"].parameters(), lr=self.recipe.learning_rate,
                                         weight_decay=self.recipe.weight_decay)}

    def training_step(self, batch, trainer):
        output = trainer.modules["net"](batch["low"])
        loss, parts = mse_mae_loss(output, batch["high"], mse_weight=self.recipe.mse_weight,
                                   mae_weight=self.recipe.mae_weight)
        trainer.optimize(loss, "net")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        output = trainer.modules["net"](batch["low"]).float()
        loss, _ = mse_mae_loss(output, batch["high"], mse_weight=self.recipe.mse_weight,
                               mae_weight=self.recipe.mae_weight)
        return {"psnr": metrics.psnr(output, batch["high"]), "ssim": metrics.ssim(output, batch["high"]),
                "loss": loss}


def make_trainer(recipe: ResidualCNNRecipe, run: RunContext | None = None, *,
                 out_dir: str | Path | None = None) -> Trainer:
    """A :class:`Trainer` for ``recipe`` on the book's data (LOL if the run's data folder holds it, else synthetic
    pairs). With ``recipe.preprocess``, the regressor is fitted on the training split first (a few seconds;
    deterministic, so every DDP process and every resume fits the same one) and both splits are prepared."""
    run = run or RunContext()
    train, val = training_and_validation(run, size=recipe.crop, train_items=recipe.train_items,
                                         val_items=recipe.val_items)
    histogram = None
    if recipe.preprocess:
        network = recipe.build()
        fit_histogram(network.histogram, train.base, threshold=recipe.threshold, seed=run.seed)
        histogram = network.histogram.state_dict()
        train, val = _prepared(train, network), _prepared(val, network)
    rules = {"plateau_patience": recipe.plateau_patience, "plateau_factor": recipe.plateau_factor,
             "early_stopping": recipe.early_stopping}
    settings = run.train_config(epochs=recipe.epochs, batch_size=recipe.batch_size, out_dir=out_dir,
                                monitor="val/psnr", monitor_mode="max", val_every=recipe.val_every,
                                sample_every=None, **rules)
    return Trainer(ResidualCNNTask(recipe, histogram), train, settings, val_dataset=val)


# ----------------------------------------------------------------------------------------------------------------
# Export, shipped recipes, registration
# ----------------------------------------------------------------------------------------------------------------

#: The per-epoch values a weight card keeps, so that the chapter can plot the shipped run.
CURVES = ("train/loss", "train/mse", "train/mae", "val/psnr", "val/ssim", "val/loss", "lr_net")


def preprocessing_only(network: ResidualCNN, image: np.ndarray) -> np.ndarray:
    """The learned preprocessing alone, without the network: a method of its own in the evaluation."""
    return network.histogram.enhance(image)


#: The rows of :func:`protocol_steps`: the honest figure, then the seed's departures from it, one added per row.
PROTOCOL_STEPS = (
    "honest: the test split, per-image PSNR, range 1",
    "the same on the validation split",
    "1. + regressor fitted with the validation targets",
    "2. + scored on training pairs",
    "3. + data range inferred from each batch",
    "4. + PSNR of the batch MSE",
)


def protocol_steps(network: ResidualCNN, train, val, test, *, batch_size: int = 8, scored: int = 20
                   ) -> pd.DataFrame:
    """How the seed's figure arises, one departure from the book's protocol at a time (chapter 7). ``train``,
    ``val`` and ``test`` are ``(dark images, targets)``, lists of NumPy images. Rows :data:`PROTOCOL_STEPS`, each
    adding one flaw to the row above: a regressor refitted on the training **and validation** pairs (the seed's
    fit on every pair), scoring on as many training pairs as there are validation pairs, the data range inferred
    per batch, and PSNR of the batch MSE (:mod:`lle_lib.pitfalls`). The validation rows score the first ``scored``
    validation pairs and the training rows the first ``scored`` training pairs (the whole test split is scored).
    Columns: the figure of the preprocessing alone and of the network on it (``network`` unchanged: its own
    regressor for the honest rows)."""
    from .. import pitfalls
    from ..histogram import percentile_features
    from ..models.residual_cnn import refine

    def tensors(images):
        return [to_tensor(image)[0] for image in images]

    outputs = {}

    def figures(regressor, pairs, **flags):
        key = (id(regressor), id(pairs))
        if key not in outputs:   # the last three rows score the same outputs under different rules
            prepared = [regressor.enhance(low) for low in pairs[0]]
            outputs[key] = tensors(prepared), tensors([refine(network, image) for image in prepared])
        prepared, refined = outputs[key]
        targets = tensors(pairs[1])
        return {"preprocessing alone (dB)": pitfalls.batched_figure(prepared, targets, batch_size=batch_size,
                                                                    **flags),
                "preprocessing + network (dB)": pitfalls.batched_figure(refined, targets, batch_size=batch_size,
                                                                        **flags)}

    honest = network.histogram
    leaky = HistogramRegressor(honest.level_values, rounds=honest.rounds, depth=honest.depth,
                               quantile=honest.quantile, learning_rate=honest.learning_rate)
    leaky.fit_table(percentile_features([*train[0], *val[0]], honest.level_values),
                    percentile_features([*train[1], *val[1]], honest.level_values))
    val_scored, seen = (val[0][:scored], val[1][:scored]), (train[0][:scored], train[1][:scored])
    cases = [(honest, test, {}), (honest, val_scored, {}), (leaky, val_scored, {}), (leaky, seen, {}),
             (leaky, seen, {"infer_range": True}), (leaky, seen, {"infer_range": True, "batch_mse": True})]
    rows = {name: figures(regressor, pairs, **flags) for name, (regressor, pairs, flags) in zip(PROTOCOL_STEPS, cases)}
    table = pd.DataFrame(rows).T
    table["step (network column)"] = table["preprocessing + network (dB)"].diff()
    return table


def export_weights(run_dir: str | Path, recipe: ResidualCNNRecipe, weights_path: str | Path,
                   run: RunContext | None = None, *, dtype: torch.dtype | None = None) -> dict:
    """Ship the best validation epoch (``best.pt``) as a plain state_dict (the regressor's trees included) with a
    JSON card: the test split scored once with the network (plain and GT-mean), and once with the preprocessing
    alone, for the report only."""
    run = run or RunContext()
    network = selected_network(run_dir, recipe.build, dtype=dtype)
    test = load_paired("test", run.data_dir, seed=run.seed)
    report = evaluate(lambda image: enhance(network, image), test, name="residual_cnn", progress=False).summary
    card = {
        "method": "Residual CNN with learned histogram preprocessing",
        "paper": "the book's seed method (no paper); quantile regression: Koenker and Bassett 1978",
        **single_run_card(run_dir, recipe, run),
        "histogram_inputs": ([name for name, used in zip(feature_names(recipe.levels), network.histogram.selected)
                              if used] if recipe.preprocess else []),
        "test_data": test.source,
        "test_protocol": PROTOCOL,
        **card_scores(report),
        "history": training_curves(run_dir, CURVES),
        "license": "MIT, like the book's code (trained here)",
    }
    if recipe.preprocess:
        alone = evaluate(lambda image: preprocessing_only(network, image), test, name="preprocessing",
                         progress=False).summary
        card.update(card_scores(alone, suffix="_preprocessing_only"))
        steps = protocol_steps(network, numpy_pairs(load_paired("train", run.data_dir, seed=run.seed)),
                               numpy_pairs(load_paired("val", run.data_dir, seed=run.seed)), numpy_pairs(test))
        card["protocol_steps"] = {name: {"preprocessing_alone": round(float(row.iloc[0]), 3),
                                         "network": round(float(row.iloc[1]), 3)} for name, row in steps.iterrows()}
    return save_weights(network, weights_path, card, dtype=dtype)


#: The recipe of the weights that ship with the book (``lle_lib/pretrained/residual_cnn.pt``), sized for two CPU
#: cores: 24 channels, 3 blocks, 128x128 crops, validation every epoch, a faster plateau rule and early stopping.
SHIPPED = {
    "residual_cnn": ResidualCNNRecipe(width=24, blocks=3, epochs=40, plateau_patience=2, plateau_factor=0.5,
                                      early_stopping=6),
}


_ABLATION_BASE = ResidualCNNRecipe(width=16, blocks=2, epochs=5, plateau_patience=None, early_stopping=None,
                                   val_items=20)
#: The chapter's ablation (``tools/ablate_residual_cnn.py``, validation only): a base smaller than the shipped
#: recipe (16 channels, 2 blocks, 5 epochs, the first 20 validation pairs), and variants that change one thing.
ABLATION = {
    "base": _ABLATION_BASE,
    "no preprocessing": replace(_ABLATION_BASE, preprocess=False),
    "no BatchNorm": replace(_ABLATION_BASE, batchnorm=False),
    "MSE only": replace(_ABLATION_BASE, mae_weight=0.0),
    "MAE only": replace(_ABLATION_BASE, mse_weight=0.0),
}


def _train(recipe: ResidualCNNRecipe, run: RunContext, out_dir: Path):
    return make_trainer(recipe, run, out_dir=out_dir).fit()


def _prepare_tiles(network: ResidualCNN, image: np.ndarray) -> Prepared:
    """The histogram match is global (percentiles of the whole photo): once, before the tiles."""
    return Prepared(network.prepare(image))


def _refine_tile(network: ResidualCNN, tile: np.ndarray, box) -> np.ndarray:
    return refine(network, tile)


register(LearnedMethod(
    name="residual_cnn", title="Residual CNN", paper="koenker1978regression", family="paired",
    module=__name__,
    summary="a learned histogram match (boosted quantile regression), then a residual CNN refines it",
    apply=enhance,
    recipe=ResidualCNNRecipe, presets=PRESETS, shipped=SHIPPED, weights="residual_cnn",
    build=ResidualCNNRecipe.build, train=_train, export=export_weights,
    phase_trainers=single_phase(make_trainer),
    # 18 stride-1 3x3 convolutions on the longest path: an output pixel sees 18 pixels around it
    tiling=Tiling(halo=32, prepare=_prepare_tiles, run=_refine_tile)))
