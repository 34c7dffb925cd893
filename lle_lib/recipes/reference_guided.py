"""Training reference-guided multi-level enhancement (Wang et al., arXiv 2101.00813) through the book's trainer.

In training the reference is the pair's target: the network learns to decode the dark image's content with the
target's luminance (:mod:`lle_lib.losses.reference_guided`). Validation scores that (the target as the reference,
the paper's protocol) and selects the epoch by it. After training, one fixed reference is chosen on the validation
split (:func:`choose_reference`), and its luminance code ships inside the weights as the default: that is how the
method runs without a reference, and how it is compared fairly with the others. Registered as the method
``reference_guided`` (:mod:`lle_lib.methods`), with the reference image as a declared control. Command line::

    lle train reference_guided --preset quick --out runs/reference_guided
    lle enhance reference_guided dark.jpg --reference bright_photo.jpg -o out.png
    torchrun --nproc_per_node=4 -m lle_lib train reference_guided --preset full --out runs/reference_guided
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import metrics
from ..config import RunContext
from ..data import load_paired
from ..evaluate import PROTOCOL, Evaluation, evaluate, score
from ..images import read_image, to_image
from ..losses.reference_guided import CODE_WEIGHT, COLOUR_WEIGHT, TRIPLET_MARGIN, reference_guided_loss
from ..methods import Control, LearnedMethod, register
from ..tiling import Prepared, Tiling
from ..models.layers import pad_to_multiple
from ..models.reference_guided import (DOWNSAMPLINGS, TILE_HALO, ReferenceGuidedNet, code_in_tiles, decode_tile,
                                       enhance_with_reference)
from ..progress import progress_bar
from ..train import Task, Trainer, linear_decay
from ..weights import save_weights
from . import (
    card_scores, first_items, selected_network, single_phase, single_run_card, training_and_validation,
    training_curves,
)


@dataclass(frozen=True)
class ReferenceGuidedRecipe:
    """Everything that defines a run besides the data and the seed.

    ``full`` is the authors' recipe as the issue that introduced this chapter reads their code: encoder widths 32 to
    256, a 512-dimensional code whose first 96 dimensions are luminance, Adam at 1e-4, 1000 epochs, batches of 8
    whole 400x600 LOL images (``crop=None``) with flips, and a random 100x100 patch of each dark input replaced by
    a blend of dark and target (``blend_patch``). ``margin`` and the two weights are those of the losses.
    ``decay_epochs``: the learning rate falls linearly towards zero over the last ``decay_epochs`` epochs
    (:func:`~lle_lib.train.linear_decay`; the authors keep it constant, ``0``).
    """

    width: int = 32
    code_size: int = 512
    luminance_size: int = 96
    epochs: int = 1000
    batch_size: int = 8
    crop: int | None = None
    learning_rate: float = 1e-4
    blend_patch: int = 100
    margin: float = TRIPLET_MARGIN
    code_weight: float = CODE_WEIGHT
    colour_weight: float = COLOUR_WEIGHT
    val_every: int = 1
    decay_epochs: int = 0
    train_items: int | None = None
    val_items: int | None = None

    def build(self) -> ReferenceGuidedNet:
        return ReferenceGuidedNet(self.width, self.code_size, self.luminance_size)


PRESETS = {
    # about a minute on two CPU cores: a narrow network on 64x64 crops of 96 pairs
    "quick": ReferenceGuidedRecipe(width=8, code_size=128, luminance_size=24, epochs=6, batch_size=4, crop=64,
                                   learning_rate=1e-3, blend_patch=16, train_items=96, val_items=4),
    "full": ReferenceGuidedRecipe(),
}


def blend_random_patch(low: torch.Tensor, high: torch.Tensor, size: int, generator: torch.Generator
                       ) -> torch.Tensor:
    """The authors' augmentation: in each dark image of the batch, one random ``size`` x ``size`` patch becomes
    ``t * low + (1 - t) * high`` with ``t`` uniform in [0, 1], so the network also sees inputs lit unevenly.
    ``generator`` (on the CPU) makes it reproducible; the patch is cut to the image where the image is smaller."""
    low = low.clone()
    height, width = low.shape[-2:]
    patch_h, patch_w = min(size, height), min(size, width)
    for index in range(low.shape[0]):
        top = int(torch.randint(0, height - patch_h + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - patch_w + 1, (1,), generator=generator))
        t = float(torch.rand((), generator=generator))
        window = (index, slice(None), slice(top, top + patch_h), slice(left, left + patch_w))
        low[window] = t * low[window] + (1 - t) * high[window]
    return low


class ReferenceGuidedTask(Task):
    """One network, one optimiser; the target is the reference (losses: :mod:`lle_lib.losses.reference_guided`)."""

    def __init__(self, recipe: ReferenceGuidedRecipe):
        self.recipe = recipe

    def modules(self):
        return {"net": self.recipe.build()}

    def configure_optimizers(self, modules):
        return {"net": torch.optim.Adam(modules["net"].parameters(), lr=self.recipe.learning_rate)}

    def configure_schedulers(self, optimizers):
        if not self.recipe.decay_epochs:
            return {}
        factor = linear_decay(self.recipe.epochs, self.recipe.decay_epochs)
        return {"net": torch.optim.lr_scheduler.LambdaLR(optimizers["net"], factor)}

    def training_step(self, batch, trainer):
        r = self.recipe
        low, high = batch["low"], batch["high"]
        if r.blend_patch:
            # drawn from (seed, step, rank): an interrupted run resumes to the same patches
            generator = torch.Generator().manual_seed(trainer.config.seed * 1_000_003 + trainer.global_step * 101
                                                      + trainer.rank)
            low = blend_random_patch(low, high, r.blend_patch, generator)
        codes = trainer.modules["net"](low, reference=high, with_codes=True)
        loss, parts = reference_guided_loss(codes.enhanced, low, high, luminance_output=codes.luminance_output,
                                            luminance_high=codes.luminance_reference,
                                            luminance_low=codes.luminance_low, content_low=codes.content_low,
                                            content_high=codes.content_reference, margin=r.margin,
                                            code_weight=r.code_weight, colour_weight=r.colour_weight)
        trainer.optimize(loss, "net")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        enhanced = trainer.modules["net"](batch["low"], reference=batch["high"]).clamp(0, 1)
        return {"psnr": metrics.psnr(enhanced, batch["high"]), "ssim": metrics.ssim(enhanced, batch["high"])}

    def samples(self, batch, trainer):
        enhanced = trainer.modules["net"](batch["low"], reference=batch["high"]).clamp(0, 1)
        return {"low": batch["low"], "enhanced": enhanced, "high": batch["high"]}


def make_trainer(recipe: ReferenceGuidedRecipe, run: RunContext | None = None, *,
                 out_dir: str | Path | None = None) -> Trainer:
    """A :class:`Trainer` for ``recipe`` on the book's data (LOL if the run's data folder holds it, else synthetic
    pairs), validating with the target as the reference and selecting the epoch by that PSNR."""
    run = run or RunContext()
    train, val = training_and_validation(run, size=recipe.crop, train_items=recipe.train_items,
                                         val_items=recipe.val_items)
    settings = run.train_config(epochs=recipe.epochs, batch_size=recipe.batch_size, out_dir=out_dir,
                                monitor="val/psnr", monitor_mode="max", val_every=recipe.val_every,
                                sample_every=None)
    return Trainer(ReferenceGuidedTask(recipe), train, settings, val_dataset=val)


# ----------------------------------------------------------------------------------------------------------------
# References: encoding a dataset, choosing one on validation, evaluating with the target as the reference
# ----------------------------------------------------------------------------------------------------------------


def _device(network: torch.nn.Module) -> torch.device:
    return next(network.parameters()).device


def _batch(item, key: str, device) -> torch.Tensor:
    return torch.as_tensor(item[key])[None].to(device, torch.float32)


@torch.no_grad()
def candidate_scores(network: ReferenceGuidedNet, dataset, *, progress: bool = True) -> pd.DataFrame:
    """Every target of ``dataset`` (the validation split) tried as *the* reference for all the other images:
    one row per candidate with its mean PSNR and SSIM over the others (its own pair left out, since there it would
    be the target itself, unless it is the only pair) and the mean brightness of the candidate. Sorted best first."""
    network.eval()
    device = _device(network)
    items = [dataset[index] for index in range(len(dataset))]
    codes = torch.cat([network.luminance(_batch(item, "high", device)) for item in items])
    names = [str(item["name"]) for item in items]
    psnr = np.full((len(items), len(items)), np.nan)
    ssim = np.full_like(psnr, np.nan)
    for i, item in enumerate(progress_bar(items, desc="references", disable=not progress)):
        low, high = _batch(item, "low", device), _batch(item, "high", device)
        height, width = low.shape[-2:]
        encoding = network.encode(pad_to_multiple(low, 2 ** DOWNSAMPLINGS))   # once per image, not per candidate
        content = network.split(encoding.code)[1]
        for j in range(len(items)):
            if i != j or len(items) == 1:
                output = network.decode(codes[j:j + 1], content, encoding.skips)[..., :height, :width].clamp(0, 1)
                psnr[i, j], ssim[i, j] = float(metrics.psnr(output, high)), float(metrics.ssim(output, high))
    table = pd.DataFrame({"reference": names, "psnr": np.nanmean(psnr, axis=0), "ssim": np.nanmean(ssim, axis=0),
                          "brightness": [float(torch.as_tensor(item["high"]).mean()) for item in items]})
    return table.sort_values("psnr", ascending=False, ignore_index=True)


def choose_reference(network: ReferenceGuidedNet, dataset, *, progress: bool = True) -> pd.DataFrame:
    """:func:`candidate_scores` on ``dataset`` (the validation split, never the test split), then the best
    candidate's luminance code stored as the network's :attr:`~ReferenceGuidedNet.default_luminance`. Returns the
    table; its first row is the chosen reference."""
    table = candidate_scores(network, dataset, progress=progress)
    names = [str(dataset[index]["name"]) for index in range(len(dataset))]
    chosen = dataset[names.index(table.loc[0, "reference"])]
    with torch.no_grad():
        network.default_luminance.copy_(network.luminance(_batch(chosen, "high", _device(network)))[0])
    return table


@torch.no_grad()
def evaluate_target_reference(network: ReferenceGuidedNet, dataset, *,
                              name: str = "Reference-guided, the target as the reference") -> Evaluation:
    """The paper's protocol: each image enhanced with its own **target** as the reference. GT-informed (the
    network is given the answer's brightness), like the GT-mean columns: report it beside them, never alone.
    Scored and returned like :func:`lle_lib.evaluate.evaluate`."""
    network.eval()
    device = _device(network)
    rows = []
    for index in range(len(dataset)):
        item = dataset[index]
        low, high = _batch(item, "low", device), _batch(item, "high", device)
        start = time.perf_counter()
        output = to_image(network(low, reference=high).clamp(0, 1)[0].float().cpu())
        seconds = time.perf_counter() - start
        rows.append({"image": str(item["name"]),
                     **score(output, to_image(low[0].cpu()), to_image(high[0].cpu())), "seconds": seconds})
    return Evaluation(name=name, source=getattr(dataset, "source", type(dataset).__name__),
                      per_image=pd.DataFrame(rows))


# ----------------------------------------------------------------------------------------------------------------
# Export, shipped recipes, registration
# ----------------------------------------------------------------------------------------------------------------


#: The per-epoch values a weight card keeps, so that the chapter can plot the shipped run.
CURVES = ("train/loss", "train/l1", "train/triplet", "train/content", "train/colour", "val/psnr", "val/ssim")


def export_weights(run_dir: str | Path, recipe: ReferenceGuidedRecipe, weights_path: str | Path,
                   run: RunContext | None = None, *, dtype: torch.dtype | None = None) -> dict:
    """Ship the best validation epoch (``best.pt``) as a plain state_dict with a JSON card: first the fixed
    reference is chosen on the validation split (:func:`choose_reference`) and stored in the weights; then the
    test split is scored twice, with that fixed reference (plain and GT-mean) and with each image's target as
    its reference (``_target_reference``, GT-informed), for the report only."""
    run = run or RunContext()
    network = selected_network(run_dir, recipe.build, dtype=dtype)
    val = first_items(load_paired("val", run.data_dir, seed=run.seed), recipe.val_items)
    references = choose_reference(network, val, progress=False)
    test = load_paired("test", run.data_dir, seed=run.seed)
    fixed = evaluate(lambda image: enhance_with_reference(network, image), test, name="reference_guided",
                     progress=False).summary
    target = evaluate_target_reference(network, test).summary
    card = {
        "method": "Reference-guided multi-level enhancement",
        "paper": "Wang, Jiang, Liu, Li, Men, Wang, arXiv 2101.00813 (2021); Pattern Recognition 2022",
        **single_run_card(run_dir, recipe, run),
        "default_reference": str(references.loc[0, "reference"]),
        "default_reference_selection": (f"the target, among {len(references)} of the validation split, whose "
                                        f"luminance gives the best mean PSNR on the other validation images"),
        "default_reference_validation_psnr": round(float(references.loc[0, "psnr"]), 3),
        "reference_candidates": [{"reference": row.reference, "psnr": round(float(row.psnr), 3),
                                  "ssim": round(float(row.ssim), 4), "brightness": round(float(row.brightness), 4)}
                                 for row in references.itertuples()],
        "test_data": test.source,
        "test_protocol": PROTOCOL + "; fixed reference (the default), and *_target_reference: each image's own "
                                    "target as its reference (GT-informed)",
        **card_scores(fixed),
        **card_scores(target, "_target_reference"),
        "history": training_curves(run_dir, CURVES),
        "license": "MIT, like the book's code (trained here)",
    }
    return save_weights(network, weights_path, card, dtype=dtype)


#: The recipe of the weights that ship with the book (``lle_lib/pretrained/reference_guided.pt``): the authors'
#: network at half width (16 to 128 channels, a 256-dimensional code with 48 luminance dimensions, the authors'
#: proportions), 128x128 crops in batches of 8 instead of whole images, a 32-pixel blended patch (the authors'
#: 100 of 400, scaled), and a higher learning rate that decays linearly over the last 40 of 120 epochs, to fit
#: two CPU cores; stored as float16.
SHIPPED = {
    "reference_guided": ReferenceGuidedRecipe(width=16, code_size=256, luminance_size=48, epochs=120, batch_size=8,
                                              crop=128, learning_rate=5e-4, blend_patch=32, val_every=5,
                                              decay_epochs=40),
}


def _train(recipe: ReferenceGuidedRecipe, run: RunContext, out_dir: Path):
    return make_trainer(recipe, run, out_dir=out_dir).fit()


def _enhance(network: ReferenceGuidedNet, image: np.ndarray, reference: Path | np.ndarray | None = None,
             strength: float = 1.0) -> np.ndarray:
    """The registry's ``apply``: the reference read from its file (any format :func:`lle_lib.read_image` reads),
    or given as an image already read."""
    if reference is not None and not isinstance(reference, np.ndarray):
        reference = read_image(reference)
    return enhance_with_reference(network, image, reference, strength)


def _prepare_tiles(network: ReferenceGuidedNet, image: np.ndarray, reference: Path | np.ndarray | None = None,
                   strength: float = 1.0) -> Prepared:
    """The code is global: the photo's (and the reference's) averaged over every tile first (:func:`code_in_tiles`),
    then mixed as :func:`enhance_with_reference` mixes it; each tile is decoded with it."""
    luminance_own, content = network.split(code_in_tiles(network, image, TILING.tiles(*image.shape[:2])))
    if reference is None:
        target = network.default_luminance.detach().float().cpu()[None]
    else:
        if not isinstance(reference, np.ndarray):
            reference = read_image(reference)
        target = network.split(code_in_tiles(network, reference, TILING.tiles(*reference.shape[:2])))[0]
    if strength != 1.0:
        target = luminance_own + strength * (target - luminance_own)
    return Prepared(image, {"luminance": target, "content": content})


def _decode_tile(network: ReferenceGuidedNet, tile: np.ndarray, box, luminance, content, **controls) -> np.ndarray:
    return decode_tile(network, tile, luminance, content)


#: Big photos: the code from every tile, then each tile decoded with it (tiles on the encoder's 16-pixel grid).
TILING = Tiling(halo=TILE_HALO, multiple=2 ** DOWNSAMPLINGS, prepare=_prepare_tiles, run=_decode_tile)


register(LearnedMethod(
    name="reference_guided", title="Reference-guided", paper="wang2022shed", family="reference-guided",
    module=__name__,
    summary="swaps the luminance part of a latent code: the dark photo's content, a reference photo's brightness",
    apply=_enhance,
    controls=(Control("strength", float, 1.0, 0.0, 2.0, "0: the input's own brightness, 1: the reference's, "
                                                        "above 1: beyond it"),
              Control("reference", Path, None, help="an image whose brightness the output takes (any scene); "
                                                    "by default the reference chosen on validation",
                      optional=True)),
    recipe=ReferenceGuidedRecipe, presets=PRESETS, shipped=SHIPPED, weights="reference_guided",
    build=ReferenceGuidedRecipe.build, train=_train, export=export_weights,
    phase_trainers=single_phase(make_trainer),
    protocols={"_target_reference": evaluate_target_reference}, tiling=TILING))
