"""Tune the classifier student by measurement: accuracy on banking77's full real test split.

    python benchmarks/classifier_student.py [--k 5 10 20] [--draws 3] [--c 0.3 1 3 10 30 100]

For each k (real rows per class, drawn at random per draw) and each C, fits the frozen-encoder +
logistic-regression head (synth_datasets.students.classifier) and prints mean ± sd accuracy over
the draws, with scikit-learn's LogisticRegression (default C=1) side by side as a reference.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from datasets import load_dataset

from synth_datasets.evaluation import score
from synth_datasets.students.classifier import ClassifierConfig, train_classifier
from synth_datasets.students.encoder import get_encoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


def draw(train, k: int, seed: int):
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(train["category"]):
        by_label.setdefault(label, []).append(i)
    import random

    rng = random.Random(seed)
    rows = [i for label in sorted(by_label) for i in rng.sample(by_label[label], k)]
    return train.select(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--c", type=float, nargs="+", default=[0.3, 1, 3, 10, 30, 100])
    args = ap.parse_args()
    data = load_dataset("csv", data_files={"train": str(DATA / "train.csv"), "test": str(DATA / "test.csv")})
    labels = sorted(set(data["train"]["category"]))
    index = {name: i for i, name in enumerate(labels)}
    test = data["test"]
    enc = get_encoder()
    start = time.perf_counter()
    test_x = enc.encode(test["text"], show_progress=True)
    print(f"embedded {len(test)} test rows in {time.perf_counter() - start:.1f} s")
    refs = [index[label] for label in test["category"]]
    for k in args.k:
        draws = [draw(data["train"], k, seed) for seed in range(args.draws)]
        for c in args.c:
            accs, t0 = [], time.perf_counter()
            for real in draws:
                student = train_classifier(real["text"], real["category"], ClassifierConfig(c=c), label_names=labels)
                preds = [index[p] for p in student.predict(test["text"], embeddings=test_x)]
                accs.append(score("classification", preds, refs)["accuracy"])
            print(f"k={k:>2} probe C={c:<6g} accuracy {100 * statistics.mean(accs):.1f} ± {100 * statistics.stdev(accs):.1f} "
                  f"({(time.perf_counter() - t0) / len(draws):.1f} s a fit)")
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            continue
        accs = []
        for real in draws:
            clf = LogisticRegression(max_iter=2000).fit(enc.encode(real["text"]), real["category"])
            accs.append(sum(p == r for p, r in zip(clf.predict(test_x), test["category"])) / len(test))
        print(f"k={k:>2} scikit-learn LogisticRegression(C=1) accuracy {100 * statistics.mean(accs):.1f} ± {100 * statistics.stdev(accs):.1f}")


if __name__ == "__main__":
    main()
