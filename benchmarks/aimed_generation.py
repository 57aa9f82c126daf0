"""Does generation aimed at a real-only student's confusions pay? `compare` three times on the same draws:

    python benchmarks/aimed_generation.py recipes/banking77-compare.yaml [--aimed 10] [--out results.json]

1. the recipe as it is;
2. "more requests": `--aimed` more requests per label on average, shared by the cross-validated
   errors of a real-only student on the draw's real rows (synth_datasets.aim), with the recipe's own
   prompt: what more rows alone buy;
3. "aimed": the same requests, each also showing the real rows of the label it is most confused
   with as what not to write (compare.aimed_per_label).

Generation is cached per request, so 2 and 3 cost only their extra requests, and the recipe's own
rows are shared by all three. Prints per variant and k the blended and two-stage gains over
real-only (mean ± sd over draws), the rows kept per label, and the verdicts.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import logging
import platform
import time
from datetime import date
from pathlib import Path

import yaml

from synth_datasets import compare as compare_mod
from synth_datasets.compare import run_compare
from synth_datasets.recipe import recipe_from_dict


def cell(summary, k, arm, ratio) -> str:
    row = next((r for r in summary if r["k"] == k and r["arm"] == arm and r["ratio"] == ratio), None)
    return "not run" if row is None else f"{100 * row['delta']:+.1f} ± {100 * row['delta_sd']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--aimed", type=int, default=10, help="extra requests per label, on average")
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = Path(args.recipe)
    data = yaml.safe_load(path.read_text())
    original = compare_mod._aimed
    variants = {"recipe": (0, True), "more requests": (args.aimed, False), "aimed": (args.aimed, True)}
    lines = [f"`python benchmarks/aimed_generation.py {args.recipe} --aimed {args.aimed}`, {date.today()}, {platform.machine()}",
             "", "| variant | k | rows kept per label | blended 0.5x Δ | blended 1x Δ | blended, all kept Δ | two-stage 1x Δ | "
             "real-only % | verdict |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    results = {}
    for name, (aimed, contrast) in variants.items():
        if args.only and name not in args.only:
            continue
        variant = copy.deepcopy(data)
        variant["compare"]["aimed_per_label"] = aimed
        recipe = recipe_from_dict(variant, base_dir=str(path.parent))
        compare_mod._aimed = functools.partial(original, contrast=contrast)
        t0 = time.perf_counter()
        try:
            result = run_compare(recipe, progress=False, echo=None)
        finally:
            compare_mod._aimed = original
        seconds = time.perf_counter() - t0
        labels = len(result.setup["labels"])
        for v in result.verdicts:
            k = v["k"]
            gen = [g for g in result.generation if g["k"] == k]
            kept = sum(g["kept"] for g in gen) / len(gen) / labels
            real = next(r for r in result.summary if r["k"] == k and r["arm"] == "real-only")
            row = (f"| {name} | {k} | {kept:.1f} | {cell(result.summary, k, 'blended', 0.5)} | {cell(result.summary, k, 'blended', 1.0)} | "
                   f"{cell(result.summary, k, 'blended', None)} | {cell(result.summary, k, 'two-stage', 1.0)} | "
                   f"{100 * real['accuracy']:.1f} | {v['text']} |")
            lines.append(row)
            print(row, flush=True)
        print(f"  ({name}: {seconds:.0f} s)", flush=True)
        results[name] = {"seconds": round(seconds, 1), **result.as_dict()}
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text(json.dumps({"table": lines, "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
