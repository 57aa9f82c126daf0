"""Rerun `compare` with completions recorded by an earlier run, to show that a code change leaves its
table unchanged, without generating again (vLLM on a CPU does not repeat its rows run to run).

    python scripts/replay_compare.py recipes/banking77-compare.yaml --recorded ~/.cache/huggingface/datasets \
        [--expect outputs/banking77-77-intents/compare/compare.md] [--output DIR]

`--recorded` is a `datasets` cache folder (or any folder) holding the Arrow files of generated rows
(columns `messages`, `raw_completion`, `finish_reason`, token counts): an earlier `compare` of the
same recipe left them in its cache. Every request of this run is answered from them by a `replay`
backend; a request that was never recorded (a prompt that changed) stops the run with an error, so a
table that comes out equal means the same prompts, the same completions, the same checks, mixes,
students and metrics. `--expect` compares the table with an earlier compare.md, line by line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from datasets import Dataset

from synth_datasets.engine import BACKENDS, Completion


def conversation_key(messages) -> str:
    return json.dumps([{"role": m["role"], "content": m["content"]} for m in messages], sort_keys=True, ensure_ascii=False)


def recorded_completions(folder: Path) -> dict[str, Completion]:
    """{conversation: completion} from every Arrow file under `folder` with generated rows."""
    found: dict[str, Completion] = {}
    for path in sorted(folder.rglob("*.arrow")):
        try:
            ds = Dataset.from_file(str(path))
        except Exception:  # noqa: BLE001  not a dataset file, or one being written
            continue
        if not {"messages", "raw_completion", "finish_reason", "completion_tokens"} <= set(ds.column_names):
            continue
        for row in ds.select_columns(["messages", "raw_completion", "finish_reason", "prompt_tokens", "completion_tokens"]):
            found[conversation_key(row["messages"])] = Completion(
                row["raw_completion"], row["finish_reason"], row["prompt_tokens"], row["completion_tokens"])
    return found


class ReplayBackend:
    """Answers each request with its recorded completion; an unrecorded request is an error."""

    recorded: dict[str, Completion] = {}
    answered = 0

    def __init__(self, config):
        self.config = config

    def chat(self, conversations, sampling, json_schema=None):
        out = []
        for conversation in conversations:
            key = conversation_key(conversation)
            if key not in self.recorded:
                raise RuntimeError(f"no recorded completion for a request of this run (the prompts changed?): "
                                   f"{conversation[-1]['content'][:300]!r}")
            out.append(self.recorded[key])
        ReplayBackend.answered += len(out)
        return out

    def describe(self):
        return {"backend": "replay"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--recorded", required=True, help="folder with the Arrow files of an earlier run's generated rows")
    parser.add_argument("--expect", help="an earlier compare.md whose table this run must repeat")
    parser.add_argument("--output", help="where compare.json/.md/.png go (default: not written)")
    args = parser.parse_args(argv)

    from synth_datasets.cli import configure_output
    from synth_datasets.compare import run_compare, write_results
    from synth_datasets.engine import EngineConfig
    from synth_datasets.recipe import load_recipe

    configure_output()  # quiet, as the CLI

    ReplayBackend.recorded = recorded_completions(Path(args.recorded).expanduser())
    print(f"{len(ReplayBackend.recorded)} recorded completions found under {args.recorded}")
    BACKENDS.register("replay", ReplayBackend)
    recipe = load_recipe(args.recipe)
    engine = recipe.engine
    recipe = replace(recipe, engine=EngineConfig(backend="replay", seed=engine.seed, max_model_len=engine.max_model_len))
    result = run_compare(recipe, echo=None)
    print(f"{ReplayBackend.answered} requests answered from the recording")
    table = result.table()
    print(table)
    print(f"verdict: {result.verdict}")
    if args.output:
        write_results(result, args.output)
    if args.expect:
        expected = [line for line in Path(args.expect).read_text().splitlines() if line.startswith("|")]
        if expected != table.splitlines():
            print("the table differs from", args.expect, file=sys.stderr)
            for a, b in zip(expected, table.splitlines()):
                if a != b:
                    print(f"- {a}\n+ {b}", file=sys.stderr)
            return 1
        print(f"the table is the same as in {args.expect}, line for line ({len(expected)} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
