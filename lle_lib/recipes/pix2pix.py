"""Training pix2pix (a U-Net generator against a PatchGAN discriminator) through the book's shared trainer.

Every training step alternates one discriminator update and one generator update on the same batch
(:class:`Pix2PixTask`); the trainer stops with :class:`~lle_lib.train.NonFiniteLossError` before a NaN or infinite
loss reaches the weights, so the last checkpoint written stays good. Validation scores the generator's PSNR on the
paired validation split, which selects the epoch; the test split is only scored at the end. Registered as the
method ``pix2pix`` (:mod:`lle_lib.methods`). Command line::

    lle train pix2pix --preset quick --out runs/pix2pix
    lle train pix2pix --preset pix2pix --out runs/pix2pix --export pix2pix.pt   # the shipped recipe
    torchrun --nproc_per_node=4 -m lle_lib train pix2pix --preset full --out runs/pix2pix
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .. import metrics
from ..config import RunContext
from ..data import load_paired
from ..evaluate import PROTOCOL, evaluate
from ..losses.pix2pix import L1_WEIGHT, discriminator_loss, generator_loss, reconstruction_l1_loss
from ..models.pix2pix import PatchDiscriminator, UNetGenerator, enhance_pix2pix
from ..train import Task, Trainer, WeightAverage, linear_decay, recalibrate_batchnorm
from ..methods import LearnedMethod, register
from ..tiling import Tiling
from ..weights import save_weights
from . import card_scores, selected_network, single_phase, single_run_card, training_and_validation, training_curves


@dataclass(frozen=True)
class Pix2PixRecipe:
    """Everything that defines a pix2pix run besides the data and the seed.

    ``full`` is the book's reference design: the paper's networks (U-Net of depth 8 and width 64, 70x70 PatchGAN),
    256x256 crops, ``lambda = 115``, Adam with learning rates 1e-4 for the generator and 5e-5 for the discriminator
    and betas (0.5, 0.999), the discriminator's loss halved, 150 epochs. ``adversarial_weight = 0`` trains the same
    generator by L1 alone (the ablation baseline; the discriminator then still trains but has no effect).

    Three optional stabilisers: ``decay_epochs`` lets both learning rates fall linearly towards zero over the last
    epochs, as the authors' code does (:func:`~lle_lib.train.linear_decay`); ``precise_batchnorm`` re-estimates
    the generator's BatchNorm statistics on one pass of training crops before each validation
    (:func:`~lle_lib.train.recalibrate_batchnorm`), so the checkpoints, the validation that selects them and the
    shipped weights all use statistics of the weights as they are; ``ema_decay`` keeps an exponential moving
    average of the generator's weights (:class:`~lle_lib.train.WeightAverage`), which is then what validation scores,
    what selects the epoch and what is exported (the current weights are still scored, as ``val/psnr_raw``).

    ``warmup_epochs`` first trains the generator by L1 alone for that many epochs while the discriminator waits (it
    is neither run nor stepped, so these epochs take about a third of a GAN epoch's time); then both train as above.
    SRGAN (Ledig et al. 2017) and ESRGAN (Wang et al. 2018) start their GANs from such a pretrained generator.
    Warm-up epochs are validated but never selected: the shipped generator has always been through the GAN phase.
    """

    generator_width: int = 64
    generator_depth: int = 8
    discriminator_width: int = 64
    discriminator_layers: int = 3
    generator_upsampling: str = "transposed"
    epochs: int = 150
    batch_size: int = 1
    crop: int = 256
    generator_lr: float = 1e-4
    discriminator_lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)
    l1_weight: float = L1_WEIGHT
    adversarial_weight: float = 1.0
    decay_epochs: int = 0
    precise_batchnorm: bool = False
    ema_decay: float | None = None
    warmup_epochs: int = 0
    val_every: int = 1
    sample_every: int | None = None
    train_items: int | None = None
    val_items: int | None = None

    def __post_init__(self):
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be from 0 to epochs - 1 = {self.epochs - 1} (the GAN needs at "
                             f"least one epoch), not {self.warmup_epochs!r}")

    def build_generator(self) -> UNetGenerator:
        return UNetGenerator(self.generator_width, self.generator_depth, upsampling=self.generator_upsampling)

    def build_discriminator(self) -> PatchDiscriminator:
        return PatchDiscriminator(self.discriminator_width, self.discriminator_layers)

    def weight_average(self) -> WeightAverage:
        """The generator's weight average, module ``generator_ema`` (none when ``ema_decay`` is ``None``)."""
        return WeightAverage("generator", self.ema_decay)

    @property
    def evaluated(self) -> str:
        """The module that validation scores and :func:`export_weights` ships: the weight average if there is one."""
        return self.weight_average().evaluated


PRESETS = {
    # under a minute on two CPU cores: a slim U-Net of depth 6 (64x64 crops need 2^6), the paper's PatchGAN shape,
    # 144 steps at a higher learning rate (D still at half of G's) that decays over the last 3 epochs, and the
    # shipped recipe's BatchNorm re-estimation before each validation
    "quick": Pix2PixRecipe(generator_width=8, generator_depth=6, discriminator_width=8, epochs=6, batch_size=4,
                           crop=64, generator_lr=5e-4, discriminator_lr=2.5e-4, decay_epochs=3,
                           precise_batchnorm=True, sample_every=1, train_items=96, val_items=4),
    "full": Pix2PixRecipe(),
}


class Pix2PixTask(Task):
    """One discriminator step, then one generator step, per batch.

    Discriminator: :func:`~lle_lib.losses.pix2pix.discriminator_loss` on ``D(x, y)`` and ``D(x, G(x).detach())``.
    Generator: ``adversarial_weight * L_GAN + lambda * L_1`` (:func:`~lle_lib.losses.pix2pix.generator_loss`) through
    the just-updated discriminator; during the first ``recipe.warmup_epochs`` only ``lambda * L_1``, and no
    discriminator step. The generator step also leaves gradients in the discriminator; they are cleared before its
    next update, and its weights change only in its own step. With ``recipe.ema_decay`` a third module,
    ``generator_ema``, follows the generator's weights as a moving average after each generator step
    (:class:`~lle_lib.train.WeightAverage`), and validation scores both.
    """

    def __init__(self, recipe: Pix2PixRecipe):
        self.recipe = recipe
        self.average = recipe.weight_average()

    def modules(self):
        generator = self.recipe.build_generator()
        return {"generator": generator, "discriminator": self.recipe.build_discriminator(),
                **self.average.modules(generator)}

    def configure_optimizers(self, modules):
        r = self.recipe
        return {"discriminator": torch.optim.Adam(modules["discriminator"].parameters(), lr=r.discriminator_lr,
                                                  betas=r.betas),
                "generator": torch.optim.Adam(modules["generator"].parameters(), lr=r.generator_lr, betas=r.betas)}

    def configure_schedulers(self, optimizers):
        if not self.recipe.decay_epochs:
            return {}
        factor = linear_decay(self.recipe.epochs, self.recipe.decay_epochs)
        return {name: torch.optim.lr_scheduler.LambdaLR(optimizer, factor) for name, optimizer in optimizers.items()}

    def training_step(self, batch, trainer):
        low, high = batch["low"], batch["high"]
        generator, discriminator = trainer.modules["generator"], trainer.modules["discriminator"]
        fake = generator(low)
        if self.recipe.warmup_epochs and trainer.epoch <= self.recipe.warmup_epochs:
            l1 = reconstruction_l1_loss(fake, high)
            trainer.optimize(self.recipe.l1_weight * l1, "generator")
            self.average.follow(trainer)
            return {"l1": l1.detach()}
        d_loss = discriminator_loss(discriminator(low, high), discriminator(low, fake.detach()))
        trainer.optimize(d_loss, "discriminator")
        g_loss, parts = generator_loss(discriminator(low, fake), fake, high, self.recipe.l1_weight,
                                       self.recipe.adversarial_weight)
        trainer.optimize(g_loss, "generator")
        self.average.follow(trainer)
        return {"d_loss": d_loss, "g_loss": g_loss, "g_adversarial": parts["adversarial"], "l1": parts["l1"]}

    def before_validation(self, trainer):
        if self.recipe.precise_batchnorm:
            for name in self.average.scored().values():
                recalibrate_batchnorm(trainer.unwrap(name),
                                      (batch["low"].to(trainer.device) for batch in trainer.train_loader))

    def validation_step(self, batch, trainer):
        scores = {}
        for suffix, name in self.average.scored().items():
            enhanced = trainer.modules[name](batch["low"]).clamp(0, 1)
            scores[f"psnr{suffix}"] = metrics.psnr(enhanced, batch["high"])
            scores[f"ssim{suffix}"] = metrics.ssim(enhanced, batch["high"])
        return scores

    def samples(self, batch, trainer):
        generator = trainer.modules[self.recipe.evaluated]
        return {"low": batch["low"], "generated": generator(batch["low"]).clamp(0, 1), "high": batch["high"]}


def make_trainer(recipe: Pix2PixRecipe, run: RunContext | None = None, *, out_dir: str | Path | None = None
                 ) -> Trainer:
    """A :class:`Trainer` for ``recipe`` on the book's data: LOL's training split (random ``crop`` crops with
    flips) if the run's data folder holds LOL, else synthetic pairs; validation on the matching split, selecting
    by PSNR."""
    run = run or RunContext()
    train, val = training_and_validation(run, size=recipe.crop, train_items=recipe.train_items,
                                         val_items=recipe.val_items)
    settings = run.train_config(epochs=recipe.epochs, batch_size=recipe.batch_size, out_dir=out_dir,
                                monitor="val/psnr", monitor_mode="max", val_every=recipe.val_every,
                                sample_every=recipe.sample_every, select_from=recipe.warmup_epochs + 1)
    return Trainer(Pix2PixTask(recipe), train, settings, val_dataset=val)


#: The per-epoch values a weight card keeps, so that the book can plot the shipped run's training dynamics.
CURVES = ("train/d_loss", "train/g_loss", "train/g_adversarial", "train/l1", "val/psnr", "val/ssim", "val/psnr_raw",
          "val/ssim_raw")


def export_weights(run_dir: str | Path, recipe: Pix2PixRecipe, weights_path: str | Path,
                   run: RunContext | None = None, *, dtype: torch.dtype | None = None) -> dict:
    """Ship the generator of the best validation epoch (``best.pt``; its weight average when the recipe keeps one)
    as a plain state_dict with a JSON card, after scoring it on the test split (reported, never used for
    selection). The discriminator is not shipped. ``dtype=torch.float16`` stores half the bytes
    (:func:`lle_lib.weights.save_weights`); the card then scores the rounded weights."""
    generator = selected_network(run_dir, recipe.build_generator, recipe.evaluated, dtype=dtype)
    run = run or RunContext()
    test = load_paired("test", run.data_dir, seed=run.seed)
    report = evaluate(lambda image: enhance_pix2pix(generator, image), test, name="pix2pix", progress=False).summary
    card = {
        "method": "pix2pix (generator only)",
        "paper": "Isola, Zhu, Zhou, Efros, CVPR 2017",
        **single_run_card(run_dir, recipe, run),
        "test_data": test.source,
        "test_protocol": PROTOCOL,
        **card_scores(report),
        "history": training_curves(run_dir, CURVES),
        "license": "MIT, like the book's code (trained here)",
    }
    return save_weights(generator, weights_path, card, dtype=dtype)


#: The recipes of the generators that ship with the book (``lle_lib/pretrained/<name>.pt``).
#: Sized for two CPU cores (54 minutes): width 16 and depth 7 (2.6 M parameters, 10 MB), a discriminator of width 32
#: (still the 70x70 PatchGAN), the reference design's 256x256 crops in batches of 2, and the learning rates of the
#: pix2pix code (2e-4 for G; D at half of it, as in the reference design). The generator first learns by L1 alone
#: for 50 epochs (the discriminator idle), then the full objective (lambda = 115, halved D loss) runs for 40 epochs,
#: the learning rates decaying linearly over the last 30; only those 40 epochs can be selected. BatchNorm statistics
#: re-estimated before each validation (without it, validation PSNR jumped between 7 and 16 dB from one epoch to the
#: next in a first run), and the exported weights are a moving average of the generator's (EMA 0.998, about 3
#: epochs of 180 steps). Chapter 5 compares this run with the five before it.
SHIPPED = {
    "pix2pix": Pix2PixRecipe(generator_width=16, generator_depth=7, discriminator_width=32, epochs=90, batch_size=2,
                             crop=256, generator_lr=2e-4, discriminator_lr=1e-4, decay_epochs=30,
                             precise_batchnorm=True, ema_decay=0.998, warmup_epochs=50, val_every=5,
                             sample_every=10),
}


def _train(recipe: Pix2PixRecipe, run: RunContext, out_dir: Path):
    return make_trainer(recipe, run, out_dir=out_dir).fit()


register(LearnedMethod(
    name="pix2pix", title="pix2pix", paper="isola2017image", family="paired", module=__name__,
    summary="a U-Net generator trained with L1 and a PatchGAN discriminator on low/well-lit pairs",
    apply=enhance_pix2pix, recipe=Pix2PixRecipe, presets=PRESETS, shipped=SHIPPED, weights="pix2pix",
    build=Pix2PixRecipe.build_generator, train=_train, export=export_weights,
    phase_trainers=single_phase(make_trainer),
    # the shipped U-Net halves the image 7 times (a 128-pixel grid); a 256-pixel halo makes tiles agree with the
    # whole-image pass to float rounding (measured: 157 dB on a 1200x1800 photo; 128 pixels gave 42 dB)
    tiling=Tiling(halo=256, multiple=128)))
