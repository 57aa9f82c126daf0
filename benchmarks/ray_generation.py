"""What running generation as a Ray Data job costs on one machine, side by side in one run.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python benchmarks/ray_generation.py'
    ... benchmarks/ray_generation.py --size 512 --shard-size 128 --skip-ray-llm

(As root, `unshare -n` gives the run a network namespace of its own: Ray binds the machine's own
address otherwise, and in there it uses 127.0.0.1.)

The same prompts (mixed output lengths, benchmarks/http_feeding.py) with the same model (the
embedded SmolLM2-135M-Instruct) three ways, each from a cold start (engine, and Ray where used):
- in-process: `generate_resumable(..., executor="local")`, one engine in this process;
- ray: `generate_resumable(..., executor="ray", replicas=1)`: Ray started by the job, one actor
  holding the engine, the shards streamed back and written by the driver;
- ray.data.llm: Ray's own vLLM processor (`build_processor(vLLMEngineProcessorConfig(...))`) with
  one engine, on the same rows and sampling.
Prints wall seconds end to end (start-up included), generated tokens, and ray / in-process both
end to end and over engine seconds only (start-up left out; ray.data.llm does not report them).
Target: ray / in-process >= 0.9 with one replica. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import tempfile
import time
from pathlib import Path

from datasets import Dataset

from http_feeding import make_conversations
from synth_datasets import Generate, hardware, models
from synth_datasets.engine import EngineConfig, release_all
from synth_datasets.shards import generate_resumable


def ours(rows: Dataset, gen: Generate, folder: Path, shard_size: int, executor: str) -> dict:
    start = time.perf_counter()
    out = generate_resumable(rows, gen, folder, shard_size=shard_size, replicas=1, executor=executor)
    wall = time.perf_counter() - start
    release_all()
    stats = gen.stats.as_dict()
    return {"wall": wall, "tokens": sum(out["completion_tokens"]), "engine_s": stats["seconds"],
            "errors": sum((e or "").startswith("request failed") for e in out["parse_error"])}


def ray_llm(rows: Dataset, max_tokens: int, max_model_len: int) -> dict:
    """Ray's own vLLM processor, sized for a CPU machine (no GPU bundle; its CPU stages ask 0 CPUs so
    that they can run beside the engine)."""
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    fit = hardware.fit_engine("auto", None, None)
    hardware.apply_engine_env(fit)  # before Ray starts: its workers inherit the thread binding and KV cache
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    config = vLLMEngineProcessorConfig(
        model_source=models.resolve_model(None),
        engine_kwargs={"dtype": fit.dtype, "max_model_len": max_model_len, "enforce_eager": True, "seed": 0},
        concurrency=1, batch_size=64, placement_group_config={"bundles": [{"CPU": 1, "GPU": 0}]},
        chat_template_stage={"num_cpus": 0}, tokenize_stage={"num_cpus": 0}, detokenize_stage={"num_cpus": 0},
        log_engine_metrics=False)
    processor = build_processor(
        config,
        preprocess=lambda row: {"row_id": row["row_id"], "messages": row["messages"],
                                "sampling_params": {"temperature": 0.0, "max_tokens": max_tokens}},
        postprocess=lambda row: {"row_id": row["row_id"], "tokens": row["num_generated_tokens"]},
        preprocess_map_kwargs={"num_cpus": 0}, postprocess_map_kwargs={"num_cpus": 0})
    out = processor(ray.data.from_arrow(rows.with_format("arrow")[:])).take_all()
    wall = time.perf_counter() - start
    ray.shutdown()
    return {"wall": wall, "tokens": sum(r["tokens"] for r in out), "engine_s": None, "errors": len(rows) - len(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--shard-size", type=int, default=128)
    parser.add_argument("--skip-ray-llm", action="store_true")
    args = parser.parse_args()
    conversations = make_conversations(args.size)
    rows = Dataset.from_dict({"row_id": [f"r{i:05d}" for i in range(args.size)], "messages": conversations})
    engine = EngineConfig(max_model_len=1024, seed=0)
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": args.max_tokens}
    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    results = {}
    try:
        results["in-process"] = ours(rows, Generate(engine=engine, sampling=sampling), work / "local", args.shard_size, "local")
        results["ray"] = ours(rows, Generate(engine=engine, sampling=sampling), work / "ray", args.shard_size, "ray")
        if not args.skip_ray_llm:
            results["ray.data.llm"] = ray_llm(rows, args.max_tokens, 1024)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    flags = " ".join(sorted(hardware.cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
    print(f"\n{datetime.date.today()}  cpu flags: {flags}  {args.size} prompts, max_tokens {args.max_tokens}, "
          f"shards of {args.shard_size}")
    print(f"{'path':14} {'wall s':>8} {'tokens':>8} {'tok/s wall':>11} {'engine s':>9} {'tok/s engine':>13} {'failed':>7}")
    for name, r in results.items():
        engine_rate = f"{r['tokens'] / r['engine_s']:13.1f}" if r["engine_s"] else f"{'-':>13}"
        engine_s = f"{r['engine_s']:9.1f}" if r["engine_s"] else f"{'-':>9}"
        print(f"{name:14} {r['wall']:8.1f} {r['tokens']:8d} {r['tokens'] / r['wall']:11.1f} {engine_s} {engine_rate} {r['errors']:7d}")
    base = results["in-process"]
    for name in [n for n in results if n != "in-process"]:
        r = results[name]
        line = f"{name} / in-process: {(r['tokens'] / r['wall']) / (base['tokens'] / base['wall']):.2f} end to end"
        if r["engine_s"]:
            line += f", {(r['tokens'] / r['engine_s']) / (base['tokens'] / base['engine_s']):.2f} over engine seconds"
        print(line)


if __name__ == "__main__":
    main()
