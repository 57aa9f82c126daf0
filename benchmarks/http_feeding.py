"""What HTTP costs, and what the sliding window buys, on the same prompts in one run.

    python benchmarks/http_feeding.py                 # 256 prompts, natural (mixed) output lengths
    python benchmarks/http_feeding.py --size 1024 --window 64   # a narrower window

Three ways to generate the same prompts with the same model (the embedded SmolLM2-135M-Instruct),
each timed after a warm-up, in generated tokens per second:
- offline: the in-process engine (`VLLMEngine.chat`, vLLM's `LLM.chat`) over all prompts;
- window: the `openai` backend against vLLM's OpenAI-compatible server on 127.0.0.1
  (`synth-datasets serve`), one call over all prompts, at most --window requests in flight, each
  slot refilled as its request finishes;
- lock-step: the same backend and server, batches of --batch (50) sent together, the next batch
  only when the whole batch is done (what peers do).

Prints window / offline (the cost of HTTP) and window / lock-step (what the window buys; target >= 1.2
with mixed output lengths). The offline engine runs first and is shut down before the server
starts, so that the two never share the cores. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import time
from pathlib import Path

from synth_datasets.engine import EngineConfig, SamplingConfig, get_engine, release
from synth_datasets.http_engine import OpenAIEngine
from synth_datasets.serving import server_command, wait_until_ready

TOPICS = ["a lost card", "an exchange rate", "a failed top-up", "a blocked PIN", "a refund", "an ATM", "a transfer",
          "a new account", "a loan", "fees"]


def make_conversations(size: int) -> list[list[dict]]:
    """Requests whose answers run from a few words to a paragraph: mixed output lengths."""
    asks = ["Answer in three words: what is {}?", "Write one sentence about {}.", "Write a short paragraph about {}.",
            "Explain {} to a new customer in detail."]
    return [[{"role": "user", "content": asks[i % len(asks)].format(TOPICS[(i // len(asks)) % len(TOPICS)]) + f" (#{i})"}]
            for i in range(size)]


def timed(fn, conversations, sampling):
    start = time.perf_counter()
    out = fn(conversations, sampling)
    seconds = time.perf_counter() - start
    tokens = sum(c.completion_tokens for c in out)
    errors = sum(c.error is not None for c in out)
    return tokens / seconds, tokens, seconds, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    conversations = make_conversations(args.size)
    warm = make_conversations(32)
    sampling = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=args.max_tokens)
    results = {}

    config = EngineConfig(max_model_len=1024)
    engine = get_engine(config)
    engine.chat(warm, sampling, progress=False)
    results["offline"] = timed(lambda c, s: engine.chat(c, s, progress=False), conversations, sampling)
    release(config)

    argv, env = server_command(None, port=args.port, max_model_len=1024)
    server = subprocess.Popen(["timeout", "3600", *argv], env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{args.port}/v1"
        print(f"server ready in {wait_until_ready(url, process=server):.0f} s")
        client = OpenAIEngine(EngineConfig.from_dict({"backend": "openai", "model": "smollm2-135m-instruct",
                                                      "base_url": url, "max_concurrency": args.window}))
        client.chat(warm, sampling)

        def lockstep(convs, s):
            out = []
            for i in range(0, len(convs), args.batch):
                out += client.chat(convs[i:i + args.batch], s)
            return out

        # alternate the order, twice each, to cancel drift
        runs = {"window": [], "lock-step": []}
        for order in (("window", "lock-step"), ("lock-step", "window")):
            for name in order:
                runs[name].append(timed(client.chat if name == "window" else lockstep, conversations, sampling))
        for name, got in runs.items():
            tokens, seconds = sum(r[1] for r in got), sum(r[2] for r in got)
            results[name] = (tokens / seconds, tokens, seconds, sum(r[3] for r in got))
        client.shutdown()
    finally:
        server.terminate()
        server.wait(timeout=30)

    flags = " ".join(f for f in Path("/proc/cpuinfo").read_text().split() if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"))
    print(f"{datetime.date.today()}, {os.cpu_count()} cores, flags {sorted(set(flags.split()))}; "
          f"{args.size} prompts, max_tokens {args.max_tokens}, window {args.window}, lock-step batches of {args.batch}")
    for name, (rate, tokens, seconds, errors) in results.items():
        print(f"  {name:<10} {rate:7.1f} generated tokens/s ({tokens} tokens in {seconds:.1f} s, {errors} errors)")
    print(f"  window / offline   = {results['window'][0] / results['offline'][0]:.2f}   (the cost of HTTP)")
    print(f"  window / lock-step = {results['window'][0] / results['lock-step'][0]:.2f}   (target >= 1.2)")


if __name__ == "__main__":
    main()
