"""Training KinD in its three stages through the book's shared trainer.

KinD's networks are trained one after the other, each stage freezing the ones before it (as in the authors' code):

1. ``decomposition``: :class:`~lle_lib.models.kind.DecompositionNet` on low/high pairs
   (:func:`~lle_lib.losses.kind.decomposition_loss`);
2. ``adjustment``: :class:`~lle_lib.models.kind.IlluminationAdjustNet` maps one decomposed illumination of a pair to
   the other, in both directions, with the ratio of their means (:func:`~lle_lib.losses.kind.adjustment_loss`);
3. ``restoration``: :class:`~lle_lib.models.kind.RestorationNet` turns the low image's reflectance into the high
   image's (raised to the power 1.2, as the authors do; :func:`~lle_lib.losses.kind.restoration_loss`).

A recipe may add continued restoration phases (``restoration_continued``: the stage's best net trains on with new
settings, such as larger patches or a lower rate), as the shipped one does. Every stage validates on the paired
validation split; the test split is only scored at the end. The pilots the shipped recipe does not use (a loss on
the relit image, a weight average of the restoration net, a calibration of the adjustment net) are recorded in the
book's appendix "How the shipped weights were trained".
Registered as the method ``kind`` (:mod:`lle_lib.methods`), whose control ``light`` is the light level. Command line::

    lle train kind --preset quick --out runs/kind       # all three stages, resumable
    lle train kind --preset kind --out runs/kind --export kind.pt   # the shipped recipe
    torchrun --nproc_per_node=4 -m lle_lib train kind --preset full --out runs/kind
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from .. import metrics
from ..config import RunContext
from ..data import load_paired
from ..evaluate import PROTOCOL, Evaluation, evaluate, score
from ..images import to_image
from ..losses.kind import DECOMPOSITION_WEIGHTS, adjustment_loss, decomposition_loss, restoration_loss
from ..models.kind import (DecompositionNet, IlluminationAdjustNet, KinD, RestorationNet, enhance_kind,
                           illumination_ratio, relight)
from ..train import Task, Trainer
from ..methods import Control, LearnedMethod, register
from ..tiling import Tiling
from ..weights import round_weights, save_weights
from . import card_scores, first_items, hardware_description, training_and_validation, training_rules

STAGES = ("decomposition", "adjustment", "restoration")

#: The authors raise the well-lit reflectance to this power before using it as the restoration target ("improves
#: contrast", a comment in their training script; not in the paper).
RESTORATION_TARGET_POWER = 1.2


@dataclass(frozen=True)
class StageSettings:
    """How one stage trains: epochs, batch size, square patch size, learning rate (Adam) and validation period."""

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
    # The book's warm start (not the authors'): weight of losses.kind.illumination_prior_loss at epoch 1, fading
    # linearly to zero at the end of epoch ``prior_epochs``. Zero switches it off (the authors' objective).
    prior_weight: float = 0.0
    prior_epochs: int = 0
    # Weight of losses.kind.reflectance_prior_loss (R towards peak * S / max_c S), faded on the same schedule. Zero
    # switches it off. Pilots on LOL: with the illumination prior alone the reflectance learnt no colour in 20
    # epochs (R near 1 everywhere); with this term and the decomposition's learning rate at 3e-3 it did.
    reflectance_prior_weight: float = 0.0
    # The book's, not the authors': further restoration phases, in order. Each starts from the previous phase's best
    # net and trains on with its own settings (new optimiser; typically larger patches at a lower rate, standing in
    # for the authors' lower rate late in training), checkpoints in its own folder, and is picked again at its best
    # validation epoch. Empty: none.
    restoration_continued: tuple[StageSettings, ...] = ()

    def __post_init__(self):
        phases = self.restoration_continued       # one phase may be given alone; stored as a tuple
        if isinstance(phases, StageSettings):
            phases = (phases,)
        elif phases is None:
            phases = ()
        if not all(isinstance(phase, StageSettings) for phase in phases):
            raise TypeError("restoration_continued must hold StageSettings, one per continued restoration phase")
        object.__setattr__(self, "restoration_continued", tuple(phases))

    def prior_fade_at(self, epoch: int) -> float:
        """How much of the warm start is on during ``epoch`` (counted from 1): ``1 - (epoch - 1) / prior_epochs``,
        zero from epoch ``prior_epochs + 1`` on (and always zero when ``prior_epochs`` is 0)."""
        if self.prior_epochs <= 0:
            return 0.0
        return max(0.0, 1 - (epoch - 1) / self.prior_epochs)

    def prior_weight_at(self, epoch: int) -> float:
        """The illumination warm start's weight during ``epoch``: ``prior_weight * prior_fade_at(epoch)``."""
        return self.prior_weight * self.prior_fade_at(epoch)

    def reflectance_prior_weight_at(self, epoch: int) -> float:
        """The reflectance warm start's weight during ``epoch``: ``reflectance_prior_weight * prior_fade_at(epoch)``."""
        return self.reflectance_prior_weight * self.prior_fade_at(epoch)

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

#: The recipe of the weights that ship with the book (``lle_lib/pretrained/kind.pt``), sized for a 2-core CPU:
#: the authors' widths for the decomposition and adjustment nets, a half-width restoration U-Net (1.9 M parameters,
#: 7.8 MB), larger learning rates and far fewer epochs than the authors' ~100k steps per stage, and the max-channel
#: warm start (illumination towards max_c S, reflectance towards S / max_c S) fading over the first 15 decomposition
#: epochs (:func:`~lle_lib.losses.kind.illumination_prior_loss`, :func:`~lle_lib.losses.kind.reflectance_prior_loss`).
#: The restoration then trains on for a second phase on 128x128 patches at half the rate (``restoration_continued``).
SHIPPED = {
    "kind": KinDRecipe(restoration_width=16,
                       decomposition=StageSettings(epochs=30, batch_size=10, patch=48, learning_rate=3e-3, val_every=5),
                       adjustment=StageSettings(epochs=150, batch_size=10, patch=48, learning_rate=1e-3, val_every=30),
                       restoration=StageSettings(epochs=60, batch_size=4, patch=96, learning_rate=5e-4, val_every=5),
                       prior_weight=1.0, prior_epochs=15, reflectance_prior_weight=1.0,
                       restoration_continued=(StageSettings(epochs=60, batch_size=4, patch=128,
                                                            learning_rate=2.5e-4, val_every=5),)),
}


def describe(recipes: dict[str, KinDRecipe]) -> pd.DataFrame:
    """A readable table of KinD recipes, one column per recipe: the widths, each stage as
    "epochs x batch of patch-squared patches, learning rate", and the decomposition-loss settings."""
    def stage(settings: StageSettings) -> str:
        return f"{settings.epochs} ep x {settings.batch_size} of {settings.patch}\u00b2, lr {settings.learning_rate:g}"

    rows = {}
    for name, recipe in recipes.items():
        rows[name] = {
            "widths (decomposition, restoration, adjustment)":
                f"{recipe.decomposition_width}, {recipe.restoration_width}, {recipe.adjustment_width}",
            **{f"{s} stage": stage(getattr(recipe, s)) for s in STAGES},
            "restoration, continued": ("; then ".join(stage(s) for s in recipe.restoration_continued) or "none"),
            "training pairs": "all" if recipe.train_items is None else str(recipe.train_items),
            "reflectance-similarity weight": f"{recipe.reflectance_weight:g}",
            "warm start": _warm_start(recipe),
        }
    return pd.DataFrame(rows)


def _warm_start(recipe: KinDRecipe) -> str:
    terms = [f"{name} {weight:g}" for name, weight in (("illumination", recipe.prior_weight),
                                                      ("reflectance", recipe.reflectance_prior_weight)) if weight > 0]
    if recipe.prior_epochs <= 0 or not terms:
        return "none"
    return f"{', '.join(terms)}, faded over {recipe.prior_epochs} epochs"


def _frozen(module: torch.nn.Module) -> torch.nn.Module:
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.eval()


class DecompositionTask(Task):
    """Stage 1: decompose both images of each pair; validation reports the mean reconstruction error of the two
    (the well-lit image's carries the colour, which the dark one's barely shows)."""

    def __init__(self, recipe: KinDRecipe):
        self.recipe = recipe

    def modules(self):
        return {"decomposition": DecompositionNet(self.recipe.decomposition_width)}

    def configure_optimizers(self, modules):
        return {"decomposition": torch.optim.Adam(modules["decomposition"].parameters(),
                                                  lr=self.recipe.decomposition.learning_rate)}

    def training_step(self, batch, trainer):
        net = trainer.modules["decomposition"]
        weights = {**DECOMPOSITION_WEIGHTS, "reflectance": self.recipe.reflectance_weight,
                   "prior": self.recipe.prior_weight_at(trainer.epoch)}
        if self.recipe.reflectance_prior_weight > 0:
            weights["reflectance_prior"] = self.recipe.reflectance_prior_weight_at(trainer.epoch)
        loss, parts = decomposition_loss(batch["low"], batch["high"], net(batch["low"]), net(batch["high"]), weights)
        trainer.optimize(loss, "decomposition")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        errors = []
        for image in (batch["low"], batch["high"]):
            reflectance, illumination = trainer.modules["decomposition"](image)
            errors.append((reflectance * illumination - image).abs().mean(dim=(1, 2, 3)))
        return {"reconstruction": (errors[0] + errors[1]) / 2}


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

    def __init__(self, recipe: KinDRecipe, decomposition: DecompositionNet, adjustment: IlluminationAdjustNet,
                 start: RestorationNet | None = None):
        self.recipe, self.decomposition, self.adjustment, self.start = recipe, decomposition, adjustment, start

    def modules(self):
        restoration = RestorationNet(self.recipe.restoration_width)
        if self.start is not None:      # a continued phase starts from the previous phase's best net
            restoration.load_state_dict(self.start.state_dict())
        return {"decomposition": _frozen(self.decomposition), "adjustment": _frozen(self.adjustment),
                "restoration": restoration}

    def configure_optimizers(self, modules):
        return {"restoration": torch.optim.Adam(modules["restoration"].parameters(),
                                                lr=self.recipe.restoration.learning_rate)}

    def training_step(self, batch, trainer):
        with torch.no_grad():
            reflectance, illumination = trainer.modules["decomposition"](batch["low"])
            target = trainer.modules["decomposition"](batch["high"]).reflectance ** RESTORATION_TARGET_POWER
        restored = trainer.modules["restoration"](reflectance, illumination)
        loss, parts = restoration_loss(restored, target)
        trainer.optimize(loss, "restoration")
        return {"loss": loss, **parts}

    def validation_step(self, batch, trainer):
        decompose = trainer.modules["decomposition"]
        reflectance, illumination = decompose(batch["low"])
        ratio = illumination_ratio(illumination, decompose(batch["high"]).illumination)
        adjusted = trainer.modules["adjustment"](illumination, ratio)
        enhanced = (trainer.modules["restoration"](reflectance, illumination) * adjusted).clamp(0, 1)
        return {"psnr": metrics.psnr(enhanced, batch["high"]), "ssim": metrics.ssim(enhanced, batch["high"])}


MONITORS = {"decomposition": ("val/reconstruction", "min"), "adjustment": ("val/illumination_mse", "min"),
            "restoration": ("val/psnr", "max")}


def training_phases(recipe: KinDRecipe) -> list[tuple[str, str, KinDRecipe]]:
    """The runs of :func:`train_kind` in order, as ``(folder, stage, recipe)``: the three stages, then each phase of
    ``recipe.restoration_continued`` (folders ``restoration_continued``, ``restoration_continued_2``, ...; stage
    ``restoration``; the recipe with its restoration settings replaced by the phase's)."""
    phases = [(stage, stage, recipe) for stage in STAGES]
    for number, settings in enumerate(recipe.restoration_continued, start=1):
        folder = "restoration_continued" + (f"_{number}" if number > 1 else "")
        phases.append((folder, "restoration", replace(recipe, restoration=settings)))
    return phases


def make_stage_trainer(stage: str, recipe: KinDRecipe, *, previous: dict[str, torch.nn.Module] | None = None,
                       run: RunContext | None = None, out_dir: str | Path | None = None,
                       start: torch.nn.Module | None = None) -> Trainer:
    """A :class:`Trainer` for one stage. ``previous`` holds the trained networks of the earlier stages
    (``{"decomposition": ...}`` for the adjustment, plus ``"adjustment"`` for the restoration). ``start``, for the
    restoration only, is a trained restoration net to continue from (a continued phase)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    previous = previous or {}
    missing = [name for name in STAGES[:STAGES.index(stage)] if name not in previous]
    if missing:
        raise ValueError(f"the {stage} stage needs the trained {', '.join(missing)} network(s) in `previous`")
    if start is not None and stage != "restoration":
        raise ValueError("only the restoration stage can start from a trained net")
    settings = getattr(recipe, stage)
    task = {"decomposition": lambda: DecompositionTask(recipe),
            "adjustment": lambda: AdjustmentTask(recipe, previous["decomposition"]),
            "restoration": lambda: RestorationTask(recipe, previous["decomposition"], previous["adjustment"],
                                                   start)}[stage]()
    run = run or RunContext()
    train, val = training_and_validation(run, size=settings.patch, train_items=recipe.train_items,
                                         val_items=recipe.val_items)
    monitor, mode = MONITORS[stage]
    config_ = run.train_config(epochs=settings.epochs, batch_size=settings.batch_size, out_dir=out_dir,
                                monitor=monitor, monitor_mode=mode, val_every=settings.val_every)
    return Trainer(task, train, config_, val_dataset=val)


def _best_module(trainer: Trainer, name: str) -> torch.nn.Module:
    """Module ``name`` at the stage's best validation epoch (from ``best.pt``), or as trained when nothing was
    saved."""
    module = trainer.unwrap(name)
    if trainer.out_dir is not None and (trainer.out_dir / "best.pt").is_file():
        checkpoint = torch.load(trainer.out_dir / "best.pt", map_location=trainer.device, weights_only=True)
        module.load_state_dict(checkpoint["modules"][name])
    return module


def train_kind(recipe: KinDRecipe, run: RunContext | None = None, *,
               out_dir: str | Path | None = None) -> tuple[KinD, dict[str, list[dict]]]:
    """Train the three stages in order, then the continued restoration phases if any; returns the assembled :class:`KinD` (each net at its best validation epoch) and the history of each phase
    (:func:`training_phases`). With ``out_dir``, phase ``p`` keeps its checkpoints in ``out_dir/p`` and an
    interrupted run resumes where it stopped."""
    trained, histories = {}, {}
    for folder, stage, phase_recipe in training_phases(recipe):
        stage_dir = Path(out_dir) / folder if out_dir is not None else None
        trainer = make_stage_trainer(stage, phase_recipe, previous=trained, run=run, out_dir=stage_dir,
                                     start=trained.get(stage))
        histories[folder] = trainer.fit()
        trained[stage] = _best_module(trainer, stage)
    model = recipe.build()
    model.decomposition.load_state_dict(trained["decomposition"].state_dict())
    model.adjustment.load_state_dict(trained["adjustment"].state_dict())
    model.restoration.load_state_dict(trained["restoration"].state_dict())
    return model.eval(), histories


def load_run(run_dir: str | Path, recipe: KinDRecipe) -> KinD:
    """The :class:`KinD` of a finished :func:`train_kind` run: each stage's network from its last phase's
    ``run_dir/<phase>/best.pt`` (its best validation epoch), or ``last.pt`` when that phase never validated."""
    model = recipe.build()
    for name, stage, _ in training_phases(recipe):
        folder = Path(run_dir) / name
        path = folder / "best.pt" if (folder / "best.pt").is_file() else folder / "last.pt"
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        getattr(model, stage).load_state_dict(checkpoint["modules"][stage])
    return model.eval()


#: The light levels tried by :func:`choose_ratio`.
RATIO_GRID = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0)


def _model_device(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


def choose_ratio(model: KinD, pairs, ratios=RATIO_GRID) -> tuple[float, pd.DataFrame]:
    """Choose one fixed light level for KinD on paired data (a *validation* split, never the test set); returns
    ``(best_ratio, table)``, like :func:`lle_lib.classical.choose_gamma`.

    Each low image is decomposed and restored once (:func:`~lle_lib.models.kind.relight`); every ratio in
    ``ratios`` then only re-runs the small adjustment net. ``best_ratio`` has the highest mean plain PSNR; ``table`` (indexed by ``ratio``) holds the mean
    ``psnr``, ``psnr_gt_mean`` and ``brightness`` (mean output value) of each.
    """
    ratios = [float(r) for r in ratios]
    if not ratios or len(pairs) == 0:
        raise ValueError("choose_ratio needs at least one ratio and one pair")
    rows = []
    for index in range(len(pairs)):
        item = pairs[index]
        low, high = to_image(torch.as_tensor(item["low"])), to_image(torch.as_tensor(item["high"]))
        for ratio, output in zip(ratios, relight(model, low, ratios)):
            rows.append({"ratio": ratio, "psnr": metrics.psnr(output, high),
                         "psnr_gt_mean": metrics.psnr_gt_mean(output, high), "brightness": float(output.mean())})
    table = pd.DataFrame(rows).groupby("ratio").mean()
    return float(table["psnr"].idxmax()), table


def evaluate_target_ratio(model: KinD, dataset, *, name: str = "KinD, ratio from the target") -> Evaluation:
    """KinD under the authors' LOL protocol: each image's light level is ``mean(I_high / (I_low + 1e-4))``, read from
    the decomposition of its **target** (:meth:`KinD.ratio_from_target`). GT-informed, like the GT-mean columns:
    report it beside a fixed ratio, never alone. Scored and returned like :func:`lle_lib.evaluate.evaluate`."""
    device, dtype = _model_device(model)
    rows = []
    for index in range(len(dataset)):
        item = dataset[index]
        low_tensor = torch.as_tensor(item["low"])[None].to(device, dtype)
        high_tensor = torch.as_tensor(item["high"])[None].to(device, dtype)
        start = time.perf_counter()
        with torch.no_grad():
            ratio = model.ratio_from_target(low_tensor, high_tensor)
            output = to_image(model(low_tensor, ratio).enhanced.clamp(0, 1)[0].cpu())
        seconds = time.perf_counter() - start
        low, high = to_image(low_tensor[0].cpu()), to_image(high_tensor[0].cpu())
        rows.append({"image": str(item["name"]), **score(output, low, high), "seconds": seconds,
                     "ratio": float(ratio)})
    return Evaluation(name=name, source=getattr(dataset, "source", type(dataset).__name__),
                      per_image=pd.DataFrame(rows))


def export_weights(run_dir: str | Path, recipe: KinDRecipe, weights_path: str | Path,
                   run: RunContext | None = None, *, dtype: torch.dtype | None = None) -> dict:
    """Turn a finished run into shipped weights with a JSON card (:func:`weights_card`): each stage at its best
    validation epoch, the wall time and epochs summed from every phase's ``last.pt``. ``dtype=torch.float16``
    stores half the bytes (:func:`lle_lib.weights.save_weights`); the card then scores the rounded weights."""
    model = round_weights(load_run(run_dir, recipe), dtype)
    seconds = 0.0
    epochs = {}
    for folder, _, _ in training_phases(recipe):
        last = torch.load(Path(run_dir) / folder / "last.pt", map_location="cpu", weights_only=True)
        seconds += sum(record["seconds"] for record in last["history"])
        epochs[folder] = last["epoch"]
    card = weights_card(model, recipe, seconds=seconds, epochs=epochs, run=run)
    return save_weights(model, weights_path, card, dtype=dtype)


def weights_card(model: KinD, recipe: KinDRecipe, *, seconds: float, epochs: dict[str, int],
                 run: RunContext | None = None) -> dict:
    """The JSON card of trained KinD weights: the fixed light level chosen on the validation split
    (:func:`choose_ratio`); then, for the report only, the test split scored at that fixed level (plain and GT-mean)
    and under the authors' target-ratio protocol; the recipe, ``epochs`` per phase and the wall time ``seconds``."""
    run = run or RunContext()
    val = load_paired("val", run.data_dir, seed=run.seed)
    test = load_paired("test", run.data_dir, seed=run.seed)
    ratio, _ = choose_ratio(model, first_items(val, recipe.val_items))     # the items the stages validated on
    fixed = evaluate(lambda image: enhance_kind(model, image, ratio), test, name="KinD", progress=False).summary
    target = evaluate_target_ratio(model, test).summary
    return {
        "method": "KinD",
        "paper": "Zhang, Zhang, Guo, ACM MM 2019",
        "training_data": load_paired("train", run.data_dir, seed=run.seed).source,
        "selection": f"each stage at its best validation epoch on {val.source}; the fixed ratio by validation PSNR",
        "recipe": asdict(recipe),
        "seed": run.seed,
        "epochs_trained": epochs,
        "wall_time_seconds": round(seconds, 1),
        "hardware": hardware_description(),
        **training_rules(run),
        "fixed_ratio": ratio,
        "test_data": test.source,
        "test_protocol": PROTOCOL,
        **card_scores(fixed),
        **card_scores(target[["psnr", "ssim"]], suffix="_target_ratio"),
        "license": "MIT, like the book's code (trained here; not the authors' weights)",
    }


def _phase_trainers(recipe: KinDRecipe, run: RunContext):
    """Each phase of :func:`training_phases` with untrained earlier networks (enough to time a phase)."""
    untrained = recipe.build()
    previous = {"decomposition": untrained.decomposition, "adjustment": untrained.adjustment}
    for folder, stage, phase_recipe in training_phases(recipe):
        start = untrained.restoration if folder != stage else None
        yield folder, make_stage_trainer(stage, phase_recipe, previous=previous, run=run, start=start)


def _train(recipe: KinDRecipe, run: RunContext, out_dir: Path):
    return train_kind(recipe, run, out_dir=out_dir)


def _enhance(model: KinD, image, light: float):
    return enhance_kind(model, image, light)


register(LearnedMethod(
    name="kind", title="KinD", paper="zhang2019kindling", family="paired", module=__name__,
    summary="Retinex decomposition, reflectance restoration and an adjustable illumination, trained in three stages",
    apply=_enhance,
    controls=(Control("light", float, None, 0.5, 50.0, "about mean(output) / mean(input); by default the level "
                                                       "chosen on validation, the card's fixed_ratio"),),
    recipe=KinDRecipe, presets=PRESETS, shipped=SHIPPED, weights="kind", build=KinDRecipe.build,
    train=_train, export=export_weights, phase_trainers=_phase_trainers,
    card_defaults=lambda card: {"light": card.get("fixed_ratio")},
    protocols={"_target_ratio": evaluate_target_ratio},
    # every layer is local; the restoration U-Net pools 4 times (a 16-pixel grid) and sees about 128 pixels:
    # with that halo tiled and whole outputs are the same up to float rounding
    tiling=Tiling(halo=128, multiple=16)))
