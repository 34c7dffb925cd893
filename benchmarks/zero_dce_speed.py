"""Speed and memory of Zero-DCE and Zero-DCE++ inference on the CPU (or a GPU with --device cuda).

    python benchmarks/zero_dce_speed.py [--repeats 5] [--device cpu] [--no-subnormals] [--no-4k-zero-dce]

Prints:

* the median time to enhance a 1200x900 image with each network;
* the cost of subnormal weights: the same 1200x900 image through a Zero-DCE net holding as many subnormal float32
  weights as the authors' released ``Epoch99.pth`` (19,267), loaded directly (``load_state_dict``) and through the
  library (which sets them to zero); the direct one is timed once, since on a CPU it can take a minute;
* the peak memory of a 3840x2160 (4K) photo through Zero-DCE++ (scale factor 12) and through Zero-DCE (tiled by
  ``enhance``), each in a fresh process so that nothing else counts: resident memory, and with ``--device cuda``
  the peak GPU memory allocated by torch; with the time of that one call.

Untrained weights run exactly as fast as trained ones (subnormal ones excepted). Figures are printed, never
asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lle_lib.compare import peak_rss_mib
from lle_lib.models import DCENet, DCENetPP, enhance, load_official_weights
from lle_lib.weights import count_subnormals

#: The subnormal float32 numbers in the authors' released Zero-DCE weights (Zero-DCE++'s hold 685).
OFFICIAL_ZERO_DCE_SUBNORMALS = 19_267

#: The networks the memory child can build, by the name given after ``--child``.
CHILD_NETWORKS = {"zero_dce": lambda: DCENet(), "zero_dce_pp_12": lambda: DCENetPP(scale_factor=12)}
CHILD_TITLES = {"zero_dce": "Zero-DCE (tiled)", "zero_dce_pp_12": "Zero-DCE++ (scale 12)"}


def median_seconds(model, image: np.ndarray, repeats: int) -> float:
    enhance(model, image)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        enhance(model, image)  # returns a NumPy image: the device's work is done when it returns
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_once(model, image: np.ndarray) -> tuple[np.ndarray, float]:
    """The output of one ``enhance`` call and its wall time, without warm-up (for calls too slow to repeat)."""
    start = time.perf_counter()
    output = enhance(model, image)
    return output, time.perf_counter() - start


# --------------------------------------------------------------------------------------------------------------
# Subnormal weights
# --------------------------------------------------------------------------------------------------------------


def with_subnormals(state: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
    """A copy of ``state`` whose ``count`` smallest convolution weights (in magnitude) are made subnormal.

    Each is divided by the largest of them and multiplied by 1e-38 (below float32's smallest normal number,
    1.18e-38), which keeps its sign and their order, as weights that weight decay pushed towards zero would be;
    any that would round to zero is set to +-1e-44 instead. Ties may make a few more than ``count``.
    """
    names = [name for name in state if name.endswith(".weight")]
    magnitudes = torch.cat([state[name].abs().flatten() for name in names])
    threshold = magnitudes.kthvalue(count).values
    planted = dict(state)
    for name in names:
        weight = state[name]
        scaled = weight / threshold * 1e-38
        scaled = torch.where(scaled.abs() < 1e-44, torch.sign(weight) * 1e-44, scaled)
        planted[name] = torch.where(weight.abs() <= threshold, scaled, weight)
    return planted


def subnormal_section(image: np.ndarray, device: str, repeats: int) -> None:
    """Time a Zero-DCE net holding the authors' count of subnormals, loaded as is and through the library."""
    torch.manual_seed(0)
    state = with_subnormals(DCENet().state_dict(), OFFICIAL_ZERO_DCE_SUBNORMALS)
    as_is = DCENet()
    as_is.load_state_dict(state)  # bypasses the library: the subnormals stay
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Epoch99.pth"
        torch.save(state, path)
        flushed = load_official_weights(DCENet(), path)  # the library's path for the authors' file
    print(f"  Zero-DCE with {count_subnormals(as_is):,} subnormal weights (the authors' file holds "
          f"{OFFICIAL_ZERO_DCE_SUBNORMALS:,}); after the library's load: {count_subnormals(flushed)}")
    fast = median_seconds(flushed.to(device), image, repeats)
    slow_output, slow = timed_once(as_is.to(device), image)
    differ = np.abs(slow_output - enhance(flushed, image))
    print(f"    loaded directly (subnormals kept)   1200x900: {slow * 1e3:8.1f} ms (one run)")
    print(f"    loaded by the library (flushed)     1200x900: {fast * 1e3:8.1f} ms")
    print(f"    ratio {slow / fast:.1f}x; outputs differ at {int((differ > 0).sum())} of {differ.size:,} values, "
          f"by at most {differ.max():.1e}")


# --------------------------------------------------------------------------------------------------------------
# Peak memory, in a fresh process
# --------------------------------------------------------------------------------------------------------------


def peak_memory_child(network: str, width: int, height: int, device: str) -> None:
    """Run in a fresh process: enhance one image with ``CHILD_NETWORKS[network]``, print as JSON the peak resident
    set size (MiB) after import, after setup and in all, the peak GPU memory torch allocated during ``enhance``
    (MiB, None on the CPU) and the seconds of that one call."""
    before = peak_rss_mib()
    model = CHILD_NETWORKS[network]().to(device)
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32) * 0.2
    after_setup = peak_rss_mib()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = timed_once(model, image)[1]
    peak = peak_rss_mib()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    print(json.dumps({"after_import": before, "after_setup": after_setup, "peak": peak, "gpu_peak": gpu_peak,
                      "seconds": seconds}))


def report_peak_memory(network: str, device: str, width: int = 3840, height: int = 2160) -> None:
    child = subprocess.run([sys.executable, __file__, "--device", device, "--child", network, str(width),
                            str(height)], capture_output=True, text=True, check=True)
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"  {CHILD_TITLES[network]:<22s} {width}x{height}: peak resident memory {memory['peak']:.0f} MiB "
          f"({memory['peak'] - memory['after_setup']:.0f} MiB above the loaded model and image; "
          f"torch itself: {memory['after_import']:.0f} MiB); one call {memory['seconds']:.1f} s")
    if memory["gpu_peak"] is not None:
        print(f"    GPU peak allocated: {memory['gpu_peak']:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-subnormals", action="store_true",
                        help="skip the subnormal-weights timing (its slow run can take a minute on a CPU)")
    parser.add_argument("--no-4k-zero-dce", action="store_true",
                        help="skip Zero-DCE on the 4K photo (a few minutes on a 2-core CPU)")
    parser.add_argument("--child", nargs=3, metavar=("NETWORK", "W", "H"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        network, width, height = args.child
        peak_memory_child(network, int(width), int(height), device=args.device)
        return

    torch.manual_seed(0)
    image = np.random.default_rng(0).random((900, 1200, 3), dtype=np.float32) * 0.2
    print(f"{platform.machine()}, torch {torch.__version__.split('+')[0]}, {torch.get_num_threads()} threads, "
          f"device {args.device}; median of {args.repeats} runs")
    for name, model in (("Zero-DCE", DCENet()), ("Zero-DCE++ (scale 1)", DCENetPP(scale_factor=1)),
                        ("Zero-DCE++ (scale 12)", DCENetPP(scale_factor=12))):
        seconds = median_seconds(model.to(args.device), image, args.repeats)
        print(f"  {name:<22s} 1200x900: {seconds * 1e3:8.1f} ms")

    if not args.no_subnormals:
        subnormal_section(image, args.device, args.repeats)

    report_peak_memory("zero_dce_pp_12", args.device)
    if not args.no_4k_zero_dce:
        report_peak_memory("zero_dce", args.device)


if __name__ == "__main__":
    main()
