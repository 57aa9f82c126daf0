"""What does the noise do to the student? The MIT Restaurant compare with the recipe's noise and
without it, side by side in one run. "Without" keeps the recipe's `all_lower` (MIT's queries are in
lower case, and the uncased encoder sees no difference) and sets every other rate to 0.

Both variants use the same draws, the same generated documents (generation runs once: the second
variant is served from the datasets cache, since noise is applied after generation) and the same
checks; only the noise step differs, so the real-only students are the same and the paired
difference per (draw, k, arm) is the noise's effect on that student.

    python benchmarks/extraction_noise.py [recipes/mit-restaurant-compare.yaml] [--ks 50,100,200]

Writes each variant's compare.json/.md/.png under --out (default noise-ablation/) and prints the
table: strict entity F1 on the real test split, with noise, without, and the paired difference.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from datetime import date
from pathlib import Path

from synth_datasets.compare import run_compare, write_results
from synth_datasets.recipe import load_recipe
from synth_datasets.spans import NoiseConfig

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", nargs="?", default=str(ROOT / "recipes" / "mit-restaurant-compare.yaml"))
    parser.add_argument("--ks", default=None, help="k values to run (default: the recipe's compare.real_per_label)")
    parser.add_argument("--out", default="noise-ablation")
    args = parser.parse_args()

    noisy = load_recipe(args.recipe)
    if args.ks:
        noisy.compare.real_per_label = [int(k) for k in args.ks.split(",")]
    clean = copy.deepcopy(noisy)
    rates = NoiseConfig(**(noisy.task.noise or {})).as_dict()
    clean.task.noise = {name: (rates["all_lower"] if name == "all_lower" else value if name == "inside_values" else 0.0)
                        for name, value in rates.items()}
    print(f"{noisy.name}: noise {noisy.task.noise} vs {clean.task.noise}; k = {noisy.compare.real_per_label}; "
          f"{noisy.compare.draws} draws; {date.today()}", flush=True)

    results = {}
    for name, recipe in (("noise", noisy), ("clean", clean)):
        start = time.perf_counter()
        results[name] = run_compare(recipe, echo=None)
        write_results(results[name], Path(args.out) / name)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)

    def runs(name):
        return {(r["draw"], r["k"], r["arm"], r["ratio"]): r["entity_f1"] for r in results[name].runs}

    noise, clean_runs = runs("noise"), runs("clean")
    print("\n| k | student trained on | synthetic per real | entity F1 with noise | without | Δ noise - none (paired) | draws |")
    print("|---|---|---|---|---|---|---|")
    arms = sorted({key[1:] for key in noise if key in clean_runs}, key=lambda a: (a[0], a[1], a[2] or 0))
    for k, arm, ratio in arms:
        pairs = [(noise[key], clean_runs[key]) for key in noise if key[1:] == (k, arm, ratio) and key in clean_runs]
        with_, without = [100 * a for a, _ in pairs], [100 * b for _, b in pairs]
        delta = [a - b for a, b in zip(with_, without)]
        sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
        amount = f"{ratio:g}x" if ratio else "all kept"
        print(f"| {k} | {arm} | {amount} | {statistics.mean(with_):.1f} ± {sd(with_):.1f} | "
              f"{statistics.mean(without):.1f} ± {sd(without):.1f} | {statistics.mean(delta):+.1f} ± {sd(delta):.1f} | {len(pairs)} |")


if __name__ == "__main__":
    main()
