"""The book's command line, ``lle`` (also ``python -m lle_lib``), generated from the method registry.

::

    lle list                                              # every method, its family, weights and eval15 figures
    lle enhance zero_dce_pp photo.jpg -o out.png          # one photo
    lle enhance kind photos/ -o enhanced/ --light 3       # a folder, with a method's control
    lle train zero_dce --preset quick --out runs/q --export q.pt      # resumable; --export writes weights + card
    lle evaluate kind gamma --split val                   # the book's table, plain and GT-mean columns

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

#: What ``lle enhance`` writes when the output is a folder.
OUTPUT_EXTENSION = ".png"


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


def _inputs(paths: list[str]) -> list[tuple[Path, Path]]:
    """``(file, output name relative to the output folder)`` for every image given, folders searched recursively."""
    from .images import list_images

    found = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            images = list_images(path, recursive=True)
            if not images:
                raise FileNotFoundError(f"{path}: no images in this folder")
            found += [(image, image.relative_to(path).with_suffix(OUTPUT_EXTENSION)) for image in images]
        elif path.is_file():
            found.append((path, Path(path.name).with_suffix(OUTPUT_EXTENSION)))
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


def _targets(inputs: list[tuple[Path, Path]], output: Path) -> list[tuple[Path, Path]]:
    from .images import IMAGE_EXTENSIONS

    if len(inputs) == 1 and output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        return [(inputs[0][0], output)]
    if output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        raise ValueError(f"-o {output}: {len(inputs)} images need an output folder, not a file name")
    if output.is_file():
        raise ValueError(f"-o {output}: is a file; give a folder for several images")
    targets = [(source, output / name) for source, name in inputs]
    names = [target for _, target in targets]
    if len(set(names)) != len(names):
        raise ValueError("two inputs would write the same output file (same name in different places); "
                         "enhance them one folder at a time")
    return targets


def enhance_files(args) -> int:
    from .images import ImageReadError, read_image, write_image
    from .progress import progress_bar

    method = methods.get(args.method)
    controls = {control.name: getattr(args, control.name) for control in method.controls}
    targets = _targets(_inputs(args.inputs), Path(args.output).expanduser())
    options = {"weights": args.weights, "device": args.device} if method.learned else {}
    card = methods.load(method, args.weights, device=args.device)[1] if method.learned else {}
    method.checked_controls({k: v for k, v in controls.items() if v is not None},      # fail before the first image
                            method.card_defaults(card) if method.learned else {})
    failed = []
    for source, target in progress_bar(targets, desc=f"{method.name}", unit="image", disable=args.quiet):
        if source.resolve() == target.resolve():
            failed.append(f"{source}: the output would overwrite the input")
            continue
        try:
            image = read_image(source)
        except (ImageReadError, OSError, ValueError) as error:
            failed.append(str(error))
            continue
        write_image(target, methods.enhance(method, image, **options, **controls))
    for message in failed:
        print(f"skipped: {message}", file=sys.stderr)
    written = len(targets) - len(failed)
    where = targets[0][1] if len(targets) == 1 else Path(args.output)
    print(f"{method.name}: {written} of {len(targets)} image(s) written to {where}")
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
        sub.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
        sub.add_argument("-o", "--output", required=True,
                         help=f"an image file for one input; otherwise a folder (outputs as {OUTPUT_EXTENSION}, "
                              f"keeping the folders' structure)")
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
