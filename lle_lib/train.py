"""One trainer for every chapter: Zero-DCE, KinD's three stages, the pix2pix GAN and the supervised CNNs.

A chapter describes *what* to train in a small :class:`Task`: its networks, their optimizers, and one training
step that computes the losses and calls :meth:`Trainer.optimize` once for every optimizer it wants to step (a
plain model steps one; a GAN steps the discriminator, then the generator). The :class:`Trainer` does the rest:
batches and devices, mixed precision on CUDA, gradient clipping, validation, sample images, progress bars,
checkpoints with exact resume, and several GPUs with PyTorch's DistributedDataParallel. ::

    class Brighten(Task):
        def modules(self):
            return {"net": make_net()}

        def configure_optimizers(self, modules):
            return {"net": torch.optim.Adam(modules["net"].parameters(), lr=1e-3)}

        def training_step(self, batch, trainer):
            output = trainer.modules["net"](batch["low"])
            loss = F.l1_loss(output, batch["high"])
            trainer.optimize(loss, "net")
            return {"loss": loss}

    trainer = Trainer(Brighten(), train_set, TrainConfig(epochs=10, batch_size=8, out_dir="runs/brighten"))
    history = trainer.fit()          # a list of per-epoch dicts; pandas.DataFrame(history) tabulates it

The same script runs on several GPUs (or CPU processes) with ``torchrun --nproc_per_node=4 script.py``: every
process trains on its own share of each epoch's items, and DDP averages the gradients.

**Reproducibility.** At the start of epoch ``e`` the trainer seeds Python, NumPy and PyTorch from
``(seed, e, rank)`` and shuffles with a generator seeded from ``(seed, e)``. The data order, the random
augmentations and the dropout masks of an epoch therefore depend only on the seed and the epoch number, not on
what ran before, so a run resumed from the checkpoint of epoch ``k`` repeats the uninterrupted run exactly (on the
CPU; GPU kernels may add their own non-determinism).

**Data.** The recipes train on :class:`~lle_lib.data.PairedBatches`: each pair is decoded once and kept as uint8,
and whole batches are cut from it (on the GPU when training there), with each item's crop and flip drawn from
``(epoch_seed(seed, epoch), item)``; the same item gets the same window in every process and after a resume. Any
other dataset is read item by item through a DataLoader (``num_workers`` processes). ``benchmarks/train_throughput.py``
measures the difference.

**Devices.** ``device="auto"`` picks CUDA when there is one. Under ``torchrun`` each process takes one GPU; more
processes than GPUs stop with a clear message (:func:`process_device`), and ``device="cpu"`` runs any number of
processes with Gloo. Mixed precision is on by default on CUDA only: bfloat16 where the GPU has it, else float16
with a gradient scaler (:func:`autocast_dtype`).
"""
from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset, default_collate

from .config import resolve_device, seed_everything
from .images import to_image, write_image
from .progress import progress_bar
from .weights import write_atomically

#: How many items of the validation set (or, without one, of the training set) the sample images show.
SAMPLE_ITEMS = 8


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stops before the bad value reaches the weights or a checkpoint."""


#: PyTorch's warning when a schedule steps in an epoch where its optimizer did not (an idle optimizer, a
#: fast-forwarded schedule): the schedule follows the epoch count, so it is expected and silenced.
SCHEDULER_BEFORE_OPTIMIZER = r"Detected call of `lr_scheduler\.step\(\)` before"


@dataclass
class TrainConfig:
    """How to train, independently of what is trained.

    ``batch_size`` is per process: with ``torchrun --nproc_per_node=N`` every step sees ``N * batch_size`` items.
    ``seed`` fixes the initial weights and, with the epoch number, each epoch's order and augmentations;
    ``shuffle=False`` keeps the dataset's order. ``device="auto"`` picks CUDA, then MPS, then the CPU.
    ``grad_clip`` is the largest global gradient norm, applied per optimizer (``None``: no clipping). ``amp``
    (``"auto"``, ``True`` or ``False``) enables mixed precision, on CUDA only: bfloat16 autocast where the GPU
    supports it (no gradient scaler needed: bfloat16 has float32's range), else float16 with a gradient scaler.
    ``channels_last`` stores the modules and batches in NHWC memory order, which GPU convolutions often prefer;
    ``compile`` wraps the modules in ``torch.compile``. Both are off by default: keep them where
    ``benchmarks/train_throughput.py`` measures them faster. ``num_workers`` only serves datasets that are read
    item by item; a :class:`~lle_lib.data.PairedBatches` is cut into batches in the training process.
    ``log_every`` (in steps) is how often the progress bar shows the running means; ``val_every``,
    ``sample_every`` (``None``: never) and ``checkpoint_every`` count epochs, and the last epoch always does all
    three. ``out_dir=None`` writes no files at all; otherwise it receives ``last.pt``, ``best.pt`` (the epoch
    with the best ``monitor`` value, e.g. ``"val/psnr"``, by ``monitor_mode`` ``"max"`` or ``"min"``) and
    ``samples/``. ``select_from`` is the first epoch that may become ``best.pt``: earlier epochs are validated and
    logged but never selected (e.g. a GAN generator's warm-up on its reconstruction loss alone, which would
    otherwise be the model chosen). ``progress=False`` hides the progress bars.

    Two rules driven by validation, for any task, both counting validations (not epochs) and both needing a
    ``monitor``. ``plateau_patience`` adds a ``torch.optim.lr_scheduler.ReduceLROnPlateau`` to every optimizer:
    it multiplies the learning rate by ``plateau_factor`` once the monitored value has failed to improve in more
    than ``plateau_patience`` validations in a row (PyTorch's convention: patience 2 waits out two). A
    ``ReduceLROnPlateau`` that a task returns from :meth:`Task.configure_schedulers` is stepped the same way, with
    the monitored value after each validation. ``early_stopping`` ends training once the best monitored value is
    ``early_stopping`` validations old. The stop is decided from the history, so every process stops at the same
    epoch, and a resumed run that had stopped stays stopped.
    """

    epochs: int
    batch_size: int
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    shuffle: bool = True
    grad_clip: float | None = None
    amp: bool | str = "auto"
    channels_last: bool = False
    compile: bool = False
    log_every: int = 10
    val_every: int = 1
    sample_every: int | None = None
    checkpoint_every: int = 1
    out_dir: str | os.PathLike | None = None
    monitor: str | None = None
    monitor_mode: str = "max"
    select_from: int = 1
    progress: bool = True
    plateau_patience: int | None = None
    plateau_factor: float = 0.5
    early_stopping: int | None = None

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, not {self.epochs} and {self.batch_size}")
        if self.monitor_mode not in ("max", "min"):
            raise ValueError(f"monitor_mode must be 'max' or 'min', not {self.monitor_mode!r}")
        if not 1 <= self.select_from <= self.epochs:
            raise ValueError(f"select_from must be an epoch from 1 to epochs={self.epochs}, not {self.select_from!r}")
        if self.amp not in ("auto", True, False):
            raise ValueError(f"amp must be 'auto', True or False, not {self.amp!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be a positive norm or None, not {self.grad_clip!r}")
        if self.plateau_patience is not None and self.plateau_patience < 0:
            raise ValueError(f"plateau_patience must be 0 or more validations, not {self.plateau_patience!r}")
        if not 0 < self.plateau_factor < 1:
            raise ValueError(f"plateau_factor must be between 0 and 1, not {self.plateau_factor!r}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ValueError(f"early_stopping must be 1 or more validations, not {self.early_stopping!r}")
        if (self.plateau_patience is not None or self.early_stopping is not None) and self.monitor is None:
            raise ValueError("plateau_patience and early_stopping follow the monitored value: set monitor too")


class Task:
    """What a chapter trains. Subclass it and fill in the methods; the optional ones have do-nothing defaults.

    Build the networks inside :meth:`modules`, not in ``__init__``: the trainer seeds the random generators just
    before calling it, so every process (and every rerun) starts from the same initial weights. Inside the steps,
    reach the networks through ``trainer.modules["name"]`` (wrapped in DDP when distributed) and the device
    through ``trainer.device``; ``trainer.epoch`` is the epoch in progress (1, 2, ...).

    Two rules keep DDP happy: every training-mode forward pass of a module must end in a backward pass (compute
    extra outputs for logging under ``torch.no_grad()``), and a module's ``requires_grad`` must not be switched
    on and off during training (a GAN's generator step may backpropagate through the discriminator; the
    discriminator's stray gradients are cleared before its own next step).
    """

    def modules(self) -> dict[str, nn.Module]:
        """The networks, by name. Modules without trainable parameters (a frozen VGG) are kept in eval mode."""
        raise NotImplementedError

    def configure_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per independently stepped part, by name (the names used in ``trainer.optimize``)."""
        raise NotImplementedError

    def configure_schedulers(self, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, object]:
        """Learning-rate schedulers, by name; the trainer calls ``scheduler.step()`` once at the end of each epoch."""
        return {}

    def training_step(self, batch, trainer: Trainer) -> dict[str, float | torch.Tensor]:
        """Compute the losses of one batch, call ``trainer.optimize(loss, name)``, return the values to log."""
        raise NotImplementedError

    def before_validation(self, trainer: Trainer) -> None:
        """Called before each validation (in training mode, gradients on); e.g. re-estimate BatchNorm statistics
        with :func:`recalibrate_batchnorm`. The default does nothing."""

    def validation_step(self, batch, trainer: Trainer) -> dict[str, float | torch.Tensor]:
        """Metrics of one validation batch: a batch mean (a number) or one value per item (a 1-D tensor).

        The trainer turns them into exact means over the whole validation set, whatever the batch sizes.
        """
        return {}

    def samples(self, batch, trainer: Trainer) -> dict[str, torch.Tensor]:
        """Images (N, 3, H, W) in [0, 1] to look at during training, by name, e.g. ``{"output": net(low)}``."""
        return {}


def linear_decay(epochs: int, decay_epochs: int):
    """The learning-rate factor of the pix2pix code (Isola et al. 2017): constant for ``epochs - decay_epochs``
    epochs, then falling linearly towards zero over the last ``decay_epochs``; for epoch ``k = 1, 2, ...``

        factor(k) = 1 - max(0, k - (epochs - decay_epochs)) / (decay_epochs + 1)

    Returns a function of the scheduler's count of finished epochs (``k - 1``), for
    ``torch.optim.lr_scheduler.LambdaLR``.
    """
    if not 0 <= decay_epochs <= epochs:
        raise ValueError(f"decay_epochs must be between 0 and epochs ({epochs}), not {decay_epochs}")
    constant = epochs - decay_epochs
    return lambda finished: 1.0 - max(0, finished + 1 - constant) / (decay_epochs + 1)


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, inputs) -> int:
    """Re-estimate the running mean and variance of every BatchNorm layer of ``module`` from ``inputs`` (an
    iterable of input tensors), as exact averages over all of them instead of the exponential average of training.

    During training, BatchNorm keeps ``running = (1 - m) running + m batch`` (``m = 0.1``): a memory of the last
    few dozen batches, taken while the weights were still moving. A GAN moves them a lot, and in eval mode the
    network then normalises with statistics of networks it no longer is. Re-running the current network over
    training inputs with ``momentum=None`` (a cumulative average) gives the statistics of the weights as they
    are ("precise BatchNorm"; Wu and Johnson 2021, like ``torch.optim.swa_utils.update_bn``). Under
    DistributedDataParallel the processes' estimates are averaged. Weights are not touched; the module's
    training flag and the layers' momenta are restored. Returns the number of inputs used.
    """
    layers = [layer for layer in module.modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return 0
    was_training, momenta = module.training, [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    module.train()
    count = 0
    try:
        for batch in inputs:
            module(batch)
            count += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        module.train(was_training)
    if count == 0:
        raise ValueError("recalibrate_batchnorm needs at least one input batch")
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for layer in layers:
            for buffer in (layer.running_mean, layer.running_var):
                dist.all_reduce(buffer)
                buffer /= dist.get_world_size()
    return count


@torch.no_grad()
def update_ema(average: nn.Module, model: nn.Module, decay: float) -> None:
    """One step of an exponential moving average of ``model``'s weights, kept in ``average`` (same architecture):

        theta_avg <- decay * theta_avg + (1 - decay) * theta

    after every optimizer step of ``model`` ("Polyak" averaging of the iterates). With ``decay = 0.998`` the
    average remembers about ``1 / (1 - decay) = 500`` steps. A GAN's generator keeps oscillating around a good
    solution as the game goes on; the average sits nearer the middle of the oscillation, and usually scores better
    than the iterates themselves (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training").
    Buffers (BatchNorm's running statistics) are copied, not averaged: an average of weights needs statistics of
    its own, which :func:`recalibrate_batchnorm` measures. Under DistributedDataParallel every process holds the
    same weights after each step, so every process computes the same average without communicating.
    """
    _check_decay(decay)
    kept, current = list(average.parameters()), list(model.parameters())
    if len(kept) != len(current) or any(a.shape != b.shape for a, b in zip(kept, current)):
        raise ValueError(f"update_ema needs two networks of the same architecture; got {type(average).__name__} "
                         f"and {type(model).__name__} with different parameter shapes")
    for average_parameter, parameter in zip(kept, current):
        average_parameter.lerp_(parameter.detach(), 1 - decay)
    for average_buffer, buffer in zip(average.buffers(), model.buffers()):
        average_buffer.copy_(buffer)


def _check_decay(decay: float) -> None:
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1), not {decay}")


class WeightAverage:
    """An exponential moving average of one of a :class:`Task`'s networks, for the task to hold:

        theta_avg <- decay * theta_avg + (1 - decay) * theta

    after every optimizer step of network ``name`` (:func:`update_ema`: Polyak averaging of the iterates, which
    Yazici et al. 2019 found effective for GAN generators). The average is a frozen copy of the
    network, module ``<name>_ema`` of the task (:meth:`modules`); it has no trainable parameters, so the trainer
    neither wraps it in DDP nor hands it an optimizer, but it is checkpointed and resumed with the rest. The task
    calls :meth:`follow` after each step of the network and validates the modules of :meth:`scored`: the average is
    what validation scores and what selects the epoch, and the current weights are scored too, with the suffix
    ``_raw``. ``decay=None`` keeps no average: :meth:`modules` adds nothing, :meth:`follow` does nothing and the
    network alone is scored, so a task may hold one whether or not its recipe averages::

        average = WeightAverage("generator", recipe.ema_decay)
        modules = {"generator": generator, **average.modules(generator)}    # in Task.modules
        trainer.optimize(loss, "generator"); average.follow(trainer)         # in Task.training_step
    """

    def __init__(self, name: str, decay: float | None):
        if decay is not None:
            _check_decay(decay)
        self.name, self.decay = name, decay

    @property
    def average_name(self) -> str:
        """The name of the average's module: ``<name>_ema``."""
        return f"{self.name}_ema"

    @property
    def evaluated(self) -> str:
        """The module that validation scores and an export ships: the average if there is one, else the network."""
        return self.name if self.decay is None else self.average_name

    def modules(self, network: nn.Module) -> dict[str, nn.Module]:
        """The modules the average adds to the task's: ``{<name>_ema: a frozen copy of network}``, so the average
        starts where the network starts; none without an average."""
        if self.decay is None:
            return {}
        return {self.average_name: copy.deepcopy(network).requires_grad_(False)}

    def follow(self, trainer: Trainer) -> None:
        """Move the average towards the network's current weights, after an optimizer step of the network."""
        if self.decay is not None:
            update_ema(trainer.unwrap(self.average_name), trainer.unwrap(self.name), self.decay)

    def scored(self) -> dict[str, str]:
        """Validation-metric suffix -> module: ``{"": <name>_ema, "_raw": <name>}`` with an average, else
        ``{"": <name>}``."""
        scored = {"": self.evaluated}
        if self.decay is not None:
            scored["_raw"] = self.name
        return scored


# --------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------

def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed for one epoch of one process, mixed from ``(seed, epoch, rank)`` by NumPy's SeedSequence.

    SeedSequence hashes its inputs, so neighbouring epochs get unrelated streams (``seed + epoch`` would give
    the run with seed 1 at epoch 1 the same stream as the run with seed 0 at epoch 2).
    """
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def _distributed_env() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` as set by ``torchrun``; ``(0, 0, 1)`` for a plain single process."""
    environ = os.environ
    return int(environ.get("RANK", 0)), int(environ.get("LOCAL_RANK", 0)), int(environ.get("WORLD_SIZE", 1))


def _is_trainable(module: nn.Module) -> bool:
    return any(parameter.requires_grad for parameter in module.parameters())


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [parameter for group in optimizer.param_groups for parameter in group["params"]]


def _to_device(batch, device: torch.device, memory_format: torch.memory_format | None = None):
    """Move every tensor of a batch (a tensor, or dicts / lists / tuples of them) to ``device``; 4-D tensors also
    to ``memory_format`` when given."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=memory_format) if memory_format and batch.ndim == 4 else batch
    if isinstance(batch, dict):
        return {key: _to_device(value, device, memory_format) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(value, device, memory_format) for value in batch)
    return batch


def cuts_own_batches(dataset) -> bool:
    """Whether ``dataset`` makes whole batches itself (``dataset.batch(indices, key, device)``, as
    :class:`~lle_lib.data.PairedBatches` does) instead of being read item by item."""
    return callable(getattr(dataset, "batch", None))


class DatasetBatches:
    """The batches of a dataset that cuts its own (:func:`cuts_own_batches`), ``batch_size`` indices at a time in
    the order of ``indices`` (a sampler, or any sequence), on ``device``. ``key`` draws the augmentation (the
    trainer sets ``epoch_seed(seed, epoch)`` each epoch); None: items as they are, as validation wants. On a GPU
    the dataset keeps its decoded pixels there, so batches are cut on the device."""

    def __init__(self, dataset, indices, batch_size: int, device: torch.device):
        self.dataset, self.indices, self.batch_size, self.device = dataset, indices, batch_size, device
        self.key: int | None = None
        if device.type != "cpu" and hasattr(dataset, "keep_on"):
            dataset.keep_on(device)

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self):
        order = list(self.indices)
        for start in range(0, len(order), self.batch_size):
            yield self.dataset.batch(order[start:start + self.batch_size], key=self.key, device=self.device)


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The mixed-precision type for ``device`` (CUDA): bfloat16 where the GPU computes it natively (compute
    capability 8.0 on: A100, H100, RTX 30 and later), else float16, which needs a gradient scaler."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    return torch.float16


def process_device(device: torch.device, local_rank: int, local_world_size: int, gpu_count: int) -> torch.device:
    """The device of process ``local_rank`` of ``local_world_size`` on one machine, under DDP: one GPU per
    process when ``device`` is CUDA; the CPU (Gloo) when it is the CPU.

    Starting more processes than the machine has GPUs is a mistake DDP cannot recover from (two processes on one
    GPU deadlock or crash on a device ordinal), so it stops here with what to do instead.
    """
    if device.type != "cuda":
        return device
    if local_world_size > gpu_count:
        raise RuntimeError(
            f"torchrun started {local_world_size} processes on this machine, which has {gpu_count} GPU(s); DDP "
            f"trains with one process per GPU. Start torchrun with --nproc_per_node={max(gpu_count, 1)}, or train "
            f"on the CPU with device='cpu' (Gloo), where any number of processes works.")
    return torch.device("cuda", local_rank)


def _batch_size(batch) -> int:
    """The number of items in a collated batch: the length of its first entry."""
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    elif isinstance(batch, (list, tuple)):
        batch = batch[0]
    return len(batch)


def _total_and_count(value, batch_size: int) -> tuple[float, int]:
    """A validation value as (sum over items, number of items): a 1-D tensor holds one value per item,
    anything else is the batch mean and counts ``batch_size`` times."""
    if isinstance(value, torch.Tensor) and value.ndim == 1:
        return float(value.detach().double().sum()), value.numel()
    return float(value) * batch_size, batch_size


def _as_floats(values: dict, where: str) -> dict[str, float]:
    """The logged values of a step as Python floats, refusing NaN and infinity."""
    floats = {name: float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
              for name, value in values.items()}
    bad = {name: value for name, value in floats.items() if not math.isfinite(value)}
    if bad:
        raise NonFiniteLossError(f"{where}: non-finite values {bad} (all values of this step: {floats}).")
    return floats


# --------------------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------------------

class Trainer:
    """Trains a :class:`Task` on ``train_dataset`` (and validates on ``val_dataset``) as ``config`` says.

    Attributes a chapter uses: ``modules`` (by name; DDP-wrapped while training when distributed, plain during
    validation and after :meth:`fit`), ``unwrap(name)``, ``optimizers``, ``schedulers``, ``device``, ``epoch``,
    ``global_step``, ``history`` (one dict per epoch), ``step_history`` (one dict per step), ``best`` (the best
    monitored value) and ``sample_images`` (epoch -> {name: images}).
    """

    def __init__(self, task: Task, train_dataset, config: TrainConfig, val_dataset=None):
        self.task, self.config = task, config
        self.rank, local_rank, self.world_size = _distributed_env()
        self.device = self._setup_device(local_rank)
        self.amp_dtype = self._amp_dtype()
        self.amp = self.amp_dtype is not None
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None
        self.writes_files = self.out_dir is not None and self.rank == 0
        self.show_progress = config.progress and self.rank == 0

        seed_everything(config.seed)  # the same initial weights in every process and every rerun
        memory_format = torch.channels_last if config.channels_last else torch.preserve_format
        self._plain = {name: module.to(self.device, memory_format=memory_format)
                       for name, module in task.modules().items()}
        self._wrapped = {name: self._wrap(module) for name, module in self._plain.items()}
        self.modules = self._wrapped
        self.optimizers = task.configure_optimizers(self._plain)
        self.schedulers = task.configure_schedulers(self.optimizers)
        if config.plateau_patience is not None:
            for name, optimizer in self.optimizers.items():
                self.schedulers[f"plateau/{name}"] = torch.optim.lr_scheduler.ReduceLROnPlateau(
                    optimizer, mode=config.monitor_mode, factor=config.plateau_factor,
                    patience=config.plateau_patience)
        # only float16 needs its loss scaled: bfloat16 has the exponent range of float32
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
                        for name in self.optimizers}

        self._worker_seeds = torch.Generator()  # the DataLoader draws its workers' seeds from this generator
        self.train_loader, self.sampler = self._training_loader(train_dataset)
        self.val_loader = self._validation_loader(val_dataset) if val_dataset is not None else None
        self._sample_dataset = val_dataset if val_dataset is not None else train_dataset

        self.epoch, self.global_step = 0, 0
        self.history: list[dict] = []
        self.step_history: list[dict] = []
        self.best: float | None = None
        self.sample_images: dict[int, dict[str, torch.Tensor]] = {}

    # --- set-up ---------------------------------------------------------------------------------------------

    def _setup_device(self, local_rank: int) -> torch.device:
        """The device, and under torchrun the process group (NCCL between GPUs, Gloo between CPU processes)."""
        self._owns_process_group = False
        device = resolve_device(self.config.device)
        if self.world_size > 1:
            local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))
            device = process_device(device, local_rank, local_world_size,
                                    torch.cuda.device_count() if device.type == "cuda" else 0)
            if device.type == "cuda":
                torch.cuda.set_device(device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
                self._owns_process_group = True
        return device

    def _amp_dtype(self) -> torch.dtype | None:
        """The autocast type (None: no mixed precision); see :func:`autocast_dtype`."""
        if self.config.amp is True and self.device.type != "cuda":
            raise ValueError(f"amp=True needs a CUDA device, but training runs on {self.device}; use amp='auto'.")
        if self.config.amp is False or self.device.type != "cuda":
            return None
        return autocast_dtype(self.device)

    def _wrap(self, module: nn.Module) -> nn.Module:
        """DDP around every module that has something to train (DDP broadcasts rank 0's weights on the way), then
        ``torch.compile`` when the config asks for it."""
        if self.world_size > 1 and _is_trainable(module):
            module = DistributedDataParallel(module,
                                             device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return torch.compile(module) if self.config.compile and _is_trainable(module) else module

    def _training_loader(self, dataset) -> tuple[DataLoader | DatasetBatches, DistributedSampler]:
        """Batches of training items, in an order that depends only on ``(seed, epoch)``.

        DistributedSampler shuffles all indices with a generator seeded from ``seed + epoch`` and deals them out
        like cards, process ``r`` taking positions ``r, r + N, r + 2N, ...``. With one process it is a plain
        seeded shuffle. So N processes with batch b see, step for step, the same items as one process with
        batch ``N * b``. (It repeats a few items to give every process the same number of batches.)

        A dataset that cuts its own batches (:class:`~lle_lib.data.PairedBatches`) is asked for them directly, in
        the sampler's order; any other goes through a DataLoader, item by item.
        """
        sampler = DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                     shuffle=self.config.shuffle, seed=self.config.seed)
        if cuts_own_batches(dataset):
            return DatasetBatches(dataset, sampler, self.config.batch_size, self.device), sampler
        loader = DataLoader(dataset, batch_size=self.config.batch_size, sampler=sampler,
                            num_workers=self.config.num_workers, pin_memory=self.device.type == "cuda",
                            generator=self._worker_seeds)
        return loader, sampler

    def _validation_loader(self, dataset) -> DataLoader | DatasetBatches:
        """Process ``r`` validates items ``r, r + N, ...``: every item exactly once, none repeated."""
        share = range(self.rank, len(dataset), self.world_size)
        if cuts_own_batches(dataset):
            return DatasetBatches(dataset, share, self.config.batch_size, self.device)
        return DataLoader(Subset(dataset, share), batch_size=self.config.batch_size,
                          num_workers=self.config.num_workers, pin_memory=self.device.type == "cuda")

    def _to_device(self, batch):
        """A batch on the training device (and in NHWC order with ``channels_last``)."""
        return _to_device(batch, self.device, torch.channels_last if self.config.channels_last else None)

    def unwrap(self, name: str) -> nn.Module:
        """The plain module ``name``, without its DDP wrapper (for saving, or for inference after training)."""
        return self._plain[name]

    # --- one optimisation step ------------------------------------------------------------------------------

    def optimize(self, loss: torch.Tensor, name: str) -> None:
        """One update of optimizer ``name`` from ``loss``: clear the gradients, backpropagate, clip, step.

        With AMP the loss is multiplied by the scaler's factor ``s`` before backpropagation, so that small float16
        gradients do not underflow; ``unscale_`` divides the gradients by ``s`` again before clipping, and the
        scaler skips the step (and lowers ``s``) when it finds infinite gradients. Clipping rescales the gradients
        ``g`` of this optimizer's parameters to ``g * min(1, c / ||g||)``, with ``||g||`` the norm of all of them
        together and ``c = config.grad_clip``.
        """
        if name not in self.optimizers:
            raise KeyError(f"no optimizer named {name!r}; configure_optimizers returned {sorted(self.optimizers)}")
        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"epoch {self.epoch}, step {self.global_step}: the loss for optimizer {name!r} is "
                f"{loss.detach().float().cpu().tolist()}. Training stopped before the update; checkpoints already "
                f"written (last.pt) are untouched. "
                f"Usual causes: a learning rate too high, log/sqrt/division at zero, float16 overflow (try amp=False).")
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, enabled=False):  # backward follows the forward's precision anyway
            scaler.scale(loss).backward()
        if self.config.grad_clip is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(_parameters(optimizer), self.config.grad_clip)
        scaler.step(optimizer)
        scaler.update()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    # --- epochs ---------------------------------------------------------------------------------------------

    def fit(self, resume: bool = True) -> list[dict]:
        """Train until ``config.epochs``; with ``resume``, first continue from ``out_dir/last.pt`` if it exists.

        Returns ``history``: per epoch the mean training values (``"train/loss"``, ...), the validation means
        (``"val/psnr"``, ...) on validation epochs, and the wall time in ``"seconds"``.
        """
        if resume and self.out_dir is not None and (self.out_dir / "last.pt").exists():
            self.load_checkpoint(self.out_dir / "last.pt")
        self.modules = self._wrapped
        bar = progress_bar(total=self.config.epochs, initial=self.epoch, desc="epochs", disable=not self.show_progress)
        try:
            while self.epoch < self.config.epochs and not self.stopped_early:
                record = self._run_epoch(self.epoch + 1)
                bar.update()
                bar.set_postfix({key: f"{value:.4g}" for key, value in record.items() if "/" in key})
        finally:
            bar.close()
            self.modules = self._plain
            if self._owns_process_group:
                dist.destroy_process_group()
                self._owns_process_group = False
        return self.history

    def _run_epoch(self, epoch: int) -> dict:
        """Train one epoch, then validate, take samples and save checkpoints when they are due."""
        self.epoch = epoch
        start = time.perf_counter()
        record = {"epoch": epoch, **self._train_one_epoch(epoch)}
        with warnings.catch_warnings():
            # A recipe may leave an optimizer idle for whole epochs (pix2pix's discriminator during its warm-up);
            # its schedule still follows the epoch count, so PyTorch's "step before optimizer.step()" warning is moot.
            warnings.filterwarnings("ignore", message=SCHEDULER_BEFORE_OPTIMIZER)
            for scheduler in self.schedulers.values():
                if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step()
        if self.val_loader is not None and self._due(self.config.val_every):
            record.update(self._validate())
            if self.config.monitor in record:
                for scheduler in self.schedulers.values():
                    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        scheduler.step(record[self.config.monitor])
        for name, optimizer in self.optimizers.items():
            record[f"lr_{name}"] = optimizer.param_groups[0]["lr"]  # the rate the next epoch trains with
        if self.config.sample_every is not None and self._due(self.config.sample_every):
            self._take_samples()
        record["seconds"] = time.perf_counter() - start
        self.history.append(record)
        improved = self._update_best(record)
        if self.writes_files and (self._due(self.config.checkpoint_every) or self.stopped_early):
            self.save_checkpoint(self.out_dir / "last.pt")
        if self.writes_files and improved:
            self.save_checkpoint(self.out_dir / "best.pt")
        return record

    def _due(self, every: int) -> bool:
        return self.epoch % every == 0 or self.epoch == self.config.epochs

    def _train_one_epoch(self, epoch: int) -> dict[str, float]:
        seed = epoch_seed(self.config.seed, epoch, self.rank)
        seed_everything(seed)  # random augmentations and dropout of this epoch
        self._worker_seeds.manual_seed(seed)  # ... also inside DataLoader workers
        self.sampler.set_epoch(epoch)  # the order of the items
        if isinstance(self.train_loader, DatasetBatches):  # crops and flips: per item, the same in every process
            self.train_loader.key = epoch_seed(self.config.seed, epoch)
        for module in self._plain.values():
            module.train(_is_trainable(module))
        sums, counts = defaultdict(float), defaultdict(int)
        steps = progress_bar(self.train_loader, desc=f"epoch {epoch}", leave=False, disable=not self.show_progress)
        for batch in steps:
            self.global_step += 1
            with self._autocast():
                values = self.task.training_step(self._to_device(batch), self)
            values = _as_floats(values, f"epoch {epoch}, step {self.global_step}")
            self.step_history.append({"epoch": epoch, "step": self.global_step, **values})
            for name, value in values.items():
                sums[name] += value
                counts[name] += 1
            if self.global_step % self.config.log_every == 0:
                steps.set_postfix({name: f"{sums[name] / counts[name]:.4g}" for name in sums})
        return {f"train/{name}": value for name, value in self._mean_over_processes(sums, counts).items()}

    @contextmanager
    def _evaluating(self):
        """Eval mode, no gradients, and the plain modules in ``trainer.modules``.

        Plain, not DDP-wrapped: the processes may run different numbers of validation batches, and a DDP module
        would wait in its forward pass for partners that have already finished.
        """
        self.modules = self._plain
        for module in self._plain.values():
            module.eval()
        try:
            with torch.no_grad(), self._autocast():
                yield
        finally:
            self.modules = self._wrapped

    def _validate(self) -> dict[str, float]:
        """Exact means of the task's validation values over the whole validation set (all processes)."""
        self.task.before_validation(self)
        sums, counts = defaultdict(float), defaultdict(int)
        with self._evaluating():
            for batch in progress_bar(self.val_loader, desc="validation", leave=False, disable=not self.show_progress):
                batch = self._to_device(batch)
                for name, value in self.task.validation_step(batch, self).items():
                    total, count = _total_and_count(value, _batch_size(batch))
                    sums[name] += total
                    counts[name] += count
        return {f"val/{name}": value for name, value in self._mean_over_processes(sums, counts).items()}

    def _mean_over_processes(self, sums: dict, counts: dict) -> dict[str, float]:
        """``sum of all sums / sum of all counts`` over every process: exact, however uneven the shares."""
        if self.world_size > 1:
            shares = [None] * self.world_size
            dist.all_gather_object(shares, (dict(sums), dict(counts)))
            sums, counts = defaultdict(float), defaultdict(int)
            for share_sums, share_counts in shares:
                for name in share_sums:
                    sums[name] += share_sums[name]
                    counts[name] += share_counts[name]
        return {name: sums[name] / counts[name] for name in sums}

    def _take_samples(self) -> None:
        """Run ``task.samples`` on the first items of the validation set; keep the images, save PNG grids."""
        if self.rank != 0:
            return
        count = min(SAMPLE_ITEMS, len(self._sample_dataset))
        batch = self._to_device(default_collate([self._sample_dataset[i] for i in range(count)]))
        with self._evaluating():
            images = {name: value.detach().float().cpu() for name, value in self.task.samples(batch, self).items()}
        self.sample_images[self.epoch] = images
        if self.writes_files:
            from torchvision.utils import make_grid

            for name, value in images.items():
                path = self.out_dir / "samples" / f"epoch{self.epoch:03d}_{name}.png"
                write_image(path, to_image(make_grid(value.clamp(0, 1), nrow=count)))

    def validations_without_improvement(self) -> int:
        """How many validations (from ``config.select_from`` on) have passed since the best monitored value;
        ties do not improve. Read from :attr:`history`, so it survives a resume."""
        monitor, first = self.config.monitor, self.config.select_from
        values = [record[monitor] for record in self.history
                  if monitor in record and record["epoch"] >= first and math.isfinite(record[monitor])]
        if not values:
            return 0
        best = (max if self.config.monitor_mode == "max" else min)(values)
        return len(values) - 1 - values.index(best)

    @property
    def stopped_early(self) -> bool:
        """Whether ``config.early_stopping`` has ended training (the best value is that many validations old)."""
        patience = self.config.early_stopping
        return patience is not None and self.validations_without_improvement() >= patience

    def _update_best(self, record: dict) -> bool:
        """Whether this epoch improved the monitored value (validation values exist only on validation epochs;
        epochs before ``config.select_from`` never count)."""
        monitor = self.config.monitor
        if monitor is None:
            return False
        if monitor not in record:
            if any(key.startswith("val/") for key in record) or not monitor.startswith("val/"):
                raise KeyError(f"monitor={monitor!r} is not among this epoch's values {sorted(record)}")
            return False
        value = record[monitor]
        if not math.isfinite(value) or record["epoch"] < self.config.select_from:
            return False
        if self.config.monitor_mode == "max":
            improved = self.best is None or value > self.best
        else:
            improved = self.best is None or value < self.best
        if improved:
            self.best = value
        return improved

    # --- checkpoints ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to continue exactly, as plain containers of tensors and numbers (no pickled objects)."""
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "modules": {name: module.state_dict() for name, module in self._plain.items()},
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "schedulers": {name: scheduler.state_dict() for name, scheduler in self.schedulers.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
            "history": self.history,
            "step_history": self.step_history,
            "best": self.best,
        }

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        state = self.state_dict()
        write_atomically(Path(path), lambda temporary: torch.save(state, temporary))

    @staticmethod
    def _fast_forward(name: str, scheduler, epochs: int) -> None:
        """A run continued with a schedule its checkpoint did not have (a recipe extended with a decay): an
        epoch-driven schedule is stepped to the checkpoint's epoch, as if it had run from the start; one driven by
        validation (``ReduceLROnPlateau``) starts afresh."""
        warnings.warn(f"the checkpoint has no state for scheduler {name!r}; it continues from epoch {epochs} as if "
                      "it had run from the start", stacklevel=3)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=SCHEDULER_BEFORE_OPTIMIZER)
            for _ in range(epochs - scheduler.last_epoch):  # none if it is already there
                scheduler.step()

    def load_checkpoint(self, path: str | os.PathLike, *, modules_only: bool = False) -> None:
        """Restore a checkpoint (``modules_only``: just the weights, e.g. those of ``best.pt`` for evaluation)."""
        checkpoint = torch.load(path, map_location=self.device, weights_only=True)
        for name, module in self._plain.items():
            module.load_state_dict(checkpoint["modules"][name])
        if modules_only:
            return
        for group in ("optimizers", "schedulers", "scalers"):
            for name, part in getattr(self, group).items():
                if group == "schedulers" and name not in checkpoint[group]:
                    self._fast_forward(name, part, checkpoint["epoch"])
                    continue
                part.load_state_dict(checkpoint[group][name])
        self.epoch, self.global_step, self.best = checkpoint["epoch"], checkpoint["global_step"], checkpoint["best"]
        self.history, self.step_history = list(checkpoint["history"]), list(checkpoint["step_history"])
