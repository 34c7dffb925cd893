"""The book's command line, ``lle`` (also ``python -m lle_lib``), generated from the method registry.

::

    lle list                                              # every method, its family, weights and eval15 figures
    lle enhance zero_dce_pp photo.jpg -o out.png          # one photo
    lle enhance kind photos/ -o enhanced/ --light 3       # a folder, with a method's control
    lle enhance zero_dce_pp clip.mp4 -o out.mp4           # a video: same frame rate, sound copied
    lle train zero_dce --preset quick --out runs/q --export q.pt      # resumable; --export writes weights + card
    lle evaluate kind gamma --split val                   # the book's table, plain and GT-mean columns
    lle compare --methods all --split test --out results.csv   # every method, cost and significance
    lle download lime --data-dir ~/data                   # a dataset, checked (lle download --list: which)

Every option of ``lle enhance METHOD`` comes from the method's declared controls, and every option of
``lle train METHOD`` from its recipe dataclass (nested fields as ``--restoration.learning-rate``), so a new method
gets its command line by registering (:mod:`lle_lib.methods`). ``lle enhance METHOD --help`` lists them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import methods
from .config import RunContext

#: What ``lle enhance`` writes when the output is a folder: images as PNG, videos as MP4 (H.264).
OUTPUT_EXTENSION = ".png"
VIDEO_OUTPUT_EXTENSION = ".mp4"


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


# ----------------------------------------------------------------------------------------------------------------
# lle list
# ----------------------------------------------------------------------------------------------------------------


def _row(method, card: dict | None = None, weights: str = "") -> dict:
    card = card or {}
    return {"method": method.name, "family": method.family,
            "parameters": f"{card['parameters']:,}" if "parameters" in card else "",
            "weights": weights, "PSNR": card.get("test_psnr", ""), "SSIM": card.get("test_ssim", ""),
            "PSNR GT-mean": card.get("test_psnr_gt_mean", ""), "SSIM GT-mean": card.get("test_ssim_gt_mean", ""),
            "controls": ", ".join(control.name for control in method.controls) or "-",
            "measured on": card.get("test_data", "")}


def list_methods(args) -> int:
    import pandas as pd

    from .weights import PRETRAINED_DIR, read_card

    rows = []
    names = sorted(methods.available(args.family), key=lambda n: (methods.FAMILIES.index(methods.get(n).family), n))
    for name in names:
        method = methods.get(name)
        if not method.learned:
            rows.append(_row(method))
            continue
        others = len(method.shipped) - 1
        label = method.weights + (f" (+{others} more)" if others else "")
        rows.append(_row(method, read_card(PRETRAINED_DIR / f"{method.weights}.pt"), label))
    for path in args.weights or ():
        method, _, card = methods.load_weights_file(path)
        rows.append(_row(method, card, str(path)))
    table = pd.DataFrame(rows).set_index("method")
    sources = sorted({source for source in table["measured on"] if source})
    if len(sources) <= 1:          # one test set for every card: say it once, below the table
        table = table.drop(columns="measured on")
    with pd.option_context("display.max_colwidth", 40, "display.width", 200):
        print(table.to_string())
    print(f"\nPSNR (dB) and SSIM from each weight card, on {' / '.join(sources) or 'no test data'}: RGB in [0, 1], "
          f"no border crop.\nGT-mean rescales each output to its target's mean first (GT-informed: compare it only "
          f"with GT-mean figures).\nEach method's controls and their ranges: lle enhance METHOD --help.")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# lle enhance
# ----------------------------------------------------------------------------------------------------------------


def _output_name(path: Path) -> Path:
    """The output file name of an input: videos become ``.mp4``, images ``.png``."""
    from .video import is_video

    return path.with_suffix(VIDEO_OUTPUT_EXTENSION if is_video(path) else OUTPUT_EXTENSION)


def _inputs(paths: list[str]) -> list[tuple[Path, Path]]:
    """``(file, output name relative to the output folder)`` for every image or video given; folders are searched
    recursively (hidden files and folders skipped), keeping their relative paths."""
    from .images import IMAGE_EXTENSIONS, list_images
    from .video import VIDEO_EXTENSIONS

    found = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            media = sorted(set(list_images(path, recursive=True)) | set(_videos_in(path)))
            if not media:
                raise FileNotFoundError(f"{path}: no images or videos in this folder (images: "
                                        f"{', '.join(IMAGE_EXTENSIONS)}; videos: {', '.join(VIDEO_EXTENSIONS)})")
            found += [(item, _output_name(item.relative_to(path))) for item in media]
        elif path.is_file():
            found.append((path, _output_name(Path(path.name))))
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


def _videos_in(folder: Path) -> list[Path]:
    from .video import is_video

    return [path for path in folder.rglob("*") if is_video(path) and path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)]


def _targets(inputs: list[tuple[Path, Path]], output: Path) -> list[tuple[Path, Path]]:
    from .images import IMAGE_EXTENSIONS
    from .video import OUTPUT_EXTENSIONS

    single_file = output.suffix.lower() in IMAGE_EXTENSIONS + OUTPUT_EXTENSIONS and not output.is_dir()
    if len(inputs) == 1 and single_file:
        return [(inputs[0][0], output)]
    if single_file:
        raise ValueError(f"-o {output}: {len(inputs)} inputs need an output folder, not a file name")
    if output.is_file():
        raise ValueError(f"-o {output}: is a file; give a folder for several inputs")
    targets = [(source, output / name) for source, name in inputs]
    names = [target for _, target in targets]
    if len(set(names)) != len(names):
        raise ValueError("two inputs would write the same output file (same name in different places); "
                         "enhance them one folder at a time")
    return targets


def _parse_tile(text: str):
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile takes auto, none or a side in pixels, not {text!r}") from None


def enhance_files(args) -> int:
    import time

    from .images import ImageReadError, read_image, write_image
    from .progress import progress_bar
    from .video import VideoError, enhance_video, is_video

    method = methods.get(args.method)
    controls = {control.name: getattr(args, control.name) for control in method.controls}
    targets = _targets(_inputs(args.inputs), Path(args.output).expanduser())
    options = {"weights": args.weights, "device": args.device} if method.learned else {}
    card = methods.load(method, args.weights, device=args.device)[1] if method.learned else {}
    method.checked_controls({k: v for k, v in controls.items() if v is not None},      # fail before the first image
                            method.card_defaults(card) if method.learned else {})
    videos = [(source, target) for source, target in targets if is_video(source)]
    images = [(source, target) for source, target in targets if not is_video(source)]
    failed, start = [], time.perf_counter()
    for source, target in progress_bar(images, desc=f"{method.name}", unit="image",
                                       disable=args.quiet or not images):
        if source.resolve() == target.resolve():
            failed.append(f"{source}: the output would overwrite the input")
            continue
        try:
            image = read_image(source)
        except (ImageReadError, OSError, ValueError) as error:
            failed.append(str(error))
            continue
        write_image(target, methods.enhance(method, image, tile=args.tile, **options, **controls))
    for source, target in videos:
        try:
            enhance_video(method, source, target, smoothing=args.smoothing, progress=not args.quiet, **options,
                          **controls)
        except (VideoError, OSError, ValueError) as error:
            failed.append(str(error))
    for message in failed:
        print(f"skipped: {message}", file=sys.stderr)
    written = len(targets) - len(failed)
    where = targets[0][1] if len(targets) == 1 else Path(args.output)
    kinds = " and ".join(part for part in (f"{len(images)} image(s)" if images else "",
                                           f"{len(videos)} video(s)" if videos else "") if part)
    print(f"{method.name}: {written} of {kinds} written to {where} in {time.perf_counter() - start:.1f} s"
          + (f"; {len(failed)} skipped (listed above)" if failed else ""))
    return 1 if failed else 0


def _add_enhance(subparsers) -> None:
    parser = subparsers.add_parser("enhance", help="enhance photos with a method",
                                   description="Enhance image files or folders of images (searched recursively) "
                                               "with one method. Each method has its own options: "
                                               "lle enhance METHOD --help.")
    per_method = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    for name in methods.available():
        method = methods.get(name)
        sub = per_method.add_parser(name, help=f"{method.title}: {method.summary}",
                                    description=f"{method.title} ({method.family}; {method.summary}).")
        sub.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, or folders of them")
        sub.add_argument("-o", "--output", required=True,
                         help=f"an image (or video) file for one input; otherwise a folder (images as "
                              f"{OUTPUT_EXTENSION}, videos as {VIDEO_OUTPUT_EXTENSION}, keeping the folders' "
                              f"structure)")
        sub.add_argument("--tile", type=_parse_tile, default="auto", metavar="auto|none|N",
                         help="big photos in overlapping tiles of N pixels (auto: photos above 2 megapixels; "
                              "bounds the memory; the output is the same)")
        sub.add_argument("--smoothing", type=float, default=0.3, metavar="W",
                         help="videos: weight of the newest frame in the moving averages that remove flicker "
                              "(1: none; default 0.3)")
        if method.learned:
            sub.add_argument("--weights", help=f"shipped weights ({', '.join(method.shipped)}; default "
                                               f"{method.weights}) or a .pt file written by lle train --export")
            sub.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
        for control in method.controls:
            sub.add_argument(_option(control.name), dest=control.name, metavar=control.kind.__name__.upper(),
                             type=str if control.kind is Path else control.kind, help=control.describe()
                             + (f": {control.help}" if control.help else ""))
        sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        sub.set_defaults(run=enhance_files)


# ----------------------------------------------------------------------------------------------------------------
# lle train
# ----------------------------------------------------------------------------------------------------------------


def _add_run_options(parser, device: str) -> None:
    """The options of a :class:`~lle_lib.config.RunContext`: data folder, seed, device, progress bars."""
    parser.add_argument("--data-dir", help="folder that holds lol/ (default: $LLE_DATA, else synthetic pairs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the run and of the train/val split")
    parser.add_argument("--device", default=device, help=f"auto (CUDA when there is one), cpu or cuda; default "
                                                          f"{device}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _parse_optional(kind):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def train_method(args) -> int:
    import torch

    from .weights import STORAGE_DTYPES

    method = methods.learned(args.method)
    recipe = method.recipe_named(args.preset)
    overrides = {key: value for key, value in vars(args).items() if key.startswith("recipe:") and value is not None}
    recipe = methods.with_overrides(recipe, {key.removeprefix("recipe:"): (tuple(value) if isinstance(value, list)
                                                                          else value)
                                             for key, value in overrides.items()})
    run = RunContext(data_dir=args.data_dir, seed=args.seed, device=args.device, progress=not args.quiet,
                     early_stopping=getattr(args, "early_stopping", None),
                     plateau_patience=getattr(args, "plateau_patience", None))
    first = int(os.environ.get("RANK", "0")) == 0
    if first:
        print(f"{method.name}, preset {args.preset}: {recipe}")
    methods.train(method, recipe, args.out, run)
    if args.export and first:
        dtype = STORAGE_DTYPES.get(args.stored_dtype)
        card = methods.export(method, args.out, recipe, args.export, run, dtype=dtype)
        print(f"exported {args.export} ({card['parameters']:,} parameters): test PSNR {card.get('test_psnr')} dB, "
              f"SSIM {card.get('test_ssim')} on {card.get('test_data')}; card {Path(args.export).with_suffix('.json')}")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return 0


def _add_train(subparsers) -> None:
    from .weights import STORAGE_DTYPES

    parser = subparsers.add_parser("train", help="train a learned method (resumable)",
                                   description="Train a learned method through the book's trainer; rerun the same "
                                               "command to resume an interrupted run. Under torchrun "
                                               "(torchrun --nproc_per_node=N -m lle_lib train ...) it runs with DDP.")
    per_method = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    for name in methods.available():
        method = methods.get(name)
        if not method.learned:
            continue
        sub = per_method.add_parser(name, help=f"{method.title}: {method.summary}",
                                    description=f"Train {method.title}. Recipe fields not given keep the preset's "
                                                f"value; optional fields accept 'none'.")
        sub.add_argument("--preset", default="quick", choices=[*method.presets, *method.shipped],
                         help="quick (minutes on a CPU), full (the paper's recipe) or the recipe of shipped weights")
        sub.add_argument("--out", required=True, help="run folder: checkpoints (last.pt, best.pt); resumes there")
        sub.add_argument("--export", help="after training, write the selected weights here (.pt) with a JSON card")
        sub.add_argument("--stored-dtype", choices=sorted(STORAGE_DTYPES),
                         help="with --export: store the weights in this type, half the bytes of float32")
        _add_run_options(sub, device="auto")
        options = methods.recipe_options(method)
        rules = sub.add_argument_group("validation-driven rules, for any recipe (counted in validations)")
        for name, help_ in (("early_stopping", "stop once the best validation value is N validations old"),
                            ("plateau_patience", "halve the learning rate once more than N validations in a "
                                                 "row have not improved (ReduceLROnPlateau)")):
            if name not in options:   # a recipe with a field of that name sets it there
                rules.add_argument("--" + name.replace("_", "-"), type=int, metavar="N", help=help_)
        fields = sub.add_argument_group("recipe fields (override the preset)")
        for path, (kind, _) in options.items():
            option = "--" + path.replace("_", "-")
            if kind is bool:
                fields.add_argument(option, dest=f"recipe:{path}", action=argparse.BooleanOptionalAction,
                                    default=None)
            elif kind is tuple:
                fields.add_argument(option, dest=f"recipe:{path}", type=float, nargs="+", metavar="X")
            else:
                fields.add_argument(option, dest=f"recipe:{path}", type=_parse_optional(kind),
                                    metavar=kind.__name__.upper())
        sub.set_defaults(run=train_method)


# ----------------------------------------------------------------------------------------------------------------
# lle evaluate
# ----------------------------------------------------------------------------------------------------------------


def evaluate_methods(args) -> int:
    from .data import load_paired
    from .evaluate import DISPLAY_FORMATS, compare, identity

    if args.weights and len(args.methods) != 1:
        raise ValueError("--weights goes with one method")
    chosen = [methods.get(name) for name in args.methods]
    dataset = load_paired(args.split, args.data_dir, seed=args.seed)
    enhancers = {"input (unenhanced)": identity}
    for method in chosen:
        options = {"weights": args.weights, "device": args.device} if method.learned else {}
        enhancers[method.name] = methods.enhancer(method, **options)
    table = compare(enhancers, dataset, progress=not args.quiet, limit=args.limit)
    formatters = {column: fmt.format for column, fmt in DISPLAY_FORMATS.items() if column in table.columns}
    print(table.to_string(formatters=formatters))
    print(f"\n{table.attrs['caption']}. Plain columns compare outputs as they are; GT-mean columns rescale each "
          f"output to its target's mean first (GT-informed).")
    return 0


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score methods on a paired split (the book's table)",
                                   description="Score methods on the test split (LOL eval15 when $LLE_DATA holds "
                                               "LOL, else synthetic pairs) or the validation split, under both "
                                               "protocols (plain and GT-mean), next to the unenhanced input.")
    parser.add_argument("methods", nargs="+", metavar="METHOD", choices=methods.available(),
                        help="one or more of: " + ", ".join(methods.available()))
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--weights", help="with one learned method: shipped weights or a .pt file with a card")
    parser.add_argument("--limit", type=int, help="only the first N images")
    _add_run_options(parser, device="cpu")
    parser.set_defaults(run=evaluate_methods)


# ----------------------------------------------------------------------------------------------------------------
# lle compare
# ----------------------------------------------------------------------------------------------------------------


def compare_command(args) -> int:
    from .compare import compare_methods

    names = "all" if args.methods in (["all"], None) else args.methods
    for name in ([] if names == "all" else names):
        methods.get(name)                              # an unknown name fails before any work
    comparison = compare_methods(names, split=args.split, data_dir=args.data_dir, seed=args.seed,
                                 limit=args.limit, flops=not args.no_flops, device=args.device,
                                 progress=not args.quiet)
    table, significance = comparison.table, comparison.significance(seed=args.seed)
    out = Path(args.out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out)
    per_image = out.with_name(out.stem + "_per_image.csv")
    comparison.per_image.to_csv(per_image)
    significance_path = out.with_name(out.stem + "_significance.csv")
    significance.to_csv(significance_path)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(table.drop(columns=["training hardware"]).to_string())
        print(f"\nPSNR differences to {significance.attrs['against']}, per image, with 95% paired bootstrap "
              f"intervals (real: the interval excludes 0):")
        print(significance.to_string())
    print(f"\n{comparison.source}, {table.attrs['images']} images; protocol RGB in [0, 1], no border crop; GT-mean "
          f"columns rescale each output to its target's mean (GT-informed). Written: {out}, {per_image.name}, "
          f"{significance_path.name}")
    return 0


def _add_compare(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="every method on one split: quality, cost, significance",
                                   description="Score methods (default: every registered one) and the unenhanced "
                                               "input on a paired split, with parameters, FLOPs per megapixel and "
                                               "training cost, and paired bootstrap intervals on the PSNR "
                                               "differences; writes CSV files.")
    parser.add_argument("--methods", nargs="+", default=["all"], metavar="METHOD",
                        help="'all' (default) or names: " + ", ".join(methods.available()))
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--out", default="results.csv", help="the table (CSV); the per-image PSNRs and the "
                                                             "significance go beside it (default results.csv)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--no-flops", action="store_true", help="skip counting FLOPs")
    _add_run_options(parser, device="cpu")
    parser.set_defaults(run=compare_command)


# ----------------------------------------------------------------------------------------------------------------
# lle serve
# ----------------------------------------------------------------------------------------------------------------


def serve_app(args) -> int:
    from .app import Limits, serve       # Flask and waitress load here only: `lle` itself starts fast

    limits = Limits(max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels, max_in_flight=args.max_in_flight,
                    queue=args.queue)
    serve(args.host, args.port, threads=args.threads, device=args.device, limits=limits)
    return 0


def _add_serve(commands) -> None:
    defaults = _serve_defaults()
    parser = commands.add_parser("serve", help="a web page to enhance your own photos with any method",
                                 description="Serve a web page (Flask under waitress) where you drop photos, pick a "
                                             "method, compare before and after and download the results. It "
                                             "listens on this machine only unless --host says otherwise.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 makes the app "
                             "reachable from the network, with no login)")
    parser.add_argument("--port", type=int, default=8000, help="default 8000")
    parser.add_argument("--threads", type=int, default=4, help="request threads of waitress (default 4); photos are "
                                                               "enhanced by separate workers")
    parser.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb,
                        help=f"largest request, a photo and its reference image (default {defaults.max_upload_mb:g})")
    parser.add_argument("--max-pixels", type=int, default=defaults.max_pixels,
                        help=f"largest photo in pixels, checked before decoding (default {defaults.max_pixels:,})")
    parser.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight,
                        help=f"photos enhanced at the same time (default {defaults.max_in_flight}: each uses every "
                             f"core)")
    parser.add_argument("--queue", type=int, default=defaults.queue,
                        help=f"photos accepted and waiting; beyond, 503 with Retry-After (default {defaults.queue})")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto, for learned methods")
    parser.set_defaults(run=serve_app)


def _serve_defaults():
    """The app's default limits; :mod:`lle_lib.app` imports Flask only when the app is made, so this is quick."""
    from .app import Limits

    return Limits()


# ----------------------------------------------------------------------------------------------------------------
# lle download
# ----------------------------------------------------------------------------------------------------------------


def download_dataset(args) -> int:
    from .data import REGISTRY, DownloadError, download   # imports the registered entries (LOL, LIME, DICM)

    if args.list:
        width = max(map(len, REGISTRY))
        for name in sorted(REGISTRY):
            archive = REGISTRY[name]
            print(f"{name:<{width}}  {archive.description}\n{'':<{width}}  licence: {archive.license}")
        return 0
    if args.name is None:
        raise ValueError("name a dataset to download; lle download --list shows them")
    try:
        folder = download(args.name, args.data_dir, force=args.force, archive_path=args.archive,
                          progress=not args.quiet)
    except DownloadError as error:                          # the network or the archive: not the user's input
        print(f"lle download: error: {error}", file=sys.stderr)
        return 1
    print(f"{args.name} is in {folder}")
    return 0


def _add_download(commands) -> None:
    parser = commands.add_parser("download", help="download, check and unpack a dataset (--list: which)",
                                 description="Download a dataset of the library's registry, check it and unpack it "
                                             "into the data folder (it needs the network, unless --archive gives "
                                             "a file downloaded by hand). A complete install is left alone.")
    parser.add_argument("name", nargs="?", metavar="NAME", help="the dataset (lle download --list shows them)")
    parser.add_argument("--list", action="store_true", help="list the datasets, with their licences, and exit")
    parser.add_argument("--data-dir", help="where to unpack (default: $LLE_DATA, else the cache's data folder)")
    parser.add_argument("--force", action="store_true", help="download and unpack again even if it is complete")
    parser.add_argument("--archive", metavar="PATH", help="install from this archive, downloaded by hand")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=download_dataset)


# ----------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lle", description=__doc__.split("\n\n")[0],
                                     epilog="lle COMMAND --help for each command's options.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="every method, its family, parameters, weights and eval15 figures")
    listing.add_argument("--family", choices=methods.FAMILIES, help="only methods of this family")
    listing.add_argument("--weights", nargs="+", metavar="PT", help="also list these weight files (with cards)")
    listing.set_defaults(run=list_methods)
    _add_enhance(commands)
    _add_train(commands)
    _add_evaluate(commands)
    _add_compare(commands)
    _add_serve(commands)
    _add_download(commands)
    return parser


def _valid_options(args) -> str:
    """What a method does accept, for the message that refuses an unknown option."""
    method = methods.get(args.method) if getattr(args, "method", None) else None
    if method is not None and args.command == "enhance":
        controls = "; ".join(control.describe() for control in method.controls) or "none"
        return f"{method.name}'s controls: {controls} (lle enhance {method.name} --help)"
    if method is not None and args.command == "train":
        return f"{method.name}'s recipe fields: " + ", ".join(
            "--" + path.replace("_", "-") for path in methods.recipe_options(method)) + f" (lle train {method.name} --help)"
    return f"see lle {args.command} --help"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for refused input, with a one-line message)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.exit(2, f"lle {args.command}: error: unrecognized arguments: {' '.join(unknown)}\n"
                       f"{_valid_options(args)}\n")
    try:
        return args.run(args)
    except (ValueError, KeyError, FileNotFoundError, NotADirectoryError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        parser.exit(2, f"lle {args.command}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
