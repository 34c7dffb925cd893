"""Training Zero-DCE and Zero-DCE++ through the book's shared trainer.

Zero-DCE needs no targets: it trains on dark images alone with the four zero-reference losses of
:mod:`lle_lib.losses`. Validation still uses the paired validation split (PSNR against the targets) to *select*
the epoch; the test set (LOL eval15) is only scored at the very end, for the report.

Registered as two methods, ``zero_dce`` and ``zero_dce_pp`` (:mod:`lle_lib.methods`). Command line (``full`` is
the authors' recipe; the weights shipped with the book used the recipes of :data:`SHIPPED`, shorter and with ``E``
chosen on the validation split)::

    lle train zero_dce --preset full --out runs/zero_dce --export zero_dce.pt
    torchrun --nproc_per_node=4 -m lle_lib train zero_dce_pp --preset full --out runs/zero_dce_pp   # several GPUs
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .. import metrics
from ..config import RunContext
from ..data import load_paired
from ..evaluate import PROTOCOL, evaluate
from ..losses import ZERO_DCE_PP_WEIGHTS, ZERO_DCE_WEIGHTS, zero_dce_loss
from ..methods import Control, LearnedMethod, register
from ..tiling import Prepared, Tiling
from ..models import DCENet, DCENetPP, enhance
from ..models.zero_dce import TILE_HALO, auto_scale, enhance_tile_with_map, shrunk_curve_map
from ..train import Task, Trainer
from ..weights import save_weights
from . import card_scores, selected_network, single_phase, single_run_card, training_and_validation

VARIANTS = ("zero_dce", "zero_dce_pp")


@dataclass(frozen=True)
class ZeroDCERecipe:
    """Everything that defines a Zero-DCE training run besides the data and the seed.

    The ``full`` preset follows the authors' training script (Adam, learning rate 1e-4, weight decay 1e-4,
    gradient norm clipped at 0.1, batch 8, 256x256 images, exposure level E = 0.6, 200 epochs) on LOL's training
    images (the authors trained on SICE);
    ``quick`` is a few minutes on two CPU cores, for the tests and the chapter's quick preset.
    """

    variant: str = "zero_dce"
    epochs: int = 200
    batch_size: int = 8
    crop: int = 256
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 0.1
    well_exposedness: float = 0.6
    smoothness: str = "first"          # "first" (the paper), "second" or "both" (the book's experiment)
    second_order_weight: float | None = None
    scale_factor: int = 1              # Zero-DCE++ only: curves estimated on a copy downscaled by this factor
    train_items: int | None = None     # use only the first N training items (quick runs)
    val_items: int | None = None       # validate on the first N validation items only (quick runs)

    def build_network(self) -> torch.nn.Module:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {self.variant!r}")
        return DCENet() if self.variant == "zero_dce" else DCENetPP(scale_factor=self.scale_factor)

    @property
    def loss_weights(self) -> dict[str, float]:
        return ZERO_DCE_WEIGHTS if self.variant == "zero_dce" else ZERO_DCE_PP_WEIGHTS


PRESETS = {
    "quick": ZeroDCERecipe(epochs=2, batch_size=4, crop=64, learning_rate=1e-3, train_items=96, val_items=8),
    "full": ZeroDCERecipe(),
}


class ZeroDCETask(Task):
    """Zero-DCE as a trainer task: the network estimates curves for dark images; four losses judge the result."""

    def __init__(self, recipe: ZeroDCERecipe):
        self.recipe = recipe

    def modules(self):
        return {"net": self.recipe.build_network()}

    def configure_optimizers(self, modules):
        return {"net": torch.optim.Adam(modules["net"].parameters(), lr=self.recipe.learning_rate,
                                        weight_decay=self.recipe.weight_decay)}

    def training_step(self, batch, trainer):
        low = batch["low"]
        result = trainer.modules["net"](low, keep_iterations=False)
        loss, parts = zero_dce_loss(result.enhanced, low, result.curves, self.recipe.loss_weights,
                                    smoothness=self.recipe.smoothness,
                                    second_order_weight=self.recipe.second_order_weight,
                                    well_exposedness=self.recipe.well_exposedness)
        trainer.optimize(loss, "net")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        enhanced = trainer.modules["net"](batch["low"], keep_iterations=False).enhanced
        return {"psnr": metrics.psnr(enhanced.clamp(0, 1), batch["high"]),
                "ssim": metrics.ssim(enhanced.clamp(0, 1), batch["high"])}

    def samples(self, batch, trainer):
        enhanced = trainer.modules["net"](batch["low"], keep_iterations=False).enhanced
        return {"low": batch["low"], "enhanced": enhanced.clamp(0, 1)}


def make_trainer(recipe: ZeroDCERecipe, run: RunContext | None = None, *, out_dir: str | Path | None = None
                 ) -> Trainer:
    """A :class:`Trainer` for ``recipe`` on the book's data: LOL's training split (random crops) if the run's data
    folder holds LOL, else synthetic pairs; validation on the matching validation split, selecting by PSNR."""
    run = run or RunContext()
    train, val = training_and_validation(run, size=recipe.crop, train_items=recipe.train_items,
                                         val_items=recipe.val_items)
    settings = run.train_config(epochs=recipe.epochs, batch_size=recipe.batch_size, grad_clip=recipe.grad_clip,
                                out_dir=out_dir, monitor="val/psnr", monitor_mode="max", sample_every=None)
    return Trainer(ZeroDCETask(recipe), train, settings, val_dataset=val)


def export_weights(run_dir: str | Path, recipe: ZeroDCERecipe, weights_path: str | Path,
                   run: RunContext | None = None, *, dtype: torch.dtype | None = None) -> dict:
    """Turn a finished run into shipped weights: the ``best.pt`` epoch (chosen by validation PSNR) is saved as a
    plain state_dict with a JSON card, after a final evaluation on the test split, which is reported and never
    used for selection. ``dtype=torch.float16`` stores half the bytes; the card then scores the rounded weights."""
    run = run or RunContext()
    network = selected_network(run_dir, recipe.build_network, dtype=dtype)
    test = load_paired("test", run.data_dir, seed=run.seed)
    report = evaluate(lambda image: enhance(network, image), test, name=recipe.variant, progress=False).summary
    card = {
        "method": "Zero-DCE" if recipe.variant == "zero_dce" else "Zero-DCE++",
        "paper": "Guo et al., CVPR 2020" if recipe.variant == "zero_dce" else "Li, Guo, Loy, TPAMI 2021",
        **single_run_card(run_dir, recipe, run, training_data_note=" (low images only: zero-reference)"),
        "test_data": test.source,
        "test_protocol": PROTOCOL,
        **card_scores(report),
        "license": "MIT, like the book's code (trained here; not the authors' CC BY-NC weights)",
    }
    return save_weights(network, weights_path, card, dtype=dtype)


#: The recipes of the weights that ship with the book (``lle_lib/pretrained/<name>.pt``); each card repeats its
#: recipe next to what was measured. All on LOL's training low images with seed 0, selected on the validation split.
SHIPPED = {
    # E = 0.5 won the exposure-level study (see the card); lr 1e-3 and 10 epochs fit a CPU budget
    "zero_dce": ZeroDCERecipe(epochs=10, learning_rate=1e-3, well_exposedness=0.5),
    "zero_dce_pp": ZeroDCERecipe(variant="zero_dce_pp", epochs=3, learning_rate=1e-3, well_exposedness=0.5),
    # the smoothness experiment: as zero_dce, 4 epochs, with the second-order term instead of / beside TV
    "zero_dce_second_order": ZeroDCERecipe(epochs=4, learning_rate=1e-3, well_exposedness=0.5, smoothness="second"),
    "zero_dce_both_orders": ZeroDCERecipe(epochs=4, learning_rate=1e-3, well_exposedness=0.5, smoothness="both"),
}


def smoothness_measures(networks: dict[str, torch.nn.Module], pairs) -> "pd.DataFrame":
    """What the smoothness experiment measures, per network and image: one row each.

    Columns: ``psnr`` and ``ssim`` against the target (plain protocol); ``flat_noise``
    (:func:`lle_lib.metrics.flat_region_noise`: the output's fine detail where the target is flat); ``brightness``
    (mean of the output, since brighter outputs carry more absolute noise); and two measures of the curve maps
    themselves, ``map_tv`` (:func:`~lle_lib.losses.illumination_smoothness_loss`, first differences) and
    ``map_curvature`` (:func:`~lle_lib.losses.second_order_smoothness_loss`, second differences). Maps of
    different networks are comparable only if they have the same number of channels (Zero-DCE: 24).
    ``networks`` maps a label to a curve network; ``pairs`` yields ``{"low", "high", "name"}`` tensors.
    """
    import pandas as pd

    from ..losses import illumination_smoothness_loss, second_order_smoothness_loss

    rows = []
    for label, network in networks.items():
        network.eval()
        parameter = next(network.parameters())
        for index in range(len(pairs)):
            item = pairs[index]
            with torch.no_grad():
                result = network(item["low"][None].to(parameter.device, parameter.dtype), keep_iterations=False)
            output = result.enhanced.clamp(0, 1)[0].cpu()
            high = item["high"].to(output.dtype)
            rows.append({"network": label, "image": str(item["name"]),
                         "psnr": float(metrics.psnr(output, high)), "ssim": float(metrics.ssim(output, high)),
                         "flat_noise": metrics.flat_region_noise(output, high),
                         "brightness": metrics.mean_brightness(output),
                         "map_tv": float(illumination_smoothness_loss(result.curves)),
                         "map_curvature": float(second_order_smoothness_loss(result.curves))})
    return pd.DataFrame(rows)


def _train(recipe: ZeroDCERecipe, run: RunContext, out_dir: Path):
    return make_trainer(recipe, run, out_dir=out_dir).fit()


def _enhance_pp(network: DCENetPP, image, iterations: int, scale: int):
    """Zero-DCE++ at another ``scale`` than it was built with: a shallow copy shares the weights. ``scale=0``
    picks :func:`~lle_lib.models.zero_dce.auto_scale` for the photo's size (1 for LOL's images)."""
    scale = scale or auto_scale(*image.shape[:2])
    if scale != network.scale_factor:
        network = copy.copy(network)
        network.scale_factor = scale
    return enhance(network, image, iterations)


ITERATIONS = Control("iterations", int, 8, 1, 8, "how many of the 8 curves to apply: fewer, less brightening")


def _prepare_pp_tiles(network: DCENetPP, image, iterations: int, scale: int) -> Prepared:
    """At scale 1 the curve map is local (tiles with a 7-pixel halo are exact); above it the map is estimated once
    on the whole photo, shrunk, and each tile enlarges its own part of it."""
    scale = scale or auto_scale(*image.shape[:2])
    small_map = None if scale == 1 else shrunk_curve_map(network, image, scale)
    return Prepared(image, {"small_map": small_map, "size": image.shape[:2]})


def _enhance_pp_tile(network: DCENetPP, tile, box, iterations: int, scale: int, small_map, size):
    if small_map is None:
        return _enhance_pp(network, tile, iterations, 1)
    return enhance_tile_with_map(tile, small_map, size, box, iterations)

register(LearnedMethod(
    name="zero_dce", title="Zero-DCE", paper="guo2020zero", family="zero-reference", module=__name__,
    summary="a small CNN estimates 8 pixel-wise curves, trained on dark images alone",
    apply=enhance, controls=(ITERATIONS,), tiling=Tiling(halo=TILE_HALO),
    recipe=ZeroDCERecipe, presets=PRESETS, fixed={"variant": "zero_dce"},
    shipped={name: recipe for name, recipe in SHIPPED.items() if recipe.variant == "zero_dce"}, weights="zero_dce",
    build=ZeroDCERecipe.build_network, train=_train, export=export_weights,
    phase_trainers=single_phase(make_trainer)))

register(LearnedMethod(
    name="zero_dce_pp", title="Zero-DCE++", paper="li2021learning", family="zero-reference", module=__name__,
    summary="Zero-DCE with one shared curve, separable convolutions and curves estimated on a shrunk copy",
    apply=_enhance_pp,
    controls=(ITERATIONS, Control("scale", int, 0, 0, 32, "estimate the curve on a copy shrunk by this factor "
                                                          "(faster on big photos); 0: automatic, photos above "
                                                          "0.3 megapixels shrunk to 0.05 (LOL's 600x400 images "
                                                          "stay whole)")),
    tiling=Tiling(halo=TILE_HALO, prepare=_prepare_pp_tiles, run=_enhance_pp_tile),
    recipe=ZeroDCERecipe, presets={name: replace(recipe, variant="zero_dce_pp") for name, recipe in PRESETS.items()},
    fixed={"variant": "zero_dce_pp"},
    shipped={name: recipe for name, recipe in SHIPPED.items() if recipe.variant == "zero_dce_pp"},
    weights="zero_dce_pp", build=ZeroDCERecipe.build_network, train=_train, export=export_weights,
    phase_trainers=single_phase(make_trainer)))
