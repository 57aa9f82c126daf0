"""The engine configuration chosen for this machine against the alternatives, one process each.

    python benchmarks/engine_config.py              # default vs fp32/bf16, vLLM's own thread binding, compiled
    python benchmarks/engine_config.py --size 128   # quicker

Each configuration starts a fresh engine in its own process (vLLM reads its CPU settings from the
environment at start-up), warms up, then times one `LLM.chat` over the same prompts with a fixed
output length. Prints start-up seconds, generated tokens/s, and each one's ratio to the best.
Target (issue 9): the default (`dtype=auto`, our thread binding, eager) within 0.8 of the best.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "default (ours)": {},
    "fp32": {"dtype": "float32"},
    "bf16": {"dtype": "bfloat16"},
    "vLLM thread default": {"env": {"VLLM_CPU_OMP_THREADS_BIND": "auto"}},
    "compiled": {"enforce_eager": False},
}


def one(config: dict, size: int, max_tokens: int) -> dict:
    """Run in a child process: start the engine with `config`, time one batch."""
    sys.path.insert(0, os.path.dirname(__file__))
    from generation_throughput import make_prompts

    from synth_datasets import SamplingConfig
    from synth_datasets.engine import EngineConfig, get_engine

    conversations = make_prompts(size)["messages"]
    start = time.perf_counter()
    engine = get_engine(EngineConfig(max_model_len=1024, **config))
    startup = time.perf_counter() - start
    sampling = SamplingConfig(temperature=0.8, max_tokens=max_tokens, ignore_eos=True)
    engine.chat(conversations[:32], sampling, use_tqdm=False)  # warm-up
    start = time.perf_counter()
    tokens = sum(o.completion_tokens for o in engine.chat(conversations, sampling, use_tqdm=False))
    hw = engine.describe()["hardware"]
    return {"startup_s": startup, "tokens_per_s": tokens / (time.perf_counter() - start), "hardware": hw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--only", nargs="*", help="names of configurations to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(one(json.loads(args.child), args.size, args.max_tokens)))
        return
    results = {}
    for name, spec in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        spec = dict(spec)
        env = {**os.environ, **spec.pop("env", {})}
        cmd = [sys.executable, __file__, "--child", json.dumps(spec), "--size", str(args.size), "--max-tokens", str(args.max_tokens)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{name}: failed\n{out.stderr[-2000:]}")
            continue
        results[name] = json.loads(line[len("RESULT "):])
        print(f"{name:<22} start-up {results[name]['startup_s']:6.1f} s  {results[name]['tokens_per_s']:7.1f} tok/s  "
              f"dtype={results[name]['hardware']['dtype']}", flush=True)
    best = max(r["tokens_per_s"] for r in results.values())
    flags = next(iter(results.values()))["hardware"]["cpu_flags"]
    print(f"date {datetime.date.today()}  cpu flags {','.join(flags)}  prompts={args.size} max_tokens={args.max_tokens}")
    for name, r in results.items():
        print(f"{name:<22} {r['tokens_per_s'] / best:.3f} of the best")


if __name__ == "__main__":
    main()
