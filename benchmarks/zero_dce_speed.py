"""Speed and memory of Zero-DCE and Zero-DCE++ inference on the CPU (or a GPU with --device cuda).

    python benchmarks/zero_dce_speed.py [--repeats 5] [--device cpu]

Prints the median time to enhance a 1200x900 image with each network, and the peak resident memory of a
3840x2160 (4K) photo through Zero-DCE++ (scale factor 12), measured in a fresh process so that nothing else
counts. Untrained weights run exactly as fast as trained ones. Figures are printed, never asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from lle_lib.models import DCENet, DCENetPP, enhance


def median_seconds(model, image: np.ndarray, repeats: int) -> float:
    enhance(model, image)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        enhance(model, image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: VmHWM on Linux (reset by exec, unlike getrusage's ru_maxrss,
    which a child inherits from its parent), ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    divisor = 2**20 if sys.platform == "darwin" else 1024  # bytes on macOS, kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / divisor


def peak_memory_child(width: int, height: int, scale_factor: int, device: str) -> None:
    """Run in a fresh process: enhance one image, print the peak resident set size (MiB) as JSON."""
    before = peak_rss_mib()
    model = DCENetPP(scale_factor=scale_factor).to(device)
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32) * 0.2
    after_setup = peak_rss_mib()
    enhance(model, image)
    peak = peak_rss_mib()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    print(json.dumps({"after_import": before, "after_setup": after_setup, "peak": peak, "gpu_peak": gpu_peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=3, type=int, metavar=("W", "H", "SCALE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        peak_memory_child(*args.child, device=args.device)
        return

    torch.manual_seed(0)
    image = np.random.default_rng(0).random((900, 1200, 3), dtype=np.float32) * 0.2
    print(f"{platform.machine()}, torch {torch.__version__.split('+')[0]}, {torch.get_num_threads()} threads, "
          f"device {args.device}; median of {args.repeats} runs")
    for name, model in (("Zero-DCE", DCENet()), ("Zero-DCE++ (scale 1)", DCENetPP(scale_factor=1)),
                        ("Zero-DCE++ (scale 12)", DCENetPP(scale_factor=12))):
        seconds = median_seconds(model.to(args.device), image, args.repeats)
        print(f"  {name:<22s} 1200x900: {seconds * 1e3:8.1f} ms")

    child = subprocess.run([sys.executable, __file__, "--device", args.device, "--child", "3840", "2160", "12"],
                           capture_output=True, text=True, check=True)
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"  Zero-DCE++ (scale 12) 3840x2160: peak resident memory {memory['peak']:.0f} MiB "
          f"({memory['peak'] - memory['after_setup']:.0f} MiB above the loaded model and image; "
          f"torch itself: {memory['after_import']:.0f} MiB)")
    if memory["gpu_peak"] is not None:
        print(f"  GPU peak allocated: {memory['gpu_peak']:.0f} MiB")


if __name__ == "__main__":
    main()
