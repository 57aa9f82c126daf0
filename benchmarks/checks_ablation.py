"""What the checks buy: `compare` on the same generated rows with no checks, all checks, and each
check family left out once.

    python benchmarks/checks_ablation.py recipes/banking77-compare.yaml [--out docs/checks-ablation.md]

Generation is served from the datasets cache after the first variant (the variants differ only in
the checks), so each variant costs the checks and the students. With `generate_from: smallest_k`
the checks run once per k, against that k's real rows, so the rows kept are given per k. "no checks" keeps only rows that
parsed (a row without text cannot be trained on). The recipe's own `checks:` list is "all checks";
a family is left out by dropping every check of that family (synth_datasets.checks.FAMILIES).
Prints, and writes, one markdown table: rows kept, rows removed per check (mean per draw), and per k
the mean ± sd over draws of the blended (primary ratio) and synthetic-only (all rows) accuracy
differences to real-only.
"""

from __future__ import annotations

import argparse
import copy
import logging
import platform
import time
from datetime import date
from pathlib import Path

import yaml

from synth_datasets.checks import FAMILIES
from synth_datasets.compare import run_compare
from synth_datasets.recipe import recipe_from_dict


def variants(checks: list) -> dict[str, list]:
    names = [c if isinstance(c, str) else next(iter(c)) for c in checks]
    out = {"no checks (parsed only)": ["parsed"], "all checks": checks}
    for family, members in FAMILIES.items():
        if family == "structure":  # parsed stays: it is what makes a row trainable at all
            members = tuple(m for m in members if m != "parsed")
        if any(n in members for n in names):
            out[f"all but {family}"] = [c for c, n in zip(checks, names) if n not in members]
    if "judge" in names:  # the judge alone, since it shares its family with label_agreement
        out["all but judge"] = [c for c, n in zip(checks, names) if n != "judge"]
    if "label_agreement" in names:  # the label check's two other settings, everything else the same
        i = names.index("label_agreement")
        options = checks[i]["label_agreement"] if isinstance(checks[i], dict) else {}
        for label, change in (("top_k 3", {"top_k": 3}), ("relabel", {"action": "relabel"})):
            if all(options.get(k) == v for k, v in change.items()):
                continue
            out[f"all, label_agreement {label}"] = checks[:i] + [{"label_agreement": {**options, **change}}] + checks[i + 1:]
    return out


def cell(summary: list[dict], k: int, arm: str, ratio) -> str:
    row = next((r for r in summary if r["k"] == k and r["arm"] == arm and r["ratio"] == ratio), None)
    if row is None:
        return "not run"
    return f"{100 * row['delta']:+.1f} ± {100 * row['delta_sd']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--out", default=None, help="also write the table here (markdown)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these variant names")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = Path(args.recipe)
    data = yaml.safe_load(path.read_text())
    cfg = data["compare"]
    lines = [f"`python benchmarks/checks_ablation.py {args.recipe}`, {date.today()}, "
             f"{platform.machine()}; {len(data['seeds'].get('labels') or [])} labels listed (empty = all), "
             f"k = {cfg['real_per_label']}, {cfg.get('draws', 3)} draws, student {cfg.get('student', 'classifier')}.",
             "", "| checks | rows kept / requested (per draw) | removed per check (mean per draw) | k | "
             f"blended 0.5x Δ | blended {cfg.get('primary_ratio', 1.0):g}x Δ vs real-only | synthetic-only (all) Δ | "
             "two-stage 1x Δ | blended (all kept) Δ | real-only % |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, checks in variants(data["checks"]).items():
        if args.only and name not in args.only:
            continue
        variant = copy.deepcopy(data)
        variant["checks"] = checks
        recipe = recipe_from_dict(variant, base_dir=str(path.parent))
        t0 = time.perf_counter()
        result = run_compare(recipe, progress=False, echo=None)
        seconds = time.perf_counter() - t0
        for k in sorted({r["k"] for r in result.summary}):
            # the checks run once per k (against that k's real rows), so rows kept can differ by k
            gen = [g for g in result.generation if g["k"] == k]
            kept = sum(g["kept"] for g in gen) / len(gen)
            requested = gen[0]["requested"]
            removed: dict[str, float] = {}
            for g in gen:
                for c in g.get("checks", []):
                    removed[c["name"]] = removed.get(c["name"], 0) + c["removed"] / len(gen)
            removed_text = ", ".join(f"{n} {v:.0f}" for n, v in removed.items())
            real = next(r for r in result.summary if r["k"] == k and r["arm"] == "real-only")
            row = (f"| {name} | {kept:.0f} / {requested} | {removed_text} | {k} | "
                   f"{cell(result.summary, k, 'blended', 0.5)} | "
                   f"{cell(result.summary, k, 'blended', result.setup['primary_ratio'])} | "
                   f"{cell(result.summary, k, 'synthetic-only', None)} | {cell(result.summary, k, 'two-stage', 1.0)} | "
                   f"{cell(result.summary, k, 'blended', None)} | "
                   f"{100 * real['accuracy']:.1f} |")
            lines.append(row)
            print(row, flush=True)
        print(f"  ({name}: {seconds:.0f} s)", flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
