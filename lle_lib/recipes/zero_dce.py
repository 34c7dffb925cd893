"""Training Zero-DCE and Zero-DCE++ through the book's shared trainer.

Zero-DCE needs no targets: it trains on dark images alone with the four zero-reference losses of
:mod:`lle_lib.losses`. Validation still uses the paired validation split (PSNR against the targets) to *select*
the epoch; the test set (LOL eval15) is only scored at the very end, for the report.

Command line (``full`` is the authors' recipe; the weights shipped with the book used the recipes of
:data:`SHIPPED`, shorter and with ``E`` chosen on the validation split)::

    python -m lle_lib.recipes.zero_dce --variant zero_dce --preset full --out runs/zero_dce
    torchrun --nproc_per_node=4 -m lle_lib.recipes.zero_dce --preset full --out runs/zero_dce   # several GPUs
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from .. import config, metrics
from ..data import load_paired
from ..evaluate import PROTOCOL, evaluate
from ..losses import ZERO_DCE_PP_WEIGHTS, ZERO_DCE_WEIGHTS, zero_dce_loss
from ..models import DCENet, DCENetPP, enhance
from ..train import Task, TrainConfig, Trainer
from ..weights import save_weights
from . import card_scores, load_shipped_or_train, single_run_card, training_and_validation

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


def make_trainer(recipe: ZeroDCERecipe, *, data_dir=None, seed: int = 0, device: str = "auto",
                 out_dir: str | Path | None = None, progress: bool = True) -> Trainer:
    """A :class:`Trainer` for ``recipe`` on the book's data: LOL's training split (random crops) if ``$LLE_DATA``
    holds LOL, else synthetic pairs; validation on the matching validation split, selecting by PSNR."""
    train, val = training_and_validation(data_dir, seed=seed, size=recipe.crop, train_items=recipe.train_items,
                                         val_items=recipe.val_items)
    settings = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, seed=seed, device=device,
                           grad_clip=recipe.grad_clip, out_dir=out_dir, monitor="val/psnr", monitor_mode="max",
                           progress=progress, sample_every=None)
    return Trainer(ZeroDCETask(recipe), train, settings, val_dataset=val)


def export_weights(run_dir: str | Path, recipe: ZeroDCERecipe, weights_path: str | Path, *, data_dir=None,
                   seed: int = 0) -> dict:
    """Turn a finished run into shipped weights: the ``best.pt`` epoch (chosen by validation PSNR) is saved as a
    plain state_dict with a JSON card, after a final evaluation on the test split, which is reported and never
    used for selection."""
    checkpoint = torch.load(Path(run_dir) / "best.pt", map_location="cpu", weights_only=True)
    network = recipe.build_network()
    network.load_state_dict(checkpoint["modules"]["net"])
    test = load_paired("test", data_dir, seed=seed)
    report = evaluate(lambda image: enhance(network, image), test, name=recipe.variant, progress=False).summary
    card = {
        "method": "Zero-DCE" if recipe.variant == "zero_dce" else "Zero-DCE++",
        "paper": "Guo et al., CVPR 2020" if recipe.variant == "zero_dce" else "Li, Guo, Loy, TPAMI 2021",
        **single_run_card(run_dir, recipe, data_dir=data_dir, seed=seed,
                          training_data_note=" (low images only: zero-reference)"),
        "test_data": test.source,
        "test_protocol": PROTOCOL,
        **card_scores(report),
        "license": "MIT, like the book's code (trained here; not the authors' CC BY-NC weights)",
    }
    return save_weights(network, weights_path, card)


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


def load_shipped(name: str, *, retrain: bool = False, data_dir=None, device: str = "cpu", seed: int = 0,
                 run_dir: str | Path | None = None) -> tuple[torch.nn.Module, dict]:
    """A network with the book's shipped weights ``name`` (a key of :data:`SHIPPED`), and its card.

    Loads ``lle_lib/pretrained/<name>.pt`` strictly (``weights_only=True``). If the file is missing, or with
    ``retrain=True``, it first trains the recipe of :data:`SHIPPED` on the book's data and exports the selected
    epoch there with a fresh card (:func:`export_weights`); checkpoints go to ``run_dir`` (default: the cache
    folder), so an interrupted retraining resumes. The network is returned in eval mode on ``device``.
    """
    if name not in SHIPPED:
        raise KeyError(f"no shipped Zero-DCE weights named {name!r}; choose one of {sorted(SHIPPED)}")
    recipe = SHIPPED[name]
    return load_shipped_or_train(
        recipe.build_network(), name,
        lambda out_dir: make_trainer(recipe, data_dir=data_dir, seed=seed, device=device, out_dir=out_dir).fit(),
        lambda out_dir, path: export_weights(out_dir, recipe, path, data_dir=data_dir, seed=seed),
        retrain=retrain, device=device, run_dir=run_dir)


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, default="zero_dce")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="quick")
    parser.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    parser.add_argument("--crop", type=int, help="override the preset's training crop size")
    parser.add_argument("--exposure", type=float, help="override the well-exposedness level E")
    parser.add_argument("--lr", type=float, help="override the learning rate")
    parser.add_argument("--batch-size", type=int, help="override the batch size (per process)")
    parser.add_argument("--smoothness", choices=("first", "second", "both"))
    parser.add_argument("--data-dir", help="folder that holds lol/ (default: $LLE_DATA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="run folder: checkpoints (last.pt, best.pt) and samples")
    parser.add_argument("--export", help="after training, save the best epoch here as shipped weights with a card")
    args = parser.parse_args(argv)

    recipe = replace(PRESETS[args.preset], variant=args.variant)
    overrides = {"epochs": args.epochs, "crop": args.crop, "well_exposedness": args.exposure,
                 "smoothness": args.smoothness, "learning_rate": args.lr, "batch_size": args.batch_size}
    recipe = replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    config.check_preset(args.preset)
    trainer = make_trainer(recipe, data_dir=args.data_dir, seed=args.seed, device=args.device, out_dir=args.out)
    if trainer.rank == 0:
        print(f"recipe: {asdict(recipe)}")
        print(f"training data: {load_paired('train', args.data_dir, seed=args.seed).source}")
    trainer.fit()
    if trainer.rank == 0:
        print(f"best val/psnr {trainer.best}; checkpoints in {args.out}")
        if args.export:
            card = export_weights(args.out, recipe, args.export, data_dir=args.data_dir, seed=args.seed)
            print(f"exported {args.export}: test PSNR {card['test_psnr']} dB, SSIM {card['test_ssim']} "
                  f"({card['test_data']})")


if __name__ == "__main__":
    main()
