"""Where a training step's time goes: loading the batch or computing it, old loader against new, per recipe.

    python benchmarks/train_throughput.py [--recipes shipped|full] [--quick] [--device auto] [--methods kind ...]
                                          [--channels-last] [--compile]

For every phase of every learned method of the registry (Zero-DCE, Zero-DCE++, KinD's stages, pix2pix), at the
recipe's own settings (batch, patch size, epochs), it measures on one device:

* **data, old**: seconds per batch of the loader the trainer used before :class:`~lle_lib.data.PairedBatches`: a
  DataLoader in the training process (``num_workers=0``) that decodes both images of every item from disk at every
  use and crops and flips item by item, then moves the batch to the device;
* **data, new**: seconds per batch of :class:`~lle_lib.data.PairedBatches` once its images are decoded (on a GPU
  its pixels live on the GPU and the crops are cut there); and the one-off decoding, seconds per pair;
* **compute**: seconds per training step with the batch already on the device (the recipe's own
  ``training_step``: forward, losses, backward, optimizer), with the trainer's mixed precision (bfloat16 or float16
  on CUDA, none on the CPU);

then the data share of a step, steps per second, and the projected wall time of the whole phase (``epochs x
steps per epoch x (data + compute)``, plus the one-off decoding for the new loader; validation not counted), with
the speed-up, old over new. The data is LOL when ``$LLE_DATA`` holds it (the figures that matter), else synthetic
pairs (stand-ins, which decode nothing from disk: the old loader then looks cheaper than it is).

``--channels-last`` and ``--compile`` time the compute again with NHWC memory order and with ``torch.compile``, and
say which is faster: the trainer keeps both off (``TrainConfig``) unless a measurement on the machine says otherwise.
``--quick`` times fewer steps (under 5 minutes on 2 CPU cores for the shipped recipes). Figures are printed, never
asserted by the tests.
"""
from __future__ import annotations

import argparse
import statistics
import time
from itertools import islice

import torch
from torch.utils.data import DataLoader, Dataset

from lle_lib import methods
from lle_lib.config import RunContext, resolve_device
from lle_lib.data import PairedBatches, PairedCompose, PairedRandomCrop, PairedRandomFlip
from lle_lib.recipes import hardware_description
from lle_lib.train import epoch_seed


class ItemByItem(Dataset):
    """The old loader's dataset: ``batches.base`` decoded at every access, then cropped and flipped item by item
    with PyTorch's global generator (what ``load_paired("train", size=...)`` gives)."""

    def __init__(self, batches: PairedBatches):
        self.base = batches.base
        steps = [PairedRandomCrop(batches.crop)] if batches.crop is not None else []
        self.transform = PairedCompose(steps + ([PairedRandomFlip()] if batches.flip else []))

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        return self.transform(self.base[index])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_batch(batches, count: int, device: torch.device, to_device) -> float:
    """Median seconds to get one batch onto ``device`` from the iterator ``batches`` (after one warm-up batch)."""
    iterator = iter(batches)
    to_device(next(iterator))
    times = []
    for _ in range(count):
        start = time.perf_counter()
        to_device(next(iterator))
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def old_loader_seconds(trainer, count: int) -> float:
    dataset = ItemByItem(trainer.train_loader.dataset)
    loader = DataLoader(dataset, batch_size=trainer.config.batch_size, shuffle=True, num_workers=0,
                        pin_memory=trainer.device.type == "cuda")
    return seconds_per_batch(loader, count, trainer.device, trainer._to_device)


def new_loader_seconds(trainer, count: int) -> tuple[float, float]:
    """Seconds per batch once decoded, and the one-off decoding in seconds per pair (measured on the pairs that
    the timed batches use, decoded before the clock starts)."""
    stream, dataset = trainer.train_loader, trainer.train_loader.dataset
    stream.key = epoch_seed(trainer.config.seed, 1)
    trainer.sampler.set_epoch(1)
    needed = list(islice(iter(trainer.sampler), (count + 1) * trainer.config.batch_size))
    start = time.perf_counter()
    for index in dict.fromkeys(needed):
        dataset.decoded(index)
    synchronize(trainer.device)
    decode_per_pair = (time.perf_counter() - start) / len(set(needed))
    return seconds_per_batch(stream, count, trainer.device, trainer._to_device), decode_per_pair


def compute_seconds(trainer, count: int, memory_format=None) -> float:
    """Median seconds of the recipe's training step on a batch already on the device."""
    batch = trainer._to_device(next(iter(trainer.train_loader)))
    if memory_format is not None:
        batch = {key: value.contiguous(memory_format=memory_format) if torch.is_tensor(value) else value
                 for key, value in batch.items()}
    trainer.epoch = 1
    trainer.modules = trainer._wrapped
    for module in trainer._plain.values():
        module.train(any(parameter.requires_grad for parameter in module.parameters()))

    def step():
        with trainer._autocast():
            trainer.task.training_step(batch, trainer)

    step()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        synchronize(trainer.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layout_seconds(trainer, count: int, which: str) -> float:
    """The compute again in NHWC order (``channels_last``) or through ``torch.compile`` (``compile``)."""
    if which == "channels_last":
        for module in trainer._plain.values():
            module.to(memory_format=torch.channels_last)
        return compute_seconds(trainer, count, torch.channels_last)
    trainer._wrapped = {name: torch.compile(module) if any(p.requires_grad for p in module.parameters()) else module
                        for name, module in trainer._wrapped.items()}
    return compute_seconds(trainer, count)


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def measure_phase(label: str, trainer, args) -> dict:
    data_steps, compute_steps = (3, 2) if args.quick else (10, 5)
    dataset = trainer.train_loader.dataset
    steps = len(trainer.train_loader)
    epochs = trainer.config.epochs
    old = old_loader_seconds(trainer, data_steps)
    new, decode = new_loader_seconds(trainer, data_steps)
    compute = compute_seconds(trainer, compute_steps)
    row = {"phase": label, "batch": trainer.config.batch_size,
           "patch": "x".join(map(str, dataset.crop)) if dataset.crop else "whole", "epochs": epochs,
           "steps/epoch": steps, "pairs": len(dataset), "old": old, "new": new, "decode": decode,
           "compute": compute}
    row["old_total"] = epochs * steps * (old + compute)
    row["new_total"] = len(dataset) * decode + epochs * steps * (new + compute)
    for which in [name for name, wanted in (("channels_last", args.channels_last), ("compile", args.compile))
                  if wanted]:
        row[which] = layout_seconds(trainer, compute_steps, which)
    return row


def print_rows(rows: list[dict], args) -> None:
    header = (f"{'phase':<28} {'batch':>5} {'patch':>7} {'steps':>9} {'decode':>7} {'data old':>9} {'data new':>9} "
              f"{'compute':>9} {'share old':>9} {'share new':>9} {'steps/s':>8} {'old loader':>11} "
              f"{'new loader':>11} {'speed-up':>8}")
    print(header)
    print("-" * len(header))
    for row in rows:
        share_old = row["old"] / (row["old"] + row["compute"])
        share_new = row["new"] / (row["new"] + row["compute"])
        steps = f"{row['epochs']}x{row['steps/epoch']}"
        print(f"{row['phase']:<28} {row['batch']:>5} {row['patch']:>7} {steps:>9} {row['decode'] * 1e3:>5.0f}ms "
              f"{row['old'] * 1e3:>7.1f}ms {row['new'] * 1e3:>7.2f}ms {row['compute'] * 1e3:>7.1f}ms "
              f"{share_old:>9.0%} {share_new:>9.1%} {1 / (row['new'] + row['compute']):>8.2f} "
              f"{duration(row['old_total']):>11} {duration(row['new_total']):>11} "
              f"{row['old_total'] / row['new_total']:>7.2f}x")
    for which in ("channels_last", "compile"):
        timed = [row for row in rows if which in row]
        if timed:
            print(f"\n{which}: compute per step, default -> {which}")
            for row in timed:
                verdict = "faster" if row[which] < row["compute"] else "slower"
                print(f"  {row['phase']:<28} {row['compute'] * 1e3:8.1f} ms -> {row[which] * 1e3:8.1f} ms "
                      f"({verdict}, {row['compute'] / row[which]:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="shipped", help="'shipped' (the weights' recipes), 'full' or 'quick'")
    parser.add_argument("--methods", nargs="*", default=None, help="learned methods to time (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps: under 5 minutes on 2 CPU cores")
    parser.add_argument("--channels-last", action="store_true", help="also time the compute in NHWC order")
    parser.add_argument("--compile", action="store_true", help="also time the compute through torch.compile")
    args = parser.parse_args()

    started = time.perf_counter()
    device = resolve_device(args.device)
    run = RunContext(device=str(device), progress=False)
    print(f"device: {device} ({hardware_description() if device.type != 'cpu' else 'CPU: ' + hardware_description()})")
    print(f"recipes: {args.recipes}; torch {torch.__version__}; {torch.get_num_threads()} threads")
    rows = []
    chosen = args.methods or [name for name in methods.available() if methods.get(name).learned]
    for name in chosen:
        method = methods.get(name)
        recipes = ({key: recipe for key, recipe in method.shipped.items()} if args.recipes == "shipped"
                   else {args.recipes: method.recipe_named(args.recipes)})
        for recipe_name, recipe in recipes.items():
            for phase, trainer in method.phase_trainers(recipe, run):
                # shipped recipes are named after their weights; a preset is named after its method
                label = (recipe_name if args.recipes == "shipped" else name) + (f" {phase}" if phase else "")
                if not rows:
                    print(f"data: {trainer.train_loader.dataset.source}\n")
                rows.append(measure_phase(label, trainer, args))
                print(f"  measured {label}", flush=True)
                del trainer
    print()
    print_rows(rows, args)
    print("\nper recipe (all phases): projected wall time, old loader -> new loader")
    for recipe_name in dict.fromkeys(row["phase"].split()[0] for row in rows):
        mine = [row for row in rows if row["phase"].split()[0] == recipe_name]
        old, new = sum(row["old_total"] for row in mine), sum(row["new_total"] for row in mine)
        print(f"  {recipe_name:<24} {duration(old):>10} -> {duration(new):>10}  ({old / new:.2f}x)")
    print("\ndecode: the new loader's one-off decoding, per pair; data: per batch, onto the device; share = data / "
          "(data + compute) per step; steps/s with the new loader; projections leave out validation.")
    print(f"benchmark's own wall time: {duration(time.perf_counter() - started)}")
    if device.type != "cuda":
        print("GPU figures: untested here (no CUDA); run this script unchanged on a GPU to get them.")


if __name__ == "__main__":
    main()
