"""Every method's time and peak memory at 1200x900 and 3840x2160 on this machine, recorded for the comparison chapter.

    python benchmarks/method_costs.py                       # every registered method (about 10 minutes on 2 cores)
    python benchmarks/method_costs.py --methods kind gamma  # some methods, merged into the existing record
    python benchmarks/method_costs.py --out costs.json      # somewhere else than the shipped record

Each method enhances a dark JPEG of each size once, with its default controls and ``tile="auto"``, in a fresh Python
process (``lle_lib.compare.measure_costs``), so that the peak resident memory is that call's own, PyTorch and the
library included (about 0.6 GB before any photo). The record, with the machine and the date, goes to
``lle_lib/pretrained/method_costs.json``, which the comparison chapter's quick preset reads; its full preset
measures again. Figures are printed, never asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lle_lib import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default="all", help="default: every registered method")
    parser.add_argument("--out", default=str(compare.COSTS_RECORD), help="the record to write (default: the shipped one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    record = compare.measure_costs(args.methods, device=args.device)
    out = Path(args.out)
    if args.methods != "all" and out.exists():                 # keep the other methods' figures
        old = json.loads(out.read_text())
        if old.get("machine") != record["machine"]:
            print(f"note: the record was measured on {old.get('machine')}; these figures come from {record['machine']}")
        old["methods"].update(record["methods"])
        record = {**old, "methods": old["methods"]}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{record['machine']}, {record['date']}")
    print(compare.cost_columns(record, list(record["methods"])).to_string(float_format=lambda v: f"{v:.2f}"))
    failures = {name: label for name, sizes in record["methods"].items() for label, result in sizes.items()
                if "error" in result}
    for name, label in failures.items():
        print(f"{name} at {label} failed: {record['methods'][name][label]['error']}")
    print(f"\nrecorded in {out}")


if __name__ == "__main__":
    main()
