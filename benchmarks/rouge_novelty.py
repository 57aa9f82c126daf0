"""Self-Instruct's ROUGE-L novelty filter: rouge-score the Alpaca way vs synth_datasets.checks.rouge, side by side.

    python benchmarks/rouge_novelty.py [--n 5000] [--threshold 0.7] [--seed 0]

Both get the same job, Self-Instruct's greedy rule: walk --n generated instructions in order, drop one
whose ROUGE-L F-measure against any instruction kept so far (the 175 Self-Instruct seed instructions
included) is > threshold. The instructions are built deterministically from the seeds (words swapped,
dropped, inserted or replaced, two seeds mixed, clauses recombined, earlier outputs reworded), so
that a good share are near-duplicates and many pairs sit close to the threshold.

(a) rouge-score as Alpaca's generate_instruction.py uses it: every instruction tokenized once with
    `scorer._tokenizer.tokenize`, then `rouge_scorer._score_lcs(new, old).fmeasure` against every kept
    one (one process; Alpaca spreads the same calls over a Pool);
(b) ours: `novel(candidates, pool=seeds)`, tokenizing included.
Timed from texts to decisions. Agreement: per-candidate keep/drop decisions, and the max scores where
they decide (>= threshold) compared bit for bit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import re
import time
from pathlib import Path

from synth_datasets.checks.rouge import novel, rouge_tokens

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct" / "seed_tasks.jsonl"
FILLERS = ["please", "briefly", "the", "a", "given", "following", "new", "simple", "short", "detailed", "each",
           "now", "also", "carefully", "then", "some", "your", "two", "best", "list"]
OPENERS = ["Please", "Can you", "Now,", "Try to", "I want you to", "Your task:", "Quickly", "In one paragraph,"]


def load_seeds() -> list[str]:
    with open(SEEDS) as f:
        return [json.loads(line)["instruction"] for line in f if line.strip()]


def edit(words: list[str], rng: random.Random, vocab: list[str], k: int) -> list[str]:
    words = list(words)
    for _ in range(k):
        op = rng.random()
        if op < 0.25 and len(words) > 2:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op < 0.5 and len(words) > 3:
            del words[rng.randrange(len(words))]
        elif op < 0.75:
            words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS if rng.random() < 0.5 else vocab))
        elif words:
            words[rng.randrange(len(words))] = rng.choice(vocab)
    return words


def clauses(text: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<=[,.;:?])\s+", text) if c.strip()]


def make_instructions(seeds: list[str], n: int, seed: int = 0) -> list[str]:
    """n instructions made from the seeds, the same for the same (seeds, n, seed)."""
    rng = random.Random(seed)
    vocab = sorted({w for s in seeds for w in s.split()})
    out: list[str] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.4:  # a seed, lightly to heavily edited
            words = edit(rng.choice(seeds).split(), rng, vocab, rng.choice([1, 2, 4, 6, 8, 10]))
        elif r < 0.55 and out:  # an earlier output reworded: generators repeat themselves
            words = edit(rng.choice(out[-300:]).split(), rng, vocab, rng.choice([2, 3, 5, 7, 9]))
        elif r < 0.75:  # two seeds mixed: the start of one, the end of another
            a, b = rng.choice(seeds).split(), rng.choice(seeds).split()
            words = a[: rng.randint(1, len(a))] + b[rng.randint(0, len(b) - 1):]
            words = edit(words, rng, vocab, rng.choice([0, 1, 2]))
        elif r < 0.9:  # clauses of two seeds recombined
            parts = clauses(rng.choice(seeds)) + clauses(rng.choice(seeds))
            rng.shuffle(parts)
            words = " ".join(parts[: rng.randint(1, len(parts))]).split()
            words = edit(words, rng, vocab, rng.choice([0, 1, 2]))
        else:  # a seed with an opener
            words = rng.choice(OPENERS).split() + edit(rng.choice(seeds).split(), rng, vocab, rng.choice([0, 1, 3]))
        out.append(" ".join(words) or rng.choice(seeds))
    return out


def with_rouge_score(candidates: list[str], pool: list[str], threshold: float) -> list[tuple[bool, float]]:
    """Alpaca's loop: pre-tokenize, `_score_lcs(new, old)` against every kept instruction."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    kept_tokens = [scorer._tokenizer.tokenize(t) for t in pool]
    out = []
    for text in candidates:
        new = scorer._tokenizer.tokenize(text)
        scores = [rouge_scorer._score_lcs(new, old).fmeasure for old in kept_tokens]
        best = max(scores, default=0.0)
        keep = best <= threshold
        if keep:
            kept_tokens.append(new)
        out.append((keep, best))
    return out


def cpu_flags() -> str:
    line = next((x for x in open("/proc/cpuinfo") if x.startswith("flags")), "")
    have = set(line.split())
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in have) or "none of avx2/avx512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="generated instructions to filter")
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0, help="seed of the instruction generator")
    parser.add_argument("--skip-rouge-score", action="store_true", help="time ours only")
    args = parser.parse_args()

    seeds = load_seeds()
    candidates = make_instructions(seeds, args.n, args.seed)
    print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}, flags {cpu_flags()}, "
          f"Python {platform.python_version()}, one process")
    mean_tokens = sum(len(rouge_tokens(t)) for t in candidates) / max(len(candidates), 1)
    print(f"{args.n} generated instructions ({mean_tokens:.1f} tokens on average) against the {len(seeds)} seeds "
          f"+ those kept, ROUGE-L > {args.threshold} dropped\n")

    t0 = time.perf_counter()
    ours = novel(candidates, pool=seeds, threshold=args.threshold)
    t_ours = time.perf_counter() - t0
    kept_ours = sum(k for k, _, _ in ours)
    if args.skip_rouge_score:
        print(f"synth_datasets: kept {kept_ours} of {args.n} in {t_ours:.2f} s")
        return

    t0 = time.perf_counter()
    ref = with_rouge_score(candidates, seeds, args.threshold)
    t_ref = time.perf_counter() - t0
    kept_ref = sum(k for k, _ in ref)

    agree = sum(a[0] == b[0] for a, b in zip(ours, ref))
    deciding = [(a[1], b[1]) for a, b in zip(ours, ref) if b[1] >= args.threshold]
    same_scores = sum(a == b for a, b in deciding)
    near = sum(abs(b[1] - args.threshold) <= 0.05 for b in ref)
    ties = sum(b[1] == args.threshold for b in ref)

    print("| method | kept | dropped | seconds | instructions/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, kept, secs in (("rouge-score 0.1.2 (Alpaca loop)", kept_ref, t_ref), ("synth_datasets", kept_ours, t_ours)):
        print(f"| {name} | {kept} | {args.n - kept} | {secs:.2f} | {args.n / secs:,.0f} | {t_ref / secs:.1f}x |")
    print(f"\ndecisions agree: {agree}/{args.n} ({100 * agree / args.n:.2f}%)")
    print(f"max score bit-identical where >= threshold: {same_scores}/{len(deciding)}")
    print(f"candidates whose max score is within 0.05 of the threshold: {near}; exactly at it: {ties}")


if __name__ == "__main__":
    main()
