"""Time the classical baselines and the metrics on the CPU.

    python benchmarks/classical_speed.py [--size 600x400] [--repeats 5]

Prints the median wall-clock time of each method (and of PSNR, SSIM and LOE) on a synthetic dark image of the
given size. Timings depend on the machine; they are printed, never asserted by the tests.
"""
from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from lle_lib import classical, metrics
from lle_lib.data import darken
from timing import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="600x400", help="WIDTHxHEIGHT of the test image (default: LOL's 600x400)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    rng = np.random.default_rng(0)
    clean = np.clip(rng.random((height, width, 3)) * 0.3 + np.linspace(0.2, 0.8, width)[None, :, None], 0, 1)
    clean = clean.astype(np.float32)  # the dtype datasets deliver; float64 metrics run in double precision
    low = darken(clean, exposure=0.1, photons=500, read_noise=0.01, rng=rng)

    print(f"CPU: {platform.processor() or platform.machine()}, torch threads: {torch.get_num_threads()}, "
          f"image {width}x{height}, median of {args.repeats} runs")
    for name, method in classical.CLASSICAL_METHODS.items():
        print(f"  {name:<24s} {median_seconds(lambda: method(low), args.repeats) * 1e3:9.1f} ms")
    output = classical.gamma_correction(low)
    for name, metric in (("PSNR", metrics.psnr), ("SSIM", metrics.ssim),
                         ("LOE", metrics.lightness_order_error)):
        print(f"  metric {name:<17s} {median_seconds(lambda: metric(output, clean), args.repeats) * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
