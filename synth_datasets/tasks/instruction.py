"""Instruction following, Self-Instruct / Alpaca style: a few hundred seed tasks grown into many
prompt-response pairs, in TRL's conversational format.

    synth-datasets generate recipes/self-instruct.yaml

Generation runs in two stages through the recipe's engine (`Instruction.synthesize`):

1. **Instructions, bootstrapped in rounds.** Each request shows `shots` tasks sampled from the pool
   (seed instructions, plus up to `machine_shots` generated ones once there are some, as Self-Instruct
   does with 6 + 2) and asks for new ones, in one of two prompt forms (`prompt_form`):
   - `complete`: a numbered list ("Come up with a series of tasks: 1. ... 8. ... 9.") that the model
     continues in completion mode, with no chat template (Self-Instruct's GPT-3 form);
   - `chat`: a chat request answered with a JSON list of new tasks, constrained by the schema.
   Every candidate goes through Self-Instruct's filters (3 to 150 words, none of the words a text
   model cannot act on, no "Write a program", no leading punctuation or non-ASCII first letter),
   then the novelty rule: it is kept only when its ROUGE-L F-measure to every instruction in the
   pool (seeds and those kept before it) is at most `novelty_threshold` (0.7), and when it does
   not overlap the evaluation split (`runner.holdout`, e.g. the user-oriented instructions), so
   no evaluation instruction can enter the pool and from there a prompt. Rounds go on until
   `instructions` are kept (or `rounds` ran, or a round kept none).
2. **An input and an output for each instruction**: a chat request showing `answer_shots` seed tasks
   as worked examples, answered with `{"input": ..., "output": ...}` (the input may be empty).

Rows: `instruction`, `input`, `output`, `messages` (a user turn: instruction, and the input after a
blank line when there is one; an assistant turn: the output; `SFTTrainer` trains on it as it is),
and provenance: `round`, `rouge_l_nearest` (ROUGE-L to the closest pool instruction when it was kept),
`request_id` (the bootstrap request it came from), the answer request (`request_messages`) and the
generation columns of stage 2 (`raw_completion`, `finish_reason`, tokens, `parse_error`).
`export_format: prompt_completion` adds `prompt` and `completion` columns instead of nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from datasets import Dataset, Features, List, Value, concatenate_datasets

from ..checks.instruction import SELF_INSTRUCT_WORDS, blocked_pattern
from .base import SeedsConfig, Task, TaskConfig, draw_count

logger = logging.getLogger(__name__)
MESSAGES = List({"role": Value("string"), "content": Value("string")})

LIST_HEADER = "Come up with a series of tasks{about}:\n\n"
CHAT_SYSTEM = "You write new tasks for training an AI assistant. Reply with one JSON object and nothing else."
CHAT_TEMPLATE = """\
Here are some tasks a user gave to an AI assistant{about}:
{tasks}

Write {n} new tasks that differ from these and from each other: other topics and other kinds of task \
(questions, writing, rewriting, classifying, explaining, planning, reasoning). Each task is one \
instruction that an assistant who can only read and write text can carry out.

Answer with a JSON object: "tasks" is the list of new tasks."""
ANSWER_SYSTEM = ("You write one example of a task for training an AI assistant: an input for the task when it "
                 "needs one, and the correct, complete output. Reply with one JSON object and nothing else.")
ANSWER_TEMPLATE = """\
{examples}Task: {instruction}

Write an input for this task if it needs one (leave it empty when the task is complete on its own), \
then the output a helpful assistant would give. Answer with a JSON object with "input" and "output"."""
EXAMPLE_TEMPLATE = "Task: {instruction}\n{answer}\n\n"
JUDGE_TEMPLATE = """Instruction: {instruction}
Input: {input}
Output: {output}

Rate the example on each criterion from 1 to 5, giving a short reason first.
{criteria}"""
JUDGE_CRITERIA = {
    "follows_instruction": "Does the output do what the instruction (with its input) asks? 1 = not at all "
                           "(off-topic, a refusal, meta-text), 5 = exactly.",
    "correctness": "Is the output correct and complete (facts, arithmetic, logic, format)? 1 = wrong or cut off, "
                   "5 = entirely correct.",
    "instruction_quality": "Is the instruction clear, self-contained and doable by a text-only assistant? "
                           "1 = no, 5 = yes.",
}


def user_turn(instruction: str, input_text: str | None) -> str:
    """The user turn of a row: the instruction, and its input after a blank line when there is one.

    >>> user_turn("Translate to French.", "Good morning")
    'Translate to French.\\n\\nGood morning'
    >>> user_turn("Name a prime number.", "")
    'Name a prime number.'
    """
    input_text = (input_text or "").strip()
    return f"{instruction.strip()}\n\n{input_text}" if input_text else instruction.strip()


def to_messages(instruction: str, input_text: str | None, output: str) -> list[dict]:
    """TRL's conversational format for one row."""
    return [{"role": "user", "content": user_turn(instruction, input_text)},
            {"role": "assistant", "content": (output or "").strip()}]


# -- Self-Instruct's candidate filters --------------------------------------------------------------

_NUMBERED = re.compile(r"(?:^|\n)\s*(\d+)\s*[.)]\s*")


def list_items(text: str, first: int) -> list[str]:
    """The items of a numbered list continued from item `first` (whose number the prompt already
    wrote): the text before the first number is item `first`; later items follow "\\n<n>." in order.
    Numbering that jumps back or skips ends the list (the model started something else).

    >>> list_items(" Name a fruit.\\n10. Sort these words.\\n11) 12. Add 2 and 2.\\n3. stray", 9)
    ['Name a fruit.', 'Sort these words.', 'Add 2 and 2.']
    """
    parts = _NUMBERED.split(text)
    items = [parts[0]]
    expected = first + 1
    for number, body in zip(parts[1::2], parts[2::2]):
        if int(number) != expected:
            break
        items.append(body)
        expected += 1
    return [_LEADING_NUMBER.sub("", " ".join(item.split())) for item in items]


_LEADING_NUMBER = re.compile(r"^(?:\d+\s*[.)]\s*)+")


def candidate_problem(instruction: str, pattern: re.Pattern, min_words: int, max_words: int) -> str | None:
    """Why Self-Instruct's filters drop a candidate instruction, or None to keep it.

    >>> p = blocked_pattern(SELF_INSTRUCT_WORDS)
    >>> [candidate_problem(t, p, 3, 150) for t in ["Draw a cat for me please.", "Hi.", "Summarize the text below."]]
    ['needs what a text model cannot do (draw)', 'too short (1 words)', None]
    """
    words = instruction.split()
    if len(words) < min_words:
        return f"too short ({len(words)} words)"
    if len(words) > max_words:
        return f"too long ({len(words)} words)"
    found = pattern.search(instruction)
    if found:
        return f"needs what a text model cannot do ({found.group(0).lower()})"
    if instruction.lower().startswith("write a program"):
        return "starts with 'write a program'"
    if not instruction[0].isalnum():
        return "starts with punctuation"
    if not instruction[0].isascii():
        return "starts with a non-ASCII character"
    return None


def _reason(problem: str) -> str:
    """The counted reason of a problem: the text before its detail in brackets."""
    return problem.split(" (")[0]


def _id(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# -- recipe sections ---------------------------------------------------------------------------------

@dataclass
class InstructionSeeds(SeedsConfig):
    """`seeds:` of an instruction recipe: the columns of the real tasks. Self-Instruct's files keep
    input and output in a list `instances` (each instance becomes a row); flat files (Alpaca's) have
    `input` and `output` columns."""

    instruction_column: str = "instruction"
    input_column: str = "input"
    output_column: str = "output"
    instances_column: str | None = field(default="instances", metadata={"help": "Column with a list of {input, output} (Self-Instruct); used when the data has it."})
    count: int | None = field(default=None, metadata={"help": "Real tasks drawn as seeds; default: all."})

    def __post_init__(self):
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")


@dataclass
class InstructionConfig(TaskConfig):
    """`task:` of an instruction-following recipe."""

    instructions: int = field(default=100, metadata={"help": "New instructions to keep (each gets an input and output)."})
    prompt_form: str = field(default="complete", metadata={"help": "complete: a numbered list the model continues (completion mode); chat: a chat request answered with a JSON list."})
    shots: int = field(default=8, metadata={"help": "Tasks shown per bootstrap request."})
    machine_shots: int = field(default=2, metadata={"help": "Of them, generated ones (once there are some); Self-Instruct: 2 of 8."})
    new_per_request: int = field(default=8, metadata={"help": "New tasks asked for (chat) or read (complete) per request."})
    rounds: int = field(default=6, metadata={"help": "Most bootstrap rounds; each round's kept instructions join the pool."})
    novelty_threshold: float = field(default=0.7, metadata={"help": "Keep a new instruction only if its ROUGE-L to every pool instruction is at most this."})
    min_words: int = 3
    max_words: int = 150
    blocked_words: list[str] = field(default_factory=lambda: list(SELF_INSTRUCT_WORDS), metadata={"help": "Instructions with any of these words are dropped (Self-Instruct's list: things a text model cannot see or do)."})
    instruction_max_tokens: int = field(default=200, metadata={"help": "max_tokens of a bootstrap request (the answers use generator.max_tokens)."})
    instruction_temperature: float | None = field(default=None, metadata={"help": "Temperature of the bootstrap; default: generator.temperature."})
    answer_shots: int = field(default=2, metadata={"help": "Seed tasks shown as worked examples in an answer request."})
    max_input_chars: int = field(default=600, metadata={"help": "Cap on a generated input, in the JSON grammar."})
    max_output_chars: int = field(default=1500, metadata={"help": "Cap on a generated output, in the JSON grammar."})
    description: str | None = field(default=None, metadata={"help": "What the tasks are about, e.g. 'everyday office work'; default: anything."})
    export_format: str = field(default="messages", metadata={"help": "messages (TRL conversational); prompt_completion adds prompt/completion columns too."})

    def __post_init__(self):
        for name in ("instructions", "shots", "new_per_request", "rounds", "min_words", "instruction_max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.machine_shots <= self.shots:
            raise ValueError(f"machine_shots must be between 0 and shots ({self.shots}), got {self.machine_shots}")
        if self.answer_shots < 0:
            raise ValueError(f"answer_shots must be >= 0, got {self.answer_shots}")
        if self.max_words < self.min_words:
            raise ValueError(f"max_words ({self.max_words}) must be >= min_words ({self.min_words})")
        if not 0 < self.novelty_threshold <= 1:
            raise ValueError(f"novelty_threshold is a ROUGE-L F-measure in (0, 1], got {self.novelty_threshold}")
        if self.prompt_form not in ("complete", "chat"):
            raise ValueError(f"prompt_form: {self.prompt_form!r} is not known; choose complete or chat")
        if self.export_format not in ("messages", "prompt_completion"):
            raise ValueError(f"export_format: {self.export_format!r} is not known; choose messages or prompt_completion")


class Instruction(Task):
    """Instruction following: rows `instruction`, `input`, `output` (+ `messages`); no labels."""

    name = "instruction"
    parser = "json"
    config_class = InstructionConfig
    seeds_class = InstructionSeeds
    columns = ("instruction", "input", "output")
    text_column = "instruction"
    label_column = None
    # The reference NLL decides the verdict: it is computed on every test row, needs no judge and
    # moves smoothly; ROUGE-L of greedy answers is noisy, and slow on a CPU (a fixed subset of rows).
    metrics = ("nll", "rouge_l")
    metric_names = {"rouge_l": "ROUGE-L", "nll": "NLL/token"}
    percent_metrics = ("rouge_l",)  # the reference NLL is shown as it is (nats per token)
    lower_is_better = ("nll",)
    default_student = "lm"
    card_template = "instruction.md"
    guards_holdout = True
    hub_task_categories = ["text-generation"]

    # -- real rows ------------------------------------------------------------------------------
    def standardize(self, ds: Dataset, where: str) -> tuple[Dataset, dict[str, int]]:
        """One row per (instruction, instance): `instruction`, `input` ("" when none), `output`.
        Rows with an empty instruction or output are dropped and counted."""
        from ..errors import DataError

        cfg = self.seeds if self.seeds is not None else self.seeds_class(path="")  # the default column names
        nested = cfg.instances_column is not None and cfg.instances_column in ds.column_names
        needed = [cfg.instruction_column] + ([cfg.instances_column] if nested else [cfg.output_column])
        for column in needed:
            if column not in ds.column_names:
                raise DataError(f"{where}: the data has no column {column!r} (it has {ds.column_names}); set "
                                "seeds.instruction_column / seeds.output_column (or seeds.instances_column for "
                                "Self-Instruct's nested instances)")
        rows: dict[str, list] = {"instruction": [], "input": [], "output": []}
        dropped: Counter = Counter()
        for record in ds:
            instruction = str(record[cfg.instruction_column] or "").strip()
            if nested:
                pairs = [(i.get("input"), i.get("output")) for i in (record[cfg.instances_column] or [])]
            else:
                pairs = [(record.get(cfg.input_column), record[cfg.output_column])]
            if not instruction:
                dropped["empty instruction"] += max(1, len(pairs))
                continue
            for input_text, output in pairs:
                if output is None or not str(output).strip():
                    dropped["empty output"] += 1
                    continue
                rows["instruction"].append(instruction)
                rows["input"].append(str(input_text or "").strip())
                rows["output"].append(str(output).strip())
        return Dataset.from_dict(rows, features=Features({c: Value("string") for c in self.columns})), dict(dropped)

    def draw_seeds(self, real: Dataset) -> Dataset:
        """`seeds.count` random real rows (all by default), in file order."""
        return draw_count(real, self.seeds)

    # -- generation -----------------------------------------------------------------------------
    def prompts(self, seeds: Dataset, *, seed: int, per_label: int | None = None, prompt_tokens: int | None = None,
                pool: Sequence[str] = (), round_: int = 1, requests: int | None = None) -> Dataset:
        """One bootstrap round's requests: each shows `shots` pool tasks (up to `machine_shots` of
        them from `pool`, the instructions generated so far) and asks for new ones. The first
        round's requests when called as the Task contract's `prompts`."""
        cfg = self.config
        human = _unique(seeds["instruction"])
        want = per_label or cfg.instructions
        n = requests if requests is not None else math.ceil(want / max(1.0, cfg.new_per_request / 2))
        rows: dict[str, list] = {"row_id": [], "round": [], "prompt": [], "messages": [], "shown": []}
        about = f" about {cfg.description}" if cfg.description else ""
        budget = None if prompt_tokens is None else max(400, 2 * prompt_tokens)  # chars, at a cautious 2 per token
        for i in range(n):
            rng = random.Random(f"{seed}:{round_}:{i}")
            machine = rng.sample(list(pool), min(cfg.machine_shots, len(pool))) if pool else []
            shown = rng.sample(human, min(cfg.shots - len(machine), len(human))) + machine
            rng.shuffle(shown)
            shown = _fit(shown, budget)
            listed = "".join(f"{j + 1}. {' '.join(task.split())}\n" for j, task in enumerate(shown))
            if cfg.prompt_form == "complete":
                prompt, messages = LIST_HEADER.format(about=about) + listed + f"{len(shown) + 1}.", []
            else:
                user = CHAT_TEMPLATE.format(about=about, tasks=listed.rstrip(), n=cfg.new_per_request)
                prompt, messages = "", [{"role": "system", "content": CHAT_SYSTEM}, {"role": "user", "content": user}]
            rows["row_id"].append(_id("instructions", seed, round_, i, prompt, messages))
            rows["round"].append(round_)
            rows["prompt"].append(prompt)
            rows["messages"].append(messages)
            rows["shown"].append(len(shown))
        return Dataset.from_dict(rows, features=Features({"row_id": Value("string"), "round": Value("int64"),
                                                          "prompt": Value("string"), "messages": MESSAGES,
                                                          "shown": Value("int64")}))

    def bootstrap_schema(self) -> dict:
        """The chat form's answer: a list of new tasks."""
        return {"type": "object",
                "properties": {"tasks": {"type": "array", "items": {"type": "string", "maxLength": 400},
                                         "minItems": 1, "maxItems": self.config.new_per_request}},
                "required": ["tasks"], "additionalProperties": False}

    def json_schema(self) -> dict:
        """Stage 2's answer: an input (possibly empty) and an output, capped in the grammar."""
        cfg = self.config
        return {"type": "object",
                "properties": {"input": {"type": "string", "maxLength": cfg.max_input_chars},
                               "output": {"type": "string", "maxLength": cfg.max_output_chars}},
                "required": ["input", "output"], "additionalProperties": False}

    def synthesize(self, seeds: Dataset, runner, *, seed: int, per_label: int | None = None) -> Dataset:
        from ..errors import DataError

        instructions = self.bootstrap(seeds, runner, seed=seed, want=per_label or self.config.instructions)
        if len(instructions) == 0:
            dropped = runner.notes["bootstrap"]["dropped"]
            raise DataError(f"bootstrap: no new instruction was kept ({dropped or 'the model wrote none'}); see "
                            "task.prompt_form, task.rounds and generator.model")
        return self.answer(seeds, instructions, runner, seed=seed)

    def bootstrap_generator(self, runner):
        """The `Generate` of a bootstrap request: the prompt form's mode, parser and stop rules."""
        cfg = self.config
        sampling = {"max_tokens": cfg.instruction_max_tokens}
        if cfg.instruction_temperature is not None:
            sampling["temperature"] = cfg.instruction_temperature
        if cfg.prompt_form == "complete":  # a blank line or the number after the last one asked for ends the list
            sampling["stop"] = ("\n\n", f"\n{cfg.shots + cfg.new_per_request + 1}.")
            return runner.generator(parser="text", sampling=sampling, prompt_column="prompt")
        return runner.generator(json_schema=self.bootstrap_schema(), parser="json", sampling=sampling)

    def bootstrap(self, seeds: Dataset, runner, *, seed: int, want: int) -> Dataset:
        """Stage 1: new instructions, in rounds, each kept only if novel (see the module docstring)."""
        from ..checks.leakage import Decontaminate
        from ..checks.rouge import RougeNovelty

        cfg = self.config
        completion = cfg.prompt_form == "complete"
        gen = self.bootstrap_generator(runner)
        pattern = blocked_pattern(tuple(cfg.blocked_words)) if cfg.blocked_words else re.compile(r"(?!x)x")
        novelty = RougeNovelty(cfg.novelty_threshold)
        for text in _unique(seeds["instruction"]):
            novelty.add(text)
        holdout = list(getattr(runner, "holdout", None) or [])
        contaminated = Decontaminate(reference=tuple(holdout)) if holdout else None
        holdout_rouge = RougeNovelty(cfg.novelty_threshold)
        for text in holdout:
            holdout_rouge.add(text)
        kept: dict[str, list] = {"instruction": [], "round": [], "rouge_l_nearest": [], "request_id": []}
        dropped: Counter = Counter()
        rounds, candidates, requests = [], 0, 0
        yield_per_request = cfg.new_per_request / 2
        for round_ in range(1, cfg.rounds + 1):
            missing = want - len(kept["instruction"])
            if missing <= 0:
                break
            n = max(1, math.ceil(missing / max(0.25, yield_per_request)))
            prompts = self.prompts(seeds, seed=seed, per_label=want, prompt_tokens=runner.prompt_tokens(cfg.instruction_max_tokens),
                                   pool=kept["instruction"], round_=round_, requests=n)
            out = runner(prompts.remove_columns("messages" if completion else "prompt"), gen, stage=f"instructions-{round_}")
            requests += len(out)
            before = len(kept["instruction"])
            for row in out:
                items, problem = self.read_candidates(row)
                if problem:
                    dropped[problem] += 1
                for item in items:
                    candidates += 1
                    if not item:
                        dropped["empty"] += 1
                        continue
                    problem = candidate_problem(item, pattern, cfg.min_words, cfg.max_words)
                    if problem is None and contaminated is not None and (
                            contaminated.overlap(item) or holdout_rouge.max_score(item)[0] > cfg.novelty_threshold):
                        problem = "overlaps the evaluation split"
                    if problem is not None:
                        dropped[_reason(problem)] += 1
                        continue
                    novel, score, _ = novelty.offer(item)
                    if not novel:
                        dropped[f"not novel (ROUGE-L > {cfg.novelty_threshold:g})"] += 1
                        continue
                    kept["instruction"].append(item)
                    kept["round"].append(round_)
                    kept["rouge_l_nearest"].append(round(score, 4))
                    kept["request_id"].append(row["row_id"])
            gained = len(kept["instruction"]) - before
            rounds.append({"round": round_, "requests": len(out), "kept": gained})
            yield_per_request = gained / max(1, len(out))
            if gained == 0:
                break
        got = len(kept["instruction"])
        extra = max(0, got - want)
        for name in kept:
            kept[name] = kept[name][:want]
        runner.notes["bootstrap"] = {
            "prompt_form": cfg.prompt_form, "wanted": want, "kept": min(got, want), "extra_not_used": extra,
            "candidates": candidates, "requests": requests, "dropped": dict(dropped), "rounds": rounds,
            "novelty_threshold": cfg.novelty_threshold, "holdout_instructions": len(holdout),
        }
        if got < want:
            logger.warning(
                "bootstrap: %d of %d instructions kept after %d rounds (%s); raise task.rounds or lower task.instructions",
                got, want, len(rounds), ", ".join(f"{why} {n}" for why, n in dropped.most_common()))
        return Dataset.from_dict(kept, features=Features({"instruction": Value("string"), "round": Value("int64"),
                                                           "rouge_l_nearest": Value("float64"), "request_id": Value("string")}))

    def read_candidates(self, row: dict) -> tuple[list[str], str | None]:
        """The new instructions in one bootstrap completion, and why there are none when a request
        failed or its answer could not be read."""
        if row["parse_error"] and row["parse_error"].startswith("request failed"):
            return [], "request failed"
        if self.config.prompt_form == "complete":
            items = list_items(row["raw_completion"] or "", row["shown"] + 1)
            if row["finish_reason"] == "length" and items:
                items = items[:-1]  # the last item was cut off by max_tokens
            return items[: self.config.new_per_request], None
        items = [" ".join((t or "").split()) for t in (row.get("tasks") or [])]
        return items, None if items else "not parsed"

    def answer(self, seeds: Dataset, instructions: Dataset, runner, *, seed: int) -> Dataset:
        """Stage 2: an input and an output for every instruction, then the training columns."""
        cfg = self.config
        budget = max(200, runner.prompt_tokens() * 2 - 600)  # chars of worked examples, at 2 chars per token
        examples = [r for r in seeds if len(user_turn(r["instruction"], r["input"])) + len(r["output"]) < budget // max(1, cfg.answer_shots)]
        rows: dict[str, list] = {"row_id": [], "request_messages": []}
        for i, instruction in enumerate(instructions["instruction"]):
            rng = random.Random(f"{seed}:answer:{i}")
            shown = rng.sample(examples, min(cfg.answer_shots, len(examples)))
            worked = "".join(EXAMPLE_TEMPLATE.format(instruction=e["instruction"], answer=json.dumps(
                {"input": e["input"], "output": e["output"]}, ensure_ascii=False)) for e in shown)
            user = ANSWER_TEMPLATE.format(examples=worked, instruction=instruction)
            messages = [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user}]
            rows["row_id"].append(_id("answer", seed, instruction, messages))
            rows["request_messages"].append(messages)
        prompts = Dataset.from_dict(rows, features=Features({"row_id": Value("string"), "request_messages": MESSAGES}))
        prompts = concatenate_datasets([prompts, instructions], axis=1)
        gen = runner.generator(json_schema=self.json_schema(), parser="json", messages_column="request_messages")
        out = runner(prompts, gen, stage="generate")
        return out.map(self._finish, batched=True, desc="messages", features=Features({
            **out.features, "messages": MESSAGES,
            **({"prompt": MESSAGES, "completion": MESSAGES} if cfg.export_format == "prompt_completion" else {})}))

    def _finish(self, batch: dict) -> dict:
        """The training columns: inputs/outputs stripped, `messages` (and prompt/completion)."""
        inputs = [(t or "").strip() for t in batch["input"]]
        outputs = [(t or "").strip() if t is not None else None for t in batch["output"]]
        messages = [to_messages(i, x, o or "") for i, x, o in zip(batch["instruction"], inputs, outputs)]
        out = {"input": inputs, "output": outputs, "messages": messages}
        if self.config.export_format == "prompt_completion":
            out["prompt"] = [m[:1] for m in messages]
            out["completion"] = [m[1:] for m in messages]
        return out

    @classmethod
    def parse(cls, row: dict, completion, json_schema: dict | None) -> tuple[dict, str | None]:
        from .jsonparse import parse_json

        return parse_json(row, completion, json_schema)

    @classmethod
    def features(cls, json_schema: dict | None) -> dict:
        from .jsonparse import schema_features

        return schema_features(json_schema)

    # -- students ---------------------------------------------------------------------------------
    def conversations(self, rows) -> dict[str, list]:
        """TRL's conversational prompt-completion columns of `rows`: the user turn, the assistant's."""
        talk = [to_messages(i, x, o) for i, x, o in zip(rows["instruction"], rows["input"], rows["output"])]
        return {"prompt": [t[:1] for t in talk], "completion": [t[1:] for t in talk]}

    def score(self, predictions: Sequence, rows) -> dict[str, float]:
        """The mean per-token NLL of the reference outputs (lower is better), and the mean ROUGE-L
        F-measure of each greedy `answer` against its reference (rouge-score's tokens and
        arithmetic, checks/rouge.py) over the rows that have an answer."""
        from ..checks.rouge import rouge_l, rouge_tokens

        if len(predictions) != len(rows):
            raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows")
        scores = [rouge_l(rouge_tokens(ref), rouge_tokens(p["answer"]))
                  for p, ref in zip(predictions, rows["output"]) if p.get("answer") is not None]
        nll = [p["nll"] for p in predictions if p.get("nll") is not None]
        return {"nll": sum(nll) / len(nll) if nll else float("nan"),
                "rouge_l": sum(scores) / len(scores) if scores else float("nan")}

    def judge_prompt(self) -> dict:
        """The judge asks whether the output follows the instruction and is correct."""
        return {"system": "You review generated training data for an AI assistant: an instruction, its input and the "
                          "assistant's output. You answer only with the JSON object asked for, and you are strict: "
                          "most generated examples have flaws.",
                "template": JUDGE_TEMPLATE, "criteria": dict(JUDGE_CRITERIA), "fields": ("instruction", "input", "output")}

    def _shown_bootstrap_prompt(self) -> str:
        """A bootstrap request as the card shows it, with placeholders for the sampled tasks."""
        cfg = self.config
        about = f" about {cfg.description}" if cfg.description else ""
        listed = "".join(f"{j}. <a task from the pool>\n" for j in range(1, cfg.shots + 1))
        if cfg.prompt_form == "complete":
            return LIST_HEADER.format(about=about) + listed + f"{cfg.shots + 1}."
        return CHAT_SYSTEM + "\n\n" + CHAT_TEMPLATE.format(about=about, tasks=listed.rstrip(), n=cfg.new_per_request)

    def provenance(self, seeds: Dataset, prompts: Dataset, kept: Dataset) -> dict:
        cfg = self.config
        return {
            "prompt": {"form": cfg.prompt_form, "instructions": self._shown_bootstrap_prompt(),
                       "answers": ANSWER_SYSTEM + "\n\n" + ANSWER_TEMPLATE, "shots": cfg.shots,
                       "machine_shots": cfg.machine_shots, "answer_shots": cfg.answer_shots,
                       "description": cfg.description},
            "seeds": {"count": len(seeds), "instructions": len(_unique(seeds["instruction"])),
                      "with_input": sum(1 for t in seeds["input"] if t)},
            "instructions": {"kept_rows": len(kept), "with_input": sum(1 for t in kept["input"] if t),
                             "by_round": dict(Counter(kept["round"])) if "round" in kept.column_names else {}},
        }


def _unique(texts) -> list[str]:
    """`texts` without repeats, in order (a seed task with several instances appears once)."""
    return list(dict.fromkeys(texts))


def _fit(shown: list[str], budget: int | None) -> list[str]:
    """The shown tasks, long ones dropped from the end until they fit `budget` characters."""
    if budget is None:
        return shown
    out, used = [], 0
    for task in shown:
        if used + len(task) + 8 <= budget:
            out.append(task)
            used += len(task) + 8
    return out or shown[:1]

