"""Comparing methods fairly: what each costs, and which differences in quality are real.

Two questions every comparison table raises and few papers answer:

* **What does it cost?** Parameters, the arithmetic of one pass (FLOPs per megapixel, counted by PyTorch's own
  :class:`torch.utils.flop_counter.FlopCounterMode`), time and memory on a given machine, and what training took.
* **Is the difference real?** eval15 has 15 images. A method 0.3 dB ahead on their mean may be ahead on eight of
  them and behind on seven. :func:`paired_bootstrap` resamples the *images* (both methods keep their scores on the
  same image, hence "paired") and gives an interval for the mean difference; a difference whose interval holds 0
  is not established by these images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


# ----------------------------------------------------------------------------------------------------------------
# Is a difference real?
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapInterval:
    """The mean of per-image differences ``a - b`` and its bootstrap interval ``[low, high]`` at ``confidence``;
    ``share_positive`` is the share of resamples in which ``a`` was ahead."""

    mean: float
    low: float
    high: float
    confidence: float
    share_positive: float
    images: int

    @property
    def real(self) -> bool:
        """Whether the interval excludes 0: these images establish which of the two is ahead."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, resamples: int = 10_000, confidence: float = 0.95,
                     seed: int = 0) -> BootstrapInterval:
    """The paired bootstrap of the mean difference between two methods' per-image scores on the same images.

    Draw ``n`` images with replacement, ``resamples`` times; each draw's statistic is the mean of ``a_i - b_i``
    over the drawn images. The interval is the percentile interval of those means (Efron and Tibshirani, *An
    Introduction to the Bootstrap*, 1993, ch. 13). Pairing matters: photos differ in difficulty far more than
    methods do, and subtracting per image removes that shared part before resampling.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two equally long lists of per-image scores, at least 2 images; got shapes "
                         f"{a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("per-image scores must be finite (an exact match gives an infinite PSNR: cap it first)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    differences = a - b
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[draws].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return BootstrapInterval(float(differences.mean()), float(low), float(high), confidence,
                             float((means > 0).mean()), len(differences))


# ----------------------------------------------------------------------------------------------------------------
# What does it cost?
# ----------------------------------------------------------------------------------------------------------------

#: The photo size FLOPs are counted on (then divided by its megapixels).
FLOP_SIZE = (1000, 1000)


def count_flops(function, *args, **kwargs) -> int:
    """The floating-point operations PyTorch counts while ``function(*args, **kwargs)`` runs
    (:class:`torch.utils.flop_counter.FlopCounterMode`). Its convention: a multiply-add is **2** FLOPs, and only
    matrix products and convolutions are counted (element-wise work such as activations, the curve iterations of
    Zero-DCE or a sigmoid is not), which is what dominates a network and what papers usually report."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function(*args, **kwargs)
    return int(counter.get_total_flops())


def flops_per_megapixel(method, size: tuple[int, int] = FLOP_SIZE, **controls) -> float | None:
    """FLOPs per megapixel of ``method`` (a registered name) with its shipped weights and default controls, on a
    dark photo of ``size``, in one pass (no tiling, so halos are not counted); None for a classical method, which
    does not run in PyTorch."""
    from . import methods

    method = methods.get(method)
    if not method.learned:
        return None
    image = np.full((*size, 3), 0.1, dtype=np.float32)
    flops = count_flops(methods.enhance, method, image, tile=None, **controls)
    return flops / (size[0] * size[1] / 1e6)


# ----------------------------------------------------------------------------------------------------------------
# The comparison table
# ----------------------------------------------------------------------------------------------------------------

#: The row of the unenhanced input, the floor every method must clear.
INPUT_ROW = "input (unenhanced)"


@dataclass
class Comparison:
    """Every method on one split: ``table`` (one row per method: quality under both protocols, LOE, time, and the
    cost columns) and ``per_image`` (one column of PSNR per method, one row per image), with ``source``."""

    table: "pd.DataFrame"
    per_image: "pd.DataFrame"
    source: str

    def significance(self, *, against: str | None = None, **bootstrap) -> "pd.DataFrame":
        """Each method's PSNR difference to ``against`` (default: the best mean) per image, with its paired
        bootstrap interval (:func:`paired_bootstrap`) and whether it is real."""
        import pandas as pd

        psnr = self.per_image.clip(upper=PSNR_CAP)
        against = against or psnr.mean().idxmax()
        rows = {}
        for name in psnr.columns:
            if name == against:
                continue
            interval = paired_bootstrap(psnr[name], psnr[against], **bootstrap)
            rows[name] = {"difference (dB)": interval.mean, "low": interval.low, "high": interval.high,
                          "resamples ahead": interval.share_positive, "real": interval.real}
        table = pd.DataFrame(rows).T
        table.attrs["against"] = against
        return table


#: Per-image PSNRs above this are capped before averaging differences (an exact match is infinite).
PSNR_CAP = 100.0


def _card_of(method) -> dict:
    from .weights import PRETRAINED_DIR, read_card

    return read_card(PRETRAINED_DIR / f"{method.weights}.pt") if method.learned else {}


def compare_methods(names: Sequence[str] | str = "all", dataset=None, *, split: str = "test", data_dir=None,
                    seed: int = 0, limit: int | None = None, flops: bool = True, device: str = "cpu",
                    progress: bool = True) -> Comparison:
    """Score every method in ``names`` (``"all"``: every registered method, found through the registry, so a new
    method appears without edits) and the unenhanced input on one paired split, with their cost.

    Columns: PSNR and SSIM (plain), PSNR and SSIM GT-mean (GT-informed: the output rescaled to the target's mean),
    LOE, seconds per image on this machine, parameters, FLOPs per megapixel (:func:`flops_per_megapixel`), and the
    training time and hardware from the weights' card."""
    import pandas as pd

    from . import methods
    from .data import load_paired
    from .evaluate import COLUMN_LABELS, evaluate, identity

    names = methods.available() if names == "all" else list(names)
    dataset = dataset if dataset is not None else load_paired(split, data_dir, seed=seed)
    rows, per_image = {}, {}
    for label, name in [(INPUT_ROW, None), *[(name, name) for name in names]]:
        method = None if name is None else methods.get(name)
        if method is None:
            enhance = identity
        elif method.learned:
            enhance = methods.enhancer(method, device=device)
        else:
            enhance = methods.enhancer(method)
        evaluation = evaluate(enhance, dataset, name=label, progress=progress, limit=limit)
        per_image[label] = evaluation.per_image.set_index("image")["psnr"]
        row = evaluation.summary.rename(COLUMN_LABELS).to_dict()
        card = _card_of(method) if method is not None else {}
        row.update({"family": method.family if method is not None else "",
                    "parameters": card.get("parameters", 0 if method is not None and not method.learned else None),
                    "GFLOPs / megapixel": (flops_per_megapixel(method) / 1e9 if flops and method is not None
                                           and method.learned else None),
                    "training (hours)": card["wall_time_seconds"] / 3600 if "wall_time_seconds" in card else None,
                    "training hardware": card.get("hardware", "")})
        rows[label] = row
    table = pd.DataFrame(rows).T
    table.index.name = "method"
    source = getattr(dataset, "source", type(dataset).__name__)
    table.attrs.update(source=source, images=len(next(iter(per_image.values()))))
    return Comparison(table, pd.DataFrame(per_image), source)


# ----------------------------------------------------------------------------------------------------------------
# Photos without targets
# ----------------------------------------------------------------------------------------------------------------


def enhance_all(names: Sequence[str] | str, images: Sequence[np.ndarray], *, device: str = "cpu",
                progress: bool = True) -> dict[str, list[np.ndarray]]:
    """Every method in ``names`` (``"all"``: every registered one) on every image, with default controls:
    ``{name: [output, ...]}``, the unenhanced input first under :data:`INPUT_ROW`."""
    from . import methods
    from .progress import progress_bar

    names = methods.available() if names == "all" else list(names)
    outputs = {INPUT_ROW: [np.asarray(image, dtype=np.float32) for image in images]}
    for name in progress_bar(names, desc="methods", disable=not progress):
        enhance = methods.enhancer(name, device=device) if methods.get(name).learned else methods.enhancer(name)
        outputs[name] = [enhance(image) for image in images]
    return outputs


def _no_reference_measures():
    """The measures :func:`no_reference_table` reports, by column label: functions of (output, input)."""
    from . import metrics

    return {"mean brightness": lambda output, low: metrics.mean_brightness(output),
            "LOE (lower is better)": lambda output, low: metrics.lightness_order_error(output, low),
            "noise estimate": lambda output, low: metrics.noise_estimate(output),
            "colourfulness": lambda output, low: metrics.colourfulness(output)}


def no_reference_table(outputs: dict[str, list[np.ndarray]]) -> "pd.DataFrame":
    """Measures that need no target, averaged over the photos, one row per method of :func:`enhance_all`'s
    ``outputs``: mean brightness; LOE against the input (does the method keep the order of lightness?); the noise
    estimate of Immerkaer (``metrics.noise_estimate``); colourfulness (Hasler and Suesstrunk). None of them says
    which output is *right*: they describe how each method differs, photo by photo, from the others."""
    import pandas as pd

    inputs = outputs[INPUT_ROW]
    measures = _no_reference_measures()
    rows = {name: {label: float(np.mean([measure(output, low) for output, low in zip(images, inputs)]))
                   for label, measure in measures.items()}
            for name, images in outputs.items()}
    table = pd.DataFrame(rows).T
    table.index.name = "method"
    return table


# ----------------------------------------------------------------------------------------------------------------
# Time and memory, each in a fresh process
# ----------------------------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` on Linux (reset by exec, so a child's own),
    ``ru_maxrss`` elsewhere (which a child inherits from its parent: less precise)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    import sys

    divisor = 2 ** 20 if sys.platform == "darwin" else 1024           # bytes on macOS, kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / divisor


def _measure_here(method: str, photo: str, repeats: int, device: str) -> dict:
    """In the child: read the photo with the library, enhance it ``repeats`` times (after a warm-up when more
    than one), report the median seconds, the read time and the peak memory."""
    import statistics
    import time

    from . import methods
    from .images import read_image

    options = {"device": device} if methods.get(method).learned else {}
    if options:
        methods.load(method, device=device)
    start = time.perf_counter()
    image = read_image(photo)
    read_seconds = time.perf_counter() - start
    times = []
    for _ in range(repeats + (1 if repeats > 1 else 0)):
        start = time.perf_counter()
        output = methods.enhance(method, image, **options)
        times.append(time.perf_counter() - start)
        del output
    times = times[1:] if repeats > 1 else times
    return {"seconds": statistics.median(times), "read_seconds": read_seconds, "peak_mib": peak_rss_mib()}


def measure_cost(method: str, photo, *, repeats: int = 1, device: str = "cpu", timeout: float | None = None
                 ) -> dict:
    """Time and peak memory of ``methods.enhance(method, read_image(photo))`` (default controls,
    ``tile="auto"``) in a fresh Python process, so that the memory is this call's alone (PyTorch and the library
    included: about 0.6 GB for this CUDA build of torch before any photo). Returns ``seconds`` (median of
    ``repeats``), ``read_seconds`` and ``peak_mib``, or ``error`` with the child's last line."""
    import json
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-m", "lle_lib.compare", "--child", method, str(photo), str(repeats),
                            device], capture_output=True, text=True, timeout=timeout)
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {child.returncode}"}
    return json.loads(child.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------
# Every method's cost at two sizes, measured once and recorded with the machine
# ----------------------------------------------------------------------------------------------------------------

#: The sizes the comparison times every method at, as (height, width): a 1-megapixel photo and a 4K UHD frame.
COST_SIZES = {"1200x900": (900, 1200), "3840x2160": (2160, 3840)}
#: The record of :func:`measure_costs` that the library ships (written by ``benchmarks/method_costs.py``).
COSTS_RECORD = Path(__file__).parent / "pretrained" / "method_costs.json"


def dark_photo(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A dark photo of any size made offline: scikit-image's coffee photo enlarged, darkened to LOL's level (mean
    about 0.06) and given sensor-like noise; float32 (H, W, 3) in [0, 1]. What the timings run on."""
    import skimage.data
    from PIL import Image

    photo = Image.fromarray(skimage.data.coffee()).resize((width, height), Image.BILINEAR)
    image = np.asarray(photo, dtype=np.float32) / 255 * 0.15
    noise = np.random.default_rng(seed).normal(0, 0.01, size=image.shape).astype(np.float32)
    return np.clip(image + noise, 0, 1)


def write_dark_photo(folder, height: int, width: int) -> Path:
    """:func:`dark_photo` as a JPEG in ``folder`` (once), as a camera would give it; returns its path."""
    from .images import write_image

    path = Path(folder) / f"dark_{width}x{height}.jpg"
    if not path.exists():
        write_image(path, dark_photo(height, width), quality=92)
    return path


def measure_costs(names: Sequence[str] | str = "all", sizes: dict[str, tuple[int, int]] = COST_SIZES, *,
                  device: str = "cpu", progress: bool = True, timeout: float | None = None) -> dict:
    """Time and peak memory of every method in ``names`` on a dark JPEG of each size in ``sizes``, each in a fresh
    process (:func:`measure_cost`), with the machine and the date: a record for :func:`cost_columns`.

    Every method runs with its default controls and ``tile="auto"``, as ``lle enhance`` runs it."""
    import tempfile
    import time

    from . import methods
    from .progress import progress_bar
    from .recipes import hardware_description

    names = methods.available() if names == "all" else list(names)
    record = {"machine": hardware_description(), "date": time.strftime("%Y-%m-%d"), "device": device,
              "sizes": {label: list(size) for label, size in sizes.items()}, "methods": {}}
    with tempfile.TemporaryDirectory(prefix="lle_costs_") as folder:
        photos = {label: write_dark_photo(folder, *size) for label, size in sizes.items()}
        jobs = [(name, label) for name in names for label in sizes]
        for name, label in progress_bar(jobs, desc="timing", disable=not progress):
            record["methods"].setdefault(name, {})[label] = measure_cost(name, photos[label], device=device,
                                                                        timeout=timeout)
    return record


def read_costs(path=COSTS_RECORD) -> dict:
    """The record of :func:`measure_costs` stored at ``path`` (by default the one the library ships)."""
    import json

    return json.loads(Path(path).read_text())


def cost_columns(record: dict, names: Sequence[str]) -> "pd.DataFrame":
    """One row per method in ``names``: seconds at each size of the record, and the peak memory at the largest;
    empty (NaN) for a method the record does not hold (one registered after it was measured)."""
    import pandas as pd

    labels = list(record["sizes"])
    largest = max(labels, key=lambda label: np.prod(record["sizes"][label]))
    rows = {}
    for name in names:
        measured = record["methods"].get(name, {})
        row = {f"seconds at {label}": measured.get(label, {}).get("seconds", np.nan) for label in labels}
        row[f"peak MiB at {largest}"] = measured.get(largest, {}).get("peak_mib", np.nan)
        rows[name] = row
    return pd.DataFrame(rows).T


if __name__ == "__main__":      # the child of measure_cost
    import json
    import sys

    _, flag, child_method, child_photo, child_repeats, child_device = sys.argv
    if flag != "--child":
        raise SystemExit("usage: python -m lle_lib.compare --child METHOD PHOTO REPEATS DEVICE")
    print(json.dumps(_measure_here(child_method, child_photo, int(child_repeats), child_device)))
