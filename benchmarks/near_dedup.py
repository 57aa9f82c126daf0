"""Near-duplicate detection speed and quality: our numpy MinHash vs datasketch vs rensa, side by side.

    python benchmarks/near_dedup.py [--rows N] [--threshold 0.8] [--num-perm 128] [--repeats 7]

All three get the same job: the same texts (banking77 train + test, real customer messages with
natural near-duplicates), the same shingles (character 5-grams of the normalised text), 128
permutations, Jaccard threshold 0.8, and the same greedy rule: walk the rows in order, flag a row
that is a near-duplicate of an earlier kept row. Each library is used through its documented bulk
path (datasketch `MinHash.bulk`, rensa `RMinHash.from_token_sets`: one set of permutations for all
documents) and its LSH index. Timed from texts to flags, shingling included, pinned to one CPU core
(docs/s per core); the methods take turns, round after round, and each keeps its best round, so a
slow spell of the machine hits all of them alike. Quality: precision and recall of the flagged rows
against exact Jaccard on the first --exact-rows rows (all pairs compared exactly).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # pin before numpy starts its BLAS threads, so that they are pinned too
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import argparse  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from synth_datasets.checks.minhash import near_duplicates, optimal_bands, shingles  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


def load_texts(rows: int) -> list[str]:
    import csv

    texts = []
    for name in ("train.csv", "test.csv"):
        with open(DATA / name, newline="") as f:
            texts += [r["text"] for r in csv.DictReader(f)]
    reps = -(-rows // len(texts))
    return (texts * reps)[:rows]  # repeats past the end are exact duplicates, flagged by every method


def ours(texts, threshold, num_perm):
    flags, _, _ = near_duplicates(texts, threshold, num_perm=num_perm)
    return flags


def with_datasketch(texts, threshold, num_perm):
    from datasketch import MinHash, MinHashLSH

    # bulk: one MinHash's permutations copied to every document (a fresh MinHash(seed=1) per
    # document would seed a new random generator each time, most of datasketch's time)
    minhashes = MinHash.bulk([list(shingles(t)) for t in texts], num_perm=num_perm, seed=1)
    return greedy(minhashes, MinHashLSH(threshold=threshold, num_perm=num_perm), threshold)


def with_rensa(texts, threshold, num_perm):
    from rensa import RMinHash, RMinHashLSH

    bands, _ = optimal_bands(threshold, num_perm)
    while num_perm % bands:  # rensa needs bands to divide num_perm
        bands -= 1
    minhashes = RMinHash.from_token_sets([list(shingles(t)) for t in texts], num_perm=num_perm, seed=1)
    return greedy(minhashes, RMinHashLSH(threshold, num_perm, bands), threshold)


def greedy(minhashes, lsh, threshold):
    """The documented per-document loop both libraries are built for: query, then insert if new."""
    kept, flags = {}, []
    for i, m in enumerate(minhashes):
        dup = any(m.jaccard(kept[k]) >= threshold for k in lsh.query(m))
        flags.append(dup)
        if not dup:
            lsh.insert(i, m)
            kept[i] = m
    return flags


def exact(texts, threshold):
    sets = [shingles(t) for t in texts]
    flags = [False] * len(texts)
    kept: list[int] = []
    for j, s in enumerate(sets):
        if s and any(len(s & sets[i]) / len(s | sets[i]) >= threshold for i in kept):
            flags[j] = True
        else:
            kept.append(j)
    return flags


def cpu_line() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = set(next((line for line in info.splitlines() if line.startswith("flags")), "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return f"{model}, flags {' '.join(f for f in wanted if f in flags)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=13_083)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--exact-rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    texts = load_texts(args.rows)
    print(f"{len(texts)} texts, threshold {args.threshold}, {args.num_perm} permutations, char 5-grams, one core "
          f"({cpu_line()})")
    print(f"Python {platform.python_version()}, numpy {np.__version__}, datasketch {version('datasketch')}, "
          f"rensa {version('rensa')}; best (median) of {args.repeats} interleaved rounds")
    methods = {"datasketch": with_datasketch, "rensa": with_rensa, "synth_datasets": ours}
    for fn in methods.values():  # warm-up: imports, first-call costs
        fn(texts[:200], args.threshold, args.num_perm)
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            gc.collect()
            t0 = time.perf_counter()
            fn(texts, args.threshold, args.num_perm)
            seconds[name].append(time.perf_counter() - t0)
    speed = {name: len(texts) / min(s) for name, s in seconds.items()}
    median = {name: len(texts) / statistics.median(s) for name, s in seconds.items()}
    truth = np.array(exact(texts[: args.exact_rows], args.threshold))
    print(f"\n| method | docs/s per core | x datasketch | flagged (first {args.exact_rows}) | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, fn in methods.items():
        got = np.array(fn(texts[: args.exact_rows], args.threshold, args.num_perm))
        tp = int((got & truth).sum())
        print(f"| {name} | {speed[name]:,.0f} ({median[name]:,.0f}) | {speed[name] / speed['datasketch']:.1f} "
              f"({median[name] / median['datasketch']:.1f}) | {int(got.sum())} | "
              f"{tp / max(1, got.sum()):.3f} | {tp / max(1, truth.sum()):.3f} |")
    print(f"| exact Jaccard (all pairs) | | | {int(truth.sum())} | 1 | 1 |")


if __name__ == "__main__":
    main()
