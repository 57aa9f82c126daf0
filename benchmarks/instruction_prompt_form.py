"""Which bootstrap prompt form the generator handles best: a numbered list continued in completion
mode, or a chat request answered with a JSON list of tasks.

    python benchmarks/instruction_prompt_form.py [--requests 48] [--recipe recipes/self-instruct.yaml]

The same engine, seed tasks, sampling and number of requests for both forms (recipes/self-instruct.yaml's
settings, one round: every request shows 8 seed tasks). For each form it prints what one request
yields: candidate instructions read, requests that gave none, Self-Instruct's filters, meta-text
(the meta_text check on the candidates), how many are novel (ROUGE-L <= 0.7 to the seeds and to each
other, in order), and novel instructions per engine-minute. No evaluation instruction is read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import re
import time
from collections import Counter
from datetime import date
from pathlib import Path

from synth_datasets.checks import MetaText
from synth_datasets.checks.instruction import blocked_pattern
from synth_datasets.checks.rouge import RougeNovelty
from synth_datasets.pipeline import Runner, load_seeds
from synth_datasets.recipe import load_recipe
from synth_datasets.tasks.instruction import candidate_problem

ROOT = Path(__file__).resolve().parents[1]


def cpu_flags() -> str:
    try:
        flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
    except (OSError, AttributeError):
        return platform.processor() or "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def measure(recipe, form: str, requests: int) -> dict:
    recipe = dataclasses.replace(recipe, task=dataclasses.replace(recipe.task, prompt_form=form))
    task, seeds, _ = load_seeds(recipe)
    cfg = task.config
    runner = Runner(recipe)
    gen = task.bootstrap_generator(runner)
    prompts = task.prompts(seeds, seed=recipe.seeds.seed, requests=requests,
                           prompt_tokens=runner.prompt_tokens(cfg.instruction_max_tokens))
    out = runner(prompts.remove_columns("messages" if form == "complete" else "prompt"), gen, stage=f"form-{form}")
    pattern = blocked_pattern(tuple(cfg.blocked_words))
    novelty = RougeNovelty(cfg.novelty_threshold)
    for text in seeds["instruction"]:
        novelty.add(text)
    candidates, empty, problems, novel, kept = [], 0, Counter(), 0, []
    for row in out:
        items, problem = task.read_candidates(row)
        if not items:
            empty += 1
        candidates += items
        for item in items:
            why = candidate_problem(item, pattern, cfg.min_words, cfg.max_words) if item else "empty"
            if why:
                problems[why.split(" (")[0]] += 1
                continue
            if novelty.offer(item)[0]:
                novel += 1
                kept.append(item)
    meta = MetaText().flag_batch({"text": candidates})["meta_text_flag"] if candidates else []
    seconds = gen.stats.seconds
    return {"form": form, "requests": len(out), "candidates": len(candidates), "per_request": len(candidates) / len(out),
            "no_candidate": empty, "filtered": sum(problems.values()), "meta_text": sum(meta),
            "novel": novel, "novel_per_request": novel / len(out), "engine_s": seconds,
            "novel_per_min": 60 * novel / seconds if seconds else float("nan"), "problems": dict(problems),
            "examples": kept[:5], "tokens": gen.stats.completion_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "self-instruct.yaml"))
    parser.add_argument("--requests", type=int, default=48)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    print(f"{date.today()}  cpu flags: {cpu_flags()}  model: {recipe.generator.model or 'embedded SmolLM2-135M-Instruct'}  "
          f"requests per form: {args.requests}")
    started = time.perf_counter()
    results = [measure(recipe, form, args.requests) for form in ("complete", "chat")]
    print("| form | requests | candidates / request | requests with none | Self-Instruct filters | meta-text | "
          "novel / request | generated tokens | engine s | novel / engine-min |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['form']} | {r['requests']} | {r['per_request']:.2f} | {r['no_candidate']} | {r['filtered']} | "
              f"{r['meta_text']} | {r['novel_per_request']:.2f} | {r['tokens']} | {r['engine_s']:.1f} | {r['novel_per_min']:.1f} |")
    for r in results:
        print(f"\n{r['form']}: filtered {r['problems']}; first novel ones:")
        for e in r["examples"]:
            print(f"  - {e[:140]}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s (engine start-up included)")


if __name__ == "__main__":
    main()
