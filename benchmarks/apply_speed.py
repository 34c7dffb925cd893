"""Speed and memory of the book's methods on big photos and on video, on this machine's CPU.

    python benchmarks/apply_speed.py                     # everything below (about 10 minutes on 2 cores)
    python benchmarks/apply_speed.py --only 12mp         # one section: 12mp, 4k, video
    python benchmarks/apply_speed.py --methods kind gamma --only 4k
    python benchmarks/apply_speed.py --only 4k --size 4032x3024 --methods kind pix2pix   # 12 MP, every network

Prints:

* **12 MP**: a 4032x3024 photo (a JPEG read from disk, as a phone would give it) through Zero-DCE++ with its
  default controls (``scale=0``: the curve estimated on a copy shrunk to about 0.1 megapixels, enlarged tile by
  tile): the time of ``methods.enhance`` (median of 3 after a warm-up) and the process's peak resident memory;
* **4K**: a 3840x2160 photo through every registered method (``tile="auto"``: networks run in overlapping tiles),
  one call each: seconds and peak resident memory;
* **video**: frames per second of ``lle_lib.video.enhance_video`` on a 1280x720 clip with Zero-DCE++, decoding and
  encoding included.

Each measurement runs in a fresh Python process so that its peak memory is its own (``VmHWM`` from
``/proc/self/status``; photos through ``lle_lib.compare.measure_cost``). The figure includes PyTorch itself: importing this CUDA build of torch takes about 0.5 GB of
resident memory before any image is read, which the line "torch and the library" reports. Figures are printed,
never asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


#: The sizes measured: a 12-megapixel phone photo (4:3) and a 4K UHD frame.
PHOTO_12MP = (3024, 4032)
FRAME_4K = (2160, 3840)
FRAME_720P = (720, 1280)


def child_video(method: str, height: int, width: int, frames: int) -> dict:
    """In a fresh process: write a clip of ``frames`` dark frames, enhance it to another file, time it."""
    from lle_lib import compare, video
    from lle_lib.compare import peak_rss_mib

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "clip.mp4", Path(folder) / "out.mp4"
        video.write_test_clip(source, compare.dark_photo(height, width), frames=frames, fps=25, noise=0.01)
        start = time.perf_counter()
        video.enhance_video(method, source, target, progress=False)
        seconds = time.perf_counter() - start
    return {"fps": frames / seconds, "seconds": seconds, "peak_mib": peak_rss_mib()}


def run_child(*arguments: str) -> dict:
    child = subprocess.run([sys.executable, __file__, "--child", *arguments], capture_output=True, text=True)
    if child.returncode != 0:
        return {"error": child.stderr.strip().splitlines()[-1] if child.stderr.strip() else f"exit {child.returncode}"}
    return json.loads(child.stdout.strip().splitlines()[-1])


def baseline() -> dict:
    """Peak memory of a process that imports torch and the library and discovers every method, and no more."""
    from lle_lib import methods
    from lle_lib.compare import peak_rss_mib

    methods.available()
    return {"peak_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("12mp", "4k", "video"), help="one section only")
    parser.add_argument("--methods", nargs="+", help="the methods of the 4K section (default: every method)")
    parser.add_argument("--size", metavar="WxH", help="the size of the every-method section (default 3840x2160; "
                                                     "4032x3024 for a 12-megapixel photo)")
    parser.add_argument("--frames", type=int, default=50, help="frames of the 720p clip (default 50: 2 s at 25 fps)")
    parser.add_argument("--json", help="also write every figure to this JSON file (the comparison chapter reads "
                                       "benchmarks/results/apply_speed.json)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "baseline":
            print(json.dumps(baseline()))
        else:
            print(json.dumps(child_video(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))))
        return

    import torch

    from lle_lib import methods
    from lle_lib.compare import measure_cost, write_dark_photo

    print(f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__.split('+')[0]} "
          f"({torch.get_num_threads()} threads), CPU only")
    from lle_lib.recipes import hardware_description

    record = {"machine": f"{hardware_description()}; {os.cpu_count()} CPU cores", "date": time.strftime("%Y-%m-%d"),
              "baseline": run_child("baseline")}
    print(f"torch and the library, every method discovered: peak resident memory "
          f"{record['baseline']['peak_mib']:.0f} MiB")
    folder = Path(tempfile.mkdtemp(prefix="lle_apply_speed_"))
    if args.only in (None, "12mp"):
        height, width = PHOTO_12MP
        result = measure_cost("zero_dce_pp", write_dark_photo(folder, height, width), repeats=3)
        record["12mp"] = result
        print(f"\n12 MP ({width}x{height}) through Zero-DCE++ (default controls, tile='auto'):")
        print(f"  enhance {result['seconds']:.2f} s (median of 3), reading the JPEG {result['read_seconds']:.2f} s; "
              f"peak resident memory {result['peak_mib']:.0f} MiB")
    if args.only in (None, "4k"):
        height, width = (int(side) for side in reversed(args.size.split("x"))) if args.size else FRAME_4K
        print(f"\n{'4K ' if (height, width) == FRAME_4K else ''}({width}x{height}), every method, one call each "
              f"(tile='auto'):")
        path = write_dark_photo(folder, height, width)
        for name in args.methods or methods.available():
            result = measure_cost(name, path)
            record.setdefault(f"every_method_{width}x{height}", {})[name] = result
            if "error" in result:
                print(f"  {name:<24s} failed: {result['error']}")
            else:
                print(f"  {name:<24s} {result['seconds']:7.2f} s   peak resident memory {result['peak_mib']:6.0f} MiB")
    if args.only in (None, "video"):
        height, width = FRAME_720P
        result = run_child("video", "zero_dce_pp", str(height), str(width), str(args.frames))
        record["video_720p"] = result
        if "error" in result:
            print(f"\nvideo: failed: {result['error']}")
        else:
            print(f"\nvideo, {width}x{height}, {args.frames} frames through Zero-DCE++ (decode, enhance, encode): "
                  f"{result['fps']:.1f} frames per second; peak resident memory {result['peak_mib']:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"\nrecorded in {args.json}")


if __name__ == "__main__":
    main()
