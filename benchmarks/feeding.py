"""How the ways of feeding the engine compare, on one engine and the same prompts, in one run.

    python benchmarks/feeding.py                 # 256 prompts of natural (mixed) output lengths
    python benchmarks/feeding.py --size 2048     # on a bigger machine

Each line is generated tokens/s divided by one raw `LLM.chat` over all prompts (measured twice,
first and last, and averaged, to cancel drift):
- pipeline: `generate()` = `Dataset.map(Generate, batched=True, batch_size=1000)`;
- naive: `Dataset.map` with batch_size=50, one synchronous engine call per 50 rows (a common default);
- shards: `generate_resumable` with --shard-size rows per shard;
- structured: raw `LLM.chat` with the classification JSON schema, over unconstrained raw;
- cached rerun: the identical finished pipeline run again (file-backed input), time over the first run.
Outputs stop where the model stops (no ignore_eos, max_tokens --max-tokens), so lengths are mixed.
Results and the commands that made them: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

from datasets import load_dataset, load_from_disk

from synth_datasets import Generate, SamplingConfig, generate
from synth_datasets.engine import EngineConfig, get_engine
from synth_datasets.shards import generate_resumable
from synth_datasets.tasks import classification

BANKING = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"


def make_prompts(size: int, tmp: Path):
    seeds = load_dataset("csv", data_files=str(BANKING), split="train").shuffle(seed=0).select(range(400))
    labels = sorted(set(seeds["category"]))
    prompts = classification.classification_prompts(seeds, labels, per_label=-(-size // len(labels)), label_column="category")
    prompts.select(range(size)).save_to_disk(str(tmp / "prompts"))
    return load_from_disk(str(tmp / "prompts")), labels


def timed(fn):
    start = time.perf_counter()
    tokens = fn()
    seconds = time.perf_counter() - start
    return tokens, seconds, tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sd-feeding-"))
    prompts, labels = make_prompts(args.size, tmp)
    config = EngineConfig(model=args.model, max_model_len=1024)
    sampling = SamplingConfig(temperature=0.8, max_tokens=args.max_tokens)
    schema = classification.json_schema(labels)
    engine = get_engine(config)
    conversations = prompts["messages"]
    engine.chat(conversations, sampling, use_tqdm=False)  # warm-up over every prompt

    def raw(json_schema=None):
        return lambda: sum(o.completion_tokens for o in engine.chat(conversations, sampling, json_schema, use_tqdm=False))

    def mapped(batch_size):
        gen = Generate(engine=config, sampling=sampling)
        return lambda: sum(generate(prompts, gen, batch_size=batch_size, load_from_cache_file=False,
                                    keep_in_memory=True)["completion_tokens"])

    def sharded():
        run = tempfile.mkdtemp(dir=tmp)
        return sum(generate_resumable(prompts, Generate(engine=config, sampling=sampling), run,
                                      shard_size=args.shard_size)["completion_tokens"])

    results = {"raw (first)": timed(raw())}
    results["pipeline"] = timed(mapped(1000))
    results["naive (batch 50)"] = timed(mapped(50))
    results[f"shards of {args.shard_size}"] = timed(sharded)
    results["structured (raw)"] = timed(raw(schema))
    results["raw (last)"] = timed(raw())
    gen = Generate(engine=config, sampling=sampling)
    first = timed(lambda: sum(generate(prompts, gen)["completion_tokens"]))
    rerun = timed(lambda: sum(generate(prompts, gen)["completion_tokens"]))

    base = (results["raw (first)"][2] + results["raw (last)"][2]) / 2
    hw = engine.describe()["hardware"]
    print(f"date {datetime.date.today()}  cpu flags {','.join(hw['cpu_flags'])}  dtype={hw['dtype']} "
          f"threads={hw['cpu_threads_bind']}  prompts={args.size} max_tokens={args.max_tokens}")
    for name, (tokens, seconds, tps) in results.items():
        print(f"{name:<20} {tokens:7.0f} tokens {seconds:7.1f} s {tps:7.1f} tok/s  ratio to raw {tps / base:.3f}")
    print(f"cached rerun: first {first[1]:.1f} s, rerun {rerun[1]:.2f} s, rerun/first {rerun[1] / first[1]:.3f}")


if __name__ == "__main__":
    main()
