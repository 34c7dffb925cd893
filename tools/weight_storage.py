"""What storing the book's weights in 16 bits would cost: file size against validation PSNR.

    LLE_DATA=../shared/data python tools/weight_storage.py      # ~4 min on 2 CPU cores

For the shipped KinD (at its card's fixed ratio) and the shipped pix2pix generator, prints the size of the weight
file stored in float32, float16 and bfloat16 (:func:`lle_lib.weights.save_weights`'s ``dtype``) and the validation
PSNR, plain and GT-mean, of the net with its weights rounded to that type; then the size of the authors'
full-width KinD in each type. Validation split only, never the test pairs. Chapter 4 (section 4.10) quotes it.
"""
from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import pandas as pd
import torch

from lle_lib import methods
from lle_lib.data import load_paired
from lle_lib.evaluate import evaluate
from lle_lib.models.kind import enhance_kind
from lle_lib.models.pix2pix import enhance_pix2pix
from lle_lib.recipes import kind
from lle_lib.weights import STORAGE_DTYPES, count_parameters, round_weights, save_weights

#: The types compared, by name: None stands for the module's own type (float32 for every shipped net).
DTYPES = {"float32": None, **STORAGE_DTYPES}


def stored_megabytes(module: torch.nn.Module, dtype: torch.dtype | None) -> float:
    """The size in MiB of the file ``save_weights(module, path, dtype=dtype)`` writes (into a temporary folder)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.pt"
        save_weights(module, path, dtype=dtype)
        return path.stat().st_size / 2**20


def storage_rows(name: str, module: torch.nn.Module, enhance, dataset, dtypes=DTYPES) -> list[dict]:
    """One row per storage type of ``dtypes`` (name: dtype): file size and mean PSNR (plain and GT-mean) on
    ``dataset`` of a copy of ``module`` rounded to that type, enhancing with ``enhance(module, image)``. ``module``
    is left as it was."""
    rows = []
    for stored_as, dtype in dtypes.items():
        rounded = round_weights(copy.deepcopy(module), dtype).eval()
        summary = evaluate(lambda image: enhance(rounded, image), dataset, name=name, progress=False).summary
        rows.append({"model": name, "stored as": stored_as,
                     "MiB": stored_megabytes(module, dtype), "psnr": summary["psnr"],
                     "psnr_gt_mean": summary["psnr_gt_mean"]})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder that holds lol/ (default: $LLE_DATA)")
    args = parser.parse_args(argv)
    val = load_paired("val", args.data_dir)
    print("validation:", val.source)
    model, card = methods.load_shipped("kind")
    ratio = card["fixed_ratio"]
    generator, _ = methods.load_shipped("pix2pix")
    rows = (storage_rows(f"KinD (ratio {ratio:g})", model, lambda net, image: enhance_kind(net, image, ratio), val)
            + storage_rows("pix2pix", generator, enhance_pix2pix, val))
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    full = kind.PRESETS["full"].build()
    print(f"\nthe authors' full-width KinD: {count_parameters(full) / 1e6:.2f} M parameters, "
          + ", ".join(f"{stored_megabytes(full, dtype):.1f} MiB as {stored_as}" for stored_as, dtype in DTYPES.items()))


if __name__ == "__main__":
    main()
