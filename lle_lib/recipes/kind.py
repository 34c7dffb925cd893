"""Training KinD in its three stages through the book's shared trainer.

KinD's networks are trained one after the other, each stage freezing the ones before it (as in the authors' code):

1. ``decomposition``: :class:`~lle_lib.models.kind.DecompositionNet` on low/high pairs
   (:func:`~lle_lib.losses.kind.decomposition_loss`);
2. ``adjustment``: :class:`~lle_lib.models.kind.IlluminationAdjustNet` maps one decomposed illumination of a pair to
   the other, in both directions, with the ratio of their means (:func:`~lle_lib.losses.kind.adjustment_loss`);
3. ``restoration``: :class:`~lle_lib.models.kind.RestorationNet` turns the low image's reflectance into the high
   image's (raised to the power 1.2, as the authors do; :func:`~lle_lib.losses.kind.restoration_loss`).

Every stage validates on the paired validation split; the test split is only scored at the end. Command line::

    python -m lle_lib.recipes.kind --preset quick --out runs/kind       # all three stages, resumable
    torchrun --nproc_per_node=4 -m lle_lib.recipes.kind --preset full --out runs/kind
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from .. import config, metrics
from ..losses.kind import DECOMPOSITION_WEIGHTS, adjustment_loss, decomposition_loss, restoration_loss
from ..models.kind import DecompositionNet, IlluminationAdjustNet, KinD, RestorationNet, illumination_ratio
from ..train import Task, TrainConfig, Trainer
from . import training_and_validation

STAGES = ("decomposition", "adjustment", "restoration")

#: The authors raise the well-lit reflectance to this power before using it as the restoration target ("improves
#: contrast", a comment in their training script; not in the paper).
RESTORATION_TARGET_POWER = 1.2


@dataclass(frozen=True)
class StageSettings:
    """How one stage trains: epochs, batch size, square patch size, learning rate (Adam), validation period."""

    epochs: int
    batch_size: int
    patch: int
    learning_rate: float = 1e-4
    val_every: int = 1              # validate (and pick the best epoch) every this many epochs, and at the end


@dataclass(frozen=True)
class KinDRecipe:
    """Everything that defines a KinD training run besides the data and the seed.

    ``full`` follows the authors' code: widths 32, decomposition and adjustment on 48x48 patches in batches of 10
    for 2000 epochs at learning rate 1e-4, restoration on 384x384 patches in batches of 4 for 1000 epochs (the
    authors lower the rate to 5e-5 after epoch 800; here it stays constant). ``quick`` is minutes on a CPU.
    """

    decomposition_width: int = 32
    restoration_width: int = 32
    adjustment_width: int = 32
    decomposition: StageSettings = StageSettings(epochs=2000, batch_size=10, patch=48, val_every=50)
    adjustment: StageSettings = StageSettings(epochs=2000, batch_size=10, patch=48, val_every=50)
    restoration: StageSettings = StageSettings(epochs=1000, batch_size=4, patch=384, val_every=25)
    train_items: int | None = None
    val_items: int | None = None
    # Weight of the reflectance-similarity term in the decomposition loss. The authors use 0.01 (over ~96k steps).
    # Pilots on LOL at CPU budgets (15-35 epochs of 36 steps) found 0.01 and 0.1 stuck in the trivial split
    # (I flat near 0.9 for both images, R = the image itself), while 1.0 gave the Retinex split (validation
    # I_low 0.07, I_high 0.61, R_low close to R_high).
    reflectance_weight: float = 0.01

    def build(self) -> KinD:
        return KinD(self.decomposition_width, self.restoration_width, self.adjustment_width)


PRESETS = {
    "quick": KinDRecipe(decomposition_width=8, restoration_width=4, adjustment_width=8,
                        decomposition=StageSettings(epochs=2, batch_size=8, patch=48, learning_rate=1e-3),
                        adjustment=StageSettings(epochs=2, batch_size=8, patch=48, learning_rate=1e-3),
                        restoration=StageSettings(epochs=2, batch_size=4, patch=64, learning_rate=1e-3),
                        train_items=48, val_items=4, reflectance_weight=1.0),
    "full": KinDRecipe(),
}


def _frozen(module: torch.nn.Module) -> torch.nn.Module:
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.eval()


class DecompositionTask(Task):
    """Stage 1: decompose both images of each pair; validation reports the reconstruction error of the low image."""

    def __init__(self, recipe: KinDRecipe):
        self.recipe = recipe

    def modules(self):
        return {"decomposition": DecompositionNet(self.recipe.decomposition_width)}

    def configure_optimizers(self, modules):
        return {"decomposition": torch.optim.Adam(modules["decomposition"].parameters(),
                                                  lr=self.recipe.decomposition.learning_rate)}

    def training_step(self, batch, trainer):
        net = trainer.modules["decomposition"]
        weights = {**DECOMPOSITION_WEIGHTS, "reflectance": self.recipe.reflectance_weight}
        loss, parts = decomposition_loss(batch["low"], batch["high"], net(batch["low"]), net(batch["high"]), weights)
        trainer.optimize(loss, "decomposition")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        reflectance, illumination = trainer.modules["decomposition"](batch["low"])
        error = (reflectance * illumination - batch["low"]).abs().mean(dim=(1, 2, 3))
        return {"reconstruction": error}


def adjustment_pairs(illumination_low: torch.Tensor, illumination_high: torch.Tensor, eps: float = 1e-4):
    """The adjustment net's training examples, as in the authors' code: per image ``r = mean(I_low / (I_high + eps))``;
    with probability 1/2 the input is ``I_low`` with ratio ``1/r`` and the target ``I_high`` (brighten), otherwise the
    input is ``I_high`` with ratio ``r`` and the target ``I_low`` (darken). Returns ``(inputs, ratios, targets)``."""
    r = illumination_ratio(illumination_high, illumination_low, eps)
    brighten = torch.rand(r.shape, device=r.device) < 0.5
    choose = brighten.reshape(-1, 1, 1, 1)
    inputs = torch.where(choose, illumination_low, illumination_high)
    targets = torch.where(choose, illumination_high, illumination_low)
    ratios = torch.where(brighten, 1 / r + eps, r)
    return inputs, ratios, targets


class AdjustmentTask(Task):
    """Stage 2: learn to move one illumination of a pair to the other, given their ratio (frozen decomposition)."""

    def __init__(self, recipe: KinDRecipe, decomposition: DecompositionNet):
        self.recipe, self.decomposition = recipe, decomposition

    def modules(self):
        return {"decomposition": _frozen(self.decomposition),
                "adjustment": IlluminationAdjustNet(self.recipe.adjustment_width)}

    def configure_optimizers(self, modules):
        return {"adjustment": torch.optim.Adam(modules["adjustment"].parameters(),
                                               lr=self.recipe.adjustment.learning_rate)}

    def _illuminations(self, batch, trainer):
        with torch.no_grad():
            decompose = trainer.modules["decomposition"]
            return decompose(batch["low"]).illumination, decompose(batch["high"]).illumination

    def training_step(self, batch, trainer):
        inputs, ratios, targets = adjustment_pairs(*self._illuminations(batch, trainer))
        loss, parts = adjustment_loss(trainer.modules["adjustment"](inputs, ratios), targets)
        trainer.optimize(loss, "adjustment")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        low_light, high_light = self._illuminations(batch, trainer)
        adjusted = trainer.modules["adjustment"](low_light, illumination_ratio(low_light, high_light))
        return {"illumination_mse": ((adjusted - high_light) ** 2).mean(dim=(1, 2, 3))}


class RestorationTask(Task):
    """Stage 3: restore the low image's reflectance towards the well-lit one's (frozen decomposition); validation
    scores the whole pipeline's PSNR with the ratio taken from the target (the authors' protocol, fine on the
    validation split, where it only ranks epochs)."""

    def __init__(self, recipe: KinDRecipe, decomposition: DecompositionNet, adjustment: IlluminationAdjustNet):
        self.recipe, self.decomposition, self.adjustment = recipe, decomposition, adjustment

    def modules(self):
        return {"decomposition": _frozen(self.decomposition), "adjustment": _frozen(self.adjustment),
                "restoration": RestorationNet(self.recipe.restoration_width)}

    def configure_optimizers(self, modules):
        return {"restoration": torch.optim.Adam(modules["restoration"].parameters(),
                                                lr=self.recipe.restoration.learning_rate)}

    def training_step(self, batch, trainer):
        with torch.no_grad():
            reflectance, illumination = trainer.modules["decomposition"](batch["low"])
            target = trainer.modules["decomposition"](batch["high"]).reflectance ** RESTORATION_TARGET_POWER
        loss, parts = restoration_loss(trainer.modules["restoration"](reflectance, illumination), target)
        trainer.optimize(loss, "restoration")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        decompose = trainer.modules["decomposition"]
        reflectance, illumination = decompose(batch["low"])
        ratio = illumination_ratio(illumination, decompose(batch["high"]).illumination)
        enhanced = trainer.modules["restoration"](reflectance, illumination) * trainer.modules["adjustment"](
            illumination, ratio)
        return {"psnr": metrics.psnr(enhanced.clamp(0, 1), batch["high"]),
                "ssim": metrics.ssim(enhanced.clamp(0, 1), batch["high"])}


MONITORS = {"decomposition": ("val/reconstruction", "min"), "adjustment": ("val/illumination_mse", "min"),
            "restoration": ("val/psnr", "max")}


def make_stage_trainer(stage: str, recipe: KinDRecipe, *, previous: dict[str, torch.nn.Module] | None = None,
                       data_dir=None, seed: int = 0, device: str = "auto", out_dir: str | Path | None = None,
                       progress: bool = True) -> Trainer:
    """A :class:`Trainer` for one stage. ``previous`` holds the trained networks of the earlier stages
    (``{"decomposition": ...}`` for the adjustment, plus ``"adjustment"`` for the restoration)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    previous = previous or {}
    needed = STAGES[:STAGES.index(stage)]
    missing = [name for name in needed if name not in previous]
    if missing:
        raise ValueError(f"the {stage} stage needs the trained {', '.join(missing)} network(s) in `previous`")
    task = {"decomposition": lambda: DecompositionTask(recipe),
            "adjustment": lambda: AdjustmentTask(recipe, previous["decomposition"]),
            "restoration": lambda: RestorationTask(recipe, previous["decomposition"], previous["adjustment"])}[stage]()
    settings = getattr(recipe, stage)
    train, val = training_and_validation(data_dir, seed=seed, size=settings.patch, train_items=recipe.train_items,
                                         val_items=recipe.val_items)
    monitor, mode = MONITORS[stage]
    config_ = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, seed=seed, device=device,
                          out_dir=out_dir, monitor=monitor, monitor_mode=mode, progress=progress,
                          val_every=settings.val_every)
    return Trainer(task, train, config_, val_dataset=val)


def _best_module(trainer: Trainer, name: str) -> torch.nn.Module:
    """The stage's network at its best validation epoch (from ``best.pt``), or as trained when nothing was saved."""
    module = trainer.unwrap(name)
    if trainer.out_dir is not None and (trainer.out_dir / "best.pt").is_file():
        checkpoint = torch.load(trainer.out_dir / "best.pt", map_location=trainer.device, weights_only=True)
        module.load_state_dict(checkpoint["modules"][name])
    return module


def train_kind(recipe: KinDRecipe, *, data_dir=None, seed: int = 0, device: str = "auto",
               out_dir: str | Path | None = None, progress: bool = True) -> tuple[KinD, dict[str, list[dict]]]:
    """Train the three stages in order; returns the assembled :class:`KinD` (each net at its best validation
    epoch) and each stage's history. With ``out_dir``, stage ``s`` keeps its checkpoints in ``out_dir/s`` and an
    interrupted run resumes where it stopped."""
    trained, histories = {}, {}
    for stage in STAGES:
        stage_dir = Path(out_dir) / stage if out_dir is not None else None
        trainer = make_stage_trainer(stage, recipe, previous=trained, data_dir=data_dir, seed=seed, device=device,
                                     out_dir=stage_dir, progress=progress)
        histories[stage] = trainer.fit()
        trained[stage] = _best_module(trainer, stage)
    model = recipe.build()
    model.decomposition.load_state_dict(trained["decomposition"].state_dict())
    model.adjustment.load_state_dict(trained["adjustment"].state_dict())
    model.restoration.load_state_dict(trained["restoration"].state_dict())
    return model.eval(), histories


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=tuple(PRESETS), default="quick")
    parser.add_argument("--restoration-width", type=int, help="override the restoration U-Net's width")
    parser.add_argument("--data-dir", help="folder that holds lol/ (default: $LLE_DATA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="run folder: one subfolder of checkpoints per stage")
    parser.add_argument("--save", help="save the assembled model's state_dict here")
    args = parser.parse_args(argv)
    recipe = PRESETS[args.preset]
    if args.restoration_width:
        recipe = replace(recipe, restoration_width=args.restoration_width)
    config.check_preset(args.preset)
    model, _ = train_kind(recipe, data_dir=args.data_dir, seed=args.seed, device=args.device, out_dir=args.out)
    print(f"recipe: {asdict(recipe)}")
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
