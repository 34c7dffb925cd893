"""The residual CNN's ablation on the validation split: what the preprocessing, BatchNorm and each loss term add.

    LLE_DATA=../shared/data python tools/ablate_residual_cnn.py      # ~25 min on 2 CPU cores

Trains :data:`lle_lib.recipes.residual_cnn.ABLATION` (one base recipe, smaller than the shipped one so that five
runs fit a CPU session, and four variants that each change one thing) with the same data, seed and epochs, selects
each run's epoch by validation PSNR, and writes the run record ``lle_lib/pretrained/runs/residual_cnn_ablation.json``
(per run: its recipe, selected epoch, validation PSNR and SSIM, wall time and curves). Validation only: the test
pairs are never touched. Chapter 7 reads the record.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch

from lle_lib.config import RunContext
from lle_lib.data import load_paired
from lle_lib.recipes import hardware_description, training_curves
from lle_lib.recipes.residual_cnn import ABLATION, make_trainer
from lle_lib.weights import PRETRAINED_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/residual_cnn_ablation", help="folder of the runs' checkpoints")
    parser.add_argument("--out", default=str(PRETRAINED_DIR / "runs" / "residual_cnn_ablation.json"))
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    run = RunContext(data_dir=args.data_dir, device="cpu")
    entries = []
    for name, recipe in ABLATION.items():
        out_dir = Path(args.runs) / name
        trainer = make_trainer(recipe, run, out_dir=out_dir)
        history = trainer.fit()
        best = torch.load(out_dir / "best.pt", map_location="cpu", weights_only=True)
        selected = next(record for record in history if record["epoch"] == best["epoch"])
        entries.append({"run": name, "recipe": asdict(recipe), "selected_epoch": best["epoch"],
                        "validation_psnr": round(float(selected["val/psnr"]), 3),
                        "validation_ssim": round(float(selected["val/ssim"]), 4),
                        "wall_time_seconds": round(sum(record["seconds"] for record in history), 1),
                        "history": training_curves(out_dir, ("train/loss", "val/psnr", "val/ssim"))})
        print(f"{name}: {entries[-1]['validation_psnr']:.3f} dB at epoch {best['epoch']}", flush=True)
    record = {
        "method": "Residual CNN ablation (run record: no weights shipped)",
        "training_data": load_paired("train", args.data_dir).source,
        "selection": f"each run's epoch with the best PSNR on {load_paired('val', args.data_dir).source}",
        "seed": run.seed,
        "hardware": hardware_description(),
        "note": "Each variant changes one thing of the base recipe; validation split only, never the test pairs.",
        "runs": entries,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
