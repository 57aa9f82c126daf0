"""What the LM student costs on instruction rows, on this machine: a training step with and without
TRL's default gradient checkpointing, and scoring the 252 user-oriented instructions by reference
NLL the plain way (full-sequence logits, rows in file order) and the student's way (rows batched by
length, logits only at the answer positions), plus greedy answers.

    python benchmarks/lm_student_cost.py [--steps 3] [--max-length 256]

Trains only on Self-Instruct seed tasks; the user-oriented instructions are scored, never trained on.
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import date
from pathlib import Path

from datasets import Dataset, load_dataset

from synth_datasets.students.lm import LMStudentConfig, answer_suffix, train_lm_on
from synth_datasets.tasks.instruction import Instruction

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct"


def cpu_flags() -> str:
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def plain_nll(student, prompts, references, max_tokens=256, batch_size=32) -> list[float]:
    """Reference NLL with full-sequence logits and right padding, rows in their order."""
    import torch

    tok, model = student.tokenizer, student.model
    model.eval()  # LoRA dropout off, as the student's own scoring does
    suffix = answer_suffix(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    pairs = [(tok(p, add_special_tokens=False)["input_ids"], tok(r + suffix, add_special_tokens=False)["input_ids"][:max_tokens])
             for p, r in zip(texts, references)]
    out = []
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            longest = max(len(p) + len(a) for p, a in chunk)
            ids = torch.full((len(chunk), longest), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, (p, a) in enumerate(chunk):
                ids[i, :len(p) + len(a)] = torch.tensor(p + a)
                mask[i, :len(p) + len(a)] = 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for i, (p, a) in enumerate(chunk):
                positions = torch.arange(len(p) - 1, len(p) + len(a) - 1)
                out.append(float(-logp[i, positions, torch.tensor(a)].mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    task = Instruction()
    seeds, _ = task.standardize(load_dataset("json", data_files=str(DATA / "seed_tasks.jsonl"), split="train"), "seeds")
    test, _ = task.standardize(load_dataset("json", data_files=str(DATA / "user_oriented_instructions.jsonl"), split="train"), "test")
    data = Dataset.from_dict(task.conversations(seeds.select(range(8 * args.steps))))
    print(f"{date.today()}  cpu flags: {cpu_flags()}  embedded SmolLM2-135M-Instruct + LoRA r=16, fp32")
    student = None
    for checkpointing in (True, False):
        config = LMStudentConfig(max_steps=args.steps, batch_size=8, max_length=args.max_length)
        start = time.perf_counter()
        student = train_lm_on(data, config, training_overrides={"gradient_checkpointing": checkpointing})
        print(f"train: gradient_checkpointing={checkpointing}: {(time.perf_counter() - start) / args.steps:.1f} s a step "
              f"(8 rows, max_length {args.max_length}, model load included), loss {student.history['train_loss']:.6f}")
    talk = task.conversations(test)
    references = [c[-1]["content"] for c in talk["completion"]]
    start = time.perf_counter()
    plain = plain_nll(student, talk["prompt"], references)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = student.reference_nll(talk["prompt"], references)
    fast_s = time.perf_counter() - start
    print(f"reference NLL, {len(references)} rows: plain {plain_s:.1f} s (mean {sum(plain) / len(plain):.6f}), "
          f"student's {fast_s:.1f} s (mean {sum(fast) / len(fast):.6f}): {plain_s / fast_s:.1f}x")
    start = time.perf_counter()
    student.respond(talk["prompt"][:32], max_new_tokens=64)
    print(f"greedy answers: 32 rows, at most 64 tokens: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
