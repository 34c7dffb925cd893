"""The worker of test_recipe_pix2pix's DDP test: a tiny pix2pix trained for 2 epochs under torchrun (Gloo), the
first an L1 warm-up in which the discriminator is not used at all.

``python -m torch.distributed.run --nproc_per_node=2 --standalone tests/pix2pix_ddp_worker.py OUT_DIR`` writes
``OUT_DIR/rank{r}.pt``, both networks' final state_dicts, and ``OUT_DIR/rank{r}.json``, the history and wrappers.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from lle_lib.recipes import pix2pix as recipes
from lle_lib.train import TrainConfig, Trainer

TINY = replace(recipes.PRESETS["quick"], generator_width=4, generator_depth=4, discriminator_width=4, crop=32,
               ema_decay=0.9, warmup_epochs=1)


def tiny_pairs(n: int = 8) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    items = []
    for index in range(n):
        low = torch.rand(3, 32, 32, generator=generator) * 0.3
        items.append({"low": low, "high": (low * 3).clamp(0, 1), "name": str(index)})
    return items


if __name__ == "__main__":
    out = Path(sys.argv[1])
    data = tiny_pairs()
    trainer = Trainer(recipes.Pix2PixTask(TINY), data, TrainConfig(epochs=2, batch_size=2, progress=False,
                                                                   device="cpu"), val_dataset=data[:4])
    wrappers = {name: type(module).__name__ for name, module in trainer.modules.items()}
    history = trainer.fit()
    torch.save({name: trainer.unwrap(name).state_dict() for name in ("generator", "discriminator", "generator_ema")},
               out / f"rank{trainer.rank}.pt")
    (out / f"rank{trainer.rank}.json").write_text(json.dumps({"history": history, "wrappers": wrappers,
                                                              "world_size": trainer.world_size}))
