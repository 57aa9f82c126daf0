"""Which prompt form gives more usable documents for the extraction task: a few-shot list continued in
completion mode, or a chat request? Same records, same seeds, same engine, side by side in one run.

    python benchmarks/extraction_prompt_form.py [--recipe recipes/mit-restaurant.yaml] [--records 40]

A document is usable when every value of its record is found in it (no parse error). Prints, per
form, usable documents, the reasons for the others, generated tokens and engine seconds.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

from synth_datasets import Generate
from synth_datasets.generate import generate
from synth_datasets.pipeline import load_seeds
from synth_datasets.recipe import load_recipe
from synth_datasets.tasks.extraction import STOPS


def cpu_flags() -> str:
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/mit-restaurant.yaml")
    parser.add_argument("--records", type=int, default=40)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    print(f"{date.today()}  cpu flags: {cpu_flags()}  recipe {args.recipe}, {args.records} records per form")
    for form in ("complete", "chat"):
        recipe.task.prompt_form = form
        task, seeds, _ = load_seeds(recipe)
        prompts = task.prompts(seeds, seed=recipe.seeds.seed, per_label=args.records)
        sampling = recipe.generator.sampling()
        if form == "complete":
            gen = Generate(model=recipe.generator.model, sampling=replace(sampling, stop=STOPS),
                           engine=recipe.engine, parser="extraction", prompt_column="prompt")
        else:
            gen = Generate(model=recipe.generator.model, sampling=sampling, engine=recipe.engine, parser="extraction")
        start = time.perf_counter()
        out = generate(prompts, gen, batch_size=len(prompts))
        seconds = time.perf_counter() - start
        reasons = Counter((e or "usable").split(":")[0] for e in out["parse_error"])
        print(f"{form:>8}: usable {reasons.pop('usable', 0)}/{len(out)}; not: {dict(reasons)}; "
              f"{sum(out['completion_tokens'])} generated tokens, {gen.stats.seconds:.1f} s engine "
              f"({seconds:.1f} s with start-up)", flush=True)
        for text in out["raw_completion"][:3]:
            print(f"          e.g. {text.strip()[:100]!r}")


if __name__ == "__main__":
    main()
