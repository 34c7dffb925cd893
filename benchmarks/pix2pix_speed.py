"""Speed of pix2pix on the CPU (or a GPU with --device cuda): one training step (a discriminator and a generator
update) per width and crop, one warm-up step (the generator by L1 alone, ``warmup_epochs``), and full-size
inference.

    python benchmarks/pix2pix_speed.py [--repeats 3] [--device cpu] [--widths 8,16,32] [--crops 128,256]

Prints the parameter count of each generator, the median seconds of one GAN step and of one warm-up step at each
crop size (batch 4, random data: untrained weights run exactly as fast as trained ones) and of enhancing one
600x400 image (LOL's size, padded inside to 768x512). Figures are printed, never asserted by the tests.
"""
from __future__ import annotations

import argparse
import platform
from dataclasses import replace

import torch
from torch.utils.data import default_collate

from lle_lib.recipes.pix2pix import PRESETS, Pix2PixTask
from lle_lib.train import TrainConfig, Trainer
from lle_lib.weights import count_parameters
from timing import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--widths", default="8,16,32")
    parser.add_argument("--crops", default="128,256")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"device {args.device}, batch {args.batch_size}")
    for width in (int(w) for w in args.widths.split(",")):
        recipe = replace(PRESETS["full"], generator_width=width, batch_size=args.batch_size, warmup_epochs=1)
        items = [{"low": torch.rand(3, 64, 64), "high": torch.rand(3, 64, 64), "name": "x"}]
        trainer = Trainer(Pix2PixTask(recipe), items, TrainConfig(epochs=1, batch_size=1, progress=False,
                                                                  device=args.device))
        generator = trainer.unwrap("generator")
        line = [f"width {width:3d}: generator {count_parameters(generator) / 1e6:6.2f} M parameters"]
        for crop in (int(c) for c in args.crops.split(",")):
            batch = default_collate([{"low": torch.rand(3, crop, crop), "high": torch.rand(3, crop, crop)}
                                     for _ in range(args.batch_size)])
            batch = {key: value.to(args.device) for key, value in batch.items()}
            for module in trainer.modules.values():
                module.train()
            steps = {}
            for phase, epoch in (("GAN", recipe.warmup_epochs + 1), ("warm-up", recipe.warmup_epochs)):
                trainer.epoch = epoch                         # the task picks the phase by the epoch in progress
                steps[phase] = median_seconds(lambda: trainer.task.training_step(batch, trainer), args.repeats)
            line.append(f"{crop}x{crop}: GAN step {steps['GAN']:5.2f} s, warm-up step {steps['warm-up']:5.2f} s")
        generator.eval()
        image = torch.rand(1, 3, 400, 600, device=args.device)
        with torch.no_grad():
            line.append(f"enhance 600x400: {median_seconds(lambda: generator(image), args.repeats):5.2f} s")
        print(", ".join(line))


if __name__ == "__main__":
    main()
