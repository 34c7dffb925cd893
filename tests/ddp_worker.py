"""A tiny training task for the trainer's tests, and the worker that test_train.py starts under torchrun.

Run by ``python -m torch.distributed.run --nproc_per_node=2 --standalone tests/ddp_worker.py OUT_DIR [batches]``: every
process trains the tiny task for 2 epochs with the Gloo backend and writes ``OUT_DIR/rank{r}.pt`` (its final
parameters) and ``OUT_DIR/rank{r}.json`` (its history and whether its module was DDP-wrapped). Each rank gets
its own ``out_dir`` (``OUT_DIR/run_rank{r}``) so the test can see that only rank 0 writes files.

test_train.py imports the task and dataset from here, so that its single-process reference run is the same.
"""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from lle_lib.data import PairedBatches
from lle_lib.metrics import psnr
from lle_lib.train import Task, TrainConfig, Trainer


class BrightenPairs(Dataset):
    """``n`` items of size 16 x 16: ``low`` uniform in [0, 0.5), ``high = 2 * low``.

    The pixels depend only on ``(seed, index)``. With ``augment``, every access also flips the pair with
    PyTorch's global generator and scales it with Python's and adds noise with NumPy's, so that an exact
    resume is only possible if all three generators are seeded per epoch.
    """

    def __init__(self, n: int, *, seed: int = 0, augment: bool = False, size: int = 16):
        self.n, self.seed, self.augment, self.size = n, seed, augment, size

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + index)
        low = torch.rand(3, self.size, self.size, generator=generator) * 0.5
        high = 2 * low
        if self.augment:
            if torch.rand(()) < 0.5:
                low, high = low.flip(-1), high.flip(-1)
            scale = random.uniform(0.8, 1.0)
            noise = torch.from_numpy(np.random.normal(0, 0.01, low.shape).astype(np.float32))
            low, high = low * scale + noise, high * scale
        return {"low": low, "high": high, "name": f"{index:03d}"}


def tiny_net() -> nn.Module:
    """Two convolutions and no batch-dependent layer, so DDP with batch b equals one process with batch 2b."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


class BrightenTask(Task):
    """Learn ``high`` from ``low`` with an L1 loss and Adam; optionally a learning rate that falls every epoch."""

    def __init__(self, lr: float = 1e-2, schedule: bool = False):
        self.lr, self.schedule = lr, schedule

    def modules(self):
        return {"net": tiny_net()}

    def configure_optimizers(self, modules):
        return {"net": torch.optim.Adam(modules["net"].parameters(), lr=self.lr)}

    def configure_schedulers(self, optimizers):
        if not self.schedule:
            return {}
        # LambdaLR computes lr = base_lr * f(epoch) from its own epoch counter, which a resume must restore.
        return {"net": torch.optim.lr_scheduler.LambdaLR(optimizers["net"], lambda epoch: 1 / (1 + epoch))}

    def training_step(self, batch, trainer):
        output = trainer.modules["net"](batch["low"])
        loss = F.l1_loss(output, batch["high"])
        trainer.optimize(loss, "net")
        return {"loss": loss}

    def validation_step(self, batch, trainer):
        output = trainer.modules["net"](batch["low"]).clamp(0, 1)
        return {"l1": F.l1_loss(output, batch["high"]), "psnr": psnr(output, batch["high"])}

    def samples(self, batch, trainer):
        return {"output": trainer.modules["net"](batch["low"]).clamp(0, 1)}


#: The distributed run and its single-process reference: 2 processes x batch 4 against 1 process x batch 8.
TRAIN_ITEMS, VAL_ITEMS, EPOCHS, BATCH_PER_PROCESS = 32, 7, 2, 4


def datasets(batches: bool):
    """The training and validation sets: item by item, or as PairedBatches with random 12x12 crops and flips (an
    item's window then depends on the seed, the epoch and the item only, not on the process that draws it)."""
    train, val = BrightenPairs(TRAIN_ITEMS), BrightenPairs(VAL_ITEMS, seed=1)
    if batches:
        return PairedBatches(train, crop=12, flip=True), PairedBatches(val)
    return train, val


def main(out: Path, batches: bool = False) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    # two CPU processes (Gloo) even on a machine with GPUs: "auto" would put rank 1 on cuda:1
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH_PER_PROCESS, out_dir=out / f"run_rank{rank}", progress=False,
                         device="cpu")
    train, val = datasets(batches)
    trainer = Trainer(BrightenTask(), train, config, val_dataset=val)
    wrapper = type(trainer.modules["net"]).__name__
    history = trainer.fit()
    torch.save(trainer.unwrap("net").state_dict(), out / f"rank{rank}.pt")
    report = {"world_size": trainer.world_size, "wrapper": wrapper, "history": history}
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), batches=sys.argv[2:] == ["batches"])
