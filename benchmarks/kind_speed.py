"""Speed of KinD inference on the CPU (or a GPU with --device cuda), per network and in all.

    python benchmarks/kind_speed.py [--repeats 3] [--device cpu] [--size 600x400]

Prints the median time of each of KinD's three networks and of the whole chain on one image (LOL's 600x400 by
default), at the shipped widths (32, 16, 32) and at the authors' (32, 32, 32), plus the parameter counts. Untrained
weights run exactly as fast as trained ones. Figures are printed, never asserted by the tests.
"""
from __future__ import annotations

import argparse
import platform

import torch

from lle_lib.models.kind import KinD
from lle_lib.weights import count_parameters
from timing import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="600x400", help="WIDTHxHEIGHT of the test image")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"device {args.device}, image {width}x{height}")
    low = torch.rand(1, 3, height, width, device=args.device) * 0.2
    for label, widths in (("shipped widths (32, 16, 32)", (32, 16, 32)), ("authors' widths (32, 32, 32)", (32, 32, 32))):
        model = KinD(*widths).to(args.device).eval()
        with torch.no_grad():
            reflectance, illumination = model.decomposition(low)
            timings = {
                "decomposition": median_seconds(lambda: model.decomposition(low), args.repeats),
                "restoration": median_seconds(lambda: model.restoration(reflectance, illumination), args.repeats),
                "adjustment": median_seconds(lambda: model.adjustment(illumination, 5.0), args.repeats),
                "whole chain": median_seconds(lambda: model(low, 5.0), args.repeats),
            }
        print(f"\n{label}: {count_parameters(model):,} parameters")
        for name, seconds in timings.items():
            print(f"  {name:<14} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
