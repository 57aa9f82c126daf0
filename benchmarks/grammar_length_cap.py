"""How many structured answers run into max_tokens, with and without a length cap in the JSON grammar.

    python benchmarks/grammar_length_cap.py [--per-label 64] [--max-tokens 80] [--cap 200]

Same engine, same 4-label banking77 classification prompts, once with the plain schema and once
with `maxLength` on the text. Prints finish reasons and mean generated tokens for each.
"""

import argparse
import json
from collections import Counter
from pathlib import Path

from datasets import load_dataset

from synth_datasets.engine import EngineConfig, SamplingConfig, get_engine
from synth_datasets.tasks import classification

BANKING = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"
LABELS = ["card_arrival", "lost_or_stolen_card", "exchange_rate", "atm_support"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=64, help="fewer than ~64 is lost in sampling noise")
    parser.add_argument("--max-tokens", type=int, default=80)
    parser.add_argument("--cap", type=int, default=200, help="maxLength of the text, in characters")
    args = parser.parse_args()
    seeds = load_dataset("csv", data_files=str(BANKING), split="train").shuffle(seed=0).select(range(300))
    seeds = seeds.filter(lambda r: r["category"] in LABELS)
    prompts = classification.classification_prompts(seeds, LABELS, per_label=args.per_label, label_column="category")
    engine = get_engine(EngineConfig(max_model_len=1024))
    sampling = SamplingConfig(temperature=0.9, max_tokens=args.max_tokens)
    for cap in (None, args.cap):
        outputs = engine.chat(prompts["messages"], sampling, classification.json_schema(LABELS, cap), use_tqdm=False)
        reasons = Counter(o.finish_reason for o in outputs)
        longest = max((len(json.loads(o.text)["text"]) for o in outputs if o.finish_reason == "stop"), default=None)
        mean_tokens = sum(o.completion_tokens for o in outputs) / len(outputs)
        print(f"cap={cap}  finish={dict(reasons)}  longest text={longest} chars  mean tokens={mean_tokens:.1f}")


if __name__ == "__main__":
    main()
