"""Generated tokens/s through the `Dataset.map` pipeline, divided by one raw `LLM.chat` over all prompts.

    python benchmarks/generation_throughput.py              # 256 prompts, 48 tokens each (a few minutes here)
    python benchmarks/generation_throughput.py --size 2048  # scale up on a bigger machine

Same engine, same prompts (banking77 classification requests), fixed output length (`ignore_eos`,
so both sides generate exactly size x max_tokens tokens), a warm-up pass over all prompts first,
then raw and pipeline runs interleaved `--repeats` times, alternating which goes first. Prints tokens/s for each and the ratio of the totals.
Target (issue 2): ratio >= 0.95. Results and the commands that made them: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

from datasets import load_dataset

from synth_datasets import Generate, SamplingConfig
from synth_datasets.engine import EngineConfig, get_engine
from synth_datasets.tasks import classification

BANKING = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"


def make_prompts(size: int):
    seeds = load_dataset("csv", data_files=str(BANKING), split="train").shuffle(seed=0).select(range(400))
    labels = sorted(set(seeds["category"]))
    per_label = -(-size // len(labels))
    prompts = classification.classification_prompts(seeds, labels, per_label=per_label, label_column="category")
    return prompts.select(range(size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="number of prompts")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    args = parser.parse_args()

    config = EngineConfig(model=args.model, max_model_len=1024)
    sampling = SamplingConfig(temperature=0.8, max_tokens=args.max_tokens, ignore_eos=True)
    prompts = make_prompts(args.size)
    conversations = prompts["messages"]
    engine = get_engine(config)
    # Warm-up over every prompt: the first pass pays one-off costs (allocation, vLLM's prefix cache
    # filling) that would otherwise land on whichever side runs first.
    engine.chat(conversations, sampling, use_tqdm=False)

    def raw() -> tuple[float, float]:
        start = time.perf_counter()
        outputs = engine.chat(conversations, sampling, use_tqdm=False)
        return sum(o.completion_tokens for o in outputs), time.perf_counter() - start

    def pipeline() -> tuple[float, float]:
        start = time.perf_counter()
        result = prompts.map(Generate(engine=config, sampling=sampling), batched=True, batch_size=1000,
                             load_from_cache_file=False, keep_in_memory=True)
        return sum(result["completion_tokens"]), time.perf_counter() - start

    runs = {"raw": [], "pipeline": []}
    for i in range(args.repeats):
        order = (("raw", raw), ("pipeline", pipeline)) if i % 2 == 0 else (("pipeline", pipeline), ("raw", raw))
        for name, fn in order:  # alternate who goes first, so drift does not favour one side
            runs[name].append(fn())
            print(f"run {i} {name:<8} {runs[name][-1][0]:.0f} tokens in {runs[name][-1][1]:.1f} s", flush=True)
    raw_tokens, raw_time = map(sum, zip(*runs["raw"]))
    pipe_tokens, pipe_time = map(sum, zip(*runs["pipeline"]))
    raw_tps, pipe_tps = raw_tokens / raw_time, pipe_tokens / pipe_time
    hw = engine.describe()["hardware"]
    print(f"date {datetime.date.today()}  machine {platform.machine()}  cpu flags {','.join(hw['cpu_flags'])}")
    print(f"engine {hw['device']} dtype={hw['dtype']} threads={hw['cpu_threads_bind']}  "
          f"prompts={args.size} max_tokens={args.max_tokens} repeats={args.repeats}")
    print(f"raw LLM.chat      {raw_tokens:8.0f} tokens {raw_time:7.1f} s {raw_tps:7.1f} tokens/s")
    print(f"Dataset.map       {pipe_tokens:8.0f} tokens {pipe_time:7.1f} s {pipe_tps:7.1f} tokens/s")
    print(f"ratio pipeline/raw {pipe_tps / raw_tps:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
