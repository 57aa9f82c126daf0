"""Issue 22's student-side levers, measured one by one on the same generated rows.

    python benchmarks/levers.py recipes/banking77-compare.yaml [--out docs/levers-banking77.json]

Per draw and k (the recipe's compare section), the rows generated for `compare` (served from the
datasets cache) pass every check of the recipe except the label check; then, with the classifier
student (frozen encoder + logistic head) fitted on embeddings:

- "label check": a classifier fitted on the draw's k real rows per label keeps a synthetic row
  when P(requested label) minus the largest other P is at least `margin` (margin 0 is the top-1
  rule `label_agreement` uses; "none" keeps every row);
- "weight": each kept synthetic row weighs `weight` in the student's loss, a real row 1;
- "two-stage": the student fitted on the kept synthetic rows, then on the real rows starting from
  (and regularised towards) that head, as `compare`'s two-stage arm;
- "CV": (margin, weight) chosen by `synth_datasets.tune.choose` (what `compare.tune` runs):
  stratified cross-validation on the draw's real rows only (the label check is fitted on the
  training folds too), over a smaller grid with weight 0 (real-only) included; ties go to the smaller weight, then the stricter margin. The synthetic rows were
  generated from the draw's k=5 real rows, so a synthetic row may paraphrase a validation row: in
  each fold, the synthetic rows whose prompt showed one of the fold's validation rows are left out
  of its training set (without this, a first run chose "no label check, weight 1" at k=5 on draw 0,
  which scored -3.2 points on the test split against +0.2 for the top-1 rule).

Every cell is the paired difference to real-only of the same draw and k on the real test split,
mean ± sd over draws. The grid cells are printed to say how close each setting got; nothing is
chosen on them: the CV rows are the ones a user gets.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np
import yaml

from synth_datasets.checks import run_checks
from synth_datasets.compare import draw_real, prepare, shown_texts
from synth_datasets.pipeline import Runner, check_context
from synth_datasets.recipe import recipe_from_dict
from synth_datasets.students.classifier import fit_head
from synth_datasets.students.encoder import get_encoder
from synth_datasets.tune import choose, kept_at, margins

MARGINS = (None, 0.0, 0.1, 0.25, 0.5)  # None: no label check
WEIGHTS = (0.25, 0.5, 1.0)
C = 30.0  # the CV row is synth_datasets.tune.choose with its own grid (compare.tune)


def head(x, y, n, weights=None, c=C, prior=None):
    w, b, _ = fit_head(x, y, n, c, sample_weight=weights, prior=prior)
    return w, b


def acc(model, xt, yt):
    w, b = model
    return float(((xt @ w.T + b).argmax(1) == yt).mean())


def blend_acc(xr, yr, xs, ys, mask, weight, xt, yt, n):
    x = np.concatenate([xr, xs[mask]])
    y = np.concatenate([yr, ys[mask]])
    wts = np.concatenate([np.ones(len(yr)), np.full(int(mask.sum()), weight)])
    return acc(head(x, y, n, wts), xt, yt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--out", default=None)
    parser.add_argument("--draws", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = Path(args.recipe)
    data = yaml.safe_load(path.read_text())
    variant = copy.deepcopy(data)
    variant["checks"] = [c for c in data["checks"] if (c if isinstance(c, str) else next(iter(c))) != "label_agreement"]
    recipe = recipe_from_dict(variant, base_dir=str(path.parent))
    cfg = recipe.compare
    prep = prepare(recipe)
    task = prep.task
    labels = list(task.labels)
    index = {name: i for i, name in enumerate(labels)}
    n = len(labels)
    test_texts = list(prep.test["text"])
    checks = recipe.build_checks()
    enc = get_encoder()
    xt = enc.encode(prep.test["text"])
    yt = np.array([index[x] for x in prep.test["label"]])
    ks = sorted(set(cfg.real_per_label))
    results = []
    t0 = time.perf_counter()
    for d in range(args.draws or cfg.draws):
        seed = recipe.seeds.seed + d
        drawn = draw_real(prep.train, labels, ks, seed)
        runner = Runner(recipe)  # as compare's synthesizer: generated from the smallest k's rows (cached)
        if task.guards_holdout:
            runner.holdout = test_texts
        generated = task.synthesize(drawn[ks[0]], runner, seed=seed, per_label=cfg.synthetic_per_label)
        seen = list(drawn[ks[0]]["text"])
        for k in ks:
            real = drawn[k]
            syn, _ = run_checks(generated, checks, context=check_context(recipe, task, real, test_texts=test_texts),
                                text_column="text", label_column="label", progress=False)
            shown = shown_texts(syn["messages"], seen)
            xr, yr = enc.encode(real["text"]), np.array([index[x] for x in real["label"]])
            xs, ys = enc.encode(syn["text"]), np.array([index[x] for x in syn["label"]])
            w0, b0 = head(xr, yr, n)
            real_acc = float(((xt @ w0.T + b0).argmax(1) == yt).mean())
            m = margins(xr, yr, xs, ys, n, C)
            grid = {}
            for margin in MARGINS:
                mask = kept_at(m, margin)
                for weight in WEIGHTS:
                    grid[f"{margin}|{weight}"] = blend_acc(xr, yr, xs, ys, mask, weight, xt, yt, n) - real_acc
                if margin in (None, 0.0) and mask.any():
                    first = head(xs[mask], ys[mask], n)
                    grid[f"{margin}|two-stage"] = acc(head(xr, yr, n, prior=first), xt, yt) - real_acc
            choice = choose(real["text"], real["label"], syn["text"], syn["label"], shown, labels, c=C)
            cm, cw = choice.margin, choice.weight
            chosen = 0.0 if cw == 0.0 else blend_acc(xr, yr, xs, ys, kept_at(m, cm), cw, xt, yt, n) - real_acc
            kept = {str(margin): int(kept_at(m, margin).sum()) for margin in MARGINS}
            row = {"draw": d, "k": k, "real_acc": real_acc, "synthetic_rows": len(syn), "kept": kept, "grid": grid,
                   "shown_per_row": statistics.mean(len(x) for x in shown),
                   "cv_choice": [cm, cw], "cv_delta": chosen,
                   "cv_scores": choice.scores}
            results.append(row)
            print(f"draw {d} k={k}: real {100 * real_acc:.1f}; CV chose margin {cm} weight {cw}: {100 * chosen:+.1f}; "
                  f"top-1 w1 {100 * grid['0.0|1.0']:+.1f}; ({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print("| label check | weight | " + " | ".join(f"k = {k}" for k in ks) + " |")
    print("|---|---:|" + "---:|" * len(ks))
    for margin in MARGINS:
        for weight in WEIGHTS + (("two-stage",) if margin in (None, 0.0) else ()):
            cells = []
            for k in ks:
                v = [100 * r["grid"][f"{margin}|{weight}"] for r in results if r["k"] == k]
                cells.append(f"{statistics.mean(v):+.1f} ± {statistics.stdev(v) if len(v) > 1 else 0:.1f}")
            print(f"| {'none' if margin is None else 'top-1' if margin == 0 else f'margin {margin}'} | {weight} | "
                  + " | ".join(cells) + " |")
    cells = []
    for k in ks:
        v = [100 * r["cv_delta"] for r in results if r["k"] == k]
        cells.append(f"{statistics.mean(v):+.1f} ± {statistics.stdev(v) if len(v) > 1 else 0:.1f}")
    print("| chosen by CV on real rows | | " + " | ".join(cells) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({"command": f"python benchmarks/levers.py {args.recipe}", "date": str(date.today()),
                                              "machine": platform.machine(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
